// Blockwise 8-bit and bfloat16 storage of optimizer states (gluon_opt/optimizers/lowprec.py is
// the readable reference; lowprec.h runs the rules over states stored so).
//
// int8: the dynamic (tree) quantisation of Dettmers, Lewis, Shleifer & Zettlemoyer, "8-bit
// Optimizers via Block-wise Quantization" (ICLR 2022), as bitsandbytes' create_dynamic_map:
// each block of a state is divided by its largest magnitude (absmax, kept in float32) and every
// element stored as the index (0..255) of a value of a fixed, sorted map of 256 values in
// [-1, 1] (signed, first moments) or [0, 1] (unsigned, second moments). The map's positive
// values are, for decades i = 0..6, the means of 2^(i+u) equal intervals of [0.1, 1]
// scaled by 10^(i-6) (u = 0 signed, 1 unsigned), the signed map has their negatives, and both
// have 0 and 1:
//
//   M(i, j) = 10^(i-6) * (0.1 + 0.9 * (j + 0.5) / 2^(i+u)),  j = 0 .. 2^(i+u) - 1.
//
// Our map's entries are that formula evaluated in float32, in this order:
//   t = (j + 0.5f) * 2^-(i+u) (exact);  M = p10[i] * (0.1f + 0.9f * t)
// with p10[i] = float(10^(i-6)), 0.1f = float(0.1), 0.9f = float(0.9) (each within 3 ulp of
// the exact value; tests/blockwise_transcription.py checks them), so that the SIMD code below
// computes every entry it needs, bit for bit, instead of gathering it from a table (AVX2's
// gathers cost more here than the rest of the optimizer step: measured 1.0 ns per element
// against 0.1-0.2 ns for this arithmetic, on an AMD EPYC).
//
// Quantising y = x / absmax (x * (1 / absmax), as bitsandbytes) gives the code
//   code(y) = #{k : mid[k] <= y},   mid[k] = (M[k] + M[k+1]) * 0.5f  (float32),
// the index of the nearest map value, ties to the larger one (numpy's
// searchsorted(mid, y, 'right')). The SIMD path finds it arithmetically: the decade from the six
// mids between decades, the nearest interior boundary of the decade from the linear position,
// then one exact comparison with that boundary's float32 mid. The scalar path (block tails,
// CPUs without AVX2) searches the mids: both give the same count.
//
// A block whose absmax is not finite (a NaN or an infinity in the state) stores the scale NaN
// and the code of zero: the whole block reads back NaN, so a diverged run stays visible.
// A block of zeros stores the scale 0.
//
// bfloat16: the top 16 bits of the float32, rounded to nearest even, or stochastically (the
// 16 dropped bits compared with 16 random bits: round up with probability equal to the
// fraction dropped) with noise from a counter-based hash of (seed, tensor key, step, state,
// element), so both paths and every context draw the same bits. NaN stays NaN.
#ifndef GLUON_OPT_KERNELS_BLOCKWISE_H_
#define GLUON_OPT_KERNELS_BLOCKWISE_H_

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>

#if defined(__AVX2__) && !defined(__CUDACC__)
#include <immintrin.h>
#define GOPT_BLOCKWISE_AVX2 1
#endif

namespace gluon_opt {
namespace blockwise {

constexpr int kDecades = 7;

inline uint32_t float_bits(float f) {
  uint32_t b;
  std::memcpy(&b, &f, 4);
  return b;
}

inline float bits_float(uint32_t b) {
  float f;
  std::memcpy(&f, &b, 4);
  return f;
}

// One of the two maps, with what the SIMD quantiser needs of it.
struct DynamicMap {
  int u;              // 0 signed, 1 unsigned
  int zero;           // code of 0: 127 signed, 0 unsigned
  float value[256];   // the sorted map
  float mid[255];     // mid[k] = (value[k] + value[k + 1]) * 0.5f
  // per decade i (8 lanes, the eighth unused): p10, 1 / p10, 2^(i+u) / 0.9, 2^-(i+u),
  // 2^(i+u), code offset (the positive means below decade i), lower mid of the decade
  float p10[8], inv_p10[8], pos_scale[8], inv_n[8];
  int32_t n[8], below[8];
  float edge[8];      // edge[i]: the mid between decade i - 1's last mean and decade i's first
                      // (edge[0]: between 0 and the first mean); edge[7]: between the last
                      // mean and 1
  int n_means;        // positive means: 127 signed, 254 unsigned

  static float mean(float p10, float inv_n, int j) {
    const float t = (static_cast<float>(j) + 0.5f) * inv_n;
    return p10 * (static_cast<float>(0.1) + static_cast<float>(0.9) * t);
  }

  explicit DynamicMap(bool is_signed) : u(is_signed ? 0 : 1) {
    float pos[254];
    int count = 0;
    for (int i = 0; i < 8; ++i) {
      const int d = std::min(i, kDecades - 1);
      p10[i] = static_cast<float>(std::pow(10.0, d - 6));
      inv_p10[i] = static_cast<float>(std::pow(10.0, 6 - d));
      n[i] = 1 << (d + u);
      inv_n[i] = 1.0f / static_cast<float>(n[i]);
      pos_scale[i] = static_cast<float>(n[i] / 0.9);
      below[i] = (1 << (d + u)) - 1 - u;
    }
    for (int i = 0; i < kDecades; ++i)
      for (int j = 0; j < n[i]; ++j) pos[count++] = mean(p10[i], inv_n[i], j);
    n_means = count;
    int k = 0;
    if (is_signed)
      for (int j = count - 1; j >= 0; --j) value[k++] = -pos[j];
    zero = k;
    value[k++] = 0.0f;
    for (int j = 0; j < count; ++j) value[k++] = pos[j];
    value[k++] = 1.0f;
    for (int j = 0; j < 255; ++j) mid[j] = (value[j] + value[j + 1]) * 0.5f;
    for (int i = 0; i < kDecades; ++i) edge[i] = mid[zero + below[i]];
    edge[kDecades] = mid[254];
  }

  // The code of y: #{k : mid[k] <= y} (a binary search; the scalar path).
  int code(float y) const {
    return static_cast<int>(std::upper_bound(mid, mid + 255, y) - mid);
  }
};

inline const DynamicMap& dynamic_map(bool is_signed) {
  static const DynamicMap s(true), u(false);
  return is_signed ? s : u;
}

// absmax of n floats as its bits (the largest magnitude's bit pattern, which orders as the
// magnitudes do; >= 0x7f800000 where an infinity or a NaN is among them).
inline uint32_t absmax_bits(const float* x, int64_t n) {
  uint32_t m = 0;
  int64_t i = 0;
#if defined(GOPT_BLOCKWISE_AVX2)
  const __m256i abs_mask = _mm256_set1_epi32(0x7fffffff);
  __m256i vm = _mm256_setzero_si256();
  for (; i + 8 <= n; i += 8)
    vm = _mm256_max_epi32(vm, _mm256_and_si256(
        _mm256_loadu_si256(reinterpret_cast<const __m256i*>(x + i)), abs_mask));
  alignas(32) uint32_t lanes[8];
  _mm256_store_si256(reinterpret_cast<__m256i*>(lanes), vm);
  for (int k = 0; k < 8; ++k) m = std::max(m, lanes[k]);
#endif
  for (; i < n; ++i) m = std::max(m, float_bits(x[i]) & 0x7fffffffu);
  return m;
}

#if defined(GOPT_BLOCKWISE_AVX2)
// The codes of 8 normalised values (see the top of the file).
inline __m256i codes8(const DynamicMap& q, __m256 y) {
  const __m256i bits = _mm256_castps_si256(y);
  const __m256i neg = _mm256_srai_epi32(bits, 31);                      // -1 where y < 0
  const __m256i mag = _mm256_and_si256(bits, _mm256_set1_epi32(0x7fffffff));
  // a negative y counts the mids strictly below |y|: the same as the mids <= the float just
  // below |y| (for |y| = 0 that is a NaN, which compares false: count 0)
  const __m256 a = _mm256_castsi256_ps(_mm256_add_epi32(mag, neg));
  // the decade: how many of the six inner decade edges are <= a
  __m256i dec = _mm256_setzero_si256();
  for (int i = 1; i < kDecades; ++i)
    dec = _mm256_sub_epi32(dec, _mm256_castps_si256(
        _mm256_cmp_ps(a, _mm256_set1_ps(q.edge[i]), _CMP_GE_OQ)));
  const __m256 inv_p10 = _mm256_permutevar8x32_ps(_mm256_loadu_ps(q.inv_p10), dec);
  const __m256 scale = _mm256_permutevar8x32_ps(_mm256_loadu_ps(q.pos_scale), dec);
  const __m256 p10 = _mm256_permutevar8x32_ps(_mm256_loadu_ps(q.p10), dec);
  const __m256 inv_n = _mm256_permutevar8x32_ps(_mm256_loadu_ps(q.inv_n), dec);
  const __m256i n = _mm256_permutevar8x32_epi32(
      _mm256_loadu_si256(reinterpret_cast<const __m256i*>(q.n)), dec);
  const __m256i below = _mm256_permutevar8x32_epi32(
      _mm256_loadu_si256(reinterpret_cast<const __m256i*>(q.below)), dec);
  // the interior boundary nearest to a's position in the decade, 1 .. n - 1 (a decade of one
  // mean has none: its boundary 1 then decides nothing, see the min below)
  const __m256 pos = _mm256_mul_ps(
      _mm256_sub_ps(_mm256_mul_ps(a, inv_p10), _mm256_set1_ps(static_cast<float>(0.1))), scale);
  const __m256i one = _mm256_set1_epi32(1);
  __m256i b = _mm256_cvtps_epi32(pos);  // NaN or out of range: INT_MIN, clamped below
  b = _mm256_max_epi32(_mm256_min_epi32(b, _mm256_sub_epi32(n, one)), one);
  // the boundary's mid, exactly as DynamicMap computes it
  const __m256 bf = _mm256_cvtepi32_ps(b);
  const __m256 half = _mm256_set1_ps(0.5f);
  const __m256 c01 = _mm256_set1_ps(static_cast<float>(0.1));
  const __m256 c09 = _mm256_set1_ps(static_cast<float>(0.9));
  const __m256 lo = _mm256_mul_ps(p10, _mm256_add_ps(c01, _mm256_mul_ps(
      c09, _mm256_mul_ps(_mm256_sub_ps(bf, half), inv_n))));
  const __m256 hi = _mm256_mul_ps(p10, _mm256_add_ps(c01, _mm256_mul_ps(
      c09, _mm256_mul_ps(_mm256_add_ps(bf, half), inv_n))));
  const __m256 mid = _mm256_mul_ps(_mm256_add_ps(lo, hi), half);
  __m256i j = _mm256_sub_epi32(_mm256_sub_epi32(b, one), _mm256_castps_si256(
      _mm256_cmp_ps(a, mid, _CMP_GE_OQ)));
  j = _mm256_min_epi32(j, _mm256_sub_epi32(n, one));
  // count = [a >= edge0] * (1 + below + j) + [a >= edge7]
  const __m256i in_map = _mm256_castps_si256(_mm256_cmp_ps(a, _mm256_set1_ps(q.edge[0]),
                                                           _CMP_GE_OQ));
  const __m256i top = _mm256_castps_si256(_mm256_cmp_ps(a, _mm256_set1_ps(q.edge[kDecades]),
                                                        _CMP_GE_OQ));
  __m256i count = _mm256_and_si256(in_map, _mm256_add_epi32(_mm256_add_epi32(one, below), j));
  count = _mm256_sub_epi32(count, top);
  // y >= 0: zero + count;  y < 0: zero - min(count, zero) (no -1 in the map)
  const __m256i zero = _mm256_set1_epi32(q.zero);
  const __m256i down = _mm256_sub_epi32(zero, _mm256_min_epi32(count, zero));
  const __m256i up = _mm256_add_epi32(zero, count);
  return _mm256_blendv_epi8(up, down, neg);
}

// 8 codes (bytes) -> their map values, computed as DynamicMap computes them.
inline __m256 values8(const DynamicMap& q, __m256i c) {
  const __m256i zero = _mm256_set1_epi32(q.zero);
  const __m256i neg = _mm256_cmpgt_epi32(zero, c);
  // k = the index of the mean among the positive ones (0-based), K = k + 1 + u:
  // its decade is floor(log2 K) - u and its place there j = K - 2^floor(log2 K)
  const __m256i dist = _mm256_abs_epi32(_mm256_sub_epi32(c, zero));  // 1 + k
  const __m256i kk = _mm256_add_epi32(dist, _mm256_set1_epi32(q.u));
  const __m256 kf = _mm256_cvtepi32_ps(kk);
  const __m256i e = _mm256_sub_epi32(_mm256_srli_epi32(_mm256_castps_si256(kf), 23),
                                     _mm256_set1_epi32(127));
  const __m256i dec = _mm256_max_epi32(_mm256_sub_epi32(e, _mm256_set1_epi32(q.u)),
                                       _mm256_setzero_si256());
  const __m256 pow2 = _mm256_castsi256_ps(_mm256_slli_epi32(
      _mm256_add_epi32(e, _mm256_set1_epi32(127)), 23));
  const __m256 jf = _mm256_sub_ps(kf, pow2);
  const __m256 p10 = _mm256_permutevar8x32_ps(_mm256_loadu_ps(q.p10), dec);
  const __m256 inv_n = _mm256_permutevar8x32_ps(_mm256_loadu_ps(q.inv_n), dec);
  const __m256 t = _mm256_mul_ps(_mm256_add_ps(jf, _mm256_set1_ps(0.5f)), inv_n);
  __m256 v = _mm256_mul_ps(p10, _mm256_add_ps(_mm256_set1_ps(static_cast<float>(0.1)),
                                               _mm256_mul_ps(_mm256_set1_ps(
                                                   static_cast<float>(0.9)), t)));
  v = _mm256_or_ps(v, _mm256_and_ps(_mm256_castsi256_ps(neg), _mm256_set1_ps(-0.0f)));
  const __m256i is_zero = _mm256_cmpeq_epi32(c, zero);
  const __m256i is_one = _mm256_cmpeq_epi32(c, _mm256_set1_epi32(255));
  v = _mm256_andnot_ps(_mm256_castsi256_ps(is_zero), v);
  return _mm256_blendv_ps(v, _mm256_set1_ps(1.0f), _mm256_castsi256_ps(is_one));
}
#endif

// Quantise one block of n (<= block size) floats: codes and the block's scale.
inline void quantize_block(const DynamicMap& q, const float* x, int64_t n, uint8_t* codes,
                           float* scale) {
  const uint32_t mb = absmax_bits(x, n);
  if (mb >= 0x7f800000u) {  // an infinity or a NaN: the block reads back NaN
    *scale = std::nanf("");
    std::memset(codes, q.zero, n);
    return;
  }
  const float absmax = bits_float(mb);
  *scale = absmax;
  const float inv = absmax > 0.0f ? 1.0f / absmax : 0.0f;
  int64_t i = 0;
#if defined(GOPT_BLOCKWISE_AVX2)
  const __m256 vinv = _mm256_set1_ps(inv);
  for (; i + 8 <= n; i += 8) {
    const __m256i c = codes8(q, _mm256_mul_ps(_mm256_loadu_ps(x + i), vinv));
    const __m128i c16 = _mm_packus_epi32(_mm256_castsi256_si128(c),
                                         _mm256_extracti128_si256(c, 1));
    _mm_storel_epi64(reinterpret_cast<__m128i*>(codes + i), _mm_packus_epi16(c16, c16));
  }
#endif
  for (; i < n; ++i) codes[i] = static_cast<uint8_t>(q.code(x[i] * inv));
}

// The n values of one block: map value times the block's scale.
inline void dequantize_block(const DynamicMap& q, const uint8_t* codes, float scale, int64_t n,
                             float* out) {
  int64_t i = 0;
#if defined(GOPT_BLOCKWISE_AVX2)
  const __m256 vs = _mm256_set1_ps(scale);
  for (; i + 8 <= n; i += 8) {
    const __m256i c = _mm256_cvtepu8_epi32(
        _mm_loadl_epi64(reinterpret_cast<const __m128i*>(codes + i)));
    _mm256_storeu_ps(out + i, _mm256_mul_ps(values8(q, c), vs));
  }
#endif
  for (; i < n; ++i) out[i] = q.value[codes[i]] * scale;
}

// ---- bfloat16 -------------------------------------------------------------------------------

inline void bf16_to_float(const uint16_t* src, float* dst, int64_t n) {
  int64_t i = 0;
#if defined(GOPT_BLOCKWISE_AVX2)
  for (; i + 8 <= n; i += 8)
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(dst + i), _mm256_slli_epi32(
        _mm256_cvtepu16_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(src + i))), 16));
#endif
  for (; i < n; ++i) dst[i] = bits_float(static_cast<uint32_t>(src[i]) << 16);
}

// A 32-bit integer hash (Wellons' lowbias32): the noise of stochastic rounding.
inline uint32_t hash32(uint32_t x) {
  x ^= x >> 16;
  x *= 0x7feb352du;
  x ^= x >> 15;
  x *= 0x846ca68bu;
  x ^= x >> 16;
  return x;
}

// The stream of one (seed, key, step, state): element i draws hash32(base + i * 0x9e3779b9).
inline uint32_t noise_base(uint32_t seed, uint32_t key, uint32_t step, uint32_t state) {
  return hash32(hash32(hash32(hash32(seed) ^ key) ^ step) ^ state);
}

// Round n floats to bfloat16: to nearest even, or (stochastic) up with the probability of the
// dropped fraction, drawing element i0 + i's bits from the stream ``base``.
inline void float_to_bf16(const float* src, uint16_t* dst, int64_t n, bool stochastic,
                          uint32_t base, uint32_t i0) {
  int64_t i = 0;
#if defined(GOPT_BLOCKWISE_AVX2)
  const __m256i abs_mask = _mm256_set1_epi32(0x7fffffff), inf = _mm256_set1_epi32(0x7f800000);
  const __m256i quiet = _mm256_set1_epi32(0x00400000);
  for (; i + 8 <= n; i += 8) {
    const __m256i x = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(src + i));
    __m256i add;
    if (stochastic) {
      __m256i h = _mm256_add_epi32(
          _mm256_set1_epi32(static_cast<int>(base + (i0 + static_cast<uint32_t>(i)) *
                                                        0x9e3779b9u)),
          _mm256_mullo_epi32(_mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7),
                             _mm256_set1_epi32(static_cast<int>(0x9e3779b9u))));
      h = _mm256_xor_si256(h, _mm256_srli_epi32(h, 16));
      h = _mm256_mullo_epi32(h, _mm256_set1_epi32(0x7feb352d));
      h = _mm256_xor_si256(h, _mm256_srli_epi32(h, 15));
      h = _mm256_mullo_epi32(h, _mm256_set1_epi32(static_cast<int>(0x846ca68bu)));
      h = _mm256_xor_si256(h, _mm256_srli_epi32(h, 16));
      add = _mm256_and_si256(h, _mm256_set1_epi32(0xffff));
    } else {
      add = _mm256_add_epi32(_mm256_set1_epi32(0x7fff),
                             _mm256_and_si256(_mm256_srli_epi32(x, 16), _mm256_set1_epi32(1)));
    }
    __m256i r = _mm256_srli_epi32(_mm256_add_epi32(x, add), 16);
    const __m256i nan = _mm256_cmpgt_epi32(_mm256_and_si256(x, abs_mask), inf);
    r = _mm256_blendv_epi8(r, _mm256_srli_epi32(_mm256_or_si256(x, quiet), 16), nan);
    const __m128i lo = _mm256_castsi256_si128(r), hi = _mm256_extracti128_si256(r, 1);
    _mm_storeu_si128(reinterpret_cast<__m128i*>(dst + i), _mm_packus_epi32(lo, hi));
  }
#endif
  for (; i < n; ++i) {
    const uint32_t x = float_bits(src[i]);
    if ((x & 0x7fffffffu) > 0x7f800000u) {
      dst[i] = static_cast<uint16_t>((x | 0x00400000u) >> 16);
      continue;
    }
    const uint32_t add = stochastic
        ? hash32(base + (i0 + static_cast<uint32_t>(i)) * 0x9e3779b9u) & 0xffffu
        : 0x7fffu + ((x >> 16) & 1u);
    dst[i] = static_cast<uint16_t>((x + add) >> 16);
  }
}

}  // namespace blockwise
}  // namespace gluon_opt

#endif  // GLUON_OPT_KERNELS_BLOCKWISE_H_
