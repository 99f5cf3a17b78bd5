// A stand-in for MXNet's side of the external-operator API, for testing the kernel library's
// CUDA driver where no CUDA build of MXNet can run (MXNet's last GPU wheels hold no code for
// Hopper GPUs). Built into the kernel library (build.build_library's extra_sources) on a
// machine with nvcc and a GPU; test_cuda_kernels.py calls it through ctypes.
//
// gopt_harness_call runs a registered op's forward for "cpu" or "gpu" through
// _opCallFCompute, the very entry MXNet calls, with an OpResource whose GPU allocations come
// from one reusable workspace (as MXNet's temporary-space resource) and the caller's stream.
#include <cuda_runtime.h>

#include <cstring>
#include <string>
#include <vector>

#include "mxnet/lib_api.h"

namespace {

struct Workspace {
  void* ptr = nullptr;
  int size = 0;
};

Workspace g_workspace;
std::vector<std::vector<char>> g_cpu_blocks;
std::string g_error;

void* gpu_malloc(void*, int size) {
  if (size > g_workspace.size) {
    // the kernels of earlier calls may still read the old workspace
    cudaDeviceSynchronize();
    cudaFree(g_workspace.ptr);
    g_workspace.ptr = nullptr;
    g_workspace.size = 0;
    if (cudaMalloc(&g_workspace.ptr, size) != cudaSuccess) return nullptr;
    g_workspace.size = size;
  }
  return g_workspace.ptr;
}

void* cpu_malloc(void*, int size) {
  g_cpu_blocks.emplace_back(static_cast<size_t>(size));
  return g_cpu_blocks.back().data();
}

mxnet::ext::CustomOp* find_op(const char* name) {
  auto* reg = mxnet::ext::Registry<mxnet::ext::CustomOp>::get();
  for (int i = 0; i < reg->size(); ++i)
    if (std::strcmp(reg->get(i).name, name) == 0) return &reg->get(i);
  return nullptr;
}

mxnet::ext::fcomp_t find_forward(const char* op, const char* ctx) {
  mxnet::ext::CustomOp* entry = find_op(op);
  if (entry == nullptr) return nullptr;
  // the (context, function) lists MXNet reads when it loads the library (_opRegGet)
  if (entry->forward_fp.empty()) entry->mapToVector();
  for (size_t i = 0; i < entry->forward_ctx_cstr.size(); ++i)
    if (std::strcmp(entry->forward_ctx_cstr[i], ctx) == 0) return entry->forward_fp[i];
  return nullptr;
}

}  // namespace

extern "C" {

// 1 where ``op`` has a forward for ``ctx``, 0 where it has none, -1 where no such op exists.
int gopt_harness_has_forward(const char* op, const char* ctx) {
  if (find_op(op) == nullptr) return -1;
  return find_forward(op, ctx) != nullptr ? 1 : 0;
}

// Runs ``op``'s forward for ``ctx`` ("cpu" or "gpu"; the arrays live there). Shapes are flat:
// array i has ``dims[i]`` entries. Returns 0, or 1 with the message in gopt_harness_error().
int gopt_harness_call(const char* op, const char* ctx, int num_keys, const char** keys,
                      const char** vals, int num_in, void** in_data, int* in_types,
                      const int64_t* in_shapes, int* in_dims, int num_out, void** out_data,
                      int* out_types, const int64_t* out_shapes, int* out_dims, void* stream) {
  g_error.clear();
  mxnet::ext::fcomp_t fcomp = find_forward(op, ctx);
  if (fcomp == nullptr) {
    g_error = std::string("no forward for ") + op + " on " + ctx;
    return 1;
  }
  std::vector<const int64_t*> in_sh(num_in), out_sh(num_out);
  for (int i = 0, off = 0; i < num_in; off += in_dims[i], ++i) in_sh[i] = in_shapes + off;
  for (int i = 0, off = 0; i < num_out; off += out_dims[i], ++i) out_sh[i] = out_shapes + off;
  std::vector<size_t> in_ids(num_in, 0), out_ids(num_out, 0);
  std::vector<const char*> in_dev(num_in, ctx), out_dev(num_out, ctx);
  std::vector<int> in_dev_id(num_in, 0), out_dev_id(num_out, 0);
  std::vector<int> in_stypes(num_in, 0), out_stypes(num_out, 0);
  const int before = _msgSize();
  const int status = _opCallFCompute(
      fcomp, keys, vals, num_keys, in_sh.data(), in_dims, in_data, in_types, in_ids.data(),
      in_dev.data(), in_dev_id.data(), num_in, out_sh.data(), out_dims, out_data, out_types,
      out_ids.data(), out_dev.data(), out_dev_id.data(), num_out, cpu_malloc, nullptr,
      gpu_malloc, nullptr, stream, nullptr, nullptr, in_stypes.data(), out_stypes.data(),
      nullptr, nullptr, nullptr, nullptr, nullptr, nullptr, nullptr, nullptr, nullptr, nullptr);
  if (status != 1) {  // MX_SUCCESS is 1
    g_error = std::string(op) + " failed:";
    for (int i = before; i < _msgSize(); ++i) {
      const char* msg = nullptr;
      _msgGet(i, &msg);
      g_error += std::string(" ") + msg;
    }
    return 1;
  }
  return 0;
}

const char* gopt_harness_error() { return g_error.c_str(); }

// Waits for the device, frees the CPU scratch; returns the CUDA error code (0: none).
int gopt_harness_sync() {
  g_cpu_blocks.clear();
  return static_cast<int>(cudaDeviceSynchronize());
}

}  // extern "C"
