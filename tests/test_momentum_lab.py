"""momentum_lab (chapter 3): the eigen-analysis against closed forms and against runs of
gluon_opt.sgd, the rate fit, the t-intervals, and the stacked MLP against the course MLP."""
import numpy as np
import mxnet as mx
import pytest
from mxnet import autograd, gluon

import gluon_opt  # noqa: F401  (registers gluon_opt.sgd)
from gluon_opt.experiments import models
from gluon_opt.teaching import momentum_lab as ml


@pytest.mark.parametrize('h', [0.1, 0.5, 1.0, 1.5, 1.9, 2.5])
def test_gradient_descent_rate_is_one_minus_h(h):
    assert ml.predicted_rate(h, 0.0) == pytest.approx(abs(1 - h), abs=1e-12)


@pytest.mark.parametrize('mu', [0.3, 0.5, 0.9])
def test_complex_roots_give_sqrt_mu(mu):
    h = np.linspace((1 - mu ** 0.5) ** 2, (1 + mu ** 0.5) ** 2, 12)[1:-1]
    np.testing.assert_allclose(ml.predicted_rate(h, mu), mu ** 0.5, rtol=1e-9)


@pytest.mark.parametrize('nesterov', [False, True])
@pytest.mark.parametrize('mu', [0.0, 0.25, 0.5, 0.9])
def test_stability_limit_is_where_the_rate_crosses_one(mu, nesterov):
    if nesterov and mu == 0:
        pytest.skip('Nesterov needs momentum > 0')
    limit = ml.stability_limit(mu, nesterov)
    assert ml.predicted_rate(0.999 * limit, mu, nesterov) < 1
    assert ml.predicted_rate(1.001 * limit, mu, nesterov) > 1
    assert limit == pytest.approx(2 * (1 + mu) / ((1 + 2 * mu) if nesterov else 1))


@pytest.mark.parametrize('nesterov', [False, True])
def test_iteration_matrix_is_the_update_rule(nesterov):
    """(w, eta b) under the matrix equals PyTorch-convention momentum written out."""
    eta, lam, mu = 0.1, 7.0, 0.8
    w, b = 1.3, 0.0
    state = np.array([w, eta * b])
    A = ml.iteration_matrix(eta * lam, mu, nesterov)
    for _ in range(20):
        g = lam * w
        b = mu * b + g
        w = w - eta * ((g + mu * b) if nesterov else b)
        state = A @ state
        assert state == pytest.approx([w, eta * b], rel=1e-12, abs=1e-15)


def test_fit_rate():
    t = np.arange(80)
    assert ml.fit_rate(0.9 ** t) == pytest.approx(0.9, abs=1e-9)
    assert ml.fit_rate(1.05 ** t) == pytest.approx(1.05, abs=1e-9)
    # complex pair: |w_t| passes near 0, the state's norm does not
    osc = 0.8 ** t * np.cos(2.0 * t + 0.3)
    assert ml.fit_rate(osc) == pytest.approx(0.8, abs=5e-3)
    assert ml.fit_rate(np.r_[2.0, np.zeros(30)]) == 0.0
    # underflow and overflow are left out of the fit
    assert ml.fit_rate(0.01 ** np.arange(200)) == pytest.approx(0.01, rel=1e-6)
    with np.errstate(over='ignore'):
        assert ml.fit_rate(1e3 ** np.arange(200.0)) == pytest.approx(1e3, rel=1e-6)


@pytest.mark.parametrize('nesterov', [False, True])
def test_measured_rates_match_the_eigenvalues(nesterov):
    h = np.array([0.05, 0.3, 0.9, 1.2, 1.45, 2.5, 3.2])
    mu = 0.6
    measured = ml.measured_rates(h, mu, nesterov, steps=120)
    np.testing.assert_allclose(measured, ml.predicted_rate(h, mu, nesterov), atol=5e-3)


def test_measured_limit_matches_theory():
    for mu, nesterov in ((0.0, False), (0.7, False), (0.7, True)):
        found = ml.measured_limit(mu, nesterov, points=40, steps=150)
        assert found == pytest.approx(ml.stability_limit(mu, nesterov), rel=0.01)


def test_t_quantile_and_interval():
    assert ml.t_quantile(1) == pytest.approx(12.706, abs=1e-3)
    assert ml.t_quantile(7) == pytest.approx(2.365, abs=1e-3)
    # the expansion beyond the table, against known values
    assert ml.t_quantile(40) == pytest.approx(2.021, abs=1e-3)
    assert ml.t_quantile(120) == pytest.approx(1.980, abs=1e-3)
    try:
        from scipy import stats
    except ImportError:
        stats = None
    if stats is not None:
        for df in (1, 2, 5, 9, 29, 31, 50, 200):
            assert ml.t_quantile(df) == pytest.approx(stats.t.ppf(0.975, df), abs=1.5e-3)
    mean, half = ml.t_interval([1.0, 2.0, 3.0, 4.0, 5.0])
    assert mean == 3.0
    assert half == pytest.approx(2.776 * np.std([1, 2, 3, 4, 5], ddof=1) / 5 ** 0.5)
    with pytest.raises(ValueError):
        ml.t_interval([1.0])
    with pytest.raises(ValueError):
        ml.t_interval([1.0, np.nan])
    with pytest.raises(ValueError):
        ml.t_quantile(0)


def _toy_data(n=96, d=20, seed=0):
    rng = np.random.RandomState(seed)
    x = rng.rand(n, d).astype(np.float32)
    y = (x[:, 0] * 10).astype(np.int64) % 10
    return x, y


def test_stacked_copies_are_independent_runs():
    x, y = _toy_data()
    hp = {'learning_rate': 0.1, 'momentum': 0.9}
    at, both = ml.train_seeds(x, y, [3, 5], 8, 12, hp, checks=3, hidden=16)
    _, alone = ml.train_seeds(x, y, [5], 8, 12, hp, checks=3, hidden=16)
    assert at == [0, 4, 8, 12]
    assert both.shape == (4, 2)
    np.testing.assert_allclose(both[:, 1], alone[:, 0], rtol=1e-5)
    assert not np.allclose(both[:, 0], both[:, 1])           # other seed, other run
    assert both[-1, 0] < both[0, 0] and both[-1, 1] < both[0, 1]


def test_stacked_copy_is_the_course_mlp():
    """Copy i of the stack trains exactly like models.mlp given the same weights and batches."""
    x, y = _toy_data()
    seeds, batch, steps, hidden = [0, 1], 8, 10, 16
    hp = {'learning_rate': 0.05, 'momentum': 0.9}
    _, stacked = ml.train_seeds(x, y, seeds, batch, steps, hp, checks=1, hidden=hidden)

    ref = ml.StackedMLP(len(seeds), in_units=x.shape[1], hidden=hidden)
    ref.initialize_seeds(seeds)
    loss_fn = gluon.loss.SoftmaxCrossEntropyLoss()
    for i, seed in enumerate(seeds):
        net = models.mlp(hidden=(hidden,), hybridize=False)
        net.initialize()
        net(mx.nd.array(x[:1]))
        dense0, dense1 = net[0], net[2]
        dense0.weight.set_data(ref.w1.data()[i].T)
        dense1.weight.set_data(ref.w2.data()[i].T)
        trainer = gluon.Trainer(net.collect_params(), 'gluon_opt.sgd', dict(hp))
        for idx in ml._batches(len(x), batch, seed, steps):
            with autograd.record():
                loss = loss_fn(net(mx.nd.array(x[idx])), mx.nd.array(y[idx]))
            loss.backward()
            trainer.step(batch)
        final = loss_fn(net(mx.nd.array(x)), mx.nd.array(y)).mean().asscalar()
        assert stacked[-1, i] == pytest.approx(float(final), rel=1e-4)


def test_study_and_summary():
    x, y = _toy_data()
    study = ml.momentum_study(x, y, batch_sizes=(4, 16), steps=6, learning_rate=0.1,
                              momentum=0.9, seeds=range(3), checks=2)
    assert list(study) == [4, 16]
    assert list(study[4]) == list(ml.ROLES)
    assert study[4]['matched'][0] == 'momentum 0.9, lr 0.01'
    summary = ml.summarize_study(study)
    row = summary[16]
    assert set(row) == {'SGD', 'matched', 'same lr', 'matched - SGD', 'same lr - SGD'}
    final = {role: study[16][role][2][-1] for role in ml.ROLES}
    assert row['matched - SGD'][0] == pytest.approx(np.mean(final['matched'] - final['SGD']))
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    fig, axes = plt.subplots(1, 2)
    ml.plot_study(study, axes, ['r', 'g', 'b'])
    ml.plot_rates(axes[0], np.array([0.5, 1.0]), {0.5: (np.array([0.7, 0.7]), None)}, ['r'])
    ml.plot_limits(axes[1], {(0.5, False): 3.0, (0.5, True): 1.5}, ['r', 'g'])
    plt.close(fig)
