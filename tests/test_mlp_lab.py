"""Chapter 6's helpers (gluon_opt.teaching.mlp_lab): the implementation an optimizer runs,
the tuning grid, and time to a target loss under each implementation and batch size."""
import mxnet as mx
import pytest

import gluon_opt
from gluon_opt import kernels
from gluon_opt.experiments import data
from gluon_opt.optimizers.base import IMPL_ENV
from gluon_opt.teaching import mlp_lab


@pytest.fixture(scope='module')
def tiny():
    return lambda batch_size: data.load_fashion_mnist(batch_size=batch_size, val_size=0,
                                                      train_subset=512, test_subset=100)


def test_implementation_follows_use_fused_and_the_environment(monkeypatch):
    assert mlp_lab.implementation('gluon_opt.adam', {'use_fused': False}) == mlp_lab.REFERENCE
    monkeypatch.setenv(IMPL_ENV, 'reference')
    assert mlp_lab.implementation('gluon_opt.adam') == mlp_lab.REFERENCE
    # an optimizer without a kernel always runs its reference
    assert mlp_lab.implementation('gluon_opt.lbfgs') == mlp_lab.REFERENCE
    if not kernels.available():
        pytest.skip('fused kernels not built here')
    monkeypatch.setenv(IMPL_ENV, 'auto')
    assert mlp_lab.implementation('gluon_opt.adam') == mlp_lab.FUSED
    assert mlp_lab.implementation('gluon_opt.adam', {'use_fused': True}) == mlp_lab.FUSED


def test_tuning_grid_names_registered_optimizers():
    for label, (name, fixed, rates) in mlp_lab.TUNING_GRID.items():
        assert name.split('.', 1)[1] in gluon_opt.REGISTRY, label
        assert 'learning_rate' not in fixed and list(rates) == sorted(rates)
        mx.optimizer.create(name, learning_rate=rates[0], **fixed)


def test_tune_scores_every_rate_and_picks_the_lowest(tiny):
    grid = {'SGD': ('gluon_opt.sgd', {}, (0.001, 0.2))}
    best = mlp_lab.tune(tiny(64), epochs=1, grid=grid, train_eval_size=256)
    rate, scores = best['SGD']
    assert set(scores) == {0.001, 0.2} and rate == min(scores, key=scores.get) == 0.2


def test_time_to_target_same_updates_under_both_implementations(tiny):
    if not kernels.available():
        pytest.skip('fused kernels not built here')
    runs = mlp_lab.time_to_target('gluon_opt.adam', {'learning_rate': 1e-2}, tiny,
                                  epochs={64: 2}, target=1.5, repeats=1)
    assert [r.impl for r in runs] == [mlp_lab.FUSED, mlp_lab.REFERENCE]
    fused, reference = runs
    assert fused.updates == reference.updates < float('inf')
    for r in runs:
        assert 0 < r.seconds <= r.train_seconds and 0 < r.update_share < 1


def test_time_to_target_reports_inf_when_not_reached(tiny):
    (run,) = mlp_lab.time_to_target('gluon_opt.sgd', {'learning_rate': 1e-6}, tiny,
                                    epochs={128: 1}, target=0.1,
                                    impls=(mlp_lab.REFERENCE,))
    assert run.updates == run.seconds == float('inf')


def test_time_to_target_keeps_the_fastest_repeat(tiny, monkeypatch):
    walls = iter([3.0, 1.0])            # the first repeat slower than the second
    real_reached = mlp_lab.compare.reached

    def reached(history, target):
        step, _ = real_reached(history, target)
        return step, next(walls)
    monkeypatch.setattr(mlp_lab.compare, 'reached', reached)
    (run,) = mlp_lab.time_to_target('gluon_opt.adam', {'learning_rate': 1e-2}, tiny,
                                    epochs={64: 2}, target=1.5, impls=(mlp_lab.REFERENCE,),
                                    repeats=2)
    assert run.seconds == 1.0 and run.updates < float('inf')
