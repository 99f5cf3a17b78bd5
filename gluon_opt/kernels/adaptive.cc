// Fused AdaGrad, RMSprop (plain, centred, with momentum) and AdaDelta, as
// gluon_opt/optimizers/adaptive.py's references (the same float32 operations in the same
// order; the step-dependent scalars come from Python, computed as the reference does).
//
//   AdaGrad:  h <- h + g^2;  w <- w - (clr * g) / (sqrt(h) + eps)
//   RMSprop:  v <- rho v + (1 - rho) g^2;  [gbar <- rho gbar + (1 - rho) g]
//             d = sqrt(max(v - gbar^2, 0)) + eps (centred) or sqrt(v) + eps
//             b <- mom b + g / d;  w <- w - lr b     (momentum)   or   w <- w - (lr g) / d
//   AdaDelta: v <- rho v + (1 - rho) g^2;  dx = sqrt(u + eps) / sqrt(v + eps) * g
//             u <- rho u + (1 - rho) dx^2;  w <- w - lr dx
//
// All with coupled weight decay g <- g + wd * w. Per-tensor scalars: [lr (AdaGrad: clr), wd].
#include "common.h"
#include "lowprec.h"

namespace gluon_opt {

struct AdaGradRule : RuleBase {
  static constexpr int kScalars = 2;
  float eps;
  explicit AdaGradRule(const Attrs& a)
      : eps(static_cast<float>(attr_double(a, "epsilon", 1e-10))) {}
  bool supports(const Layout& l) const { return l.ns == 1; }
  GOPT_HD void operator()(const Tile& t) const {
    const float clr = static_cast<float>(t.sc[0]), wd = static_cast<float>(t.sc[1]);
    const float e = eps;
    const float* w_in = t.w_in;
    float* w_out = t.w_out;
    const float* GOPT_RESTRICT g = t.g;
    float* GOPT_RESTRICT h = t.s[0];
    const int64_t n = t.n;
    with_flag(t.sc[1] != 0, [&](auto C) {
      GOPT_OMP(omp simd)
      for (int64_t i = 0; i < n; ++i) {
        const float w0 = w_in[i];
        float gi = g[i];
        if constexpr (C.value) gi = gi + wd * w0;
        const float hi = h[i] + gi * gi;
        h[i] = hi;
        w_out[i] = w0 - (clr * gi) / (std::sqrt(hi) + e);
      }
    });
  }
};

// states: square_avg [, grad_avg (centered)] [, momentum (momentum > 0)]
struct RMSpropRule : RuleBase {
  static constexpr int kScalars = 2;
  float rho, one_minus_rho, eps, momentum;
  bool centered;
  explicit RMSpropRule(const Attrs& a) {
    const double r = attr_double(a, "rho", 0.99);
    rho = static_cast<float>(r);
    one_minus_rho = static_cast<float>(1.0 - r);
    eps = static_cast<float>(attr_double(a, "epsilon", 1e-8));
    momentum = static_cast<float>(attr_double(a, "momentum", 0.0));
    centered = attr_int(a, "centered", 0) != 0;
  }
  bool supports(const Layout& l) const {
    return l.ns == 1 + (centered ? 1 : 0) + (momentum > 0 ? 1 : 0);
  }
  template <class S>
  GOPT_HD void operator()(const TileOf<S>& t) const {
    const float lr = static_cast<float>(t.sc[0]), wd = static_cast<float>(t.sc[1]);
    const float r = rho, c = one_minus_rho, e = eps, mom = momentum;
    const float* w_in = t.w_in;
    float* w_out = t.w_out;
    const float* GOPT_RESTRICT g = t.g;
    S* GOPT_RESTRICT v = t.s[0];
    S* GOPT_RESTRICT gbar = t.s[1];
    S* GOPT_RESTRICT buf = t.s[centered ? 2 : 1];
    const int64_t n = t.n;
    with_flag(t.sc[1] != 0, [&](auto C) {
      with_flag(centered, [&](auto Z) {
        with_flag(momentum > 0, [&](auto M) {
          GOPT_OMP(omp simd)
          for (int64_t i = 0; i < n; ++i) {
            const float w0 = w_in[i];
            float gi = g[i];
            if constexpr (C.value) gi = gi + wd * w0;
            const float vi = r * state_value(v[i]) + c * (gi * gi);
            set_state(v[i], vi);
            float d;
            if constexpr (Z.value) {
              const float gb = r * state_value(gbar[i]) + c * gi;
              set_state(gbar[i], gb);
              const float var = vi - gb * gb;
              d = std::sqrt(var > 0.0f ? var : 0.0f) + e;  // nd.maximum(var, 0)
            } else {
              d = std::sqrt(vi) + e;
            }
            if constexpr (M.value) {
              const float b = mom * state_value(buf[i]) + gi / d;
              set_state(buf[i], b);
              w_out[i] = w0 - lr * b;
            } else {
              w_out[i] = w0 - (lr * gi) / d;
            }
          }
        });
      });
    });
  }
};

// states: square_avg, acc_delta
struct AdaDeltaRule : RuleBase {
  static constexpr int kScalars = 2;
  float rho, one_minus_rho, eps;
  explicit AdaDeltaRule(const Attrs& a) {
    const double r = attr_double(a, "rho", 0.9);
    rho = static_cast<float>(r);
    one_minus_rho = static_cast<float>(1.0 - r);
    eps = static_cast<float>(attr_double(a, "epsilon", 1e-6));
  }
  bool supports(const Layout& l) const { return l.ns == 2; }
  GOPT_HD void operator()(const Tile& t) const {
    const float lr = static_cast<float>(t.sc[0]), wd = static_cast<float>(t.sc[1]);
    const float r = rho, c = one_minus_rho, e = eps;
    const float* w_in = t.w_in;
    float* w_out = t.w_out;
    const float* GOPT_RESTRICT g = t.g;
    float* GOPT_RESTRICT v = t.s[0];
    float* GOPT_RESTRICT u = t.s[1];
    const int64_t n = t.n;
    with_flag(t.sc[1] != 0, [&](auto C) {
      GOPT_OMP(omp simd)
      for (int64_t i = 0; i < n; ++i) {
        const float w0 = w_in[i];
        float gi = g[i];
        if constexpr (C.value) gi = gi + wd * w0;
        const float vi = r * v[i] + c * (gi * gi);
        v[i] = vi;
        const float dx = std::sqrt(u[i] + e) / std::sqrt(vi + e) * gi;
        u[i] = r * u[i] + c * (dx * dx);
        w_out[i] = w0 - lr * dx;
      }
    });
  }
};

}  // namespace gluon_opt

GLUON_OPT_REGISTER_RULE(gopt_adagrad, gluon_opt::AdaGradRule);
GLUON_OPT_REGISTER_RULE(gopt_rmsprop, gluon_opt::RMSpropRule);
GLUON_OPT_REGISTER_LOWPREC(gopt_rmsprop_lp, gluon_opt::RMSpropRule);
GLUON_OPT_REGISTER_RULE(gopt_adadelta, gluon_opt::AdaDeltaRule);
