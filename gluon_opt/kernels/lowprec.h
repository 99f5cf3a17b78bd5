// The rule ops over states stored in bfloat16 or blockwise 8 bits (gluon_opt/optimizers/
// lowprec.py is the readable reference): ``GLUON_OPT_REGISTER_LOWPREC(gopt_adam_lp, AdamRule)``
// registers the rule of ``gopt_adam`` over such states. CPU only.
//
// The calling convention is common.h's, with each state stored as the ``fmt`` attribute says,
// one letter per state:
//   'f'  a float32 array (the weight's shape, or the rule's small per-tensor state): 1 input;
//   'b'  bfloat16: a uint8 array of the weight's shape plus a last axis of 2, the bytes of each
//        element's bits (MXNet's bfloat16 dtype is refused by the external-op interface): 1
//        input;
//   'q'  8-bit blockwise: the codes (uint8, the weight's shape) and the scales (float32, one
//        per block of ``block`` elements): 2 inputs.
// attrs, besides common.h's: fmt; signs (one letter per state, 's' or 'u': the signed or the
// unsigned map of a 'q' state); block (64 .. 4096); stochastic (0/1: bfloat16 rounding);
// seed; keys (per tensor: the key of its stochastic rounding, the parameter's index). The
// per-tensor scalars are the rule's followed by the tensor's step (stochastic rounding's
// counter).
//
// Two storage policies for common.h's forward. LowPrecStates (any fmt): each tile (whole blocks
// of ``block`` elements) is read into float32 buffers, the rule runs on them exactly as on
// float32 states, and the buffers are stored back: one pass over memory. Bf16States (every
// weight-shaped state 'b', rounded to nearest): the rule's own loop reads and writes the
// bfloat16 states (its TileOf<Bf16> instantiation), converting in registers. The buffers cost
// more than the bytes bfloat16 saves: measured on an AMD EPYC (AVX-512, 2 threads), an Adam
// step on states in L2 took 2.6x the float32 step through buffers and 1.2x in the loop, and
// on 25M elements from memory 1.1-1.4x and 0.72-0.75x (benchmarks/lowprec_bound.py has the
// op-level numbers).
#ifndef GLUON_OPT_KERNELS_LOWPREC_H_
#define GLUON_OPT_KERNELS_LOWPREC_H_

#include <string>
#include <vector>

#include "common.h"
#include "blockwise.h"

namespace gluon_opt {

struct LowPrecLayout {
  Layout l;
  std::string fmt, signs;
  int block;
  int per_tensor;  // inputs per tensor
  bool valid;
};

inline LowPrecLayout lowprec_layout(const Attrs& a) {
  LowPrecLayout p;
  p.l = layout(a);
  auto get = [&](const char* key) {
    auto it = a.find(key);
    return it == a.end() ? std::string() : it->second;
  };
  p.fmt = get("fmt");
  p.signs = get("signs");
  p.block = attr_int(a, "block", 256);
  p.valid = p.l.n >= 1 && p.l.ns >= 0 && p.l.ns <= kMaxStates &&
            static_cast<int>(p.fmt.size()) == p.l.ns &&
            static_cast<int>(p.signs.size()) >= p.l.ns && p.block >= 64 &&
            p.block <= kMaxTile && (p.block & (p.block - 1)) == 0;
  p.per_tensor = 2;
  for (char c : p.fmt) {
    p.valid = p.valid && (c == 'f' || c == 'b' || c == 'q');
    p.per_tensor += c == 'q' ? 2 : 1;
  }
  return p;
}

inline MXReturnValue lowprec_parse_attrs(const Attrs& a, int* num_in, int* num_out) {
  const LowPrecLayout p = lowprec_layout(a);
  if (!p.valid) {
    MX_ERROR_MSG << "gluon_opt low-precision kernel: bad n/ns/fmt/signs/block attributes";
    return mxnet::ext::MX_FAIL;
  }
  *num_in = p.l.n * p.per_tensor;
  *num_out = p.l.n;
  return mxnet::ext::MX_SUCCESS;
}

inline MXReturnValue lowprec_infer_type(const Attrs& a, std::vector<int>* in,
                                        std::vector<int>* out) {
  const LowPrecLayout p = lowprec_layout(a);
  const int f32 = mxnet::ext::kFloat32, f16 = mxnet::ext::kFloat16;
  for (int i = 0; i < p.l.n; ++i) {
    int k = i * p.per_tensor;
    if ((*in)[k] != f32 || (*in)[k + 1] != (p.l.mp ? f16 : f32)) {
      MX_ERROR_MSG << "gluon_opt low-precision kernel: tensor " << i
                   << " has a weight or gradient of the wrong dtype";
      return mxnet::ext::MX_FAIL;
    }
    k += 2;
    for (char c : p.fmt) {
      const bool ok = c == 'f' ? (*in)[k] == f32
                    : c == 'b' ? (*in)[k] == mxnet::ext::kUint8
                    : (*in)[k] == mxnet::ext::kUint8 && (*in)[k + 1] == f32;
      if (!ok) {
        MX_ERROR_MSG << "gluon_opt low-precision kernel: tensor " << i
                     << " has a state that is not stored as fmt=" << p.fmt << " says";
        return mxnet::ext::MX_FAIL;
      }
      k += c == 'q' ? 2 : 1;
    }
    (*out)[i] = p.l.mp ? f16 : f32;
  }
  return mxnet::ext::MX_SUCCESS;
}

template <class Rule>
MXReturnValue lowprec_infer_shape(const Attrs& a, std::vector<std::vector<unsigned>>* in,
                                  std::vector<std::vector<unsigned>>* out) {
  const LowPrecLayout p = lowprec_layout(a);
  for (int i = 0; i < p.l.n; ++i) {
    const int base = i * p.per_tensor;
    const std::vector<unsigned>& w = (*in)[base];
    int64_t size = 1;
    for (unsigned d : w) size *= d;
    bool ok = (*in)[base + 1] == w;
    int k = base + 2;
    for (int s = 0; s < p.l.ns; ++s) {
      const char c = p.fmt[s];
      if (c == 'q') {
        const unsigned blocks = static_cast<unsigned>((size + p.block - 1) / p.block);
        ok = ok && (*in)[k] == w && (*in)[k + 1] == std::vector<unsigned>{blocks};
      } else if (c == 'b') {
        std::vector<unsigned> pairs = w;
        pairs.push_back(2);
        ok = ok && (*in)[k] == pairs;
      } else if (!(c == 'f' && ((Rule::kScalarStates >> s) & 1u))) {
        ok = ok && (*in)[k] == w;
      }
      k += c == 'q' ? 2 : 1;
    }
    if (!ok) {
      MX_ERROR_MSG << "gluon_opt low-precision kernel: tensor " << i
                   << " has an input whose shape does not match its weight's";
      return mxnet::ext::MX_FAIL;
    }
    (*out)[i] = w;
  }
  return mxnet::ext::MX_SUCCESS;
}

inline MXReturnValue lowprec_mutate_inputs(const Attrs& a, std::vector<int>* idx) {
  const LowPrecLayout p = lowprec_layout(a);
  for (int i = 0; i < p.l.n; ++i) {
    const int base = i * p.per_tensor;
    if (p.l.mp) idx->push_back(base);
    for (int k = base + 2; k < base + p.per_tensor; ++k) idx->push_back(k);
  }
  return mxnet::ext::MX_SUCCESS;
}

// forward's storage policy (common.h) for states kept in bfloat16 or 8 bits.
class LowPrecStates {
 public:
  using State = float;
  static constexpr int kExtraScalars = 1;  // the tensor's step

  struct Work {
    std::vector<float> buf;  // one tile per state
    explicit Work(const LowPrecStates& s)
        : buf(static_cast<size_t>(kMaxStates) * s.tile()) {}
  };

  LowPrecStates(const Attrs& a, const Layout&)
      : p_(lowprec_layout(a)), stochastic_(attr_int(a, "stochastic", 0) != 0),
        seed_(static_cast<uint32_t>(attr_double(a, "seed", 0.0))) {
    for (double k : attr_doubles(a, "keys")) keys_.push_back(static_cast<uint32_t>(k));
    for (int s = 0; s < p_.l.ns && s < static_cast<int>(p_.signs.size()); ++s)
      maps_[s] = &blockwise::dynamic_map(p_.signs[s] == 's');
    data_.resize(static_cast<size_t>(p_.l.n) * kMaxStates, nullptr);
    scales_.resize(static_cast<size_t>(p_.l.n) * kMaxStates, nullptr);
  }

  bool ok() const {
    if (!blockwise::dynamic_map(true).grid_ok || !blockwise::dynamic_map(false).grid_ok) {
      MX_ERROR_MSG << "gluon_opt low-precision kernel: the quantiser's grid is inconsistent";
      return false;
    }
    if (!p_.valid || static_cast<int>(keys_.size()) != p_.l.n) {
      MX_ERROR_MSG << "gluon_opt low-precision kernel: bad fmt/signs/block/keys attributes";
      return false;
    }
    return true;
  }

  int64_t tile() const { return std::max<int64_t>(kTile, p_.block); }

  Tensors tensor(const Layout&, const std::vector<MXTensor>& inputs,
                 const std::vector<MXTensor>& outputs, int t) {
    int k = t * p_.per_tensor;
    Tensors p;
    p.w = static_cast<float*>(inputs[k].data_ptr);
    p.g = inputs[k + 1].data_ptr;
    p.out = outputs[t].data_ptr;
    p.size = inputs[k].size();
    k += 2;
    for (int s = 0; s < kMaxStates; ++s) {
      p.s[s] = nullptr;
      if (s >= p_.l.ns) continue;
      const char c = p_.fmt[s];
      if (c == 'f') p.s[s] = static_cast<float*>(inputs[k].data_ptr);
      data_[t * kMaxStates + s] = inputs[k].data_ptr;
      if (c == 'q') scales_[t * kMaxStates + s] = static_cast<float*>(inputs[k + 1].data_ptr);
      k += c == 'q' ? 2 : 1;
    }
    return p;
  }

  template <class Rule>
  void load(const Tensors& p, int t, int64_t i0, int64_t m, const double*, float** s,
            Work& w) const {
    for (int k = 0; k < kMaxStates; ++k) {
      s[k] = nullptr;
      if (k >= p_.l.ns) continue;
      const char c = p_.fmt[k];
      float* buf = w.buf.data() + k * tile();
      if (c == 'f') {
        s[k] = (Rule::kScalarStates >> k) & 1u ? p.s[k] : p.s[k] + i0;
      } else if (c == 'b') {
        blockwise::bf16_to_float(static_cast<const uint16_t*>(data_[t * kMaxStates + k]) + i0,
                                 buf, m);
        s[k] = buf;
      } else {
        const uint8_t* codes = static_cast<const uint8_t*>(data_[t * kMaxStates + k]);
        const float* scales = scales_[t * kMaxStates + k];
        for (int64_t j = 0; j < m; j += p_.block)
          blockwise::dequantize_block(*maps_[k], codes + i0 + j, scales[(i0 + j) / p_.block],
                                      std::min<int64_t>(p_.block, m - j), buf + j);
        s[k] = buf;
      }
    }
  }

  template <class Rule>
  void store(int t, int64_t i0, int64_t m, const double* sc, Work& w) const {
    for (int k = 0; k < p_.l.ns; ++k) {
      const char c = p_.fmt[k];
      const float* buf = w.buf.data() + k * tile();
      if (c == 'b') {
        const uint32_t step = static_cast<uint32_t>(sc[Rule::kScalars]);
        blockwise::float_to_bf16(
            buf, static_cast<uint16_t*>(data_[t * kMaxStates + k]) + i0, m, stochastic_,
            stochastic_ ? blockwise::noise_base(seed_, keys_[t], step, k) : 0u,
            static_cast<uint32_t>(i0));
      } else if (c == 'q') {
        uint8_t* codes = static_cast<uint8_t*>(data_[t * kMaxStates + k]);
        float* scales = scales_[t * kMaxStates + k];
        for (int64_t j = 0; j < m; j += p_.block)
          blockwise::quantize_block(*maps_[k], buf + j, std::min<int64_t>(p_.block, m - j),
                                    codes + i0 + j, scales + (i0 + j) / p_.block);
      }
    }
  }

 private:
  LowPrecLayout p_;
  bool stochastic_;
  uint32_t seed_;
  std::vector<uint32_t> keys_;
  const blockwise::DynamicMap* maps_[kMaxStates] = {nullptr, nullptr, nullptr, nullptr};
  std::vector<void*> data_;
  std::vector<float*> scales_;
};

// forward's storage policy for a call whose weight-shaped states are all bfloat16 rounded to
// nearest (a rule's kScalarStates stay float32 and only its finish() touches them): the rule
// gets the bfloat16 states themselves (TileOf<Bf16>) and converts in its loop.
class Bf16States {
 public:
  using State = blockwise::Bf16;
  static constexpr int kExtraScalars = 1;  // the tensor's step (stochastic rounding's; unused)

  struct Work {
    explicit Work(const Bf16States&) {}
  };

  // Whether a call with these attributes can take this storage.
  template <class Rule>
  static bool applies(const Attrs& a) {
    const LowPrecLayout p = lowprec_layout(a);
    if (!p.valid || attr_int(a, "stochastic", 0) != 0) return false;
    for (int s = 0; s < p.l.ns; ++s)
      if (p.fmt[s] != (((Rule::kScalarStates >> s) & 1u) ? 'f' : 'b')) return false;
    return true;
  }

  Bf16States(const Attrs& a, const Layout&) : p_(lowprec_layout(a)) {}
  bool ok() const { return p_.valid; }
  int64_t tile() const { return kTile; }

  // One input per state (no 'q'), so the arrays sit as in float32 calls: load reinterprets
  // the bfloat16 ones, the float32 scalar states are read as they are by the rule's finish().
  Tensors tensor(const Layout& l, const std::vector<MXTensor>& inputs,
                 const std::vector<MXTensor>& outputs, int t) {
    return tensor_arrays(l, inputs, outputs, t);
  }

  template <class Rule>
  void load(const Tensors& p, int, int64_t i0, int64_t, const double*, State** s,
            Work&) const {
    for (int k = 0; k < kMaxStates; ++k)
      s[k] = k < p_.l.ns && p_.fmt[k] == 'b' ? reinterpret_cast<State*>(p.s[k]) + i0 : nullptr;
  }

  template <class Rule>
  void store(int, int64_t, int64_t, const double*, Work&) const {}

 private:
  LowPrecLayout p_;
};

// The low-precision ops' forward: Bf16States where it applies, else LowPrecStates.
template <class Rule>
MXReturnValue lowprec_forward(const Attrs& a, std::vector<MXTensor>* inputs,
                              std::vector<MXTensor>* outputs, const OpResource& res) {
  if constexpr (Rule::kReduce == 0) {
    if (Bf16States::applies<Rule>(a)) return forward<Rule, Bf16States>(a, inputs, outputs, res);
  }
  return forward<Rule, LowPrecStates>(a, inputs, outputs, res);
}

}  // namespace gluon_opt

#define GLUON_OPT_REGISTER_LOWPREC(OpName, Rule)                            \
  REGISTER_OP(OpName)                                                      \
      .setParseAttrs(gluon_opt::lowprec_parse_attrs)                       \
      .setInferType(gluon_opt::lowprec_infer_type)                         \
      .setInferShape(gluon_opt::lowprec_infer_shape<Rule>)                 \
      .setMutateInputs(gluon_opt::lowprec_mutate_inputs)                   \
      .setForward(gluon_opt::lowprec_forward<Rule>, "cpu")

#endif  // GLUON_OPT_KERNELS_LOWPREC_H_
