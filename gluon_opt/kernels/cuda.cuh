// The CUDA driver of the rule ops: the same ops, attributes and rules as the CPU driver
// (common.h's forward<Rule>), registered for "gpu" when nvcc compiles a rule file (build.py
// does that with GLUON_OPT_CUDA=1, for a CUDA build of MXNet). Tested, without MXNet, by
// tests/gpu against the CPU driver: on a GPU machine, and everywhere with the CUDA runtime
// emulated on the CPU (tests/gpu/emulate: the logic, not nvcc's code).
//
// A rule's code is shared, not rewritten: each GPU thread runs the rule's operator() (and
// reduce) over a one-element Tile held in its registers (on_element), so every float32
// operation is the CPU's, in the CPU's order.
// nvcc builds with -fmad=false and IEEE division and square root, so the results should be
// the CPU kernels' bit for bit (tests/gpu checks); the per-tensor sums of the two-pass rules
// (LAMB, LARS) are double sums in another order, which can move a norm by an ulp.
//
// One op call, as on the CPU, updates many tensors: the host cuts them into chunks of kChunk
// elements (a CUDA block each), copies the tensors' pointers, the chunks and the per-tensor
// scalars to MXNet's temporary workspace on the op's stream, then launches up to three kernels
// on that stream: the rule's reduction (per-chunk partial sums), finish (one thread per tensor:
// the sums in chunk order, then the rule's finish(), which may advance small per-tensor states),
// and the update. Nothing returns to the host in between.
#ifndef GLUON_OPT_KERNELS_CUDA_CUH_
#define GLUON_OPT_KERNELS_CUDA_CUH_

#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <climits>

// kernel<<<grid, block, 0, stream>>>, spelt so that tests/gpu/emulate can run the kernels on CPU
// threads (it defines GOPT_LAUNCH first).
#ifndef GOPT_LAUNCH
#define GOPT_LAUNCH(kernel, grid, block, stream) kernel<<<(grid), (block), 0, (stream)>>>
#endif

namespace gluon_opt {
namespace gpu {

// threads per block (tests/gpu/emulate takes fewer: its threads are the CPU's)
#ifndef GOPT_CUDA_THREADS
#define GOPT_CUDA_THREADS 256
#endif
constexpr int kThreads = GOPT_CUDA_THREADS;
constexpr int kFinishThreads = kThreads < 128 ? kThreads : 128;
constexpr int64_t kChunk = 16 * 1024;  // elements per CUDA block: 64 per thread of 256

// A tensor's arrays and its chunks [first_chunk, first_chunk + chunks).
struct DevTensor : Tensors {
  int first_chunk, chunks;
};

// Device pointers into the call's workspace.
struct Plan {
  const DevTensor* tensors;
  const Block* chunks;  // a chunk is the CPU driver's Block: (tensor, begin, end)
  const double* sc;
  double* partial;  // per chunk, Rule::kReduce sums
  float* derived;   // per tensor, Rule::kDerived values from finish()
};

// The gradient of element i as float32 (from float16 with mp), rescaled and clipped.
__device__ inline float load_grad(const void* g, int64_t i, bool mp, const GradPrep& prep) {
  const float x = mp ? __half2float(static_cast<const __half*>(g)[i])
                     : static_cast<const float*>(g)[i];
  return prep.apply(x);
}

__device__ inline bool same_bits(float a, float b) {
  return __float_as_uint(a) == __float_as_uint(b);
}

// Runs ``f`` (the rule's update or reduction) on element i of tensor p as a one-element Tile
// whose arrays are this thread's registers: the weight (the float32 master with mp), the
// gradient, the weight-shaped states; then stores back what changed (LAMB's second pass reads
// its moments without changing them: they are not written again) and, in the update pass
// (``update``), the weight and, with mp, its float16 copy. A small per-tensor state
// (kScalarStates) stays in memory: only finish() touches it.
// (The first version pointed the Tile into device memory and at a local gradient, with the
// rules' __restrict promises in force: on an H100 the rules then read garbage gradients and the
// driver stale weights, most likely nvcc reordering accesses under those promises. Registers,
// and no __restrict on the device, leave it nothing to reorder. Not yet run on a GPU.)
template <class Rule, class F>
__device__ inline void on_element(const DevTensor& p, int64_t i, const GradPrep& prep, bool mp,
                                  bool need_grad, bool update, const double* sc,
                                  const float* ex, F&& f) {
  float w = p.w[i];
  const float w0 = w;
  float g = need_grad ? load_grad(p.g, i, mp, prep) : 0.0f;
  float s[kMaxStates], s0[kMaxStates];
  Tile t;
  t.n = 1;
  t.w_in = &w;
  t.w_out = &w;
  t.g = need_grad ? &g : nullptr;
  t.sc = sc;
  t.ex = ex;
#pragma unroll
  for (int k = 0; k < kMaxStates; ++k) {
    s[k] = s0[k] = 0.0f;
    if (p.s[k] == nullptr) {
      t.s[k] = nullptr;
    } else if ((Rule::kScalarStates >> k) & 1u) {
      t.s[k] = p.s[k];
    } else {
      s[k] = s0[k] = p.s[k][i];
      t.s[k] = &s[k];
    }
  }
  f(t);
#pragma unroll
  for (int k = 0; k < kMaxStates; ++k)
    if (p.s[k] != nullptr && !((Rule::kScalarStates >> k) & 1u) && !same_bits(s[k], s0[k]))
      p.s[k][i] = s[k];
  if (!update) return;
  if (mp) {
    if (!same_bits(w, w0)) p.w[i] = w;
    static_cast<__half*>(p.out)[i] = __float2half_rn(w);
  } else if (p.out != p.w || !same_bits(w, w0)) {
    static_cast<float*>(p.out)[i] = w;
  }
}

template <class Rule>
__global__ void __launch_bounds__(kThreads)
    reduce_kernel(const Rule rule, const GradPrep prep, const bool mp, const Plan plan) {
  constexpr int K = Rule::kReduce;
  const Block c = plan.chunks[blockIdx.x];
  const DevTensor p = plan.tensors[c.t];
  const double* sc = plan.sc + static_cast<int64_t>(c.t) * Rule::kScalars;
  double acc[K];
  for (int k = 0; k < K; ++k) acc[k] = 0.0;
  for (int64_t i = c.begin + threadIdx.x; i < c.end; i += kThreads)
    on_element<Rule>(p, i, prep, mp, true, false, sc, nullptr,
                     [&](const Tile& t) { rule.reduce(t, acc); });
  // a fixed tree over the block's threads: the same sums on every run
  __shared__ double part[kThreads];
  for (int k = 0; k < K; ++k) {
    part[threadIdx.x] = acc[k];
    __syncthreads();
    for (int s = kThreads / 2; s > 0; s >>= 1) {
      if (static_cast<int>(threadIdx.x) < s) part[threadIdx.x] += part[threadIdx.x + s];
      __syncthreads();
    }
    if (threadIdx.x == 0) plan.partial[static_cast<int64_t>(blockIdx.x) * K + k] = part[0];
    __syncthreads();
  }
}

template <class Rule>
__global__ void finish_kernel(const Rule rule, const int n, const Plan plan) {
  constexpr int K = Rule::kReduce > 0 ? Rule::kReduce : 1;
  const int t = blockIdx.x * blockDim.x + threadIdx.x;
  if (t >= n) return;
  const DevTensor p = plan.tensors[t];
  double sums[K];
  for (int k = 0; k < K; ++k) sums[k] = 0.0;
  for (int c = p.first_chunk; c < p.first_chunk + p.chunks; ++c)
    for (int k = 0; k < Rule::kReduce; ++k) sums[k] += plan.partial[c * Rule::kReduce + k];
  rule.finish(p, plan.sc + static_cast<int64_t>(t) * Rule::kScalars, sums,
              plan.derived + static_cast<int64_t>(t) * Rule::kDerived);
}

template <class Rule>
__global__ void __launch_bounds__(kThreads)
    update_kernel(const Rule rule, const GradPrep prep, const bool mp, const Plan plan) {
  const Block c = plan.chunks[blockIdx.x];
  const DevTensor p = plan.tensors[c.t];
  const double* sc = plan.sc + static_cast<int64_t>(c.t) * Rule::kScalars;
  const float* ex = plan.derived + static_cast<int64_t>(c.t) * Rule::kDerived;
  for (int64_t i = c.begin + threadIdx.x; i < c.end; i += kThreads)
    on_element<Rule>(p, i, prep, mp, Rule::kGradInUpdate, true, sc, ex,
                     [&](const Tile& t) { rule(t); });
}

inline size_t align_up(size_t x) { return (x + 255) / 256 * 256; }

}  // namespace gpu

template <class Rule>
MXReturnValue forward_gpu(const Attrs& a, std::vector<MXTensor>* inputs,
                          std::vector<MXTensor>* outputs, const OpResource& res) {
  const Layout l = layout(a);
  const Rule rule(a);
  const GradPrep prep(a);
  const std::vector<double> sc = attr_doubles(a, "sc");
  if (!check_call<Rule>(l, rule, sc)) return mxnet::ext::MX_FAIL;

  std::vector<gpu::DevTensor> tensors(l.n);
  std::vector<Block> chunks;
  for (int t = 0; t < l.n; ++t) {
    gpu::DevTensor& p = tensors[t];
    static_cast<Tensors&>(p) = tensor_arrays(l, *inputs, *outputs, t);
    p.first_chunk = static_cast<int>(chunks.size());
    for (int64_t b = 0; b < p.size; b += gpu::kChunk)
      chunks.push_back({t, b, std::min(p.size, b + gpu::kChunk)});
    p.chunks = static_cast<int>(chunks.size()) - p.first_chunk;
  }
  const int nchunks = static_cast<int>(chunks.size());

  // One workspace: [tensors | chunks | scalars] copied from the host, [partial | derived].
  const size_t off_chunks = gpu::align_up(tensors.size() * sizeof(gpu::DevTensor));
  const size_t off_sc = off_chunks + gpu::align_up(chunks.size() * sizeof(Block));
  const size_t host_bytes = off_sc + sc.size() * sizeof(double);
  const size_t off_partial = gpu::align_up(host_bytes);
  const size_t off_derived = off_partial + gpu::align_up(
      static_cast<size_t>(nchunks) * Rule::kReduce * sizeof(double));
  const size_t bytes = off_derived + static_cast<size_t>(l.n) * Rule::kDerived * sizeof(float);
  if (bytes > static_cast<size_t>(INT_MAX)) {
    MX_ERROR_MSG << "gluon_opt kernel: too many tensors for one call";
    return mxnet::ext::MX_FAIL;
  }
  std::vector<char> host(host_bytes);
  std::memcpy(host.data(), tensors.data(), tensors.size() * sizeof(gpu::DevTensor));
  std::memcpy(host.data() + off_chunks, chunks.data(), chunks.size() * sizeof(Block));
  std::memcpy(host.data() + off_sc, sc.data(), sc.size() * sizeof(double));
  char* dev = static_cast<char*>(res.alloc_gpu(static_cast<int>(bytes)));
  if (dev == nullptr) {
    MX_ERROR_MSG << "gluon_opt kernel: no GPU workspace (" << bytes << " bytes)";
    return mxnet::ext::MX_FAIL;
  }
  cudaStream_t stream = res.get_cuda_stream();
  // from pageable memory: returns once the bytes are staged, so ``host`` may go
  cudaError_t err = cudaMemcpyAsync(dev, host.data(), host_bytes, cudaMemcpyHostToDevice, stream);
  const gpu::Plan plan{reinterpret_cast<const gpu::DevTensor*>(dev),
                       reinterpret_cast<const Block*>(dev + off_chunks),
                       reinterpret_cast<const double*>(dev + off_sc),
                       reinterpret_cast<double*>(dev + off_partial),
                       reinterpret_cast<float*>(dev + off_derived)};
  const bool mp = l.mp != 0;
  if (err == cudaSuccess) {
    if constexpr (Rule::kReduce > 0) {
      if (nchunks > 0)
        GOPT_LAUNCH(gpu::reduce_kernel<Rule>, nchunks, gpu::kThreads, stream)(rule, prep, mp, plan);
    }
    if constexpr (Rule::kReduce > 0 || Rule::kDerived > 0 || Rule::kScalarStates != 0)
      GOPT_LAUNCH(gpu::finish_kernel<Rule>, (l.n + gpu::kFinishThreads - 1) / gpu::kFinishThreads,
                  gpu::kFinishThreads, stream)(rule, l.n, plan);
    if (nchunks > 0)
      GOPT_LAUNCH(gpu::update_kernel<Rule>, nchunks, gpu::kThreads, stream)(rule, prep, mp, plan);
    err = cudaGetLastError();
  }
  if (err != cudaSuccess) {
    MX_ERROR_MSG << "gluon_opt kernel: CUDA error: " << cudaGetErrorString(err);
    return mxnet::ext::MX_FAIL;
  }
  return mxnet::ext::MX_SUCCESS;
}

}  // namespace gluon_opt

#endif  // GLUON_OPT_KERNELS_CUDA_CUH_
