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
//   M(i, j) = 10^(i-6) * (0.1 + 0.9 * (j + 0.5) / 2^(i+u)),  j = 0 .. 2^(i+u) - 1,
//
// computed in double and rounded to float32 (lowprec.py computes the same doubles).
//
// Quantising y = x * (1 / absmax) (bitsandbytes multiplies by the inverse too) gives the code
//   code(y) = #{k : mid[k] <= y},   mid[k] = (M[k] + M[k+1]) * 0.5f  (float32),
// the index of the nearest map value, ties to the larger one (numpy's
// searchsorted(mid, y, 'right')). The scalar path (block tails, CPUs without AVX2) searches
// the mids. The SIMD path looks the count up in a grid over |y|'s float32 bits: the exponent
// and the top 8 mantissa bits (256 cells per octave, 2^-23 <= |y| < 2; below, the code of
// zero) are a cell holding at most one mid (the mids are at least 0.35% apart, the cells
// 0.39% wide at most), so the count is the cell's count below it plus one comparison of the 15
// bits left with that mid's: one gather per 8 elements (measured on an AMD EPYC: 0.7 ns per
// element, against 1.5 ns for computing the code arithmetically and 5 for a binary search).
//
// A block whose absmax is not finite (a NaN or an infinity in the state) stores the scale NaN
// and the code of zero: the whole block reads back NaN, so a diverged run stays visible. A
// block whose absmax is zero or subnormal stores the scale 0 (all zeros).
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
#include <vector>

#include "common.h"  // GOPT_HD

#if defined(__AVX2__) && !defined(__CUDACC__)
#include <immintrin.h>
#define GOPT_BLOCKWISE_AVX2 1
#endif

namespace gluon_opt {
namespace blockwise {

// The grid of the SIMD quantiser: cells of 2^15 float bit patterns from 2^kGridExp.
constexpr int kGridMin = 104;                     // the biased exponent of 2^-23
constexpr int kGridCells = (128 - kGridMin) << 8;  // 2^-23 <= |y| < 2, 256 cells per octave

// One of the two maps, with the grid that counts its mids.
struct DynamicMap {
  int zero;           // code of 0: 127 signed, 0 unsigned
  bool grid_ok;       // every grid cell holds at most one mid (checked when it is built)
  float value[256];   // the sorted map
  float mid[255];     // mid[k] = (value[k] + value[k + 1]) * 0.5f
  // per cell, for y >= 0 (first kGridCells) and y < 0: (count << 16) | threshold, the code of
  // the cell's smallest |y| and the low 15 bits from which |y| is one mid further (0x8000: none)
  std::vector<int32_t> grid;

  explicit DynamicMap(bool is_signed) : grid_ok(true), grid(2 * kGridCells) {
    const int u = is_signed ? 0 : 1;
    double pos[254];
    int count = 0;
    for (int i = 0; i < 7; ++i) {
      const int n = 1 << (i + u);
      const double p10 = std::pow(10.0, i - 6);
      for (int j = 0; j < n; ++j) pos[count++] = p10 * (0.1 + 0.9 * ((j + 0.5) / n));
    }
    int k = 0;
    if (is_signed)
      for (int j = count - 1; j >= 0; --j) value[k++] = static_cast<float>(-pos[j]);
    zero = k;
    value[k++] = 0.0f;
    for (int j = 0; j < count; ++j) value[k++] = static_cast<float>(pos[j]);
    value[k++] = 1.0f;
    for (int j = 0; j < 255; ++j) mid[j] = (value[j] + value[j + 1]) * 0.5f;
    // y >= 0: code = mids <= 0 (all the negative ones) + positive mids <= y;
    // y < 0:  code = negative mids <= y = negative mids with |mid| >= |y|.
    int negative = 0;
    for (int j = 0; j < 255; ++j) negative += mid[j] < 0.0f;
    for (int side = 0; side < 2; ++side) {
      for (int c = 0; c < kGridCells; ++c) {
        const uint32_t lo = (static_cast<uint32_t>(kGridMin) << 23) + (static_cast<uint32_t>(c) << 15);
        int below = 0, inside = -1, hits = 0;
        for (int j = 0; j < 255; ++j) {
          if (side == 0 ? !(mid[j] > 0.0f) : !(mid[j] < 0.0f)) continue;
          const uint32_t b = float_bits(std::fabs(mid[j]));
          if (b < lo) {
            ++below;
          } else if (b < lo + 0x8000u) {
            inside = static_cast<int>(b & 0x7fffu);
            ++hits;
          }
        }
        if (hits > 1 || (c == 0 && below > 0)) grid_ok = false;
        int base, thr;
        if (side == 0) {
          base = negative + below;
          thr = inside >= 0 ? inside : 0x8000;
        } else {  // |y| beyond |mid| (bits strictly above) counts one less
          base = negative - below;
          thr = inside >= 0 ? inside + 1 : 0x8000;
        }
        grid[side * kGridCells + c] = (base << 16) | thr;
      }
    }
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
// The codes of 8 normalised values, from the grid (see the top of the file).
inline __m256i codes8(const DynamicMap& q, __m256 y) {
  const __m256i bits = _mm256_castps_si256(y);
  const __m256i neg = _mm256_srai_epi32(bits, 31);  // -1 where y < 0
  const __m256i mag = _mm256_and_si256(bits, _mm256_set1_epi32(0x7fffffff));
  __m256i cell = _mm256_sub_epi32(_mm256_srli_epi32(mag, 15), _mm256_set1_epi32(kGridMin << 8));
  cell = _mm256_min_epi32(_mm256_max_epi32(cell, _mm256_setzero_si256()),
                          _mm256_set1_epi32(kGridCells - 1));
  cell = _mm256_add_epi32(cell, _mm256_and_si256(neg, _mm256_set1_epi32(kGridCells)));
  const __m256i entry = _mm256_i32gather_epi32(q.grid.data(), cell, 4);
  const __m256i thr = _mm256_and_si256(entry, _mm256_set1_epi32(0xffff));
  const __m256i base = _mm256_srli_epi32(entry, 16);
  // the cell's mid is passed (-1) where the low bits reach its threshold; below 2^-23 the cell
  // is the first, which holds no mid (threshold 0x8000): the code of zero
  const __m256i past = _mm256_cmpgt_epi32(_mm256_and_si256(mag, _mm256_set1_epi32(0x7fff)),
                                          _mm256_sub_epi32(thr, _mm256_set1_epi32(1)));
  // y >= 0: base + 1 where past; y < 0: base - 1 where past
  return _mm256_add_epi32(_mm256_sub_epi32(base, _mm256_xor_si256(past, neg)), neg);
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
  if (mb < 0x00800000u) {  // zero or subnormal: a block of zeros
    *scale = 0.0f;
    std::memset(codes, q.zero, n);
    return;
  }
  const float absmax = bits_float(mb);
  *scale = absmax;
  const float inv = 1.0f / absmax;
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

// The n values of one block: map value times the block's scale (a table lookup per element:
// measured faster here than AVX2's gather or computing the value).
inline void dequantize_block(const DynamicMap& q, const uint8_t* codes, float scale, int64_t n,
                             float* out) {
  for (int64_t i = 0; i < n; ++i) out[i] = q.value[codes[i]] * scale;
}

// ---- bfloat16 -------------------------------------------------------------------------------

// One bfloat16 state element, as the rules templated on their states read and write it
// (common.h's TileOf<Bf16>): the top 16 bits of its float32, rounded to nearest even (NaN stays
// a quiet NaN), the same bits as float_to_bf16's nearest rounding.
struct Bf16 {
  uint16_t bits;
};

GOPT_HD inline uint16_t bf16_nearest(uint32_t x) {
  if ((x & 0x7fffffffu) > 0x7f800000u) return static_cast<uint16_t>((x | 0x00400000u) >> 16);
  return static_cast<uint16_t>((x + 0x7fffu + ((x >> 16) & 1u)) >> 16);
}

// (GOPT_HD only because the rules' templates are: the CUDA driver instantiates them with float)
GOPT_HD inline float state_value(Bf16 x) {
  return bits_float(static_cast<uint32_t>(x.bits) << 16);
}
GOPT_HD inline void set_state(Bf16& x, float value) { x.bits = bf16_nearest(float_bits(value)); }

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
    if (!stochastic || (x & 0x7fffffffu) > 0x7f800000u) {
      dst[i] = bf16_nearest(x);
      continue;
    }
    const uint32_t add = hash32(base + (i0 + static_cast<uint32_t>(i)) * 0x9e3779b9u) & 0xffffu;
    dst[i] = static_cast<uint16_t>((x + add) >> 16);
  }
}

}  // namespace blockwise
}  // namespace gluon_opt

#endif  // GLUON_OPT_KERNELS_BLOCKWISE_H_
