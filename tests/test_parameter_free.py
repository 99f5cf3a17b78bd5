"""Prodigy, D-Adaptation Adam and DoG (gluon_opt/optimizers/contrib/parameter_free.py): their
global scalars against the authors' packages (prodigyopt, dadaptation) and a NumPy
transcription of optax's DoG, over many steps of a problem with several tensors; and the
one-call-per-step rule under gluon.Trainer (contexts, kvstores, dtypes)."""
import importlib.util

import pickle

import numpy as np
import pytest
import mxnet as mx
from mxnet import nd, gluon

import gluon_opt
from helpers import classification_data, small_mlp, train_steps, params_numpy

import dog_oracle

STEPS = 60  # the brief asks for at least 40; d grows over the first ~20 steps, then settles
SHAPES = [(6, 5), (7,), (3, 4, 2)]


def _problem(seed=0):
    """A quadratic with a different curvature and centre per tensor: the gradients depend on
    the trajectory, so the estimates (which read x0 - x) are exercised as in training."""
    rng = np.random.RandomState(seed)
    x0 = [rng.randn(*s) for s in SHAPES]
    curv = [rng.uniform(0.5, 5.0, s) for s in SHAPES]
    centre = [rng.randn(*s) * 3 for s in SHAPES]
    noise = [[rng.randn(*s) * 0.1 for s in SHAPES] for _ in range(STEPS)]

    def grads(xs, t):
        return [a * (x - c) + n for x, a, c, n in zip(xs, curv, centre, noise[t])]
    return x0, grads


def _run_ours(name, hyper, dtype='float64', use_fused=False):
    x0, grads = _problem()
    opt = mx.optimizer.create('gluon_opt.' + name, use_fused=use_fused, **hyper)
    ws = [nd.array(x, dtype=dtype) for x in x0]
    states = [opt.create_state(i, w) for i, w in enumerate(ws)]
    idx = list(range(len(ws)))
    for t in range(STEPS):
        gs = [nd.array(g, dtype=dtype) for g in grads([w.asnumpy() for w in ws], t)]
        opt.update(idx, ws, gs, states)
    return [w.asnumpy().astype(np.float64) for w in ws], states


def _run_torch(make):
    import torch
    x0, grads = _problem()
    params = [torch.tensor(x, dtype=torch.float64, requires_grad=True) for x in x0]
    opt = make(params)
    for t in range(STEPS):
        for p, g in zip(params, grads([p.detach().numpy() for p in params], t)):
            p.grad = torch.tensor(g, dtype=torch.float64)
        opt.step()
    return [p.detach().numpy() for p in params], opt


def _max_rel(ours, theirs):
    return max(float(np.max(np.abs(a - b)) / np.max(np.abs(b))) for a, b in zip(ours, theirs))


# float64 on both sides: the same arithmetic in a different order (sums over tensors, Python
# floats against shape-(1,) arrays), ~1e-16 per operation; d is a ratio of sums that are
# re-weighted by d every step, so rounding compounds mildly over 60 steps. 1e-9 relative keeps
# a margin of orders of magnitude while a wrong formula (a missing d factor, beta3 instead of
# beta2) is off by 1e-2 or more within a few steps.
RTOL64 = 1e-9

PRODIGY_CASES = [
    ({}, {}),
    (dict(wd=0.01), dict(weight_decay=0.01)),
    (dict(wd=0.01, decouple=False, use_bias_correction=True, beta3=0.99, d_coef=0.5,
          growth_rate=1.5, safeguard_warmup=True),
     dict(weight_decay=0.01, decouple=False, use_bias_correction=True, beta3=0.99,
          d_coef=0.5, growth_rate=1.5, safeguard_warmup=True)),
    (dict(beta1=0.0, d0=1e-4), dict(betas=(0.0, 0.999), d0=1e-4)),
]


@pytest.mark.skipif(importlib.util.find_spec('prodigyopt') is None,
                    reason='prodigyopt is not installed (pip install -e .[oracle])')
@pytest.mark.parametrize('ours,theirs', PRODIGY_CASES)
def test_prodigy_matches_prodigyopt(ours, theirs):
    import prodigyopt
    hyper = dict(ours)
    w, states = _run_ours('prodigy', dict(learning_rate=1.0, **hyper))
    kw = dict(theirs)
    betas = kw.pop('betas', (hyper.get('beta1', 0.9), hyper.get('beta2', 0.999)))
    ref, opt = _run_torch(lambda p: prodigyopt.Prodigy(p, lr=1.0, betas=betas, **kw))
    err = _max_rel(w, ref)
    print('\nprodigy %r: max relative error of the weights over %d steps: %.2e'
          % (ours, STEPS, err))
    assert err < RTOL64
    d, d_max, numerator, k = states[0][-1].asnumpy()
    group = opt.param_groups[0]
    np.testing.assert_allclose([d, d_max, numerator, k],
                               [group['d'], group['d_max'], group['d_numerator'], group['k']],
                               rtol=RTOL64)
    assert d > 10 * hyper.get('d0', 1e-6)  # the estimate did grow: the test is not vacuous
    for i, st in enumerate(states):
        torch_state = opt.state[opt.param_groups[0]['params'][i]]
        np.testing.assert_allclose(st[1].asnumpy(), torch_state['exp_avg_sq'].numpy(),
                                   rtol=RTOL64, atol=1e-300)
        np.testing.assert_allclose(st[2].asnumpy().ravel(), torch_state['s'].numpy(), rtol=RTOL64,
                                   atol=1e-300)


DADAPT_CASES = [
    ({}, {}),
    (dict(wd=0.01), dict(weight_decay=0.01)),
    (dict(wd=0.01, decouple=True, use_bias_correction=True, growth_rate=1.2, beta1=0.8,
          beta2=0.99, d0=1e-5),
     dict(weight_decay=0.01, decouple=True, use_bias_correction=True, growth_rate=1.2,
          betas=(0.8, 0.99), d0=1e-5)),
]


@pytest.mark.skipif(importlib.util.find_spec('dadaptation') is None,
                    reason='dadaptation is not installed (pip install -e .[oracle])')
@pytest.mark.parametrize('ours,theirs', DADAPT_CASES)
def test_dadapt_adam_matches_dadaptation(ours, theirs, capsys):
    import dadaptation
    w, states = _run_ours('dadapt_adam', dict(learning_rate=1.0, **ours))
    ref, opt = _run_torch(lambda p: dadaptation.DAdaptAdam(p, lr=1.0, **theirs))
    err = _max_rel(w, ref)
    with capsys.disabled():
        print('\ndadapt_adam %r: max relative error of the weights over %d steps: %.2e'
              % (ours, STEPS, err))
    assert err < RTOL64
    d, numerator, k, _ = states[0][-1].asnumpy()
    group = opt.param_groups[0]
    np.testing.assert_allclose([d, numerator, k],
                               [group['d'], group['numerator_weighted'], group['k']],
                               rtol=RTOL64)
    assert d > 100 * ours.get('d0', 1e-6)
    for i, st in enumerate(states):
        torch_state = opt.state[opt.param_groups[0]['params'][i]]
        for j, key in enumerate(('exp_avg', 'exp_avg_sq', 's')):
            np.testing.assert_allclose(st[j].asnumpy(), torch_state[key].numpy(),
                                       rtol=RTOL64, atol=1e-300, err_msg=key)


@pytest.mark.parametrize('hyper', [{}, dict(wd=0.05, reps_rel=1e-4, learning_rate=0.5),
                                   dict(epsilon=1e-4)])
def test_dog_matches_optax_transcription(hyper, capsys):
    w, states = _run_ours('dog', dict(hyper))
    x0, grads = _problem()
    ref = dog_oracle.DoG(learning_rate=hyper.get('learning_rate', 1.0),
                         reps_rel=hyper.get('reps_rel', 1e-6), eps=hyper.get('epsilon', 1e-8),
                         weight_decay=hyper.get('wd', 0.0))
    ref.init(x0)
    xs = [x.copy() for x in x0]
    for t in range(STEPS):
        xs = ref.update(grads(xs, t), xs)
    err = _max_rel(w, xs)
    with capsys.disabled():
        print('\ndog %r: max relative error of the weights over %d steps: %.2e'
              % (hyper, STEPS, err))
    assert err < RTOL64
    r_bar, G, k, _ = states[0][-1].asnumpy()
    np.testing.assert_allclose([r_bar, G, k], [ref.estim_dist, ref.sum_sq_norm_grads, STEPS],
                               rtol=RTOL64)
    assert r_bar > 1e3 * ref.reps_rel  # the distance estimate moved past r_eps


NAMES = ['prodigy', 'dadapt_adam', 'dog']


@pytest.mark.parametrize('name,hyper', [('prodigy', {}), ('prodigy', PRODIGY_CASES[2][0]),
                                        ('prodigy', PRODIGY_CASES[3][0]),  # beta1 = 0
                                        ('dadapt_adam', {}), ('dadapt_adam', DADAPT_CASES[2][0]),
                                        ('dog', {}), ('dog', dict(wd=0.05, reps_rel=1e-4))])
def test_fused_matches_reference_while_the_estimate_grows(name, hyper, capsys, monkeypatch):
    """The kernel against the reference on the trajectory-dependent problem, where d grows by
    orders of magnitude (test_fused.py's random gradients leave it near d0), float32."""
    if not gluon_opt.kernels.available():
        pytest.skip('fused kernels unavailable on this machine (no compiler?)')
    ref, ref_states = _run_ours(name, dict(hyper), 'float32', use_fused=False)
    cls = gluon_opt.REGISTRY[name]
    calls, real = [], gluon_opt.kernels._Call.__call__
    monkeypatch.setattr(gluon_opt.kernels._Call, '__call__',
                        lambda self, *a: (calls.append((self.op, self.n)), real(self, *a)))
    monkeypatch.setattr(cls, 'whole_step', None)  # the reference must not run
    fused, fused_states = _run_ours(name, dict(hyper), 'float32', use_fused=True)
    assert calls == [(cls.fused_op, len(SHAPES))] * STEPS  # one call per step, every tensor
    err = max(float(np.max(np.abs(a - b)) / np.max(np.abs(b))) for a, b in zip(fused, ref))
    with capsys.disabled():
        print('\nfused %s %r: max |fused - reference| / max |reference| over %d steps: %.2e; '
              'scalars %s against %s' % (name, hyper, STEPS, err,
                                         fused_states[0][-1].asnumpy(),
                                         ref_states[0][-1].asnumpy()))
    # float32 with double (kernel) against float32 (nd.sum) sums: the estimates differ by
    # float32 ulps per step and the trajectory feeds them back (see test_fused.NORM_SCALED);
    # 1e-4 of the largest weight over 60 steps, where a wrong coefficient is off by 1e-2
    assert err < 1e-4
    np.testing.assert_allclose(fused_states[0][-1].asnumpy(), ref_states[0][-1].asnumpy(),
                               rtol=1e-3)


def _mlp_run(name, ctx_list, steps=6, **trainer_kwargs):
    x, y = classification_data(n=128)
    net = small_mlp(seed=5, ctx=ctx_list)
    trainer = gluon.Trainer(net.collect_params(), 'gluon_opt.' + name,
                            {'learning_rate': 1.0}, **trainer_kwargs)
    train_steps(net, trainer, x, y, steps=steps, ctx_list=ctx_list)
    return net, trainer


@pytest.mark.parametrize('name', NAMES)
def test_one_step_is_one_call_under_gluon_trainer(name, monkeypatch):
    """gluon.Trainer's Updater hands every parameter in one call (aggregate_num)."""
    calls = []
    cls = gluon_opt.REGISTRY[name]
    original = cls._check_whole_step  # once per update call, whichever path runs
    monkeypatch.setattr(cls, '_check_whole_step', lambda self, indices, *a: (
        calls.append(len(indices)), original(self, indices, *a)))
    net, _ = _mlp_run(name, [mx.cpu(0)], steps=3)
    assert calls == [len(list(net.collect_params().values()))] * 3


@pytest.mark.parametrize('name', NAMES)
@pytest.mark.parametrize('kvstore', ['device', 'local'])
def test_several_contexts_get_the_one_context_result(name, kvstore):
    one, _ = _mlp_run(name, [mx.cpu(0)])
    two, _ = _mlp_run(name, [mx.cpu(0), mx.cpu(1)], kvstore=kvstore,
                      update_on_kvstore=False)
    a, b = params_numpy(one), params_numpy(two)
    for k in a:
        # only the order of the gradient sums over contexts differs
        np.testing.assert_allclose(b[k], a[k], rtol=1e-4, atol=1e-5, err_msg=k)
    for p in two.collect_params().values():
        c0, c1 = (d.asnumpy() for d in p.list_data())
        np.testing.assert_array_equal(c0, c1)


@pytest.mark.parametrize('name', NAMES)
def test_update_on_kvstore_is_refused_with_the_remedy(name, monkeypatch):
    """A kvstore calls the updater from C, where MXNet prints the exception and goes on
    (sys.unraisablehook): every key is refused before it is touched, so nothing moves and the
    message says what to do; the next ``trainer.step`` raises it in Python."""
    reported = []
    monkeypatch.setattr('sys.unraisablehook', lambda u: reported.append(str(u.exc_value)))
    ctxs = [mx.cpu(0), mx.cpu(1)]
    before = params_numpy(small_mlp(seed=5, ctx=ctxs))
    net, trainer = _mlp_run(name, ctxs, steps=1, kvstore='device', update_on_kvstore=True)
    for k, v in params_numpy(net).items():
        np.testing.assert_array_equal(v, before[k], err_msg=k)
    assert len(reported) == len(before)  # every key of the step
    assert all('update_on_kvstore=False' in r for r in reported), reported[0]
    with pytest.raises(ValueError, match='update_on_kvstore=False.*previous step'):
        trainer.step(1)
    # the refusal is not part of the optimizer's pickled state
    copy = pickle.loads(pickle.dumps(trainer._optimizer))
    copy.rescale_grad = 0.5
    assert copy.rescale_grad == 0.5


@pytest.mark.parametrize('name', NAMES)
def test_gluon_opt_trainer_implies_update_on_kvstore_false(name):
    x, y = classification_data(n=128)
    ctxs = [mx.cpu(0), mx.cpu(1)]
    net = small_mlp(seed=5, ctx=ctxs)
    trainer = gluon_opt.Trainer(net.collect_params(), 'gluon_opt.' + name,
                                {'learning_rate': 1.0}, kvstore='device')
    train_steps(net, trainer, x, y, steps=2, ctx_list=ctxs)
    assert trainer._update_on_kvstore is False
    with pytest.raises(ValueError, match='update_on_kvstore=True'):
        gluon_opt.Trainer(net.collect_params(), 'gluon_opt.' + name, {'learning_rate': 1.0},
                          kvstore='device', update_on_kvstore=True)


@pytest.mark.parametrize('name', NAMES)
def test_a_step_split_over_calls_is_refused_before_anything_moves(name):
    opt = mx.optimizer.create('gluon_opt.' + name)
    ws = [nd.ones((3, 2)), nd.ones((4,))]
    states = [opt.create_state(i, w) for i, w in enumerate(ws)]
    g = [nd.ones((3, 2)), nd.ones((4,))]
    opt.update([0], [ws[0]], [g[0]], [states[0]])
    before = ws[1].asnumpy().copy()
    with pytest.raises(ValueError, match=r'separate update call.*update_on_kvstore=False'):
        opt.update([1], [ws[1]], [g[1]], [states[1]])
    np.testing.assert_array_equal(ws[1].asnumpy(), before)
    assert opt._index_update_count.get(1) is None
    # the next whole step (index 0 again) is accepted
    opt.update([0, 1], ws, g, states)


@pytest.mark.parametrize('name', NAMES)
def test_global_scalars_span_every_tensor(name):
    """Two tensors in one step are not two one-tensor steps: the scalars are global."""
    rng = np.random.RandomState(1)
    w0 = [rng.randn(5, 3), rng.randn(4) * 10]
    grads = [[rng.randn(5, 3), rng.randn(4) * 10] for _ in range(5)]

    def run(together):
        opts = [mx.optimizer.create('gluon_opt.' + name, use_fused=False)
                for _ in range(1 if together else 2)]
        ws = [nd.array(w) for w in w0]
        sts = [opts[0 if together else i].create_state(i, w) for i, w in enumerate(ws)]
        for gs in grads:
            if together:
                opts[0].update([0, 1], ws, [nd.array(g) for g in gs], sts)
            else:
                for i in range(2):
                    opts[i].update(i, ws[i], nd.array(gs[i]), sts[i])
        return [w.asnumpy() for w in ws], [s[-1].asnumpy() for s in sts]
    joint, scalars = run(True)
    separate, separate_scalars = run(False)
    np.testing.assert_array_equal(scalars[0], scalars[1])  # one copy per tensor, the same
    # the joint estimate is not either tensor's own: the tensors' scales differ 10-fold
    assert not np.allclose(scalars[0][:3], separate_scalars[0][:3], rtol=1e-2, atol=0)
    assert not np.allclose(scalars[0][:3], separate_scalars[1][:3], rtol=1e-2, atol=0)
    assert not np.array_equal(joint[0], separate[0])


def test_mixed_dtypes_are_refused():
    net = gluon.nn.Dense(3, in_units=4)
    net.initialize()
    net.bias.cast('float16')
    trainer = gluon.Trainer(net.collect_params(), 'gluon_opt.prodigy')
    with mx.autograd.record():
        loss = net.weight.data().sum() + net.bias.data().astype('float32').sum()
    loss.backward()
    with pytest.raises(ValueError, match='one dtype'):
        trainer.step(1)


def test_dist_sync_workers_take_the_single_process_step(tmp_path):
    """dist_sync with update_on_kvstore=False: each worker runs the whole step on the summed
    gradients; with True, gluon_opt.Trainer refuses before the job starts training."""
    import sys
    from test_dist import launch, _train_in_process, _weights, SCRIPT, COMMON
    args = COMMON + ['--optimizer', 'prodigy']
    rc, out, _, _ = launch([sys.executable, SCRIPT, '--kvstore', 'dist_sync',
                            '--update-on-kvstore', '0', '--out', str(tmp_path / 'd.npz')] + args)
    assert rc == 0, out[-4000:]
    _train_in_process(args + ['--kvstore', 'local', '--out', str(tmp_path / 's.npz')])
    dist, single = _weights(tmp_path / 'd.npz'), _weights(tmp_path / 's.npz')
    for k in single:
        # only the summation order of the gradients differs (test_dist.py's bound)
        np.testing.assert_allclose(dist[k], single[k], rtol=1e-4, atol=1e-6, err_msg=k)
    rc, out, _, _ = launch([sys.executable, SCRIPT, '--kvstore', 'dist_sync',
                            '--update-on-kvstore', '1'] + args)
    assert rc != 0 and 'update_on_kvstore=True is incompatible with Prodigy' in out, out[-4000:]
