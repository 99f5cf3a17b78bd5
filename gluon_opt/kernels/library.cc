// The gluon_opt kernel library: its version check, and a multi-threaded copy used by the
// benchmark to measure the memory bandwidth the optimizer kernels are compared with.
// The optimizer ops live one family per file (sgd.cc, adam.cc, ...), all built into one
// shared library with MXNet's lib_api.cc and loaded by gluon_opt/kernels/build.py.
#include "common.h"

#if defined(__AVX__)
#include <immintrin.h>
#endif

namespace gluon_opt {

MXReturnValue copy_parse(const Attrs&, int* num_in, int* num_out) {
  *num_in = 1;
  *num_out = 1;
  return mxnet::ext::MX_SUCCESS;
}

MXReturnValue copy_type(const Attrs&, std::vector<int>* in, std::vector<int>* out) {
  (*out)[0] = (*in)[0];
  return mxnet::ext::MX_SUCCESS;
}

MXReturnValue copy_shape(const Attrs&, std::vector<std::vector<unsigned>>* in,
                         std::vector<std::vector<unsigned>>* out) {
  (*out)[0] = (*in)[0];
  return mxnet::ext::MX_SUCCESS;
}

// out <- in, the bytes split across all OpenMP threads.
//
// The stores are non-temporal where the CPU has AVX: a plain store to a line not in cache first
// reads it (write-allocate), so a memcpy-style copy moves 3 bytes per byte copied while the
// benchmark counts 2, and understates the bandwidth (measured here: 10 GB/s against numpy's
// 16, whose memcpy streams large copies). Streaming stores make the bytes counted the bytes
// moved. The optimizer kernels need no such trick: they store into lines they have just read.
static void copy_block(const char* s, char* d, int64_t n) {
#if defined(__AVX__)
  if ((reinterpret_cast<uintptr_t>(s) % 32) == 0 && (reinterpret_cast<uintptr_t>(d) % 32) == 0) {
    const int64_t vec = n / 128 * 128;
    for (int64_t i = 0; i < vec; i += 128) {
      const __m256 a = _mm256_load_ps(reinterpret_cast<const float*>(s + i));
      const __m256 b = _mm256_load_ps(reinterpret_cast<const float*>(s + i + 32));
      const __m256 c = _mm256_load_ps(reinterpret_cast<const float*>(s + i + 64));
      const __m256 e = _mm256_load_ps(reinterpret_cast<const float*>(s + i + 96));
      _mm256_stream_ps(reinterpret_cast<float*>(d + i), a);
      _mm256_stream_ps(reinterpret_cast<float*>(d + i + 32), b);
      _mm256_stream_ps(reinterpret_cast<float*>(d + i + 64), c);
      _mm256_stream_ps(reinterpret_cast<float*>(d + i + 96), e);
    }
    std::memcpy(d + vec, s + vec, n - vec);
    _mm_sfence();
    return;
  }
#endif
  std::memcpy(d, s, n);
}

MXReturnValue copy_forward(const Attrs&, std::vector<MXTensor>* inputs,
                           std::vector<MXTensor>* outputs, const OpResource&) {
  MXTensor& src = (*inputs)[0];
  MXTensor& dst = (*outputs)[0];
  const int64_t bytes = src.size() * ((src.dtype == mxnet::ext::kFloat16) ? 2 :
                                      (src.dtype == mxnet::ext::kFloat64) ? 8 : 4);
  const char* s = static_cast<const char*>(src.data_ptr);
  char* d = static_cast<char*>(dst.data_ptr);
  const int64_t chunk = 1 << 20;
  const int64_t nchunks = (bytes + chunk - 1) / chunk;
#pragma omp parallel for schedule(static) num_threads(max_threads())
  for (int64_t c = 0; c < nchunks; ++c) {
    const int64_t b = c * chunk;
    copy_block(s + b, d + b, std::min(chunk, bytes - b));
  }
  return mxnet::ext::MX_SUCCESS;
}

}  // namespace gluon_opt

REGISTER_OP(gopt_copy)
    .setParseAttrs(gluon_opt::copy_parse)
    .setInferType(gluon_opt::copy_type)
    .setInferShape(gluon_opt::copy_shape)
    .setForward(gluon_opt::copy_forward, "cpu");

// Refuse to load into an MXNet older than the lib_api we were compiled against expects.
mxnet::ext::MXReturnValue initialize(int version) {
  if (version >= 10900) return mxnet::ext::MX_SUCCESS;
  MX_ERROR_MSG << "gluon_opt kernels need MXNet >= 1.9.0, found " << version;
  return mxnet::ext::MX_FAIL;
}
