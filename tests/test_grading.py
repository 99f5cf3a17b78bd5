"""gluon_opt.teaching.grading: right answers pass, planted typical mistakes are named, unanswered
exercises raise NotImplementedError."""
import numpy as np
import pytest
import mxnet as mx
from mxnet import nd

import gluon_opt  # noqa: F401  (registers the references)
from gluon_opt.teaching import grading
from gluon_opt.optimizers.base import GluonOptOptimizer

FAST = dict(steps=20, seeds=(0,))


class _StudentAdam(GluonOptOptimizer):
    state_names = ('mean', 'var')

    def __init__(self, learning_rate=0.001, beta1=0.9, beta2=0.999, epsilon=1e-8, **kwargs):
        self.beta1, self.beta2, self.epsilon = beta1, beta2, epsilon
        super().__init__(learning_rate=learning_rate, **kwargs)

    def moments(self, weight, grad, state, wd):
        grad = grad + wd * weight
        mean, var = state
        mean[:] = self.beta1 * mean + (1 - self.beta1) * grad
        var[:] = self.beta2 * var + (1 - self.beta2) * nd.square(grad)
        return mean, var


class RightAdam(_StudentAdam):
    def step(self, weight, grad, state, lr, wd, t):
        m, v = self.moments(weight, grad, state, wd)
        weight[:] -= lr * (m / (1 - self.beta1 ** t)) / (
            nd.sqrt(v / (1 - self.beta2 ** t)) + self.epsilon)


class NoBiasCorrection(_StudentAdam):
    def step(self, weight, grad, state, lr, wd, t):
        m, v = self.moments(weight, grad, state, wd)
        weight[:] -= lr * m / (nd.sqrt(v) + self.epsilon)


class EpsInsideSqrt(_StudentAdam):
    def step(self, weight, grad, state, lr, wd, t):
        m, v = self.moments(weight, grad, state, wd)
        weight[:] -= lr * (m / (1 - self.beta1 ** t)) / nd.sqrt(
            v / (1 - self.beta2 ** t) + self.epsilon)


class DecayTwice(RightAdam):
    def step(self, weight, grad, state, lr, wd, t):
        super().step(weight, grad + wd * weight, state, lr, wd, t)


class NotInPlace(_StudentAdam):
    def step(self, weight, grad, state, lr, wd, t):
        grad = grad + wd * weight
        mean, var = state
        mean = self.beta1 * mean + (1 - self.beta1) * grad
        var = self.beta2 * var + (1 - self.beta2) * nd.square(grad)
        weight[:] -= lr * (mean / (1 - self.beta1 ** t)) / (
            nd.sqrt(var / (1 - self.beta2 ** t)) + self.epsilon)


class DampenedMomentum(GluonOptOptimizer):
    state_names = ('velocity',)

    def __init__(self, learning_rate=0.01, momentum=0.9, **kwargs):
        self.momentum = momentum
        super().__init__(learning_rate=learning_rate, **kwargs)

    def step(self, weight, grad, state, lr, wd, t):
        velocity, = state
        velocity[:] = self.momentum * velocity + (1 - self.momentum) * (grad + wd * weight)
        weight[:] -= lr * velocity


ADAM_HYPER = {'learning_rate': 0.01, 'epsilon': 1e-3, 'wd': 0.01}


def test_right_adam_passes():
    assert grading.check_optimizer(RightAdam, 'gluon_opt.adam', hyper=ADAM_HYPER,
                                   **FAST).startswith('PASS')


@pytest.mark.parametrize('student, cause', [
    (NoBiasCorrection, 'missing bias correction'),
    (EpsInsideSqrt, 'epsilon inside the square root'),
    (DecayTwice, 'weight decay applied twice'),
    (NotInPlace, 'state not updated in place'),
])
def test_typical_adam_mistakes_are_named(student, cause):
    with pytest.raises(AssertionError) as info:
        grading.check_optimizer(student, 'gluon_opt.adam', hyper=ADAM_HYPER, **FAST)
    message = str(info.value)
    assert message.splitlines()[0].endswith('likely cause, %s.' % cause)
    assert 'first differ at step' in message and 'relative error' in message


def test_dampened_momentum_is_named():
    with pytest.raises(AssertionError, match='likely cause, dampened momentum'):
        grading.check_optimizer(DampenedMomentum, 'gluon_opt.sgd',
                                hyper={'learning_rate': 0.05, 'momentum': 0.9}, **FAST)


def test_unknown_mistake_says_so():
    class Halved(RightAdam):
        def step(self, weight, grad, state, lr, wd, t):
            super().step(weight, grad, state, lr / 2, wd, t)
    with pytest.raises(AssertionError, match='None of the typical mistakes'):
        grading.check_optimizer(Halved, 'gluon_opt.adam', hyper=ADAM_HYPER, **FAST)


def test_bias_correction_checker():
    grading.check_bias_correction(lambda m, v, b1, b2, t: (m / (1 - b1 ** t),
                                                           v / (1 - b2 ** t)))
    with pytest.raises(AssertionError, match='count steps from 0'):
        grading.check_bias_correction(lambda m, v, b1, b2, t: (m / (1 - b1 ** (t - 1)),
                                                               v / (1 - b2 ** (t - 1))))
    with pytest.raises(AssertionError, match='only m is corrected'):
        grading.check_bias_correction(lambda m, v, b1, b2, t: (m / (1 - b1 ** t), v))


def test_newton_checker():
    grading.check_newton_step(lambda w, g, H: w - np.linalg.solve(H, g))
    with pytest.raises(AssertionError, match='wrong way'):
        grading.check_newton_step(lambda w, g, H: w + np.linalg.solve(H, g))
    with pytest.raises(AssertionError, match='gradient step'):
        grading.check_newton_step(lambda w, g, H: w - g)


def test_answers():
    assert grading.check_quiz('ch03-nesterov', 'a').startswith('PASS')
    with pytest.raises(AssertionError, match='Not quite'):
        grading.check_quiz('ch03-nesterov', 'b')
    with pytest.raises(AssertionError, match='letters a to d'):
        grading.check_quiz('ch03-nesterov', 'z')
    assert 'recorded' in grading.check_choice('B')
    with pytest.raises(AssertionError):
        grading.check_choice('b', 'a')
    grading.check_number(20.0, 20)


@pytest.mark.parametrize('call', [
    lambda: grading.check_optimizer(None),
    lambda: grading.check_bias_correction(None),
    lambda: grading.check_newton_step(None),
    lambda: grading.check_learning_rate(None),
    lambda: grading.check_quiz('ch03-nesterov', None),
    lambda: grading.check_choice(None),
    lambda: grading.check_number(None, 1.0),
])
def test_unanswered_exercises_raise_not_implemented(call):
    with pytest.raises(NotImplementedError, match='not answered yet'):
        call()


def test_mistake_variants_exist_for_each_exercise_reference():
    for ref, key in (('gluon_opt.adam', 'missing bias correction'),
                     ('gluon_opt.rmsprop', 'epsilon inside the square root'),
                     ('gluon_opt.sgd', 'dampened momentum')):
        assert key in [m.key for m in grading.mistakes_for(ref)]
    assert mx.optimizer.Optimizer.opt_registry['gluon_opt.rmsprop'] is \
        grading.resolve_reference('gluon_opt.rmsprop')


# ---------------------------------------------------------------------------------------
# AdamW and Lion: decoupled weight decay and its typical mistakes

class _StudentAdamW(_StudentAdam):
    def adam(self, weight, grad, state, lr, t):
        mean, var = state
        mean[:] = self.beta1 * mean + (1 - self.beta1) * grad
        var[:] = self.beta2 * var + (1 - self.beta2) * nd.square(grad)
        weight[:] -= lr * (mean / (1 - self.beta1 ** t)) / (
            nd.sqrt(var / (1 - self.beta2 ** t)) + self.epsilon)


class RightAdamW(_StudentAdamW):
    def step(self, weight, grad, state, lr, wd, t):
        weight[:] = weight * (1 - lr * wd)
        self.adam(weight, grad, state, lr, t)


class CoupledAdamW(_StudentAdamW):
    def step(self, weight, grad, state, lr, wd, t):
        self.adam(weight, grad + wd * weight, state, lr, t)


class UnscaledAdamW(_StudentAdamW):
    def step(self, weight, grad, state, lr, wd, t):
        weight[:] = weight * (1 - wd)
        self.adam(weight, grad, state, lr, t)


class DecayAfterAdamW(_StudentAdamW):
    def step(self, weight, grad, state, lr, wd, t):
        self.adam(weight, grad, state, lr, t)
        weight[:] = weight * (1 - lr * wd)


class NoDecayAdamW(_StudentAdamW):
    def step(self, weight, grad, state, lr, wd, t):
        self.adam(weight, grad, state, lr, t)


ADAMW_HYPER = {'learning_rate': 0.05, 'wd': 0.1}


def test_right_adamw_passes():
    assert grading.check_optimizer(RightAdamW, 'gluon_opt.adamw', hyper=ADAMW_HYPER,
                                   **FAST).startswith('PASS')


@pytest.mark.parametrize('student, cause', [
    (CoupledAdamW, 'coupled (L2) weight decay'),
    (UnscaledAdamW, 'decay not scaled by the learning rate'),
    (DecayAfterAdamW, 'decay after the Adam step'),
    (NoDecayAdamW, 'weight decay ignored'),
])
def test_typical_adamw_mistakes_are_named(student, cause):
    with pytest.raises(AssertionError) as info:
        grading.check_optimizer(student, 'gluon_opt.adamw', hyper=ADAMW_HYPER, **FAST)
    message = str(info.value)
    assert message.splitlines()[0].endswith('likely cause, %s.' % cause)
    assert 'wd)' in message  # the hint shows the decoupled decay w * (1 - lr * wd)


class _StudentLion(GluonOptOptimizer):
    state_names = ('exp_avg',)

    def __init__(self, learning_rate=1e-4, beta1=0.9, beta2=0.99, **kwargs):
        self.beta1, self.beta2 = beta1, beta2
        super().__init__(learning_rate=learning_rate, **kwargs)

    def lion(self, weight, grad, state, lr, wd, direction_beta, track_beta, decay):
        m, = state
        direction = nd.sign(direction_beta * m + (1 - direction_beta) * grad)
        weight[:] = weight * (1 - decay) - lr * direction
        m[:] = track_beta * m + (1 - track_beta) * grad


class RightLion(_StudentLion):
    def step(self, weight, grad, state, lr, wd, t):
        self.lion(weight, grad, state, lr, wd, self.beta1, self.beta2, lr * wd)


class SwappedLion(_StudentLion):
    def step(self, weight, grad, state, lr, wd, t):
        self.lion(weight, grad, state, lr, wd, self.beta2, self.beta1, lr * wd)


class UnscaledLion(_StudentLion):
    def step(self, weight, grad, state, lr, wd, t):
        self.lion(weight, grad, state, lr, wd, self.beta1, self.beta2, wd)


class MomentumFirstLion(_StudentLion):
    def step(self, weight, grad, state, lr, wd, t):
        m, = state
        m[:] = self.beta2 * m + (1 - self.beta2) * grad
        weight[:] = weight * (1 - lr * wd) - lr * nd.sign(
            self.beta1 * m + (1 - self.beta1) * grad)


class SignSGDLion(_StudentLion):
    def step(self, weight, grad, state, lr, wd, t):
        self.lion(weight, grad, state, lr, wd, 0.0, self.beta2, lr * wd)


LION_HYPER = {'learning_rate': 0.01, 'wd': 0.1}


def test_right_lion_passes():
    assert grading.check_optimizer(RightLion, 'gluon_opt.lion', hyper=LION_HYPER,
                                   **FAST).startswith('PASS')


@pytest.mark.parametrize('student, cause', [
    (SwappedLion, 'betas swapped'),
    (UnscaledLion, 'decay not scaled by the learning rate'),
    (MomentumFirstLion, 'momentum updated before the direction'),
    (SignSGDLion, 'sign of the gradient alone'),
])
def test_typical_lion_mistakes_are_named(student, cause):
    with pytest.raises(AssertionError) as info:
        grading.check_optimizer(student, 'gluon_opt.lion', hyper=LION_HYPER, **FAST)
    assert str(info.value).splitlines()[0].endswith('likely cause, %s.' % cause)


def test_decoupled_mistakes_belong_to_their_references_only():
    adamw = [m.key for m in grading.mistakes_for('gluon_opt.adamw')]
    assert 'coupled (L2) weight decay' in adamw and 'missing bias correction' in adamw
    assert 'betas swapped' in [m.key for m in grading.mistakes_for('gluon_opt.lion')]
    for ref in ('gluon_opt.adam', 'gluon_opt.sgd', 'gluon_opt.rmsprop'):
        keys = [m.key for m in grading.mistakes_for(ref)]
        assert 'coupled (L2) weight decay' not in keys and 'betas swapped' not in keys


# ---------------------------------------------------------------------------------------
# check_clip: clipping a list of gradients by their global norm

def _norm(grads):
    return np.sqrt(sum(np.sum(g ** 2) for g in grads))


def clip_right(grads, max_norm):
    norm = _norm(grads)
    return [g * (max_norm / norm) if norm > max_norm else g for g in grads]


def clip_torch(grads, max_norm):  # PyTorch's guard against a zero norm: also right
    return [g * min(1.0, max_norm / (_norm(grads) + 1e-6)) for g in grads]


def test_clip_right_answers_pass():
    assert grading.check_clip(clip_right).startswith('PASS')
    assert grading.check_clip(clip_torch, trials=20, seed=1).startswith('PASS')
    assert grading.check_clip(lambda gs, c: [nd.array(g) for g in clip_right(gs, c)])


@pytest.mark.parametrize('fn, cause', [
    (lambda gs, c: [np.clip(g, -c, c) for g in gs], 'clipping by value'),
    (lambda gs, c: [clip_right([g], c)[0] for g in gs], 'its own norm'),
    (lambda gs, c: [g * (c / _norm(gs)) for g in gs], 'also when the gradient is already'),
    (lambda gs, c: [g * min(1.0, c / _norm(gs) ** 2) for g in gs], 'squared norm'),
    (lambda gs, c: [g * min(1.0, c / sum(np.linalg.norm(g) for g in gs)) for g in gs],
     'adds the tensors\' norms'),
    (lambda gs, c: [g * max(1.0, _norm(gs) / c) for g in gs], 'inverted'),
    (lambda gs, c: list(gs), 'unchanged'),
])
def test_clip_mistakes_are_named(fn, cause):
    with pytest.raises(AssertionError, match='Likely cause') as info, \
            np.errstate(all='ignore'):
        grading.check_clip(fn)
    assert cause in str(info.value)


def test_clip_reports_what_it_cannot_use():
    with pytest.raises(AssertionError, match='must return a list'):
        grading.check_clip(lambda gs, c: None)

    def no_guard(grads, max_norm):
        norm = float(_norm(grads))  # a Python float: dividing by 0.0 raises
        return [g * min(1.0, max_norm / norm) for g in grads]
    with pytest.raises(AssertionError, match='ZeroDivisionError.*all-zero gradients'):
        grading.check_clip(no_guard)


# ---------------------------------------------------------------------------------------
# check_schedule: warmup + cosine

def schedule_right(t, base_lr, warmup, total, final_lr):
    if t <= warmup:
        return base_lr * t / warmup
    if t > total:
        return final_lr
    return final_lr + 0.5 * (base_lr - final_lr) * (
        1 + np.cos(np.pi * (t - warmup) / (total - warmup)))


def test_schedule_right_answer_passes():
    assert grading.check_schedule(schedule_right).startswith('PASS')
    assert grading.check_schedule(schedule_right, trials=10, seed=1).startswith('PASS')


def _cosine(t, b, w, T, f, start, length):
    return f + 0.5 * (b - f) * (1 + np.cos(np.pi * (t - start) / length))


@pytest.mark.parametrize('fn, cause', [
    (lambda t, b, w, T, f: b * (t - 1) / w if t <= w else schedule_right(t, b, w, T, f),
     'the warmup starts at 0'),
    (lambda t, b, w, T, f: schedule_right(t + 1, b, w, T, f), 'count the steps from 0'),
    (lambda t, b, w, T, f: b * t / w if t <= w else
     (_cosine(t, b, w, T, f, 0, T) if t <= T else f), 'over the whole run'),
    (lambda t, b, w, T, f: b * t / w if t <= w else
     (_cosine(t, b, w, T, f, w, T) if t <= T else f), 'stretched over total steps'),
    (lambda t, b, w, T, f: schedule_right(t, b, w, T, 0.0), 'final_lr is ignored'),
    (lambda t, b, w, T, f: b * t / w if t <= w else _cosine(t, b, w, T, f, w, T - w),
     'back up'),
])
def test_schedule_mistakes_are_named(fn, cause):
    with pytest.raises(AssertionError, match='Likely cause') as info:
        grading.check_schedule(fn)
    assert cause in str(info.value)


def test_schedule_names_the_step_that_raised():
    def no_guard(t, b, w, T, f):
        return b * min(1.0, t / w) if t <= w else schedule_right(t, b, w, T, f)

    def guarded(t, b, w, T, f):
        ramp = b * min(1.0, t / w)  # divides by warmup = 0 when there is no warmup
        return ramp if t <= w else schedule_right(t, b, w, T, f)
    assert grading.check_schedule(no_guard).startswith('PASS')
    with pytest.raises(AssertionError, match='raised ZeroDivisionError.*no warmup'):
        grading.check_schedule(guarded)


def test_new_checks_are_registered_for_the_grader():
    for name in ('check_clip', 'check_schedule'):
        assert name in grading.__all__ and name in grading.FUNCTIONS
        assert grading.CHECKS[name].implementation and grading.CHECKS[name].student == 'fn'


@pytest.mark.parametrize('call', [
    lambda: grading.check_clip(None),
    lambda: grading.check_schedule(None),
    lambda: grading.check_clip(lambda gs, c: _raise()),
    lambda: grading.check_schedule(lambda t, b, w, T, f: _raise()),
])
def test_new_checks_unanswered_raise_not_implemented(call):
    with pytest.raises(NotImplementedError):
        call()


def _raise():
    raise NotImplementedError()
