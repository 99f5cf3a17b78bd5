"""Weight averaging (``gluon_opt.averaging``): EMA and SWA against torch.optim.swa_utils over
60 steps, the fused kernel against the reference, the evaluation swap-in, save/load, update_bn.

The oracle is fed the very float32 weights our training produced (exactly representable in
float64), so the only difference left is our float32 averaging arithmetic: each update rounds
three times (``w - avg``, ``alpha * d``, ``avg + ...``), at most half an ulp of the tensor's
largest magnitude each, and the averages contract (never amplify) earlier errors, so after K
updates the error is below ``3 * K * 2**-24`` of the largest magnitude: ``_bound`` below.
"""
import os

import numpy as np
import pytest
import mxnet as mx
from mxnet import gluon

import gluon_opt
from gluon_opt import averaging, kernels
from helpers import classification_data, small_mlp, train_steps

torch = pytest.importorskip('torch')
from torch.optim import swa_utils  # noqa: E402

STEPS = 60


def _bound(updates):
    return 3 * updates * 2.0 ** -24


def _torch_twin(net):
    """A torch MLP whose parameters, in order, have the shapes of ``net``'s (Dense and Linear
    both store (out, in) weights), in float64."""
    shapes = [p.shape for p in net.collect_params().values()]
    model = torch.nn.Sequential(torch.nn.Linear(shapes[0][1], shapes[0][0]), torch.nn.ReLU(),
                                torch.nn.Linear(shapes[2][1], shapes[2][0])).double()
    _load_torch(model, net)
    return model


def _load_torch(model, net):
    with torch.no_grad():
        for tp, p in zip(model.parameters(), net.collect_params().values()):
            tp.copy_(torch.from_numpy(p.data().asnumpy().astype(np.float64)))


def _max_rel_err(avg, model):
    """max over tensors of max|ours - torch| / max|torch| (ours in the parameters' order)."""
    errs = []
    for a, tp in zip(avg, model.parameters()):
        ref = tp.detach().numpy()
        errs.append(np.abs(a.astype(np.float64) - ref).max() / np.abs(ref).max())
    return max(errs)


def _run(make_average, make_torch, steps=STEPS, use_fused=False, due=None):
    """Train the small MLP with Adam for ``steps`` steps, our average updated after each and
    torch's ``AveragedModel`` wherever ``due(t)`` says; returns (ours, torch's, averaged)."""
    x, y = classification_data(n=256)
    net = small_mlp(seed=3)
    trainer = gluon_opt.Trainer(net.collect_params(), 'gluon_opt.adam',
                                {'learning_rate': 0.01})
    ours = make_average(net, use_fused)
    model = _torch_twin(net)
    averaged = make_torch(model)
    count = 0
    for t in range(1, steps + 1):
        train_steps(net, trainer, x, y, steps=1, start=t - 1)
        ours.update()
        if due is None or due(t):
            _load_torch(model, net)
            averaged.update_parameters(model)
            count += 1
    avg = [ours.averages[p.name].asnumpy() for p in net.collect_params().values()]
    return ours, averaged, avg, count


def _fused_params():
    return [False, pytest.param(True, marks=pytest.mark.skipif(
        not kernels.available(), reason='fused kernels unavailable'))]


@pytest.mark.parametrize('use_fused', _fused_params())
def test_ema_matches_torch_ema_multi_avg_fn(use_fused):
    decay = 0.9

    def make_torch(model):
        averaged = swa_utils.AveragedModel(
            model, multi_avg_fn=swa_utils.get_ema_multi_avg_fn(decay))
        # torch copies the weights at its first update; ours starts from the weights at
        # construction: that first update, made now, aligns the two
        averaged.update_parameters(model)
        return averaged

    ours, averaged, avg, count = _run(
        lambda net, f: averaging.EMA(net, decay=decay, warmup=False, use_fused=f), make_torch,
        use_fused=use_fused)
    err = _max_rel_err(avg, averaged.module)
    print('EMA (decay 0.9, no warmup) vs torch over %d steps: max rel err %.3g' % (count, err))
    assert count == STEPS and ours.num_averaged == STEPS
    assert err < _bound(count)


def test_ema_warmup_matches_torch_with_tensorflows_decay():
    decay = 0.99

    def avg_fn(averaged_param, param, num_averaged):
        # torch counts its first (aligning) update: the k-th training update sees k, which is
        # our step t; TensorFlow's ExponentialMovingAverage(num_updates=t) warmup
        t = float(num_averaged)
        d = min(decay, (1.0 + t) / (10.0 + t))
        return d * averaged_param + (1.0 - d) * param

    def make_torch(model):
        averaged = swa_utils.AveragedModel(model, avg_fn=avg_fn)
        averaged.update_parameters(model)
        return averaged

    ours, averaged, avg, count = _run(
        lambda net, f: averaging.EMA(net, decay=decay, use_fused=f), make_torch)
    err = _max_rel_err(avg, averaged.module)
    print('EMA (decay 0.99, warmup) vs torch over %d steps: max rel err %.3g' % (count, err))
    assert ours.decay_at(1) == pytest.approx(2.0 / 11.0) and ours.decay_at(10 ** 6) == decay
    assert err < _bound(count)


@pytest.mark.parametrize('use_fused', _fused_params())
def test_swa_matches_torch_default_averaging(use_fused):
    start, frequency = 10, 3

    def due(t):
        return t >= start and (t - start) % frequency == 0

    ours, averaged, avg, count = _run(
        lambda net, f: averaging.SWA(net, start=start, frequency=frequency, use_fused=f),
        swa_utils.AveragedModel, due=due, use_fused=use_fused)
    err = _max_rel_err(avg, averaged.module)
    print('SWA (start 10, every 3) vs torch over %d averaged of %d steps: max rel err %.3g'
          % (count, STEPS, err))
    assert count == ours.num_averaged == int(averaged.n_averaged) == 17
    assert err < _bound(count)


@pytest.mark.skipif(not kernels.available(), reason='fused kernels unavailable')
@pytest.mark.parametrize('kind', ['ema', 'swa'])
def test_fused_is_one_call_and_matches_the_reference_bit_for_bit(kind, monkeypatch):
    x, y = classification_data(n=256)
    calls = []
    real_call = kernels.call

    def counting(op_name, tensors, **attrs):
        calls.append((op_name, len(tensors)))
        return real_call(op_name, tensors, **attrs)
    monkeypatch.setattr(kernels, 'call', counting)
    net = small_mlp(seed=4)
    trainer = gluon_opt.Trainer(net.collect_params(), 'gluon_opt.adam', {'learning_rate': 0.01})
    make = ((lambda f: averaging.EMA(net, decay=0.95, use_fused=f)) if kind == 'ema' else
            (lambda f: averaging.SWA(net, start=3, frequency=2, use_fused=f)))
    fused, reference = make(True), make(False)
    for t in range(25):
        train_steps(net, trainer, x, y, steps=1, start=t)
        fused.update()
        reference.update()
    for name, a in fused.averages.items():
        np.testing.assert_array_equal(a.asnumpy(), reference.averages[name].asnumpy(), name)
    n_params = len(list(net.collect_params().values()))
    # one call over all parameters per blended update (SWA's first average is a copy)
    expected = 25 if kind == 'ema' else fused.num_averaged - 1
    assert calls == [('gopt_average', n_params)] * expected


@pytest.mark.parametrize('update_on_kvstore', [False, True])
def test_evaluation_swaps_every_context_and_restores_exactly(update_on_kvstore):
    ctxs = [mx.cpu(0), mx.cpu(1)]
    x, y = classification_data(n=256)

    def trained(with_evaluation):
        net = small_mlp(seed=5, ctx=ctxs)
        trainer = gluon_opt.Trainer(net.collect_params(), 'gluon_opt.adam',
                                    {'learning_rate': 0.01}, kvstore='device',
                                    update_on_kvstore=update_on_kvstore)
        ema = averaging.EMA(net, decay=0.9)
        for t in range(8):
            train_steps(net, trainer, x, y, steps=1, start=t, ctx_list=ctxs)
            ema.update()
            if with_evaluation and t == 4:
                before = {p.name: p.data(ctxs[1]).asnumpy() for p in ema.params}
                with pytest.raises(KeyError):
                    with ema.evaluation():
                        for p in ema.params:
                            for arr in p.list_data():
                                np.testing.assert_array_equal(
                                    arr.asnumpy(), ema.averages[p.name].asnumpy())
                            assert not np.array_equal(before[p.name],
                                                      ema.averages[p.name].asnumpy())
                        raise KeyError('restored on the way out too')
                for p in ema.params:
                    for arr in p.list_data():
                        np.testing.assert_array_equal(arr.asnumpy(), before[p.name])
        return {p.name.split('_', 1)[1]: p.data(ctxs[1]).asnumpy() for p in ema.params}

    # an evaluation in the middle changes nothing of the training that follows
    plain, evaluated = trained(False), trained(True)
    for k in plain:
        np.testing.assert_array_equal(plain[k], evaluated[k], k)


@pytest.mark.parametrize('make', [lambda net: averaging.EMA(net, decay=0.9),
                                  lambda net: averaging.SWA(net, start=4, frequency=3)],
                         ids=['ema', 'swa'])
def test_save_load_resumes_exactly(make, tmp_path):
    x, y = classification_data(n=256)

    def run(split):
        net = small_mlp(seed=6)
        trainer = gluon_opt.Trainer(net.collect_params(), 'gluon_opt.adam',
                                    {'learning_rate': 0.01})
        avg = make(net)
        for t in range(20):
            if t == split:
                path = str(tmp_path / 'avg.npz')
                avg.save(path)
                avg = make(net)  # a fresh object, as after a restart
                avg.load(path)
            train_steps(net, trainer, x, y, steps=1, start=t)
            avg.update()
        return avg

    whole, resumed = run(None), run(11)
    assert (whole.num_updates, whole.num_averaged) == (resumed.num_updates,
                                                       resumed.num_averaged)
    for a, b in zip(whole.averages.values(), resumed.averages.values()):
        np.testing.assert_array_equal(a.asnumpy(), b.asnumpy())


def test_load_refuses_other_settings_corrupt_files_and_pickles(tmp_path):
    net = small_mlp(seed=7)
    ema = averaging.EMA(net, decay=0.9)
    path = str(tmp_path / 'ema.npz')
    ema.save(path)
    with pytest.raises(averaging.AveragesFileError, match='decay'):
        averaging.EMA(net, decay=0.8).load(path)
    with pytest.raises(averaging.AveragesFileError, match='swa'):
        averaging.SWA(net).load(path)
    with pytest.raises(averaging.AveragesFileError, match='averages of'):
        averaging.EMA(small_mlp(seed=7, hidden=8), decay=0.9).load(path)
    with np.load(path) as z:  # an array edited, the JSON and its checksum kept
        members = {k: z[k] for k in z.files}
    members['a0'] = members['a0'] + 1
    edited = str(tmp_path / 'edited.npz')
    np.savez(edited, **members)
    with pytest.raises(averaging.AveragesFileError, match='checksum'):
        ema.load(edited)
    truncated = str(tmp_path / 'truncated.npz')
    open(truncated, 'wb').write(open(path, 'rb').read()[:-100])
    with pytest.raises(averaging.AveragesFileError, match='cannot be read'):
        ema.load(truncated)
    import pickle
    pickled = str(tmp_path / 'pickled.npz')
    with open(pickled, 'wb') as f:
        pickle.dump({'a0': np.zeros(3)}, f)
    with pytest.raises(averaging.AveragesFileError, match='cannot be read'):
        ema.load(pickled)
    assert not os.path.exists(str(tmp_path / 'missing.npz'))
    with pytest.raises(averaging.AveragesFileError, match='cannot be read'):
        ema.load(str(tmp_path / 'missing.npz'))


def test_float16_weights_are_averaged_in_float32():
    net = small_mlp(seed=8)
    net.cast('float16')
    ema = averaging.EMA(net, decay=0.5, warmup=False)
    w0 = {p.name: p.data().asnumpy().astype(np.float32) for p in ema.params}
    for p in ema.params:
        p.data()[:] = p.data() + 1
    ema.update()
    for p in ema.params:
        assert ema.averages[p.name].dtype == np.float32
        np.testing.assert_allclose(ema.averages[p.name].asnumpy(),
                                   0.5 * w0[p.name] + 0.5 * (p.data().asnumpy()
                                                             .astype(np.float32)), rtol=1e-6)
    with ema.evaluation():
        assert net[0].weight.data().dtype == np.float16


@pytest.mark.parametrize('call, match', [
    (lambda net: averaging.EMA(net, decay=1.5), 'EMA: decay=1.5'),
    (lambda net: averaging.EMA(net, decay='0.9'), 'EMA: decay'),
    (lambda net: averaging.EMA(net, warmup='no'), 'EMA: warmup'),
    (lambda net: averaging.SWA(net, start=0), 'SWA: start=0'),
    (lambda net: averaging.SWA(net, frequency=2.0), 'SWA: frequency=2.0'),
    (lambda net: averaging.SWA(net, use_fused='yes'), 'SWA: use_fused'),
    (lambda net: averaging.EMA([]), 'EMA: params'),
    (lambda net: averaging.update_bn([], net, momentum=1.0), 'update_bn: momentum=1.0'),
])
def test_bad_arguments_are_refused_by_name(call, match):
    with pytest.raises(ValueError, match=match):
        call(small_mlp(seed=0))


def test_deferred_parameters_start_at_the_first_update():
    net = gluon.nn.Dense(3)
    net.initialize()
    ema = averaging.EMA(net, decay=0.9)
    assert ema.averages == {}
    net(mx.nd.ones((2, 4)))
    ema.update()
    np.testing.assert_array_equal(ema.averages[net.weight.name].asnumpy(),
                                  net.weight.data().asnumpy())


def _bn_nets(hidden=6):
    net = gluon.nn.HybridSequential()
    net.add(gluon.nn.Dense(hidden, in_units=4), gluon.nn.BatchNorm(in_channels=hidden),
            gluon.nn.Dense(3, in_units=hidden))
    mx.random.seed(9)
    net.initialize(mx.init.Xavier())
    model = torch.nn.Sequential(torch.nn.Linear(4, hidden), torch.nn.BatchNorm1d(hidden),
                                torch.nn.Linear(hidden, 3)).double()
    with torch.no_grad():
        model[0].weight.copy_(torch.from_numpy(net[0].weight.data().asnumpy().astype('f8')))
        model[0].bias.copy_(torch.from_numpy(net[0].bias.data().asnumpy().astype('f8')))
    return net, model


@pytest.mark.parametrize('hybridize', [False, True])
def test_update_bn_matches_torch(hybridize):
    net, model = _bn_nets()
    if hybridize:
        net.hybridize()
    rng = np.random.RandomState(0)
    batch = 16
    xs = [rng.randn(batch, 4).astype(np.float32) * 2 + 1 for _ in range(7)]
    net(mx.nd.array(xs[0]))
    grads = [p.grad().asnumpy() for p in net.collect_params().values() if p.grad_req != 'null']
    assert averaging.update_bn([(mx.nd.array(x), None) for x in xs], net) == len(xs)
    swa_utils.update_bn([(torch.from_numpy(x.astype(np.float64)), 0) for x in xs], model)
    bn, tbn = net[1], model[1]
    mean = tbn.running_mean.numpy()
    # torch's running variance is the unbiased batch variance, MXNet's the biased one
    var = tbn.running_var.numpy() * (batch - 1) / batch
    # float32 batch statistics of 16 rows (a few ulps each), averaged in float64
    np.testing.assert_allclose(bn.running_mean.data().asnumpy(), mean, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(bn.running_var.data().asnumpy(), var, rtol=1e-5)
    assert bn._kwargs['momentum'] == 0.9  # restored
    for g, p in zip(grads, [p for p in net.collect_params().values() if p.grad_req != 'null']):
        np.testing.assert_array_equal(p.grad().asnumpy(), g)  # the gradients were put back
    # the restored momentum is in force again (a hybridized graph rebuilt)
    from mxnet import autograd
    before = bn.running_mean.data().asnumpy()
    with autograd.record():
        out = net(mx.nd.array(xs[0]))
    out.backward()
    batch_mean = np.asarray(net[0](mx.nd.array(xs[0])).asnumpy().mean(0))
    np.testing.assert_allclose(bn.running_mean.data().asnumpy(),
                               0.9 * before + 0.1 * batch_mean, rtol=1e-4, atol=1e-6)


def test_swa_then_update_bn_in_the_evaluation_block():
    net, _ = _bn_nets()
    net(mx.nd.ones((2, 4)))
    swa = averaging.SWA(net, start=1)
    assert [p.name.split('_', 1)[1] for p in swa.params] == [
        'weight', 'bias', 'gamma', 'beta', 'weight', 'bias']  # no running statistics
    assert len(averaging.SWA(net, use_buffers=True).params) == 8
    with swa.evaluation():
        assert averaging.update_bn([mx.nd.ones((4, 4))], net) == 1


def test_compare_ema_reports_the_averaged_weights_beside_the_raw_ones(tmp_path, capsys):
    import csv
    import json
    from gluon_opt import cli
    out = tmp_path / 'run'
    rc = cli.main(['compare', '--opt', 'sgd:learning_rate=0.1', '--ema', '0.9',
                   '--batch-norm', '--hidden', '32', '--train-subset', '640', '--epochs', '2',
                   '--no-progress', '--out', str(out)])
    assert rc == 0
    table = capsys.readouterr().out
    assert 'EMA acc %' in table
    with open(out / 'history.csv') as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 3 and all(0 < float(r['ema_test_acc']) <= 1 for r in rows)
    # epoch 0: the average is the initial weights themselves
    assert rows[0]['ema_test_acc'] == rows[0]['test_acc']
    assert rows[2]['ema_test_acc'] != rows[2]['test_acc']
    with open(out / 'history.json') as f:
        summary = json.load(f)['summary'][0]
    assert summary['ema_test_acc'] == pytest.approx(float(rows[2]['ema_test_acc']))
    with pytest.raises(Exception, match='--ema'):
        rc = cli.main(['compare', '--opt', 'sgd', '--ema', '1.0', '--out',
                       str(tmp_path / 'no')])
        if rc:
            raise ValueError(capsys.readouterr().err)


def test_update_bn_with_a_momentum_is_mxnets_exponential_update():
    net, _ = _bn_nets()
    rng = np.random.RandomState(1)
    xs = [rng.randn(8, 4).astype(np.float32) for _ in range(3)]
    net(mx.nd.array(xs[0]))
    averaging.update_bn([mx.nd.array(x) for x in xs], net, momentum=0.5)
    mean = np.zeros(6)
    for x in xs:  # from the reset value 0, MXNet's momentum weighting the old value
        mean = 0.5 * mean + 0.5 * net[0](mx.nd.array(x)).asnumpy().mean(0)
    np.testing.assert_allclose(net[1].running_mean.data().asnumpy(), mean, rtol=1e-5,
                               atol=1e-6)
    assert net[1]._kwargs['momentum'] == 0.9


@pytest.mark.parametrize('env, use_fused, expect_kernel', [
    ('reference', None, False), ('auto', False, False),
    pytest.param('auto', None, True, marks=pytest.mark.skipif(
        not kernels.available(), reason='fused kernels unavailable'))])
def test_the_implementation_follows_use_fused_and_the_environment(env, use_fused,
                                                                  expect_kernel, monkeypatch):
    calls = []
    monkeypatch.setenv('GLUON_OPT_IMPL', env)
    monkeypatch.setattr(kernels, 'call', lambda *a, **k: calls.append(a[0]))
    ema = averaging.EMA(small_mlp(seed=0), decay=0.5, use_fused=use_fused)
    ema.update()
    assert bool(calls) == expect_kernel
