// Fused Lion, as gluon_opt/optimizers/sign.py's reference:
//
//   c <- b1 m + (1 - b1) g;  w <- w * (1 - lr wd);  w <- w - lr sign(c)
//   m <- b2 m + (1 - b2) g
//
// per-tensor scalars: lr, decay factor (1 - lr wd). states: exp_avg.
#include "common.h"
#include "lowprec.h"

namespace gluon_opt {

struct LionRule : RuleBase, Moments {  // (no epsilon)
  static constexpr int kScalars = 2;
  explicit LionRule(const Attrs& a) : Moments(a, 0.9, 0.99, 0.0) {}
  bool supports(const Layout& l) const { return l.ns == 1; }
  template <class S>
  GOPT_HD void operator()(const TileOf<S>& t) const {
    const float lr = static_cast<float>(t.sc[0]), decay = static_cast<float>(t.sc[1]);
    const float b1_ = b1, c1_ = c1, b2_ = b2, c2_ = c2;
    const float* w_in = t.w_in;
    float* w_out = t.w_out;
    const float* GOPT_RESTRICT g = t.g;
    S* GOPT_RESTRICT m = t.s[0];
    const int64_t n = t.n;
    with_flag(t.sc[1] != 1.0, [&](auto D) {
      GOPT_OMP(omp simd)
      for (int64_t i = 0; i < n; ++i) {
        const float mi = state_value(m[i]), gi = g[i];
        const float c = b1_ * mi + c1_ * gi;
        const float s = c > 0.0f ? 1.0f : (c < 0.0f ? -1.0f : 0.0f);  // nd.sign
        float w0 = w_in[i];
        if constexpr (D.value) w0 = w0 * decay;
        w_out[i] = w0 - lr * s;
        set_state(m[i], b2_ * mi + c2_ * gi);
      }
    });
  }
};

}  // namespace gluon_opt

GLUON_OPT_REGISTER_RULE(gopt_lion, gluon_opt::LionRule);
GLUON_OPT_REGISTER_LOWPREC(gopt_lion_lp, gluon_opt::LionRule);
