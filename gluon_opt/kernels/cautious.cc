// Cautious Adam/AdamW and Lion (Liang et al., 2024), as the references of
// gluon_opt/optimizers/adam.py and sign.py with cautious=True: the update u (the weight moves
// by -u) keeps the coordinates where u * g > 0, scaled by n / (kept + 1) (base.cautious_mask).
// The count is a per-tensor reduction: a first, read-only pass computes u exactly as the
// update pass does and counts, finish() turns the count into the factor, and the update pass
// writes, all in one op call. Separate ops, so that gopt_adam and gopt_lion keep their one
// pass when cautious is off.
#include "common.h"

namespace gluon_opt {

// ex[0] = float(n) / (float(kept) + 1), the reference's float32 arithmetic (the count is exact
// below 2^24 kept elements per tensor in both).
GOPT_HD inline float cautious_factor(int64_t size, double kept) {
  return static_cast<float>(size) / (static_cast<float>(kept) + 1.0f);
}

// Adam (coupled wd) and AdamW (decoupled), optionally AMSGrad; scalars and states as gopt_adam.
struct AdamCautiousRule : RuleBase, Moments {
  static constexpr int kScalars = 4;
  static constexpr int kReduce = 1;
  static constexpr int kDerived = 1;
  explicit AdamCautiousRule(const Attrs& a) : Moments(a, 0.9, 0.999, 1e-8) {}
  bool supports(const Layout& l) const { return l.ns == 2 || l.ns == 3; }

  // kWrite: the update pass (states and weight written, mask applied); else count only.
  template <bool kWrite>
  GOPT_HD double run(const Tile& t) const {
    const float step = static_cast<float>(t.sc[0]), bc2 = static_cast<float>(t.sc[1]);
    const float wd = static_cast<float>(t.sc[2]), decay = static_cast<float>(t.sc[3]);
    const float f = kWrite ? t.ex[0] : 0.0f;
    const float b1 = this->b1, c1 = this->c1, b2 = this->b2, c2 = this->c2, e = this->e;
    const float* w_in = t.w_in;
    float* w_out = t.w_out;
    const float* GOPT_RESTRICT g = t.g;
    float* GOPT_RESTRICT m = t.s[0];
    float* GOPT_RESTRICT v = t.s[1];
    float* GOPT_RESTRICT vmax = t.s[2];
    const int64_t n = t.n;
    double kept = 0;
    with_flag(t.sc[2] != 0, [&](auto C) {
      with_flag(t.sc[3] != 1.0, [&](auto D) {
        with_flag(vmax != nullptr, [&](auto A) {
          GOPT_OMP(omp simd reduction(+ : kept))
          for (int64_t i = 0; i < n; ++i) {
            float w0 = w_in[i];
            if constexpr (D.value) w0 = w0 * decay;
            float gi = g[i];
            if constexpr (C.value) gi = gi + wd * w0;
            (void)w0;  // the counting pass reads it for the coupled decay only
            const float mi = b1 * m[i] + c1 * gi;
            float vi = b2 * v[i] + c2 * (gi * gi);
            if constexpr (kWrite) {
              m[i] = mi;
              v[i] = vi;
            }
            if constexpr (A.value) {
              const float old = vmax[i];
              vi = old > vi ? old : vi;
              if constexpr (kWrite) vmax[i] = vi;
            }
            float u = (step * mi) / (std::sqrt(vi / bc2) + e);
            const bool keep = u * gi > 0.0f;
            if constexpr (kWrite) {
              u = u * (keep ? f : 0.0f);
              w_out[i] = w0 - u;
            } else {
              kept += keep ? 1.0 : 0.0;
            }
          }
        });
      });
    });
    return kept;
  }
  GOPT_HD void reduce(const Tile& t, double* acc) const { acc[0] += run<false>(t); }
  GOPT_HD void finish(const Tensors& p, const double*, const double* sums, float* ex) const {
    ex[0] = cautious_factor(p.size, sums[0]);
  }
  GOPT_HD void operator()(const Tile& t) const { run<true>(t); }
};

// Lion: c = b1 m + (1 - b1) g;  u = sign(c) * mask;  w <- w * (1 - lr wd) - lr u;
// m <- b2 m + (1 - b2) g.  scalars and states as gopt_lion.
struct LionCautiousRule : RuleBase, Moments {  // (no epsilon)
  static constexpr int kScalars = 2;
  static constexpr int kReduce = 1;
  static constexpr int kDerived = 1;
  explicit LionCautiousRule(const Attrs& a) : Moments(a, 0.9, 0.99, 0.0) {}
  bool supports(const Layout& l) const { return l.ns == 1; }
  GOPT_HD static float sign(float c) { return c > 0.0f ? 1.0f : (c < 0.0f ? -1.0f : 0.0f); }
  GOPT_HD void reduce(const Tile& t, double* acc) const {
    const float b1_ = b1, c1_ = c1;
    const float* GOPT_RESTRICT g = t.g;
    const float* GOPT_RESTRICT m = t.s[0];
    const int64_t n = t.n;
    double kept = 0;
    GOPT_OMP(omp simd reduction(+ : kept))
    for (int64_t i = 0; i < n; ++i) {
      const float gi = g[i];
      const float s = sign(b1_ * m[i] + c1_ * gi);
      kept += (s * gi > 0.0f) ? 1.0 : 0.0;
    }
    acc[0] += kept;
  }
  GOPT_HD void finish(const Tensors& p, const double*, const double* sums, float* ex) const {
    ex[0] = cautious_factor(p.size, sums[0]);
  }
  GOPT_HD void operator()(const Tile& t) const {
    const float lr = static_cast<float>(t.sc[0]), decay = static_cast<float>(t.sc[1]);
    const float f = t.ex[0];
    const float b1_ = b1, c1_ = c1, b2_ = b2, c2_ = c2;
    const float* w_in = t.w_in;
    float* w_out = t.w_out;
    const float* GOPT_RESTRICT g = t.g;
    float* GOPT_RESTRICT m = t.s[0];
    const int64_t n = t.n;
    with_flag(t.sc[1] != 1.0, [&](auto D) {
      GOPT_OMP(omp simd)
      for (int64_t i = 0; i < n; ++i) {
        const float mi = m[i], gi = g[i];
        float s = sign(b1_ * mi + c1_ * gi);
        s = s * ((s * gi > 0.0f) ? f : 0.0f);
        float w0 = w_in[i];
        if constexpr (D.value) w0 = w0 * decay;
        w_out[i] = w0 - lr * s;
        m[i] = b2_ * mi + c2_ * gi;
      }
    });
  }
};

}  // namespace gluon_opt

GLUON_OPT_REGISTER_RULE(gopt_adam_cautious, gluon_opt::AdamCautiousRule);
GLUON_OPT_REGISTER_RULE(gopt_lion_cautious, gluon_opt::LionCautiousRule);
