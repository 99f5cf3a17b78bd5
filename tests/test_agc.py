"""Adaptive gradient clipping (``gluon_opt.Trainer(clip_adaptive=...)``) against timm's
``adaptive_clip_grad``, which is not installed: ``timm_adaptive_clip_grad`` below is a
transcription of it (timm/utils/agc.py, Ross Wightman's adaptation of the authors' JAX code in
deepmind-research/nfnets), run in float64 torch.

The twin is handed our gradients (see ``test_40_sgd_steps_follow_timm``): a fully separate
float64 forward and backward pass would add float32-against-float64 differences of the
gradients themselves (1e-4 relative on near-zero elements), which say nothing of the clipping.
"""
import numpy as np
import pytest
import mxnet as mx
from mxnet import autograd, gluon

import gluon_opt
from helpers import classification_data, small_mlp

torch = pytest.importorskip('torch')


def unitwise_norm(x, norm_type=2.0):
    if x.ndim <= 1:
        return x.norm(norm_type)
    # norms over all dims but the first (output units): Linear (out, in), Conv (out, in, kh, kw)
    return x.norm(norm_type, dim=tuple(range(1, x.ndim)), keepdim=True)


def timm_adaptive_clip_grad(parameters, clip_factor=0.01, eps=1e-3, norm_type=2.0):
    """timm.utils.agc.adaptive_clip_grad, as published (v0.4 to v1.0)."""
    if isinstance(parameters, torch.Tensor):
        parameters = [parameters]
    for p in parameters:
        if p.grad is None:
            continue
        p_data = p.detach()
        g_data = p.grad.detach()
        max_norm = unitwise_norm(p_data, norm_type=norm_type).clamp_(min=eps).mul_(clip_factor)
        grad_norm = unitwise_norm(g_data, norm_type=norm_type)
        clipped_grad = g_data * (max_norm / grad_norm.clamp(min=1e-6))
        new_grads = torch.where(grad_norm < max_norm, g_data, clipped_grad)
        p.grad.detach().copy_(new_grads)


def _twin(net):
    shapes = [p.shape for p in net.collect_params().values()]
    model = torch.nn.Sequential(torch.nn.Linear(shapes[0][1], shapes[0][0]), torch.nn.ReLU(),
                                torch.nn.Linear(shapes[2][1], shapes[2][0])).double()
    with torch.no_grad():
        for tp, p in zip(model.parameters(), net.collect_params().values()):
            tp.copy_(torch.from_numpy(p.data().asnumpy().astype(np.float64)))
    return model


def _mx_step(net, trainer, x, y):
    loss_fn = gluon.loss.SoftmaxCrossEntropyLoss()
    with autograd.record():
        loss = loss_fn(net(mx.nd.array(x)), mx.nd.array(y))
    loss.backward()
    trainer.step(len(x))


def _clip_like_timm(model, grads, lr, clip_factor):
    """The twin's step from the gradients ``grads`` (ours, before clipping, rescaled):
    timm's clipping, then SGD."""
    for p, g in zip(model.parameters(), grads):
        p.grad = torch.from_numpy(g.astype(np.float64))
    timm_adaptive_clip_grad(model.parameters(), clip_factor=clip_factor)
    with torch.no_grad():
        for p in model.parameters():
            p -= lr * p.grad


def _clipped_units(before, after):
    """(units clipped, units left) of one tensor: a unit is a row, or the whole 1-D tensor."""
    if before.ndim <= 1:
        b, a = before.reshape(1, -1), after.reshape(1, -1)
    else:
        b, a = before.reshape(before.shape[0], -1), after.reshape(after.shape[0], -1)
    same = np.isclose(a, b, rtol=1e-6, atol=0).all(axis=1)
    return int((~same).sum()), int(same.sum())


@pytest.mark.parametrize('ctxs', [[mx.cpu(0)], [mx.cpu(0), mx.cpu(1)]], ids=['1ctx', '2ctx'])
def test_40_sgd_steps_follow_timm(ctxs):
    """Each step, the twin (float64 weights, started from ours) is handed the gradient our
    trainer saw before clipping and clips it with timm's code: the weights then differ only
    by our float32 arithmetic (norms over at most 20 elements per unit, a division, the SGD
    axpy: a few ulps per step, not amplified), below 1e-5 relative after 40 steps."""
    x, y = classification_data(n=256)
    net = small_mlp(seed=2, ctx=ctxs)
    model = _twin(net)
    lr, lam, steps, batch = 0.5, 0.05, 40, 32
    trainer = gluon_opt.Trainer(net.collect_params(), 'sgd', {'learning_rate': lr},
                                clip_adaptive=lam, kvstore='device')
    params = list(net.collect_params().values())
    loss_fn = gluon.loss.SoftmaxCrossEntropyLoss()
    clipped = kept = 0
    for s in range(steps):
        i = (s * batch) % len(x)
        xs = gluon.utils.split_and_load(mx.nd.array(x[i:i + batch]), ctxs)
        ys = gluon.utils.split_and_load(mx.nd.array(y[i:i + batch]), ctxs)
        with autograd.record():
            ls = [loss_fn(net(a), b) for a, b in zip(xs, ys)]
        autograd.backward(ls)
        raw = [sum(g.asnumpy().astype(np.float64) for g in p.list_grad()) / batch
               for p in params]
        trainer.step(batch)
        for p, r in zip(params, raw):  # the clipped (reduced) gradient is left in place
            c, k = _clipped_units(r, p.grad(ctxs[0]).asnumpy() / batch)
            clipped, kept = clipped + c, kept + k
        _clip_like_timm(model, raw, lr, lam)
    errs = []
    for p, tp in zip(params, model.parameters()):
        ref = tp.detach().numpy()
        for arr in p.list_data():
            errs.append(np.abs(arr.asnumpy() - ref).max() / np.abs(ref).max())
    print('AGC (lambda %g) + SGD vs timm transcription over %d steps, %d contexts: max rel '
          'err %.3g (%d unit-steps clipped, %d kept)' % (lam, steps, len(ctxs), max(errs),
                                                         clipped, kept))
    assert clipped > 0 and kept > 0  # not vacuous: units on both sides of the threshold
    assert max(errs) < 1e-5


def test_clip_adaptive_changes_training_where_it_should():
    # a lambda so large that no unit is clipped leaves SGD alone, bit for bit
    x, y = classification_data(n=64)
    nets = [small_mlp(seed=3), small_mlp(seed=3)]
    t_plain = gluon_opt.Trainer(nets[0].collect_params(), 'sgd', {'learning_rate': 0.1})
    t_agc = gluon_opt.Trainer(nets[1].collect_params(), 'sgd', {'learning_rate': 0.1},
                              clip_adaptive=1e6)
    for _ in range(3):
        _mx_step(nets[0], t_plain, x, y)
        _mx_step(nets[1], t_agc, x, y)
    for a, b in zip(nets[0].collect_params().values(), nets[1].collect_params().values()):
        np.testing.assert_array_equal(a.data().asnumpy(), b.data().asnumpy())


@pytest.mark.parametrize('value', [0, -0.1, True, '0.01', float('nan'), float('inf')])
def test_bad_clip_adaptive_is_refused(value):
    net = small_mlp(seed=0)
    with pytest.raises(ValueError, match=r'Trainer: clip_adaptive=.* is invalid'):
        gluon_opt.Trainer(net.collect_params(), 'sgd', {}, clip_adaptive=value)


def test_clip_adaptive_refuses_what_it_cannot_combine_with():
    params = small_mlp(seed=0).collect_params()
    with pytest.raises(ValueError, match='pass one of them'):
        gluon_opt.Trainer(params, 'sgd', {}, clip_adaptive=0.01, clip_global_norm=1.0)
    with pytest.raises(ValueError, match='update_on_kvstore=True'):
        gluon_opt.Trainer(params, 'sgd', {}, clip_adaptive=0.01, update_on_kvstore=True)
    with pytest.raises(ValueError, match='clip_adaptive is not supported'):
        gluon_opt.Trainer(params, 'gluon_opt.sam', {}, clip_adaptive=0.01)


def test_conv_units_are_output_channels():
    """A convolution's unit is an output channel (MXNet's OIHW layout, torch's too)."""
    mx.random.seed(4)
    net = gluon.nn.HybridSequential()
    net.add(gluon.nn.Conv2D(4, 3, in_channels=2), gluon.nn.Flatten(), gluon.nn.Dense(3))
    net.initialize(mx.init.Xavier())
    x = mx.nd.random.normal(shape=(8, 2, 6, 6))
    net(x)
    params = list(net.collect_params().values())
    with autograd.record():
        loss = (net(x) ** 2).sum()
    loss.backward()
    raw = [p.grad().asnumpy().astype(np.float64) / 8 for p in params]
    # lambda between two channels' ratios ||G_i|| / ||W_i||, so that both sides are tested
    w0 = params[0].data().asnumpy().reshape(4, -1)
    ratios = np.sort(np.linalg.norm(raw[0].reshape(4, -1), axis=1) /
                     np.linalg.norm(w0, axis=1))
    lam = float(np.sqrt(ratios[1] * ratios[2]))
    trainer = gluon_opt.Trainer(net.collect_params(), 'sgd', {'learning_rate': 0.0},
                                clip_adaptive=lam)
    weights = [torch.from_numpy(p.data().asnumpy().astype(np.float64)).requires_grad_()
               for p in params]
    trainer.step(8)
    for w, g in zip(weights, raw):
        w.grad = torch.from_numpy(g.copy())
    timm_adaptive_clip_grad(weights, clip_factor=lam)
    conv_clipped, conv_kept = _clipped_units(raw[0], params[0].grad().asnumpy() / 8)
    assert conv_clipped and conv_kept  # some channels clipped, others not
    for p, w in zip(params, weights):
        ref = w.grad.numpy()
        # float32 norms over 18 elements per channel, one division and one product
        np.testing.assert_allclose(p.grad().asnumpy() / 8, ref, rtol=1e-5,
                                   atol=1e-6 * np.abs(ref).max())
