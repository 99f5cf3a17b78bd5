// Lookahead's slow-weight synchronisation (gluon_opt/optimizers/wrappers.py), one pass per
// tensor; the fast-weight step before it is the inner optimizer's own kernel:
//
//   slow <- slow + alpha * (fast - slow);  fast <- slow
//
// It has no gradient, so it is a small op of its own rather than a rule of common.h:
//   inputs, per tensor i: fast_i (float32; the float32 master copy when mp=1), slow_i
//   outputs, per tensor i: the weight (aliasing fast_i; float16 when mp=1)
//   attrs: n, mp, alpha.  slow (and the master with mp=1) are updated in place.
#include "common.h"

namespace gluon_opt {

MXReturnValue sync_parse(const Attrs& a, int* num_in, int* num_out) {
  const int n = attr_int(a, "n", 1);
  if (n < 1) {
    MX_ERROR_MSG << "gopt_lookahead_sync: bad n attribute";
    return mxnet::ext::MX_FAIL;
  }
  *num_in = 2 * n;
  *num_out = n;
  return mxnet::ext::MX_SUCCESS;
}

MXReturnValue sync_type(const Attrs& a, std::vector<int>* in, std::vector<int>* out) {
  const int n = attr_int(a, "n", 1), mp = attr_int(a, "mp", 0);
  for (int i = 0; i < n; ++i) {
    if ((*in)[2 * i] != mxnet::ext::kFloat32 || (*in)[2 * i + 1] != mxnet::ext::kFloat32) {
      MX_ERROR_MSG << "gopt_lookahead_sync: fast (or master) and slow weights must be float32";
      return mxnet::ext::MX_FAIL;
    }
    (*out)[i] = mp ? mxnet::ext::kFloat16 : mxnet::ext::kFloat32;
  }
  return mxnet::ext::MX_SUCCESS;
}

MXReturnValue sync_shape(const Attrs& a, std::vector<std::vector<unsigned>>* in,
                         std::vector<std::vector<unsigned>>* out) {
  const int n = attr_int(a, "n", 1);
  for (int i = 0; i < n; ++i) {
    if ((*in)[2 * i] != (*in)[2 * i + 1]) {
      MX_ERROR_MSG << "gopt_lookahead_sync: slow weight " << i << " has the wrong shape";
      return mxnet::ext::MX_FAIL;
    }
    (*out)[i] = (*in)[2 * i];
  }
  return mxnet::ext::MX_SUCCESS;
}

MXReturnValue sync_mutate(const Attrs& a, std::vector<int>* idx) {
  const int n = attr_int(a, "n", 1), mp = attr_int(a, "mp", 0);
  for (int i = 0; i < n; ++i) {
    if (mp) idx->push_back(2 * i);  // the master weight
    idx->push_back(2 * i + 1);
  }
  return mxnet::ext::MX_SUCCESS;
}

// Blocks over all tensors, OpenMP across blocks, as common.h's forward.
MXReturnValue sync_forward(const Attrs& a, std::vector<MXTensor>* inputs,
                           std::vector<MXTensor>* outputs, const OpResource&) {
  const int n = attr_int(a, "n", 1);
  const bool mp = attr_int(a, "mp", 0) != 0;
  const float alpha = static_cast<float>(attr_double(a, "alpha", 0.5));
  struct Job {
    float* fast;
    float* slow;
    void* out;
    int64_t begin, end;
  };
  std::vector<Job> jobs;
  int64_t total = 0;
  for (int t = 0; t < n; ++t) {
    float* fast = static_cast<float*>((*inputs)[2 * t].data_ptr);
    float* slow = static_cast<float*>((*inputs)[2 * t + 1].data_ptr);
    void* out = (*outputs)[t].data_ptr;
    const int64_t size = (*inputs)[2 * t].size();
    total += size;
    for (int64_t b = 0; b < size; b += kBlock)
      jobs.push_back({fast, slow, out, b, std::min(size, b + kBlock)});
  }
  const int64_t njobs = static_cast<int64_t>(jobs.size());
  const int threads = total >= kParallelMin ? max_threads() : 1;
#pragma omp parallel for schedule(dynamic, 1) num_threads(threads) if (threads > 1)
  for (int64_t j = 0; j < njobs; ++j) {
    const Job job = jobs[j];
    for (int64_t i0 = job.begin; i0 < job.end; i0 += kTile) {
      const int64_t m = std::min(kTile, job.end - i0);
      const float* fast = job.fast + i0;
      float* __restrict slow = job.slow + i0;
      float* fast_out = mp ? job.fast + i0 : static_cast<float*>(job.out) + i0;
#pragma omp simd
      for (int64_t i = 0; i < m; ++i) {
        const float s = slow[i] + alpha * (fast[i] - slow[i]);
        slow[i] = s;
        fast_out[i] = s;
      }
      if (mp) float_to_half(job.fast + i0, static_cast<uint16_t*>(job.out) + i0, m);
    }
  }
  return mxnet::ext::MX_SUCCESS;
}

}  // namespace gluon_opt

REGISTER_OP(gopt_lookahead_sync)
    .setParseAttrs(gluon_opt::sync_parse)
    .setInferType(gluon_opt::sync_type)
    .setInferShape(gluon_opt::sync_shape)
    .setMutateInputs(gluon_opt::sync_mutate)
    .setForward(gluon_opt::sync_forward, "cpu");
