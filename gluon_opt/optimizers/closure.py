"""What the closure-based optimizers share: the base class, the problem they optimise, and the
line search of Newton and Newton-CG.

A closure-based optimizer (Newton, L-BFGS, Newton-CG, SAM, Sophia) needs to evaluate the loss
and the gradient more than once per step, at points of its choosing; and the second-order
ones treat all parameters as *one* vector. Neither fits MXNet's per-tensor
``update(index, weight, grad, state)``, so ``gluon_opt.Trainer.step(batch_size, closure)``
hands them a :class:`ParamProblem` instead and calls ``optimizer.closure_step(problem)``.

The closure is the user's function that runs the forward pass under ``autograd.record()``,
calls ``backward()`` and returns the loss it differentiated (an NDArray of per-sample losses,
a list of them -- one per context --, or a float). The objective the optimizer sees is::

    f(w) = rescale * sum(closure loss) + sum_i wd_i / 2 * ||w_i||^2

with ``rescale = 1 / batch_size`` as everywhere in Gluon (so per-sample losses give the mean),
``wd_i = wd * wd_mult_i``, and its gradient is ``rescale * (sum of the gradients over the
contexts) + wd_i * w_i``: the loss and the gradient are the same function, which is what line
searches need.

Where the state lives: on the parameters' first context. Each update is computed there and
written to every context's copy, so the copies stay identical. Line searches decide on
scalars, so Newton/L-BFGS/Newton-CG copy a few scalars per evaluation to the host (accepted
for these methods); tensors never leave their context. SAM and Sophia copy nothing.

Parameters with ``grad_req='null'`` or ``lr_mult == 0`` are left out of the vector (frozen).
Other ``lr_mult`` values scale the step of SAM's and Sophia's per-tensor updates; the joint
methods (Newton, L-BFGS, Newton-CG) ignore them, since scaling coordinates of a quasi-Newton
direction would break its line search.

Curvature comes from finite differences of gradients (``gluon_opt.hvp``): MXNet 1.9.1 cannot
differentiate twice through Dense/Activation. Cost per step, ``n`` parameters, ``m`` L-BFGS
history, ``k`` CG iterations (an evaluation is one forward+backward pass over the batch):

==============  ===========================  ==================================
method          evaluations per step         memory beyond the weights
==============  ===========================  ==================================
Newton          ``2n + 1 + line search``     ``n^2`` (the Hessian) + eigenvectors
L-BFGS          ``1 + line search`` per iter ``2 m n`` (curvature pairs)
Newton-CG       ``1 + 2k + line search``     ``~5 n`` (CG vectors)
Sophia          ``1 + 2/update_interval``    ``2 n`` (momentum, diagonal)
SAM             ``2``                        the base optimizer's
==============  ===========================  ==================================

Newton and Newton-CG share the Armijo backtracking line search below (Nocedal & Wright,
"Numerical Optimization", 2nd ed., 2006, 3.1); L-BFGS has its strong-Wolfe search in its module.
"""
import math

import numpy as np
import mxnet as mx
from mxnet import nd

from .base import GluonOptOptimizer, check_weight_dtype, check_range, check_int
from ..hvp import fd_hvp, global_norm

__all__ = ['ClosureOptimizer', 'ClosureRequired', 'ParamProblem', 'ArmijoLineSearch',
           'armijo_backtrack', 'flat_dot']


def flat_dot(a, b):
    """The dot product of two flat NDArrays, as a Python float (a host sync)."""
    return float(nd.dot(a, b).asscalar())


def armijo_backtrack(problem, x0, f0, g0, d, t, gtd, c1, factor, max_backtracks):
    """Armijo backtracking from step ``t``: the first ``t * factor**j`` with
    ``f(x0 + t d) <= f0 + c1 t g.d``. Returns ``(t, f, flat_grad, accepted)``; the model is
    left at the accepted point, or at ``x0`` when no step was accepted."""
    for _ in range(max_backtracks + 1):
        f, g = problem.evaluate_flat(x0 + t * d)
        if f <= f0 + c1 * t * gtd and math.isfinite(f):
            return t, f, g, True
        t *= factor
    problem.set_flat(x0)
    return 0.0, f0, g0, False


class ArmijoLineSearch(object):
    """The hyperparameters of ``armijo_backtrack``: ``c1``, ``backtrack``, ``max_backtracks``."""

    def _check_line_search(self, c1, backtrack, max_backtracks):
        owner = type(self).__name__
        self.c1 = check_range(owner, 'c1', c1, 0.0, 0.5, low_open=True)
        self.backtrack = check_range(owner, 'backtrack', backtrack, 0.0, 1.0, low_open=True)
        self.max_backtracks = check_int(owner, 'max_backtracks', max_backtracks, 0)


class ClosureRequired(RuntimeError):
    """A closure-based optimizer was stepped without a closure."""


class ClosureOptimizer(GluonOptOptimizer):
    """Base class of the optimizers that need a closure (see the module docstring).

    Subclasses implement ``closure_step(problem)`` and return the loss of the first
    evaluation. ``exact_gradient = True`` marks those whose line search or curvature pairs
    need the true gradient: for them elementwise ``clip_gradient`` and the Trainer's
    ``clip_global_norm`` are refused.
    """
    needs_closure = True
    exact_gradient = True
    state_names = ()
    fused_op = None

    def __init__(self, learning_rate=None, **kwargs):
        super(ClosureOptimizer, self).__init__(learning_rate=learning_rate, **kwargs)
        if self.exact_gradient and self.clip_gradient is not None:
            raise ValueError('%s: clip_gradient=%r is not supported: the line search needs the '
                             'exact gradient of the loss.' % (type(self).__name__,
                                                             self.clip_gradient))

    def create_state(self, index, weight):
        return None

    def create_state_multi_precision(self, index, weight):
        return None

    def _refuse(self):
        raise ClosureRequired(
            'gluon_opt.%s needs a closure: use gluon_opt.Trainer and '
            'trainer.step(batch_size, closure), where closure() runs the forward pass under '
            'autograd.record(), calls backward() and returns the loss.' % self.name)

    def update(self, index, weight, grad, state):
        self._refuse()

    def update_multi_precision(self, index, weight, grad, state):
        self._refuse()

    def closure_step(self, problem):
        raise NotImplementedError


def _loss_sum(out, ctx):
    """The closure's return value summed into a 1-element float64 NDArray on ``ctx``."""
    if isinstance(out, (list, tuple)):
        parts = [_loss_sum(o, ctx) for o in out]
        return nd.add_n(*parts) if len(parts) > 1 else parts[0]
    if isinstance(out, nd.NDArray):
        return nd.sum(out.astype('float64')).reshape((1,)).as_in_context(ctx)
    if out is None:
        raise ValueError('the closure returned None; it must return the loss it called '
                         'backward() on (an NDArray, a list of NDArrays, or a float).')
    return nd.array([float(out)], ctx=ctx, dtype='float64')


class ParamProblem(object):
    """The objective ``f(w)`` over the trainable parameters, evaluated through the closure.

    Parameters
    ----------
    optimizer : GluonOptOptimizer
        Supplies ``wd`` and the per-parameter ``wd_mult``/``lr_mult`` (through ``_get_wds``).
    params : list of (index, Parameter)
    closure : callable
    rescale : float
        ``1 / batch_size`` (times the Trainer's scale).
    clip_global_norm : float or None
        Gradients of the loss (not the weight decay term) are scaled so that their global norm
        is at most this (only for optimizers with ``exact_gradient = False``).
    """

    def __init__(self, optimizer, params, closure, rescale=1.0, clip_global_norm=None):
        self.optimizer = optimizer
        self.closure = closure
        self.rescale = float(rescale)
        self.clip_global_norm = clip_global_norm
        self._candidates = list(params)
        # before the closure runs: a Parameter knows its dtype before (deferred) initialisation
        for _, p in self._candidates:
            if p.grad_req != 'null' and p.lr_mult != 0:
                check_weight_dtype(type(optimizer).__name__, p, 'parameter %r' % p.name)
        self._params = None
        #: closure evaluations so far (forward + backward passes)
        self.n_evals = 0

    # -- the parameters (resolved after the first evaluation: deferred initialisation) --------
    def _resolve(self):
        if self._params is not None:
            return
        items = [(i, p) for i, p in self._candidates
                 if p.grad_req != 'null' and p.lr_mult != 0]
        if not items:
            raise ValueError('%s: no trainable parameters (all have grad_req="null" or '
                             'lr_mult=0).' % type(self.optimizer).__name__)
        self.indices = [i for i, _ in items]
        self._params = [p for _, p in items]
        first = self._params[0].list_data()[0]
        self.ctx = first.context
        self.dtype = first.dtype
        self.shapes = [p.shape for p in self._params]
        self.sizes = [int(np.prod(s)) for s in self.shapes]
        self.wds = self.optimizer._get_wds(self.indices)
        self.lr_mults = [p.lr_mult for p in self._params]

    @property
    def params(self):
        self._resolve()
        return self._params

    def weights(self):
        """The primary copies of the weights (live: writing to them changes the model's
        primary copy only; use :meth:`set_weights` to move the model)."""
        return [p.list_data()[0] for p in self.params]

    def copy_weights(self):
        return [w.copy() for w in self.weights()]

    def set_weights(self, values):
        """Write ``values`` into every context's copy of every parameter."""
        for p, v in zip(self.params, values):
            for d in p.list_data():
                if d.context == v.context:
                    d[:] = v
                else:
                    v.copyto(d)

    # -- evaluations --------------------------------------------------------------------------
    def evaluate(self, with_wd=True):
        """Run the closure at the current weights; return ``(loss, grads)``: ``loss`` a
        1-element float64 NDArray on the first context, ``grads`` new NDArrays (one per
        parameter) on the first context, rescaled, summed over the contexts, clipped by global
        norm if asked, plus ``wd_i * w_i`` when ``with_wd``."""
        out = self.closure()
        self.n_evals += 1
        self._resolve()
        loss = _loss_sum(out, self.ctx) * self.rescale
        grads = []
        for p in self._params:
            gs = p.list_grad()
            if len(gs) == 1:
                g = gs[0] * self.rescale
            else:
                g = nd.add_n(*[x.as_in_context(self.ctx) for x in gs]) * self.rescale
            grads.append(g)
        if self.clip_global_norm is not None:
            norm = global_norm(grads)
            factor = nd.clip(self.clip_global_norm / (norm + 1e-6), 0.0, 1.0)
            grads = [nd.broadcast_mul(g, factor.astype(g.dtype)) for g in grads]
        if with_wd:
            weights = self.weights()
            for k, wd in enumerate(self.wds):
                if wd:
                    w = weights[k]
                    loss = loss + 0.5 * wd * nd.sum(nd.square(w.astype('float64')))
                    grads[k] = grads[k] + wd * w
        return loss, grads

    def evaluate_at(self, values, with_wd=True):
        """Move the model to ``values`` and evaluate there (the model stays there)."""
        self.set_weights(values)
        return self.evaluate(with_wd)

    def hvp(self, vector, weights=None, eps=None, with_wd=True):
        """Central finite-difference Hessian-vector product ``H v`` at ``weights`` (default:
        the current weights), with :func:`gluon_opt.hvp.fd_epsilon`'s step. Two evaluations;
        the model is left at ``weights``."""
        w0 = weights if weights is not None else self.copy_weights()

        def grad_fn(values):
            return self.evaluate_at(values, with_wd)[1]

        out = fd_hvp(grad_fn, w0, vector, eps)
        self.set_weights(w0)
        return out

    # -- flat vectors (for the methods that treat all parameters as one vector) ---------------
    @property
    def size(self):
        self._resolve()
        return sum(self.sizes)

    def flatten(self, arrays):
        flat = [a.reshape((-1,)) for a in arrays]
        return nd.concat(*flat, dim=0) if len(flat) > 1 else flat[0].copy()

    def unflatten(self, flat):
        self._resolve()
        out, offset = [], 0
        for shape, n in zip(self.shapes, self.sizes):
            out.append(flat[offset:offset + n].reshape(shape))
            offset += n
        return out

    def flat_weights(self):
        return self.flatten(self.weights())

    def set_flat(self, flat):
        self.set_weights(self.unflatten(flat))

    def evaluate_flat(self, flat=None):
        """``(loss as a float, flat gradient)`` at ``flat`` (default: the current weights);
        the loss is copied to the host, which the line searches need."""
        if flat is not None:
            self.set_flat(flat)
        loss, grads = self.evaluate()
        return float(loss.asscalar()), self.flatten(grads)

    def flat_hvp(self, flat_w, flat_v, eps=None):
        """``H v`` for flat vectors at the flat point ``flat_w`` (model left at ``flat_w``)."""
        out = self.hvp(self.unflatten(flat_v), weights=self.unflatten(flat_w), eps=eps)
        return self.flatten(out)
