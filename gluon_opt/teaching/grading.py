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
* ``check_bias_correction(fn)``, ``check_newton_step(fn)``: the same for functions;
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
           'check_learning_rate', 'train_mlp', 'check_quiz', 'check_choice', 'check_number']

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


def mistakes_for(reference):
    """The typical mistakes worth trying for a reference optimizer class."""
    ref = resolve_reference(reference)
    out = []
    if hasattr(ref, 'adam_step'):
        out += ADAM_MISTAKES
    if getattr(ref, 'name', None) == 'rmsprop':
        out += RMSPROP_MISTAKES
    if getattr(ref, 'name', None) == 'sgd':
        out += MOMENTUM_MISTAKES
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


def check_optimizer(student, reference='gluon_opt.adam', hyper=None, steps=40,
                    seeds=(0, 1), rtol=1e-5, shapes=DEFAULT_SHAPES, diagnose_steps=20):
    """Assert that ``student`` (a registered name, a class or an instance's class) updates
    weights exactly as ``reference`` does.

    Both run on noisy quadratics, one per seed, each with several tensors, for ``steps``
    updates, seeing the same gradients (``checking.compare_optimizers``); the
    weights must agree to the relative error ``rtol`` after every step. ``hyper`` (a dict,
    or a list of dicts to try several settings) goes to both optimizers.

    On a mismatch, raises ``AssertionError`` naming the setting, the first diverging step,
    its relative error, and the likely cause where a typical mistake explains it. Returns a
    one-line verdict otherwise.
    """
    if student is None:
        _not_answered('the optimizer')
    settings = hyper if isinstance(hyper, (list, tuple)) else [hyper or {}]
    ref = resolve_reference(reference)
    for h in settings:
        h = dict(h)
        for seed in seeds:
            report = compare_optimizers(student, ref, steps=steps, shapes=shapes,
                                        seed=seed, rtol=rtol, **h)
            if report.passed:
                continue
            k = report.first_diverging_step
            err = report.errors[k - 1]
            # A planted mistake that explains the first 20 steps explains the failure; fewer
            # steps keep the diagnosis of one failure to about a second.
            mistake = diagnose(student, ref, h, steps=max(k, min(steps, diagnose_steps)),
                               shapes=shapes, seed=seed, rtol=rtol)
            head = '%s does not update the weights as %s does' % (_label(student),
                                                                  _label(reference))
            lines = [head + (': likely cause, %s.' % mistake.key if mistake else '.'),
                     'Test problem: noisy quadratic (seed %d), tensors of shapes %s, %d steps, '
                     'with %s.' % (seed, ', '.join(str(tuple(s)) for s in shapes), steps,
                                   _hyper_text(h))]
            if not np.isfinite(err):
                lines.append('At step %d your weights became inf or NaN.' % k)
            else:
                lines.append('The weights first differ at step %d: relative error %.2e '
                             '(allowed %.0e); the largest over %d steps is %.2e.'
                             % (k, err, rtol, steps, np.nanmax(np.where(
                                 np.isfinite(report.errors), report.errors, np.nan))))
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
        _label(student), _label(reference), len(settings), 's' if len(settings) > 1 else '',
        len(seeds), steps)


# ---------------------------------------------------------------------------------------
# Bias correction

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


def check_bias_correction(fn, trials=20, seed=0, rtol=1e-5):
    """Assert that ``fn(m, v, beta1, beta2, t)`` returns Adam's bias-corrected moments
    ``(m / (1 - beta1**t), v / (1 - beta2**t))`` for NDArrays ``m, v`` and 1-based ``t``."""
    if fn is None:
        _not_answered('the bias correction')
    rng = np.random.RandomState(seed)
    for _ in range(trials):
        shape = (int(rng.randint(1, 5)), int(rng.randint(1, 5)))
        m, v = rng.randn(*shape), rng.rand(*shape)
        b1, b2 = float(rng.uniform(0.5, 0.95)), float(rng.uniform(0.9, 0.9999))
        t = int(rng.choice([1, 2, 3, 10, 100]))
        out = fn(mx.nd.array(m), mx.nd.array(v), b1, b2, t)
        if not isinstance(out, (tuple, list)) or len(out) != 2:
            raise AssertionError('bias_correct must return two arrays, (m_hat, v_hat); got %r'
                                 % (type(out).__name__,))
        got = [_as_numpy(x) for x in out]
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
    return 'PASS: bias_correct matches m / (1 - beta1^t), v / (1 - beta2^t) on %d cases.' % trials


# ---------------------------------------------------------------------------------------
# Newton's method

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


def check_newton_step(fn, trials=10, seed=0, rtol=1e-6):
    """Assert that ``fn(w, g, H)`` returns Newton's step ``w - H^{-1} g`` (NumPy arrays):
    on random quadratics one step must land on the minimum, and on a logistic regression it
    must agree with the reference step."""
    if fn is None:
        _not_answered('the Newton step')
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
    for what, w, g, H in cases:
        out = fn(w.copy(), g.copy(), H.copy())
        got = _as_numpy(out)
        want = w - np.linalg.solve(H, g)
        if got.shape == want.shape and np.allclose(got, want, rtol=rtol, atol=1e-9):
            continue
        lines = ['newton_step is wrong on %s.' % what]
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
    if learning_rate is None:
        _not_answered('learning_rate')
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


# ---------------------------------------------------------------------------------------
# Short answers

def check_quiz(question_id, answer):
    """Assert that ``answer`` (a choice's letter as ``quiz.render_text`` shows it, its
    0-based index or text, or a number) is right for the quiz bank's question
    (``gluon_opt.teaching.quiz``); the message is the quiz's feedback."""
    if answer is None:
        _not_answered('question %s' % question_id)
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


def check_choice(answer, expected=None, choices='abcd', explanation=''):
    """Assert that the letter ``answer`` (case and spaces ignored) is ``expected``. With
    ``expected=None`` only the form is checked (a visible test whose hidden twin knows the
    answer)."""
    if answer is None:
        _not_answered('this question')
    given = str(answer).strip().lower()
    allowed = [c.lower() for c in choices]
    if given not in allowed:
        raise AssertionError('answer with one of %s; got %r' % (', '.join(allowed), answer))
    if expected is None:
        return 'Answer %r recorded; it is graded when you submit.' % given
    if given != str(expected).strip().lower():
        raise AssertionError(('Not quite. ' + explanation).strip())
    return ('PASS: correct. ' + explanation).strip()


def check_number(answer, expected, rel=0.01, explanation=''):
    """Assert that the number ``answer`` is within relative tolerance ``rel`` of
    ``expected``."""
    if answer is None:
        _not_answered('this question')
    try:
        value = float(answer)
    except (TypeError, ValueError):
        raise AssertionError('answer with a number; got %r' % (answer,))
    if not abs(value - expected) <= rel * abs(expected):
        raise AssertionError(('Not quite (you answered %g). ' % value + explanation).strip())
    return ('PASS: correct. ' + explanation).strip()
