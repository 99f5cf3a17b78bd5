"""gluon_opt.Trainer: a drop-in gluon.Trainer, plus closures, global-norm clipping, gradient
accumulation and weight-decay exclusion."""
import numpy as np
import pytest
import mxnet as mx
from mxnet import nd, gluon, autograd

import gluon_opt
from helpers import classification_data, small_mlp, train_steps


def params_numpy(net):
    """Parameters by position (names differ between instances: dense0_ vs dense4_)."""
    return {'%d_%s' % (i, k.rsplit('_', 1)[-1]): v.data(v.list_ctx()[0]).asnumpy()
            for i, (k, v) in enumerate(net.collect_params().items())}


def _grads(net):
    return {'%d_%s' % (i, k.rsplit('_', 1)[-1]): v.grad().asnumpy().copy()
            for i, (k, v) in enumerate(net.collect_params().items())}


def test_drop_in_identical_to_gluon_trainer():
    x, y = classification_data()
    results = []
    for cls in (gluon.Trainer, gluon_opt.Trainer):
        net = small_mlp(seed=1)
        trainer = cls(net.collect_params(), 'gluon_opt.adam', {'learning_rate': 0.01})
        train_steps(net, trainer, x, y, steps=5)
        results.append(params_numpy(net))
    for k in results[0]:
        np.testing.assert_array_equal(results[0][k], results[1][k], err_msg=k)


def test_closure_with_a_first_order_optimizer_is_called_once():
    x, y = classification_data(n=64)
    net = small_mlp(seed=2)
    ref = small_mlp(seed=2)
    loss_fn = gluon.loss.SoftmaxCrossEntropyLoss()
    calls = []

    def closure():
        calls.append(1)
        with autograd.record():
            loss = loss_fn(net(nd.array(x)), nd.array(y))
        loss.backward()
        return loss
    trainer = gluon_opt.Trainer(net.collect_params(), 'gluon_opt.sgd', {'learning_rate': 0.1})
    loss = trainer.step(64, closure)
    assert calls == [1] and loss.shape == (64,)
    ref_trainer = gluon.Trainer(ref.collect_params(), 'gluon_opt.sgd', {'learning_rate': 0.1})
    train_steps(ref, ref_trainer, x, y, steps=1, batch=64)
    for k, v in params_numpy(ref).items():
        np.testing.assert_array_equal(params_numpy(net)[k], v)


def test_clip_global_norm_scales_the_rescaled_gradient():
    x, y = classification_data(n=64)
    loss_fn = gluon.loss.SoftmaxCrossEntropyLoss()
    nets = {}
    for key in ('clipped', 'manual'):
        net = small_mlp(seed=3)
        with autograd.record():
            loss = loss_fn(net(nd.array(x)), nd.array(y))
        loss.backward()
        nets[key] = net
    grads = _grads(nets['manual'])
    norm = np.sqrt(sum(np.sum((g / 64) ** 2) for g in grads.values()))
    max_norm = 0.1 * norm  # clipping is active
    trainer = gluon_opt.Trainer(nets['clipped'].collect_params(), 'gluon_opt.sgd',
                                {'learning_rate': 1.0}, clip_global_norm=max_norm)
    before = params_numpy(nets['clipped'])
    trainer.step(64)
    after = params_numpy(nets['clipped'])
    step_norm = np.sqrt(sum(np.sum((before[k] - after[k]) ** 2) for k in before))
    assert step_norm == pytest.approx(max_norm, rel=1e-4)
    assert len(before) == len(grads) == 4
    for k in grads:
        expected = before[k] - grads[k] / 64 * (max_norm / norm)
        np.testing.assert_allclose(after[k], expected, rtol=1e-4, atol=1e-6)


def test_clip_global_norm_leaves_small_gradients_alone():
    x, y = classification_data()
    a, b = small_mlp(seed=4), small_mlp(seed=4)
    ta = gluon_opt.Trainer(a.collect_params(), 'gluon_opt.sgd', {'learning_rate': 0.1},
                           clip_global_norm=1e6)
    tb = gluon.Trainer(b.collect_params(), 'gluon_opt.sgd', {'learning_rate': 0.1})
    train_steps(a, ta, x, y, steps=3)
    train_steps(b, tb, x, y, steps=3)
    for k, v in params_numpy(a).items():
        np.testing.assert_allclose(v, params_numpy(b)[k], rtol=1e-6, atol=1e-7)


def test_accumulation_equals_one_big_batch():
    x, y = classification_data(n=128)
    loss_fn = gluon.loss.SoftmaxCrossEntropyLoss()
    big, acc = small_mlp(seed=5), small_mlp(seed=5)
    tb = gluon_opt.Trainer(big.collect_params(), 'gluon_opt.adam', {'learning_rate': 0.01})
    ta = gluon_opt.Trainer(acc.collect_params(), 'gluon_opt.adam', {'learning_rate': 0.01},
                           accumulate=4)
    for step in range(2):
        xb, yb = nd.array(x[step * 64:(step + 1) * 64]), nd.array(y[step * 64:(step + 1) * 64])
        with autograd.record():
            loss = loss_fn(big(xb), yb)
        loss.backward()
        tb.step(64)
        for part in range(4):
            sl = slice(16 * part, 16 * (part + 1))
            with autograd.record():
                loss = loss_fn(acc(xb[sl]), yb[sl])
            loss.backward()
            ta.step(16)
            if part < 3:
                assert ta._optimizer.num_update == step  # no update until the 4th call
    for k, v in params_numpy(big).items():
        # the same sum of per-sample gradients, summed in another order
        np.testing.assert_allclose(params_numpy(acc)[k], v, rtol=1e-4, atol=1e-6, err_msg=k)
    assert all(p.grad_req == 'add' for p in acc.collect_params().values())


def test_no_decay_excludes_biases_and_norm_parameters():
    net = gluon.nn.HybridSequential()
    net.add(gluon.nn.Dense(4, in_units=3), gluon.nn.BatchNorm(in_channels=4),
            gluon.nn.LayerNorm(in_channels=4))
    net.initialize()
    gluon_opt.Trainer(net.collect_params(), 'gluon_opt.adamw', {'wd': 0.1}, no_decay=True)
    mults = {k: p.wd_mult for k, p in net.collect_params().items()
             if p.grad_req != 'null'}
    for k, m in mults.items():
        assert m == (1.0 if k.endswith('weight') else 0.0), (k, m)
    assert len(mults) == 6  # dense weight, bias; batchnorm gamma, beta; layernorm gamma, beta

    net2 = gluon.nn.Dense(2, in_units=2)
    net2.initialize()
    gluon_opt.Trainer(net2.collect_params(), 'gluon_opt.sgd', {},
                      no_decay=lambda p: p.name.endswith('weight'))
    assert [p.wd_mult for p in net2.collect_params().values()] == [0.0, 1.0]


def test_no_decay_really_stops_the_decay():
    net = gluon.nn.Dense(2, in_units=2)
    net.initialize(mx.init.One())
    trainer = gluon_opt.Trainer(net.collect_params(), 'gluon_opt.adamw',
                                {'learning_rate': 0.1, 'wd': 0.5}, no_decay=True)
    with autograd.record():
        loss = 0.0 * net(nd.ones((1, 2))).sum()
    loss.backward()
    bias_before = net.bias.data().asnumpy().copy()
    trainer.step(1)
    np.testing.assert_array_equal(net.bias.data().asnumpy(), bias_before)
    np.testing.assert_allclose(net.weight.data().asnumpy(), 1.0 - 0.1 * 0.5, rtol=1e-6)


def test_bad_trainer_arguments():
    net = small_mlp()
    params = net.collect_params()
    for kwargs, match in ((dict(clip_global_norm=-1.0), 'clip_global_norm'),
                          (dict(clip_global_norm=True), 'clip_global_norm'),
                          (dict(accumulate=0), 'accumulate'),
                          (dict(accumulate=2.0), 'accumulate'),
                          (dict(no_decay='bias'), 'no_decay'),
                          (dict(accumulate=2, update_on_kvstore=True), 'update_on_kvstore')):
        with pytest.raises(ValueError, match=match):
            gluon_opt.Trainer(params, 'gluon_opt.sgd', {}, **kwargs)
    with pytest.raises(ValueError, match='accumulate'):
        gluon_opt.Trainer(params, 'gluon_opt.lbfgs', {}, accumulate=2)
    with pytest.raises(ValueError, match='clip_global_norm'):
        gluon_opt.Trainer(params, 'gluon_opt.lbfgs', {}, clip_global_norm=1.0)
    with pytest.raises(ValueError, match='update_on_kvstore'):
        gluon_opt.Trainer(params, 'gluon_opt.sam', {}, update_on_kvstore=True)
    # SAM and Sophia do accept global-norm clipping
    gluon_opt.Trainer(params, 'gluon_opt.sam', {}, clip_global_norm=1.0)


def test_clip_global_norm_with_sam_clips_both_gradients():
    x, y = classification_data(n=64)
    loss_fn = gluon.loss.SoftmaxCrossEntropyLoss()
    net = small_mlp(seed=6)
    trainer = gluon_opt.Trainer(net.collect_params(), 'gluon_opt.sam',
                                {'learning_rate': 1.0, 'rho': 0.01}, clip_global_norm=1e-3)

    def closure():
        with autograd.record():
            loss = loss_fn(net(nd.array(x)), nd.array(y))
        loss.backward()
        return loss
    before = params_numpy(net)
    trainer.step(64, closure)
    after = params_numpy(net)
    step_norm = np.sqrt(sum(np.sum((before[k] - after[k]) ** 2) for k in before))
    assert step_norm == pytest.approx(1e-3, rel=1e-3)  # plain SGD of a clipped gradient


def test_step_returns_the_loss_and_counts_evaluations():
    p = gluon.Parameter('w', shape=(2,), dtype='float64')
    p.initialize(mx.init.Zero())

    def closure():
        with autograd.record():
            loss = nd.sum(nd.square(p.data() - 3.0))
        loss.backward()
        return loss
    trainer = gluon_opt.Trainer([p], 'gluon_opt.newton')
    loss = trainer.step(1, closure)
    assert loss == pytest.approx(18.0)
    assert trainer.last_evals == 1 + 2 * 2 + 1  # gradient, Hessian (2 columns), line search
    np.testing.assert_allclose(p.data().asnumpy(), 3.0, rtol=1e-9)
    assert trainer.step(1, closure=closure) == pytest.approx(0.0, abs=1e-12)
