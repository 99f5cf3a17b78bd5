"""Schedule-Free: the evaluation point (swapping a Trainer's weights from y to x and back), and
Schedule-Free SGD, AdamW and the wrapper against independent implementations."""
import numpy as np
import pytest
import mxnet as mx
from mxnet import gluon

import gluon_opt
from helpers import classification_data, small_mlp, train_steps


def params_numpy(net):
    # by full name (helpers.params_numpy shortens names to 'weight'/'bias', which collide)
    return {k: v.data(v.list_ctx()[0]).asnumpy() for k, v in net.collect_params().items()}


# every Schedule-Free optimizer, its interpolation beta 0.8 (x = (y - 0.2 z) / 0.8)
SCHEDULE_FREE = {
    'schedulefree_adamw': {'learning_rate': 0.01, 'beta1': 0.8},
    'schedulefree_sgd': {'learning_rate': 0.1, 'momentum': 0.8},
    'schedulefree': {'optimizer': 'gluon_opt.adam', 'learning_rate': 0.01, 'momentum': 0.8},
}


def _trainer(ctxs, name='schedulefree_adamw', **kwargs):
    x, y = classification_data(n=128)
    net = small_mlp(seed=2, ctx=ctxs)
    trainer = gluon.Trainer(net.collect_params(), 'gluon_opt.' + name, SCHEDULE_FREE[name],
                            **kwargs)
    train_steps(net, trainer, x, y, steps=5, ctx_list=ctxs)
    return net, trainer


@pytest.mark.parametrize('name', sorted(SCHEDULE_FREE))
@pytest.mark.parametrize('update_on_kvstore', [True, False])
def test_evaluation_swaps_every_copy_to_x_and_back(update_on_kvstore, name):
    ctxs = [mx.cpu(0), mx.cpu(1)]
    net, trainer = _trainer(ctxs, name, kvstore='device', update_on_kvstore=update_on_kvstore)
    y = params_numpy(net)
    states = gluon_opt.schedule_free._trainer_states(trainer)
    z = {p.name: states[i][0].asnumpy() for i, p in enumerate(trainer._params)}
    with gluon_opt.schedule_free.evaluation(trainer):
        for p in net.collect_params().values():
            key = p.name
            x = (y[key] - 0.2 * z[key]) / 0.8
            for data in p.list_data():  # every context's copy holds x
                np.testing.assert_allclose(data.asnumpy(), x, rtol=1e-5, atol=1e-6)
            assert not np.allclose(x, y[key])
        if not update_on_kvstore:
            # (with update_on_kvstore the update runs in a KVStore callback, whose
            # exceptions MXNet prints without raising: the documented limitation)
            with pytest.raises(RuntimeError, match='to_train'):
                train_steps(net, trainer, *classification_data(n=128), steps=1,
                            ctx_list=ctxs)
    for k, v in params_numpy(net).items():
        # x -> y is exact algebra, float32 rounding of two axpys
        np.testing.assert_allclose(v, y[k], rtol=1e-5, atol=1e-6, err_msg=k)


def _fp16_steps(net, trainer, steps):
    from mxnet import autograd
    for _ in range(steps):
        with autograd.record():
            loss = sum(((p.data() - 1) ** 2).sum() for p in net.collect_params().values())
        loss.backward()
        trainer.step(1)


@pytest.mark.parametrize('name', sorted(SCHEDULE_FREE))
def test_eval_and_train_are_idempotent_and_work_with_master_weights(name):
    # float16 layers run only with cuDNN: float16 parameters and an elementwise loss instead
    net = gluon.nn.HybridSequential()
    with net.name_scope():
        net.add(gluon.nn.Dense(3, in_units=4))
    net.initialize(mx.init.Normal(1.0))
    net.cast('float16')
    trainer = gluon.Trainer(net.collect_params(), 'gluon_opt.' + name,
                            dict(SCHEDULE_FREE[name], multi_precision=True))
    _fp16_steps(net, trainer, 3)
    before = params_numpy(net)
    gluon_opt.schedule_free.to_eval(trainer)
    at_x = params_numpy(net)
    gluon_opt.schedule_free.to_eval(trainer)  # a second call changes nothing
    for k in at_x:
        np.testing.assert_array_equal(params_numpy(net)[k], at_x[k])
        assert not np.array_equal(at_x[k], before[k]), k
    master = gluon_opt.schedule_free._trainer_states(trainer)[0][0]
    np.testing.assert_array_equal(master.asnumpy().astype(np.float16),
                                  trainer._params[0].data().asnumpy())
    gluon_opt.schedule_free.to_train(trainer)
    for k, v in params_numpy(net).items():
        # float16 weights are the float32 master rounded: back to y within float16 rounding
        np.testing.assert_allclose(v.astype(np.float32), before[k].astype(np.float32),
                                   rtol=2e-3, atol=2e-3, err_msg=k)
    _fp16_steps(net, trainer, 1)  # training resumes


def test_evaluation_weights_is_the_hook_any_optimizer_answers():
    """``optimizer.evaluation_weights(trainer)``, what the training loop calls for every
    optimizer: x inside the block for Schedule-Free, the weights as they are for the others."""
    net, trainer = _trainer([mx.cpu()])
    y = params_numpy(net)
    with trainer._optimizer.evaluation_weights(trainer):
        assert trainer._optimizer.eval_mode
        inside = params_numpy(net)
    with gluon_opt.schedule_free.evaluation(trainer):
        for k, v in params_numpy(net).items():
            np.testing.assert_allclose(v, inside[k], rtol=1e-5, atol=1e-6)  # y -> x -> y -> x
            assert not np.allclose(v, y[k])
    plain = gluon.Trainer(net.collect_params(), 'gluon_opt.adamw')
    with plain._optimizer.evaluation_weights(plain) as held:
        assert held is plain
        for k, v in params_numpy(net).items():
            np.testing.assert_allclose(v, y[k], rtol=1e-5, atol=1e-6)


def test_x_is_a_better_answer_than_y_with_a_constant_learning_rate():
    """Schedule-Free's claim in miniature: on a noisy quadratic with a constant learning
    rate, the average x lands much nearer the minimum than the SGD-like sequence z."""
    rng = np.random.RandomState(0)
    opt = mx.optimizer.create('gluon_opt.schedulefree_adamw', learning_rate=0.05)
    w = mx.nd.zeros(20)
    state = opt.create_state(0, w)
    for _ in range(400):
        g = w.asnumpy() - 1.0 + rng.randn(20)
        opt.update(0, w, mx.nd.array(g), state)
    err_z = np.abs(state[0].asnumpy() - 1).mean()
    err_x = np.abs(opt.x_of(w, state).asnumpy() - 1).mean()
    assert err_x < 0.5 * err_z, (err_x, err_z)


def test_bad_schedule_free_hyperparameters_name_themselves():
    for key, value in (('beta1', 0.0), ('warmup_steps', -1), ('r', -1.0),
                       ('weight_lr_power', -2.0), ('epsilon', 0.0)):
        with pytest.raises(ValueError, match=key):
            mx.optimizer.create('gluon_opt.schedulefree_adamw', **{key: value})


# ---------------------------------------------------------------------------------------------
# Against independent implementations over many steps, on a problem with a matrix and a
# vector whose gradients are taken where each implementation's own iterate y is (so any
# difference feeds back, as in training): the authors' ``schedulefree`` package (torch) for
# Schedule-Free SGD and AdamW, a numpy transcription of optax's ``contrib.schedule_free`` for
# the wrapper.

ORACLE_STEPS = 60
SHAPES = [(6, 5), (5,)]


def _problem(seed=7, steps=ORACLE_STEPS):
    """Start weights, and the gradient function ``(ws, t) -> grads`` of a noisy quadratic:
    curvatures in [0.5, 4], random minima, fresh noise each step."""
    rng = np.random.RandomState(seed)
    w0 = [rng.randn(*s) for s in SHAPES]
    h = [rng.uniform(0.5, 4.0, s) for s in SHAPES]
    c = [rng.randn(*s) for s in SHAPES]
    noise = [[0.3 * rng.randn(*s) for s in SHAPES] for _ in range(steps)]

    def grad(ws, t):
        return [hi * (w - ci) + ni for w, hi, ci, ni in zip(ws, h, c, noise[t])]
    return w0, grad


def _rel(a, b):
    """Normwise relative error of one tensor: max |a - b| / max |b|."""
    return float(np.abs(a - b).max() / np.abs(b).max())


def run_ours(name, dtype='float64', steps=ORACLE_STEPS, use_fused=None, **hyper):
    """Our optimizer on ``_problem``: per step, the weights y, z and x of every tensor."""
    w0, grad = _problem(steps=steps)
    opt = mx.optimizer.create('gluon_opt.' + name, use_fused=use_fused, **hyper)
    ws = [mx.nd.array(w, dtype=dtype) for w in w0]
    states = [opt.create_state(i, w) for i, w in enumerate(ws)]
    out = []
    for t in range(steps):
        gs = grad([w.asnumpy().astype(np.float64) for w in ws], t)
        for i, (w, g, s) in enumerate(zip(ws, gs, states)):
            opt.update(i, w, mx.nd.array(g, dtype=dtype), s)
        out.append([(w.asnumpy().astype(np.float64), s[0].asnumpy().astype(np.float64),
                     opt.x_of(w, s).asnumpy().astype(np.float64))
                    for w, s in zip(ws, states)])
    return out


def run_package(cls_name, steps=ORACLE_STEPS, **hyper):
    """The ``schedulefree`` package's optimizer ``cls_name`` in float64: per step, y, z and x
    (x from the package's state where it keeps one, else from y and z)."""
    torch = pytest.importorskip('torch')
    schedulefree = pytest.importorskip('schedulefree')
    w0, grad = _problem(steps=steps)
    params = [torch.tensor(w, dtype=torch.float64) for w in w0]
    opt = getattr(schedulefree, cls_name)(params, **hyper)
    opt.train()
    beta = hyper.get('momentum', hyper.get('betas', (0.9,))[0])
    out = []
    for t in range(steps):
        for p, g in zip(params, grad([p.detach().numpy().copy() for p in params], t)):
            p.grad = torch.tensor(g, dtype=torch.float64)
        opt.step()
        row = []
        for p in params:
            st = opt.state[p]
            y, z = p.detach().numpy().copy(), st['z'].numpy().copy()
            x = st['x'].numpy().copy() if 'x' in st else (y - (1 - beta) * z) / beta
            row.append((y, z, x))
        out.append(row)
    return out


def max_errors(ours, theirs):
    """The largest normwise relative error of y, z and x over every step and tensor."""
    errs = [0.0, 0.0, 0.0]
    for step_a, step_b in zip(ours, theirs):
        for a, b in zip(step_a, step_b):
            errs = [max(e, _rel(u, v)) for e, u, v in zip(errs, a, b)]
    return errs


SGD_CASES = [  # (our hyperparameters, the package's)
    (dict(learning_rate=0.1), dict(lr=0.1)),
    (dict(learning_rate=0.05, momentum=0.8, wd=0.02, warmup_steps=10, r=1.0,
          weight_lr_power=1.0),
     dict(lr=0.05, momentum=0.8, weight_decay=0.02, warmup_steps=10, r=1.0,
          weight_lr_power=1.0)),
]


@pytest.mark.parametrize('package_cls', ['SGDScheduleFreeReference', 'SGDScheduleFree'])
@pytest.mark.parametrize('ours,theirs', SGD_CASES)
def test_schedulefree_sgd_matches_the_authors_package(package_cls, ours, theirs):
    expected = run_package(package_cls, foreach=False, **theirs)
    got = max_errors(run_ours('schedulefree_sgd', **ours), expected)
    print('schedulefree_sgd vs %s over %d steps: max rel. error y %.1e, z %.1e, x %.1e'
          % (package_cls, ORACLE_STEPS, *got))
    # float64 on both sides, except our averaging weight c_t, computed in float32 on the
    # device (the state (lr_max, weight_sum) is float32): a relative perturbation of 6e-8 per
    # step of x's move, far below 1e-6 after 60 steps (measured: 6e-8); a wrong formula shows
    # at 1e-3 or more
    assert max(got) < 1e-6, got


@pytest.mark.parametrize('dtype,use_fused', [('float32', True), ('float32', False)])
def test_schedulefree_sgd_float32_paths_match_the_package(loaded_kernels, dtype, use_fused):
    expected = run_package('SGDScheduleFreeReference', foreach=False, **SGD_CASES[1][1])
    got = max_errors(run_ours('schedulefree_sgd', dtype, use_fused=use_fused,
                              **SGD_CASES[1][0]), expected)
    print('schedulefree_sgd float32 (fused=%s) vs the package in float64: %.1e, %.1e, %.1e'
          % (use_fused, *got))
    # float32 rounding of weights near 1 (6e-8 per operation, a handful per step) accumulated
    # over 60 steps, mostly cancelling: measured 3e-7 (reference and fused alike); the bound
    # leaves 30x; a wrong formula shows at 1e-3 or more
    assert max(got) < 1e-5, got


ADAMW_CASES = [  # (bias_correction, the package's class, extra hyperparameters)
    ('v', 'AdamWScheduleFree', {}),
    ('v', 'AdamWScheduleFreeReference', {}),
    ('lr', 'AdamWScheduleFreePaper', {}),
    ('v', 'AdamWScheduleFree', dict(wd=0.05, warmup_steps=10, r=1.0)),
    ('lr', 'AdamWScheduleFreePaper', dict(wd=0.05, warmup_steps=10, r=1.0)),
]


@pytest.mark.parametrize('bias_correction,package_cls,extra', ADAMW_CASES)
def test_schedulefree_adamw_conventions_match_the_authors_package(bias_correction,
                                                                  package_cls, extra):
    """``bias_correction='v'`` is the package's AdamWScheduleFree (1.4.1) and its reference,
    ``'lr'`` its AdamWScheduleFreePaper (sqrt(1 - beta2^t) folded into lr and so into c_t)."""
    ours = dict(learning_rate=0.02, beta1=0.9, beta2=0.99, bias_correction=bias_correction,
                **extra)
    theirs = dict(lr=0.02, betas=(0.9, 0.99), weight_decay=extra.get('wd', 0.0),
                  warmup_steps=extra.get('warmup_steps', 0), r=extra.get('r', 0.0),
                  foreach=False)
    got = max_errors(run_ours('schedulefree_adamw', **ours), run_package(package_cls,
                                                                         **theirs))
    print('schedulefree_adamw(%s) vs %s over %d steps: max rel. error y %.1e, z %.1e, x %.1e'
          % (bias_correction, package_cls, ORACLE_STEPS, *got))
    # as for SGD: float64 except c_t's float32 (and epsilon = 1e-8 enters identically)
    assert max(got) < 1e-6, got
    # and the two conventions are different algorithms, not a relabelling: each is far from
    # the other's oracle
    other = {'AdamWScheduleFreePaper': 'AdamWScheduleFree'}.get(package_cls,
                                                                'AdamWScheduleFreePaper')
    assert max(max_errors(run_ours('schedulefree_adamw', **ours),
                          run_package(other, **theirs))) > 1e-3


@pytest.fixture
def loaded_kernels():
    if not gluon_opt.kernels.available():
        pytest.skip('the fused kernels could not be built here')


def _transcription(optimizer, steps=ORACLE_STEPS, **hyper):
    """tests/references.py's transcription of optax's schedule_free, run on ``_problem``
    one step at a time (its gradients depend on its own y)."""
    from references import schedulefree
    w0, grad = _problem(steps=steps)
    beta = hyper.get('momentum', 0.9)
    lr, wd = hyper.pop('learning_rate'), hyper.pop('wd', 0.0)
    grads = [[] for _ in SHAPES]
    out = []
    ys = list(w0)
    for t in range(steps):
        row = []
        for i, g in enumerate(grad(ys, t)):
            grads[i].append(g)
            y, states = schedulefree(w0[i], grads[i], lr, wd, optimizer=optimizer, **hyper)
            ys[i] = y
            row.append((y, states[0], (y - (1 - beta) * states[0]) / beta))
        out.append(row)
    return out


WRAP_CASES = [
    ('gluon_opt.adam', dict(learning_rate=0.01, beta1=0.8, beta2=0.99, wd=0.01, momentum=0.8,
                            warmup_steps=5)),
    ('gluon_opt.lion', dict(learning_rate=3e-3, wd=0.1, beta1=0.9, beta2=0.95)),
    ('gluon_opt.sgd', dict(learning_rate=0.1, wd=0.02, r=1.0, weight_lr_power=1.0)),
]


@pytest.mark.parametrize('dtype', ['float64', 'float32'])
@pytest.mark.parametrize('optimizer,hyper', WRAP_CASES)
def test_wrapper_matches_optax_transcription(optimizer, hyper, dtype):
    expected = _transcription(optimizer, **dict(hyper))
    got = max_errors(run_ours('schedulefree', dtype, optimizer=optimizer, **hyper), expected)
    print('schedulefree(%s, %s) vs optax transcription over %d steps: y %.1e, z %.1e, x %.1e'
          % (optimizer, dtype, ORACLE_STEPS, *got))
    # float64: only c_t is float32 (as above; measured 1.5e-8); float32 (the fused path where
    # the kernels load): float32 rounding over 60 steps, as for SGD (measured 1e-6 at most,
    # Lion's z), and the inner step's displacement is recovered as (moved copy - y), exact in
    # float32 where the two are within a factor 2 of each other
    assert max(got) < (1e-6 if dtype == 'float64' else 1e-5), got


@pytest.mark.parametrize('dtype,tol', [
    # float64: the same c_t (float32, computed identically); the displacement fl(y - lr d) - y
    # differs from -lr d by an ulp of y, 1e-16 relative, per step
    ('float64', 1e-12),
    # float32, fused where the kernels load: the same, with float32's ulp (6e-8) per step
    # (measured 2.5e-7 over 60 steps)
    ('float32', 1e-5)])
def test_wrapping_sgd_is_schedulefree_sgd(dtype, tol):
    hyper = dict(learning_rate=0.05, momentum=0.8, wd=0.02, warmup_steps=10, r=1.0,
                 weight_lr_power=1.0)
    sgd = run_ours('schedulefree_sgd', dtype, **hyper)
    wrapped = run_ours('schedulefree', dtype, optimizer='gluon_opt.sgd', **hyper)
    got = max_errors(wrapped, sgd)
    print('schedulefree(sgd) vs schedulefree_sgd (%s): %.1e, %.1e, %.1e' % (dtype, *got))
    assert max(got) < tol, got


@pytest.mark.parametrize('dtype', ['float32', 'float16'])
def test_wrapper_fused_path_runs_the_inner_kernel_and_the_averaging(loaded_kernels,
                                                                     monkeypatch, dtype):
    """Parity alone would also pass if the fused path fell back to the reference: the inner's
    kernel runs for every tensor, and the averaging kernel for the float32 ones."""
    from gluon_opt import kernels
    called, real = [], kernels._Call.__call__

    def spy(self, *args, **kwargs):
        called.append((self.op, self.n))
        return real(self, *args, **kwargs)
    monkeypatch.setattr(kernels._Call, '__call__', spy)
    opt = mx.optimizer.create('gluon_opt.schedulefree', optimizer='gluon_opt.adam',
                              learning_rate=0.01, multi_precision=True, use_fused=True)
    ws = [mx.nd.ones(s, dtype=dtype) for s in SHAPES]
    states = [opt.create_state_multi_precision(i, w) for i, w in enumerate(ws)]
    for _ in range(2):
        opt.update_multi_precision(list(range(len(ws))), ws,
                                   [mx.nd.ones(s, dtype=dtype) for s in SHAPES], states)
    counts = {}
    for op, n in called:
        counts[op] = counts.get(op, 0) + n
    assert counts.get('gopt_adam') == 2 * len(SHAPES)
    assert counts.get('gopt_schedulefree_wrap', 0) == (2 * len(SHAPES)
                                                       if dtype == 'float32' else 0)


def test_bad_wrapper_and_convention_inputs_name_themselves():
    with pytest.raises(ValueError, match='bias_correction'):
        mx.optimizer.create('gluon_opt.schedulefree_adamw', bias_correction='both')
    with pytest.raises(ValueError, match="optimizer='gluon_opt.schedulefree_adamw'"):
        mx.optimizer.create('gluon_opt.schedulefree', optimizer='gluon_opt.schedulefree_adamw')
