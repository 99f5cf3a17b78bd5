// Fused AdEMAMix and MARS-AdamW, as gluon_opt/optimizers/contrib/ademamix.py's and mars.py's
// references, each with its cautious variant (the mask of base.cautious_mask:
// phi = [u g > 0], scaled by n / (sum phi + 1), which needs the tensor's count of phi first).
//
// The count is exact in both paths (a float32 sum of 0/1 is exact below 2^24 elements, as is
// the double sum here), so the cautious AdEMAMix kernels repeat the reference bit for bit. MARS
// clips c by its norm: the kernels sum its squares in double, MXNet's nd.norm in float32, so
// the clipped c differs by an ulp or so (as LAMB's norms, layerwise.cc).
#include "common.h"
#include "lowprec.h"

namespace gluon_opt {

// n / (count + 1) in float32, as the reference's mask.size / (mask.sum() + 1.0).
GOPT_HD inline float cautious_scale(int64_t n, double count) {
  return static_cast<float>(n) / (static_cast<float>(count) + 1.0f);
}

// ---- AdEMAMix --------------------------------------------------------------------------------
//   m1 <- b1 m1 + (1 - b1) g;  v <- b2 v + (1 - b2) g^2;  m2 <- b3 m2 + (1 - b3) g
//   u = (m1 [* mask] / bc1 + alpha m2) / (sqrt(v) / sqrt(bc2) + eps)
//   w <- w (1 - lr wd);  w <- w - lr u
// scalars: lr, decay (1 - lr wd), bc1, sqrt(bc2), alpha_t, beta3_t, 1 - beta3_t (the warmups
// are per step, computed in Python). states: exp_avg, exp_avg_sq, exp_avg_slow.
// kCautious: a first, read-only pass counts m1' g > 0 (m1' the updated m1, from g and m1); the
// update pass updates the moments as without the mask and masks the fast term.
template <bool kCautious>
struct AdEMAMixRule : RuleBase, Moments {
  static constexpr int kScalars = 7;
  static constexpr int kReduce = kCautious ? 1 : 0;
  static constexpr int kDerived = kCautious ? 1 : 0;
  explicit AdEMAMixRule(const Attrs& a) : Moments(a, 0.9, 0.999, 1e-8) {}
  bool supports(const Layout& l) const { return l.ns == 3; }

  // the count reads g and m1 only (m1's update recomputed, in the update pass's arithmetic)
  GOPT_HD void reduce(const Tile& t, double* acc) const {
    if constexpr (kCautious) {
      const float* GOPT_RESTRICT g = t.g;
      const float* GOPT_RESTRICT m1 = t.s[0];
      const float b1_ = b1, c1_ = c1;
      const int64_t n = t.n;
      int64_t kept = 0;  // exact: a tile holds at most kTile elements
      GOPT_OMP(omp simd reduction(+ : kept))
      for (int64_t i = 0; i < n; ++i) {
        const float m1i = b1_ * m1[i] + c1_ * g[i];
        kept += (m1i * g[i] > 0.0f) ? 1 : 0;
      }
      acc[0] += static_cast<double>(kept);
    }
  }

  GOPT_HD void finish(const Tensors& p, const double*, const double* sums, float* ex) const {
    if constexpr (kCautious) ex[0] = cautious_scale(p.size, sums[0]);
  }

  template <class S>
  GOPT_HD void operator()(const TileOf<S>& t) const {
    const float lr = static_cast<float>(t.sc[0]), decay = static_cast<float>(t.sc[1]);
    const float bc1 = static_cast<float>(t.sc[2]), sbc2 = static_cast<float>(t.sc[3]);
    const float alpha = static_cast<float>(t.sc[4]);
    const float b1_ = b1, c1_ = c1, b2_ = b2, c2_ = c2, e_ = e;
    const float b3 = static_cast<float>(t.sc[5]), c3 = static_cast<float>(t.sc[6]);
    const float scale = kCautious ? t.ex[0] : 0.0f;
    const float* w_in = t.w_in;
    float* w_out = t.w_out;
    const float* GOPT_RESTRICT g = t.g;
    S* GOPT_RESTRICT m1 = t.s[0];
    S* GOPT_RESTRICT v = t.s[1];
    S* GOPT_RESTRICT m2 = t.s[2];
    const int64_t n = t.n;
    with_flag(t.sc[1] != 1.0, [&](auto D) {
      GOPT_OMP(omp simd)
      for (int64_t i = 0; i < n; ++i) {
        const float gi = g[i];
        const float m1i = b1_ * state_value(m1[i]) + c1_ * gi;
        const float vi = b2_ * state_value(v[i]) + c2_ * (gi * gi);
        const float m2i = b3 * state_value(m2[i]) + c3 * gi;
        set_state(m1[i], m1i);
        set_state(v[i], vi);
        set_state(m2[i], m2i);
        float fast = m1i;
        if constexpr (kCautious) fast = m1i * ((m1i * gi > 0.0f) ? scale : 0.0f);
        const float u = (fast / bc1 + alpha * m2i) / (std::sqrt(vi) / sbc2 + e_);
        float w0 = w_in[i];
        if constexpr (D.value) w0 = w0 * decay;
        w_out[i] = w0 - lr * u;
      }
    });
  }
};

// ---- MARS ------------------------------------------------------------------------------------
// Tensors of ndim >= 2 (or every tensor with optimize_1d):
//   c = (g - g_prev) coef + g  (coef = gamma b1 / (1 - b1));  c <- c / max(||c||, 1)
//   m <- b1 m + (1 - b1) c;  v <- b2 v + (1 - b2) c^2
//   u = (m [* mask] / bc1) / (sqrt(v) / sqrt(bc2) + eps);  w <- w (1 - lr wd) - lr u;  g_prev <- g
// The others (MarsAdamRule): the same with c = g and their own betas and learning rate.
// scalars: lr, decay (1 - lr wd), bc1, sqrt(bc2). states: exp_avg, exp_avg_sq, last_grad.

// The step from the updated moments (shared by the MARS and the AdamW rules).
GOPT_HD inline float mars_direction(float m, float v, float bc1, float sbc2, float e) {
  return (m / bc1) / (std::sqrt(v) / sbc2 + e);
}

// kMomentsOnly: the first of the two cautious calls (the mask's count needs the updated m,
// which needs the norm of c: three passes, so two op calls): pass 1 sums c^2, pass 2 updates
// m and v and leaves w and g_prev; MarsAdamRule<kApplyCautious> then counts and steps.
template <bool kMomentsOnly>
struct MarsRule : RuleBase, Moments {
  static constexpr int kScalars = 4;
  static constexpr int kReduce = 1;
  static constexpr int kDerived = 1;
  float coef;
  explicit MarsRule(const Attrs& a)
      : Moments(a, 0.95, 0.99, 1e-8),
        coef(static_cast<float>(attr_double(a, "gamma_coef", 0.0))) {}
  bool supports(const Layout& l) const { return l.ns == 3; }

  GOPT_HD static inline float corrected(float gi, float li, float coef) {
    return (gi - li) * coef + gi;
  }

  GOPT_HD void reduce(const Tile& t, double* acc) const {
    const float* GOPT_RESTRICT g = t.g;
    const float* GOPT_RESTRICT last = t.s[2];
    const float coef_ = coef;
    const int64_t n = t.n;
    double sc2 = 0;
    GOPT_OMP(omp simd reduction(+ : sc2))
    for (int64_t i = 0; i < n; ++i) {
      const float c = corrected(g[i], last[i], coef_);
      sc2 += static_cast<double>(c) * c;
    }
    acc[0] += sc2;
  }

  GOPT_HD void finish(const Tensors&, const double*, const double* sums, float* ex) const {
    const float norm = sum_to_norm(sums[0]);
    ex[0] = norm > 1.0f ? norm : 1.0f;  // nd.maximum(norm, 1)
  }

  GOPT_HD void operator()(const Tile& t) const {
    const float lr = static_cast<float>(t.sc[0]), decay = static_cast<float>(t.sc[1]);
    const float bc1 = static_cast<float>(t.sc[2]), sbc2 = static_cast<float>(t.sc[3]);
    const float d = t.ex[0], coef_ = coef;
    const float b1_ = b1, c1_ = c1, b2_ = b2, c2_ = c2, e_ = e;
    const float* w_in = t.w_in;
    float* w_out = t.w_out;
    const float* GOPT_RESTRICT g = t.g;
    float* GOPT_RESTRICT m = t.s[0];
    float* GOPT_RESTRICT v = t.s[1];
    float* GOPT_RESTRICT last = t.s[2];
    const int64_t n = t.n;
    with_flag(t.sc[1] != 1.0, [&](auto D) {
      GOPT_OMP(omp simd)
      for (int64_t i = 0; i < n; ++i) {
        const float gi = g[i];
        const float c = corrected(gi, last[i], coef_) / d;
        const float mi = b1_ * m[i] + c1_ * c;
        const float vi = b2_ * v[i] + c2_ * (c * c);
        m[i] = mi;
        v[i] = vi;
        if constexpr (kMomentsOnly) {
          w_out[i] = w_in[i];  // unchanged (w_out aliases w_in outside multi-precision)
        } else {
          float w0 = w_in[i];
          if constexpr (D.value) w0 = w0 * decay;
          w_out[i] = w0 - lr * mars_direction(mi, vi, bc1, sbc2, e_);
          last[i] = gi;
        }
      }
    });
  }
};

// AdamW for MARS's 1-D tensors (kMode 0; 1: cautious, moments and count in a first pass) and
// the second cautious call of the MARS tensors (kMode 2: moments already updated; count, step).
// All of them leave g_prev <- g.
template <int kMode>
struct MarsAdamRule : RuleBase, Moments {
  static constexpr bool kCautious = kMode != 0;
  static constexpr int kScalars = 4;
  static constexpr int kReduce = kCautious ? 1 : 0;
  static constexpr int kDerived = kCautious ? 1 : 0;
  explicit MarsAdamRule(const Attrs& a) : Moments(a, 0.9, 0.95, 1e-8) {}
  bool supports(const Layout& l) const { return l.ns == 3; }

  GOPT_HD void reduce(const Tile& t, double* acc) const {
    if constexpr (kCautious) {
      const float* GOPT_RESTRICT g = t.g;
      float* GOPT_RESTRICT m = t.s[0];
      float* GOPT_RESTRICT v = t.s[1];
      const int64_t n = t.n;
      double kept = 0;
      for (int64_t i = 0; i < n; ++i) {
        const float gi = g[i];
        if constexpr (kMode == 1) {
          m[i] = b1 * m[i] + c1 * gi;
          v[i] = b2 * v[i] + c2 * (gi * gi);
        }
        kept += (m[i] * gi > 0.0f) ? 1.0 : 0.0;
      }
      acc[0] += kept;
    }
  }

  GOPT_HD void finish(const Tensors& p, const double*, const double* sums, float* ex) const {
    if constexpr (kCautious) ex[0] = cautious_scale(p.size, sums[0]);
  }

  GOPT_HD void operator()(const Tile& t) const {
    const float lr = static_cast<float>(t.sc[0]), decay = static_cast<float>(t.sc[1]);
    const float bc1 = static_cast<float>(t.sc[2]), sbc2 = static_cast<float>(t.sc[3]);
    const float b1_ = b1, c1_ = c1, b2_ = b2, c2_ = c2, e_ = e;
    const float scale = kCautious ? t.ex[0] : 0.0f;
    const float* w_in = t.w_in;
    float* w_out = t.w_out;
    const float* GOPT_RESTRICT g = t.g;
    float* GOPT_RESTRICT m = t.s[0];
    float* GOPT_RESTRICT v = t.s[1];
    float* GOPT_RESTRICT last = t.s[2];
    const int64_t n = t.n;
    with_flag(t.sc[1] != 1.0, [&](auto D) {
      GOPT_OMP(omp simd)
      for (int64_t i = 0; i < n; ++i) {
        const float gi = g[i];
        float mi, vi;
        if constexpr (kCautious) {
          mi = m[i];
          vi = v[i];
        } else {
          mi = b1_ * m[i] + c1_ * gi;
          vi = b2_ * v[i] + c2_ * (gi * gi);
          m[i] = mi;
          v[i] = vi;
        }
        float mom = mi;
        if constexpr (kCautious) mom = mi * ((mi * gi > 0.0f) ? scale : 0.0f);
        float w0 = w_in[i];
        if constexpr (D.value) w0 = w0 * decay;
        w_out[i] = w0 - lr * mars_direction(mom, vi, bc1, sbc2, e_);
        last[i] = gi;
      }
    });
  }
};

}  // namespace gluon_opt

GLUON_OPT_REGISTER_RULE(gopt_ademamix, gluon_opt::AdEMAMixRule<false>);
GLUON_OPT_REGISTER_LOWPREC(gopt_ademamix_lp, gluon_opt::AdEMAMixRule<false>);
GLUON_OPT_REGISTER_RULE(gopt_ademamix_cautious, gluon_opt::AdEMAMixRule<true>);
GLUON_OPT_REGISTER_RULE(gopt_mars, gluon_opt::MarsRule<false>);
GLUON_OPT_REGISTER_RULE(gopt_mars_moments, gluon_opt::MarsRule<true>);
GLUON_OPT_REGISTER_RULE(gopt_mars_1d, gluon_opt::MarsAdamRule<0>);
GLUON_OPT_REGISTER_RULE(gopt_mars_1d_cautious, gluon_opt::MarsAdamRule<1>);
GLUON_OPT_REGISTER_RULE(gopt_mars_apply_cautious, gluon_opt::MarsAdamRule<2>);
