// Fused Prodigy, D-Adaptation Adam and DoG, as gluon_opt/optimizers/contrib/parameter_free.py's
// references. Their step scalars are sums over *every* tensor of the step, so one op call takes
// the whole step (Python hands all tensors in one call): a reduction pass over all tensors
// (OpenMP over blocks, per-block partial sums in double added in block order, so deterministic
// for any thread count), the new global scalars computed once, in double, and written into every
// tensor's copy of the ``scalars`` state, then the update pass. Nothing returns to the host in
// between.
//
// Calling convention: common.h's (weight, grad, states per tensor; n, ns, mp, rescale, clip, sc)
// with up to 5 states, the last being the ``scalars`` state (4 floats, its own shape), and two
// per-tensor scalars: lr, wd (each tensor's, with lr_mult/wd_mult and the schedule).
//
// Vectorisation: every loop runs 8 lanes wide (omp simd; the sums in double lanes). Run-time
// options (coupled or decoupled decay, beta1 = 0, the first step) are compile-time flags
// (with_flag), so no loop holds a test: GCC unswitches a loop on a loop-invariant test and
// vectorises only one copy (measured on commit a1c505d's pragmas: the wd = 0 copy, the default,
// stayed scalar). A tile's sums are taken in the simd lanes, an order fixed by the build and the
// tile's length, then added tile by tile and block by block in order: the same for any thread
// count.
//
// Precision: the element-wise work is the reference's float32 arithmetic; the sums are taken in
// double (the reference's nd.sum sums float32), and the scalar coefficients (d lr, d (1 - b1),
// ...) are computed in double and rounded once (the reference rounds each float32 product): the
// two paths differ by float32 ulps of the global scalars per step.
//
// CPU only (the reductions across tensors have no CUDA driver yet).
#include "common.h"

namespace gluon_opt {

constexpr int kPFMaxStates = 5;
constexpr int kPFScalars = 4;  // length of the ``scalars`` state

inline MXReturnValue pf_parse_attrs(const Attrs& a, int* num_in, int* num_out) {
  Layout l = layout(a);
  if (l.n < 1 || l.ns < 2 || l.ns > kPFMaxStates) {
    MX_ERROR_MSG << "gluon_opt parameter-free kernel: bad n/ns attributes";
    return mxnet::ext::MX_FAIL;
  }
  *num_in = l.n * l.per_tensor();
  *num_out = l.n;
  return mxnet::ext::MX_SUCCESS;
}

// every weight-shaped input has the weight's shape; the last state is the 4-float scalars
inline MXReturnValue pf_infer_shape(const Attrs& a, std::vector<std::vector<unsigned>>* in,
                                    std::vector<std::vector<unsigned>>* out) {
  Layout l = layout(a);
  for (int i = 0; i < l.n; ++i) {
    const int base = i * l.per_tensor();
    for (int k = 1; k < l.per_tensor() - 1; ++k) {
      if ((*in)[base + k] != (*in)[base]) {
        MX_ERROR_MSG << "gluon_opt kernel: tensor " << i << " input " << k
                     << " does not have its weight's shape";
        return mxnet::ext::MX_FAIL;
      }
    }
    const auto& sc = (*in)[base + l.per_tensor() - 1];
    if (sc.size() != 1 || sc[0] != kPFScalars) {
      MX_ERROR_MSG << "gluon_opt kernel: tensor " << i << " scalars state must have shape (4,)";
      return mxnet::ext::MX_FAIL;
    }
    (*out)[i] = (*in)[base];
  }
  return mxnet::ext::MX_SUCCESS;
}

struct PFTensor {
  float* w;
  const void* g;
  void* out;
  float* s[kPFMaxStates];
  int64_t size;
  double lr, wd;
};

// The shared driver: ``Alg`` gives reduce(tensor, i0, m, g, acc) (kSums per-tensor sums),
// finish(tensors, sums per tensor, scalars in/out), update_reads_grad(tensor) and
// update(tensor, i0, m, g, w_out).
template <class Alg>
MXReturnValue pf_forward(const Attrs& a, std::vector<MXTensor>* inputs,
                         std::vector<MXTensor>* outputs, const OpResource&) {
  const Layout l = layout(a);
  Alg alg(a);
  const GradPrep prep(a);
  const std::vector<double> sc = attr_doubles(a, "sc");
  if (static_cast<int64_t>(sc.size()) != 2LL * l.n || l.ns != Alg::kStates) {
    MX_ERROR_MSG << "gluon_opt parameter-free kernel: expected " << 2 * l.n
                 << " per-tensor scalars and " << Alg::kStates << " states";
    return mxnet::ext::MX_FAIL;
  }
  std::vector<PFTensor> ts(l.n);
  std::vector<Block> blocks;
  int64_t total = 0;
  for (int t = 0; t < l.n; ++t) {
    const int base = t * l.per_tensor();
    PFTensor& p = ts[t];
    p.w = static_cast<float*>((*inputs)[base].data_ptr);
    p.g = (*inputs)[base + 1].data_ptr;
    p.out = (*outputs)[t].data_ptr;
    for (int s = 0; s < kPFMaxStates; ++s)
      p.s[s] = s < l.ns ? static_cast<float*>((*inputs)[base + 2 + s].data_ptr) : nullptr;
    p.size = (*inputs)[base].size();
    p.lr = sc[2 * t];
    p.wd = sc[2 * t + 1];
    total += p.size;
    for (int64_t b = 0; b < p.size; b += kBlock)
      blocks.push_back({t, b, std::min(p.size, b + kBlock)});
  }
  const int64_t nblocks = static_cast<int64_t>(blocks.size());
  const int threads = total >= kParallelMin ? max_threads() : 1;
  const bool mp = l.mp != 0, direct = !mp && !prep.active();

  // the step's scalars: every tensor holds the same copy; the first one is read
  double scalars[kPFScalars];
  for (int k = 0; k < kPFScalars; ++k) scalars[k] = ts[0].s[l.ns - 1][k];
  alg.first = ts.data();
  alg.begin(scalars);

  constexpr int K = Alg::kSums;
  std::vector<double> partial(static_cast<size_t>(nblocks) * K, 0.0);
#pragma omp parallel for schedule(dynamic, 1) num_threads(threads) if (threads > 1)
  for (int64_t bi = 0; bi < nblocks; ++bi) {
    alignas(64) float gbuf[kTile];
    const Block blk = blocks[bi];
    const PFTensor& p = ts[blk.t];
    double* acc = partial.data() + bi * K;
    for (int64_t i0 = blk.begin; i0 < blk.end; i0 += kTile) {
      const int64_t m = std::min(kTile, blk.end - i0);
      alg.reduce(p, i0, m, load_grad(p.g, i0, m, mp, direct, prep, gbuf), acc);
    }
  }
  std::vector<double> sums(static_cast<size_t>(l.n) * K, 0.0);
  for (int64_t bi = 0; bi < nblocks; ++bi)
    for (int k = 0; k < K; ++k) sums[blocks[bi].t * K + k] += partial[bi * K + k];
  alg.finish(ts, sums, scalars);
  for (int t = 0; t < l.n; ++t)
    for (int k = 0; k < kPFScalars; ++k) ts[t].s[l.ns - 1][k] = static_cast<float>(scalars[k]);

#pragma omp parallel for schedule(dynamic, 1) num_threads(threads) if (threads > 1)
  for (int64_t bi = 0; bi < nblocks; ++bi) {
    alignas(64) float gbuf[kTile];
    const Block blk = blocks[bi];
    const PFTensor& p = ts[blk.t];
    for (int64_t i0 = blk.begin; i0 < blk.end; i0 += kTile) {
      const int64_t m = std::min(kTile, blk.end - i0);
      const float* g = alg.update_reads_grad(p) ? load_grad(p.g, i0, m, mp, direct, prep, gbuf)
                                                : nullptr;
      float* w_out = mp ? p.w + i0 : static_cast<float*>(p.out) + i0;
      alg.update(p, i0, m, g, w_out);
      if (mp) float_to_half(p.w + i0, static_cast<uint16_t*>(p.out) + i0, m);
    }
  }
  return mxnet::ext::MX_SUCCESS;
}

inline double bias_correction(bool on, double b1, double b2, double k) {
  return on ? std::sqrt(1.0 - std::pow(b2, k + 1)) / (1.0 - std::pow(b1, k + 1)) : 1.0;
}

// Prodigy. states: exp_avg m, exp_avg_sq v, s, p0, scalars (d, d_max, r, k).
// attrs: beta1, beta2, beta3, epsilon, d0, d_coef, growth_rate (< 0: unbounded), decouple,
// use_bias_correction, safeguard_warmup.
struct ProdigyAlg {
  static constexpr int kStates = 5;
  static constexpr int kSums = 2;  // <g, p0 - x>, sum |s|
  double b1, b2, b3, eps, d0, d_coef, growth;
  bool decouple, bias_corr, safeguard;
  double d, bc;      // the step's d (before its update) and bias correction
  float d_new_eps;   // d_new * eps, for the update pass
  float d_new;
  std::vector<float> step;  // per tensor: live * d lr bc
  explicit ProdigyAlg(const Attrs& a) {
    b1 = attr_double(a, "beta1", 0.9);
    b2 = attr_double(a, "beta2", 0.999);
    b3 = attr_double(a, "beta3", std::sqrt(b2));
    eps = attr_double(a, "epsilon", 1e-8);
    d0 = attr_double(a, "d0", 1e-6);
    d_coef = attr_double(a, "d_coef", 1.0);
    growth = attr_double(a, "growth_rate", -1.0);
    decouple = attr_int(a, "decouple", 1) != 0;
    bias_corr = attr_int(a, "use_bias_correction", 0) != 0;
    safeguard = attr_int(a, "safeguard_warmup", 0) != 0;
  }
  void begin(const double* sc) {
    d = sc[0];
    bc = bias_correction(bias_corr, b1, b2, sc[3]);
  }
  void reduce(const PFTensor& p, int64_t i0, int64_t n, const float* g_in, double* acc) const {
    const double dlr = d * p.lr * bc;
    const float wd = static_cast<float>(p.wd);
    const bool coupled = !decouple && p.wd != 0;
    const float cm = static_cast<float>(d * (1 - b1)), cv = static_cast<float>(d * d * (1 - b2));
    const float cs = static_cast<float>((d / d0) * (safeguard ? d : dlr));
    const float b1f = static_cast<float>(b1), b2f = static_cast<float>(b2),
                b3f = static_cast<float>(b3);
    const float* GOPT_RESTRICT x = p.w + i0;
    const float* GOPT_RESTRICT p0 = p.s[3] + i0;
    const float* GOPT_RESTRICT gp = g_in;
    float* GOPT_RESTRICT m = p.s[0] + i0;
    float* GOPT_RESTRICT v = p.s[1] + i0;
    float* GOPT_RESTRICT s = p.s[2] + i0;
    double dot = 0, l1 = 0;
    with_flag(coupled, [&](auto C) {
      GOPT_OMP(omp simd reduction(+ : dot, l1))
      for (int64_t i = 0; i < n; ++i) {
        float g = gp[i];
        if constexpr (C.value) g = g + wd * x[i];
        dot += static_cast<double>(g) * static_cast<double>(p0[i] - x[i]);
        m[i] = b1f * m[i] + cm * g;
        v[i] = b2f * v[i] + cv * (g * g);
        const float si = b3f * s[i] + cs * g;
        s[i] = si;
        l1 += std::fabs(static_cast<double>(si));
      }
    });
    acc[0] += (d / d0) * dlr * dot;
    acc[1] += l1;
  }
  void finish(const std::vector<PFTensor>& ts, const std::vector<double>& sums, double* sc) {
    double delta = 0, denom = 0;
    for (size_t t = 0; t < ts.size(); ++t) {
      delta += sums[t * kSums];
      denom += sums[t * kSums + 1];
    }
    const bool live = denom > 0;
    double dn = d;
    if (live) {
      const double numerator = b3 * sc[2] + delta;
      const double d_hat = d_coef * numerator / denom;
      double grown = (static_cast<float>(d) == static_cast<float>(d0)) ? std::max(d, d_hat) : d;
      const double d_max = std::max(sc[1], d_hat);
      dn = growth < 0 ? d_max : std::min(d_max, grown * growth);
      sc[0] = dn;
      sc[1] = d_max;
      sc[2] = numerator;
      sc[3] = sc[3] + 1;
    }
    d_new = static_cast<float>(dn);
    d_new_eps = static_cast<float>(dn * eps);
    step.resize(ts.size());
    for (size_t t = 0; t < ts.size(); ++t)
      step[t] = live ? static_cast<float>(d * ts[t].lr * bc) : 0.0f;
  }
  // only beta1 = 0 steps along g (with the coupled decay's wd x); m carries it otherwise
  bool update_reads_grad(const PFTensor& p) const { return b1 <= 0 && step_of(p) != 0.0f; }
  // which tensor: found from the pointer (the driver hands the tensor, not its index)
  void update(const PFTensor& p, int64_t i0, int64_t n, const float* g_in, float* w_out) const {
    const float st = step_of(p);
    if (st == 0.0f) {
      if (w_out != p.w + i0) std::memcpy(w_out, p.w + i0, n * sizeof(float));
      return;
    }
    const float decay = decouple ? static_cast<float>(st * p.wd) : 0.0f;
    const float wd = static_cast<float>(p.wd);
    const float* x = p.w + i0;  // w_out may be x itself (no restrict)
    const float* GOPT_RESTRICT m = p.s[0] + i0;
    const float* GOPT_RESTRICT v = p.s[1] + i0;
    const float dn = d_new, de = d_new_eps;
    with_flag(!decouple && p.wd != 0, [&](auto C) {
      with_flag(decay != 0.0f, [&](auto D) {
        with_flag(b1 > 0, [&](auto M) {
          GOPT_OMP(omp simd)
          for (int64_t i = 0; i < n; ++i) {
            float xi = x[i];
            float dir;
            if constexpr (M.value) {
              dir = m[i];
            } else {
              float g = g_in[i];
              if constexpr (C.value) g = g + wd * xi;
              dir = dn * g;
            }
            if constexpr (D.value) xi = xi - decay * xi;
            w_out[i] = xi - st * (dir / (std::sqrt(v[i]) + de));
          }
        });
      });
    });
  }
  const PFTensor* first = nullptr;
  float step_of(const PFTensor& p) const { return step[&p - first]; }
};

// D-Adaptation Adam. states: exp_avg m, exp_avg_sq v, s, scalars (d, r, k, -).
// attrs: beta1, beta2, epsilon, growth_rate (< 0: unbounded), decouple, use_bias_correction.
// Two passes, although the weight update reads none of the step's new scalars (m carries the old
// d): it depends on whether the step is live (sum |s| > 0), and a step whose sum is NaN (a NaN
// gradient anywhere) or 0 leaves every weight as it is, which one pass would know only after
// writing them. (One pass measured 25-30% faster once both vectorised.)
struct DAdaptAdamAlg {
  static constexpr int kStates = 4;
  static constexpr int kSums = 2;  // <g, s / (sqrt(v) + eps)>, sum |s|
  double b1, b2, sb2, eps, growth, d, bc;
  bool decouple, bias_corr, live = false;
  explicit DAdaptAdamAlg(const Attrs& a) {
    b1 = attr_double(a, "beta1", 0.9);
    b2 = attr_double(a, "beta2", 0.999);
    sb2 = std::sqrt(b2);
    eps = attr_double(a, "epsilon", 1e-8);
    growth = attr_double(a, "growth_rate", -1.0);
    decouple = attr_int(a, "decouple", 0) != 0;
    bias_corr = attr_int(a, "use_bias_correction", 0) != 0;
  }
  void begin(const double* sc) {
    d = sc[0];
    bc = bias_correction(bias_corr, b1, b2, sc[2]);
  }
  void reduce(const PFTensor& p, int64_t i0, int64_t n, const float* g_in, double* acc) const {
    const double dlr = d * p.lr * bc;
    const float wd = static_cast<float>(p.wd);
    const bool coupled = !decouple && p.wd != 0;
    const float cm = static_cast<float>(dlr * (1 - b1)), cs = static_cast<float>(dlr * (1 - sb2));
    const float b1f = static_cast<float>(b1), b2f = static_cast<float>(b2),
                c2 = static_cast<float>(1 - b2), sb2f = static_cast<float>(sb2),
                ef = static_cast<float>(eps);
    const float* GOPT_RESTRICT x = p.w + i0;
    const float* GOPT_RESTRICT gp = g_in;
    float* GOPT_RESTRICT m = p.s[0] + i0;
    float* GOPT_RESTRICT v = p.s[1] + i0;
    float* GOPT_RESTRICT s = p.s[2] + i0;
    double dot = 0, l1 = 0;
    with_flag(coupled, [&](auto C) {
      GOPT_OMP(omp simd reduction(+ : dot, l1))
      for (int64_t i = 0; i < n; ++i) {
        float g = gp[i];
        if constexpr (C.value) g = g + wd * x[i];
        const float vi = v[i], si = s[i];
        dot += static_cast<double>(g) * static_cast<double>(si / (std::sqrt(vi) + ef));
        m[i] = b1f * m[i] + cm * g;
        v[i] = b2f * vi + c2 * (g * g);
        const float sn = sb2f * si + cs * g;
        s[i] = sn;
        l1 += std::fabs(static_cast<double>(sn));
      }
    });
    acc[0] += dlr * dot;
    acc[1] += l1;
  }
  std::vector<float> decay;  // per tensor: d lr bc wd (decoupled)
  const PFTensor* first = nullptr;
  void finish(const std::vector<PFTensor>& ts, const std::vector<double>& sums, double* sc) {
    double acc = 0, l1 = 0;
    for (size_t t = 0; t < ts.size(); ++t) {
      acc += sums[t * kSums];
      l1 += sums[t * kSums + 1];
    }
    live = l1 > 0;
    if (live) {
      const double numerator = sb2 * sc[1] + (1 - sb2) * acc;
      const double d_hat = numerator / ((1 - sb2) * l1);
      sc[0] = std::max(d, growth < 0 ? d_hat : std::min(d_hat, d * growth));
      sc[1] = numerator;
      sc[2] = sc[2] + 1;
    }
    decay.resize(ts.size());
    for (size_t t = 0; t < ts.size(); ++t)
      decay[t] = decouple ? static_cast<float>(d * ts[t].lr * bc * ts[t].wd) : 0.0f;
  }
  bool update_reads_grad(const PFTensor&) const { return false; }
  void update(const PFTensor& p, int64_t i0, int64_t n, const float*, float* w_out) const {
    if (!live) {
      if (w_out != p.w + i0) std::memcpy(w_out, p.w + i0, n * sizeof(float));
      return;
    }
    const float dc = decay[&p - first], ef = static_cast<float>(eps);
    const float* x = p.w + i0;  // w_out may be x itself (no restrict)
    const float* GOPT_RESTRICT m = p.s[0] + i0;
    const float* GOPT_RESTRICT v = p.s[1] + i0;
    with_flag(dc != 0.0f, [&](auto D) {
      GOPT_OMP(omp simd)
      for (int64_t i = 0; i < n; ++i) {
        float xi = x[i];
        if constexpr (D.value) xi = xi - dc * xi;
        w_out[i] = xi - m[i] / (std::sqrt(v[i]) + ef);
      }
    });
  }
};

// DoG. states: x0, scalars (r_bar, G, k, -). attrs: reps_rel, epsilon.
struct DoGAlg {
  static constexpr int kStates = 2;
  static constexpr int kSums = 3;  // ||x0||^2, ||x - x0||^2, ||g||^2
  double reps_rel, eps, eta = 0;
  bool first_step = false;  // ||x0|| is needed only at the first step (k = 0)
  const PFTensor* first = nullptr;
  explicit DoGAlg(const Attrs& a) {
    reps_rel = attr_double(a, "reps_rel", 1e-6);
    eps = attr_double(a, "epsilon", 1e-8);
  }
  void begin(const double* sc) { first_step = sc[2] == 0; }
  void reduce(const PFTensor& p, int64_t i0, int64_t n, const float* g_in, double* acc) const {
    const float wd = static_cast<float>(p.wd);
    const float* GOPT_RESTRICT x = p.w + i0;
    const float* GOPT_RESTRICT x0 = p.s[0] + i0;
    const float* GOPT_RESTRICT gp = g_in;
    double a0 = 0, a1 = 0, a2 = 0;
    with_flag(p.wd != 0, [&](auto W) {
      with_flag(first_step, [&](auto F) {
        GOPT_OMP(omp simd reduction(+ : a0, a1, a2))
        for (int64_t i = 0; i < n; ++i) {
          float g = gp[i];
          if constexpr (W.value) g = g + wd * x[i];
          const float dx = x[i] - x0[i];
          if constexpr (F.value) a0 += static_cast<double>(x0[i]) * x0[i];
          a1 += static_cast<double>(dx) * dx;
          a2 += static_cast<double>(g) * g;
        }
      });
    });
    acc[0] += a0;
    acc[1] += a1;
    acc[2] += a2;
  }
  void finish(const std::vector<PFTensor>& ts, const std::vector<double>& sums, double* sc) {
    double x0sq = 0, dist = 0, gsq = 0;
    for (size_t t = 0; t < ts.size(); ++t) {
      x0sq += sums[t * kSums];
      dist += sums[t * kSums + 1];
      gsq += sums[t * kSums + 2];
    }
    const double r0 = sc[2] == 0 ? reps_rel * (1 + std::sqrt(x0sq)) : sc[0];
    sc[0] = std::max(r0, std::sqrt(dist));
    sc[1] = sc[1] + gsq;
    sc[2] = sc[2] + 1;
    eta = sc[0] / std::sqrt(sc[1] + eps);
  }
  bool update_reads_grad(const PFTensor&) const { return true; }
  void update(const PFTensor& p, int64_t i0, int64_t n, const float* g_in, float* w_out) const {
    const float c = static_cast<float>(p.lr * eta), wd = static_cast<float>(p.wd);
    const float* x = p.w + i0;  // w_out may be x itself (no restrict)
    const float* GOPT_RESTRICT gp = g_in;
    with_flag(p.wd != 0, [&](auto W) {
      GOPT_OMP(omp simd)
      for (int64_t i = 0; i < n; ++i) {
        const float xi = x[i];
        float g = gp[i];
        if constexpr (W.value) g = g + wd * xi;
        w_out[i] = xi - c * g;
      }
    });
  }
};

// The algorithms find a tensor's per-tensor values by its position in the driver's vector.
template <class Alg>
MXReturnValue pf_entry(const Attrs& a, std::vector<MXTensor>* inputs,
                       std::vector<MXTensor>* outputs, const OpResource& res) {
  return pf_forward<Alg>(a, inputs, outputs, res);
}

}  // namespace gluon_opt

#define GLUON_OPT_REGISTER_PF(OpName, Alg)                    \
  REGISTER_OP(OpName)                                         \
      .setParseAttrs(gluon_opt::pf_parse_attrs)               \
      .setInferType(gluon_opt::infer_type)                    \
      .setInferShape(gluon_opt::pf_infer_shape)               \
      .setMutateInputs(gluon_opt::mutate_inputs)              \
      .setForward(gluon_opt::pf_entry<Alg>, "cpu")

GLUON_OPT_REGISTER_PF(gopt_prodigy, gluon_opt::ProdigyAlg);
GLUON_OPT_REGISTER_PF(gopt_dadapt_adam, gluon_opt::DAdaptAdamAlg);
GLUON_OPT_REGISTER_PF(gopt_dog, gluon_opt::DoGAlg);
