// The float16 conversions of cuda_fp16.h, for tests/gpu/emulate (see cuda_runtime.h): the
// kernel library's own round-to-nearest-even conversions (common.h).
#ifndef GLUON_OPT_EMULATE_CUDA_FP16_H_
#define GLUON_OPT_EMULATE_CUDA_FP16_H_

#include <cstdint>

struct __half {
  uint16_t bits;
};

inline float __half2float(__half h) { return gluon_opt::half_to_float_soft(h.bits); }
inline __half __float2half_rn(float f) { return __half{gluon_opt::float_to_half_soft(f)}; }

#endif  // GLUON_OPT_EMULATE_CUDA_FP16_H_
