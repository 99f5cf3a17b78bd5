"""Chapter 7's statistics and tune-then-test protocol (gluon_opt.teaching.generalisation_lab)."""
import numpy as np
import pytest

import gluon_opt  # noqa: F401  (registers the optimizers)
from gluon_opt.experiments import compare, data, models
from gluon_opt.teaching import generalisation_lab as gl


def test_t_quantile_matches_the_table():
    # two-sided 95 %: the printed Student-t table; df -> inf tends to the normal 1.96
    for df, q in ((1, 12.706), (4, 2.776), (10, 2.228), (30, 2.042)):
        assert gl.t_quantile(0.95, df) == pytest.approx(q, abs=1e-3)
    assert gl.t_quantile(0.95, 10 ** 6) == pytest.approx(1.960, abs=1e-3)
    with pytest.raises(ValueError):
        gl.t_quantile(1.5, 4)
    with pytest.raises(ValueError):
        gl.t_quantile(0.95, 0)


def test_interval_is_the_t_interval():
    v = [0.80, 0.82, 0.81, 0.79, 0.83]
    ci = gl.interval(v)
    half = 2.7764 * np.std(v, ddof=1) / np.sqrt(5)
    assert ci.mean == pytest.approx(0.81) and ci.half == pytest.approx(half, rel=1e-4)
    assert ci.low == pytest.approx(0.81 - half) and str(ci) == '0.810 ± 0.020'
    assert ci.excludes_zero and not gl.interval([-1.0, 1.0, 0.5]).excludes_zero
    for bad in ([1.0], [1.0, float('nan')], [[1.0, 2.0]]):
        with pytest.raises(ValueError):
            gl.interval(bad)


def test_paired_difference_uses_per_seed_differences_and_bonferroni():
    a, b = np.array([0.80, 0.82, 0.81, 0.79, 0.83]), np.array([0.78, 0.81, 0.80, 0.78, 0.80])
    d = gl.paired_difference(a, b)
    assert d.mean == pytest.approx(np.mean(a - b))
    assert d.half == pytest.approx(gl.interval(a - b).half)
    # a shared seed effect (large spread, same in both) cancels: unpaired it would not
    shift = np.array([0.0, 0.1, -0.1, 0.05, -0.05])
    assert gl.paired_difference(a + shift, b + shift).half == pytest.approx(d.half)
    wide = gl.paired_difference(a, b, comparisons=6)
    assert wide.half == pytest.approx(
        gl.t_quantile(1 - 0.05 / 6, 4) * np.std(a - b, ddof=1) / np.sqrt(5))
    assert wide.half > d.half
    with pytest.raises(ValueError):
        gl.paired_difference(a, b[:3])
    with pytest.raises(ValueError):
        gl.paired_difference(a, b, comparisons=0)


class _Run(object):
    def __init__(self, label, seed, final, diverged=None):
        self.spec = compare.OptimizerSpec(label, 'gluon_opt.sgd')
        self.seed, self.diverged = seed, diverged
        self.history = None if diverged else _History(final)


class _History(object):
    def __init__(self, final):
        self._final = final

    def final(self, key):
        return self._final[key]


def test_per_seed_orders_by_seed_and_computes_the_gap():
    runs = [_Run('A', 1, {'train_acc': 0.9, 'test_acc': 0.8}),
            _Run('A', 0, {'train_acc': 1.0, 'test_acc': 0.7}),
            _Run('B', 0, None, diverged='nan')]
    gap = gl.per_seed(runs, 'gap')
    np.testing.assert_allclose(gap['A'], [0.3, 0.1])
    assert np.isnan(gap['B']).all()
    np.testing.assert_allclose(gl.per_seed(runs, 'test_acc')['A'], [0.7, 0.8])


@pytest.fixture(scope='module')
def small():
    return data.load_fashion_mnist(batch_size=32, val_size=200, train_subset=64,
                                   test_subset=200, normalize=True)


def test_tune_then_test_picks_on_validation_and_tests_fresh_seeds(small):
    specs = [compare.OptimizerSpec('tiny', 'gluon_opt.sgd', {'learning_rate': 1e-6}),
             compare.OptimizerSpec('good', 'gluon_opt.sgd', {'learning_rate': 0.05})]
    out = gl.tune_then_test({'SGD': specs}, small, lambda: models.mlp(hidden=(16,)), 3,
                            tune_seeds=(10,), test_seeds=(0, 1))
    r = out['SGD']
    assert r['chosen'].label == 'good' and r['val_acc']['good'] > r['val_acc']['tiny']
    assert set(r['test']) == {'train_acc', 'train_loss', 'val_acc', 'test_acc'}
    assert r['test']['test_acc'].shape == (2,) and np.all(r['test']['test_acc'] > 0.2)
    with pytest.raises(ValueError, match='overlap'):
        gl.tune_then_test({'SGD': specs}, small, lambda: models.mlp(hidden=(16,)), 1,
                          tune_seeds=(0,), test_seeds=(0, 1))


def test_fit_measures_the_whole_sets_once_and_reports_divergence(small):
    spec = compare.OptimizerSpec('SGD', 'gluon_opt.sgd', {'learning_rate': 0.05})
    r = gl.fit(spec, small, lambda: models.mlp(hidden=(16,)), 2, seed=0)
    again = gl.fit(spec, small, lambda: models.mlp(hidden=(16,)), 2, seed=0)
    assert r == again                                    # the seed fixes everything
    assert 0 <= r['train_acc'] <= 1 and r['val_acc'] is not None
    bad = compare.OptimizerSpec('SGD', 'gluon_opt.sgd', {'learning_rate': 1e6})
    assert gl.fit(bad, small, lambda: models.mlp(hidden=(16,)), 2, seed=0) is None
