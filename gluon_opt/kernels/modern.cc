// Fused ADOPT and LaProp (gluon_opt/optimizers/contrib/adopt.py, laprop.py), LaProp also with
// the cautious mask. Each loop repeats its reference's float32 operations in the reference's
// order; Python computes the step-dependent scalars in double precision as the reference does.
#include "common.h"
#include "lowprec.h"

namespace gluon_opt {

// ADOPT (the authors' code): the first step only sets v <- g^2; then
//   d = max(sqrt(v), eps);  n = clip(g / d, -c, c);  m <- b1 m + (1 - b1) n;  w <- w - lr m
//   v <- b2 v + (1 - b2) g^2            (v is updated *after* it normalised g)
// with coupled (g <- g + wd w) or decoupled (w <- w * (1 - lr wd)) weight decay first.
// attrs: beta1, beta2, epsilon.  scalars: first (0/1), lr, clip bound c (< 0: none), decay, wd.
// states: mean, var.
struct ADOPTRule : RuleBase, Moments {
  static constexpr int kScalars = 5;
  explicit ADOPTRule(const Attrs& a) : Moments(a, 0.9, 0.9999, 1e-6) {}
  bool supports(const Layout& l) const { return l.ns == 2; }
  GOPT_HD void operator()(const Tile& t) const {
    const float lr = static_cast<float>(t.sc[1]), clip = static_cast<float>(t.sc[2]);
    const float decay = static_cast<float>(t.sc[3]), wd = static_cast<float>(t.sc[4]);
    const float b1_ = b1, c1_ = c1, b2_ = b2, c2_ = c2, e_ = e;
    const float* w_in = t.w_in;
    float* w_out = t.w_out;
    const float* GOPT_RESTRICT g = t.g;
    float* GOPT_RESTRICT m = t.s[0];
    float* GOPT_RESTRICT v = t.s[1];
    const int64_t n = t.n;
    with_flag(t.sc[3] != 1.0, [&](auto D) {
      with_flag(t.sc[4] != 0, [&](auto C) {
        with_flag(t.sc[0] != 0, [&](auto F) {
          with_flag(t.sc[2] >= 0, [&](auto K) {
            GOPT_OMP(omp simd)
            for (int64_t i = 0; i < n; ++i) {
              float w0 = w_in[i];
              if constexpr (D.value) w0 = w0 * decay;
              float gi = g[i];
              if constexpr (C.value) gi = gi + wd * w0;
              if constexpr (F.value) {
                v[i] = gi * gi;
                w_out[i] = w0;
              } else {
                const float vi = v[i];
                float d = std::sqrt(vi);
                d = d > e_ ? d : e_;  // nd.maximum(sqrt(v), eps)
                float ng = gi / d;
                if constexpr (K.value) ng = ng > clip ? clip : (ng < -clip ? -clip : ng);
                const float mi = b1_ * m[i] + c1_ * ng;
                m[i] = mi;
                w_out[i] = w0 - lr * mi;
                v[i] = b2_ * vi + c2_ * (gi * gi);
              }
            }
          });
        });
      });
    });
  }
};

// LaProp (the authors' code): the learning rate lives inside the momentum, and the first
// moment's bias correction is the running average of the learning rates (a one-element state
// a, so that a schedule is corrected for exactly):
//   v <- b2 v + (1 - b2) g^2;  d = sqrt(v / bc2) + eps
//   a <- b1 a + (1 - b1) lr;   m <- b1 m + ((1 - b1) lr) (g / d)
//   u = m * s,  s = lr / a (1 when lr == 0);   [cautious: u <- u * mask(u, g)]
//   w <- (w - u) * (1 - lr wd)
// The cautious variant counts the kept coordinates per tensor in a first, read-only pass
// (the same operations, so the same mask), then writes in the second.
// attrs: beta1, beta2, epsilon.  scalars: lr, (1 - b1) lr, bc2, decay.
// states: exp_avg, exp_avg_sq, lr_avg (one element).
template <bool kCautious>
struct LaPropRule : RuleBase, Moments {
  static constexpr int kScalars = 4;
  static constexpr int kReduce = kCautious ? 1 : 0;
  static constexpr int kDerived = kCautious ? 2 : 1;
  static constexpr unsigned kScalarStates = 1u << 2;
  explicit LaPropRule(const Attrs& a) : Moments(a, 0.9, 0.999, 1e-15) {}
  bool supports(const Layout& l) const { return l.ns == 3; }

  // The step size s = lr / a from the *previous* a (float32, as the reference's one-element
  // arithmetic): reduce() runs before finish() has advanced the state.
  GOPT_HD float step_size(float a_old, const double* sc) const {
    const float a = b1 * a_old + static_cast<float>(sc[1]);
    return sc[0] != 0 ? static_cast<float>(sc[0]) / a : 1.0f;
  }

  GOPT_HD void reduce(const Tile& t, double* acc) const {
    const float s = step_size(t.s[2][0], t.sc), cm = static_cast<float>(t.sc[1]);
    const float bc2 = static_cast<float>(t.sc[2]);
    const float b1_ = b1, b2_ = b2, c2_ = c2, e_ = e;
    const float* GOPT_RESTRICT g = t.g;
    const float* GOPT_RESTRICT m = t.s[0];
    const float* GOPT_RESTRICT v = t.s[1];
    const int64_t n = t.n;
    double kept = 0;
    GOPT_OMP(omp simd reduction(+ : kept))
    for (int64_t i = 0; i < n; ++i) {
      const float gi = g[i];
      const float vi = b2_ * v[i] + c2_ * (gi * gi);
      const float d = std::sqrt(vi / bc2) + e_;
      const float mi = b1_ * m[i] + cm * (gi / d);
      const float u = mi * s;
      kept += (u * gi > 0.0f) ? 1.0 : 0.0;
    }
    acc[0] += kept;
  }

  GOPT_HD void finish(const Tensors& p, const double* sc, const double* sums,
                      float* ex) const {
    ex[0] = step_size(p.s[2][0], sc);
    p.s[2][0] = b1 * p.s[2][0] + static_cast<float>(sc[1]);
    // cautious_mask: n / (sum(mask) + 1) in float32
    if (kCautious)
      ex[1] = static_cast<float>(p.size) / (static_cast<float>(sums[0]) + 1.0f);
  }

  template <class S>
  GOPT_HD void operator()(const TileOf<S>& t) const {
    const float cm = static_cast<float>(t.sc[1]), bc2 = static_cast<float>(t.sc[2]);
    const float decay = static_cast<float>(t.sc[3]);
    const float s = t.ex[0], f = kCautious ? t.ex[1] : 0.0f;
    const float b1_ = b1, b2_ = b2, c2_ = c2, e_ = e;
    const float* w_in = t.w_in;
    float* w_out = t.w_out;
    const float* GOPT_RESTRICT g = t.g;
    S* GOPT_RESTRICT m = t.s[0];
    S* GOPT_RESTRICT v = t.s[1];
    const int64_t n = t.n;
    with_flag(t.sc[3] != 1.0, [&](auto D) {
      GOPT_OMP(omp simd)
      for (int64_t i = 0; i < n; ++i) {
        const float gi = g[i];
        const float vi = b2_ * state_value(v[i]) + c2_ * (gi * gi);
        set_state(v[i], vi);
        const float d = std::sqrt(vi / bc2) + e_;
        const float mi = b1_ * state_value(m[i]) + cm * (gi / d);
        set_state(m[i], mi);
        float u = mi * s;
        if constexpr (kCautious) u = u * ((u * gi > 0.0f) ? f : 0.0f);
        float w1 = w_in[i] - u;
        if constexpr (D.value) w1 = w1 * decay;
        w_out[i] = w1;
      }
    });
  }
};

}  // namespace gluon_opt

GLUON_OPT_REGISTER_RULE(gopt_adopt, gluon_opt::ADOPTRule);
GLUON_OPT_REGISTER_RULE(gopt_laprop, gluon_opt::LaPropRule<false>);
GLUON_OPT_REGISTER_LOWPREC(gopt_laprop_lp, gluon_opt::LaPropRule<false>);
GLUON_OPT_REGISTER_RULE(gopt_laprop_cautious, gluon_opt::LaPropRule<true>);
