// The quantiser of blockwise.h as ops of their own, for the tests (tests/test_lowprec.py checks
// them against an independent transcription of the paper's quantiser):
//   gopt_blockwise_quantize(x) -> codes (uint8, x's shape), scales (float32, one per block)
//     attrs: signed (0/1), block;
//   gopt_blockwise_dequantize(codes, scales) -> x (float32);  attrs: signed, block;
//   gopt_bfloat16_round(x) -> bits (uint8, x's shape plus a last axis of 2: the bytes of the
//     bfloat16 bits)
//     attrs: stochastic (0/1), seed, key, step, state (the noise stream's counters).
// The optimizers' low-precision ops (lowprec.h) are registered beside their rules.
#include "lowprec.h"

namespace gluon_opt {

namespace {

int64_t elements(const std::vector<unsigned>& shape) {
  int64_t n = 1;
  for (unsigned d : shape) n *= d;
  return n;
}

MXReturnValue one_in_one_out(const Attrs&, int* num_in, int* num_out) {
  *num_in = 1;
  *num_out = 1;
  return mxnet::ext::MX_SUCCESS;
}

MXReturnValue quantize_parse(const Attrs& a, int* num_in, int* num_out) {
  *num_in = 1;
  *num_out = 2;
  const int b = attr_int(a, "block", 256);
  if (b < 64 || b > kMaxTile || (b & (b - 1)) != 0) {
    MX_ERROR_MSG << "gopt_blockwise_quantize: block must be a power of two in [64, 4096]";
    return mxnet::ext::MX_FAIL;
  }
  return mxnet::ext::MX_SUCCESS;
}

MXReturnValue quantize_type(const Attrs&, std::vector<int>* in, std::vector<int>* out) {
  if ((*in)[0] != mxnet::ext::kFloat32) {
    MX_ERROR_MSG << "gopt_blockwise_quantize: x must be float32";
    return mxnet::ext::MX_FAIL;
  }
  (*out)[0] = mxnet::ext::kUint8;
  (*out)[1] = mxnet::ext::kFloat32;
  return mxnet::ext::MX_SUCCESS;
}

MXReturnValue quantize_shape(const Attrs& a, std::vector<std::vector<unsigned>>* in,
                             std::vector<std::vector<unsigned>>* out) {
  const int64_t b = attr_int(a, "block", 256);
  (*out)[0] = (*in)[0];
  (*out)[1] = {static_cast<unsigned>((elements((*in)[0]) + b - 1) / b)};
  return mxnet::ext::MX_SUCCESS;
}

MXReturnValue quantize_forward(const Attrs& a, std::vector<MXTensor>* in,
                               std::vector<MXTensor>* out, const OpResource&) {
  const blockwise::DynamicMap& q = blockwise::dynamic_map(attr_int(a, "signed", 1) != 0);
  const int64_t b = attr_int(a, "block", 256), n = (*in)[0].size();
  const float* x = static_cast<const float*>((*in)[0].data_ptr);
  uint8_t* codes = static_cast<uint8_t*>((*out)[0].data_ptr);
  float* scales = static_cast<float*>((*out)[1].data_ptr);
  for (int64_t j = 0; j < n; j += b)
    blockwise::quantize_block(q, x + j, std::min(b, n - j), codes + j, scales + j / b);
  return mxnet::ext::MX_SUCCESS;
}

MXReturnValue dequantize_parse(const Attrs&, int* num_in, int* num_out) {
  *num_in = 2;
  *num_out = 1;
  return mxnet::ext::MX_SUCCESS;
}

MXReturnValue dequantize_type(const Attrs&, std::vector<int>* in, std::vector<int>* out) {
  if ((*in)[0] != mxnet::ext::kUint8 || (*in)[1] != mxnet::ext::kFloat32) {
    MX_ERROR_MSG << "gopt_blockwise_dequantize: expected uint8 codes and float32 scales";
    return mxnet::ext::MX_FAIL;
  }
  (*out)[0] = mxnet::ext::kFloat32;
  return mxnet::ext::MX_SUCCESS;
}

MXReturnValue dequantize_shape(const Attrs& a, std::vector<std::vector<unsigned>>* in,
                               std::vector<std::vector<unsigned>>* out) {
  const int64_t b = attr_int(a, "block", 256);
  if ((*in)[1] != std::vector<unsigned>{
          static_cast<unsigned>((elements((*in)[0]) + b - 1) / b)}) {
    MX_ERROR_MSG << "gopt_blockwise_dequantize: one scale per block expected";
    return mxnet::ext::MX_FAIL;
  }
  (*out)[0] = (*in)[0];
  return mxnet::ext::MX_SUCCESS;
}

MXReturnValue dequantize_forward(const Attrs& a, std::vector<MXTensor>* in,
                                 std::vector<MXTensor>* out, const OpResource&) {
  const blockwise::DynamicMap& q = blockwise::dynamic_map(attr_int(a, "signed", 1) != 0);
  const int64_t b = attr_int(a, "block", 256), n = (*in)[0].size();
  const uint8_t* codes = static_cast<const uint8_t*>((*in)[0].data_ptr);
  const float* scales = static_cast<const float*>((*in)[1].data_ptr);
  float* x = static_cast<float*>((*out)[0].data_ptr);
  for (int64_t j = 0; j < n; j += b)
    blockwise::dequantize_block(q, codes + j, scales[j / b], std::min(b, n - j), x + j);
  return mxnet::ext::MX_SUCCESS;
}

MXReturnValue bf16_type(const Attrs&, std::vector<int>* in, std::vector<int>* out) {
  if ((*in)[0] != mxnet::ext::kFloat32) {
    MX_ERROR_MSG << "gopt_bfloat16_round: x must be float32";
    return mxnet::ext::MX_FAIL;
  }
  (*out)[0] = mxnet::ext::kUint8;
  return mxnet::ext::MX_SUCCESS;
}

MXReturnValue bf16_shape(const Attrs&, std::vector<std::vector<unsigned>>* in,
                         std::vector<std::vector<unsigned>>* out) {
  (*out)[0] = (*in)[0];
  (*out)[0].push_back(2);
  return mxnet::ext::MX_SUCCESS;
}

MXReturnValue bf16_forward(const Attrs& a, std::vector<MXTensor>* in,
                           std::vector<MXTensor>* out, const OpResource&) {
  const bool stochastic = attr_int(a, "stochastic", 0) != 0;
  const auto u32 = [&](const char* key) {
    return static_cast<uint32_t>(attr_double(a, key, 0.0));
  };
  const uint32_t base = blockwise::noise_base(u32("seed"), u32("key"), u32("step"),
                                              u32("state"));
  blockwise::float_to_bf16(static_cast<const float*>((*in)[0].data_ptr),
                           static_cast<uint16_t*>((*out)[0].data_ptr), (*in)[0].size(),
                           stochastic, base, 0);
  return mxnet::ext::MX_SUCCESS;
}

}  // namespace

}  // namespace gluon_opt

REGISTER_OP(gopt_blockwise_quantize)
    .setParseAttrs(gluon_opt::quantize_parse)
    .setInferType(gluon_opt::quantize_type)
    .setInferShape(gluon_opt::quantize_shape)
    .setForward(gluon_opt::quantize_forward, "cpu");

REGISTER_OP(gopt_blockwise_dequantize)
    .setParseAttrs(gluon_opt::dequantize_parse)
    .setInferType(gluon_opt::dequantize_type)
    .setInferShape(gluon_opt::dequantize_shape)
    .setForward(gluon_opt::dequantize_forward, "cpu");

REGISTER_OP(gopt_bfloat16_round)
    .setParseAttrs(gluon_opt::one_in_one_out)
    .setInferType(gluon_opt::bf16_type)
    .setInferShape(gluon_opt::bf16_shape)
    .setForward(gluon_opt::bf16_forward, "cpu");
