"""The fused kernels against the reference updates: many steps, weights and every state.

Iterates the optimizer table (``optimizer_table.TABLE``) over every registered optimizer that
declares a ``fused_op`` (the kernel beside its reference ``step``), plus the wrapper
configurations in ``EXTRA_CASES``. An optimizer whose ``fused_op`` the library lacks must keep
working through the reference path.
"""
import os
import subprocess
import sys
import textwrap
import warnings

import numpy as np
import pytest
import mxnet as mx

import gluon_opt
from gluon_opt import kernels
from gluon_opt.kernels import plans
from gluon_opt.optimizers import GluonOptOptimizer
from optimizer_table import TABLE

STEPS = 25
# Sizes cross the kernels' tile (1024) and block (32768) boundaries, and together exceed the
# threshold (65536 elements) above which a call runs on several OpenMP threads.
SHAPES = [(3,), (1025,), (40000,), (257, 130)]
# Optimizers whose state layout depends on the shape get more. Adafactor factors tensors of
# ndim >= 2 over their last two axes: a convolution-like 4-D weight (many 3 x 3 matrices, several
# whole matrices per work item; the call then runs on several threads), a 3-D stack of matrices,
# 1 x 1 matrices (1 x 1 convolutions, updated element-wise), one-row matrices and 13 matrices of
# 3 x 3 (the AVX2 path takes 3 x 3 matrices by eight: 8 there, 5 in the general small-matrix
# code); (257, 130) above is cut into chunks whose column sums are added afterwards.
EXTRA_SHAPES = {'adafactor': [(256, 64, 3, 3), (4, 300, 70), (2, 3, 1, 1), (5, 1, 7),
                              (13, 3, 3)]}

# Gradients are rescaled and clipped so the kernels' gradient preprocessing is exercised too.
COMMON = {'rescale_grad': 0.5, 'clip_gradient': 0.8}

# Tolerances. float32: both paths do the same float32 operations in the same order (the
# kernels are compiled without -ffast-math and without FMA contraction), so they agree to the
# last bit in practice; rtol 1e-5 leaves room for a compiler or libm rounding a few ulps
# differently and that difference compounding over STEPS steps. float16 weights: one float16
# ulp (2**-10 relative), since the final float32 -> float16 rounding can flip where the float32
# master values differ in their last bits; the float32 masters and states use the float32 bounds.
F32 = dict(rtol=1e-5, atol=1e-6)
F16 = dict(rtol=2 ** -10, atol=1e-4)
# Optimizers whose step is scaled by a norm: name -> bound on the difference, as a fraction of
# the tensor's largest magnitude (replacing atol where that is larger).
# LAMB and LARS scale each tensor's step by a ratio of norms. The kernels sum squares in double
# precision; the reference's nd.norm sums 10^4 float32 squares, whose rounding error is a few
# 1e-7 relative (measured: up to 2e-6 of a tensor's largest element after 1 to 25 steps, 30
# float32 ulps, at every step count alike, so it does not compound). Every element inherits that
# error scaled by the tensor's step, so elements that cancel to near zero (a momentum buffer
# crossing zero) differ by more than rtol relative to themselves. For these two we bound the
# difference by 1e-5 of the tensor's largest magnitude instead (5x the measured worst); a wrong
# formula shows up at 1e-3 or more.
# Adafactor scales its step by RMS(w) (scale_parameter) and divides the update by RMS(u) (update
# clipping): the same nd.norm against double sums, over larger tensors here (EXTRA_SHAPES, up to
# 147456 elements), where nd.norm's own float32 error reaches 1.5e-5 relative (9e-6 at 84000
# elements, 2e-7 at 1025): the clip divisor, hence every element's step, carries it. Measured
# after 1, 5 and 25 steps, all three table entries, float32 and float16: weights up to 7.6e-7 of
# the tensor's largest magnitude, states up to 1.1e-5 (the momentum at step 1, which is the
# clipped step itself; 5e-6 after 25 steps); the row and column means (double sums rounded to
# float32 against MXNet's float32 Kahan sums) agree to an ulp. Bound: 5e-5, above nd.norm's own
# error at these sizes and 4.5x the measured worst.
NORM_SCALED = {'lamb': 1e-5, 'lars': 1e-5, 'adafactor': 5e-5}
# -- parameter-free -- Prodigy, D-Adaptation Adam and DoG scale every tensor's step by global
# scalars made of sums over all tensors (d, sum |s|, ||x - x0||, sum ||g||^2): double sums in the
# kernels, nd.sum's float32 ones in the reference, so every step carries a few float32 ulps of
# the scalars, as LAMB's norms do. Measured over STEPS steps, every table entry: weights up to
# 5.8e-7 of a tensor's largest magnitude, states up to 6.0e-7; bound 1e-5, as LAMB's (a wrong
# coefficient shows up at 1e-3 or more). tests/test_parameter_free.py checks the same where d
# grows (a trajectory-dependent problem; these random gradients leave d near d0), and that
# their kernel takes every tensor of every step (their fused path is composite here).
NORM_SCALED.update({'prodigy': 1e-5, 'dadapt_adam': 1e-5, 'dog': 1e-5})


def assert_close(fused, ref, name, tol):
    if name in NORM_SCALED:
        tol = dict(tol, atol=max(tol['atol'], NORM_SCALED[name] * float(np.abs(ref).max())))
    np.testing.assert_allclose(fused, ref, **tol)


FUSED = sorted(name for name, cls in gluon_opt.REGISTRY.items() if cls.fused_op)

# Lookahead around a composite inner (Muon: its AdamW vectors and its orthogonalised matrix),
# beside the table's Lookahead(Adam/SGD/AdamW); k=3 syncs 8 times in STEPS.
# Muon and Lookahead take the shared F32/F16 bounds: their kernels repeat the reference's
# float32 operations in order and Newton-Schulz is the same nd.dot code on the same inputs;
# measured over STEPS steps, every table entry and these: max |fused - reference| = 0 for
# weights and states, float32 and float16 alike.
EXTRA_CASES = [
    ('lookahead-muon', 'lookahead', dict(optimizer='gluon_opt.muon', k=3, alpha=0.5,
                                         learning_rate=0.02, wd=0.01)),
]


def composite(name):
    """True for the updates made of several kernels (they override ``_fused_update``)."""
    return gluon_opt.REGISTRY[name]._fused_update is not GluonOptOptimizer._fused_update


def has_fused_path(name):
    cls = gluon_opt.REGISTRY[name]
    return cls.fused_op is not None and (
        composite(name) or cls.fused_op in kernels.RULE_OPS + kernels.CPU_ONLY_OPS)


def cases():
    """The optimizer table's entries of every optimizer with a ``fused_op``, the extra cases,
    and the defaults of any such optimizer the table does not list yet."""
    listed = set()
    for e in TABLE:
        if e.name in FUSED:
            listed.add(e.name)
            yield pytest.param(e.name, e.kwargs, id=e.id)
    for id_, name, hp in EXTRA_CASES:
        yield pytest.param(name, hp, id=id_)
    for name in FUSED:
        if name not in listed:
            yield pytest.param(name, {}, id=name + '-defaults')


def make(name, use_fused, **hp):
    return mx.optimizer.create('gluon_opt.' + name, use_fused=use_fused, **dict(COMMON, **hp))


def run(name, hp, use_fused, dtype, multi, steps=STEPS):
    """``steps`` updates of SHAPES (and the optimizer's EXTRA_SHAPES) from fixed random data;
    returns weights and states."""
    rng = np.random.RandomState(42)
    shapes = SHAPES + EXTRA_SHAPES.get(name, [])
    opt = make(name, use_fused, multi_precision=dtype == 'float16', **hp)
    weights = [mx.nd.array(rng.randn(*s), dtype=dtype) for s in shapes]
    states = [opt.create_state_multi_precision(i, w) for i, w in enumerate(weights)]
    indices = list(range(len(shapes)))
    for _ in range(steps):
        grads = [mx.nd.array(rng.randn(*s), dtype=dtype) for s in shapes]
        if multi:
            opt.update_multi_precision(indices, weights, grads, states)
        else:
            for i in indices:
                opt.update_multi_precision(i, weights[i], grads[i], states[i])
    return [w.asnumpy() for w in weights], [a for s in states for a in _flat(s)]


def _flat(state):
    if isinstance(state, mx.nd.NDArray):
        return [state.asnumpy()]
    out = []
    for s in state:
        out.extend(_flat(s))
    return out


@pytest.fixture(scope='module')
def loaded():
    if not kernels.available():
        pytest.skip('fused kernels unavailable on this machine (no compiler?)')


def test_table_is_not_empty():
    assert {'sgd', 'adam', 'adamw'} <= set(FUSED)


def test_every_first_order_optimizer_is_fused():
    """Every registered optimizer that is not closure-based (Newton, L-BFGS, Newton-CG, SAM,
    Sophia re-evaluate the loss: not elementwise update rules) has a kernel or a composite
    fused update."""
    missing = sorted(name for name, cls in gluon_opt.REGISTRY.items()
                     if not cls.needs_closure and not has_fused_path(name))
    assert not missing, missing


_REFERENCE = {}


def reference(name, hp, dtype):
    """The reference run of one problem, computed once per (entry, dtype) and reused by the
    single- and multi-tensor fused runs: the reference path updates tensor by tensor either way,
    so its results do not depend on how the tensors are handed over."""
    key = (name, repr(sorted(hp.items())), dtype)
    if key not in _REFERENCE:
        _REFERENCE[key] = run(name, hp, False, dtype, True)
    return _REFERENCE[key]


@pytest.mark.parametrize('multi', [False, True], ids=['single', 'multi'])
@pytest.mark.parametrize('dtype', ['float32', 'float16'])
@pytest.mark.parametrize('name,hp', list(cases()))
def test_fused_matches_reference(loaded, name, hp, dtype, multi):
    if not has_fused_path(name):
        pytest.skip('%s: no kernel %r in the library (reference path only)'
                    % (name, gluon_opt.REGISTRY[name].fused_op))
    if not multi and getattr(gluon_opt.REGISTRY[name], 'whole_step', False):
        pytest.skip('%s takes a whole step per call: one tensor per call is refused '
                    '(tests/test_parameter_free.py)' % name)
    if not multi and 'state_dtype' in hp:
        pytest.skip('states in low precision: one tensor per call is checked by '
                    'tests/test_lowprec.py (CI time)')
    ref_w, ref_s = reference(name, hp, dtype)
    fus_w, fus_s = run(name, hp, True, dtype, multi)
    for r, f in zip(ref_w, fus_w):
        assert_close(f, r, name, F16 if dtype == 'float16' else F32)
    assert len(ref_s) == len(fus_s)
    for r, f in zip(ref_s, fus_s):  # masters (float16 case) and every state, all float32
        assert_close(f, r, name, F32)


@pytest.mark.parametrize('dtype', ['float32', 'float16'])
@pytest.mark.parametrize('saved', ['0', '70000'])
def test_adafactor_recomputing_the_update_matches_reference(loaded, monkeypatch, saved, dtype):
    """The Adafactor kernel keeps the update of small and 1 x 1 matrices from its first pass
    for its last (at most GLUON_OPT_ADAFACTOR_SAVED floats per group of tensors), else computes
    it anew there: with no room at all, and with room for some tensors but not the largest."""
    monkeypatch.setenv('GLUON_OPT_ADAFACTOR_SAVED', saved)
    hp = dict(beta1=0.9, wd=0.01)
    ref_w, ref_s = reference('adafactor', hp, dtype)
    fus_w, fus_s = run('adafactor', hp, True, dtype, True)
    for r, f in zip(ref_w, fus_w):
        assert_close(f, r, 'adafactor', F16 if dtype == 'float16' else F32)
    for r, f in zip(ref_s, fus_s):
        assert_close(f, r, 'adafactor', F32)


@pytest.mark.parametrize('dtype', ['float32', 'float16'])
@pytest.mark.parametrize('name,hp', list(cases()))
def test_fused_path_is_taken(loaded, monkeypatch, name, hp, dtype):
    """The kernel takes every tensor of every table entry (else the parity test above would
    compare the reference with itself)."""
    if composite(name):
        pytest.skip('%s: composite fused path, see test_composite_paths_run_their_kernels'
                    % name)
    taken = []
    real = kernels.update

    def spy(op_name, items, *args):
        rest = real(op_name, items, *args)
        taken.append(len(items) - len(rest))
        return rest
    monkeypatch.setattr(kernels, 'update', spy)
    run(name, hp, True, dtype, True, steps=2)
    assert taken == [len(SHAPES + EXTRA_SHAPES.get(name, []))] * 2


# The kernels each composite fused path must run: parity alone would also pass if the fused
# path silently fell back to the reference.
COMPOSITE_OPS = [
    ('muon', {}, {'gopt_muon_momentum', 'gopt_muon_apply', 'gopt_adam'}),
    ('muon', dict(nesterov=False, wd=0.1, adamw_lr=0.005, adamw_wd=0.01),
     {'gopt_muon_momentum', 'gopt_muon_apply', 'gopt_adam'}),
    ('lookahead', dict(optimizer='gluon_opt.adam', k=2), {'gopt_adam', 'gopt_lookahead_sync'}),
    ('lookahead', dict(optimizer='gluon_opt.muon', k=2),
     {'gopt_muon_momentum', 'gopt_muon_apply', 'gopt_adam', 'gopt_lookahead_sync'}),
]


@pytest.mark.parametrize('dtype', ['float32', 'float16'])
@pytest.mark.parametrize('name,hp,ops', COMPOSITE_OPS)
def test_composite_paths_run_their_kernels(loaded, monkeypatch, name, hp, ops, dtype):
    called, real = [], kernels._Call.__call__

    def spy(self, *args, **kwargs):  # every kernel call, prepared or not, ends here
        called.append((self.op, self.n))
        return real(self, *args, **kwargs)
    monkeypatch.setattr(kernels._Call, '__call__', spy)
    run(name, hp, True, dtype, True, steps=2)
    assert {op for op, _ in called} == ops
    counts = {op: sum(n for o, n in called if o == op) for op in ops}
    # every tensor's step ends in a kernel (AdamW vectors, Muon's matrix: 3 + 1 a step), each
    # Muon apply follows its momentum pass, and step 2 syncs every tensor
    assert counts['gopt_adam'] + counts.get('gopt_muon_apply', 0) == 2 * len(SHAPES)
    assert counts.get('gopt_muon_momentum') == counts.get('gopt_muon_apply')
    assert counts.get('gopt_lookahead_sync', 0) == (len(SHAPES) if name == 'lookahead' else 0)


def test_lookahead_with_reference_only_inner_stays_reference(loaded, monkeypatch):
    """An inner optimizer without a fused path: the whole update is the reference, kernels
    untouched, results as with use_fused=False."""
    def inner():
        opt = mx.optimizer.create('gluon_opt.adam', learning_rate=0.01)
        opt.fused_op = None  # as an optimizer without a kernel
        return opt

    def boom(self, *args, **kwargs):
        raise AssertionError('kernel %s called for a reference-only inner' % self.op)
    def lookahead_run(use_fused):
        opt = mx.optimizer.create('gluon_opt.lookahead', optimizer=inner(), k=2,
                                  use_fused=use_fused, **COMMON)
        rng = np.random.RandomState(0)
        w = mx.nd.array(rng.randn(50))
        state = opt.create_state(0, w)
        for _ in range(5):
            opt.update([0], [w], [mx.nd.array(rng.randn(50))], [state])
        return w.asnumpy()
    expected = lookahead_run(False)
    monkeypatch.setattr(kernels._Call, '__call__', boom)
    np.testing.assert_array_equal(lookahead_run(True), expected)


def test_unfusable_items_fall_back(loaded):
    # float16 weights without master weights are not taken by the kernels: the reference runs.
    opt = make('adam', True)
    w = mx.nd.ones((10,), dtype='float16')
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        state = opt.create_state_multi_precision(0, w)
    opt.update_multi_precision(0, w, mx.nd.ones((10,), dtype='float16'), state)
    assert np.all(w.asnumpy() < 1)


def test_unknown_fused_op_keeps_reference(loaded):
    opt = make('sgd', None)
    opt.fused_op = 'no_such_kernel'
    items = ['a', 'b']
    assert opt._fused_update(items) is items


def test_trainer_aggregates_into_one_call(loaded, monkeypatch):
    from mxnet import gluon
    calls = []
    real = kernels.update

    def spy(op_name, items, *args):
        calls.append(len(items))
        return real(op_name, items, *args)
    monkeypatch.setattr(kernels, 'update', spy)
    net = gluon.nn.Sequential()
    for _ in range(10):
        net.add(gluon.nn.Dense(3))
    net.initialize(ctx=mx.cpu())
    trainer = gluon.Trainer(net.collect_params(), 'gluon_opt.adamw', {'learning_rate': 0.1})
    with mx.autograd.record():
        loss = net(mx.nd.ones((2, 3))).sum()
    loss.backward()
    trainer.step(2)
    assert calls == [20]


def _adam_by_hand(w, g, m, v, lr, t, b1=0.9, b2=0.999, eps=1e-8):
    """One float64 Adam step (no rescale, no clip, no wd); returns the new (w, m, v)."""
    m = b1 * m + (1 - b1) * g
    v = b2 * v + (1 - b2) * g * g
    return w - lr / (1 - b1 ** t) * m / (np.sqrt(v / (1 - b2 ** t)) + eps), m, v


def test_prepared_calls_follow_new_arrays(loaded):
    """The fused path prepares each call once and replays it while the same arrays come back;
    new arrays (a reloaded state, a replaced gradient) must be used, never the stale ones."""
    opt = mx.optimizer.create('gluon_opt.adam', learning_rate=0.1, use_fused=True)
    rng = np.random.RandomState(0)
    ws = [mx.nd.array(rng.randn(5)) for _ in range(3)]
    states = [opt.create_state(i, w) for i, w in enumerate(ws)]
    grads = [mx.nd.array(rng.randn(5)) for _ in range(3)]
    expect = [(w.asnumpy().astype(np.float64), 0.0, 0.0) for w in ws]

    def step(t):
        opt.update(list(range(3)), ws, grads, states)
        for i in range(3):
            expect[i] = _adam_by_hand(*expect[i][:1], grads[i].asnumpy().astype(np.float64),
                                      *expect[i][1:], lr=0.1, t=t)
    step(1)
    step(2)  # replayed
    grads[1] = mx.nd.array(rng.randn(5))  # a new gradient array for tensor 1
    step(3)
    fresh = (mx.nd.array(expect[2][1]), mx.nd.array(expect[2][2]))  # tensor 2's state reloaded
    states[2] = fresh
    step(4)
    for i in range(3):
        np.testing.assert_allclose(ws[i].asnumpy(), expect[i][0], rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(states[i][0].asnumpy(), expect[i][1], rtol=1e-5, atol=1e-7)
    assert len(opt._fused_plans) == 1 and '_fused_plans' not in opt.__getstate__()


def test_per_tensor_learning_rates_in_one_call(loaded):
    # lr_mult makes the tensors of one call differ in lr: each gets its own scalars
    opt = mx.optimizer.create('gluon_opt.sgd', learning_rate=1.0, use_fused=True)
    opt.set_lr_mult({0: 0.5, 2: 0.0})
    ws = [mx.nd.ones((4,)) for _ in range(3)]
    gs = [mx.nd.ones((4,)) * (i + 1) for i in range(3)]
    states = [opt.create_state(i, w) for i, w in enumerate(ws)]
    for _ in range(2):
        opt.update([0, 1, 2], ws, gs, states)
    assert [float(w[0].asscalar()) for w in ws] == [1 - 2 * 0.5 * 1, 1 - 2 * 1.0 * 2, 1.0]


@pytest.mark.parametrize('n', [1, 31, 32 * 1024 + 5, (1 << 18) + 77, 3 << 18])
def test_bandwidth_copy_copies(loaded, n):
    # gopt_copy (the benchmark's bandwidth reference): streaming stores in 128-byte steps,
    # a memcpy tail, 1 MiB chunks across threads: sizes around each of those edges
    src = mx.nd.array(np.random.RandomState(n).randn(n))
    dst = mx.nd.zeros((n,))
    kernels.op('gopt_copy')(src, out=dst)
    np.testing.assert_array_equal(dst.asnumpy(), src.asnumpy())


def test_env_forces_reference(loaded, monkeypatch):
    monkeypatch.setenv('GLUON_OPT_IMPL', 'reference')

    def boom(*args):
        raise AssertionError('fused path taken although GLUON_OPT_IMPL=reference')
    monkeypatch.setattr(kernels, 'update', boom)
    run('adam', {}, None, 'float32', True, steps=2)


def test_use_fused_false_forces_reference(loaded, monkeypatch):
    # also under GLUON_OPT_IMPL=fused: the argument overrides the variable
    monkeypatch.setenv('GLUON_OPT_IMPL', 'fused')

    def boom(*args):
        raise AssertionError('fused path taken although use_fused=False')
    monkeypatch.setattr(kernels, 'update', boom)
    assert not make('sgd', False)._fused_selected()
    run('adam', {}, False, 'float32', True, steps=2)


def test_env_forces_fused(loaded, monkeypatch):
    monkeypatch.setenv('GLUON_OPT_IMPL', 'fused')
    assert make('sgd', None)._fused_selected()


BROKEN = textwrap.dedent('''
    import os, warnings, numpy as np, mxnet as mx
    import gluon_opt
    from gluon_opt import kernels
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter('always')
        opt = mx.optimizer.create('gluon_opt.adam', learning_rate=0.1)
        w, g = mx.nd.ones((4,)), mx.nd.ones((4,))
        state = opt.create_state(0, w)
        for _ in range(3):
            opt.update(0, w, g, state)
    build = [c for c in caught if issubclass(c.category, kernels.KernelBuildWarning)]
    assert len(build) == 1, [str(c.message) for c in caught]
    assert np.all(w.asnumpy() < 1)  # the reference path updated the weights
    try:
        kernels.require()
    except kernels.KernelBuildError as err:
        assert 'compiler' in str(err), err
    else:
        raise AssertionError('require() did not raise')
    print('OK')
''')


def test_broken_compiler_warns_once_and_uses_reference(tmp_path):
    env = dict(os.environ, CXX='/bin/false', GLUON_OPT_KERNEL_CACHE=str(tmp_path),
               GLUON_OPT_IMPL='auto')
    env['PYTHONPATH'] = os.pathsep.join(
        [os.path.dirname(os.path.dirname(os.path.abspath(gluon_opt.__file__)))]
        + [p for p in [env.get('PYTHONPATH')] if p])
    proc = subprocess.run([sys.executable, '-c', BROKEN], env=env, stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, universal_newlines=True, timeout=120)
    assert proc.returncode == 0 and 'OK' in proc.stdout, proc.stdout


# ---- the CUDA side's plumbing (its kernels are tested on a GPU machine by tests/gpu) ----------

def test_cuda_kernels_are_opt_in(monkeypatch):
    from gluon_opt.kernels import build
    monkeypatch.delenv('GLUON_OPT_CUDA', raising=False)
    assert build.cuda_compiler() is None
    monkeypatch.setenv('GLUON_OPT_CUDA', 'auto')  # this MXNet wheel has no CUDA: CPU only
    assert build.cuda_compiler() is None
    monkeypatch.setenv('GLUON_OPT_CUDA', '1')
    with pytest.raises(kernels.KernelBuildError, match='built without CUDA'):
        build.cuda_compiler()
    monkeypatch.setenv('GLUON_OPT_CUDA', 'yes please')
    with pytest.raises(kernels.KernelBuildError, match='must be 0, 1 or auto'):
        build.cuda_compiler()


def test_cuda_build_compiles_the_rule_sources_with_nvcc(tmp_path):
    from gluon_opt.kernels import build
    rules = {os.path.basename(p) for p in build.cuda_sources()}
    assert {'adam.cc', 'sgd.cc', 'layerwise.cc', 'orthogonal.cc'} <= rules
    assert not rules & {'factored.cc', 'library.cc', 'wrappers.cc'}  # no rule ops: CPU only
    compiles, link = build.compile_commands('g++', '/opt/cuda/bin/nvcc', '/inc', '/mx/lib_api.cc',
                                            str(tmp_path), str(tmp_path / 'lib.so'))
    by_source = {cmd[cmd.index('-c') + 1]: cmd for cmd, _ in compiles}
    for src, cmd in by_source.items():
        name = os.path.basename(src)
        if name in rules or name == 'lib_api.cc':
            assert cmd[0] == '/opt/cuda/bin/nvcc' and '-fmad=false' in cmd and '-x' in cmd
            assert '--use_fast_math' not in cmd
        else:
            assert cmd[0] == 'g++' and '-ffp-contract=off' in cmd
    assert link[0] == '/opt/cuda/bin/nvcc' and '-shared' in link
    compiles, link = build.compile_commands('g++', None, '/inc', '/mx/lib_api.cc',
                                            str(tmp_path), str(tmp_path / 'lib.so'))
    assert all(cmd[0] == 'g++' for cmd, _ in compiles) and link[0] == 'g++'


def _fake_item(device, dtype=np.float32):
    from types import SimpleNamespace as NS
    weight = NS(stype='default', context=NS(device_type=device), dtype=dtype)
    return NS(weight=weight, grad=NS(dtype=dtype), master=None,
              state=[NS(dtype=np.float32)], index=0)


def test_gpu_items_take_kernels_only_where_built(monkeypatch):
    assert plans._fusable(_fake_item('cpu'))
    assert not plans._fusable(_fake_item('gpu'))
    assert plans._fusable(_fake_item('gpu'), gpu=True)
    assert not plans._fusable(_fake_item('cpu_pinned'), gpu=True)
    monkeypatch.setattr(plans, 'cuda_enabled', lambda: False)
    assert not plans._gpu_op('gopt_adam')
    monkeypatch.setattr(plans, 'cuda_enabled', lambda: True)
    assert plans._gpu_op('gopt_adam') and plans._gpu_op('gopt_muon_apply')
    assert not plans._gpu_op('gopt_adafactor')  # its factored passes are CPU-only
    assert not plans._gpu_op('gopt_lookahead_sync')


def test_prebuild_says_what_it_builds_before_any_timing(monkeypatch, tmp_path):
    """compare and bench call kernels.prebuild() before their first timed step: where the cache
    lacks the library it says so (what, how long, where) and builds it then."""
    import io
    from gluon_opt.kernels import build, runtime
    monkeypatch.setattr(runtime, '_state', {'error': None, 'warned': False, 'ops': None,
                                            'handles': {}})
    monkeypatch.setattr(build, 'library_path', lambda nvcc=None: str(
        tmp_path / 'cache' / '1.9.1-abc' / build.LIB_NAME))
    built = []
    monkeypatch.setattr(runtime, 'available', lambda: built.append(1) or True)
    monkeypatch.delenv('GLUON_OPT_IMPL', raising=False)
    stream = io.StringIO()
    assert runtime.prebuild(stream) is True and built == [1]
    text = stream.getvalue()
    assert 'building the fused optimizer kernels' in text and str(tmp_path / 'cache') in text
    assert 'kernels built in' in text
    monkeypatch.setenv('GLUON_OPT_IMPL', 'reference')
    quiet = io.StringIO()
    assert runtime.prebuild(quiet) is False and quiet.getvalue() == '' and built == [1]
