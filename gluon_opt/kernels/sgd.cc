// Fused SGD with momentum, dampening and Nesterov momentum, PyTorch's convention exactly as
// gluon_opt/optimizers/sgd.py's reference ``step``:
//
//   g <- g + wd * w;  b <- g (first step) or momentum * b + (1 - dampening) * g
//   d <- g + momentum * b (nesterov) or b;  w <- w - lr * d
//
// attrs: momentum, dampening, nesterov; per-tensor scalars: lr, wd, first (1 on the first step).
// States: none (momentum = 0) or the momentum buffer.
#include "common.h"
#include "lowprec.h"

namespace gluon_opt {

struct SGDRule : RuleBase {
  static constexpr int kScalars = 3;
  float momentum, keep;  // keep = 1 - dampening
  bool nesterov;
  explicit SGDRule(const Attrs& a)
      : momentum(static_cast<float>(attr_double(a, "momentum", 0.0))),
        keep(static_cast<float>(1.0 - attr_double(a, "dampening", 0.0))),
        nesterov(attr_int(a, "nesterov", 0) != 0) {}
  bool supports(const Layout& l) const { return l.ns == 0 || l.ns == 1; }

  template <class S>
  GOPT_HD void operator()(const TileOf<S>& t) const {
    const float lr = static_cast<float>(t.sc[0]), wd = static_cast<float>(t.sc[1]);
    const bool first = t.sc[2] != 0, coupled = t.sc[1] != 0;
    const float* w_in = t.w_in;
    float* w_out = t.w_out;
    const float* GOPT_RESTRICT g = t.g;
    const int64_t n = t.n;
    const bool plain = t.s[0] == nullptr || momentum == 0.0f;
    with_flag(coupled, [&](auto C) {
      if (plain) {
        GOPT_OMP(omp simd)
        for (int64_t i = 0; i < n; ++i) {
          float gi = g[i];
          if constexpr (C.value) gi = gi + wd * w_in[i];
          w_out[i] = w_in[i] - lr * gi;
        }
        return;
      }
      S* GOPT_RESTRICT b = t.s[0];
      const float mom = momentum, keep_ = keep;
      with_flag(first, [&](auto F) {
        with_flag(nesterov, [&](auto N) {
          GOPT_OMP(omp simd)
          for (int64_t i = 0; i < n; ++i) {
            float gi = g[i];
            if constexpr (C.value) gi = gi + wd * w_in[i];
            float bi;
            if constexpr (F.value) bi = gi; else bi = mom * state_value(b[i]) + keep_ * gi;
            set_state(b[i], bi);
            float d;
            if constexpr (N.value) d = gi + mom * bi; else d = bi;
            w_out[i] = w_in[i] - lr * d;
          }
        });
      });
    });
  }
};

}  // namespace gluon_opt

GLUON_OPT_REGISTER_RULE(gopt_sgd, gluon_opt::SGDRule);
GLUON_OPT_REGISTER_LOWPREC(gopt_sgd_lp, gluon_opt::SGDRule);
