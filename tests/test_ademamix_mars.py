"""AdEMAMix and MARS against pytorch-optimizer's implementations over many steps, their
schedules, and the kernels their fused paths run.

The oracle trajectories run in float64 on a small noisy least-squares problem with a matrix, a
vector and (MARS, whose 1-D tensors take another rule) a 3-D tensor; each side computes its
own gradients at its own weights from the same minibatches, so a wrong update shows up in the
weights it leads to as well as in the states. Conventions that differ from pytorch-optimizer
(documented in the optimizers' docstrings) are aligned on the oracle's side, by its options
or a monkeypatch, and the aligned case is tested.
"""
import importlib.util
import math

import numpy as np
import pytest
import mxnet as mx

import gluon_opt
from gluon_opt import kernels
from gluon_opt.optimizers.base import cautious_mask
from gluon_opt.optimizers.contrib.ademamix import alpha_schedule, beta3_schedule

HAVE_ORACLE = (importlib.util.find_spec('torch') is not None
               and importlib.util.find_spec('pytorch_optimizer') is not None)
needs_oracle = pytest.mark.skipif(not HAVE_ORACLE, reason='torch and pytorch-optimizer are '
                                  'not installed (the oracle extra and pytorch-optimizer)')

STEPS = 60  # the brief asks for at least 40: long enough for the warmups to end (T = 30)
SHAPES = {'w': (6, 4), 'b': (4,), 'k': (2, 3, 2)}


class Problem(object):
    """0.5 mean ||x W + b - y||^2 over a minibatch, plus 0.5 sum a (K - c)^2 perturbed by
    minibatch noise: a matrix, a vector and a 3-D tensor whose gradients depend on the weights
    and change with the batch (so MARS's correction g - g_prev is not zero)."""

    def __init__(self, seed=0, n=64, batch=16):
        rng = np.random.RandomState(seed)
        self.x = rng.randn(n, 6)
        self.y = self.x @ rng.randn(6, 4) + rng.randn(4) + 0.1 * rng.randn(n, 4)
        self.start = {name: 0.5 * rng.randn(*shape) for name, shape in sorted(SHAPES.items())}
        # K starts near its minimum with little noise: its corrected gradient stays below norm
        # 1 (MARS's clip inactive) while W's is above it (clipped)
        self.a = rng.uniform(0.5, 3.0, SHAPES['k'])
        self.c = self.start['k'] + 0.2 * rng.randn(*SHAPES['k'])
        self.batches = [rng.choice(n, batch, replace=False) for _ in range(STEPS)]
        self.noise = [0.05 * rng.randn(*SHAPES['k']) for _ in range(STEPS)]

    def grads(self, step, p):
        idx = self.batches[step]
        r = self.x[idx] @ p['w'] + p['b'] - self.y[idx]
        return {'w': self.x[idx].T @ r / len(idx), 'b': r.mean(0),
                'k': self.a * (p['k'] - self.c) + self.noise[step]}


def run_ours(name, problem, dtype='float64', use_fused=False, **hp):
    """Our optimizer on ``problem``; weights and states (numpy) after every step."""
    opt = mx.optimizer.create('gluon_opt.' + name, use_fused=use_fused, **hp)
    names = sorted(SHAPES)
    weights = [mx.nd.array(problem.start[n], dtype=dtype) for n in names]
    states = [opt.create_state_multi_precision(i, w) for i, w in enumerate(weights)]
    history = []
    for step in range(STEPS):
        p = {n: w.asnumpy().astype(np.float64) for n, w in zip(names, weights)}
        g = problem.grads(step, p)
        opt.update_multi_precision(list(range(len(names))), weights,
                                   [mx.nd.array(g[n], dtype=dtype) for n in names], states)
        history.append({n: (w.asnumpy().astype(np.float64),
                            [s.asnumpy().astype(np.float64) for s in st])
                        for n, w, st in zip(names, weights, states)})
    return history


def run_oracle(make, problem, state_keys):
    """pytorch-optimizer's optimizer (``make(params)``) on ``problem`` in float64."""
    import torch
    names = sorted(SHAPES)
    params = [torch.tensor(problem.start[n], dtype=torch.float64, requires_grad=True)
              for n in names]
    opt = make(params)
    history = []
    for step in range(STEPS):
        g = problem.grads(step, {n: p.detach().numpy().copy() for n, p in zip(names, params)})
        for n, p in zip(names, params):
            p.grad = torch.tensor(g[n], dtype=torch.float64)
        opt.step()
        history.append({n: (p.detach().numpy().copy(),
                            [opt.state[p][k].numpy().copy() for k in state_keys])
                        for n, p in zip(names, params)})
    return history


def max_relative_error(ours, theirs):
    """max |a - b| / max|b| over every step, tensor and state: relative to the tensor's scale,
    since elements that cross zero have no relative precision of their own."""
    worst = 0.0
    for step_a, step_b in zip(ours, theirs):
        for n in step_b:
            (wa, sa), (wb, sb) = step_a[n], step_b[n]
            for a, b in [(wa, wb)] + list(zip(sa, sb)):
                worst = max(worst, float(np.abs(a - b).max() / max(np.abs(b).max(), 1e-30)))
    return worst


def moved(history, problem):
    """How far the weights moved (so the comparison is not of nearly untouched weights)."""
    last = history[-1]
    return min(np.abs(last[n][0] - problem.start[n]).max() for n in SHAPES)


# float64 on both sides: the two implementations differ in operation order only, ~1e-16 per
# operation, amplified over 60 steps of a well-conditioned problem to ~1e-13; 1e-9 leaves six
# orders of margin and still catches any change of formula (1e-3 or more within a step).
F64_RTOL = 1e-9
# our fused float32 kernels against the float64 oracle: float32 rounding (6e-8) per operation,
# ~20 operations a step, accumulated over 60 steps and through the problem's feedback: a few
# 1e-5 of a tensor's scale (measured 1e-5 to 4e-5); 3e-4 keeps margin, and a wrong formula
# shows at 1e-2.
F32_RTOL = 3e-4

ADEMAMIX_CASES = {
    'plain': dict(learning_rate=0.02, wd=0.1),
    'warmup': dict(learning_rate=0.02, t_alpha_beta3=30, alpha=8.0, beta3=0.999,
                   epsilon=1e-6, wd=0.01),
    'cautious': dict(learning_rate=0.02, cautious=True, alpha=3.0, beta3=0.99, wd=0.05),
}


def ademamix_oracle(hp):
    from pytorch_optimizer import AdEMAMix

    def make(params):
        # weight_decouple=True: the paper's decoupled decay (the oracle's default is L2)
        return AdEMAMix(params, lr=hp['learning_rate'],
                        betas=(hp.get('beta1', 0.9), hp.get('beta2', 0.999),
                               hp.get('beta3', 0.9999)),
                        weight_decay=hp.get('wd', 0.0), weight_decouple=True,
                        alpha=hp.get('alpha', 5.0), t_alpha_beta3=hp.get('t_alpha_beta3'),
                        eps=hp.get('epsilon', 1e-8), cautious=hp.get('cautious', False),
                        foreach=False)
    return make


@needs_oracle
@pytest.mark.parametrize('case', sorted(ADEMAMIX_CASES))
def test_ademamix_matches_pytorch_optimizer(case):
    hp = ADEMAMIX_CASES[case]
    problem = Problem()
    # the oracle's state keys in our state_names order
    theirs = run_oracle(ademamix_oracle(hp), problem, ['exp_avg', 'exp_avg_sq', 'exp_avg_slow'])
    ours = run_ours('ademamix', problem, **hp)
    assert moved(ours, problem) > 0.05
    err = max_relative_error(ours, theirs)
    print('ademamix-%s: %d steps, max relative error %.3g (float64)' % (case, STEPS, err))
    assert err < F64_RTOL


MARS_CASES = {
    'plain': dict(learning_rate=0.01, wd=0.1),
    'options': dict(learning_rate=0.01, gamma=0.1, beta1=0.9, lr_1d=0.003, beta1_1d=0.8,
                    beta2_1d=0.9, epsilon=1e-3, wd=0.01),
    'cautious': dict(learning_rate=0.01, cautious=True, wd=0.05),
    'optimize-1d-cautious': dict(learning_rate=0.01, optimize_1d=True, cautious=True,
                                 gamma=0.05),
}


def mars_oracle(hp, monkeypatch):
    from pytorch_optimizer import MARS
    import torch
    b1, b2 = hp.get('beta1', 0.95), hp.get('beta2', 0.99)
    b1_1d, b2_1d = hp.get('beta1_1d', 0.9), hp.get('beta2_1d', 0.95)
    opts = []

    def aligned_denominator(ams_bound, exp_avg_sq, max_exp_avg_sq, eps, exp_avg_sq_eps=1e-15):
        # The oracle returns sqrt(v + 1e-15) + eps and divides by sqrt(1 - beta2^t) after;
        # the authors' code (and ours) adds eps after that division: sqrt(v) + eps sqrt(bc2)
        # here gives sqrt(v) / sqrt(bc2) + eps there.
        opt = opts[0]
        step = opt.param_groups[0]['step']
        is_1d = not opt.param_groups[0]['optimize_1d'] and any(
            exp_avg_sq is opt.state[p]['exp_avg_sq'] and p.ndim < 2
            for p in opt.param_groups[0]['params'])
        beta2 = b2_1d if is_1d else b2
        return exp_avg_sq.sqrt() + eps * math.sqrt(1.0 - beta2 ** step)
    monkeypatch.setattr(MARS, 'apply_ams_bound', staticmethod(aligned_denominator))

    def make(params):
        # weight_decay_1d = weight_decay: ours decays every tensor with wd
        opts.append(MARS(params, lr=hp['learning_rate'], betas=(b1, b2),
                         gamma=hp.get('gamma', 0.025), mars_type='adamw',
                         optimize_1d=hp.get('optimize_1d', False),
                         lr_1d=hp.get('lr_1d', hp['learning_rate']), betas_1d=(b1_1d, b2_1d),
                         weight_decay=hp.get('wd', 0.0), weight_decay_1d=hp.get('wd', 0.0),
                         weight_decouple=True, cautious=hp.get('cautious', False),
                         eps=hp.get('epsilon', 1e-8), foreach=False))
        return opts[0]
    del torch
    return make


@needs_oracle
@pytest.mark.parametrize('case', sorted(MARS_CASES))
def test_mars_matches_pytorch_optimizer(case, monkeypatch):
    hp = MARS_CASES[case]
    problem = Problem()
    theirs = run_oracle(mars_oracle(hp, monkeypatch), problem,
                        ['exp_avg', 'exp_avg_sq', 'last_grad'])
    ours = run_ours('mars', problem, **hp)
    assert moved(ours, problem) > 0.05
    err = max_relative_error(ours, theirs)
    print('mars-%s: %d steps, max relative error %.3g (float64)' % (case, STEPS, err))
    assert err < F64_RTOL


def test_mars_clip_is_active_and_inactive_in_the_oracle_runs():
    """The runs above must exercise both branches of Clip(c, 1): W's corrected gradient above
    norm 1 throughout, K's below it at most steps (else a wrong clip would go unnoticed)."""
    problem = Problem()
    ours = run_ours('mars', problem, **MARS_CASES['plain'])
    coef = 0.025 * 0.95 / 0.05
    norms = {'w': [], 'k': []}
    for step in range(1, STEPS):
        g = problem.grads(step, {n: ours[step - 1][n][0] for n in SHAPES})
        for n in norms:
            prev = ours[step - 1][n][1][2]  # last_grad after the previous step
            norms[n].append(np.linalg.norm(g[n] + coef * (g[n] - prev)))
    assert min(norms['w']) > 1.0, norms['w']
    assert np.mean(np.array(norms['k']) < 1.0) > 0.5, norms['k']


@needs_oracle
def test_the_oracles_cautious_rescaling_is_ours():
    """pytorch-optimizer 4.1.0's apply_cautious rescales by n / (sum + 1), as the authors'
    code and base.cautious_mask: the cautious oracle runs need no monkeypatch. Should a
    release change it, this fails and the runs above must patch it."""
    import torch
    from pytorch_optimizer.base.optimizer import BaseOptimizer
    rng = np.random.RandomState(1)
    u, g = rng.randn(7, 5), rng.randn(7, 5)
    theirs = torch.tensor(u)
    BaseOptimizer.apply_cautious(theirs, torch.tensor(g))
    ours = mx.nd.array(u, dtype='float64')
    ours = ours * cautious_mask(ours, mx.nd.array(g, dtype='float64'))
    np.testing.assert_allclose(ours.asnumpy(), theirs.numpy(), rtol=1e-12)


@needs_oracle
@pytest.mark.parametrize('name,case', [('ademamix', c) for c in sorted(ADEMAMIX_CASES)]
                         + [('mars', c) for c in sorted(MARS_CASES)])
def test_fused_float32_matches_the_oracle(name, case, monkeypatch):
    if not kernels.available():
        pytest.skip('fused kernels unavailable on this machine (no compiler?)')
    hp = (ADEMAMIX_CASES if name == 'ademamix' else MARS_CASES)[case]
    problem = Problem()
    if name == 'ademamix':
        theirs = run_oracle(ademamix_oracle(hp), problem,
                            ['exp_avg', 'exp_avg_sq', 'exp_avg_slow'])
    else:
        theirs = run_oracle(mars_oracle(hp, monkeypatch), problem,
                            ['exp_avg', 'exp_avg_sq', 'last_grad'])
    ours = run_ours(name, problem, dtype='float32', use_fused=True, **hp)
    err = max_relative_error(ours, theirs)
    print('%s-%s fused float32: %d steps, max relative error %.3g' % (name, case, STEPS, err))
    assert err < F32_RTOL


def test_warmup_schedules():
    # alpha: linear from alpha / T to alpha at T, then constant
    assert alpha_schedule(1, 8.0, 4) == 2.0 and alpha_schedule(4, 8.0, 4) == 8.0
    assert alpha_schedule(100, 8.0, 4) == 8.0 and alpha_schedule(1, 8.0, None) == 8.0
    # beta3: from beta1 at t = 0 to beta3 at t = T, linear in the half-life
    # ln(0.5) / ln(beta) (the paper's scheduler): at T/2, the mean of the two half-lives
    b1, b3, T = 0.9, 0.9999, 100
    assert beta3_schedule(0, b1, b3, T) == pytest.approx(b1, rel=1e-12)
    assert beta3_schedule(T, b1, b3, T) == pytest.approx(b3, rel=1e-12)
    assert beta3_schedule(10 * T, b1, b3, T) == b3
    half = beta3_schedule(T // 2, b1, b3, T)
    # the closed form is linear in 1 / ln(beta), i.e. in the half-life
    assert 1 / math.log(half) == pytest.approx(0.5 / math.log(b1) + 0.5 / math.log(b3),
                                               rel=1e-12)
    values = [beta3_schedule(t, b1, b3, T) for t in range(T + 1)]
    assert all(a < b for a, b in zip(values, values[1:]))
    # the authors' form (apple/ml-ademamix, linear_hl_warmup_scheduler): interpolate
    # f(beta) = ln(0.5) / ln(beta) - 1 linearly, then invert with 0.5 ** (1 / (f + 1)); their
    # 1e-8 inside the logarithm is left out, so the two agree to rounding
    def f(beta):
        return math.log(0.5) / math.log(beta) - 1
    for t in range(0, T, 7):
        a = t / T
        authors = 0.5 ** (1 / ((1 - a) * f(b1) + a * f(b3) + 1))
        assert beta3_schedule(t, b1, b3, T) == pytest.approx(authors, rel=1e-12)


# The kernels each configuration's fused path runs, and how many tensors each takes per step
# (the shapes of run(): three vectors and one matrix). Parity with the reference alone would
# also pass if the fused path fell back to the reference.
N_1D, N_2D = 3, 1
KERNELS = [
    ('ademamix', {}, {'gopt_ademamix': 4}),
    ('ademamix', dict(cautious=True), {'gopt_ademamix_cautious': 4}),
    ('mars', {}, {'gopt_mars': N_2D, 'gopt_mars_1d': N_1D}),
    ('mars', dict(optimize_1d=True), {'gopt_mars': 4}),
    ('mars', dict(cautious=True), {'gopt_mars_moments': N_2D, 'gopt_mars_apply_cautious': N_2D,
                                   'gopt_mars_1d_cautious': N_1D}),
    ('mars', dict(cautious=True, optimize_1d=True),
     {'gopt_mars_moments': 4, 'gopt_mars_apply_cautious': 4}),
]


@pytest.mark.parametrize('dtype', ['float32', 'float16'])
@pytest.mark.parametrize('name,hp,ops', KERNELS)
def test_fused_paths_run_their_kernels(monkeypatch, name, hp, ops, dtype):
    if not kernels.available():
        pytest.skip('fused kernels unavailable on this machine (no compiler?)')
    called, real = [], kernels._Call.__call__

    def spy(self, *args, **kwargs):
        called.append((self.op, self.n))
        return real(self, *args, **kwargs)
    monkeypatch.setattr(kernels._Call, '__call__', spy)
    opt = mx.optimizer.create('gluon_opt.' + name, use_fused=True,
                              multi_precision=dtype == 'float16', **hp)
    rng = np.random.RandomState(0)
    shapes = [(3,), (1025,), (40000,), (257, 130)]
    weights = [mx.nd.array(rng.randn(*s), dtype=dtype) for s in shapes]
    states = [opt.create_state_multi_precision(i, w) for i, w in enumerate(weights)]
    for _ in range(2):
        grads = [mx.nd.array(rng.randn(*s), dtype=dtype) for s in shapes]
        opt.update_multi_precision(list(range(4)), weights, grads, states)
    counts = {}
    for op, n in called:
        counts[op] = counts.get(op, 0) + n
    assert counts == {op: 2 * n for op, n in ops.items()}


def test_records():
    for name in ('ademamix', 'mars'):
        info = gluon_opt.optimizers.info(name)
        assert info.tuned and info.fused_op and info.state_bytes == 12
        assert 'pytorch_optimizer' in info.oracle
