// The elementwise parts of Muon, as optimizers/contrib/orthogonal.py's reference ``step``;
// the Newton-Schulz orthogonalisation between them stays matrix products through MXNet's BLAS
// (``nd.dot``), the same code on both paths. The AdamW tensors use gopt_adam.
//
//   gopt_muon_momentum:  B <- momentum * B + g;  D <- g + momentum * B (nesterov) or B
//       The direction D is written through the op's "weight" output (a scratch array the
//       caller passes as weight input and output; the rule does not read it).
//       attrs: momentum, nesterov; no per-tensor scalars. states: the momentum buffer B.
//   gopt_muon_apply:     W <- W * decay - coef * O,  decay = 1 - lr * wd, coef = lr * scale
//       The orthogonalised update O comes in the gradient slot (rescale 1, no clipping).
//       per-tensor scalars: decay, coef. no states.
#include "common.h"

namespace gluon_opt {

struct MuonMomentumRule : RuleBase {
  static constexpr int kScalars = 0;
  float momentum;
  bool nesterov;
  explicit MuonMomentumRule(const Attrs& a)
      : momentum(static_cast<float>(attr_double(a, "momentum", 0.95))),
        nesterov(attr_int(a, "nesterov", 1) != 0) {}
  bool supports(const Layout& l) const { return l.ns == 1 && l.mp == 0; }
  GOPT_HD void operator()(const Tile& t) const {
    const float mom = momentum;
    float* d = t.w_out;
    const float* GOPT_RESTRICT g = t.g;
    float* GOPT_RESTRICT b = t.s[0];
    const int64_t n = t.n;
    with_flag(nesterov, [&](auto N) {
      GOPT_OMP(omp simd)
      for (int64_t i = 0; i < n; ++i) {
        const float gi = g[i];
        const float bi = mom * b[i] + gi;
        b[i] = bi;
        if constexpr (N.value) d[i] = gi + mom * bi; else d[i] = bi;
      }
    });
  }
};

struct MuonApplyRule : RuleBase {
  static constexpr int kScalars = 2;
  explicit MuonApplyRule(const Attrs&) {}
  bool supports(const Layout& l) const { return l.ns == 0; }
  GOPT_HD void operator()(const Tile& t) const {
    const float decay = static_cast<float>(t.sc[0]), coef = static_cast<float>(t.sc[1]);
    const float* w_in = t.w_in;
    float* w_out = t.w_out;
    const float* GOPT_RESTRICT o = t.g;
    const int64_t n = t.n;
    with_flag(t.sc[0] != 1.0, [&](auto D) {
      GOPT_OMP(omp simd)
      for (int64_t i = 0; i < n; ++i) {
        float w0 = w_in[i];
        if constexpr (D.value) w0 = w0 * decay;
        w_out[i] = w0 - coef * o[i];
      }
    });
  }
};

}  // namespace gluon_opt

GLUON_OPT_REGISTER_RULE(gopt_muon_momentum, gluon_opt::MuonMomentumRule);
GLUON_OPT_REGISTER_RULE(gopt_muon_apply, gluon_opt::MuonApplyRule);
