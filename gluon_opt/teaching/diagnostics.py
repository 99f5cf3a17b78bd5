"""Practical checks before and during training, after Stanford's CS231n notes ("Babysitting
the learning process"):

* ``update_ratios(net, optimizer, data, label)``: one update's size relative to the weights,
  ``||delta w|| / ||w||`` per parameter; a healthy rate gives about ``1e-3`` for weight
  matrices (CS231n's rule of thumb), far below means the rate is too low, far above too high;
* ``log_grid(low, high, n)`` and ``log_uniform(low, high, n, rng)``: candidate values for a
  search on a log scale, as a grid or drawn at random (Bergstra & Bengio, JMLR 2012).
"""
import numpy as np
import mxnet as mx
from mxnet import autograd, gluon

__all__ = ['update_ratios', 'log_grid', 'log_uniform']


def update_ratios(net, optimizer, data, label, loss_fn=None, **hyper):
    """Take one ``gluon.Trainer`` step of ``optimizer`` (a registered name, with ``hyper``)
    on ``(data, label)`` and return ``{parameter name: ||w_after - w_before|| /
    ||w_before||}`` for every trained parameter whose weights are not all zero (a bias
    initialised at zero has no scale to compare with). ``net`` must be initialised; it is
    changed by the step."""
    loss_fn = loss_fn or gluon.loss.SoftmaxCrossEntropyLoss()
    params = {name: p for name, p in net.collect_params().items() if p.grad_req != 'null'}
    trainer = gluon.Trainer(list(params.values()), optimizer, hyper)
    with autograd.record():  # the first forward also completes a deferred initialisation
        loss = loss_fn(net(data), label)
    loss.backward()
    before = {name: p.data().asnumpy().astype(np.float64) for name, p in params.items()}
    trainer.step(data.shape[0])
    out = {}
    for name, p in params.items():
        scale = np.linalg.norm(before[name])
        if scale > 0:
            out[name] = float(np.linalg.norm(p.data().asnumpy() - before[name]) / scale)
    return out


def log_grid(low, high, n):
    """``n`` values evenly spaced on a log scale from ``low`` to ``high`` (both included)."""
    if not 0 < low < high:
        raise ValueError('expected 0 < low < high; got %r and %r.' % (low, high))
    return np.geomspace(low, high, int(n))


def log_uniform(low, high, n, rng):
    """``n`` values drawn uniformly on a log scale between ``low`` and ``high`` with the
    ``numpy.random.RandomState`` ``rng``."""
    if not 0 < low < high:
        raise ValueError('expected 0 < low < high; got %r and %r.' % (low, high))
    return np.exp(rng.uniform(np.log(low), np.log(high), int(n)))
