// Shared machinery of the gluon_opt fused optimizer kernels (CPU; cuda.cuh is the GPU driver).
//
// Every optimizer op has the same multi-tensor calling convention, so that one op call can
// update many tensors (small tensors then do not pay MXNet's per-op dispatch each):
//
//   inputs, per tensor i (n tensors, ns states each):
//     [weight_i (float32; the float32 master copy when mp=1), grad_i, state_i_1 .. state_i_ns]
//   outputs, per tensor i:  weight_i (float32, aliasing the weight input; float16 when mp=1)
//   attrs:  n, ns, mp (0/1), rescale, clip (< 0: none), sc (n * kScalars comma-separated
//           per-tensor scalars: learning rate, bias corrections, ...), plus the op's own
//           hyperparameters.
//
// The states (and the master weight when mp=1) are updated in place (setMutateInputs); the
// weight is written through the output, which Python passes as ``out=weight``.
//
// One pass per tensor: the elements are cut into blocks (OpenMP across blocks, so big tensors
// use every core and many small tensors are spread over the cores), and every block is
// processed in L1-sized tiles: the gradient tile is loaded (converted from float16), rescaled
// and clipped, the optimizer's rule runs over the tile in a vectorisable loop (run-time
// options become compile-time flags, see with_flag, so the loops carry no branches), and with
// mp=1 the master tile is converted into the float16 weight. Each tensor element is read and
// written once. Rules that need per-tensor norms (LAMB, LARS) declare a reduction: a first
// pass over all tensors sums squares per tensor, ``finish`` turns the sums into per-tensor
// factors, and the update pass follows, still inside the same op call. Adafactor's factored
// states are not weight-shaped and need sums along rows and columns: factored.cc drives those
// tensors itself, from the pieces here (attributes, load_grad, the float16 conversions).
#ifndef GLUON_OPT_KERNELS_COMMON_H_
#define GLUON_OPT_KERNELS_COMMON_H_

#include <omp.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <string>
#include <type_traits>
#include <unordered_map>
#include <vector>

#if defined(__F16C__)
#include <immintrin.h>
#endif

#include "mxnet/lib_api.h"

// The rules (Tile -> updated tile) are shared by the CPU driver below and the CUDA driver of
// cuda.cuh: their functions are GOPT_HD (host and device under nvcc), their loops' OpenMP
// pragmas are GOPT_OMP(...) and their no-alias promises GOPT_RESTRICT, both of which the device
// pass drops (a device thread runs a one-element tile in registers: nothing to vectorise, and
// no promise about memory to make).
#if defined(__CUDACC__)
#include <cuda_runtime.h>  // (nvcc includes it anyway; tests/gpu/emulate needs it here)
#define GOPT_HD __host__ __device__
#else
#define GOPT_HD
#endif
#if defined(__CUDA_ARCH__)
#define GOPT_OMP(x)
#define GOPT_RESTRICT
#else
#define GOPT_OMP(x) _Pragma(#x)
#define GOPT_RESTRICT __restrict
#endif

namespace gluon_opt {

using mxnet::ext::MXReturnValue;
using mxnet::ext::MXTensor;
using mxnet::ext::OpResource;
using Attrs = std::unordered_map<std::string, std::string>;

constexpr int64_t kTile = 1024;          // elements per tile: a few arrays of it fit in L1
constexpr int64_t kMaxTile = 4096;       // the largest tile a storage may ask for (lowprec.h)
constexpr int64_t kBlock = 32 * 1024;    // elements per OpenMP work item
constexpr int64_t kParallelMin = 64 * 1024;  // below this many elements, one thread is faster
constexpr int kMaxStates = 4;

// Threads for one op call. MXNet runs operators on its engine's worker threads, whose OpenMP
// default team is one thread (MXNet's own operators pass their thread count explicitly), so
// omp_get_max_threads() there runs every kernel on one core: measured, fused Adam on ResNet-50
// shapes took 34.7 ms against 27.7 ms for torch's two-thread fused Adam. Like MXNet's own
// operators: OMP_NUM_THREADS when it is set, else every processor.
inline int max_threads() {
  static const int n = [] {
    const char* env = std::getenv("OMP_NUM_THREADS");
    int v = env ? std::atoi(env) : 0;
    if (v <= 0) v = omp_get_num_procs();
    return v > 0 ? v : 1;
  }();
  return n;
}

inline double attr_double(const Attrs& a, const char* key, double fallback) {
  auto it = a.find(key);
  return it == a.end() ? fallback : std::strtod(it->second.c_str(), nullptr);
}

inline int attr_int(const Attrs& a, const char* key, int fallback) {
  auto it = a.find(key);
  return it == a.end() ? fallback : std::atoi(it->second.c_str());
}

inline std::vector<double> attr_doubles(const Attrs& a, const char* key) {
  std::vector<double> out;
  auto it = a.find(key);
  if (it == a.end()) return out;
  const char* p = it->second.c_str();
  char* end = nullptr;
  while (*p) {
    double v = std::strtod(p, &end);
    if (end == p) break;
    out.push_back(v);
    p = end;
    while (*p == ',' || *p == ' ') ++p;
  }
  return out;
}

// ---- bits ----------------------------------------------------------------------------------

GOPT_HD inline uint32_t float_bits(float f) {
  uint32_t b;
  std::memcpy(&b, &f, 4);
  return b;
}

GOPT_HD inline float bits_float(uint32_t b) {
  float f;
  std::memcpy(&f, &b, 4);
  return f;
}

// ---- float16 <-> float32 ------------------------------------------------------------------
// Round to nearest even, as MXNet's cast. F16C converts 8 at a time where the CPU has it.

inline float half_to_float_soft(uint16_t h) {
  uint32_t sign = (h & 0x8000u) << 16, exp = (h >> 10) & 0x1f, man = h & 0x3ffu, bits;
  if (exp == 0) {
    if (man == 0) {
      bits = sign;
    } else {  // subnormal: normalise
      exp = 127 - 15 + 1;
      while (!(man & 0x400u)) { man <<= 1; --exp; }
      bits = sign | (exp << 23) | ((man & 0x3ffu) << 13);
    }
  } else if (exp == 31) {
    bits = sign | 0x7f800000u | (man << 13);
  } else {
    bits = sign | ((exp + 127 - 15) << 23) | (man << 13);
  }
  return bits_float(bits);
}

inline uint16_t float_to_half_soft(float f) {
  const uint32_t x = float_bits(f);
  uint32_t sign = (x >> 16) & 0x8000u, ax = x & 0x7fffffffu;
  if (ax >= 0x7f800000u) return sign | 0x7c00u | (ax > 0x7f800000u ? 0x200u : 0);  // inf/nan
  if (ax >= 0x477ff000u) return sign | 0x7c00u;  // rounds to >= 65520: overflow to inf
  if (ax < 0x38800000u) {  // subnormal or zero in half
    if (ax < 0x33000000u) return sign;  // below half the smallest subnormal
    uint32_t e = ax >> 23, m = (ax & 0x7fffffu) | 0x800000u;
    const int shift = 126 - static_cast<int>(e);  // value = m * 2^(e-150) = r * 2^-24
    uint32_t r = m >> shift, rem = m & ((1u << shift) - 1), half = 1u << (shift - 1);
    if (rem > half || (rem == half && (r & 1u))) ++r;
    return sign | r;
  }
  uint32_t r = ((ax - 0x38000000u) >> 13);
  uint32_t rem = ax & 0x1fffu;
  if (rem > 0x1000u || (rem == 0x1000u && (r & 1u))) ++r;
  return sign | r;
}

inline void half_to_float(const uint16_t* src, float* dst, int64_t n) {
  int64_t i = 0;
#if defined(__F16C__)
  for (; i + 8 <= n; i += 8)
    _mm256_storeu_ps(dst + i, _mm256_cvtph_ps(_mm_loadu_si128(
        reinterpret_cast<const __m128i*>(src + i))));
#endif
  for (; i < n; ++i) dst[i] = half_to_float_soft(src[i]);
}

inline void float_to_half(const float* src, uint16_t* dst, int64_t n) {
  int64_t i = 0;
#if defined(__F16C__)
  for (; i + 8 <= n; i += 8)
    _mm_storeu_si128(reinterpret_cast<__m128i*>(dst + i),
                     _mm256_cvtps_ph(_mm256_loadu_ps(src + i), _MM_FROUND_TO_NEAREST_INT));
#endif
  for (; i < n; ++i) dst[i] = float_to_half_soft(src[i]);
}

// ---- the shared op plumbing -----------------------------------------------------------------

struct Layout {
  int n, ns, mp;
  int per_tensor() const { return 2 + ns; }
};

inline Layout layout(const Attrs& a) {
  return Layout{attr_int(a, "n", 1), attr_int(a, "ns", 0), attr_int(a, "mp", 0)};
}

inline MXReturnValue parse_attrs(const Attrs& a, int* num_in, int* num_out) {
  Layout l = layout(a);
  if (l.n < 1 || l.ns < 0 || l.ns > kMaxStates) {
    MX_ERROR_MSG << "gluon_opt kernel: bad n/ns attributes";
    return mxnet::ext::MX_FAIL;
  }
  *num_in = l.n * l.per_tensor();
  *num_out = l.n;
  return mxnet::ext::MX_SUCCESS;
}

inline MXReturnValue infer_type(const Attrs& a, std::vector<int>* in, std::vector<int>* out) {
  Layout l = layout(a);
  const int f32 = mxnet::ext::kFloat32, f16 = mxnet::ext::kFloat16;
  for (int i = 0; i < l.n; ++i) {
    int base = i * l.per_tensor();
    if ((*in)[base] != f32) {
      MX_ERROR_MSG << "gluon_opt kernel: weights (or master weights) must be float32";
      return mxnet::ext::MX_FAIL;
    }
    int g = (*in)[base + 1];
    if (g != (l.mp ? f16 : f32)) {
      MX_ERROR_MSG << "gluon_opt kernel: gradient " << i << " has the wrong dtype";
      return mxnet::ext::MX_FAIL;
    }
    for (int s = 0; s < l.ns; ++s) {
      if ((*in)[base + 2 + s] != f32) {
        MX_ERROR_MSG << "gluon_opt kernel: optimizer states must be float32";
        return mxnet::ext::MX_FAIL;
      }
    }
    (*out)[i] = l.mp ? f16 : f32;
  }
  return mxnet::ext::MX_SUCCESS;
}

inline MXReturnValue mutate_inputs(const Attrs& a, std::vector<int>* idx) {
  Layout l = layout(a);
  for (int i = 0; i < l.n; ++i) {
    int base = i * l.per_tensor();
    if (l.mp) idx->push_back(base);  // the master weight
    for (int s = 0; s < l.ns; ++s) idx->push_back(base + 2 + s);
  }
  return mxnet::ext::MX_SUCCESS;
}

// Gradient preprocessing shared by every rule: ``clip(rescale * g, -clip, clip)``, with
// MXNet's clip (``x > hi ? hi : x < lo ? lo : x``; plain selects so that the loop vectorises).
struct GradPrep {
  float rescale, clip;
  bool do_rescale, do_clip;
  explicit GradPrep(const Attrs& a) {
    double r = attr_double(a, "rescale", 1.0), c = attr_double(a, "clip", -1.0);
    rescale = static_cast<float>(r);
    clip = static_cast<float>(c);
    do_rescale = r != 1.0;
    do_clip = c >= 0;
  }
  bool active() const { return do_rescale || do_clip; }
  // One element, the same operations as the tile loop below (the CUDA driver's form).
  GOPT_HD float apply(float x) const {
    if (do_rescale) x = x * rescale;
    if (do_clip) {
      const float hi = clip, lo = -clip;
      x = x > hi ? hi : (x < lo ? lo : x);
    }
    return x;
  }
  void operator()(float* __restrict g, int64_t n) const {
    if (do_rescale) {
      const float r = rescale;
#pragma omp simd
      for (int64_t i = 0; i < n; ++i) g[i] *= r;
    }
    if (do_clip) {
      const float hi = clip, lo = -clip;
#pragma omp simd
      for (int64_t i = 0; i < n; ++i) {
        const float x = g[i];
        g[i] = x > hi ? hi : (x < lo ? lo : x);
      }
    }
  }
};

// The gradient of elements [i0, i0 + m) as float32, rescaled and clipped: read in place
// (``direct``: float32 and nothing to do to it), else converted from float16 (mp) and
// preprocessed into ``gbuf`` (a tile of floats).
inline const float* load_grad(const void* g, int64_t i0, int64_t m, bool mp, bool direct,
                              const GradPrep& prep, float* gbuf) {
  if (direct) return static_cast<const float*>(g) + i0;
  if (mp) {
    half_to_float(static_cast<const uint16_t*>(g) + i0, gbuf, m);
  } else {
    std::memcpy(gbuf, static_cast<const float*>(g) + i0, m * sizeof(float));
  }
  prep(gbuf, m);
  return gbuf;
}

// A tile of one tensor as a rule sees it: weights in and out (``w_out`` may alias ``w_in``),
// the preprocessed gradient, the state tiles (a state of ``Rule::kScalarStates`` is the
// small tensor itself, not offset), this tensor's scalars and the per-tensor values its
// ``finish`` derived (``ex``). The states' elements are ``S``: float, or (for the rules
// templated on it, lowprec.h) blockwise.h's bfloat16 ``Bf16``, which a rule reads with
// ``state_value(x)`` and writes with ``set_state(x, value)``, so that its loop converts in
// registers instead of through float32 buffers.
template <class S>
struct TileOf {
  int64_t n;
  const float* w_in;
  float* w_out;
  const float* g;
  S* s[kMaxStates];
  const double* sc;
  const float* ex;
};
using Tile = TileOf<float>;

GOPT_HD inline float state_value(float x) { return x; }
GOPT_HD inline void set_state(float& x, float value) { x = value; }

struct Tensors {
  float* w;
  const void* g;
  void* out;
  float* s[kMaxStates];
  int64_t size;
};

struct Block {
  int t;
  int64_t begin, end;
};

// Defaults of the optional parts of a rule; rules derive from it.
//   kReduce:       number of per-tensor sums (double) a first pass computes with
//                  ``void reduce(const Tile&, double* acc) const`` (0: one pass only);
//   kDerived:      number of per-tensor floats ``finish`` computes between the passes;
//   kScalarStates: bit mask of the states that are small per-tensor tensors (not
//                  weight-shaped; only finish() touches them);
//   kGradInUpdate: whether the update pass reads the gradient (two-pass rules may not);
//   finish(t, sc, sums, ex): runs once per tensor, serially, before the update pass: may
//                  update scalar states and derive per-tensor values from the sums.
struct RuleBase {
  static constexpr int kReduce = 0;
  static constexpr int kDerived = 0;
  static constexpr unsigned kScalarStates = 0;
  static constexpr bool kGradInUpdate = true;
  bool supports(const Layout&) const { return true; }
  GOPT_HD void reduce(const Tile&, double*) const {}
  GOPT_HD void finish(const Tensors&, const double*, const double*, float*) const {}
};

// The moment rates and epsilon of the Adam-like rules, in float32 from their attributes, each
// ``1 - beta`` computed in double and then rounded, as the references compute it: b1, c1 =
// 1 - b1, b2, c2 = 1 - b2, e. The defaults are the optimizer's; rules derive from it beside
// RuleBase (a loop copies the fields it uses into locals first, so that its stores cannot be
// taken to change them).
struct Moments {
  float b1, c1, b2, c2, e;
  Moments(const Attrs& a, double beta1, double beta2, double epsilon)
      : b1(static_cast<float>(attr_double(a, "beta1", beta1))),
        c1(static_cast<float>(1.0 - attr_double(a, "beta1", beta1))),
        b2(static_cast<float>(attr_double(a, "beta2", beta2))),
        c2(static_cast<float>(1.0 - attr_double(a, "beta2", beta2))),
        e(static_cast<float>(attr_double(a, "epsilon", epsilon))) {}
};

// ``f(std::true_type{})`` or ``f(std::false_type{})``: the rules turn run-time options into
// compile-time ones with it, so the inner loops carry no branches and vectorise.
template <class F>
GOPT_HD inline void with_flag(bool b, F&& f) {
  if (b) f(std::true_type{}); else f(std::false_type{});
}

GOPT_HD inline float sum_to_norm(double sumsq) { return static_cast<float>(std::sqrt(sumsq)); }

// x^y in float32 as the CPU's powf rounds it (correctly rounded in glibc): on the device, CUDA's
// powf may be 2 ulp off, so the power is taken in double there and rounded once.
GOPT_HD inline float pow_f32(float x, float y) {
#if defined(__CUDA_ARCH__)
  return static_cast<float>(::pow(static_cast<double>(x), static_cast<double>(y)));
#else
  return std::pow(x, y);
#endif
}

// Tensor t's arrays in a call's inputs and outputs (the calling convention above).
inline Tensors tensor_arrays(const Layout& l, const std::vector<MXTensor>& inputs,
                             const std::vector<MXTensor>& outputs, int t) {
  const int base = t * l.per_tensor();
  Tensors p;
  p.w = static_cast<float*>(inputs[base].data_ptr);
  p.g = inputs[base + 1].data_ptr;
  p.out = outputs[t].data_ptr;
  for (int s = 0; s < kMaxStates; ++s)
    p.s[s] = s < l.ns ? static_cast<float*>(inputs[base + 2 + s].data_ptr) : nullptr;
  p.size = inputs[base].size();
  return p;
}

// The checks of a call both drivers make: one scalar list per tensor (``stride`` scalars
// each), a supported layout.
template <class Rule>
inline bool check_call(const Layout& l, const Rule& rule, const std::vector<double>& sc,
                       int stride = Rule::kScalars) {
  if (static_cast<int64_t>(sc.size()) != static_cast<int64_t>(l.n) * stride) {
    MX_ERROR_MSG << "gluon_opt kernel: expected " << l.n * stride
                 << " per-tensor scalars, got " << sc.size();
    return false;
  }
  if (!rule.supports(l)) {
    MX_ERROR_MSG << "gluon_opt kernel: unsupported number of states " << l.ns;
    return false;
  }
  return true;
}

// How a call's states are stored, for ``forward``. F32States: float32 arrays of the weight's
// shape (or the rule's small per-tensor states), which the rules read and update in place.
// lowprec.h's LowPrecStates keeps them in bfloat16 or blockwise 8 bits: it reads each tile of
// them into float32 buffers before the rule runs (``load``) and stores them after (``store``);
// its Bf16States hands the rule the bfloat16 states themselves.
//   State:         the element type of the state tiles the rule gets (TileOf<State>);
//   kExtraScalars: per-tensor scalars the storage reads after the rule's kScalars;
//   tile():        elements per tile (the storage's blocks must not straddle tiles);
//   tensor():      tensor t's arrays;
//   Work:          a thread's buffers;
//   load<Rule>():  the state pointers of a tile;  store(): after the rule has run on it.
struct F32States {
  using State = float;
  static constexpr int kExtraScalars = 0;
  struct Work {
    explicit Work(const F32States&) {}
  };
  F32States(const Attrs&, const Layout&) {}
  bool ok() const { return true; }
  int64_t tile() const { return kTile; }
  Tensors tensor(const Layout& l, const std::vector<MXTensor>& inputs,
                 const std::vector<MXTensor>& outputs, int t) {
    return tensor_arrays(l, inputs, outputs, t);
  }
  template <class Rule>
  void load(const Tensors& p, int, int64_t i0, int64_t, const double*, float** s,
            Work&) const {
    for (int k = 0; k < kMaxStates; ++k)
      s[k] = p.s[k] ? ((Rule::kScalarStates >> k) & 1u ? p.s[k] : p.s[k] + i0) : nullptr;
  }
  template <class Rule>
  void store(int, int64_t, int64_t, const double*, Work&) const {}
};

// Runs ``Rule`` over every tensor of the call: an optional reduction pass over all tensors
// (OpenMP across blocks, per-block partial sums added in block order, so deterministic for
// any thread count), ``finish`` per tensor, then the update pass. All in one op call: nothing
// returns to the host in between.
template <class Rule, class Storage = F32States>
MXReturnValue forward(const Attrs& a, std::vector<MXTensor>* inputs,
                      std::vector<MXTensor>* outputs, const OpResource& res) {
  const Layout l = layout(a);
  const Rule rule(a);
  const GradPrep prep(a);
  const std::vector<double> sc = attr_doubles(a, "sc");
  constexpr int stride = Rule::kScalars + Storage::kExtraScalars;
  Storage storage(a, l);
  if (!storage.ok() || !check_call<Rule>(l, rule, sc, stride)) return mxnet::ext::MX_FAIL;
  const int64_t tile_size = storage.tile();  // <= kMaxTile, and divides kBlock
  // The tensors' pointers, and the work list: (tensor, begin, end) blocks over all of them.
  std::vector<Tensors> tensors(l.n);
  std::vector<Block> blocks;
  int64_t total = 0;
  for (int t = 0; t < l.n; ++t) {
    Tensors& p = tensors[t];
    p = storage.tensor(l, *inputs, *outputs, t);
    total += p.size;
    for (int64_t b = 0; b < p.size; b += kBlock)
      blocks.push_back({t, b, std::min(p.size, b + kBlock)});
  }
  const int64_t nblocks = static_cast<int64_t>(blocks.size());
  const int threads = total >= kParallelMin ? max_threads() : 1;
  const bool mp = l.mp != 0, direct = !mp && !prep.active();

  // One tile of tensor ``p`` at ``i0``: the gradient converted and preprocessed into ``gbuf``
  // (or read in place when there is nothing to do to it), the states as the storage gives
  // them.
  auto make_tile = [&](const Tensors& p, int t, int64_t i0, int64_t m, float* gbuf,
                       bool need_grad, const float* ex, typename Storage::Work& work) {
    TileOf<typename Storage::State> tile;
    tile.n = m;
    tile.w_in = p.w + i0;
    tile.w_out = mp ? p.w + i0 : static_cast<float*>(p.out) + i0;
    tile.g = need_grad ? load_grad(p.g, i0, m, mp, direct, prep, gbuf) : nullptr;
    tile.sc = sc.data() + t * stride;
    storage.template load<Rule>(p, t, i0, m, tile.sc, tile.s, work);
    tile.ex = ex;
    return tile;
  };

  std::vector<double> sums(static_cast<size_t>(l.n) * std::max(Rule::kReduce, 1), 0.0);
  if constexpr (Rule::kReduce > 0) {
    std::vector<double> partial(static_cast<size_t>(nblocks) * std::max(Rule::kReduce, 1), 0.0);
#pragma omp parallel for schedule(dynamic, 1) num_threads(threads) if (threads > 1)
    for (int64_t bi = 0; bi < nblocks; ++bi) {
      alignas(64) float gbuf[kMaxTile];
      typename Storage::Work work(storage);
      const Block blk = blocks[bi];
      const Tensors& p = tensors[blk.t];
      double* acc = partial.data() + bi * Rule::kReduce;
      for (int64_t i0 = blk.begin; i0 < blk.end; i0 += tile_size) {
        const int64_t m = std::min(tile_size, blk.end - i0);
        rule.reduce(make_tile(p, blk.t, i0, m, gbuf, true, nullptr, work), acc);
      }
    }
    for (int64_t bi = 0; bi < nblocks; ++bi)
      for (int k = 0; k < Rule::kReduce; ++k)
        sums[blocks[bi].t * Rule::kReduce + k] += partial[bi * Rule::kReduce + k];
  }
  std::vector<float> derived(static_cast<size_t>(l.n) * std::max(Rule::kDerived, 1), 0.0f);
  for (int t = 0; t < l.n; ++t)
    rule.finish(tensors[t], sc.data() + t * stride, sums.data() + t * Rule::kReduce,
                derived.data() + t * Rule::kDerived);

#pragma omp parallel for schedule(dynamic, 1) num_threads(threads) if (threads > 1)
  for (int64_t bi = 0; bi < nblocks; ++bi) {
    alignas(64) float gbuf[kMaxTile];
    typename Storage::Work work(storage);
    const Block blk = blocks[bi];
    const Tensors& p = tensors[blk.t];
    const float* ex = derived.data() + blk.t * Rule::kDerived;
    for (int64_t i0 = blk.begin; i0 < blk.end; i0 += tile_size) {
      const int64_t m = std::min(tile_size, blk.end - i0);
      const auto tile = make_tile(p, blk.t, i0, m, gbuf, Rule::kGradInUpdate, ex, work);
      rule(tile);
      storage.template store<Rule>(blk.t, i0, m, tile.sc, work);
      if (mp) float_to_half(p.w + i0, static_cast<uint16_t*>(p.out) + i0, m);
    }
  }
  return mxnet::ext::MX_SUCCESS;
}

// Shapes: every weight-shaped input has its weight's shape; the rule's small per-tensor states
// (kScalarStates: NAdam's mu_product, Schedule-Free's (lr_max, weight_sum)) have their own.
template <class Rule>
MXReturnValue infer_shape_rule(const Attrs& a, std::vector<std::vector<unsigned>>* in,
                               std::vector<std::vector<unsigned>>* out) {
  Layout l = layout(a);
  for (int i = 0; i < l.n; ++i) {
    int base = i * l.per_tensor();
    for (int k = 1; k < l.per_tensor(); ++k) {
      if (k >= 2 && ((Rule::kScalarStates >> (k - 2)) & 1u)) continue;  // its own shape
      if ((*in)[base + k] != (*in)[base]) {
        MX_ERROR_MSG << "gluon_opt kernel: tensor " << i << " input " << k
                     << " does not have its weight's shape";
        return mxnet::ext::MX_FAIL;
      }
    }
    (*out)[i] = (*in)[base];
  }
  return mxnet::ext::MX_SUCCESS;
}

}  // namespace gluon_opt

#if defined(__CUDACC__)
#include "cuda.cuh"
#define GLUON_OPT_GPU_FORWARD(Rule) .setForward(gluon_opt::forward_gpu<Rule>, "gpu")
#else
#define GLUON_OPT_GPU_FORWARD(Rule)
#endif

// Registers one optimizer op with the shared convention above (and its CUDA driver when nvcc
// compiles the file).
#define GLUON_OPT_REGISTER_RULE(OpName, Rule)                     \
  REGISTER_OP(OpName)                                              \
      .setParseAttrs(gluon_opt::parse_attrs)                       \
      .setInferType(gluon_opt::infer_type)                         \
      .setInferShape(gluon_opt::infer_shape_rule<Rule>)            \
      .setMutateInputs(gluon_opt::mutate_inputs)                   \
      .setForward(gluon_opt::forward<Rule>, "cpu")                 \
      GLUON_OPT_GPU_FORWARD(Rule)

#endif  // GLUON_OPT_KERNELS_COMMON_H_
