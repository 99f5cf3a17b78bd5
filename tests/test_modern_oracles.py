"""ADOPT, LaProp and the cautious variants of Adam, AdamW, Lion and LaProp against
pytorch-optimizer 4.1.0, an independent implementation, over many steps.

Both sides run in float64 on the same small problem: a 6x5 matrix and a 5-vector, the
gradient ``0.5 (w - target) + noise_k`` evaluated at each side's *own* weights (so an early
difference would feed back into the trajectory), for ``STEPS`` steps; weights and every state
are compared. Our side is the readable reference update (float64 weights; the fused kernels,
float32 only, are checked against it by test_fused.py).

Where the conventions legitimately differ (documented in each class's docstring) the oracle is
configured or patched to the aligned case:

* pytorch-optimizer 4.1.0's ``apply_cautious`` already rescales by ``n / (sum(mask) + 1)``,
  the paper's and ``base.cautious_mask``'s convention; it is patched to the paper's formula
  anyway, so that a release whose rescaling differs (timm's cautious optimizers, for one,
  divide by ``max(mean(mask), 1e-3)``) does not change what this test checks;
* its ``LaProp`` adds 1e-15 to ``v`` inside the square root (``apply_ams_bound``): patched
  out. It also divides ``sqrt(v) + eps`` by ``sqrt(1 - beta2^t)`` where the authors and we
  add ``eps`` to ``sqrt(v / (1 - beta2^t))``: at the default ``eps = 1e-15`` against
  ``sqrt(v) ~ 0.5`` that is a relative difference of ~1e-15, within the tolerance;
* it has no cautious Adam or AdamW: ``AdEMAMix`` with ``alpha = 0`` is Adam (its slow
  average is kept but weighted by 0), with ``weight_decouple`` False (coupled L2, our Adam) or
  True (AdamW), and its cautious mask compares ``m`` with the gradient (with the L2 term when
  coupled), which has the sign of our update ``lr m_hat / (sqrt(v_hat) + eps)``;
* its step counts are per parameter group: every parameter here gets a gradient every step,
  so they equal our per-parameter counts (``test_adopt_counts_steps_per_parameter`` checks
  ours where the two would differ).
"""
import math

import numpy as np
import pytest
import mxnet as mx
from mxnet import nd

import gluon_opt  # noqa: F401  (registers the optimizers)

torch = pytest.importorskip('torch', reason='torch is not installed (pip install -e .[oracle])')
pto = pytest.importorskip('pytorch_optimizer', reason='pytorch-optimizer is not installed '
                          '(pip install --no-deps pytorch-optimizer==4.1.0)')
from pytorch_optimizer.base.optimizer import BaseOptimizer  # noqa: E402

#: the brief asks for at least 40 steps: 60 take both sides through ADOPT's clipping
#: schedule (t^(1/4) from 1.19 to 2.8) and LaProp's bias corrections
STEPS = 60
SHAPES = ((6, 5), (5,))
#: both sides are float64 implementations of the same arithmetic in different orders (lerp
#: against b1 m + (1 - b1) x, sqrt(v) / sqrt(bc) against sqrt(v / bc), ...): each step rounds
#: at ~1e-16 relative and the normalisation by sqrt(v) amplifies it by at most a few, so 60
#: steps stay below ~1e-13; 1e-10 leaves a wide margin while any difference of formula (a
#: misplaced bias correction, epsilon or decay) shows up at 1e-4 or more within a few steps
RTOL = 1e-10


def _problem(seed=3):
    rng = np.random.RandomState(seed)
    w0 = [rng.randn(*s) for s in SHAPES]
    target = [rng.randn(*s) for s in SHAPES]
    noise = [[rng.randn(*s) for s in SHAPES] for _ in range(STEPS)]

    def grad(k, i, w):
        return 0.5 * (w - target[i]) + noise[k][i]
    return w0, grad


def _constant(lr):
    return [lr] * STEPS


def _cosine(lr):
    """A schedule, for LaProp's learning-rate-weighted bias correction (to 0.1 lr)."""
    return [lr * (0.55 + 0.45 * math.cos(math.pi * k / STEPS)) for k in range(STEPS)]


def run_ours(name, lrs, dtype='float64', use_fused=False, **kwargs):
    w0, grad = _problem()
    opt = mx.optimizer.create('gluon_opt.' + name, learning_rate=lrs[0], use_fused=use_fused,
                              **kwargs)
    ws = [nd.array(w, dtype=dtype) for w in w0]
    states = [opt.create_state(i, w) for i, w in enumerate(ws)]
    for k in range(STEPS):
        opt.set_learning_rate(lrs[k])
        gs = [nd.array(grad(k, i, w.asnumpy()), dtype=dtype) for i, w in enumerate(ws)]
        opt.update(list(range(len(ws))), ws, gs, states)
    names = opt.state_names
    return ([w.asnumpy() for w in ws],
            [{n: s.asnumpy() for n, s in zip(names, st)} for st in states])


def run_oracle(make, lrs, state_keys):
    w0, grad = _problem()
    params = [torch.tensor(w, dtype=torch.float64, requires_grad=True) for w in w0]
    opt = make(params, lrs[0])
    for k in range(STEPS):
        for group in opt.param_groups:
            group['lr'] = lrs[k]
        for i, p in enumerate(params):
            p.grad = torch.tensor(grad(k, i, p.detach().numpy()), dtype=torch.float64)
        opt.step()
    states = []
    for p in params:
        st = opt.state[p]
        states.append({ours: np.asarray(st[theirs].detach().numpy() if torch.is_tensor(
            st[theirs]) else st[theirs], dtype=np.float64) for ours, theirs in state_keys})
    return [p.detach().numpy() for p in params], states


def _paper_cautious(update, grad):
    """Liang et al. (2024): mask * n / (sum(mask) + 1), as the authors' C-Optim."""
    mask = (update * grad > 0).to(grad.dtype)
    mask.mul_(mask.numel() / (mask.sum() + 1))
    update.mul_(mask)


def _rel(a, b):
    return float(np.max(np.abs(a - b)) / max(np.max(np.abs(b)), 1e-300))


ADAM_KEYS = (('mean', 'exp_avg'), ('var', 'exp_avg_sq'))
CASES = {
    # id: (our name, our kwargs, schedule, oracle factory, (our state, their state) pairs)
    'adopt': ('adopt', dict(), _constant(0.01),
              lambda ps, lr: pto.ADOPT(ps, lr=lr, foreach=False), ADAM_KEYS),
    'adopt-coupled-wd': ('adopt', dict(wd=0.1, beta1=0.8, beta2=0.99, epsilon=1e-4),
                         _constant(0.01),
                         lambda ps, lr: pto.ADOPT(ps, lr=lr, betas=(0.8, 0.99), eps=1e-4,
                                                  weight_decay=0.1, foreach=False),
                         ADAM_KEYS),
    'adopt-decoupled-clip': ('adopt', dict(wd=0.1, decoupled_wd=True, clip_exponent=0.1),
                             _cosine(0.02),
                             lambda ps, lr: pto.ADOPT(ps, lr=lr, weight_decay=0.1,
                                                      weight_decouple=True, foreach=False,
                                                      clip_lambda=lambda s: s ** 0.1),
                             ADAM_KEYS),
    'laprop': ('laprop', dict(), _constant(4e-3),
               lambda ps, lr: pto.LaProp(ps, lr=lr, foreach=False),
               (('exp_avg', 'exp_avg'), ('exp_avg_sq', 'exp_avg_sq'),
                ('lr_avg', 'exp_avg_lr_1'))),
    'laprop-wd-schedule': ('laprop', dict(wd=0.1, beta1=0.8, beta2=0.99), _cosine(0.01),
                           lambda ps, lr: pto.LaProp(ps, lr=lr, betas=(0.8, 0.99),
                                                     weight_decay=0.1, foreach=False),
                           (('exp_avg', 'exp_avg'), ('exp_avg_sq', 'exp_avg_sq'),
                            ('lr_avg', 'exp_avg_lr_1'))),
    'laprop-cautious': ('laprop', dict(wd=0.1, cautious=True), _cosine(0.01),
                        lambda ps, lr: pto.LaProp(ps, lr=lr, weight_decay=0.1,
                                                  cautious=True, foreach=False),
                        (('exp_avg', 'exp_avg'), ('exp_avg_sq', 'exp_avg_sq'),
                         ('lr_avg', 'exp_avg_lr_1'))),
    'adam-cautious': ('adam', dict(wd=0.05, cautious=True), _constant(0.01),
                      lambda ps, lr: pto.AdEMAMix(ps, lr=lr, betas=(0.9, 0.999, 0.9999),
                                                  alpha=0.0, weight_decay=0.05,
                                                  weight_decouple=False, cautious=True,
                                                  foreach=False),
                      ADAM_KEYS),
    'adamw-cautious': ('adamw', dict(wd=0.1, beta1=0.8, beta2=0.99, cautious=True),
                       _cosine(0.01),
                       lambda ps, lr: pto.AdEMAMix(ps, lr=lr, betas=(0.8, 0.99, 0.9999),
                                                   alpha=0.0, weight_decay=0.1,
                                                   weight_decouple=True, cautious=True,
                                                   foreach=False),
                       ADAM_KEYS),
    'lion-cautious': ('lion', dict(wd=0.1, cautious=True), _constant(3e-3),
                      lambda ps, lr: pto.Lion(ps, lr=lr, betas=(0.9, 0.99), weight_decay=0.1,
                                              cautious=True, foreach=False),
                      (('exp_avg', 'exp_avg'),)),
}


@pytest.fixture
def aligned_oracle(monkeypatch):
    monkeypatch.setattr(BaseOptimizer, 'apply_cautious', staticmethod(_paper_cautious))
    plain = BaseOptimizer.apply_ams_bound

    def without_inner_eps(ams_bound, exp_avg_sq, max_exp_avg_sq, eps, exp_avg_sq_eps=1e-15):
        return plain(ams_bound, exp_avg_sq, max_exp_avg_sq, eps, exp_avg_sq_eps=0.0)
    monkeypatch.setattr(BaseOptimizer, 'apply_ams_bound', staticmethod(without_inner_eps))


@pytest.mark.parametrize('case', sorted(CASES))
def test_matches_pytorch_optimizer(case, aligned_oracle):
    name, kwargs, lrs, make, keys = CASES[case]
    w, states = run_ours(name, lrs, **kwargs)
    w_ref, states_ref = run_oracle(make, lrs, keys)
    errors = {'weight': max(_rel(a, b) for a, b in zip(w, w_ref))}
    for ours, _ in keys:
        errors[ours] = max(_rel(np.ravel(s[ours]), np.ravel(r[ours]))
                           for s, r in zip(states, states_ref))
    print('%s: %d steps, max relative error %s' % (
        case, STEPS, ', '.join('%s %.1e' % kv for kv in sorted(errors.items()))))
    # the trajectory must have gone somewhere: a test of two optimizers that never move
    # cannot fail
    assert max(_rel(a, np.asarray(b)) for a, b in zip(w_ref, _problem()[0])) > 1e-2
    for key, err in errors.items():
        assert err < RTOL, (case, key, err)


@pytest.mark.parametrize('case', sorted(CASES))
def test_fused_float32_matches_pytorch_optimizer(case, aligned_oracle):
    # the fused kernel itself against the float64 oracle: float32 rounds each operation at
    # 6e-8 relative; over 60 steps, with the normalisation by sqrt(v) amplifying the rounding
    # of small second moments, the weights and states stay within ~1e-5 (measured: 1.2e-6
    # at most); 1e-4 keeps margin while a wrong formula shows at 1e-2
    name, kwargs, lrs, make, keys = CASES[case]
    w, states = run_ours(name, lrs, dtype='float32', use_fused=True, **kwargs)
    w_ref, states_ref = run_oracle(make, lrs, keys)
    errors = {'weight': max(_rel(a, b) for a, b in zip(w, w_ref))}
    for ours, _ in keys:
        errors[ours] = max(_rel(np.ravel(s[ours]), np.ravel(r[ours]))
                           for s, r in zip(states, states_ref))
    print('%s fused float32: max relative error %s' % (
        case, ', '.join('%s %.1e' % kv for kv in sorted(errors.items()))))
    for key, err in errors.items():
        assert err < 1e-4, (case, key, err)


def test_the_cautious_mask_matters():
    # the cautious cases above differ from the plain updates (else they would not test the
    # mask): same problem, without cautious, far apart
    for name, kwargs in (('adam', dict(wd=0.05)), ('lion', dict(wd=0.1)), ('laprop', {})):
        lrs = _constant(0.01)
        plain, _ = run_ours(name, lrs, **kwargs)
        masked, _ = run_ours(name, lrs, cautious=True, **kwargs)
        assert max(_rel(a, b) for a, b in zip(masked, plain)) > 1e-3, name


def test_adopt_counts_steps_per_parameter():
    # the authors keep the step per parameter: a parameter updated for the first time late
    # still spends that step initialising v (pytorch-optimizer's per-group count would not)
    opt = mx.optimizer.create('gluon_opt.adopt', learning_rate=0.1, use_fused=False)
    w0, w1 = nd.ones((3,), dtype='float64'), nd.ones((3,), dtype='float64')
    s0, s1 = opt.create_state(0, w0), opt.create_state(1, w1)
    g = nd.array([0.5, -2.0, 1.0], dtype='float64')
    for _ in range(4):
        opt.update(0, w0, g, s0)
    assert np.all(w0.asnumpy() != 1.0)
    opt.update(1, w1, g, s1)
    np.testing.assert_array_equal(w1.asnumpy(), np.ones(3))
    np.testing.assert_array_equal(s1[1].asnumpy(), g.asnumpy() ** 2)
    np.testing.assert_array_equal(s1[0].asnumpy(), np.zeros(3))
