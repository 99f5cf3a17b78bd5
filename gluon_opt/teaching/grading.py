"""Checkers for graded exercises: what the course's autograded test cells call.

Each checker raises ``AssertionError`` with the explanation a teaching assistant would give,
and returns a short verdict string when the work is right:

* ``check_optimizer(student, reference='gluon_opt.adam', hyper=..., steps=..., seeds=...)``
  runs the student's optimizer beside the reference on random noisy quadratics
  (``checking.compare_optimizers``) and, on a mismatch, reports the relative error,
  the first step where the weights diverged, and the likely cause: it replays a list of
  typical mistakes planted into the reference (missing bias correction, weight decay applied
  twice or not at all, epsilon inside the square root, state not updated in place, ...) and
  names the one whose trajectory the student's matches;
* ``check_bias_correction(fn)``, ``check_newton_step(fn)``, ``check_clip(fn)`` (global-norm
  gradient clipping), ``check_schedule(fn)`` (warmup + cosine learning rate): the same for
  functions;
* ``check_learning_rate(lr, ...)``: trains a small MLP on a Fashion-MNIST subset with a fixed
  step budget and asserts the test accuracy reaches the target;
* ``check_quiz(question_id, answer)`` (the quiz bank) and ``check_choice`` /
  ``check_number`` (answers kept in a test cell, e.g. in nbgrader's hidden tests).

A checker given ``None`` (an exercise left as released) raises ``NotImplementedError``, so an
unanswered exercise fails the same way as an unimplemented one.
"""
import time

import numpy as np
import mxnet as mx

from . import quiz
from .checking import compare_optimizers
from .landscapes import make_optimizer
from ..optimizers import resolve
from ..optimizers.base import bias_corrections, couple_weight_decay

__all__ = ['check_optimizer', 'diagnose', 'Mistake', 'mistakes_for', 'resolve_reference',
           'check_bias_correction', 'check_newton_step', 'logistic_regression',
           'check_learning_rate', 'train_mlp', 'check_quiz', 'check_choice', 'check_number',
           'Check', 'CHECKS', 'FUNCTIONS', 'observe', 'judge', 'StudentError',
           'check_clip', 'check_schedule']

#: the default comparison: two tensors (a matrix and a vector), each its own parameter index.
DEFAULT_SHAPES = ((4, 3), (5,))


def _not_answered(what):
    raise NotImplementedError('%s is not answered yet: replace None with your answer.' % what)


# ---------------------------------------------------------------------------------------
# References

def resolve_reference(reference):
    """The reference optimizer class for a name (``'gluon_opt.adam'`` or ``'adam'``), a
    class, or an instance's class."""
    if isinstance(reference, mx.optimizer.Optimizer):
        return type(reference)
    if isinstance(reference, type):
        return reference
    try:
        return mx.optimizer.Optimizer.opt_registry[resolve(reference)]
    except ValueError as err:
        raise ValueError('unknown reference optimizer %r: %s' % (reference, err)) from None


# ---------------------------------------------------------------------------------------
# Typical mistakes, planted into the reference

class Mistake(object):
    """A typical mistake: ``key``, the ``cause`` as a TA would name it, a ``hint`` on how to
    fix it, and ``make(reference_cls, hyper)`` returning the reference with the mistake
    planted (a subclass), or None where the mistake cannot show with these hyperparameters."""

    def __init__(self, key, cause, hint, make):
        self.key, self.cause, self.hint, self.make = key, cause, hint, make

    def __repr__(self):
        return 'Mistake(%r)' % self.key


def _subclass(ref, key, **methods):
    # fused_op = None: the planted step must run, not the reference's fused kernel
    return type('%s_%s' % (ref.__name__, key.replace(' ', '_')), (ref,),
                dict(methods, fused_op=None))


def _state_copies(ref, hyper):
    def step(self, weight, grad, state, lr, wd, t):
        ref.step(self, weight, grad, [s.copy() for s in state], lr, wd, t)
    return _subclass(ref, 'state_not_in_place', step=step)


def _wd_twice(ref, hyper):
    if not hyper.get('wd'):
        return None

    def step(self, weight, grad, state, lr, wd, t):
        ref.step(self, weight, grad + wd * weight, state, lr, wd, t)
    return _subclass(ref, 'wd_twice', step=step)


def _wd_ignored(ref, hyper):
    if not hyper.get('wd'):
        return None

    def step(self, weight, grad, state, lr, wd, t):
        ref.step(self, weight, grad, state, lr, 0.0, t)
    return _subclass(ref, 'wd_ignored', step=step)


def _adam_variant(key, denominator, corrected_mean=True):
    """An Adam-family mistake: replaces ``adam_step`` (so the weight decay of Adam or AdamW
    stays as the reference does it)."""
    def make(ref, hyper):
        if not hasattr(ref, 'adam_step') or hyper.get('amsgrad'):
            return None

        def adam_step(self, weight, grad, state, lr, t):
            var = self.update_moments(grad, state)
            bc1, bc2 = bias_corrections(self.beta1, self.beta2, t)
            mean = state[0] / bc1 if corrected_mean else state[0]
            weight[:] -= lr * mean / denominator(var, bc2, self.epsilon)
        return _subclass(ref, key, adam_step=adam_step)
    return make


def _rmsprop_variant(key, square_avg_update, denominator):
    def make(ref, hyper):
        if getattr(ref, 'name', None) != 'rmsprop' or hyper.get('centered') \
                or hyper.get('momentum'):
            return None

        def step(self, weight, grad, state, lr, wd, t):
            grad = couple_weight_decay(grad, weight, wd)
            square_avg = state[0]
            square_avg[:] = square_avg_update(self.rho, square_avg, mx.nd.square(grad))
            weight[:] -= lr * grad / denominator(square_avg, self.epsilon)
        return _subclass(ref, key, step=step)
    return make


def _momentum_variant(key, buffer_update):
    def make(ref, hyper):
        if not hyper.get('momentum') or hyper.get('nesterov') or hyper.get('dampening'):
            return None

        def step(self, weight, grad, state, lr, wd, t):
            grad = couple_weight_decay(grad, weight, wd)
            buf, = state
            buf[:] = buffer_update(self.momentum, buf, grad)
            weight[:] -= lr * buf
        return _subclass(ref, key, step=step)
    return make


_SQRT = mx.nd.sqrt

GENERIC_MISTAKES = [
    Mistake('state not updated in place',
            'the optimizer state is never updated: your state tensors keep their initial '
            'values, as if the step assigned a new array to a local name (`m = ...`) instead '
            'of writing into the state (`m[:] = ...`)',
            'write every state update in place, e.g. `mean[:] = beta1 * mean + (1 - beta1) * '
            'grad`', _state_copies),
    Mistake('weight decay applied twice',
            'weight decay is applied twice: your steps match the reference with `wd * w` '
            'added to the gradient once more',
            'the gradient gets `wd * w` once (or the weight is decayed once, for decoupled '
            'decay); check that you do not both add it yourself and call a helper that adds '
            'it', _wd_twice),
    Mistake('weight decay ignored',
            'weight decay is ignored: your steps match the reference run with wd = 0',
            'use the `wd` argument of `step`: add `wd * weight` to the gradient first',
            _wd_ignored),
]

ADAM_MISTAKES = [
    Mistake('missing bias correction',
            'missing bias correction: your steps match Adam without dividing m by '
            '(1 - beta1^t) and v by (1 - beta2^t)',
            'm and v start at zero, so early averages are too small; use m_hat = m / (1 - '
            'beta1**t) and v_hat = v / (1 - beta2**t) in the update, with t the 1-based step',
            _adam_variant('no bias correction',
                          lambda v, bc2, eps: _SQRT(v) + eps, corrected_mean=False)),
    Mistake('bias correction of m only',
            'incomplete bias correction: your steps match Adam with m bias-corrected but not v',
            'divide v by (1 - beta2**t) as well, before taking the square root',
            _adam_variant('m corrected only', lambda v, bc2, eps: _SQRT(v) + eps)),
    Mistake('bias correction of v only',
            'incomplete bias correction: your steps match Adam with v bias-corrected but not m',
            'divide m by (1 - beta1**t) as well',
            _adam_variant('v corrected only', lambda v, bc2, eps: _SQRT(v / bc2) + eps,
                          corrected_mean=False)),
    Mistake('epsilon inside the square root',
            'epsilon is inside the square root: your steps match sqrt(v_hat + eps) where the '
            'reference has sqrt(v_hat) + eps',
            'add epsilon after the square root: `nd.sqrt(v_hat) + epsilon`',
            _adam_variant('eps inside sqrt', lambda v, bc2, eps: _SQRT(v / bc2 + eps))),
]

RMSPROP_MISTAKES = [
    Mistake('epsilon inside the square root',
            'epsilon is inside the square root: your steps match sqrt(v + eps) where the '
            'reference has sqrt(v) + eps (MXNet 1.9\'s built-in rmsprop does that; PyTorch and '
            'this course do not)',
            'add epsilon after the square root: `nd.sqrt(square_avg) + epsilon`',
            _rmsprop_variant('eps inside sqrt', lambda rho, v, g2: rho * v + (1 - rho) * g2,
                             lambda v, eps: _SQRT(v + eps))),
    Mistake('rho and 1 - rho swapped',
            'the decay rates are swapped: your steps match v <- (1 - rho) * v + rho * g^2',
            'the old average keeps the weight rho: `v[:] = rho * v + (1 - rho) * g**2`',
            _rmsprop_variant('rho swapped', lambda rho, v, g2: (1 - rho) * v + rho * g2,
                             lambda v, eps: _SQRT(v) + eps)),
    Mistake('sum instead of a moving average',
            'the squared gradients are summed (AdaGrad), not averaged: your steps match '
            'v <- v + g^2',
            'decay the old average: `v[:] = rho * v + (1 - rho) * g**2`',
            _rmsprop_variant('sum of squares', lambda rho, v, g2: v + g2,
                             lambda v, eps: _SQRT(v) + eps)),
]

MOMENTUM_MISTAKES = [
    Mistake('momentum ignored',
            'the momentum buffer is not used: your steps match plain gradient descent',
            'step along the velocity: `buf[:] = momentum * buf + grad`, then `w -= lr * buf`',
            _momentum_variant('no momentum', lambda mu, buf, g: g)),
    Mistake('dampened momentum',
            'the velocity is an average, not a sum: your steps match buf <- mu * buf + '
            '(1 - mu) * g (dampening = momentum), which shrinks the steps by (1 - mu)',
            'the heavy-ball velocity adds the full gradient: `buf[:] = momentum * buf + grad`',
            _momentum_variant('dampened', lambda mu, buf, g: mu * buf + (1 - mu) * g)),
    Mistake('velocity with a minus sign',
            'the gradient enters the velocity with the wrong sign: your steps match '
            'buf <- mu * buf - g, which climbs the loss',
            'with `w -= lr * buf`, the velocity accumulates +grad',
            _momentum_variant('minus sign', lambda mu, buf, g: mu * buf - g)),
]


def _weight_decay(ref, hyper):
    """The weight decay the reference runs with (AdamW's default is not 0)."""
    try:
        return float(make_optimizer(ref, **hyper).wd)
    except Exception:  # noqa: BLE001 (hyperparameters the reference refuses: no diagnosis)
        return 0.0


def _decoupled_variant(name, key, step, needs_wd=True):
    """A mistake of an optimizer with decoupled weight decay (``name``: 'adamw' or 'lion'):
    ``step`` replaces the reference's."""
    def make(ref, hyper):
        if getattr(ref, 'name', None) != name or hyper.get('amsgrad'):
            return None
        if needs_wd and not _weight_decay(ref, hyper):
            return None
        return _subclass(ref, key, step=step)
    return make


def _adamw_coupled(self, weight, grad, state, lr, wd, t):
    self.adam_step(weight, grad + wd * weight, state, lr, t)


def _adamw_unscaled(self, weight, grad, state, lr, wd, t):
    weight[:] = weight * (1.0 - wd)
    self.adam_step(weight, grad, state, lr, t)


def _adamw_after(self, weight, grad, state, lr, wd, t):
    self.adam_step(weight, grad, state, lr, t)
    weight[:] = weight * (1.0 - lr * wd)


def _adamw_ignored(self, weight, grad, state, lr, wd, t):
    self.adam_step(weight, grad, state, lr, t)


_DECOUPLED_HINT = ('decoupled weight decay shrinks the weight itself, by the learning rate '
                   'times wd, and leaves the gradient alone: `weight[:] = weight * (1 - lr * '
                   'wd)`')

ADAMW_MISTAKES = [
    Mistake('coupled (L2) weight decay',
            'the weight decay is coupled (L2): your steps match Adam with `wd * w` added to '
            'the gradient, which then goes through the moments and is divided by sqrt(v_hat) '
            'like the rest of the gradient',
            'AdamW does not touch the gradient; ' + _DECOUPLED_HINT,
            _decoupled_variant('adamw', 'coupled decay', _adamw_coupled)),
    Mistake('decay not scaled by the learning rate',
            'the decay is not multiplied by the learning rate: your steps match '
            'w <- w * (1 - wd) where AdamW (as PyTorch) has w <- w * (1 - lr * wd)',
            _DECOUPLED_HINT, _decoupled_variant('adamw', 'unscaled decay', _adamw_unscaled)),
    Mistake('decay after the Adam step',
            'the weight is decayed after the Adam step: your steps match w <- (w - lr * '
            'update) * (1 - lr * wd); AdamW decays the weight the step starts from',
            'decay first, `weight[:] = weight * (1 - lr * wd)`, then subtract the Adam step',
            _decoupled_variant('adamw', 'decay after', _adamw_after)),
    Mistake('weight decay ignored',
            'weight decay is ignored: your steps match the reference run with wd = 0',
            'use the `wd` argument of `step`: ' + _DECOUPLED_HINT,
            _decoupled_variant('adamw', 'wd ignored', _adamw_ignored)),
]


def _lion_step(direction, track=None, decay='decoupled'):
    """A Lion step with a planted mistake: ``direction(self, m, g)`` the update direction
    from the momentum before the step, ``track(self, m, g)`` the new momentum (default: with
    beta2, as Lion), ``decay`` 'decoupled' (as Lion), 'unscaled' (``w * (1 - wd)``),
    'coupled' (``wd * w`` added to the gradient) or 'none'."""
    def step(self, weight, grad, state, lr, wd, t):
        exp_avg, = state
        if decay == 'coupled':
            grad = grad + wd * weight
        d = direction(self, exp_avg, grad)
        if decay == 'decoupled':
            weight[:] = weight * (1.0 - lr * wd)
        elif decay == 'unscaled':
            weight[:] = weight * (1.0 - wd)
        weight[:] -= lr * d
        exp_avg[:] = track(self, exp_avg, grad) if track else \
            self.beta2 * exp_avg + (1 - self.beta2) * grad
    return step


def _lion_direction(self, m, g):
    return mx.nd.sign(self.beta1 * m + (1 - self.beta1) * g)


def _lion_momentum_first(self, weight, grad, state, lr, wd, t):
    exp_avg, = state
    exp_avg[:] = self.beta2 * exp_avg + (1 - self.beta2) * grad
    direction = mx.nd.sign(self.beta1 * exp_avg + (1 - self.beta1) * grad)
    weight[:] = weight * (1.0 - lr * wd)
    weight[:] -= lr * direction


def _lion_signum(self, weight, grad, state, lr, wd, t):
    exp_avg, = state
    exp_avg[:] = self.beta2 * exp_avg + (1 - self.beta2) * grad
    weight[:] = weight * (1.0 - lr * wd)
    weight[:] -= lr * mx.nd.sign(exp_avg)


LION_MISTAKES = [
    Mistake('betas swapped',
            'beta1 and beta2 are swapped: your steps match the direction sign(beta2 * m + '
            '(1 - beta2) * g) and the momentum m <- beta1 * m + (1 - beta1) * g',
            'beta1 interpolates the direction, `sign(beta1 * m + (1 - beta1) * g)`; beta2 (the '
            'slower one) tracks the momentum, `m[:] = beta2 * m + (1 - beta2) * g`',
            _decoupled_variant('lion', 'betas swapped', _lion_step(
                lambda self, m, g: mx.nd.sign(self.beta2 * m + (1 - self.beta2) * g),
                track=lambda self, m, g: self.beta1 * m + (1 - self.beta1) * g),
                needs_wd=False)),
    Mistake('momentum updated before the direction',
            'the momentum is updated before the direction is taken: your steps match '
            'sign(beta1 * m_new + (1 - beta1) * g) with m_new already including g',
            'take the direction from the old momentum, then update it: the interpolation '
            'sign(beta1 * m + (1 - beta1) * g) uses m as it was before this step',
            _decoupled_variant('lion', 'momentum first', _lion_momentum_first,
                               needs_wd=False)),
    Mistake('sign of the momentum alone',
            'the direction is the sign of the updated momentum (signum): your steps match '
            'sign(m) with m <- beta2 * m + (1 - beta2) * g, without Lion\'s interpolation',
            'Lion steps along sign(beta1 * m + (1 - beta1) * g), with m from before the step, '
            'and only then updates m with beta2',
            _decoupled_variant('lion', 'signum', _lion_signum, needs_wd=False)),
    Mistake('sign of the gradient alone',
            'the momentum is not used in the direction: your steps match sign(g) (signSGD)',
            'interpolate first: `sign(beta1 * m + (1 - beta1) * g)`',
            _decoupled_variant('lion', 'sign of g', _lion_step(
                lambda self, m, g: mx.nd.sign(g)), needs_wd=False)),
    Mistake('no sign',
            'the sign is missing: your steps match w <- w - lr * (beta1 * m + (1 - beta1) * g)',
            'every coordinate moves by exactly lr: take `nd.sign(...)` of the interpolation',
            _decoupled_variant('lion', 'no sign', _lion_step(
                lambda self, m, g: self.beta1 * m + (1 - self.beta1) * g), needs_wd=False)),
    Mistake('coupled (L2) weight decay',
            'the weight decay is coupled (L2): your steps match Lion with `wd * w` added to '
            'the gradient (where the sign swallows its size) instead of shrinking the weight',
            'leave the gradient alone; ' + _DECOUPLED_HINT,
            _decoupled_variant('lion', 'coupled decay', _lion_step(
                _lion_direction, decay='coupled'))),
    Mistake('decay not scaled by the learning rate',
            'the decay is not multiplied by the learning rate: your steps match '
            'w <- w * (1 - wd) where Lion has w <- w * (1 - lr * wd)',
            _DECOUPLED_HINT, _decoupled_variant('lion', 'unscaled decay', _lion_step(
                _lion_direction, decay='unscaled'))),
    Mistake('weight decay ignored',
            'weight decay is ignored: your steps match the reference run with wd = 0',
            'use the weight decay: ' + _DECOUPLED_HINT,
            _decoupled_variant('lion', 'wd ignored', _lion_step(
                _lion_direction, decay='none'))),
]


def mistakes_for(reference):
    """The typical mistakes worth trying for a reference optimizer class."""
    ref = resolve_reference(reference)
    out = []
    if hasattr(ref, 'adam_step'):
        out += ADAM_MISTAKES
    if getattr(ref, 'name', None) == 'adamw':
        out += ADAMW_MISTAKES
    if getattr(ref, 'name', None) == 'rmsprop':
        out += RMSPROP_MISTAKES
    if getattr(ref, 'name', None) == 'sgd':
        out += MOMENTUM_MISTAKES
    if getattr(ref, 'name', None) == 'lion':
        out += LION_MISTAKES
    return out + GENERIC_MISTAKES


def _states_never_change(student, hyper, shapes, seed):
    """True when the student's state tensors exist and keep their initial values over a few
    updates (the direct symptom of state not updated in place)."""
    rng = np.random.RandomState(seed)
    opt = make_optimizer(student, **hyper)
    changed = seen = False
    for i, shape in enumerate(shapes):
        w = mx.nd.array(rng.randn(*shape))
        state = opt.create_state_multi_precision(i, w)
        flat = [s for s in (state if isinstance(state, (list, tuple)) else [state])
                if isinstance(s, mx.nd.NDArray)]
        before = [s.asnumpy().copy() for s in flat]
        for _ in range(3):
            opt.update_multi_precision(i, w, mx.nd.array(rng.randn(*shape)), state)
        seen = seen or bool(flat)
        changed = changed or any(not np.array_equal(b, s.asnumpy())
                                 for b, s in zip(before, flat))
    return seen and not changed


def diagnose(student, reference, hyper, steps=50, shapes=DEFAULT_SHAPES, seed=0, rtol=1e-5):
    """The ``Mistake`` whose planted version the student's optimizer matches, or None."""
    ref = resolve_reference(reference)
    for mistake in mistakes_for(ref):
        variant = mistake.make(ref, hyper)
        if variant is None:
            continue
        try:
            report = compare_optimizers(student, variant, steps=steps, shapes=shapes,
                                        seed=seed, rtol=rtol, **hyper)
        except Exception:  # noqa: BLE001 (a diagnosis must never hide the real failure)
            continue
        if report.passed:
            return mistake
    try:
        if _states_never_change(student, hyper, shapes, seed):
            return GENERIC_MISTAKES[0]
    except Exception:  # noqa: BLE001
        pass
    return None


def _label(opt):
    if isinstance(opt, str):
        return opt
    return getattr(opt, '__name__', type(opt).__name__)


def _hyper_text(hyper):
    return ', '.join('%s=%r' % kv for kv in sorted(hyper.items())) or 'the defaults'


# ---------------------------------------------------------------------------------------
# Reference answers and typical mistakes of the function exercises

def _debias_reference(m, v, beta1, beta2, t):
    bc1, bc2 = bias_corrections(beta1, beta2, t)
    return m / bc1, v / bc2


_DEBIAS_MISTAKES = [
    ('t counted from 0', 'you seem to count steps from 0: the first step is t = 1',
     lambda m, v, b1, b2, t: _debias_reference(m, v, b1, b2, t - 1)),
    ('m only', 'only m is corrected: divide v by (1 - beta2**t) too',
     lambda m, v, b1, b2, t: (m / (1 - b1 ** t), v)),
    ('v only', 'only v is corrected: divide m by (1 - beta1**t) too',
     lambda m, v, b1, b2, t: (m, v / (1 - b2 ** t))),
    ('multiplied', 'you multiply by (1 - beta**t); the correction divides by it',
     lambda m, v, b1, b2, t: (m * (1 - b1 ** t), v * (1 - b2 ** t))),
    ('betas swapped', 'beta1 and beta2 are swapped: m goes with beta1, v with beta2',
     lambda m, v, b1, b2, t: (m / (1 - b2 ** t), v / (1 - b1 ** t))),
    ('beta not powered', 'beta must be raised to the power t: (1 - beta1**t), not (1 - beta1)',
     lambda m, v, b1, b2, t: (m / (1 - b1), v / (1 - b2))),
]


def _as_numpy(x):
    if isinstance(x, mx.nd.NDArray):
        return x.asnumpy().astype(np.float64)
    return np.asarray(x, dtype=np.float64)


def logistic_regression(n=200, dim=3, l2=0.1, seed=0):
    """A small L2-regularised logistic regression: returns ``(loss, grad, hess, w0)``,
    functions of the weight vector (NumPy float64) and a start point."""
    rng = np.random.RandomState(seed)
    X = np.hstack([rng.randn(n, dim - 1), np.ones((n, 1))])
    w_true = rng.randn(dim) * 2
    y = (rng.rand(n) < 1 / (1 + np.exp(-X @ w_true))).astype(np.float64)

    def loss(w):
        z = X @ w
        return float(np.mean(np.logaddexp(0, z) - y * z) + 0.5 * l2 * w @ w)

    def grad(w):
        p = 1 / (1 + np.exp(-X @ w))
        return X.T @ (p - y) / n + l2 * w

    def hess(w):
        p = 1 / (1 + np.exp(-X @ w))
        return (X * (p * (1 - p))[:, None]).T @ X / n + l2 * np.eye(dim)
    return loss, grad, hess, np.zeros(dim)


def _random_quadratic(rng, dim):
    q, _ = np.linalg.qr(rng.randn(dim, dim))
    A = q @ np.diag(rng.uniform(0.1, 10.0, dim)) @ q.T
    b = rng.randn(dim)
    return A, b  # f(w) = 0.5 w'Aw - b'w, minimum at A^-1 b


_NEWTON_MISTAKES = [
    ('sign', 'the step goes the wrong way: w - H^-1 g, not w + H^-1 g',
     lambda w, g, H: w + np.linalg.solve(H, g)),
    ('gradient step', 'this is a gradient step (w - g): multiply by the inverse Hessian',
     lambda w, g, H: w - g),
    ('H times g', 'you multiplied by the Hessian (H @ g); Newton divides by it: '
     'solve H d = g (np.linalg.solve(H, g))', lambda w, g, H: w - H @ g),
    ('diagonal', 'only the Hessian\'s diagonal is used (g / diag(H)): use the whole matrix',
     lambda w, g, H: w - g / np.diag(H)),
]


# ---------------------------------------------------------------------------------------
# Every check in three parts, so that a grader can keep the verdict away from student code
#
#   problem(**constants) -> (public, private)   the test instances; ``public`` is all the
#                                               student's side sees (no expected answers)
#   observe(student, public) -> observation     runs the student's code on the instances;
#                                               JSON-able (numbers, lists, strings)
#   judge(observation, public, private, **constants) -> verdict, or AssertionError
#
# ``check_*`` in a notebook runs the three in one process. ``gluon-opt assignment grade`` runs
# ``observe`` in the student's sandbox and ``problem``/``judge`` in its own process, which
# never executes student code (course/ASSIGNMENTS.md, "How a verdict is reached").

class StudentError(AssertionError):
    """The student's code raised while the grader observed it (the message is its error)."""


def _error_text(err):
    text = str(err)
    return '%s: %s' % (type(err).__name__, text) if text else type(err).__name__


def _array(x):
    """A JSON-able array: ``{'shape': [...], 'data': [...]}`` (float64 values)."""
    a = _as_numpy(x)
    return {'shape': list(a.shape), 'data': [float(v) for v in a.ravel()]}


def _from_json(obj, what='array'):
    try:
        shape = tuple(int(d) for d in obj['shape'])
        a = np.asarray(obj['data'], dtype=np.float64)
        return a.reshape(shape)
    except Exception:  # noqa: BLE001 (malformed observations come from the student's side)
        raise AssertionError('the grader could not read the %s your code produced' % what)


def _observation_error(observation):
    if not isinstance(observation, dict):
        raise AssertionError('the grader could not read what your code produced')
    if 'error' in observation:
        raise StudentError(str(observation['error']))


# check_optimizer -------------------------------------------------------------------------

def _optimizer_problem(reference='gluon_opt.adam', hyper=None, steps=40, seeds=(0, 1),
                       rtol=1e-5, shapes=DEFAULT_SHAPES, diagnose_steps=20, dtype='float32'):
    """Run the reference on one noisy quadratic per setting and seed (as
    ``checking.compare_optimizers``: gradients at the reference's weights). Public: start
    weights and the gradient of every step; private: the reference's weights."""
    settings = hyper if isinstance(hyper, (list, tuple)) else [hyper or {}]
    ref = resolve_reference(reference)
    public, private = [], []
    for h in settings:
        h = dict(h)
        for seed in seeds:
            rng = np.random.RandomState(seed)
            opt = make_optimizer(ref, **h)
            starts = [rng.randn(*s) for s in shapes]
            curvature = [rng.uniform(0.1, 3.0, size=s) for s in shapes]
            centre = [rng.randn(*s) for s in shapes]
            w_ref = [mx.nd.array(w, dtype=dtype) for w in starts]
            states = [opt.create_state_multi_precision(i, w) for i, w in enumerate(w_ref)]
            grads, weights = [], []
            for _ in range(int(steps)):
                step = []
                for i, shape in enumerate(shapes):
                    w = w_ref[i].asnumpy().astype(np.float64)
                    g = mx.nd.array(curvature[i] * (w - centre[i]) + 0.1 * rng.randn(*shape),
                                    dtype=dtype)
                    opt.update_multi_precision(i, w_ref[i], g, states[i])
                    step.append(g.asnumpy().astype(np.float64).ravel().tolist())
                grads.append(step)
                weights.append([w.asnumpy().astype(np.float64) for w in w_ref])
            public.append({'hyper': h, 'seed': int(seed), 'dtype': dtype,
                           'shapes': [list(s) for s in shapes],
                           'starts': [s.ravel().tolist() for s in starts], 'grads': grads})
            private.append(weights)
    return public, private


def _replay(optimizer, case):
    """Weights after every step of ``optimizer`` fed the case's gradients (and whether its
    state tensors changed, the symptom of state not updated in place)."""
    shapes = [tuple(s) for s in case['shapes']]
    dtype = case['dtype']
    opt = make_optimizer(optimizer, **case['hyper'])
    w = [mx.nd.array(np.asarray(s, dtype=np.float64).reshape(shape), dtype=dtype)
         for s, shape in zip(case['starts'], shapes)]
    states = [opt.create_state_multi_precision(i, x) for i, x in enumerate(w)]
    flat = [[s for s in (st if isinstance(st, (list, tuple)) else [st])
             if isinstance(s, mx.nd.NDArray)] for st in states]
    before = [[s.asnumpy().copy() for s in f] for f in flat]
    out = []
    for step in case['grads']:
        for i, shape in enumerate(shapes):
            g = mx.nd.array(np.asarray(step[i], dtype=np.float64).reshape(shape), dtype=dtype)
            opt.update_multi_precision(i, w[i], g, states[i])
        out.append([x.asnumpy().astype(np.float64) for x in w])
    has_state = any(flat)
    changed = any(not np.array_equal(b, s.asnumpy())
                  for bs, f in zip(before, flat) for b, s in zip(bs, f))
    return out, has_state, changed


def _optimizer_observe(student, public):
    if student is None:
        _not_answered('the optimizer')
    cases = []
    for case in public:
        weights, has_state, changed = _replay(student, case)
        cases.append({'weights': [[_array(x) for x in step] for step in weights],
                      'has_state': bool(has_state), 'states_changed': bool(changed)})
    return {'label': _label(student), 'cases': cases}


def _errors(mine, ref):
    errors = []
    for a, b in zip(mine, ref):
        diff = max(float(np.max(np.abs(x - y))) if x.size else 0.0 for x, y in zip(a, b))
        scale = max(float(np.max(np.abs(y))) if y.size else 0.0 for y in b)
        errors.append(diff / max(scale, 1e-30) if np.isfinite(diff) else np.inf)
    return np.asarray(errors)


def _read_weights(case, public_case, steps):
    shapes = [tuple(s) for s in public_case['shapes']]
    try:
        weights = case['weights']
        if len(weights) != steps or any(len(step) != len(shapes) for step in weights):
            raise ValueError
        out = [[_from_json(x, 'weights') for x in step] for step in weights]
        if any(x.shape != s for step in out for x, s in zip(step, shapes)):
            raise ValueError
        return out
    except (AssertionError, ValueError, KeyError, TypeError):
        raise AssertionError('the grader could not read the weights your optimizer produced '
                             '(%d steps of tensors of shapes %s expected)'
                             % (steps, ', '.join(str(s) for s in shapes)))


def _diagnose_replayed(ref, public_case, mine, n, rtol):
    """The planted mistake whose replay on the same gradients matches ``mine`` over the
    first ``n`` steps, or None."""
    short = dict(public_case, grads=public_case['grads'][:n])
    for mistake in mistakes_for(ref):
        variant = mistake.make(ref, public_case['hyper'])
        if variant is None:
            continue
        try:
            planted, _, _ = _replay(variant, short)
        except Exception:  # noqa: BLE001 (a diagnosis must never hide the real failure)
            continue
        if np.all(_errors(mine[:n], planted) <= rtol):
            return mistake
    return None


def _optimizer_judge(observation, public, private, reference='gluon_opt.adam', hyper=None,
                     steps=40, seeds=(0, 1), rtol=1e-5, shapes=DEFAULT_SHAPES,
                     diagnose_steps=20, dtype='float32'):
    _observation_error(observation)
    ref = resolve_reference(reference)
    label = str(observation.get('label', 'your optimizer'))[:80]
    cases = observation.get('cases')
    if not isinstance(cases, list) or len(cases) != len(public):
        raise AssertionError('the grader could not read the results of your optimizer')
    settings = hyper if isinstance(hyper, (list, tuple)) else [hyper or {}]
    for case, pub, ref_weights in zip(cases, public, private):
        mine = _read_weights(case, pub, int(steps))
        errors = _errors(mine, ref_weights)
        bad = np.nonzero(~(errors <= rtol))[0]  # NaN counts as a failure
        if not bad.size:
            continue
        k = int(bad[0]) + 1
        err = errors[k - 1]
        # A planted mistake that explains the first 20 steps explains the failure
        mistake = _diagnose_replayed(ref, pub, mine, max(k, min(int(steps), diagnose_steps)),
                                     rtol)
        if mistake is None and case.get('has_state') and not case.get('states_changed'):
            mistake = GENERIC_MISTAKES[0]
        h = pub['hyper']
        head = '%s does not update the weights as %s does' % (label, _label(reference))
        lines = [head + (': likely cause, %s.' % mistake.key if mistake else '.'),
                 'Test problem: noisy quadratic (seed %d), tensors of shapes %s, %d steps, '
                 'with %s.' % (pub['seed'], ', '.join(str(tuple(s)) for s in pub['shapes']),
                               steps, _hyper_text(h))]
        if not np.isfinite(err):
            lines.append('At step %d your weights became inf or NaN.' % k)
        else:
            lines.append('The weights first differ at step %d: relative error %.2e '
                         '(allowed %.0e); the largest over %d steps is %.2e.'
                         % (k, err, rtol, steps, np.nanmax(np.where(
                             np.isfinite(errors), errors, np.nan))))
        if k == 1:
            lines.append('Already the first step differs, so the update rule itself '
                         'differs (not only how the state evolves).')
        else:
            lines.append('Step 1 agrees, so the rule is right at the start: look at how '
                         'the state carries over from one step to the next, or at what '
                         'depends on the step count t.')
        if mistake is not None:
            lines.append('Likely cause: %s.' % mistake.cause)
            lines.append('Hint: %s.' % mistake.hint)
        else:
            lines.append('None of the typical mistakes I know explains it: compare your '
                         'step with the update rule in the docstring of %s, line by line.'
                         % _label(reference))
        raise AssertionError('\n'.join(lines))
    return 'PASS: %s matches %s (%d setting%s x %d seeds x %d steps).' % (
        label, _label(reference), len(settings), 's' if len(settings) > 1 else '',
        len(seeds), steps)


# check_bias_correction --------------------------------------------------------------------

def _debias_problem(trials=20, seed=0, rtol=1e-5):
    rng = np.random.RandomState(seed)
    cases = []
    for _ in range(trials):
        shape = (int(rng.randint(1, 5)), int(rng.randint(1, 5)))
        m, v = rng.randn(*shape), rng.rand(*shape)
        b1, b2 = float(rng.uniform(0.5, 0.95)), float(rng.uniform(0.9, 0.9999))
        t = int(rng.choice([1, 2, 3, 10, 100]))
        cases.append({'m': _array(m), 'v': _array(v), 'beta1': b1, 'beta2': b2, 't': t})
    return cases, None


def _debias_observe(fn, public):
    if fn is None:
        _not_answered('the bias correction')
    out = []
    for case in public:
        m, v = _from_json(case['m']), _from_json(case['v'])
        got = fn(mx.nd.array(m), mx.nd.array(v), case['beta1'], case['beta2'], case['t'])
        if not isinstance(got, (tuple, list)) or len(got) != 2:
            out.append({'not_a_pair': type(got).__name__})
            break
        out.append({'result': [_array(x) for x in got]})
    return {'cases': out}


def _debias_judge(observation, public, private, trials=20, seed=0, rtol=1e-5):
    _observation_error(observation)
    results = observation.get('cases')
    if not isinstance(results, list) or not results or len(results) > len(public):
        raise AssertionError('the grader could not read what bias_correct returned')
    for case, result in zip(public, results):
        if 'not_a_pair' in result:
            raise AssertionError('bias_correct must return two arrays, (m_hat, v_hat); got %r'
                                 % (str(result['not_a_pair'])[:80],))
        m, v = _from_json(case['m']), _from_json(case['v'])
        b1, b2, t = case['beta1'], case['beta2'], case['t']
        got = [_from_json(x, 'arrays') for x in result.get('result', [])][:2]
        if len(got) != 2:
            raise AssertionError('the grader could not read what bias_correct returned')
        want = _debias_reference(m, v, b1, b2, t)
        if all(g.shape == w.shape and np.allclose(g, w, rtol=rtol, atol=1e-6)
               for g, w in zip(got, want)):
            continue
        lines = ['bias_correct(m, v, beta1=%.4g, beta2=%.4g, t=%d) is wrong.' % (b1, b2, t)]
        for name, g, w in zip(('m_hat', 'v_hat'), got, want):
            if g.shape != w.shape:
                lines.append('%s has shape %s, expected %s.' % (name, g.shape, w.shape))
            else:
                rel = np.max(np.abs(g - w)) / max(np.max(np.abs(w)), 1e-30)
                lines.append('%s: relative error %.2e%s' % (
                    name, rel, ' (correct)' if rel <= rtol else ''))
        for _key, cause, variant in _DEBIAS_MISTAKES:
            with np.errstate(all='ignore'):  # t - 1 = 0 divides by zero: inf, as theirs
                planted = variant(m, v, b1, b2, t)
            if all(g.shape == p.shape and np.allclose(g, p, rtol=rtol, atol=1e-6,
                                                      equal_nan=True)
                   for g, p in zip(got, planted)):
                lines.append('Likely cause: %s.' % cause)
                break
        raise AssertionError('\n'.join(lines))
    if len(results) < len(public):
        raise AssertionError('the grader could not read what bias_correct returned')
    return 'PASS: bias_correct matches m / (1 - beta1^t), v / (1 - beta2^t) on %d cases.' % trials


# check_newton_step ------------------------------------------------------------------------

def _newton_problem(trials=10, seed=0, rtol=1e-6):
    rng = np.random.RandomState(seed)
    cases = []
    for i in range(trials):
        dim = int(rng.randint(2, 6))
        A, b = _random_quadratic(rng, dim)
        w = rng.randn(dim)
        cases.append(('a random quadratic in %d dimensions (case %d)' % (dim, i),
                      w, A @ w - b, A))
    loss, grad, hess, w0 = logistic_regression(seed=seed)
    w = w0 + 0.5 * rng.randn(w0.size)
    cases.append(('the logistic regression of logistic_regression()', w, grad(w), hess(w)))
    return [{'what': what, 'w': _array(w), 'g': _array(g), 'H': _array(H)}
            for what, w, g, H in cases], None


def _newton_observe(fn, public):
    if fn is None:
        _not_answered('the Newton step')
    return {'results': [_array(fn(_from_json(c['w']), _from_json(c['g']), _from_json(c['H'])))
                        for c in public]}


def _newton_judge(observation, public, private, trials=10, seed=0, rtol=1e-6):
    _observation_error(observation)
    results = observation.get('results')
    if not isinstance(results, list) or len(results) != len(public):
        raise AssertionError('the grader could not read what newton_step returned')
    for case, result in zip(public, results):
        w, g, H = _from_json(case['w']), _from_json(case['g']), _from_json(case['H'])
        got = _from_json(result, 'new weights')
        want = w - np.linalg.solve(H, g)
        if got.shape == want.shape and np.allclose(got, want, rtol=rtol, atol=1e-9):
            continue
        lines = ['newton_step is wrong on %s.' % case['what']]
        if got.shape != want.shape:
            lines.append('It returned shape %s; expected %s (the new weights).'
                         % (got.shape, want.shape))
        else:
            lines.append('Relative error of the new weights: %.2e.'
                         % (np.max(np.abs(got - want)) / max(np.max(np.abs(want)), 1e-30)))
            for _key, cause, variant in _NEWTON_MISTAKES:
                if np.allclose(got, variant(w, g, H), rtol=rtol, atol=1e-9):
                    lines.append('Likely cause: %s.' % cause)
                    break
            if np.allclose(got, -np.linalg.solve(H, g), rtol=rtol, atol=1e-9):
                lines.append('Likely cause: you returned the step -H^-1 g; return the new '
                             'weights w - H^-1 g.')
        raise AssertionError('\n'.join(lines))
    return 'PASS: newton_step lands on the minimum of %d quadratics in one step and matches ' \
           'the reference on the logistic regression.' % trials


# check_clip ---------------------------------------------------------------------------------

def _global_norm(grads):
    return float(np.sqrt(sum(float(np.sum(np.square(g))) for g in grads)))


def _scaled(grads, norm, max_norm, always=False):
    """``grads`` scaled by ``max_norm / norm`` where ``norm > max_norm`` (or ``always``)."""
    with np.errstate(all='ignore'):
        scale = max_norm / norm if (always or norm > max_norm) else 1.0
        return [g * scale for g in grads]


def _clip_reference(grads, max_norm):
    return _scaled(grads, _global_norm(grads), max_norm)


def _rms(grads):
    return float(np.sqrt(np.mean(np.concatenate([np.square(g).ravel() for g in grads]))))


_CLIP_MISTAKES = [
    ('by value', 'you clip each element to [-max_norm, max_norm] (clipping by value), which '
     'turns the gradient; clipping by global norm multiplies every tensor by the same factor '
     'and keeps the direction', lambda gs, c: [np.clip(g, -c, c) for g in gs]),
    ('per tensor', 'each tensor is clipped by its own norm; the global norm is one number for '
     'all tensors together, the square root of the sum of all their squared elements',
     lambda gs, c: [_scaled([g], _global_norm([g]), c)[0] for g in gs]),
    ('always', 'you rescale to max_norm also when the gradient is already shorter: clipping '
     'only shrinks, a gradient whose global norm is at most max_norm stays as it is',
     lambda gs, c: _scaled(gs, _global_norm(gs), c, always=True)),
    ('squared norm', 'you use the squared norm (the sum of squares without its square root)',
     lambda gs, c: _scaled(gs, _global_norm(gs) ** 2, c)),
    ('sum of norms', 'your global norm adds the tensors\' norms; it is sqrt(sum_i |g_i|^2), '
     'the norm of all the tensors flattened into one vector',
     lambda gs, c: _scaled(gs, sum(_global_norm([g]) for g in gs), c)),
    ('largest norm', 'your global norm is the largest tensor\'s norm; it is sqrt(sum_i '
     '|g_i|^2), over all the tensors', lambda gs, c: _scaled(gs, max(
         [_global_norm([g]) for g in gs] or [0.0]), c)),
    ('inverted', 'the factor is inverted: multiply by max_norm / norm, not norm / max_norm',
     lambda gs, c: [g * (_global_norm(gs) / c if _global_norm(gs) > c else 1.0) for g in gs]),
    ('mean of squares', 'your norm averages the squares (a root mean square); the L2 norm sums '
     'them', lambda gs, c: _scaled(gs, _rms(gs), c)),
    ('unchanged', 'the gradients come back unchanged although their global norm is larger '
     'than max_norm', lambda gs, c: [g.copy() for g in gs]),
]


def _clip_problem(trials=10, seed=0, rtol=1e-5):
    """Public: lists of gradients (float64 NumPy arrays) and a ``max_norm`` each: a readable
    case (norms 3 and 4, global norm 5), one already short enough, all zeros, then random
    ones, each tensor's norm at least 0.5 (so a guard ``norm + 1e-6`` stays within ``rtol``)."""
    rng = np.random.RandomState(seed)
    cases = [('two tensors with norms 3 and 4',
              [np.array([1.8, 2.4]), np.array([[0.0, 0.0], [2.4, 3.2]])], 1.0),
             ('gradients with global norm 0.6, below max_norm', [
                 np.array([0.2, -0.4]), np.array([[0.4]])], 1.0),
             ('all-zero gradients (global norm 0)', [np.zeros(3), np.zeros((2, 2))], 0.5)]
    for i in range(int(trials)):
        grads = []
        for _ in range(int(rng.randint(1, 5))):
            shape = tuple(int(d) for d in rng.randint(1, 6, size=int(rng.randint(1, 3))))
            g = rng.randn(*shape)
            grads.append(g * (rng.uniform(0.5, 5.0) / max(np.linalg.norm(g), 1e-12)))
        ratio = float(rng.choice([0.1, 0.3, 0.7, 1.5, 3.0]))
        cases.append(('random gradients, %d tensor%s (case %d)' % (
            len(grads), 's' if len(grads) > 1 else '', i), grads,
            float('%.4g' % (ratio * _global_norm(grads)))))
    return [{'what': what, 'grads': [_array(g) for g in grads], 'max_norm': c}
            for what, grads, c in cases], None


def _clip_observe(fn, public):
    if fn is None:
        _not_answered('clip_global_norm')
    out = []
    for case in public:
        grads = [_from_json(g) for g in case['grads']]
        try:
            got = fn(grads, case['max_norm'])
        except NotImplementedError:
            raise
        except Exception as err:  # noqa: BLE001 (named with the case that raised it)
            out.append({'raised': _error_text(err)})
            break
        if not isinstance(got, (list, tuple)):
            out.append({'not_a_list': type(got).__name__})
            break
        out.append({'result': [_array(x) for x in got]})
    return {'cases': out}


def _clip_judge(observation, public, private, trials=10, seed=0, rtol=1e-5):
    _observation_error(observation)
    results = observation.get('cases')
    if not isinstance(results, list) or not results or len(results) > len(public):
        raise AssertionError('the grader could not read what clip_global_norm returned')
    for case, result in zip(public, results):
        grads = [_from_json(g) for g in case['grads']]
        c = float(case['max_norm'])
        where = '%s, max_norm=%g' % (case['what'], c)
        if not isinstance(result, dict):
            raise AssertionError('the grader could not read what clip_global_norm returned')
        if 'raised' in result:
            raise AssertionError('clip_global_norm raised %s on %s.%s' % (
                str(result['raised'])[:300], where,
                ' With a zero gradient there is nothing to clip: only scale when the norm '
                'exceeds max_norm.' if 'zero' in case['what'] else ''))
        if 'not_a_list' in result:
            raise AssertionError('clip_global_norm must return a list of arrays (the clipped '
                                 'gradients); it returned %s.' % str(result['not_a_list'])[:80])
        got = [_from_json(x, 'clipped gradients') for x in result.get('result', [])]
        want = _clip_reference(grads, c)
        if len(got) != len(want):
            raise AssertionError('clip_global_norm returned %d arrays for %d gradients (%s).'
                                 % (len(got), len(want), where))

        def close(a, b):
            return all(x.shape == y.shape and np.allclose(x, y, rtol=rtol, atol=1e-9 * c,
                                                          equal_nan=True)
                       for x, y in zip(a, b))
        if close(got, want):
            continue
        lines = ['clip_global_norm is wrong on %s (their global norm: %.4g).' % (
            where, _global_norm(grads))]
        for i, (x, y) in enumerate(zip(got, want)):
            if x.shape != y.shape:
                lines.append('Array %d has shape %s; expected %s (the gradient\'s shape).'
                             % (i, x.shape, y.shape))
                break
        else:
            lines.append('The global norm of what you returned: %.4g; expected %.4g.' % (
                _global_norm(got), _global_norm(want)))
            if not all(np.all(np.isfinite(x)) for x in got):
                lines.append('Your result has inf or NaN: the norm was divided by zero? Only '
                             'scale when the norm exceeds max_norm.')
            else:
                for _key, cause, variant in _CLIP_MISTAKES:
                    if close(got, variant(grads, c)):
                        lines.append('Likely cause: %s.' % cause)
                        break
        raise AssertionError('\n'.join(lines))
    if len(results) < len(public):
        raise AssertionError('the grader could not read what clip_global_norm returned')
    return ('PASS: clip_global_norm scales by max_norm / (global norm) exactly when the norm '
            'exceeds max_norm, on %d cases.' % len(public))


# check_schedule -----------------------------------------------------------------------------

def _warmup_cosine(t, base_lr, warmup, total, final_lr):
    """The course's warmup + cosine schedule at the 1-based update ``t``."""
    if t <= warmup:
        return base_lr * t / warmup
    if t <= total:
        return final_lr + 0.5 * (base_lr - final_lr) * (
            1 + np.cos(np.pi * (t - warmup) / (total - warmup)))
    return final_lr


def _cosine_from(t, b, w, T, f, start, length, period=1.0):
    return f + 0.5 * (b - f) * (1 + np.cos(period * np.pi * (t - start) / length))


def _after_warmup(decay):
    """A schedule that warms up correctly, then decays as ``decay(t, b, w, T, f)`` up to
    ``total`` and stays at ``final_lr`` after."""
    def lr(t, b, w, T, f):
        if t <= w:
            return b * t / w
        return decay(t, b, w, T, f) if t <= T else f
    return lr


_SCHEDULE_MISTAKES = [
    ('warmup from 0', 'the warmup starts at 0: your rate at step t is base_lr * (t - 1) / '
     'warmup; the first update (t = 1) already gets base_lr / warmup, and t = warmup gets '
     'base_lr', lambda t, b, w, T, f: b * (t - 1) / w if t <= w else _warmup_cosine(
         t, b, w, T, f)),
    ('counted from 0', 'you count the steps from 0: your schedule is one step ahead, '
     'lr(t + 1); step t is the t-th update, t = 1, 2, ...',
     lambda t, b, w, T, f: _warmup_cosine(t + 1, b, w, T, f)),
    ('one step late', 'your schedule is one step late, lr(t - 1): step t is the t-th '
     'update, t = 1, 2, ...', lambda t, b, w, T, f: _warmup_cosine(t - 1, b, w, T, f)),
    ('cosine over the whole run', 'the cosine runs over the whole run, cos(pi * t / total); '
     'it starts after the warmup: cos(pi * (t - warmup) / (total - warmup))',
     _after_warmup(lambda t, b, w, T, f: _cosine_from(t, b, w, T, f, 0, T))),
    ('cosine too long', 'the cosine is stretched over total steps, cos(pi * (t - warmup) / '
     'total), so it has not reached final_lr at the end; it lasts total - warmup steps',
     _after_warmup(lambda t, b, w, T, f: _cosine_from(t, b, w, T, f, w, T))),
    ('final_lr ignored', 'final_lr is ignored: your rate decays to 0; it should end at '
     'final_lr, final_lr + (base_lr - final_lr) * (1 + cos(...)) / 2',
     lambda t, b, w, T, f: _warmup_cosine(t, b, w, T, 0.0)),
    ('final_lr added', 'final_lr is added to the whole cosine: your decay starts at '
     'base_lr + final_lr; scale the cosine by (base_lr - final_lr)',
     _after_warmup(lambda t, b, w, T, f: f + 0.5 * b * (1 + np.cos(np.pi * (t - w) / (T - w))))),
    ('no floor', 'after total steps your rate follows the cosine back up; past the end of '
     'the schedule it stays at final_lr', lambda t, b, w, T, f: b * t / w if t <= w else
     _cosine_from(t, b, w, T, f, w, T - w)),
    ('full period', 'your cosine makes a full period, cos(2 pi ...), and comes back up; the '
     'decay is half a period, cos(pi * (t - warmup) / (total - warmup))',
     _after_warmup(lambda t, b, w, T, f: _cosine_from(t, b, w, T, f, w, T - w, 2.0))),
    ('linear', 'your decay is linear; it follows half a cosine, (1 + cos(pi * s)) / 2 for s '
     'from 0 to 1', _after_warmup(lambda t, b, w, T, f: f + (b - f) * (1 - (t - w) / (T - w)))),
]


def _schedule_problem(trials=4, seed=0, rtol=1e-6, extra=5):
    """Public: settings ``(base_lr, warmup, total, final_lr)`` and the steps to evaluate,
    ``t = 1 .. total + extra``: a readable one, one without warmup, then random ones."""
    rng = np.random.RandomState(seed)
    settings = [(0.1, 5, 50, 0.001), (0.05, 0, 40, 0.005)]
    for _ in range(int(trials)):
        base = float('%.2g' % 10 ** rng.uniform(-4, 0))
        warmup = int(rng.randint(1, 30))
        total = warmup + int(rng.randint(10, 150))
        final = float('%.2g' % (base * rng.uniform(0.001, 0.2))) if rng.rand() < 0.75 else 0.0
        settings.append((base, warmup, total, final))
    return [{'base_lr': b, 'warmup': w, 'total': T, 'final_lr': f,
             'steps': list(range(1, T + int(extra) + 1))} for b, w, T, f in settings], None


def _schedule_observe(fn, public):
    if fn is None:
        _not_answered('the schedule')
    out = []
    for case in public:
        values = []
        for t in case['steps']:
            try:
                value = fn(t, case['base_lr'], case['warmup'], case['total'], case['final_lr'])
            except NotImplementedError:
                raise
            except Exception as err:  # noqa: BLE001 (named with the step that raised it)
                out.append({'raised': _error_text(err), 'step': t})
                return {'cases': out}
            try:
                value = float(value)
                values.append(value if np.isfinite(value) else repr(value))
            except (TypeError, ValueError):
                values.append(repr(value)[:80])
        out.append({'values': values})
    return {'cases': out}


def _schedule_text(case):
    return 'base_lr=%g, warmup=%d, total=%d, final_lr=%g' % (
        case['base_lr'], case['warmup'], case['total'], case['final_lr'])


def _phase(t, case):
    if t <= case['warmup']:
        return 'in the warmup (t <= warmup)', \
            'during the warmup the rate rises linearly, base_lr * t / warmup, and reaches ' \
            'base_lr at t = warmup'
    if t <= case['total']:
        return 'in the cosine decay (warmup < t <= total)', \
            'after the warmup, lr = final_lr + (base_lr - final_lr) * (1 + cos(pi * (t - ' \
            'warmup) / (total - warmup))) / 2, from base_lr down to final_lr at t = total'
    return 'after the schedule (t > total)', 'after total steps the rate stays at final_lr'


def _schedule_judge(observation, public, private, trials=4, seed=0, rtol=1e-6, extra=5):
    _observation_error(observation)
    results = observation.get('cases')
    if not isinstance(results, list) or not results or len(results) > len(public):
        raise AssertionError('the grader could not read what your schedule returned')
    for case, result in zip(public, results):
        b, w, T, f = case['base_lr'], case['warmup'], case['total'], case['final_lr']
        if not isinstance(result, dict):
            raise AssertionError('the grader could not read what your schedule returned')
        if 'raised' in result:
            t = result.get('step')
            raise AssertionError('warmup_cosine(%s, %g, %d, %d, %g) raised %s.%s' % (
                t, b, w, T, f, str(result['raised'])[:300],
                ' With warmup = 0 there is no warmup: the cosine starts at the first step.'
                if w == 0 else ''))
        values = result.get('values')
        if not isinstance(values, list) or len(values) != len(case['steps']):
            raise AssertionError('the grader could not read what your schedule returned')
        steps = case['steps']
        want = np.array([_warmup_cosine(t, b, w, T, f) for t in steps])
        if any(not isinstance(v, (int, float)) for v in values):
            k = next(i for i, v in enumerate(values) if not isinstance(v, (int, float)))
            raise AssertionError('warmup_cosine(%d, %s) returned %s; expected a number (%.6g).'
                                 % (steps[k], _schedule_text(case), str(values[k])[:80],
                                    want[k]))
        got = np.array(values, dtype=np.float64)

        def close(a, b_):
            return np.abs(a - b_) <= rtol * np.abs(b_) + 1e-12 * b

        ok = close(got, want)
        if ok.all():
            continue
        k = int(np.nonzero(~ok)[0][0])
        where, how = _phase(steps[k], case)
        lines = ['warmup_cosine is wrong for %s: first at step t = %d, %s: you return %.6g, '
                 'expected %.6g.' % (_schedule_text(case), steps[k], where, got[k], want[k])]
        show = sorted(set(t for t in (1, 2, w, w + 1, (w + T) // 2, T, T + 1)
                          if 1 <= t <= steps[-1]))
        lines.append('Yours at t = %s: %s; expected: %s.' % (
            ', '.join(str(t) for t in show), ', '.join('%.4g' % got[t - 1] for t in show),
            ', '.join('%.4g' % want[t - 1] for t in show)))
        for _key, cause, variant in _SCHEDULE_MISTAKES:
            try:
                with np.errstate(all='ignore'):
                    planted = np.array([variant(t, b, w, T, f) for t in steps], dtype=float)
            except ZeroDivisionError:
                continue
            if close(got, planted).all():
                lines.append('Likely cause: %s.' % cause)
                break
        else:
            lines.append('Hint: %s.' % how)
        raise AssertionError('\n'.join(lines))
    if len(results) < len(public):
        raise AssertionError('the grader could not read what your schedule returned')
    return ('PASS: warmup_cosine matches the linear warmup and the cosine decay to final_lr '
            'on %d schedules, %d steps in all.' % (len(public), sum(len(c['steps'])
                                                                 for c in public)))


# Answers: a value --------------------------------------------------------------------------

def _value_problem(*args, **kwargs):
    return None, None


def _answer(value):
    """A JSON-able form of an answer: numbers and strings as they are, anything else as its
    repr (which then matches no expected answer)."""
    if value is None or isinstance(value, (bool, str)):
        return {'value': value if not isinstance(value, str) else value[:10000]}
    if isinstance(value, (int, float, np.integer, np.floating)):
        v = float(value)
        return {'value': v if np.isfinite(v) else repr(v)}
    return {'repr': repr(value)[:200]}


def _value_observe(what):
    def observe(answer, public):
        if answer is None:
            _not_answered(what)
        return _answer(answer)
    return observe


def _given(observation):
    """The answer as the student's code held it (a str, a number, or an object shown as
    ``_Repr``)."""
    _observation_error(observation)
    if 'value' in observation:
        return observation['value']
    return _Repr(str(observation.get('repr', '?')))


class _Repr(object):
    def __init__(self, text):
        self.text = text

    def __repr__(self):
        return self.text


# check_learning_rate

def _lr_judge(observation, public, private, optimizer='gluon_opt.sgd', target=0.75, epochs=3,
              **hyper):
    learning_rate = _given(observation)
    try:
        learning_rate = float(learning_rate)
    except (TypeError, ValueError):
        raise AssertionError('learning_rate must be a number, got %r' % (learning_rate,))
    if not learning_rate > 0:
        raise AssertionError('learning_rate must be positive, got %r' % learning_rate)
    run = train_mlp(learning_rate, optimizer=optimizer, epochs=epochs, **hyper)
    if run['accuracy'] >= target:
        return 'PASS: learning rate %g reaches %.0f%% test accuracy within %d steps.' % (
            learning_rate, 100 * target, run['steps'])
    lines = ['With learning rate %g, %s reaches %.1f%% test accuracy after %d steps; the '
             'target is %.0f%%.' % (learning_rate, optimizer, 100 * run['accuracy'],
                                    run['steps'], 100 * target)]
    losses = run['losses']
    if run['diverged'] or (len(losses) > 1 and losses[-1] > losses[0]):
        lines.append('The training loss did not go down (per epoch: %s): the steps are too '
                     'large. Try a learning rate several times smaller.'
                     % ', '.join('%.3g' % v for v in losses))
    else:
        lines.append('The training loss was still falling (per epoch: %s): the steps are too '
                     'small for this budget, or just too large to settle. Try a few values '
                     'a factor of 3 apart and compare.' % ', '.join('%.3g' % v for v in losses))
    raise AssertionError('\n'.join(lines))


# check_quiz, check_choice, check_number

def _quiz_judge(observation, public, private, question_id=None):
    answer = _given(observation)
    choices = quiz.choices_for(question_id)
    if (choices is not None and isinstance(answer, str) and len(answer.strip()) == 1
            and answer.strip().isalpha()):  # a letter, as render_text shows the choices
        index = ord(answer.strip().lower()) - ord('a')
        if not 0 <= index < len(choices):
            raise AssertionError('answer with one of the letters a to %s; got %r'
                                 % (chr(ord('a') + len(choices) - 1), answer))
        answer = index
    verdict = quiz.check(question_id, answer)
    if not verdict.correct:
        raise AssertionError('[%s] %s' % (question_id, verdict))
    return 'PASS: %s' % verdict


def _choice_judge(observation, public, private, expected=None, choices='abcd', explanation=''):
    answer = _given(observation)
    given = str(answer).strip().lower()
    allowed = [c.lower() for c in choices]
    if given not in allowed:
        raise AssertionError('answer with one of %s; got %r' % (', '.join(allowed), answer))
    if expected is None:
        return 'Answer %r recorded; it is graded when you submit.' % given
    if given != str(expected).strip().lower():
        raise AssertionError(('Not quite. ' + explanation).strip())
    return ('PASS: correct. ' + explanation).strip()


def _number_judge(observation, public, private, expected=None, rel=0.01, explanation=''):
    answer = _given(observation)
    try:
        value = float(answer)
    except (TypeError, ValueError):
        raise AssertionError('answer with a number; got %r' % (answer,))
    if expected is None:
        return 'Answer %g recorded; it is graded when you submit.' % value
    if not abs(value - expected) <= rel * abs(expected):
        raise AssertionError(('Not quite (you answered %g). ' % value + explanation).strip())
    return ('PASS: correct. ' + explanation).strip()


class Check(object):
    """One kind of check: ``student`` names the argument that is the student's work (run by
    ``observe`` on the student's side); the other arguments are the instructor's constants.
    ``implementation`` says the exercise asks for code (so delegating to an existing
    implementation of the same algorithm costs its points)."""

    def __init__(self, name, student, problem, observe, judge, implementation):
        self.name, self.student = name, student
        self.problem, self.observe, self.judge = problem, observe, judge
        self.implementation = implementation

    def run(self, student, **constants):
        """The check in one process (a learner's notebook): problem, observe, judge."""
        public, private = self.problem(**constants)
        observation = self.observe(student, public)
        return self.judge(observation, public, private, **constants)


def _constants(fn, *args, **kwargs):
    import inspect
    bound = inspect.signature(fn).bind(*args, **kwargs)
    bound.apply_defaults()
    return dict(bound.arguments)


def check_optimizer(student, reference='gluon_opt.adam', hyper=None, steps=40,
                    seeds=(0, 1), rtol=1e-5, shapes=DEFAULT_SHAPES, diagnose_steps=20):
    """Assert that ``student`` (a registered name, a class or an instance's class) updates
    weights exactly as ``reference`` does.

    Both run on noisy quadratics, one per seed, each with several tensors, for ``steps``
    updates, seeing the same gradients (those at the reference's weights, as in
    ``checking.compare_optimizers``); the weights must agree to the relative error ``rtol``
    after every step. ``hyper`` (a dict, or a list of dicts to try several settings) goes to
    both optimizers.

    On a mismatch, raises ``AssertionError`` naming the setting, the first diverging step,
    its relative error, and the likely cause where a typical mistake explains it. Returns a
    one-line verdict otherwise.
    """
    c = _constants(check_optimizer, student, reference, hyper, steps, seeds, rtol, shapes,
                   diagnose_steps)
    return CHECKS['check_optimizer'].run(c.pop('student'), **c)


def check_bias_correction(fn, trials=20, seed=0, rtol=1e-5):
    """Assert that ``fn(m, v, beta1, beta2, t)`` returns Adam's bias-corrected moments
    ``(m / (1 - beta1**t), v / (1 - beta2**t))`` for NDArrays ``m, v`` and 1-based ``t``."""
    return CHECKS['check_bias_correction'].run(fn, trials=trials, seed=seed, rtol=rtol)


def check_newton_step(fn, trials=10, seed=0, rtol=1e-6):
    """Assert that ``fn(w, g, H)`` returns Newton's step ``w - H^{-1} g`` (NumPy arrays):
    on random quadratics one step must land on the minimum, and on a logistic regression it
    must agree with the reference step."""
    return CHECKS['check_newton_step'].run(fn, trials=trials, seed=seed, rtol=rtol)


def check_clip(fn, trials=10, seed=0, rtol=1e-5):
    """Assert that ``fn(grads, max_norm)`` clips a list of gradients (NumPy arrays) by their
    global norm: when ``sqrt(sum_i |g_i|^2) > max_norm``, every array is multiplied by
    ``max_norm / norm`` (the direction is kept); otherwise they come back unchanged. Typical
    mistakes are named: clipping by value, per tensor, always rescaling, the squared norm,
    the sum or the largest of the tensors' norms, an inverted factor."""
    return CHECKS['check_clip'].run(fn, trials=trials, seed=seed, rtol=rtol)


def check_schedule(fn, trials=4, seed=0, rtol=1e-6, extra=5):
    """Assert that ``fn(t, base_lr, warmup, total, final_lr)`` is the linear warmup + cosine
    schedule at the 1-based update ``t`` (``mx.lr_scheduler.CosineScheduler``'s convention
    with ``warmup_begin_lr=0``)::

        t <= warmup:           base_lr * t / warmup
        warmup < t <= total:   final_lr + (base_lr - final_lr) * (1 + cos(pi * (t - warmup)
                                                                / (total - warmup))) / 2
        t > total:             final_lr

    on a readable schedule, one without warmup and ``trials`` random ones, each evaluated at
    ``t = 1 .. total + extra``. Typical mistakes are named: warmup from 0, steps counted from
    0, the cosine over the wrong length, final_lr ignored, no floor after ``total``, ..."""
    return CHECKS['check_schedule'].run(fn, trials=trials, seed=seed, rtol=rtol, extra=extra)


# ---------------------------------------------------------------------------------------
# Picking a learning rate: a small MLP on a Fashion-MNIST subset

def train_mlp(learning_rate, optimizer='gluon_opt.sgd', epochs=3, batch_size=100,
              n_train=5000, n_test=2000, hidden=64, seed=0, **hyper):
    """Train a one-hidden-layer MLP on a Fashion-MNIST subset (``gluon_opt.experiments``:
    ``data``, ``models.mlp``, ``training.train``); deterministic for a seed.

    Returns a dict: ``accuracy`` (test subset; 0 where training diverged), ``losses``
    (per-epoch mean minibatch loss), ``steps``, ``seconds``, ``diverged``."""
    from ..experiments.data import load_fashion_mnist
    from ..experiments.models import mlp
    from ..experiments.training import train, TrainingDiverged
    data = load_fashion_mnist(batch_size=batch_size, val_size=0, normalize=True,
                              train_subset=n_train, test_subset=n_test, seed=seed)
    steps = epochs * -(-n_train // batch_size)
    start = time.time()
    try:
        history = train(mlp(hidden=(hidden,)), optimizer, data, epochs, seed=seed,
                        optimizer_params=dict(learning_rate=learning_rate, **hyper),
                        progress=False, train_eval_size=0, time_steps=False)
    except TrainingDiverged:
        return {'accuracy': 0.0, 'losses': [float('nan')], 'steps': steps,
                'seconds': time.time() - start, 'diverged': True}
    losses = [v for v in history.column('batch_loss') if v is not None]
    diverged = not np.all(np.isfinite(losses)) or losses[-1] > 2.0
    return {'accuracy': float(history.final('test_acc')), 'losses': losses, 'steps': steps,
            'seconds': time.time() - start, 'diverged': diverged}


def check_learning_rate(learning_rate, optimizer='gluon_opt.sgd', target=0.75, epochs=3,
                        **hyper):
    """Assert that ``learning_rate`` trains ``train_mlp``'s MLP to ``target`` test accuracy
    within its budget (``epochs`` over 5000 images, 150 steps of 100 at the default)."""
    return CHECKS['check_learning_rate'].run(learning_rate, optimizer=optimizer,
                                             target=target, epochs=epochs, **hyper)


# ---------------------------------------------------------------------------------------
# Short answers

def check_quiz(question_id, answer):
    """Assert that ``answer`` (a choice's letter as ``quiz.render_text`` shows it, its
    0-based index or text, or a number) is right for the quiz bank's question
    (``gluon_opt.teaching.quiz``); the message is the quiz's feedback. For self-checks only:
    the bank ships with the package, so ``gluon-opt assignment grade`` refuses a graded cell
    that uses it (graded answers go into hidden tests: ``check_choice``, ``check_number``)."""
    return CHECKS['check_quiz'].run(answer, question_id=question_id)


def check_choice(answer, expected=None, choices='abcd', explanation=''):
    """Assert that the letter ``answer`` (case and spaces ignored) is ``expected``. With
    ``expected=None`` only the form is checked (a visible test whose hidden twin knows the
    answer)."""
    return CHECKS['check_choice'].run(answer, expected=expected, choices=choices,
                                      explanation=explanation)


def check_number(answer, expected=None, rel=0.01, explanation=''):
    """Assert that the number ``answer`` is within relative tolerance ``rel`` of
    ``expected``. With ``expected=None`` only the form is checked (a visible test whose
    hidden twin knows the answer)."""
    return CHECKS['check_number'].run(answer, expected=expected, rel=rel,
                                      explanation=explanation)


#: every check by the name a test cell calls it with
CHECKS = {c.name: c for c in [
    Check('check_optimizer', 'student', _optimizer_problem, _optimizer_observe,
          _optimizer_judge, implementation=True),
    Check('check_bias_correction', 'fn', _debias_problem, _debias_observe, _debias_judge,
          implementation=True),
    Check('check_newton_step', 'fn', _newton_problem, _newton_observe, _newton_judge,
          implementation=True),
    Check('check_clip', 'fn', _clip_problem, _clip_observe, _clip_judge,
          implementation=True),
    Check('check_schedule', 'fn', _schedule_problem, _schedule_observe, _schedule_judge,
          implementation=True),
    Check('check_learning_rate', 'learning_rate', _value_problem,
          _value_observe('learning_rate'), _lr_judge, implementation=False),
    Check('check_quiz', 'answer', _value_problem, _value_observe('this question'),
          _quiz_judge, implementation=False),
    Check('check_choice', 'answer', _value_problem, _value_observe('this question'),
          _choice_judge, implementation=False),
    Check('check_number', 'answer', _value_problem, _value_observe('this question'),
          _number_judge, implementation=False),
]}
#: the public functions, for reading a test cell's call (which argument is the student's)
FUNCTIONS = {'check_optimizer': check_optimizer, 'check_bias_correction': check_bias_correction,
             'check_newton_step': check_newton_step, 'check_learning_rate': check_learning_rate,
             'check_quiz': check_quiz, 'check_choice': check_choice,
             'check_number': check_number, 'check_clip': check_clip,
             'check_schedule': check_schedule}


def observe(name, student, public):
    """The student's side of check ``name`` (what a grader's sandbox runs): the observation,
    or ``{'error': 'Type: message'}`` where the student's code raised."""
    try:
        return CHECKS[name].observe(student, public)
    except Exception as err:  # noqa: BLE001 (the student's error is the observation)
        return {'error': _error_text(err)}


def judge(name, observation, public, private, **constants):
    """The grader's side of check ``name``: the verdict string, or ``AssertionError``."""
    return CHECKS[name].judge(observation, public, private, **constants)
