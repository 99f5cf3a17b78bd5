// A CPU stand-in for the part of the CUDA runtime the kernel library's CUDA driver uses
// (gluon_opt/kernels/cuda.cuh), so that its code runs, and is tested, on a machine without a GPU
// (tests/gpu/test_cuda_kernels.py, backend "emulated"). Not CUDA: the device is this process's
// memory, a kernel launch runs its blocks one after the other, each block's threads as real
// threads (so that __syncthreads is a real barrier), and the host compiler compiles the device
// code. What it checks is the driver's logic (the plan it copies, the chunks, the element loop,
// the reduction, finish, the float16 outputs), not nvcc's code: that needs a GPU.
#ifndef GLUON_OPT_EMULATE_CUDA_RUNTIME_H_
#define GLUON_OPT_EMULATE_CUDA_RUNTIME_H_

#include <barrier>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <thread>
#include <vector>

#define __host__
#define __device__
#define __global__
#define __shared__ static  // one block at a time: a static is its shared memory
#define __launch_bounds__(x)

namespace gopt_emulate {

struct Dim {
  unsigned x = 0, y = 0, z = 0;
};

inline thread_local Dim thread_idx, block_idx, block_dim;
inline std::barrier<>* block_barrier = nullptr;

// The kernel ``k`` over ``grid`` blocks of ``block`` threads, one block after the other.
template <class... P>
struct Launch {
  void (*k)(P...);
  unsigned grid, block;
  template <class... A>
  void operator()(A&&... args) const {
    for (unsigned b = 0; b < grid; ++b) {
      std::barrier<> sync(block);
      block_barrier = &sync;
      std::vector<std::thread> threads;
      threads.reserve(block);
      for (unsigned t = 0; t < block; ++t)
        threads.emplace_back([&, t] {
          thread_idx.x = t;
          block_idx.x = b;
          block_dim.x = block;
          k(args...);
        });
      for (auto& th : threads) th.join();
      block_barrier = nullptr;
    }
  }
};

template <class... P>
Launch<P...> launch(void (*k)(P...), long long grid, long long block) {
  return Launch<P...>{k, static_cast<unsigned>(grid), static_cast<unsigned>(block)};
}

}  // namespace gopt_emulate

#define threadIdx gopt_emulate::thread_idx
#define blockIdx gopt_emulate::block_idx
#define blockDim gopt_emulate::block_dim
#define GOPT_LAUNCH(kernel, grid, block, stream) gopt_emulate::launch(kernel, (grid), (block))

inline void __syncthreads() { gopt_emulate::block_barrier->arrive_and_wait(); }

inline unsigned __float_as_uint(float f) {
  unsigned u;
  std::memcpy(&u, &f, sizeof u);
  return u;
}

typedef int cudaError_t;
typedef void* cudaStream_t;
enum { cudaSuccess = 0, cudaErrorMemoryAllocation = 2 };
enum cudaMemcpyKind { cudaMemcpyHostToDevice = 1 };

inline cudaError_t cudaMemcpyAsync(void* dst, const void* src, size_t n, cudaMemcpyKind,
                                   cudaStream_t) {
  std::memcpy(dst, src, n);
  return cudaSuccess;
}
inline cudaError_t cudaMalloc(void** p, size_t n) {
  *p = std::malloc(n);
  return *p ? cudaSuccess : cudaErrorMemoryAllocation;
}
inline cudaError_t cudaFree(void* p) {
  std::free(p);
  return cudaSuccess;
}
inline cudaError_t cudaDeviceSynchronize() { return cudaSuccess; }
inline cudaError_t cudaGetLastError() { return cudaSuccess; }
inline const char* cudaGetErrorString(cudaError_t) { return "emulated CUDA error"; }

#endif  // GLUON_OPT_EMULATE_CUDA_RUNTIME_H_
