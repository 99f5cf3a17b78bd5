// Fused Schedule-Free updates, as optimizers/contrib/schedule_free.py's references. The state
// ``sums`` = (lr_max, weight_sum) is a small per-parameter tensor: finish() advances it once
// per tensor and derives c_t and a coefficient with the reference's float32 operations
// (advance_average); the loops then do, per element (y the stored weight):
//
// gopt_schedulefree_adamw: v <- b2 v + (1 - b2) g^2;  d = g / (sqrt(v / bc2) + eps) [+ wd y]
//                          y <- (y + c (z - y)) + (lr (b1 (1 - c) - 1)) d;  z <- z - lr d
//   attrs: beta1, beta2, epsilon, weight_lr_power. scalars: lr (after warmup; times
//   sqrt(bc2) with bias_correction='lr'), t^r, bc2 (1 with 'lr'), wd. states: z, var, sums.
// gopt_schedulefree_sgd:   d = g [+ wd y]
//                          y <- (y + c (z - y)) + (lr (b (1 - c) - 1)) d;  z <- z - lr d
//   attrs: momentum, weight_lr_power. scalars: lr (after warmup), t^r, wd. states: z, sums.
// gopt_schedulefree_wrap:  the "gradient" is s, the inner optimizer's step taken from a copy
//                          of y (rescale 1, no clipping): d = s - y
//                          y <- (y + c (z - y)) + (1 - b (1 - c)) d;  z <- z + d
//   attrs: momentum, weight_lr_power. scalars: lr (after warmup), t^r. states: z, sums.
#include "common.h"

namespace gluon_opt {

// sums = (lr_max, weight_sum) <- (max(lr_max, lr), weight_sum + t^r lr_max^p); returns c_t,
// 0 while no step has had a positive learning rate (the reference's nd.where).
GOPT_HD inline float advance_average(float* sums, float lr, double t_pow_r, float power) {
  const float lr_max = sums[0] > lr ? sums[0] : lr;                    // nd.maximum
  const float avg = static_cast<float>(t_pow_r) * pow_f32(lr_max, power);
  const float weight_sum = sums[1] + avg;
  sums[0] = lr_max;
  sums[1] = weight_sum;
  const float floor = 1e-38f;
  return weight_sum > 0 ? avg / (weight_sum > floor ? weight_sum : floor) : 0.0f;
}

struct ScheduleFreeAdamWRule : RuleBase, Moments {
  static constexpr int kScalars = 4;
  static constexpr int kDerived = 2;
  static constexpr unsigned kScalarStates = 1u << 2;
  float power;
  explicit ScheduleFreeAdamWRule(const Attrs& a)
      : Moments(a, 0.9, 0.999, 1e-8),
        power(static_cast<float>(attr_double(a, "weight_lr_power", 2.0))) {}
  bool supports(const Layout& l) const { return l.ns == 3; }
  GOPT_HD void finish(const Tensors& p, const double* sc, const double*, float* ex) const {
    const float lr = static_cast<float>(sc[0]);
    const float c = advance_average(p.s[2], lr, sc[1], power);
    ex[0] = c;
    ex[1] = lr * ((b1 * (1.0f - c)) - 1.0f);
  }
  GOPT_HD void operator()(const Tile& t) const {
    const float lr = static_cast<float>(t.sc[0]), bc2 = static_cast<float>(t.sc[2]);
    const float wd = static_cast<float>(t.sc[3]), c = t.ex[0], coef = t.ex[1];
    const float b2_ = b2, c2_ = c2, e_ = e;
    const float* w_in = t.w_in;
    float* w_out = t.w_out;
    const float* GOPT_RESTRICT g = t.g;
    float* GOPT_RESTRICT z = t.s[0];
    float* GOPT_RESTRICT v = t.s[1];
    const int64_t n = t.n;
    with_flag(t.sc[3] != 0, [&](auto W) {
      GOPT_OMP(omp simd)
      for (int64_t i = 0; i < n; ++i) {
        const float y = w_in[i], gi = g[i], zi = z[i];
        const float vi = b2_ * v[i] + c2_ * (gi * gi);
        v[i] = vi;
        float d = gi / (std::sqrt(vi / bc2) + e_);
        if constexpr (W.value) d = d + wd * y;
        w_out[i] = (y + c * (zi - y)) + coef * d;
        z[i] = zi - lr * d;
      }
    });
  }
};

struct ScheduleFreeSGDRule : RuleBase {
  static constexpr int kScalars = 3;
  static constexpr int kDerived = 2;
  static constexpr unsigned kScalarStates = 1u << 1;
  float b, power;
  explicit ScheduleFreeSGDRule(const Attrs& a) {
    b = static_cast<float>(attr_double(a, "momentum", 0.9));
    power = static_cast<float>(attr_double(a, "weight_lr_power", 2.0));
  }
  bool supports(const Layout& l) const { return l.ns == 2; }
  GOPT_HD void finish(const Tensors& p, const double* sc, const double*, float* ex) const {
    const float lr = static_cast<float>(sc[0]);
    const float c = advance_average(p.s[1], lr, sc[1], power);
    ex[0] = c;
    ex[1] = lr * ((b * (1.0f - c)) - 1.0f);
  }
  GOPT_HD void operator()(const Tile& t) const {
    const float lr = static_cast<float>(t.sc[0]), wd = static_cast<float>(t.sc[2]);
    const float c = t.ex[0], coef = t.ex[1];
    const float* w_in = t.w_in;
    float* w_out = t.w_out;
    const float* GOPT_RESTRICT g = t.g;
    float* GOPT_RESTRICT z = t.s[0];
    const int64_t n = t.n;
    with_flag(t.sc[2] != 0, [&](auto W) {
      GOPT_OMP(omp simd)
      for (int64_t i = 0; i < n; ++i) {
        const float y = w_in[i], zi = z[i];
        float d = g[i];
        if constexpr (W.value) d = d + wd * y;
        w_out[i] = (y + c * (zi - y)) + coef * d;
        z[i] = zi - lr * d;
      }
    });
  }
};

struct ScheduleFreeWrapRule : RuleBase {
  static constexpr int kScalars = 2;
  static constexpr int kDerived = 2;
  static constexpr unsigned kScalarStates = 1u << 1;
  float b, power;
  explicit ScheduleFreeWrapRule(const Attrs& a) {
    b = static_cast<float>(attr_double(a, "momentum", 0.9));
    power = static_cast<float>(attr_double(a, "weight_lr_power", 2.0));
  }
  bool supports(const Layout& l) const { return l.ns == 2; }
  GOPT_HD void finish(const Tensors& p, const double* sc, const double*, float* ex) const {
    const float c = advance_average(p.s[1], static_cast<float>(sc[0]), sc[1], power);
    ex[0] = c;
    ex[1] = 1.0f - (b * (1.0f - c));
  }
  GOPT_HD void operator()(const Tile& t) const {
    const float c = t.ex[0], coef = t.ex[1];
    const float* w_in = t.w_in;
    float* w_out = t.w_out;
    const float* GOPT_RESTRICT moved = t.g;
    float* GOPT_RESTRICT z = t.s[0];
    const int64_t n = t.n;
    GOPT_OMP(omp simd)
    for (int64_t i = 0; i < n; ++i) {
      const float y = w_in[i], zi = z[i];
      const float d = moved[i] - y;
      w_out[i] = (y + c * (zi - y)) + coef * d;
      z[i] = zi + d;
    }
  }
};

}  // namespace gluon_opt

GLUON_OPT_REGISTER_RULE(gopt_schedulefree_adamw, gluon_opt::ScheduleFreeAdamWRule);
GLUON_OPT_REGISTER_RULE(gopt_schedulefree_sgd, gluon_opt::ScheduleFreeSGDRule);
GLUON_OPT_REGISTER_RULE(gopt_schedulefree_wrap, gluon_opt::ScheduleFreeWrapRule);
