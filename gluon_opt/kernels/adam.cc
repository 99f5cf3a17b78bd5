// Fused Adam (optionally AMSGrad) and AdamW, as gluon_opt/optimizers/adam.py's references:
//
//   Adam:  g <- g + wd * w                 AdamW:  w <- w * (1 - lr * wd)
//   m <- b1 * m + (1 - b1) * g;  v <- b2 * v + (1 - b2) * g^2;  v_max <- max(v_max, v)
//   w <- w - (lr / bc1) * m / (sqrt(v / bc2) + eps)      (v_max in place of v with AMSGrad)
//
// attrs: beta1, beta2, epsilon; per-tensor scalars: lr / bc1, bc2, coupled wd, decay factor
// (1 - lr * wd for AdamW, 1 for Adam). States: mean, var (, max_var with AMSGrad).
#include "common.h"
#include "lowprec.h"

namespace gluon_opt {

struct AdamRule : RuleBase, Moments {
  static constexpr int kScalars = 4;
  explicit AdamRule(const Attrs& a) : Moments(a, 0.9, 0.999, 1e-8) {}
  bool supports(const Layout& l) const { return l.ns == 2 || l.ns == 3; }

  // The options are compile-time flags (with_flag), so the loop has no branches, no
  // conditional loads and vectorises: sqrt and both divisions run 8 lanes wide (the
  // divisions stay divisions, not reciprocal multiplies, to round as the reference does).
  // S: the states' storage (float, or lowprec.h's bfloat16).
  template <class S>
  GOPT_HD void operator()(const TileOf<S>& t) const {
    const float step = static_cast<float>(t.sc[0]), bc2 = static_cast<float>(t.sc[1]);
    const float wd = static_cast<float>(t.sc[2]), decay = static_cast<float>(t.sc[3]);
    const float b1_ = b1, c1_ = c1, b2_ = b2, c2_ = c2, e_ = e;
    const float* w_in = t.w_in;
    float* w_out = t.w_out;
    const float* GOPT_RESTRICT g = t.g;
    S* GOPT_RESTRICT m = t.s[0];
    S* GOPT_RESTRICT v = t.s[1];
    S* GOPT_RESTRICT vmax = t.s[2];
    const int64_t n = t.n;
    with_flag(t.sc[2] != 0, [&](auto C) {
      with_flag(t.sc[3] != 1.0, [&](auto D) {
        with_flag(vmax != nullptr, [&](auto A) {
          GOPT_OMP(omp simd)
          for (int64_t i = 0; i < n; ++i) {
            float w0 = w_in[i];
            if constexpr (D.value) w0 = w0 * decay;
            float gi = g[i];
            if constexpr (C.value) gi = gi + wd * w0;
            const float mi = b1_ * state_value(m[i]) + c1_ * gi;
            float vi = b2_ * state_value(v[i]) + c2_ * (gi * gi);
            set_state(m[i], mi);
            set_state(v[i], vi);
            if constexpr (A.value) {
              const float old = state_value(vmax[i]);
              vi = old > vi ? old : vi;  // nd.maximum
              set_state(vmax[i], vi);
            }
            w_out[i] = w0 - (step * mi) / (std::sqrt(vi / bc2) + e_);
          }
        });
      });
    });
  }
};

}  // namespace gluon_opt

GLUON_OPT_REGISTER_RULE(gopt_adam, gluon_opt::AdamRule);
GLUON_OPT_REGISTER_LOWPREC(gopt_adam_lp, gluon_opt::AdamRule);

// ---- Adamax, NAdam, RAdam, AdaBelief (gluon_opt/optimizers/adam.py) ---------------------------
// Each loop repeats its reference's float32 operations in the reference's order; Python
// computes the step-dependent scalars in double precision exactly as the reference does.

namespace gluon_opt {

// Shared: the moment hyperparameters, and decoupled (w <- w * decay) or coupled
// (g <- g + wd * w) weight decay from the per-tensor scalars [decay, wd].
struct AdamFamilyBase : RuleBase, Moments {
  explicit AdamFamilyBase(const Attrs& a) : Moments(a, 0.9, 0.999, 1e-8) {}
  template <class T, class F>
  GOPT_HD static void with_decay(const T& t, F&& f) {
    with_flag(t.sc[0] != 1.0, [&](auto D) { with_flag(t.sc[1] != 0, [&](auto C) { f(D, C); }); });
  }
};

// Adamax: u <- max(b2 * u, |g| + eps);  w <- w - (lr / bc1) * m / u.
// scalars: decay (1), wd, lr / bc1.  states: mean, inf_norm.
struct AdamaxRule : AdamFamilyBase {
  static constexpr int kScalars = 3;
  using AdamFamilyBase::AdamFamilyBase;
  bool supports(const Layout& l) const { return l.ns == 2; }
  GOPT_HD void operator()(const Tile& t) const {
    const float wd = static_cast<float>(t.sc[1]), step = static_cast<float>(t.sc[2]);
    const float b1_ = b1, c1_ = c1, b2_ = b2, e_ = e;
    const float* w_in = t.w_in;
    float* w_out = t.w_out;
    const float* GOPT_RESTRICT g = t.g;
    float* GOPT_RESTRICT m = t.s[0];
    float* GOPT_RESTRICT u = t.s[1];
    const int64_t n = t.n;
    with_flag(t.sc[1] != 0, [&](auto C) {
      GOPT_OMP(omp simd)
      for (int64_t i = 0; i < n; ++i) {
        const float w0 = w_in[i];
        float gi = g[i];
        if constexpr (C.value) gi = gi + wd * w0;
        const float mi = b1_ * m[i] + c1_ * gi;
        m[i] = mi;
        const float a = b2_ * u[i], b = std::fabs(gi) + e_;
        const float ui = a > b ? a : b;
        u[i] = ui;
        w_out[i] = w0 - (step * mi) / ui;
      }
    });
  }
};

// NAdam: the per-parameter product of the momentum schedule is a one-element state (P):
// finish() advances it once per tensor and derives the two coefficients, as the reference's
// one-element NDArray arithmetic does (float32):
//   P <- P * mu;  gc = lr (1 - mu) / (1 - P);  mc = lr mu' / (1 - P mu')
//   w <- w - ((g / d) * gc + (m / d) * mc),  d = sqrt(v / bc2) + eps
// scalars: decay, wd, mu, lr * (1 - mu), lr * mu', mu', bc2.  states: mean, var, mu_product.
struct NAdamRule : AdamFamilyBase {
  static constexpr int kScalars = 7;
  static constexpr int kDerived = 2;
  static constexpr unsigned kScalarStates = 1u << 2;
  using AdamFamilyBase::AdamFamilyBase;
  bool supports(const Layout& l) const { return l.ns == 3; }
  GOPT_HD void finish(const Tensors& p, const double* sc, const double*, float* ex) const {
    const float mu = static_cast<float>(sc[2]), mu_next = static_cast<float>(sc[5]);
    const float prod = p.s[2][0] * mu;
    p.s[2][0] = prod;
    ex[0] = static_cast<float>(sc[3]) / (1.0f - prod);
    ex[1] = static_cast<float>(sc[4]) / (1.0f - prod * mu_next);
  }
  GOPT_HD void operator()(const Tile& t) const {
    const float decay = static_cast<float>(t.sc[0]), wd = static_cast<float>(t.sc[1]);
    const float bc2 = static_cast<float>(t.sc[6]), gc = t.ex[0], mc = t.ex[1];
    const float b1_ = b1, c1_ = c1, b2_ = b2, c2_ = c2, e_ = e;
    const float* w_in = t.w_in;
    float* w_out = t.w_out;
    const float* GOPT_RESTRICT g = t.g;
    float* GOPT_RESTRICT m = t.s[0];
    float* GOPT_RESTRICT v = t.s[1];
    const int64_t n = t.n;
    with_decay(t, [&](auto D, auto C) {
      GOPT_OMP(omp simd)
      for (int64_t i = 0; i < n; ++i) {
        float w0 = w_in[i];
        if constexpr (D.value) w0 = w0 * decay;
        float gi = g[i];
        if constexpr (C.value) gi = gi + wd * w0;
        const float mi = b1_ * m[i] + c1_ * gi;
        const float vi = b2_ * v[i] + c2_ * (gi * gi);
        m[i] = mi;
        v[i] = vi;
        const float d = std::sqrt(vi / bc2) + e_;
        w_out[i] = w0 - ((gi / d) * gc + (mi / d) * mc);
      }
    });
  }
};

// RAdam: rectified step (coef = lr r sqrt(bc2) / bc1) while rho_t > 5, else the SGD-like
// step coef = lr / bc1.  scalars: decay, wd, rectified (0/1), coef.  states: mean, var.
struct RAdamRule : AdamFamilyBase {
  static constexpr int kScalars = 4;
  using AdamFamilyBase::AdamFamilyBase;
  bool supports(const Layout& l) const { return l.ns == 2; }
  GOPT_HD void operator()(const Tile& t) const {
    const float decay = static_cast<float>(t.sc[0]), wd = static_cast<float>(t.sc[1]);
    const float coef = static_cast<float>(t.sc[3]);
    const float b1_ = b1, c1_ = c1, b2_ = b2, c2_ = c2, e_ = e;
    const float* w_in = t.w_in;
    float* w_out = t.w_out;
    const float* GOPT_RESTRICT g = t.g;
    float* GOPT_RESTRICT m = t.s[0];
    float* GOPT_RESTRICT v = t.s[1];
    const int64_t n = t.n;
    with_decay(t, [&](auto D, auto C) {
      with_flag(t.sc[2] != 0, [&](auto R) {
        GOPT_OMP(omp simd)
        for (int64_t i = 0; i < n; ++i) {
          float w0 = w_in[i];
          if constexpr (D.value) w0 = w0 * decay;
          float gi = g[i];
          if constexpr (C.value) gi = gi + wd * w0;
          const float mi = b1_ * m[i] + c1_ * gi;
          const float vi = b2_ * v[i] + c2_ * (gi * gi);
          m[i] = mi;
          v[i] = vi;
          if constexpr (R.value) {
            w_out[i] = w0 - (coef * mi) / (std::sqrt(vi) + e_);
          } else {
            w_out[i] = w0 - coef * mi;
          }
        }
      });
    });
  }
};

// AdaBelief: s <- b2 s + (1 - b2) (g - m)^2 + eps (m already updated); AMSGrad's max;
// w <- w - (lr / bc1) m / (sqrt(s / bc2) + eps).
// scalars: decay, wd, lr / bc1, bc2.  states: mean, var (, max_var).
struct AdaBeliefRule : AdamFamilyBase {
  static constexpr int kScalars = 4;
  using AdamFamilyBase::AdamFamilyBase;
  bool supports(const Layout& l) const { return l.ns == 2 || l.ns == 3; }
  template <class S>
  GOPT_HD void operator()(const TileOf<S>& t) const {
    const float decay = static_cast<float>(t.sc[0]), wd = static_cast<float>(t.sc[1]);
    const float step = static_cast<float>(t.sc[2]), bc2 = static_cast<float>(t.sc[3]);
    const float b1_ = b1, c1_ = c1, b2_ = b2, c2_ = c2, e_ = e;
    const float* w_in = t.w_in;
    float* w_out = t.w_out;
    const float* GOPT_RESTRICT g = t.g;
    S* GOPT_RESTRICT m = t.s[0];
    S* GOPT_RESTRICT s = t.s[1];
    S* GOPT_RESTRICT smax = t.s[2];
    const int64_t n = t.n;
    with_decay(t, [&](auto D, auto C) {
      with_flag(smax != nullptr, [&](auto A) {
        GOPT_OMP(omp simd)
        for (int64_t i = 0; i < n; ++i) {
          float w0 = w_in[i];
          if constexpr (D.value) w0 = w0 * decay;
          float gi = g[i];
          if constexpr (C.value) gi = gi + wd * w0;
          const float mi = b1_ * state_value(m[i]) + c1_ * gi;
          set_state(m[i], mi);
          const float dev = gi - mi;
          float si = b2_ * state_value(s[i]) + c2_ * (dev * dev) + e_;
          set_state(s[i], si);
          if constexpr (A.value) {
            const float old = state_value(smax[i]);
            si = old > si ? old : si;
            set_state(smax[i], si);
          }
          w_out[i] = w0 - (step * mi) / (std::sqrt(si / bc2) + e_);
        }
      });
    });
  }
};

}  // namespace gluon_opt

GLUON_OPT_REGISTER_RULE(gopt_adamax, gluon_opt::AdamaxRule);
GLUON_OPT_REGISTER_RULE(gopt_nadam, gluon_opt::NAdamRule);
GLUON_OPT_REGISTER_RULE(gopt_radam, gluon_opt::RAdamRule);
GLUON_OPT_REGISTER_RULE(gopt_adabelief, gluon_opt::AdaBeliefRule);
GLUON_OPT_REGISTER_LOWPREC(gopt_adabelief_lp, gluon_opt::AdaBeliefRule);
