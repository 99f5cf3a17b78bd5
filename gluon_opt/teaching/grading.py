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
           'check_learning_rate', 'train_mlp', 'check_quiz', 'check_choice', 'check_number',
           'Check', 'CHECKS', 'FUNCTIONS', 'observe', 'judge', 'StudentError']

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
             'check_number': check_number}


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
