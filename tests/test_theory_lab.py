"""The theory experiments of chapters 2 and 4 (gluon_opt.teaching.theory_lab) against their
closed forms."""
import numpy as np
import pytest

import gluon_opt  # noqa: F401  (registers the optimizers)
from gluon_opt.teaching import theory_lab as th


def test_saddle_gradient_and_escape():
    s = th.saddle()
    x = np.array([0.3, -0.7])
    h = 1e-6
    numeric = [(s.value(x + h * e) - s.value(x - h * e)) / (2 * h) for e in np.eye(2)]
    np.testing.assert_allclose(s.grad(x), numeric, rtol=1e-6)
    path, at = th.escape_steps([1.0, 0.0], 50)
    assert at is None and path.shape == (51, 2) and abs(path[-1, 0]) < 1e-4
    np.testing.assert_allclose(path[:, 0], 0.8 ** np.arange(51))      # x <- (1 - 2 lr) x
    _, at = th.escape_steps([1.0, 1e-3], 100)
    assert at == int(np.ceil(np.log(1e3) / np.log(1.2)))               # y <- (1 + 2 lr) y
    _, noisy = th.escape_steps([1.0, 0.0], 100, noise=0.01, seed=3)
    assert noisy is not None


@pytest.mark.parametrize('lr', [0.4, 0.1])
def test_noise_floor_matches_the_stationary_variance(lr):
    losses = th.noisy_quadratic_sgd(lr, 300, chains=4000)
    theory = lr / (2 * (2 - lr))
    assert losses[150:].mean() == pytest.approx(theory, rel=0.08)


def test_noise_free_quadratic_is_gradient_descent_and_decay_goes_below_the_floor():
    exact = th.noisy_quadratic_sgd(0.1, 20, noise=0.0, chains=3, start=2.0)
    np.testing.assert_allclose(exact, 0.5 * (2.0 * 0.9 ** np.arange(1, 21)) ** 2)
    decayed = th.noisy_quadratic_sgd(0.4, 400, decay=20)
    assert decayed[-1] < 0.5 * 0.4 / (2 * 1.6) and decayed[-1] < decayed[50]


def test_sparse_regression_and_runs():
    X, y, w_star, freq = th.sparse_regression(n=2000, seed=1)
    assert X.shape == (2000, 12) and set(np.unique(X)) <= {0.0, 1.0}
    np.testing.assert_allclose(X.mean(axis=0), freq, atol=0.04)
    err = th.sparse_run('gluon_opt.adagrad', X, y, w_star, learning_rate=1.0)
    assert err.shape == (12,) and err[:4].max() < 0.1
    blown = th.sparse_run('gluon_opt.sgd', X, y, w_star, learning_rate=50.0)
    assert np.all(blown > 1e6)                                           # diverged


def test_reddi_counterexample():
    adam = th.reddi_online('gluon_opt.adam', 150, beta1=0.0, beta2=0.1)
    ams = th.reddi_online('gluon_opt.adam', 150, beta1=0.0, beta2=0.1, amsgrad=True)
    assert np.all(np.abs(adam) <= 1) and adam[-30:].mean() > 0.9
    assert ams[-30:].mean() < -0.9
    assert th.InverseSqrt(base_lr=0.5)(4) == pytest.approx(0.25)
