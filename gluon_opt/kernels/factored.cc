// Fused Adafactor, as gluon_opt/optimizers/factored.py's reference (HuggingFace's conventions):
//
//   sq = g^2 + eps1;   alpha = lr rho_t max(eps2, RMS(w))    (lr rho_t without scale_parameter)
//   matrices (ndim >= 2: B matrices of R x C over the last two axes; states row: B x R and
//   col: B x C):
//     row <- b2t row + (1 - b2t) mean_c(sq);   col <- b2t col + (1 - b2t) mean_r(sq)
//     u = (g * rsqrt(row / mean_r(row))) * rsqrt(col)
//   vectors:  v <- b2t v + (1 - b2t) sq;   u = g * rsqrt(v)
//   u <- alpha * (u / max(RMS(u) / clip_threshold, 1))
//   m <- b1 m + (1 - b1) u;  u <- m                                    (with beta1)
//   w <- w (1 - wd alpha) - u                                          (the product only if wd)
//
// One op, gopt_adafactor, takes both layouts, one per call: Python groups a step's tensors by
// their number of states, factored ns = 2 and vectors ns = 1 (each + 1 with beta1), and the
// weight's rank must agree (infer_shape). Vectors are an ordinary common.h rule with a
// reduction pass (as LAMB). Matrices have states that are not weight-shaped and need sums along
// rows and columns before the per-tensor RMS, so they have their own driver (below), built
// from common.h's pieces (attributes, gradient loading and preprocessing, float16 masters).
//
// The factored driver's passes (RMS(w) and RMS(u) are per tensor, so every element's update
// waits for a whole read of its tensor): 1. row and column sums, the states, sum w^2; 2. sum
// u^2; 3. the update. Where it can, less: tensors of small matrices (3 x 3 convolution kernels)
// and of 1 x 1 matrices hold whole matrices per tile, so pass 1 finishes their states tile by
// tile, computes u and its sum of squares there and keeps u for pass 3 (the saved updates),
// which then reads w and u only; larger matrices get their column factors rsqrt(col) once per
// matrix, not once per element. The passes run group after group of tensors (Group: a few MiB
// of arrays, or one larger tensor), so what passes 2 and 3 read again is still in the
// last-level cache. 3 x 3 matrices, whose 3-element rows and columns no compiler vectorises,
// have an AVX2 path (sums33, update33) doing the same operations on eight matrices at a time.
// Measured on ResNet-50's shapes (2 cores, gluon-opt bench): 70.8 ms per step before these,
// 48.6-60.9 after (five runs). The saved updates live in two buffers per calling thread, kept
// between calls (for ResNet-50, 2 x 9.4 MB: its largest 3 x 3 tensor).
//
// attrs: epsilon1, epsilon2, clip_threshold, momentum (0/1: beta1 given), beta1,
//        scale_parameter (0/1).
// scalars: lr rho_t, b2t, wd, 1 - wd lr rho_t (the decay factor without scale_parameter).
//          Python computes them in double precision as the reference does.
//
// Precision: every element-wise operation is the reference's float32 operation in its order.
// The reductions differ: the means (MXNet: float32 Kahan sums, nearly always the correctly
// rounded sum) are double sums rounded to float32 and divided as MXNet divides; the norms
// behind RMS(w) and RMS(u) (MXNet's nd.norm: a float32 scaled sum of squares in sequence) are
// double sums. The norms are the difference that matters: nd.norm's float32 error grows with
// the tensor (measured 2e-7 relative at 1025 elements, 1.5e-5 at 147456) and carries into
// alpha and the clip divisor, so into every element's step: over 25 steps the fused weights
// differ from the reference's by up to 7.6e-7 of the tensor's largest magnitude, the momentum
// by up to 1.1e-5 (tests/test_fused.py, NORM_SCALED). The means agree to an ulp.
#include "common.h"

#include <limits>

#if defined(__AVX2__)
#include <immintrin.h>
#endif

namespace gluon_opt {

// What both layouts share: the hyperparameters, the per-tensor step size, decay factor and
// clip divisor from the sums of squares, and the last steps of every element.
struct AdafactorParams {
  float eps1, eps2, clip, b1, c1;
  bool momentum, scale;
  explicit AdafactorParams(const Attrs& a) {
    const double beta1 = attr_double(a, "beta1", 0.0);
    eps1 = static_cast<float>(attr_double(a, "epsilon1", 1e-30));
    eps2 = static_cast<float>(attr_double(a, "epsilon2", 1e-3));
    clip = static_cast<float>(attr_double(a, "clip_threshold", 1.0));
    b1 = static_cast<float>(beta1);
    c1 = static_cast<float>(1.0 - beta1);
    momentum = attr_int(a, "momentum", 0) != 0;
    scale = attr_int(a, "scale_parameter", 1) != 0;
  }

  // ex = {alpha, decay, clip divisor} of a tensor of n elements from its scalars and the sums
  // of w^2 and u^2. RMS(x) = nd.norm(x) / sqrt(n), the scalar rounded to float32 as MXNet's
  // scalar ops do.
  void derive(const double* sc, double sum_w2, double sum_u2, int64_t n, float* ex) const {
    const float root_n = static_cast<float>(std::sqrt(static_cast<double>(n)));
    float alpha = static_cast<float>(sc[0]), decay = static_cast<float>(sc[3]);
    if (scale) {  // alpha is then a float32 NDArray: alpha * max(RMS(w), eps2), 1 - wd * alpha
      const float rms_w = sum_to_norm(sum_w2) / root_n;
      alpha = alpha * (rms_w > eps2 ? rms_w : eps2);
      decay = 1.0f - alpha * static_cast<float>(sc[2]);
    }
    const float ratio = (sum_to_norm(sum_u2) / root_n) / clip;
    ex[0] = alpha;
    ex[1] = decay;
    ex[2] = ratio > 1.0f ? ratio : 1.0f;
  }

  // From the unclipped update u of element i to its new weight (and momentum m[i]).
  template <bool kMomentum, bool kDecay>
  static inline float apply(float u, float w, float* m, int64_t i, float alpha, float decay,
                            float d, float b1, float c1) {
    u = alpha * (u / d);
    if constexpr (kMomentum) {
      u = b1 * m[i] + c1 * u;
      m[i] = u;
    }
    if constexpr (kDecay) w = w * decay;
    return w - u;
  }

  template <class F>
  void with_options(const double* sc, F&& f) const {
    with_flag(momentum, [&](auto M) { with_flag(sc[2] != 0, [&](auto D) { f(M, D); }); });
  }
};

// Vectors: full second moment, a common.h rule. Pass 1 updates v and sums w^2 and u^2; pass 2
// recomputes u from the updated v (the same operations, so the same values) and writes w.
// states: v (, m).
struct AdafactorVectorRule : RuleBase {
  static constexpr int kScalars = 4;
  static constexpr int kReduce = 2;
  static constexpr int kDerived = 3;
  AdafactorParams p;
  explicit AdafactorVectorRule(const Attrs& a) : p(a) {}
  bool supports(const Layout& l) const { return l.ns == 1 + p.momentum; }

  void reduce(const Tile& t, double* acc) const {
    const float b2 = static_cast<float>(t.sc[1]), c2 = static_cast<float>(1.0 - t.sc[1]);
    const float e1 = p.eps1;
    const float* __restrict w = t.w_in;
    const float* __restrict g = t.g;
    float* __restrict v = t.s[0];
    const int64_t n = t.n;
    double sw = 0, su = 0;
    with_flag(p.scale, [&](auto S) {
#pragma omp simd reduction(+ : sw, su)
      for (int64_t i = 0; i < n; ++i) {
        const float gi = g[i];
        const float vi = b2 * v[i] + c2 * (gi * gi + e1);
        v[i] = vi;
        const float u = gi * (1.0f / std::sqrt(vi));
        su += static_cast<double>(u) * u;
        if constexpr (S.value) sw += static_cast<double>(w[i]) * w[i];
      }
    });
    acc[0] += sw;
    acc[1] += su;
  }

  void finish(const Tensors& tensor, const double* sc, const double* sums, float* ex) const {
    p.derive(sc, sums[0], sums[1], tensor.size, ex);
  }

  void operator()(const Tile& t) const {
    const float alpha = t.ex[0], decay = t.ex[1], d = t.ex[2], b1 = p.b1, c1 = p.c1;
    const float* w_in = t.w_in;
    float* w_out = t.w_out;
    const float* __restrict g = t.g;
    const float* __restrict v = t.s[0];
    float* __restrict m = t.s[1];
    const int64_t n = t.n;
    p.with_options(t.sc, [&](auto M, auto D) {
#pragma omp simd
      for (int64_t i = 0; i < n; ++i) {
        const float u = g[i] * (1.0f / std::sqrt(v[i]));
        w_out[i] = AdafactorParams::apply<M.value, D.value>(u, w_in[i], m, i, alpha, decay, d,
                                                            b1, c1);
      }
    });
  }
};

// ---- matrices: the factored driver ----------------------------------------------------------

// One factored tensor viewed as B matrices of R x C, i.e. B R rows ("q" = b R + r) of C.
struct Factored {
  float* w;
  const void* g;
  void* out;
  float* row;  // B x R
  float* col;  // B x C
  float* m;    // weight-shaped, or null
  int64_t B, R, C, size;
  const double* sc;
  float* row_mean;  // B: the mean of each matrix's updated row state (the row if R = 1)
  float ex[3];      // alpha, decay, clip divisor (AdafactorParams::derive)
  float* col_factor;  // B x C: rsqrt(col) once the column states are final (not tiles_final)
  float* u_saved;   // tiles_final tensors: their unclipped update from pass 1 (or null)
  int64_t u_offset; // its offset in the group's buffer (make_groups)
};

// A work item: rows [q0, q1) of one tensor, either whole matrices (part < 0: the column sums
// are complete within the block) or a chunk of one large matrix (its column sums are partial
// and go to parts[part .. part + C), added up in chunk order afterwards).
struct RowBlock {
  int t;
  int64_t q0, q1, part;
};

// A large matrix cut into chunks (the chunks' partial column sums lie one after the other).
struct SplitMatrix {
  int t;
  int64_t b, part, chunks;
};

// Tensors [t0, t1), their blocks [k0, k1) and split matrices [s0, s1), whose three passes run
// one after the other before the next group's: a group's arrays (at most kGroupBytes, or one
// larger tensor) are still in the last-level cache when passes 2 and 3 read them again, so
// those passes cost little memory traffic.
//
// Pass 1 also keeps the unclipped update of the group's tiles_final tensors (small and 1 x 1
// matrices, whose updates are final in pass 1) in a buffer of `saved` floats, which pass 3
// reads back (still in cache) instead of computing it again from the gradient and states.
struct Group {
  int t0, t1;
  int64_t k0, k1, s0, s1;
  int64_t saved;
  bool final;  // every tensor tiles_final: no pass 2
};
// The saved updates of one group at most (floats: 64 MiB); past it, pass 3 computes them anew
// from the gradient and the states. GLUON_OPT_ADAFACTOR_SAVED (floats) sets another bound: the
// tests set 0 to run that path too.
constexpr int64_t kMaxSaved = 16 << 20;
inline int64_t max_saved() {
  const char* env = std::getenv("GLUON_OPT_ADAFACTOR_SAVED");
  return env ? std::atoll(env) : kMaxSaved;
}
constexpr int64_t kGroupBytes = 4 << 20;

// Chunks per large matrix at most: enough work items for the cores, while the partial column
// sums (chunks x C doubles) stay small.
constexpr int64_t kMaxChunks = 64;

// Small matrices (R > 1, R C <= kSmallMatrix: 3 x 3, 5 x 5, 7 x 7 convolution kernels) run
// whole matrices per tile (small_sums, small_update): every loop goes over the tile's batch of
// matrices, with no per-matrix work items, buffers or reductions.
constexpr int64_t kSmallMatrix = 64;
inline bool is_small(const Factored& p) { return p.R > 1 && p.R * p.C <= kSmallMatrix; }

// Whether pass 1 finishes every state a tile's update needs within the tile (small and 1 x 1
// matrices: their tiles hold whole matrices). Pass 1 then also sums u^2 of the tile while it is
// in cache, and pass 2 skips the tensor.
inline bool tiles_final(const Factored& p) { return is_small(p) || (p.R == 1 && p.C == 1); }

// Small matrices per tile: a multiple of 8 (the AVX2 3 x 3 functions' batch) where it can.
inline int64_t small_per_tile(const Factored& p) {
  const int64_t per = kTile / (p.R * p.C);
  return per >= 8 ? per - per % 8 : per;
}

// Calls f(q, rows, c0, cols) for tiles covering rows [q0, q1) of p: several whole rows when a
// row fits in a tile (whole matrices for small ones), else one row cut into tiles. A tile's
// elements are contiguous, from q C + c0.
template <class F>
inline void for_each_tile(const Factored& p, int64_t q0, int64_t q1, F&& f) {
  if (p.C <= kTile) {
    const int64_t rows = is_small(p) ? small_per_tile(p) * p.R : kTile / p.C;
    for (int64_t q = q0; q < q1; q += rows) f(q, std::min(rows, q1 - q), int64_t{0}, p.C);
  } else {
    for (int64_t q = q0; q < q1; ++q)
      for (int64_t c = 0; c < p.C; c += kTile) f(q, int64_t{1}, c, std::min(kTile, p.C - c));
  }
}

// f(n) with n a compile-time constant for rows of 3 elements (3 x 3 convolution kernels, a
// large share of a CNN's weights: their per-row loops then unroll), else the run-time n.
template <class F>
inline void with_row_length(int64_t n, F&& f) {
  if (n == 3) f(std::integral_constant<int64_t, 3>{}); else f(n);
}

// f(R, C) with compile-time 3, 3 for 3 x 3 matrices (their loops over a matrix then unroll),
// else the run-time R, C.
template <class F>
inline void with_matrix_shape(int64_t R, int64_t C, F&& f) {
  if (R == 3 && C == 3)
    f(std::integral_constant<int64_t, 3>{}, std::integral_constant<int64_t, 3>{});
  else
    f(R, C);
}

// The mean of n float32 values as nd.mean: the sum rounded to float32, divided in float32.
inline float mean_of(double sum, int64_t n) {
  return static_cast<float>(sum) / static_cast<float>(n);
}

// The sum of x[i]^2 in double.
inline double sum_squares(const float* __restrict x, int64_t n) {
  double s = 0;
#pragma omp simd reduction(+ : s)
  for (int64_t i = 0; i < n; ++i) s += static_cast<double>(x[i]) * x[i];
  return s;
}

#if defined(__AVX2__)
// ---- 3 x 3 matrices with AVX2: eight matrices (72 floats) at a time -------------------------
//
// ResNet-style 3 x 3 convolution kernels are about half of a CNN's weights. Their rows and
// columns are 3 elements long, which no compiler vectorises (the loops above run them one
// matrix at a time); these functions do the same operations, in the same order, on 8 lanes:
// load3 splits 24 consecutive floats into their three residues mod 3, store3 joins them again.

// x_c[l] = p[3 l + c] for 24 floats from p (x from a, b, c = p[0, 8), p[8, 16), p[16, 24)).
inline void split3(__m256 a, __m256 b, __m256 c, __m256* x0, __m256* x1, __m256* x2) {
  const __m256 t0 = _mm256_blend_ps(_mm256_blend_ps(a, b, 0x92), c, 0x24);
  const __m256 t1 = _mm256_blend_ps(_mm256_blend_ps(a, b, 0x24), c, 0x49);
  const __m256 t2 = _mm256_blend_ps(_mm256_blend_ps(a, b, 0x49), c, 0x92);
  *x0 = _mm256_permutevar8x32_ps(t0, _mm256_setr_epi32(0, 3, 6, 1, 4, 7, 2, 5));
  *x1 = _mm256_permutevar8x32_ps(t1, _mm256_setr_epi32(1, 4, 7, 2, 5, 0, 3, 6));
  *x2 = _mm256_permutevar8x32_ps(t2, _mm256_setr_epi32(2, 5, 0, 3, 6, 1, 4, 7));
}

// The inverse of split3: a, b, c such that p[3 l + c] = x_c[l].
inline void join3(__m256 x0, __m256 x1, __m256 x2, __m256* a, __m256* b, __m256* c) {
  const __m256 t0 = _mm256_permutevar8x32_ps(x0, _mm256_setr_epi32(0, 3, 6, 1, 4, 7, 2, 5));
  const __m256 t1 = _mm256_permutevar8x32_ps(x1, _mm256_setr_epi32(5, 0, 3, 6, 1, 4, 7, 2));
  const __m256 t2 = _mm256_permutevar8x32_ps(x2, _mm256_setr_epi32(2, 5, 0, 3, 6, 1, 4, 7));
  *a = _mm256_blend_ps(_mm256_blend_ps(t0, t1, 0x92), t2, 0x24);
  *b = _mm256_blend_ps(_mm256_blend_ps(t0, t1, 0x24), t2, 0x49);
  *c = _mm256_blend_ps(_mm256_blend_ps(t0, t1, 0x49), t2, 0x92);
}

// join3(x, x, x) in three permutes: each lane of x three times, in order.
inline void repeat3(__m256 x, __m256* a, __m256* b, __m256* c) {
  *a = _mm256_permutevar8x32_ps(x, _mm256_setr_epi32(0, 0, 0, 1, 1, 1, 2, 2));
  *b = _mm256_permutevar8x32_ps(x, _mm256_setr_epi32(2, 3, 3, 3, 4, 4, 4, 5));
  *c = _mm256_permutevar8x32_ps(x, _mm256_setr_epi32(5, 5, 6, 6, 6, 7, 7, 7));
}

inline void load3(const float* p, __m256 x[3]) {
  split3(_mm256_loadu_ps(p), _mm256_loadu_ps(p + 8), _mm256_loadu_ps(p + 16), &x[0], &x[1],
         &x[2]);
}

inline void store3(float* p, const __m256 x[3]) {
  __m256 a, b, c;
  join3(x[0], x[1], x[2], &a, &b, &c);
  _mm256_storeu_ps(p, a);
  _mm256_storeu_ps(p + 8, b);
  _mm256_storeu_ps(p + 16, c);
}

// mean_of(((double) x + y) + z, 3) per lane: the sum in double, rounded to float, / 3.
inline __m256 mean3(__m256 x, __m256 y, __m256 z) {
  const auto half = [](__m128 a, __m128 b, __m128 c) {
    return _mm256_cvtpd_ps(_mm256_add_pd(_mm256_add_pd(_mm256_cvtps_pd(a), _mm256_cvtps_pd(b)),
                                         _mm256_cvtps_pd(c)));
  };
  const __m128 lo = half(_mm256_castps256_ps128(x), _mm256_castps256_ps128(y),
                         _mm256_castps256_ps128(z));
  const __m128 hi = half(_mm256_extractf128_ps(x, 1), _mm256_extractf128_ps(y, 1),
                         _mm256_extractf128_ps(z, 1));
  return _mm256_div_ps(_mm256_set_m128(hi, lo), _mm256_set1_ps(3.0f));
}

// s + x^2 per lane in double (4 lanes of s per half of x).
inline void add_squares(__m256 x, __m256d* s) {
  const __m256d lo = _mm256_cvtps_pd(_mm256_castps256_ps128(x));
  const __m256d hi = _mm256_cvtps_pd(_mm256_extractf128_ps(x, 1));
  s[0] = _mm256_add_pd(s[0], _mm256_mul_pd(lo, lo));
  s[1] = _mm256_add_pd(s[1], _mm256_mul_pd(hi, hi));
}

inline double horizontal_sum(const __m256d* s) {
  alignas(32) double v[4];
  _mm256_store_pd(v, _mm256_add_pd(s[0], s[1]));
  return (v[0] + v[1]) + (v[2] + v[3]);
}
#endif

struct FactoredDriver {
  const AdafactorParams par;
  const GradPrep prep;
  const bool mp, direct;
  std::vector<Factored> tensors;
  std::vector<RowBlock> blocks;
  std::vector<SplitMatrix> splits;
  std::vector<double> parts;       // partial column sums of the split matrices
  std::vector<double> block_w2;  // per block: sum w^2 (pass 1)
  std::vector<double> block_u2;  // per block: sum u^2 (pass 1 for tiles_final, else pass 2)
  std::vector<float> row_means;
  std::vector<float> col_factors;
  std::vector<Group> groups;
  int threads;

  FactoredDriver(const Attrs& a, const Layout& l)
      : par(a), prep(a), mp(l.mp != 0), direct(l.mp == 0 && !prep.active()) {}

  const float* grad(const Factored& p, int64_t i0, int64_t n, float* gbuf) const {
    return load_grad(p.g, i0, n, mp, direct, prep, gbuf);
  }

  void plan(const Layout& l, const std::vector<MXTensor>& in, std::vector<MXTensor>* out,
            const std::vector<double>& sc) {
    tensors.resize(l.n);
    int64_t total = 0, nmat = 0;
    for (int t = 0; t < l.n; ++t) {
      const int base = t * l.per_tensor();
      const std::vector<int64_t>& shape = in[base].shape;
      Factored& p = tensors[t];
      p.w = static_cast<float*>(in[base].data_ptr);
      p.g = in[base + 1].data_ptr;
      p.out = (*out)[t].data_ptr;
      p.row = static_cast<float*>(in[base + 2].data_ptr);
      p.col = static_cast<float*>(in[base + 3].data_ptr);
      p.m = par.momentum ? static_cast<float*>(in[base + 4].data_ptr) : nullptr;
      p.R = shape[shape.size() - 2];
      p.C = shape[shape.size() - 1];
      p.size = in[base].size();
      p.B = p.R * p.C > 0 ? p.size / (p.R * p.C) : 0;
      p.sc = sc.data() + t * 4;
      total += p.size;
      if (p.R > 1) nmat += p.B;
    }
    row_means.resize(std::max<int64_t>(nmat, 1));
    int64_t ncf = 0;
    for (const Factored& p : tensors) ncf += tiles_final(p) ? 0 : p.B * p.C;
    col_factors.resize(std::max<int64_t>(ncf, 1));
    ncf = 0;
    for (Factored& p : tensors) {
      p.col_factor = tiles_final(p) ? nullptr : col_factors.data() + ncf;
      ncf += tiles_final(p) ? 0 : p.B * p.C;
    }
    int64_t mat0 = 0, nparts = 0;
    for (int t = 0; t < l.n; ++t) {
      Factored& p = tensors[t];
      if (p.R == 1) {  // the mean of one row is the row itself (mean_of(x, 1) == x)
        p.row_mean = p.row;
      } else {
        p.row_mean = row_means.data() + mat0;
        mat0 += p.B;
      }
      const int64_t mat = p.R * p.C;
      if (mat == 0) continue;  // nothing to update (an empty tensor)
      if (mat <= kBlock) {
        const int64_t per = kBlock / mat;
        for (int64_t b = 0; b < p.B; b += per)
          blocks.push_back({t, b * p.R, std::min(p.B, b + per) * p.R, -1});
      } else {
        const int64_t chunks = std::min({p.R, kMaxChunks, (mat + kBlock - 1) / kBlock});
        for (int64_t b = 0; b < p.B; ++b) {
          splits.push_back({t, b, nparts, chunks});
          for (int64_t k = 0; k < chunks; ++k, nparts += p.C)
            blocks.push_back({t, b * p.R + k * p.R / chunks, b * p.R + (k + 1) * p.R / chunks,
                              nparts});
        }
      }
    }
    parts.assign(nparts, 0.0);
    make_groups(l.n, mp);
    int64_t saved = 0;
    for (const Group& grp : groups) saved = std::max(saved, grp.saved);
    // Two buffers, for even and odd groups (run() lets a group's pass 3 overlap the next
    // group's pass 1), kept by the calling thread between calls: their pages are not faulted
    // in anew at every step (MXNet's engine threads each call the op from one thread at a time).
    static thread_local std::vector<float> buffer;
    if (static_cast<int64_t>(buffer.size()) < 2 * saved) buffer.resize(2 * saved);
    for (size_t j = 0; j < groups.size(); ++j)
      for (int t = groups[j].t0; t < groups[j].t1; ++t) {
        Factored& p = tensors[t];
        p.u_saved = p.u_offset >= 0 ? buffer.data() + (j % 2) * saved + p.u_offset : nullptr;
      }
    block_w2.assign(blocks.size(), 0.0);
    block_u2.assign(blocks.size(), 0.0);
    threads = total >= kParallelMin ? max_threads() : 1;
  }

  // Consecutive tensors in groups of at most kGroupBytes of arrays (a larger tensor alone).
  void make_groups(int n, bool half) {
    const int64_t saved_max = max_saved();
    groups.clear();
    int64_t k = 0, s = 0, bytes = 0;
    for (int t = 0; t < n; ++t) {
      const Factored& p = tensors[t];
      const int64_t b = p.size * (half ? 2 * 2 + 4 : 4 * 2) + (p.m ? p.size * 4 : 0) +
                        p.B * (p.R + p.C) * 4;
      if (groups.empty() || bytes + b > kGroupBytes) {
        groups.push_back({t, t, k, k, s, s, 0, true});
        bytes = 0;
      }
      Group& grp = groups.back();
      grp.t1 = t + 1;
      grp.final = grp.final && tiles_final(p);
      tensors[t].u_offset = -1;
      if (tiles_final(p) && grp.saved + p.size <= saved_max) {
        tensors[t].u_offset = grp.saved;
        grp.saved += p.size;
      }
      while (k < static_cast<int64_t>(blocks.size()) && blocks[k].t == t) ++k;
      while (s < static_cast<int64_t>(splits.size()) && splits[s].t == t) ++s;
      grp.k1 = k;
      grp.s1 = s;
      bytes += b;
    }
  }

  // Per-thread tile buffers: the preprocessed gradient, the row sums (pass 1), the factors and
  // the update (passes 2 and 3).
  struct Scratch {
    alignas(64) float g[kTile];
    alignas(64) double rs[kTile];
    alignas(64) float rf[kTile];
    alignas(64) float cf[kTile];
    alignas(64) float u[kTile];
    alignas(64) float sq[kTile];   // small matrices: g^2 + eps1
    alignas(64) double cs[kTile];  // small matrices: the column sums
  };

  // Pass 1: row and column sums of sq, the row states, and for whole matrices the column
  // states and row means too (split matrices finish in finish_splits); sum of w^2 per block,
  // and of u^2 too where tiles_final (small and 1 x 1 matrices: pass 2 then skips them).
  void sums_and_states(int64_t k, std::vector<double>* colbuf, Scratch* sp) {
    const RowBlock& blk = blocks[k];
    const Factored& p = tensors[blk.t];
    const int64_t R = p.R, C = p.C, b_first = blk.q0 / R;
    const float b2 = static_cast<float>(p.sc[1]), c2 = static_cast<float>(1.0 - p.sc[1]);
    const float e1 = par.eps1;
    const bool ones_only = R == 1 && C == 1;  // 1 x 1 matrices (1 x 1 convolutions): see ones()
    const bool small = is_small(p);           // whole matrices per tile: see small_sums()
    double* cols;  // the column sums of matrix b_first onwards (one matrix for a chunk)
    if (ones_only || small) {
      cols = nullptr;
    } else if (blk.part < 0) {
      colbuf->assign((blk.q1 - blk.q0) / R * C, 0.0);
      cols = colbuf->data();
    } else {
      cols = parts.data() + blk.part;
    }
    double sw = 0, su = 0, carry = 0;  // carry: the earlier tiles' sum of a row longer than a tile
    for_each_tile(p, blk.q0, blk.q1, [&](int64_t q, int64_t rows, int64_t c0, int64_t n) {
      const int64_t i0 = q * C + c0;
      const float* g = grad(p, i0, rows * n, sp->g);
      if (par.scale) sw += sum_squares(p.w + i0, rows * n);
      // the tile's states are then final: its sum of u^2 too
      float* u = p.u_saved ? p.u_saved + i0 : sp->u;
      if (ones_only) {
        ones(p, q, rows, g, b2, c2, e1);
        su += tile_norm(p, q, rows, c0, n, g, sp, u);
        return;
      }
      if (small) {
        su += small_pass1(p, q / R, rows / R, g, b2, c2, e1, sp, u);
        return;
      }
      double* __restrict row_sums = sp->rs;
      with_row_length(n, [&](auto len) {
        int64_t b = q / R, rr = q - b * R;  // matrix and row within it of row q + r
        for (int64_t r = 0; r < rows; ++r) {
          const float* __restrict gr = g + r * len;
          double* __restrict cs = cols + (b - b_first) * C + c0;
          double rs = 0;
#pragma omp simd reduction(+ : rs)
          for (int64_t c = 0; c < len; ++c) {
            const float sq = gr[c] * gr[c] + e1;
            rs += sq;
            cs[c] += sq;
          }
          row_sums[r] = rs;
          if (++rr == R) {
            rr = 0;
            ++b;
          }
        }
      });
      row_sums[0] += carry;
      if (c0 + n < C) {  // a long row goes on in the next tile
        carry = row_sums[0];
        return;
      }
      carry = 0;
      float* __restrict row = p.row + q;
#pragma omp simd
      for (int64_t r = 0; r < rows; ++r)
        row[r] = b2 * row[r] + c2 * mean_of(row_sums[r], C);
    });
    block_w2[k] = sw;
    block_u2[k] = su;
    if (blk.part < 0 && !ones_only && !small) finish_matrices(p, b_first, blk.q1 / R, cols);
  }

  // Pass 1 and finish_matrices for the nb small matrices from b0 on (one tile; g: their
  // elements): the same sums in the same order as the general path (each row's in column
  // order, each column's in row order, in double), as loops over the whole batch.
  static void small_sums(const Factored& p, int64_t b0, int64_t nb, const float* __restrict g,
                         float b2, float c2, float e1, Scratch* sp) {
    with_matrix_shape(p.R, p.C, [&](auto R, auto C) {
      const int64_t m = nb * R * C, nr = nb * R, nc = nb * C;
      float* __restrict sq = sp->sq;
      double* __restrict rs = sp->rs;
      double* __restrict cs = sp->cs;
#pragma omp simd
      for (int64_t i = 0; i < m; ++i) sq[i] = g[i] * g[i] + e1;
      for (int64_t q = 0; q < nr; ++q) {  // row sums: row q is sq[q C, q C + C)
        double s = 0;
        for (int64_t c = 0; c < C; ++c) s += sq[q * C + c];
        rs[q] = s;
      }
      for (int64_t b = 0; b < nb; ++b) {  // column sums: column c of matrix b
        const float* __restrict x = sq + b * R * C;
        for (int64_t c = 0; c < C; ++c) {
          double s = 0;
          for (int64_t r = 0; r < R; ++r) s += x[r * C + c];
          cs[b * C + c] = s;
        }
      }
      float* __restrict row = p.row + b0 * R;
      float* __restrict col = p.col + b0 * C;
#pragma omp simd
      for (int64_t q = 0; q < nr; ++q) row[q] = b2 * row[q] + c2 * mean_of(rs[q], C);
#pragma omp simd
      for (int64_t j = 0; j < nc; ++j) col[j] = b2 * col[j] + c2 * mean_of(cs[j], R);
      for (int64_t b = 0; b < nb; ++b) {  // the means of the updated rows
        double s = 0;
        for (int64_t r = 0; r < R; ++r) s += row[b * R + r];
        p.row_mean[b0 + b] = mean_of(s, R);
      }
    });
  }

  // tile_update for the nb small matrices from b0 on: the factors once per row and per column
  // (not per element), then u = (g * row factor) * column factor over the batch.
  static void small_update(const Factored& p, int64_t b0, int64_t nb, const float* __restrict g,
                           Scratch* sp, float* __restrict u) {
    with_matrix_shape(p.R, p.C, [&](auto R, auto C) {
      const int64_t nr = nb * R, nc = nb * C;
      float* __restrict rf = sp->rf;
      float* __restrict cf = sp->cf;
      const float* __restrict row = p.row + b0 * R;
      const float* __restrict col = p.col + b0 * C;
      const float* __restrict rm = p.row_mean + b0;
      for (int64_t b = 0; b < nb; ++b)
        for (int64_t r = 0; r < R; ++r) rf[b * R + r] = row[b * R + r] / rm[b];
#pragma omp simd
      for (int64_t q = 0; q < nr; ++q) rf[q] = 1.0f / std::sqrt(rf[q]);
#pragma omp simd
      for (int64_t j = 0; j < nc; ++j) cf[j] = 1.0f / std::sqrt(col[j]);
      for (int64_t b = 0; b < nb; ++b) {
        const float* __restrict gb = g + b * R * C;
        float* __restrict ub = u + b * R * C;
        for (int64_t r = 0; r < R; ++r)
          for (int64_t c = 0; c < C; ++c)
            ub[r * C + c] = (gb[r * C + c] * rf[b * R + r]) * cf[b * C + c];
      }
    });
  }

  // Pass 1 of the nb small matrices from b0 on, one tile (g: their elements): small_sums, then
  // the sum of their u^2 (returned); 3 x 3 matrices by eight with AVX2 (sums33).
  static double small_pass1(const Factored& p, int64_t b0, int64_t nb, const float* g, float b2,
                            float c2, float e1, Scratch* sp, float* u) {
    int64_t done = 0;
    double su = 0;
#if defined(__AVX2__)
    if (p.R == 3 && p.C == 3) {
      done = nb - nb % 8;
      su = sums33(p, b0, done / 8, g, b2, c2, e1, u);
    }
#endif
    if (done < nb) {
      const int64_t m = (nb - done) * p.R * p.C;
      const float* rest = g + done * p.R * p.C;
      small_sums(p, b0 + done, nb - done, rest, b2, c2, e1, sp);
      small_update(p, b0 + done, nb - done, rest, sp, u + done * p.R * p.C);
      su += sum_squares(u + done * p.R * p.C, m);
    }
    return su;
  }

  // small_update of one tile into u; 3 x 3 matrices by eight with AVX2 (update33).
  static void small_tile_update(const Factored& p, int64_t b0, int64_t nb, const float* g,
                                Scratch* sp, float* u) {
    int64_t done = 0;
#if defined(__AVX2__)
    if (p.R == 3 && p.C == 3) {
      done = nb - nb % 8;
      update33(p, b0, done / 8, g, u);
    }
#endif
    if (done < nb)
      small_update(p, b0 + done, nb - done, g + done * p.R * p.C, sp, u + done * p.R * p.C);
  }

#if defined(__AVX2__)
  // The update of eight 3 x 3 matrices from their gradient d (d[j][c]: column c of their rows
  // 8 j .. 8 j + 7), updated rows rn (rn[j]: rows 8 j .. 8 j + 7), row means rm (a lane per
  // matrix) and column states cs (cs[c]: column c, a lane per matrix), as small_update:
  // u = (g * (1 / sqrt(row / row mean))) * (1 / sqrt(col)).
  static void u33(const __m256 d[3][3], const __m256 rn[3], __m256 rm, const __m256 cs[3],
                  __m256 u[3][3]) {
    const __m256 one = _mm256_set1_ps(1.0f);
    __m256 rme[3], rf[3], cfe[3][3];
    repeat3(rm, &rme[0], &rme[1], &rme[2]);  // each row's matrix's mean
    for (int j = 0; j < 3; ++j)
      rf[j] = _mm256_div_ps(one, _mm256_sqrt_ps(_mm256_div_ps(rn[j], rme[j])));
    for (int c = 0; c < 3; ++c) {
      const __m256 cf = _mm256_div_ps(one, _mm256_sqrt_ps(cs[c]));
      repeat3(cf, &cfe[c][0], &cfe[c][1], &cfe[c][2]);  // each row's matrix's factor
    }
    for (int j = 0; j < 3; ++j)
      for (int c = 0; c < 3; ++c) u[j][c] = _mm256_mul_ps(_mm256_mul_ps(d[j][c], rf[j]), cfe[c][j]);
  }

  // small_sums, the update (into uo) and the sum of its squares (returned) for the 8 n8 matrices
  // of 3 x 3 from b0 on.
  static double sums33(const Factored& p, int64_t b0, int64_t n8, const float* g, float b2,
                       float c2, float e1, float* uo) {
    const __m256 vb2 = _mm256_set1_ps(b2), vc2 = _mm256_set1_ps(c2), ve1 = _mm256_set1_ps(e1);
    __m256d su[2] = {_mm256_setzero_pd(), _mm256_setzero_pd()};
    for (int64_t i = 0; i < n8; ++i) {
      const float* gp = g + 72 * i;
      float* row = p.row + 3 * (b0 + 8 * i);
      float* col = p.col + 3 * (b0 + 8 * i);
      __m256 d[3][3], sq[3][3], rn[3], cs[3], e[3], f[3], u[3][3];
      for (int j = 0; j < 3; ++j) {
        load3(gp + 24 * j, d[j]);
        for (int c = 0; c < 3; ++c)
          sq[j][c] = _mm256_add_ps(_mm256_mul_ps(d[j][c], d[j][c]), ve1);
        rn[j] = _mm256_add_ps(_mm256_mul_ps(vb2, _mm256_loadu_ps(row + 8 * j)),
                              _mm256_mul_ps(vc2, mean3(sq[j][0], sq[j][1], sq[j][2])));
        _mm256_storeu_ps(row + 8 * j, rn[j]);
      }
      load3(col, cs);
      for (int c = 0; c < 3; ++c) {  // e[r]: element (r, c) of each matrix
        split3(sq[0][c], sq[1][c], sq[2][c], &e[0], &e[1], &e[2]);
        cs[c] = _mm256_add_ps(_mm256_mul_ps(vb2, cs[c]),
                              _mm256_mul_ps(vc2, mean3(e[0], e[1], e[2])));
      }
      store3(col, cs);
      split3(rn[0], rn[1], rn[2], &f[0], &f[1], &f[2]);  // f[r]: row r of each matrix
      const __m256 rm = mean3(f[0], f[1], f[2]);
      _mm256_storeu_ps(p.row_mean + b0 + 8 * i, rm);
      u33(d, rn, rm, cs, u);
      for (int j = 0; j < 3; ++j) {
        for (int c = 0; c < 3; ++c) add_squares(u[j][c], su);
        store3(uo + 72 * i + 24 * j, u[j]);
      }
    }
    return horizontal_sum(su);
  }

  // small_update for the 8 n8 matrices of 3 x 3 from b0 on, into u.
  static void update33(const Factored& p, int64_t b0, int64_t n8, const float* g, float* u) {
    for (int64_t i = 0; i < n8; ++i) {
      const float* row = p.row + 3 * (b0 + 8 * i);
      __m256 d[3][3], rn[3], cs[3], v[3][3];
      for (int j = 0; j < 3; ++j) {
        load3(g + 72 * i + 24 * j, d[j]);
        rn[j] = _mm256_loadu_ps(row + 8 * j);
      }
      load3(p.col + 3 * (b0 + 8 * i), cs);
      u33(d, rn, _mm256_loadu_ps(p.row_mean + b0 + 8 * i), cs, v);
      for (int j = 0; j < 3; ++j) store3(u + 72 * i + 24 * j, v[j]);
    }
  }
#endif

  // Pass 1 and finish_matrices for n 1 x 1 matrices from q on: every sum and mean is of one
  // element (the same operations, written element-wise so that they vectorise).
  static void ones(const Factored& p, int64_t q, int64_t n, const float* __restrict g, float b2,
                   float c2, float e1) {
    float* __restrict row = p.row + q;
    float* __restrict col = p.col + q;
#pragma omp simd
    for (int64_t i = 0; i < n; ++i) {  // (the row means are the rows: row_mean aliases row)
      const float sq = mean_of(g[i] * g[i] + e1, 1);
      row[i] = b2 * row[i] + c2 * sq;
      col[i] = b2 * col[i] + c2 * sq;
    }
  }

  // The column states and row means of matrices [b0, b1), once all their rows are summed
  // (col_sums: their (b1 - b0) C column sums). One loop over all their columns, so that many
  // small matrices (3 x 3 and 1 x 1 kernels) do not pay a loop each.
  void finish_matrices(const Factored& p, int64_t b0, int64_t b1, const double* col_sums) const {
    const float b2 = static_cast<float>(p.sc[1]), c2 = static_cast<float>(1.0 - p.sc[1]);
    float* __restrict col = p.col + b0 * p.C;
    const int64_t ncol = (b1 - b0) * p.C;
#pragma omp simd
    for (int64_t i = 0; i < ncol; ++i)
      col[i] = b2 * col[i] + c2 * mean_of(col_sums[i], p.R);
    if (p.col_factor) {
      float* __restrict cf = p.col_factor + b0 * p.C;
#pragma omp simd
      for (int64_t i = 0; i < ncol; ++i) cf[i] = 1.0f / std::sqrt(col[i]);
    }
    for (int64_t b = b0; b < b1 && p.R > 1; ++b) {
      const float* __restrict row = p.row + b * p.R;
      double s = 0;
      for (int64_t r = 0; r < p.R; ++r) s += row[r];
      p.row_mean[b] = mean_of(s, p.R);
    }
  }

  // A split matrix: add the chunks' partial column sums in order, then finish the matrix.
  void finish_split(const SplitMatrix& s) {
    const Factored& p = tensors[s.t];
    double* sums = parts.data() + s.part;
    for (int64_t j = 1; j < s.chunks; ++j) {
      const double* more = sums + j * p.C;
      for (int64_t c = 0; c < p.C; ++c) sums[c] += more[c];
    }
    finish_matrices(p, s.b, s.b + 1, sums);
  }

  // The unclipped update of one tile into u: u = (g * rsqrt(row / row_mean)) * rsqrt(col), the
  // column factors rsqrt(col) from finish_matrices. The rows' square roots and divisions run in
  // one loop over the tile's rows, so they vectorise even when rows are 1 or 3 elements long;
  // only gathering each row's row mean and column factors loops per row.
  void tile_update(const Factored& p, int64_t q, int64_t rows, int64_t c0, int64_t n,
                   const float* __restrict g, Scratch* sp, float* __restrict u) const {
    float* __restrict rf = sp->rf;
    float* __restrict cf = sp->cf;
    if (is_small(p)) {  // whole matrices (for_each_tile)
      small_tile_update(p, q / p.R, rows / p.R, g, sp, u);
      return;
    }
    if (p.R == 1 && p.C == 1) {  // 1 x 1 matrices: row q + r is matrix q + r
      ones_update(p, q, rows, g, u);
      return;
    }
    {  // gather each row's row mean and column factors
      with_row_length(n, [&](auto len) {
        int64_t b = q / p.R, rr = q - b * p.R;
        for (int64_t r = 0; r < rows; ++r) {
          rf[r] = p.row_mean[b];
          const float* __restrict col = p.col_factor + b * p.C + c0;
          for (int64_t c = 0; c < len; ++c) cf[r * len + c] = col[c];
          if (++rr == p.R) {
            rr = 0;
            ++b;
          }
        }
      });
    }
    const float* __restrict row = p.row + q;
#pragma omp simd
    for (int64_t r = 0; r < rows; ++r) rf[r] = 1.0f / std::sqrt(row[r] / rf[r]);
    const int64_t m = rows * n;
    if (n == 1) {
#pragma omp simd
      for (int64_t i = 0; i < m; ++i) u[i] = (g[i] * rf[i]) * cf[i];
    } else {
      with_row_length(n, [&](auto len) {
        for (int64_t r = 0; r < rows; ++r) {
          const float f = rf[r];
          const int64_t j = r * len;
#pragma omp simd
          for (int64_t c = 0; c < len; ++c) u[j + c] = (g[j + c] * f) * cf[j + c];
        }
      });
    }
  }

  // tile_update for the n 1 x 1 matrices from q on. A row's mean is the row itself (row_mean
  // aliases row), so row / row_mean is x / x: exactly 1 for a finite nonzero x, whose factor
  // 1 / sqrt(1) is 1 and g * 1 is g, else NaN (0 / 0, inf / inf, NaN). The select gives those
  // values without the division and square root; the column factor is computed as ever.
  static void ones_update(const Factored& p, int64_t q, int64_t n, const float* __restrict g,
                          float* __restrict u) {
    const float* __restrict row = p.row + q;
    const float* __restrict col = p.col + q;
    const float nan = std::numeric_limits<float>::quiet_NaN();
    const float big = std::numeric_limits<float>::max();
#pragma omp simd
    for (int64_t i = 0; i < n; ++i) {
      const float x = row[i];
      const float gf = (x != 0.0f && std::fabs(x) <= big) ? g[i] : nan;  // g * (row factor)
      u[i] = gf * (1.0f / std::sqrt(col[i]));
    }
  }

  // The update of one tile into u (g: its gradient) and the sum of its squares.
  double tile_norm(const Factored& p, int64_t q, int64_t rows, int64_t c0, int64_t n,
                   const float* g, Scratch* sp, float* u) const {
    tile_update(p, q, rows, c0, n, g, sp, u);
    return sum_squares(u, rows * n);
  }

  // Pass 2: sum of u^2 per block (done in pass 1 where tiles_final).
  void update_norm(int64_t k, Scratch* sp) {
    const RowBlock& blk = blocks[k];
    const Factored& p = tensors[blk.t];
    if (tiles_final(p)) return;
    double su = 0;
    for_each_tile(p, blk.q0, blk.q1, [&](int64_t q, int64_t rows, int64_t c0, int64_t n) {
      su += tile_norm(p, q, rows, c0, n, grad(p, q * p.C + c0, rows * n, sp->g), sp, sp->u);
    });
    block_u2[k] = su;
  }

  // Pass 3: clip, scale, momentum, decay; the float16 weights from the masters.
  void apply(int64_t k, Scratch* sp) const {
    const RowBlock& blk = blocks[k];
    const Factored& p = tensors[blk.t];
    const float alpha = p.ex[0], decay = p.ex[1], d = p.ex[2], b1 = par.b1, c1 = par.c1;
    par.with_options(p.sc, [&](auto M, auto D) {
      for_each_tile(p, blk.q0, blk.q1, [&](int64_t q, int64_t rows, int64_t c0, int64_t n) {
        const int64_t i0 = q * p.C + c0, m = rows * n;
        const float* __restrict u = p.u_saved ? p.u_saved + i0 : sp->u;
        if (!p.u_saved) tile_update(p, q, rows, c0, n, grad(p, i0, m, sp->g), sp, sp->u);
        const float* w_in = p.w + i0;
        float* w = (mp ? p.w : static_cast<float*>(p.out)) + i0;
        float* __restrict mom = p.m ? p.m + i0 : nullptr;
#pragma omp simd
        for (int64_t i = 0; i < m; ++i)
          w[i] = AdafactorParams::apply<M.value, D.value>(u[i], w_in[i], mom, i, alpha, decay, d,
                                                          b1, c1);
        if (mp) float_to_half(p.w + i0, static_cast<uint16_t*>(p.out) + i0, m);
      });
    });
  }

  // A group's tensors' sums of their blocks, in block order (deterministic for any thread
  // count): sums[t] for the group's tensors t.
  void tensor_sums(const Group& grp, const std::vector<double>& block_sums,
                   std::vector<double>* sums) const {
    for (int t = grp.t0; t < grp.t1; ++t) (*sums)[t] = 0.0;
    for (int64_t k = grp.k0; k < grp.k1; ++k) (*sums)[blocks[k].t] += block_sums[k];
  }

  // The three passes, group after group (see Group): one parallel region, each pass a
  // work-shared loop over the group's blocks (its implicit barrier orders the passes); pass 2
  // only where the group has tensors that need it (not tiles_final).
  void run() {
    std::vector<double> sum_w2(tensors.size()), sum_u2(tensors.size());
#pragma omp parallel num_threads(threads) if (threads > 1)
    {
      std::vector<double> colbuf;
      Scratch scratch;
      for (const Group& grp : groups) {
#pragma omp for schedule(dynamic, 1)
        for (int64_t k = grp.k0; k < grp.k1; ++k) sums_and_states(k, &colbuf, &scratch);
        if (grp.s1 > grp.s0) {
#pragma omp for schedule(dynamic, 1)
          for (int64_t k = grp.s0; k < grp.s1; ++k) finish_split(splits[k]);
        }
        if (!grp.final) {
#pragma omp for schedule(dynamic, 1)
          for (int64_t k = grp.k0; k < grp.k1; ++k) update_norm(k, &scratch);
        }
#pragma omp single
        {
          tensor_sums(grp, block_w2, &sum_w2);
          tensor_sums(grp, block_u2, &sum_u2);
          for (int t = grp.t0; t < grp.t1; ++t)
            par.derive(tensors[t].sc, sum_w2[t], sum_u2[t], tensors[t].size, tensors[t].ex);
        }
        // Backwards: pass 1 went forwards, so the blocks it read last, the likeliest still in
        // cache when a group is larger than the cache, come first. nowait: a thread done here
        // starts the next group's pass 1, which touches other tensors and the other
        // saved-update buffer (plan alternates them).
#pragma omp for schedule(dynamic, 1) nowait
        for (int64_t k = grp.k1 - 1; k >= grp.k0; --k) apply(k, &scratch);
      }
    }
  }
};

MXReturnValue adafactor_forward(const Attrs& a, std::vector<MXTensor>* inputs,
                                std::vector<MXTensor>* outputs, const OpResource& res) {
  const Layout l = layout(a);
  const int nm = attr_int(a, "momentum", 0) != 0;
  if (l.ns == 1 + nm) return forward<AdafactorVectorRule>(a, inputs, outputs, res);
  const std::vector<double> sc = attr_doubles(a, "sc");
  if (l.ns != 2 + nm || static_cast<int64_t>(sc.size()) != 4 * static_cast<int64_t>(l.n)) {
    MX_ERROR_MSG << "gopt_adafactor: bad number of states or scalars";
    return mxnet::ext::MX_FAIL;
  }
  FactoredDriver driver(a, l);
  driver.plan(l, *inputs, outputs, sc);
  driver.run();
  return mxnet::ext::MX_SUCCESS;
}

// Each tensor's states: (v (, m)) of its shape when the call holds vectors; (row, col (, m))
// of shapes shape[:-1], shape[:-2] + shape[-1:] (, shape) when it holds tensors of ndim >= 2.
MXReturnValue adafactor_infer_shape(const Attrs& a, std::vector<std::vector<unsigned>>* in,
                                    std::vector<std::vector<unsigned>>* out) {
  const Layout l = layout(a);
  const int nm = attr_int(a, "momentum", 0) != 0;
  const bool factored = l.ns == 2 + nm;
  if (!factored && l.ns != 1 + nm) {
    MX_ERROR_MSG << "gopt_adafactor: expected " << 1 + nm << " or " << 2 + nm
                 << " states per tensor, got " << l.ns;
    return mxnet::ext::MX_FAIL;
  }
  for (int i = 0; i < l.n; ++i) {
    const int base = i * l.per_tensor();
    const std::vector<unsigned> w = (*in)[base];
    if (factored != (w.size() >= 2)) {
      MX_ERROR_MSG << "gopt_adafactor: tensor " << i << " of rank " << w.size() << " in a call"
                   << " of " << (factored ? "factored" : "vector") << " states";
      return mxnet::ext::MX_FAIL;
    }
    std::vector<std::vector<unsigned>> expect = {w};  // the gradient
    if (factored) {
      expect.emplace_back(w.begin(), w.end() - 1);
      expect.push_back(std::vector<unsigned>(w.begin(), w.end() - 2));
      expect.back().push_back(w.back());
    } else {
      expect.push_back(w);
    }
    if (nm) expect.push_back(w);
    for (size_t k = 0; k < expect.size(); ++k) {
      if ((*in)[base + 1 + k] != expect[k]) {
        MX_ERROR_MSG << "gopt_adafactor: tensor " << i << " input " << 1 + k
                     << " has the wrong shape";
        return mxnet::ext::MX_FAIL;
      }
    }
    (*out)[i] = w;
  }
  return mxnet::ext::MX_SUCCESS;
}

}  // namespace gluon_opt

REGISTER_OP(gopt_adafactor)
    .setParseAttrs(gluon_opt::parse_attrs)
    .setInferType(gluon_opt::infer_type)
    .setInferShape(gluon_opt::adafactor_infer_shape)
    .setMutateInputs(gluon_opt::mutate_inputs)
    .setForward(gluon_opt::adafactor_forward, "cpu");
