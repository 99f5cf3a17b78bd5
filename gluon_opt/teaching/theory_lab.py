"""Small experiments for the optimization theory the course teaches beside its MLPs.

* ``saddle()`` and ``escape_steps(...)``: gradient descent on ``x^2 - y^2`` stalls at the
  saddle when it starts on the line ``y = 0``; gradient noise pushes it off (chapter 2);
* ``noisy_quadratic_sgd(...)``: SGD on a convex quadratic with noisy gradients; with a
  constant learning rate the loss settles at a floor proportional to the rate, a decaying
  rate keeps going down (chapter 2);
* ``sparse_regression(...)`` and ``sparse_run(...)``: linear regression with features that
  are active in 50 % down to 1 % of the examples, where AdaGrad's per-coordinate steps help
  the rare ones (chapter 4);
* ``reddi_online(...)``: the online problem of Reddi, Kale & Kumar (ICLR 2018) on which Adam
  converges to the worst point and AMSGrad to the best (chapter 4).

Every optimizer here is a registered MXNet optimizer (``gluon_opt.sgd``, ``gluon_opt.adam``,
...), driven with ``update`` exactly as ``gluon.Trainer`` drives it.
"""
import math

import numpy as np
import mxnet as mx

from .landscapes import Landscape, make_optimizer

__all__ = ['saddle', 'escape_steps', 'noisy_quadratic_sgd', 'sparse_regression',
           'sparse_run', 'reddi_online', 'InverseSqrt']


def saddle():
    """``f(x, y) = x^2 - y^2``: a minimum along ``x``, a maximum along ``y``, a saddle point
    at the origin where the gradient is zero. Unbounded below (``y`` away from 0)."""
    return Landscape('saddle', lambda p: p[0] ** 2 - p[1] ** 2,
                     lambda p: np.array([2 * p[0], -2 * p[1]]), dim=2, minimum=None,
                     bounds=((-1.5, 1.5), (-1.5, 1.5)), description='f(x, y) = x^2 - y^2')


def escape_steps(start, steps, learning_rate=0.1, noise=0.0, seed=0, radius=1.0):
    """Gradient descent (``gluon_opt.sgd``) on ``saddle()`` from ``start``, with Gaussian
    noise of standard deviation ``noise`` added to each gradient coordinate.

    Returns ``(path, escaped_at)``: the points visited (``steps + 1`` rows, fewer if it
    escaped) and the first step at which ``|y| >= radius`` (None if it never did)."""
    opt = make_optimizer('gluon_opt.sgd', learning_rate=learning_rate)
    land, rng = saddle(), np.random.RandomState(seed)
    w = mx.nd.array(start, dtype='float64')
    state = opt.create_state_multi_precision(0, w)
    path = [np.asarray(start, dtype=np.float64)]
    for t in range(1, int(steps) + 1):
        g = land.grad(path[-1]) + noise * rng.randn(2)
        opt.update_multi_precision(0, w, mx.nd.array(g, dtype='float64'), state)
        path.append(w.asnumpy())
        if abs(path[-1][1]) >= radius:
            return np.array(path), t
    return np.array(path), None


def noisy_quadratic_sgd(learning_rate, steps, curvature=1.0, noise=1.0, chains=2000,
                        decay=None, start=1.0, seed=0):
    """SGD on ``f(x) = curvature/2 x^2`` with gradient ``curvature x + noise * xi``
    (``xi`` standard normal), run as ``chains`` independent copies at once (one weight of
    ``chains`` elements, so one ``gluon_opt.sgd`` update per step moves all of them).

    ``decay``: None for a constant rate, or ``tau`` for ``eta_t = eta / (1 + t / tau)``.
    Returns the mean loss over the chains after every step (``steps`` values).

    Theory (constant rate): the loss settles where the noise each step adds balances the
    contraction, at ``E f = eta noise^2 / (2 (2 - eta curvature))``, about
    ``eta noise^2 / 4``: proportional to the learning rate."""
    sched = None if decay is None else _Hyperbolic(learning_rate, decay)
    opt = make_optimizer('gluon_opt.sgd', learning_rate=learning_rate, lr_scheduler=sched)
    rng = np.random.RandomState(seed)
    w = mx.nd.full((chains,), start, dtype='float64')
    state = opt.create_state_multi_precision(0, w)
    losses = np.empty(int(steps))
    for t in range(int(steps)):
        g = curvature * w + mx.nd.array(noise * rng.randn(chains), dtype='float64')
        opt.update_multi_precision(0, w, g, state)
        losses[t] = 0.5 * curvature * float((w * w).mean().asscalar())
    return losses


class _Hyperbolic(mx.lr_scheduler.LRScheduler):
    """``base_lr / (1 + t / tau)``."""

    def __init__(self, base_lr, tau):
        super().__init__(base_lr=base_lr)
        self.tau = float(tau)

    def __call__(self, num_update):
        return self.base_lr / (1.0 + num_update / self.tau)


class InverseSqrt(mx.lr_scheduler.LRScheduler):
    """``base_lr / sqrt(t)``, the rate of Reddi et al.'s analysis."""

    def __call__(self, num_update):
        return self.base_lr / math.sqrt(max(num_update, 1))


def sparse_regression(n=4000, frequencies=None, noise=0.1, seed=0):
    """A linear regression ``y = X w* + noise`` with binary features: feature ``j`` is 1 in a
    fraction ``frequencies[j]`` of the examples (default: 12 features from 0.5 down to 0.01,
    evenly on a log scale), 0 otherwise; ``w*`` is all ones.

    Returns ``(X, y, w_star, frequencies)`` as float64 NumPy arrays."""
    if frequencies is None:
        frequencies = np.geomspace(0.5, 0.01, 12)
    frequencies = np.asarray(frequencies, dtype=np.float64)
    rng = np.random.RandomState(seed)
    X = (rng.rand(n, frequencies.size) < frequencies).astype(np.float64)
    w_star = np.ones(frequencies.size)
    y = X @ w_star + noise * rng.randn(n)
    return X, y, w_star, frequencies


def sparse_run(optimizer, X, y, w_star, batch_size=10, epochs=1, seed=0, **hyper):
    """Minibatch training of the linear model on ``(X, y)`` (squared loss ``(x.w - y)^2 / 2``,
    the mean over the batch) from ``w = 0`` with a registered optimizer; one pass per epoch
    in a seeded order. Returns ``|w - w*|`` per feature at the end (inf where it overflowed)."""
    opt = make_optimizer(optimizer, **hyper)
    rng = np.random.RandomState(seed)
    w = mx.nd.zeros(X.shape[1], dtype='float64')
    state = opt.create_state_multi_precision(0, w)
    wn = np.zeros(X.shape[1])
    for _ in range(int(epochs)):
        order = rng.permutation(X.shape[0])
        for start in range(0, X.shape[0] - batch_size + 1, batch_size):
            idx = order[start:start + batch_size]
            grad = X[idx].T @ (X[idx] @ wn - y[idx]) / batch_size
            opt.update_multi_precision(0, w, mx.nd.array(grad, dtype='float64'), state)
            wn = w.asnumpy()
    err = np.abs(wn - w_star)
    return np.where(np.isfinite(err), err, np.inf)       # a diverged run: infinitely far


def reddi_online(optimizer, steps, C=3.0, learning_rate=0.5, **hyper):
    """Reddi, Kale & Kumar's online problem (ICLR 2018, "On the Convergence of Adam and
    Beyond", section 3): on ``x`` in ``[-1, 1]`` the losses are ``f_t(x) = C x`` when
    ``t mod 3 == 1`` and ``-x`` otherwise. Over each period of three their sum is
    ``(C - 2) x``, so for ``C > 2`` the best point is ``x = -1``.

    Runs ``optimizer`` (a registered name; ``hyper`` such as ``beta1=0, beta2=0.1``,
    ``amsgrad=True``) from ``x = 0`` with the rate ``learning_rate / sqrt(t)``, projecting
    back onto ``[-1, 1]`` after every step. Returns ``x`` after each step."""
    opt = make_optimizer(optimizer, learning_rate=learning_rate,
                         lr_scheduler=InverseSqrt(base_lr=learning_rate), **hyper)
    w = mx.nd.zeros((1,), dtype='float64')
    state = opt.create_state_multi_precision(0, w)
    xs = np.empty(int(steps))
    for t in range(1, int(steps) + 1):
        g = C if t % 3 == 1 else -1.0
        opt.update_multi_precision(0, w, mx.nd.array([g], dtype='float64'), state)
        w[:] = mx.nd.clip(w, -1.0, 1.0)
        xs[t - 1] = w.asscalar()
    return xs
