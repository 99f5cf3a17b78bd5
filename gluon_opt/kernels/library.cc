// The gluon_opt kernel library: its version check, and a multi-threaded copy used by the
// benchmark to measure the memory bandwidth the optimizer kernels are compared with.
// The optimizer ops live one family per file (sgd.cc, adam.cc, ...), all built into one
// shared library with MXNet's lib_api.cc and loaded by gluon_opt/kernels/build.py.
#include "common.h"

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
#pragma omp parallel for schedule(static)
  for (int64_t c = 0; c < nchunks; ++c) {
    const int64_t b = c * chunk;
    std::memcpy(d + b, s + b, std::min(chunk, bytes - b));
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
