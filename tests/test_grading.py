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
