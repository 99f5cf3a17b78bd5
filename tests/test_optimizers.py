"""Generic tests: every entry of the optimizer table goes through all of them."""
import os
import pickle

import numpy as np
import pytest
import mxnet as mx
from mxnet import nd, gluon

import gluon_opt
from gluon_opt.optimizers.registry import MXNET_BUILTIN_NAMES

from optimizer_table import TABLE, one_per_optimizer, one_per_storage, storage_of
from references import REFERENCES
from helpers import (create, random_problem, flat_states, state_values, run_updates,
                     classification_data, small_mlp, train_steps, params_numpy)
import optimizer_table



def _param(e, id):
    """A table entry as a test case; closure-based optimizers are skipped with the reason."""
    marks = [pytest.mark.skip(reason=optimizer_table.CLOSURE_SKIP)] if e.closure else []
    return pytest.param(e, id=id, marks=marks)


ENTRIES = [_param(e, e.id) for e in TABLE]
# the plumbing tests: every optimizer, and each one's states in bfloat16 and in 8 bits
ONE_EACH = ([_param(e, e.name) for e in one_per_optimizer()]
            + [_param(e, e.id) for e in one_per_storage()])
WITH_REF = [_param(e, e.id) for e in TABLE if e.reference]


def test_every_registered_optimizer_is_in_the_table():
    assert set(gluon_opt.REGISTRY) == {e.name for e in TABLE}


def test_every_optimizer_has_a_convergence_check():
    for name in gluon_opt.REGISTRY:
        entries = [e for e in TABLE if e.name == name]
        assert any(e.convex for e in entries), name
        assert any(e.rosenbrock for e in entries), name


def test_registration_never_replaces_mxnet_builtins():
    registry = mx.optimizer.Optimizer.opt_registry
    for name, cls in gluon_opt.REGISTRY.items():
        assert registry['gluon_opt.' + name] is cls
        if name in MXNET_BUILTIN_NAMES:
            assert not registry[name].__module__.startswith('gluon_opt'), name
        else:
            assert registry[name] is cls
    assert registry['adam'] is mx.optimizer.Adam
    assert registry['sgd'] is mx.optimizer.SGD


@pytest.mark.parametrize('e', WITH_REF)
@pytest.mark.parametrize('shape', [(7,), (6, 5)], ids=['vector', 'matrix'])
def test_conformance_with_numpy_transcription(e, shape):
    kwargs = dict(e.kwargs)
    lr = kwargs.pop('learning_rate')
    wd = kwargs.pop('wd', 0.0 if e.name != 'adamw' else 0.01)
    w0, grads = random_problem(1, shape, optimizer_table.STEPS)
    opt = create(e.name, learning_rate=lr, wd=wd, **kwargs)
    w, state = run_updates(opt, w0, grads)
    hyper, _ = storage_of(kwargs)  # the transcriptions keep exact states
    w_ref, states_ref = REFERENCES[e.reference](w0, [g.astype(np.float64) for g in grads],
                                                lr, wd, **hyper)
    np.testing.assert_allclose(w.asnumpy(), w_ref, **_weight_tol(e, w0, w_ref))
    ours = state_values(opt, state, shape)
    names = opt.state_names_for(shape)
    assert len(ours) == len(states_ref) == len(names)
    for name, a, b in zip(names, ours, states_ref):
        tol = dict(rtol=e.rtol, atol=e.atol)
        if e.state_tol is not None:  # states stored in low precision: their rounding
            tol = dict(rtol=0.0, atol=e.state_tol * float(np.abs(b).max()))
        np.testing.assert_allclose(a, b, err_msg=name, **tol)


def _weight_tol(e, w0, w_ref):
    """The entry's tolerance of the weights (see ``optimizer_table.Entry``)."""
    if e.displacement_tol is None:
        return dict(rtol=e.rtol, atol=e.atol)
    return dict(rtol=0.0, atol=e.displacement_tol * float(np.abs(w_ref - w0).max()))


@pytest.mark.parametrize('e', WITH_REF)
def test_rescale_and_clip_come_before_the_rule(e):
    """rescale_grad then clip_gradient, then the optimizer's own rule (MXNet's order)."""
    kwargs = dict(e.kwargs)
    lr = kwargs.pop('learning_rate')
    wd = kwargs.pop('wd', 0.0 if e.name != 'adamw' else 0.01)
    w0, grads = random_problem(2, (9,), 10, scale=4.0)
    opt = create(e.name, learning_rate=lr, wd=wd, rescale_grad=0.5, clip_gradient=1.0,
                 **kwargs)
    w, _ = run_updates(opt, w0, grads)
    prepared = [np.clip(0.5 * g.astype(np.float64), -1.0, 1.0) for g in grads]
    w_ref, _ = REFERENCES[e.reference](w0, prepared, lr, wd, **storage_of(kwargs)[0])
    np.testing.assert_allclose(w.asnumpy(), w_ref, **_weight_tol(e, w0, w_ref))


def _build_scheduler(hyper):
    """Settings hold a scheduler *factory* (schedulers are stateful): build a fresh one."""
    if hyper.get('lr_scheduler') is not None:
        hyper['lr_scheduler'] = hyper['lr_scheduler']()


def _solution(e, opt, w, state):
    """The optimizer's answer: the weight, or what the entry's ``solution`` method makes of
    it (Schedule-Free's average x)."""
    return (getattr(opt, e.solution)(w, state) if e.solution else w).asnumpy()


def _parabola_grad(w, a, c):
    return a * (w - c)


@pytest.mark.parametrize('e', [_param(e, e.id) for e in TABLE if e.convex])
def test_reaches_parabola_minimum(e):
    rng = np.random.RandomState(3)
    a = np.linspace(1.0, 10.0, 6).astype(np.float32)   # condition number 10
    c = rng.randn(6).astype(np.float32)
    hyper = dict(e.convex)
    steps = hyper.pop('steps')
    tol = hyper.pop('tol', 1e-3)
    _build_scheduler(hyper)
    opt = create(e.name, **hyper)
    w = nd.zeros(6)
    state = opt.create_state_multi_precision(0, w)
    for _ in range(steps):
        g = _parabola_grad(w.asnumpy(), a, c)
        opt.update_multi_precision(0, w, nd.array(g), state)
    assert np.abs(_solution(e, opt, w, state) - c).max() < tol


def _rosenbrock_grad(w):
    x, y = float(w[0]), float(w[1])
    return np.array([-2 * (1 - x) - 400 * x * (y - x * x), 200 * (y - x * x)], np.float32)


@pytest.mark.parametrize('e', [_param(e, e.id) for e in TABLE if e.rosenbrock])
def test_reaches_rosenbrock_minimum(e):
    hyper = dict(e.rosenbrock)
    steps = hyper.pop('steps')
    tol = hyper.pop('tol', 1e-2)
    _build_scheduler(hyper)
    opt = create(e.name, **hyper)
    w = nd.array([-1.0, 1.5])
    state = opt.create_state_multi_precision(0, w)
    for _ in range(steps):
        opt.update_multi_precision(0, w, nd.array(_rosenbrock_grad(w.asnumpy())), state)
    point = _solution(e, opt, w, state)
    assert np.abs(point - 1.0).max() < tol, point


@pytest.mark.parametrize('e', ENTRIES)
def test_trains_an_mlp_through_gluon_trainer(e):
    x, y = classification_data()
    net = small_mlp()
    trainer = gluon.Trainer(net.collect_params(), 'gluon_opt.' + e.name, dict(e.kwargs))
    losses = train_steps(net, trainer, x, y, steps=40)
    assert np.isfinite(losses).all()
    assert np.mean(losses[-5:]) < 0.7 * np.mean(losses[:5]), losses


@pytest.mark.parametrize('e', ONE_EACH)
def test_multi_precision_float16(e):
    w0, grads = random_problem(4, (8, 3), 15, scale=0.5)
    w32, s32 = run_updates(create(e.name, **e.kwargs), w0, grads)
    opt = create(e.name, multi_precision=True, **e.kwargs)
    w16, s16 = run_updates(opt, w0.astype(np.float16), [g.astype(np.float16) for g in grads],
                           dtype='float16')
    master, inner = s16
    assert w16.dtype == np.float16 and master.dtype == np.float32
    if e.kwargs.get('state_dtype'):  # float32 states, or as state_dtype stores them
        assert all(gluon_opt.kernels.state_kind(s) in ('f', 'b', 'q') for s in inner)
    else:
        assert all(s.dtype == np.float32 for s in flat_states(inner)) or not inner
    # The master weight sees the float16-rounded gradients (relative error ~5e-4 each); the
    # float16 weight is the master rounded to 11 bits (relative 5e-4). With states stored in
    # low precision, such a perturbation can move a state across a rounding boundary: both
    # runs are then within the entry's bound of the exact trajectory, so within twice it of
    # each other.
    tol = dict(rtol=1e-2, atol=2e-3)
    if e.displacement_tol is not None:
        tol['atol'] = max(tol['atol'], 2 * e.displacement_tol * float(np.abs(w32.asnumpy()
                                                                             - w0).max()))
    np.testing.assert_allclose(master.asnumpy(), w32.asnumpy(), **tol)
    np.testing.assert_allclose(w16.asnumpy(), master.asnumpy().astype(np.float16),
                               rtol=0, atol=0)


@pytest.mark.parametrize('e', ONE_EACH)
@pytest.mark.parametrize('update_on_kvstore', [True, False])
@pytest.mark.parametrize('kvstore', ['device', 'local'])  # reduce on the device / on the CPU
def test_several_contexts_match_one(e, update_on_kvstore, kvstore):
    if update_on_kvstore and getattr(gluon_opt.REGISTRY[e.name], 'whole_step', False):
        # -- parameter-free --: a kvstore updates one key per call, a step of theirs needs all
        pytest.skip('refused: needs every parameter in one call (tests/test_parameter_free.py)')
    x, y = classification_data(n=128)
    ctxs = [mx.cpu(0), mx.cpu(1)]
    nets = {}
    for key, ctx_list in (('one', [mx.cpu(0)]), ('two', ctxs)):
        net = small_mlp(seed=5, ctx=ctx_list)
        kwargs = {}
        if key == 'two':
            kwargs = dict(kvstore=kvstore, update_on_kvstore=update_on_kvstore)
        trainer = gluon.Trainer(net.collect_params(), 'gluon_opt.' + e.name, dict(e.kwargs),
                                **kwargs)
        train_steps(net, trainer, x, y, steps=6, ctx_list=ctx_list)
        nets[key] = net
    one, two = params_numpy(nets['one']), params_numpy(nets['two'])
    for k in one:
        # only the order of the gradient sums differs between the two runs
        np.testing.assert_allclose(two[k], one[k], rtol=1e-4, atol=1e-5, err_msg=k)
    for p in nets['two'].collect_params().values():
        a, b = (d.asnumpy() for d in p.list_data())
        np.testing.assert_array_equal(a, b)  # the two copies stay identical


@pytest.mark.parametrize('e', ONE_EACH)
def test_save_and_load_states_resumes_exactly(e, tmp_path):
    # gluon.Trainer orders parameters by name and its states file by that order, so both nets
    # need the same names: with Gluon's global counters the layers can straddle a power of ten
    # (dense99_, dense100_), which sorts them differently and hands each tensor another's states
    x, y = classification_data()
    net = small_mlp(seed=7, prefix='resume_')
    trainer = gluon.Trainer(net.collect_params(), 'gluon_opt.' + e.name, dict(e.kwargs))
    train_steps(net, trainer, x, y, steps=5)
    net.save_parameters(str(tmp_path / 'p.params'))
    trainer.save_states(str(tmp_path / 't.states'))
    train_steps(net, trainer, x, y, steps=5, start=5)
    uninterrupted = params_numpy(net)

    resumed = small_mlp(seed=99, prefix='resume_')
    resumed.load_parameters(str(tmp_path / 'p.params'))
    trainer2 = gluon.Trainer(resumed.collect_params(), 'gluon_opt.' + e.name, dict(e.kwargs))
    trainer2.load_states(str(tmp_path / 't.states'))
    train_steps(resumed, trainer2, x, y, steps=5, start=5)
    for k, v in params_numpy(resumed).items():
        np.testing.assert_array_equal(v, uninterrupted[k], err_msg=k)


@pytest.mark.parametrize('e', ONE_EACH)
def test_pickled_optimizer_continues_identically(e):
    w0, grads = random_problem(6, (4, 4), 12)
    opt = create(e.name, **e.kwargs)
    w, state = run_updates(opt, w0, grads[:6])
    clone = pickle.loads(pickle.dumps(opt))
    state2 = pickle.loads(pickle.dumps(state))
    w2 = w.copy()
    for g in grads[6:]:
        opt.update_multi_precision(0, w, nd.array(g), state)
        clone.update_multi_precision(0, w2, nd.array(g), state2)
    np.testing.assert_array_equal(w.asnumpy(), w2.asnumpy())
    assert type(clone) is type(opt)


@pytest.mark.parametrize('e', ONE_EACH)
def test_bad_inputs_raise_clear_errors(e):
    with pytest.raises(ValueError, match='learning_rate'):
        create(e.name, learning_rate=-1.0)
    with pytest.raises(ValueError, match='not_a_hyperparameter'):
        create(e.name, not_a_hyperparameter=1)
    hyper = gluon_opt.REGISTRY[e.name].hyperparameters()
    for key in ('beta1', 'beta2', 'momentum', 'rho', 'gamma1', 'gamma2'):
        if key in hyper:
            with pytest.raises(ValueError, match=key):
                create(e.name, **{key: 1.5})
    opt = create(e.name, **e.kwargs)
    w = nd.ones((4, 2))
    state = opt.create_state_multi_precision(0, w)
    sparse = nd.sparse.row_sparse_array((nd.ones((1, 2)), nd.array([1])), shape=(4, 2))
    with pytest.raises(ValueError, match='row_sparse'):
        opt.update_multi_precision(0, w, sparse, state)
    np.testing.assert_array_equal(w.asnumpy(), 1.0)  # nothing was touched


@pytest.mark.parametrize('e', ONE_EACH)
def test_lr_mult_and_wd_mult_are_honoured(e):
    x, y = classification_data()
    net = small_mlp(seed=8)
    frozen = net[0].weight
    frozen.lr_mult = 0.0
    before = frozen.data().asnumpy().copy()
    kwargs = dict(e.kwargs, wd=0.01)
    trainer = gluon.Trainer(net.collect_params(), 'gluon_opt.' + e.name, kwargs)
    train_steps(net, trainer, x, y, steps=4)
    np.testing.assert_array_equal(frozen.data().asnumpy(), before)

    results = []
    for wd, wd_mult in ((0.05, 0.0), (0.0, 1.0)):
        net = small_mlp(seed=8)
        for p in net.collect_params().values():
            p.wd_mult = wd_mult
        trainer = gluon.Trainer(net.collect_params(), 'gluon_opt.' + e.name,
                                dict(e.kwargs, wd=wd))
        train_steps(net, trainer, x, y, steps=4)
        results.append(params_numpy(net))
    for k in results[0]:
        np.testing.assert_array_equal(results[0][k], results[1][k], err_msg=k)


@pytest.mark.parametrize('e', ONE_EACH)
def test_update_counts_are_per_parameter(e):
    """A parameter updated for the first time takes a first step (bias corrections, momentum
    initialisation), however many steps other parameters have taken."""
    w0, grads = random_problem(9, (5,), 6)
    opt = create(e.name, **e.kwargs)
    other, other_state = nd.zeros(5), None
    other_state = opt.create_state_multi_precision(1, other)
    for g in grads:
        opt.update_multi_precision(1, other, nd.array(g), other_state)
    late, _ = run_updates(opt, w0, grads[:2], index=0)
    fresh, _ = run_updates(create(e.name, **e.kwargs), w0, grads[:2])
    np.testing.assert_allclose(late.asnumpy(), fresh.asnumpy(), rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize('e', ONE_EACH)
def test_learning_rate_schedulers_drive_the_update(e):
    """MXNet's and gluoncv's schedulers set the learning rate each update."""
    from gluon_opt._compat import import_gluoncv
    gcv = import_gluoncv()
    w0, grads = random_problem(10, (6,), 8)
    base_lr = e.kwargs['learning_rate']
    kwargs = {k: v for k, v in e.kwargs.items() if k != 'learning_rate'}
    sched = mx.lr_scheduler.FactorScheduler(step=2, factor=0.5, base_lr=base_lr)
    scheduled, _ = run_updates(create(e.name, lr_scheduler=sched, **kwargs), w0, grads)
    # the same run by hand: learning rate set before every step
    opt = create(e.name, learning_rate=base_lr, **kwargs)
    w = nd.array(w0)
    state = opt.create_state_multi_precision(0, w)
    ref_sched = mx.lr_scheduler.FactorScheduler(step=2, factor=0.5, base_lr=base_lr)
    for i, g in enumerate(grads):
        opt.set_learning_rate(ref_sched(i + 1))
        opt.update_multi_precision(0, w, nd.array(g), state)
    np.testing.assert_allclose(scheduled.asnumpy(), w.asnumpy(), rtol=1e-6, atol=1e-7)
    assert not np.allclose(scheduled.asnumpy(), run_updates(create(e.name, **e.kwargs),
                                                            w0, grads)[0].asnumpy())

    gsched = gcv.utils.LRScheduler('cosine', base_lr=base_lr, nepochs=1, iters_per_epoch=8)
    opt = create(e.name, lr_scheduler=gsched, **kwargs)
    run_updates(opt, w0, grads)
    assert opt.learning_rate == pytest.approx(gsched(8))


def test_reference_path_can_be_forced(monkeypatch):
    monkeypatch.setenv('GLUON_OPT_IMPL', 'reference')
    assert not create('adam')._fused_selected()
    monkeypatch.setenv('GLUON_OPT_IMPL', 'bogus')
    with pytest.raises(ValueError, match='GLUON_OPT_IMPL'):
        create('adam')._fused_selected()
