// Weight averaging (gluon_opt/averaging.py: EMA and SWA), one pass per tensor over every
// averaged parameter in one call:
//
//   avg <- avg + alpha * (w - avg)
//
// with alpha = 1 - decay_t for an EMA and 1 / (n + 1) for SWA's equal-weight running mean.
// Like Lookahead's synchronisation it reads no gradient, so it is a small op of its own rather
// than a rule of common.h:
//   inputs, per tensor i: w_i (float32), avg_i (float32)
//   outputs, per tensor i: avg_i (Python passes the average itself, so it is written in place)
//   attrs: n, alpha.
// The float32 operations are the reference's (averaging.py's ``_blend``), in its order, and the
// library is compiled with -ffp-contract=off, so both paths agree bit for bit.
#include "common.h"

namespace gluon_opt {

MXReturnValue average_parse(const Attrs& a, int* num_in, int* num_out) {
  const int n = attr_int(a, "n", 1);
  if (n < 1) {
    MX_ERROR_MSG << "gopt_average: bad n attribute";
    return mxnet::ext::MX_FAIL;
  }
  *num_in = 2 * n;
  *num_out = n;
  return mxnet::ext::MX_SUCCESS;
}

MXReturnValue average_type(const Attrs& a, std::vector<int>* in, std::vector<int>* out) {
  const int n = attr_int(a, "n", 1);
  for (int i = 0; i < n; ++i) {
    if ((*in)[2 * i] != mxnet::ext::kFloat32 || (*in)[2 * i + 1] != mxnet::ext::kFloat32) {
      MX_ERROR_MSG << "gopt_average: weights and averages must be float32";
      return mxnet::ext::MX_FAIL;
    }
    (*out)[i] = mxnet::ext::kFloat32;
  }
  return mxnet::ext::MX_SUCCESS;
}

MXReturnValue average_shape(const Attrs& a, std::vector<std::vector<unsigned>>* in,
                            std::vector<std::vector<unsigned>>* out) {
  const int n = attr_int(a, "n", 1);
  for (int i = 0; i < n; ++i) {
    if ((*in)[2 * i] != (*in)[2 * i + 1]) {
      MX_ERROR_MSG << "gopt_average: average " << i << " has the wrong shape";
      return mxnet::ext::MX_FAIL;
    }
    (*out)[i] = (*in)[2 * i];
  }
  return mxnet::ext::MX_SUCCESS;
}

// Blocks over all tensors, OpenMP across blocks, as common.h's forward.
MXReturnValue average_forward(const Attrs& a, std::vector<MXTensor>* inputs,
                              std::vector<MXTensor>* outputs, const OpResource&) {
  const int n = attr_int(a, "n", 1);
  const float alpha = static_cast<float>(attr_double(a, "alpha", 0.0));
  struct Job {
    const float* w;
    const float* avg;
    float* out;
    int64_t begin, end;
  };
  std::vector<Job> jobs;
  int64_t total = 0;
  for (int t = 0; t < n; ++t) {
    const float* w = static_cast<const float*>((*inputs)[2 * t].data_ptr);
    const float* avg = static_cast<const float*>((*inputs)[2 * t + 1].data_ptr);
    float* out = static_cast<float*>((*outputs)[t].data_ptr);
    const int64_t size = (*inputs)[2 * t].size();
    total += size;
    for (int64_t b = 0; b < size; b += kBlock)
      jobs.push_back({w, avg, out, b, std::min(size, b + kBlock)});
  }
  const int64_t njobs = static_cast<int64_t>(jobs.size());
  const int threads = total >= kParallelMin ? max_threads() : 1;
#pragma omp parallel for schedule(dynamic, 1) num_threads(threads) if (threads > 1)
  for (int64_t j = 0; j < njobs; ++j) {
    const Job job = jobs[j];
    // out aliases avg: each element is read before it is written, so no restrict here
#pragma omp simd
    for (int64_t i = job.begin; i < job.end; ++i) {
      const float d = job.w[i] - job.avg[i];
      const float step = alpha * d;
      job.out[i] = job.avg[i] + step;
    }
  }
  return mxnet::ext::MX_SUCCESS;
}

}  // namespace gluon_opt

REGISTER_OP(gopt_average)
    .setParseAttrs(gluon_opt::average_parse)
    .setInferType(gluon_opt::average_type)
    .setInferShape(gluon_opt::average_shape)
    .setForward(gluon_opt::average_forward, "cpu");
