"""Chapter 5's experiments: first- against second-order methods at an equal budget of
gradient evaluations, and what one step costs on an MLP.

* ``logistic_problem()``: T-shirt/top against Shirt, 613 Fashion-MNIST images pooled to 4x4
  (16 features), full batch: small enough for Newton's method;
* ``CountingClosure``: a closure for ``gluon_opt.Trainer.step(batch_size, closure)`` that
  counts the gradient evaluations it computes and remembers its last point: asked again at
  the weights it has just evaluated (L-BFGS re-evaluates the point where its line search
  stopped at the start of every ``trainer.step``), it returns the remembered loss and leaves
  the gradients in place instead of computing them again, as scipy's optimizers do;
* ``fit_with_budget(...)``: train until a budget of gradient evaluations is spent and record
  the loss of each iterate against the evaluations used so far;
* ``step_costs(...)``: the time, gradient evaluations and optimizer memory of one
  ``trainer.step`` per method on a fixed batch.

Every method is stepped the same way, ``trainer.step(batch_size, closure)``: a first-order
optimizer evaluates the closure once per step, a second-order one as often as it needs.
"""
import time

import numpy as np
import mxnet as mx
from mxnet import autograd, gluon

from ..trainer import Trainer
from ..experiments import data, training

__all__ = ['logistic_problem', 'CountingClosure', 'BudgetRun', 'fit_with_budget',
           'first_within', 'step_costs']


def logistic_problem(classes=(0, 6), pool=7, path=None):
    """``(features, labels)`` of a binary logistic regression on Fashion-MNIST: the examples
    of ``classes`` among the first 3,000 training images, each image averaged over
    ``pool x pool`` blocks (28 / 7 = 4, so 16 features); labels 1 for ``classes[1]``."""
    fm = data.load_fashion_mnist(batch_size=3000, val_size=0, train_subset=3000,
                                 test_subset=100, path=path)
    x, y = next(iter(fm.train))
    keep = mx.nd.array(np.nonzero(np.isin(y.asnumpy(), classes))[0])
    side = 28 // pool
    features = x[keep].reshape((-1, side, pool, side, pool)).mean(axis=(2, 4))
    return features.reshape((-1, side * side)), (y[keep] == classes[1])


class CountingClosure(object):
    """``closure()`` runs forward and backward of ``loss_fn(net(x), y)`` and returns the
    per-example losses; ``calls`` counts the evaluations actually computed. A call at exactly
    the weights of the previous evaluation returns its losses without recomputing (the
    gradients from that evaluation are still in the parameters). ``loss()`` is the mean loss
    at the current weights by a forward pass only (for monitoring; not counted)."""

    def __init__(self, net, x, y, loss_fn=None):
        self.net, self.x, self.y = net, x, y
        self.loss_fn = loss_fn or gluon.loss.SoftmaxCrossEntropyLoss()
        self.params = [p for p in net.collect_params().values() if p.grad_req != 'null']
        self.calls = 0
        self._last = None           # (weights, losses) of the last evaluation

    def _weights(self):
        return [p.data().asnumpy() for p in self.params]

    def __call__(self):
        weights = self._weights() if self._last is not None else None
        if weights is not None and all(np.array_equal(a, b)
                                       for a, b in zip(weights, self._last[0])):
            return self._last[1]
        self.calls += 1
        with autograd.record():
            losses = self.loss_fn(self.net(self.x), self.y)
        losses.backward()
        self._last = (weights if weights is not None else self._weights(), losses)
        return losses

    def loss(self):
        return float(self.loss_fn(self.net(self.x), self.y).mean().asscalar())


class BudgetRun(object):
    """One run of ``fit_with_budget``: ``evals[k]`` gradient evaluations had been used when
    the iterate had mean loss ``losses[k]`` (``evals[0] = 0``: the starting point);
    ``steps`` is the number of ``trainer.step`` calls."""

    def __init__(self, evals, losses, steps):
        self.evals, self.losses, self.steps = np.asarray(evals), np.asarray(losses), steps

    def within(self, budget):
        """``(evals, losses)`` of the iterates reached within ``budget`` evaluations."""
        keep = self.evals <= budget
        return self.evals[keep], self.losses[keep]

    def best_within(self, budget):
        """The lowest loss of an iterate reached within ``budget`` evaluations."""
        return float(self.within(budget)[1].min())


def fit_with_budget(optimizer, hyper, budget, features, labels, seed=0, max_steps=10000):
    """Full-batch training of logistic regression (``Dense(2)``, Xavier initialisation
    under ``seed``) with ``gluon_opt.Trainer``: ``trainer.step`` until ``budget`` gradient
    evaluations are used (the last step may go past it; ``BudgetRun.best_within`` cuts at the
    budget) or a step changes nothing (converged). Returns a ``BudgetRun``."""
    mx.random.seed(seed)
    net = gluon.nn.Dense(2, in_units=features.shape[1])
    net.initialize(mx.init.Xavier())
    trainer = Trainer(net.collect_params(), optimizer, hyper)
    closure = CountingClosure(net, features, labels)
    evals, losses = [0], [closure.loss()]
    for step in range(1, max_steps + 1):
        if closure.calls >= budget:
            break
        before = closure.calls
        trainer.step(len(labels), closure)
        evals.append(closure.calls)
        losses.append(closure.loss())
        if closure.calls == before:  # nothing left to evaluate: the optimizer has stopped
            break
    return BudgetRun(evals, losses, len(evals) - 1)


def first_within(run, f_star, tol, budget=None):
    """``(steps, evaluations)`` after which ``run``'s loss was first within ``tol`` of
    ``f_star`` (within ``budget`` evaluations, if given); ``(inf, inf)`` when it never
    was."""
    evals, losses = run.within(budget) if budget is not None else (run.evals, run.losses)
    hit = np.nonzero(losses - f_star <= tol)[0]
    if not len(hit):
        return float('inf'), float('inf')
    return int(hit[0]), int(evals[hit[0]])


def step_costs(methods, x, y, net_factory, steps=3, seed=0):
    """Time, gradient evaluations and optimizer memory of one ``trainer.step`` on the batch
    ``(x, y)`` for each ``{label: (optimizer, hyperparameters)}``. Runs ``steps`` steps and
    averages the time of all but the first (which pays for state creation); ``evals`` are
    those of the last step, ``state_bytes`` what the optimizer holds after it, ``params``
    the model's parameter count. Returns ``{label: dict}``."""
    cost = {}
    for label, (name, hyper) in methods.items():
        mx.random.seed(seed)
        net = net_factory()
        net.initialize(mx.init.Xavier())
        net(x)                             # resolves the deferred shapes
        trainer = Trainer(net.collect_params(), name, hyper)
        closure = CountingClosure(net, x, y)
        seconds = []
        for step in range(steps):
            calls, t0 = closure.calls, time.perf_counter()
            trainer.step(len(y), closure)
            mx.nd.waitall()
            if step:
                seconds.append(time.perf_counter() - t0)
        cost[label] = {'seconds': float(np.mean(seconds)), 'evals': closure.calls - calls,
                       'state_bytes': training.optimizer_state_bytes(trainer),
                       'params': sum(p.data().size for p in net.collect_params().values())}
    return cost
