"""CS231n's practical checks (gluon_opt.teaching.diagnostics) and chapter 8's run helper
(gluon_opt.teaching.tricks_lab)."""
import numpy as np
import mxnet as mx
import pytest

import gluon_opt  # noqa: F401  (registers the optimizers)
from gluon_opt.experiments import data, models, training
from gluon_opt.teaching import diagnostics, tricks_lab


def test_update_ratio_is_lr_times_gradient_over_weight_for_sgd():
    net = models.mlp(hidden=(8,))
    training.seed_everything(0)
    net.initialize(mx.init.Xavier())
    rng = np.random.RandomState(0)
    x, y = mx.nd.array(rng.rand(16, 20)), mx.nd.array(rng.randint(0, 10, 16))
    small = diagnostics.update_ratios(net, 'gluon_opt.sgd', x, y, learning_rate=0.01)
    assert all(k.endswith('weight') for k in small)        # zero-initialised biases left out
    net2 = models.mlp(hidden=(8,))
    training.seed_everything(0)
    net2.initialize(mx.init.Xavier())
    large = diagnostics.update_ratios(net2, 'gluon_opt.sgd', x, y, learning_rate=0.1)
    for k1, k2 in zip(sorted(small), sorted(large)):        # one SGD step: linear in lr
        assert large[k2] == pytest.approx(10 * small[k1], rel=1e-4)


def test_log_scale_candidates():
    np.testing.assert_allclose(diagnostics.log_grid(1e-4, 1e-1, 4), [1e-4, 1e-3, 1e-2, 1e-1])
    draws = diagnostics.log_uniform(1e-4, 1e-1, 2000, np.random.RandomState(0))
    assert draws.min() >= 1e-4 and draws.max() <= 1e-1
    # uniform on the log scale: each decade gets about a third of the draws
    counts = np.histogram(np.log10(draws), bins=[-4, -3, -2, -1])[0]
    assert np.all(np.abs(counts / 2000 - 1 / 3) < 0.05)
    with pytest.raises(ValueError):
        diagnostics.log_grid(0, 1, 3)
    with pytest.raises(ValueError):
        diagnostics.log_uniform(1, 0.1, 3, np.random.RandomState(0))


def test_sgd_run_and_warmup_cosine():
    loaders = data.load_fashion_mnist(batch_size=64, train_subset=256, val_size=0,
                                      test_subset=128)
    h = tricks_lab.sgd_run(loaders, epochs=1, lr=0.05, train_eval_size=256)
    assert h is not None and len(tricks_lab.by_epoch(h).split()) == 1
    assert tricks_lab.sgd_run(loaders, epochs=1, lr=1e5) is None            # diverged
    sched = tricks_lab.warmup_cosine(0.5, 10, 3)
    lrs = [sched(t) for t in range(1, 31)]
    assert lrs[8] == pytest.approx(0.5) and lrs[0] == pytest.approx(0.5 / 9)
    assert lrs[-1] == pytest.approx(0.0, abs=1e-12)
