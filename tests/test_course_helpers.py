"""The course's helpers: landscapes and their gradients, ``trajectory``, and the checker."""
import numpy as np
import mxnet as mx
import pytest

import gluon_opt  # noqa: F401  (registers the optimizers)
from gluon_opt.teaching import landscapes
from gluon_opt.teaching.checking import compare_optimizers

LANDSCAPES = [landscapes.parabola(3.0), landscapes.quadratic(20, angle=0.4),
              landscapes.rosenbrock(), landscapes.double_well(0.3), landscapes.beale()]


@pytest.mark.parametrize('land', LANDSCAPES, ids=lambda l: l.name)
def test_gradients_match_finite_differences(land):
    rng = np.random.RandomState(0)
    for _ in range(5):
        x = rng.uniform(-1.5, 1.5, size=land.dim)
        h = 1e-6
        numeric = [(land.value(x + h * e) - land.value(x - h * e)) / (2 * h)
                   for e in np.eye(land.dim)]
        np.testing.assert_allclose(land.grad(x), numeric, rtol=1e-5, atol=1e-5)
    if land.minimum is not None:  # the minimum is a stationary point
        np.testing.assert_allclose(land.grad(land.minimum), 0, atol=1e-9)


def test_double_well_minimum_is_the_deeper_one():
    well = landscapes.double_well(0.3)
    assert well.minimum[0] < 0 and well.value(well.minimum) < well.value([0.96])


def test_trajectory_is_gradient_descent_exactly():
    f = landscapes.parabola(4.0)
    run = landscapes.trajectory('gluon_opt.sgd', f, [2.0], 5, learning_rate=0.1)
    np.testing.assert_allclose(run.path[:, 0], 2.0 * 0.6 ** np.arange(6), rtol=1e-12)
    assert run.losses.shape == (6,) and run.label == 'gluon_opt.sgd'
    assert landscapes.trajectory('gluon_opt.sgd', f, [2.0], 30, learning_rate=0.6).diverged


def test_trajectory_accepts_instances_and_classes_and_stops_early():
    bowl = landscapes.quadratic(10)
    opt = mx.optimizer.create('gluon_opt.adam', learning_rate=0.1)
    a = landscapes.trajectory(opt, bowl, [1.0, 1.0], 20)
    b = landscapes.trajectory(gluon_opt.Adam, bowl, [1.0, 1.0], 20, learning_rate=0.1)
    np.testing.assert_array_equal(a.path, b.path)
    with pytest.raises(ValueError):
        landscapes.trajectory(opt, bowl, [1.0, 1.0], 5, learning_rate=0.1)
    run = landscapes.trajectory('gluon_opt.sgd', bowl, [1.0, 1.0], 1000, learning_rate=0.1,
                                until=1e-8, patience=3)
    assert len(run.losses) < 1000 and run.steps_to(1e-8) == len(run.losses) - 3


def test_steps_to_ignores_a_passing_touch():
    run = landscapes.Trajectory('x', landscapes.parabola(), np.zeros((5, 1)),
                                np.array([1.0, 1e-9, 1.0, 1e-9, 1e-9]))
    assert run.steps_to(1e-6) == 3
    run.losses = np.array([1.0, 1e-9, 1.0])
    assert run.steps_to(1e-6) is None


def test_checker_passes_identical_and_finds_the_first_bad_step():
    ok = compare_optimizers('gluon_opt.sgd', 'gluon_opt.sgd', learning_rate=0.1, momentum=0.9)
    assert ok.passed and ok.max_error == 0 and 'PASS' in str(ok)

    class LateBug(gluon_opt.SGD):  # right for 6 steps, then doubles the step
        name = None
        fused_op = None  # so that this reference step runs

        def step(self, weight, grad, state, lr, wd, t):
            super().step(weight, grad, state, lr * (2 if t > 6 else 1), wd, t)

    bad = compare_optimizers(LateBug, 'gluon_opt.sgd', learning_rate=0.1)
    assert not bad.passed and bad.first_diverging_step == 7 and 'step 7' in str(bad)
    assert np.all(bad.errors[:6] <= 1e-5)  # the reference may run the fused kernel
