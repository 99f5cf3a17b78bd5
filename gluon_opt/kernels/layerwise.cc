// Fused LAMB and LARS, as gluon_opt/optimizers/layerwise.py's references. Both need per-tensor
// norms: a first pass computes them (OpenMP over blocks, sums of squares in double precision),
// finish() turns them into the trust ratio, and a second pass applies the update, all in the
// same op call with no host synchronisation.
//
// The norms are where fused and reference differ: MXNet's nd.norm sums in float32 in its own
// order, these sum in double, so the two norms differ by an ulp or so; everything else is the
// reference's float32 arithmetic in its order.
#include "common.h"

namespace gluon_opt {

// ratio = num / den where both are > 0, else 1 (layerwise.py's _safe_ratio).
GOPT_HD inline float safe_ratio(float num, float den) {
  return (num > 0 && den > 0) ? num / den : 1.0f;
}

// LAMB:  m <- b1 m + (1 - b1) g;  v <- b2 v + (1 - b2) g^2
//        r = (m / bc1) / (sqrt(v / bc2) + eps)   (bias_correction; else m / (sqrt(v) + eps))
//        r <- r + wd w;  ratio = safe(clip(||w||, lo, hi), ||r||);  w <- w - (lr ratio) r
// Pass 1 updates m and v and sums w^2 and r^2; pass 2 recomputes r from the updated states
// (the same operations, so the same values) and writes w. The gradient is read once.
// attrs: beta1, beta2, epsilon, bias_correction, lower_bound, upper_bound (< 0: none).
// scalars: lr, wd, bc1, bc2.  states: mean, var.
struct LAMBRule : RuleBase, Moments {
  static constexpr int kScalars = 4;
  static constexpr int kReduce = 2;
  static constexpr int kDerived = 1;
  static constexpr bool kGradInUpdate = false;
  float lo, hi;
  bool bias_correction, has_lo, has_hi;
  explicit LAMBRule(const Attrs& a) : Moments(a, 0.9, 0.999, 1e-6) {
    bias_correction = attr_int(a, "bias_correction", 1) != 0;
    const double l = attr_double(a, "lower_bound", -1.0), h = attr_double(a, "upper_bound", -1.0);
    has_lo = l >= 0;
    has_hi = h >= 0;
    lo = static_cast<float>(l);
    hi = static_cast<float>(h);
  }
  bool supports(const Layout& l) const { return l.ns == 2; }

  // r for element i of a tile from the (updated) moments; the reference's operation order.
  template <bool kBC, bool kWD>
  GOPT_HD static inline float direction(float mi, float vi, float wi, float bc1, float bc2,
                                        float e, float wd) {
    float r;
    if constexpr (kBC) {
      r = (mi / bc1) / (std::sqrt(vi / bc2) + e);
    } else {
      r = mi / (std::sqrt(vi) + e);
    }
    if constexpr (kWD) r = r + wd * wi;
    return r;
  }

  GOPT_HD void reduce(const Tile& t, double* acc) const {
    const float wd = static_cast<float>(t.sc[1]);
    const float bc1 = static_cast<float>(t.sc[2]), bc2 = static_cast<float>(t.sc[3]);
    const float b1_ = b1, c1_ = c1, b2_ = b2, c2_ = c2, e_ = e;
    const float* GOPT_RESTRICT w = t.w_in;
    const float* GOPT_RESTRICT g = t.g;
    float* GOPT_RESTRICT m = t.s[0];
    float* GOPT_RESTRICT v = t.s[1];
    const int64_t n = t.n;
    double sw = 0, sr = 0;
    with_flag(bias_correction, [&](auto B) {
      with_flag(t.sc[1] != 0, [&](auto W) {
        GOPT_OMP(omp simd reduction(+ : sw, sr))
        for (int64_t i = 0; i < n; ++i) {
          const float gi = g[i], wi = w[i];
          const float mi = b1_ * m[i] + c1_ * gi;
          const float vi = b2_ * v[i] + c2_ * (gi * gi);
          m[i] = mi;
          v[i] = vi;
          const float r = direction<B.value, W.value>(mi, vi, wi, bc1, bc2, e_, wd);
          sw += static_cast<double>(wi) * wi;
          sr += static_cast<double>(r) * r;
        }
      });
    });
    acc[0] += sw;
    acc[1] += sr;
  }

  GOPT_HD void finish(const Tensors&, const double* sc, const double* sums, float* ex) const {
    float wn = sum_to_norm(sums[0]);
    if (has_lo || has_hi) {  // nd.clip(wn, lo or 0, hi or inf)
      const float l = has_lo ? lo : 0.0f, h = has_hi ? hi : INFINITY;
      wn = wn > h ? h : (wn < l ? l : wn);
    }
    ex[0] = static_cast<float>(sc[0]) * safe_ratio(wn, sum_to_norm(sums[1]));  // lr * ratio
  }

  GOPT_HD void operator()(const Tile& t) const {
    const float wd = static_cast<float>(t.sc[1]);
    const float bc1 = static_cast<float>(t.sc[2]), bc2 = static_cast<float>(t.sc[3]);
    const float coef = t.ex[0], e_ = e;
    const float* w_in = t.w_in;
    float* w_out = t.w_out;
    const float* GOPT_RESTRICT m = t.s[0];
    const float* GOPT_RESTRICT v = t.s[1];
    const int64_t n = t.n;
    with_flag(bias_correction, [&](auto B) {
      with_flag(t.sc[1] != 0, [&](auto W) {
        GOPT_OMP(omp simd)
        for (int64_t i = 0; i < n; ++i) {
          const float wi = w_in[i];
          w_out[i] = wi - coef * direction<B.value, W.value>(m[i], v[i], wi, bc1, bc2, e_, wd);
        }
      });
    });
  }
};

// LARS:  local = safe(eta ||w||, ||g|| + wd ||w|| + eps), 1 where ||g|| = 0
//        s = (lr local) (g + wd w);  b <- mom b + s;  w <- w - b   (w <- w - s without momentum)
// Pass 1 sums w^2 and g^2 (g rescaled and clipped); pass 2 applies the step.
// attrs: momentum, eta, epsilon. scalars: lr, wd. states: none or momentum.
struct LARSRule : RuleBase {
  static constexpr int kScalars = 2;
  static constexpr int kReduce = 2;
  static constexpr int kDerived = 1;
  float momentum, eta, eps;
  explicit LARSRule(const Attrs& a)
      : momentum(static_cast<float>(attr_double(a, "momentum", 0.0))),
        eta(static_cast<float>(attr_double(a, "eta", 0.001))),
        eps(static_cast<float>(attr_double(a, "epsilon", 0.0))) {}
  bool supports(const Layout& l) const { return l.ns == (momentum > 0 ? 1 : 0); }

  GOPT_HD void reduce(const Tile& t, double* acc) const {
    const float* GOPT_RESTRICT w = t.w_in;
    const float* GOPT_RESTRICT g = t.g;
    const int64_t n = t.n;
    double sw = 0, sg = 0;
    GOPT_OMP(omp simd reduction(+ : sw, sg))
    for (int64_t i = 0; i < n; ++i) {
      sw += static_cast<double>(w[i]) * w[i];
      sg += static_cast<double>(g[i]) * g[i];
    }
    acc[0] += sw;
    acc[1] += sg;
  }

  GOPT_HD void finish(const Tensors&, const double* sc, const double* sums, float* ex) const {
    const float wn = sum_to_norm(sums[0]), gn = sum_to_norm(sums[1]);
    const float wd = static_cast<float>(sc[1]);
    float local = safe_ratio(eta * wn, gn + wd * wn + eps);
    if (!(gn > 0)) local = 1.0f;
    ex[0] = static_cast<float>(sc[0]) * local;  // lr * local_lr
  }

  GOPT_HD void operator()(const Tile& t) const {
    const float wd = static_cast<float>(t.sc[1]), coef = t.ex[0], mom = momentum;
    const float* w_in = t.w_in;
    float* w_out = t.w_out;
    const float* GOPT_RESTRICT g = t.g;
    float* GOPT_RESTRICT b = t.s[0];
    const int64_t n = t.n;
    with_flag(t.sc[1] != 0, [&](auto W) {
      with_flag(b != nullptr, [&](auto M) {
        GOPT_OMP(omp simd)
        for (int64_t i = 0; i < n; ++i) {
          const float wi = w_in[i];
          float gi = g[i];
          if constexpr (W.value) gi = gi + wd * wi;
          float s = coef * gi;
          if constexpr (M.value) {
            s = mom * b[i] + s;
            b[i] = s;
          }
          w_out[i] = wi - s;
        }
      });
    });
  }
};

}  // namespace gluon_opt

GLUON_OPT_REGISTER_RULE(gopt_lamb, gluon_opt::LAMBRule);
GLUON_OPT_REGISTER_RULE(gopt_lars, gluon_opt::LARSRule);
