// Fused Adam (optionally AMSGrad) and AdamW, as gluon_opt/optimizers/adam.py's references:
//
//   Adam:  g <- g + wd * w                 AdamW:  w <- w * (1 - lr * wd)
//   m <- b1 * m + (1 - b1) * g;  v <- b2 * v + (1 - b2) * g^2;  v_max <- max(v_max, v)
//   w <- w - (lr / bc1) * m / (sqrt(v / bc2) + eps)      (v_max in place of v with AMSGrad)
//
// attrs: beta1, beta2, epsilon; per-tensor scalars: lr / bc1, bc2, coupled wd, decay factor
// (1 - lr * wd for AdamW, 1 for Adam). States: mean, var (, max_var with AMSGrad).
#include "common.h"

namespace gluon_opt {

struct AdamRule {
  static constexpr int kScalars = 4;
  float beta1, one_minus_beta1, beta2, one_minus_beta2, eps;
  explicit AdamRule(const Attrs& a) {
    const double b1 = attr_double(a, "beta1", 0.9), b2 = attr_double(a, "beta2", 0.999);
    beta1 = static_cast<float>(b1);
    one_minus_beta1 = static_cast<float>(1.0 - b1);
    beta2 = static_cast<float>(b2);
    one_minus_beta2 = static_cast<float>(1.0 - b2);
    eps = static_cast<float>(attr_double(a, "epsilon", 1e-8));
  }
  bool supports(const Layout& l) const { return l.ns == 2 || l.ns == 3; }

  void operator()(const Tile& t) const {
    const float step = static_cast<float>(t.sc[0]), bc2 = static_cast<float>(t.sc[1]);
    const float wd = static_cast<float>(t.sc[2]), decay = static_cast<float>(t.sc[3]);
    const bool coupled = t.sc[2] != 0, decoupled = t.sc[3] != 1.0;
    const float b1 = beta1, c1 = one_minus_beta1, b2 = beta2, c2 = one_minus_beta2, e = eps;
    const float* w_in = t.w_in;
    float* w_out = t.w_out;
    const float* __restrict g = t.g;
    float* __restrict m = t.s[0];
    float* __restrict v = t.s[1];
    float* __restrict vmax = t.s[2];
    const bool ams = vmax != nullptr;
    const int64_t n = t.n;
#pragma omp simd
    for (int64_t i = 0; i < n; ++i) {
      const float w0 = decoupled ? w_in[i] * decay : w_in[i];
      const float gi = coupled ? g[i] + wd * w0 : g[i];
      const float mi = b1 * m[i] + c1 * gi;
      float vi = b2 * v[i] + c2 * (gi * gi);
      m[i] = mi;
      v[i] = vi;
      if (ams) {
        vi = std::max(vmax[i], vi);
        vmax[i] = vi;
      }
      w_out[i] = w0 - (step * mi) / (std::sqrt(vi / bc2) + e);
    }
  }
};

}  // namespace gluon_opt

GLUON_OPT_REGISTER_RULE(gopt_adam, gluon_opt::AdamRule);
