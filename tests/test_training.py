"""The training loop: determinism under a seed, NaN/inf detection, several contexts, the
generic (Gluon DataLoader) path, schedules; and the MLP builders."""
import math

import numpy as np
import mxnet as mx
import pytest

import gluon_opt  # noqa: F401  (registers the optimizers)
from gluon_opt import data, models, training, compare


@pytest.fixture(scope='module')
def small():
    return data.load_fashion_mnist(batch_size=64, val_size=200, train_subset=1280,
                                   test_subset=500, seed=0)


def _run(loaders, seed, opt='gluon_opt.adam', params=None, activation='relu', dropout=0.1,
         **kw):
    net = models.mlp((32,), dropout=dropout, activation=activation)
    return training.train(net, opt, loaders, 2, seed=seed, progress=False,
                          optimizer_params=params or {'learning_rate': 1e-3},
                          train_eval_size=300, **kw)


def test_same_seed_repeats_every_loss_and_other_seed_differs(small):
    a = _run(small, seed=5)
    b = _run(small, seed=5)
    c = _run(small, seed=6)
    assert a.losses() == b.losses()  # exactly: same init, dropout masks and batch order
    assert a.losses() != c.losses()
    assert a.column('epoch') == [0, 1, 2]


def test_history_records_and_timings(small):
    h = _run(small, seed=0, check_every=5)
    assert set(h.records[0]) == set(training.History.FIELDS)
    first, last = h.records[1], h.records[-1]
    assert last['train_loss'] < h.records[0]['train_loss']  # it learns
    assert last['test_acc'] > 0.5
    for rec in h.records[1:]:
        assert 0 < rec['step_time'] < rec['epoch_time']
        assert rec['val_acc'] is not None and rec['lr'] == pytest.approx(1e-3)
    assert last['wall_time'] == pytest.approx(first['epoch_time'] + last['epoch_time'])
    # 20 batches per epoch, a loss sample every 5
    assert [s[0] for s in h.steps] == [5, 10, 15, 20, 25, 30, 35, 40]
    assert h.to_dict()['meta']['seed'] == 0


class _PoisonedLoader(object):
    """Wraps a loader; batch ``bad`` of the first pass carries a NaN (or inf) pixel."""

    def __init__(self, loader, bad, value):
        self.loader, self.bad, self.value = loader, bad, value

    def __len__(self):
        return len(self.loader)

    def __iter__(self):
        for i, (x, y) in enumerate(self.loader, 1):
            if i == self.bad:
                x = x.copy()
                x[0, 0] = self.value
            yield x, y


@pytest.mark.parametrize('value', [float('nan'), float('inf')])
def test_non_finite_loss_stops_with_optimizer_epoch_and_batch(small, value):
    poisoned = data.Loaders(_PoisonedLoader(small.train, 7, value), small.val, small.test)
    with pytest.raises(training.TrainingDiverged) as err:
        _run(poisoned, seed=0, check_every=4, activation='tanh')  # tanh keeps NaN a NaN
    e = err.value
    if math.isnan(value):
        assert (e.epoch, e.batch) == (1, 7)  # the exact batch, although checked every 4
        assert not math.isfinite(e.loss)
    else:  # tanh(inf) = 1: batch 7's loss stays finite, its update poisons the weights
        assert (e.epoch, e.batch) == (1, 8)
    assert 'gluon_opt.adam diverged' in str(e) and 'epoch 1, batch %d' % e.batch in str(e)
    assert e.history is not None and len(e.history.records) == 1  # epoch 0 only


def test_non_finite_weights_behind_a_finite_loss_are_caught(small):
    # MXNet's ReLU maps NaN to 0: the NaN pixel of batch 7 poisons the first layer's weights
    # while the loss stays finite; the weight check at batch 8 catches it
    poisoned = data.Loaders(_PoisonedLoader(small.train, 7, float('nan')), small.val,
                            small.test)
    with pytest.raises(training.TrainingDiverged) as err:
        _run(poisoned, seed=0, check_every=4, activation='relu')
    e = err.value
    assert e.weights and (e.epoch, e.batch) == (1, 8) and math.isfinite(e.loss)
    assert 'weights became NaN or inf by epoch 1, batch 8' in str(e)


def test_huge_learning_rate_diverges_and_compare_reports_it(small):
    spec = compare.parse_spec('boom=sgd:learning_rate=1e30')
    ok = compare.parse_spec('adam')
    results = compare.run_comparison([spec, ok], small, lambda: models.mlp((16,)), 1,
                                     progress=False, train_eval_size=100)
    assert results[0].diverged and 'boom diverged' in results[0].diverged
    assert results[1].diverged is None
    rows = compare.summarize(results)
    table = compare.format_table(rows)
    assert 'diverged' in table.splitlines()[2] and 'boom' in table.splitlines()[2]
    assert rows[1]['test_acc'] > 0.3


def test_several_contexts_match_one(small):
    # no dropout: each device draws its own masks
    one = _run(small, seed=1, ctx=[mx.cpu(0)], dropout=0.0)
    two = _run(small, seed=1, ctx=[mx.cpu(0), mx.cpu(1)], dropout=0.0)
    assert two.meta['ctx'] == ['cpu(0)', 'cpu(1)']
    # the same gradients, summed in another order: equal up to float32 rounding
    flat = lambda h: np.array([np.nan if v is None else v for row in h.losses() for v in row])
    np.testing.assert_allclose(flat(one), flat(two), rtol=2e-3, atol=2e-3)


def test_gluon_dataloader_path_is_deterministic_too():
    L = data.get_dataloaders(batch_size=50, val_size=0, train_subset=400, test_subset=200)
    a = training.train(models.mlp((16,)), 'gluon_opt.sgd', L, 1, seed=3, progress=False,
                       optimizer_params={'learning_rate': 0.1}, train_eval_size=100)
    b = training.train(models.mlp((16,)), 'gluon_opt.sgd', L, 1, seed=3, progress=False,
                       optimizer_params={'learning_rate': 0.1}, train_eval_size=100)
    assert a.losses() == b.losses()
    assert a.final('val_acc') is None and a.final('test_acc') > 0.2


def test_cosine_schedule_with_warmup(small):
    steps = len(small.train)
    sched = training.make_lr_scheduler('cosine', 0.01, steps, 2, warmup_epochs=1)
    h = training.train(models.mlp((16,)), 'gluon_opt.sgd', small, 2, seed=0, progress=False,
                       optimizer_params={'learning_rate': 0.01}, lr_scheduler=sched,
                       train_eval_size=100)
    lrs = h.column('lr')
    assert lrs[1] == pytest.approx(0.01, rel=1e-6)  # end of warmup: the peak
    assert lrs[2] == pytest.approx(0.0, abs=1e-9)   # end of the cosine
    assert sched(steps // 2) == pytest.approx(0.005)  # halfway through the linear warmup
    assert training.make_lr_scheduler('constant', 0.1, 10, 2) is None
    with pytest.raises(ValueError, match='warmup_epochs'):
        training.make_lr_scheduler('cosine', 0.1, 10, 2, warmup_epochs=2)
    with pytest.raises(ValueError, match='schedule'):
        training.make_lr_scheduler('exp', 0.1, 10, 2)


def test_parse_ctx():
    assert training.parse_ctx('cpu') == [mx.cpu(0)]
    assert training.parse_ctx('cpu:0, cpu:1') == [mx.cpu(0), mx.cpu(1)]
    for bad in ('tpu', 'cpu:x', 'cpu:0,cpu:0'):
        with pytest.raises(ValueError):
            training.parse_ctx(bad)
    if mx.context.num_gpus() == 0:
        with pytest.raises(ValueError, match='gpu:0 is not available'):
            training.parse_ctx('gpu:0')


def test_train_argument_errors(small):
    with pytest.raises(ValueError, match='epochs'):
        training.train(models.mlp(), 'gluon_opt.sgd', small, 0, progress=False)
    with pytest.raises(ValueError, match='check_every'):
        training.train(models.mlp(), 'gluon_opt.sgd', small, 1, progress=False, check_every=0)


# --------------------------------------------------------------------------- models

def test_mlp_shapes_and_options():
    net = models.mlp((64, 32), batch_norm=True, dropout=0.2, activation='tanh')
    net.initialize()
    out = net(mx.nd.ones((3, 784)))
    assert out.shape == (3, 10)
    kinds = [type(b).__name__ for b in net]
    assert kinds == ['Dense', 'BatchNorm', 'Activation', 'Dropout'] * 2 + ['Dense']
    reg = models.softmax_regression()
    reg.initialize()
    assert reg(mx.nd.ones((2, 1, 28, 28))).shape == (2, 10) and len(reg) == 1
    assert net._active  # hybridised


@pytest.mark.parametrize('kwargs, match', [
    (dict(hidden=(0,)), 'hidden'), (dict(hidden=(12.5,)), 'hidden'),
    (dict(activation='swishy'), 'activation'), (dict(dropout=1.0), 'dropout'),
    (dict(num_classes=1), 'num_classes')])
def test_mlp_rejects_bad_shapes(kwargs, match):
    with pytest.raises(ValueError, match=match):
        models.mlp(**kwargs)


def test_parse_hidden():
    assert models.parse_hidden('256') == (256,)
    assert models.parse_hidden(' 128, 64 ') == (128, 64)
    assert models.parse_hidden('none') == ()
    for bad in ('abc', '128,-1', '128,,64', '0,5'):
        with pytest.raises(ValueError, match='invalid'):
            models.parse_hidden(bad)


def test_closure_optimizers_train_through_the_loop(small):
    """SAM evaluates the loss twice per step through a closure; the loop drives it and records
    the loss at the weights before the step, deterministically."""
    params = {'learning_rate': 1e-3, 'base': 'gluon_opt.adam', 'rho': 0.05}
    a = _run(small, 0, opt='gluon_opt.sam', params=params, dropout=0.0)
    b = _run(small, 0, opt='gluon_opt.sam', params=params, dropout=0.0)
    assert a.column('train_loss') == b.column('train_loss')
    assert a.final('train_loss') < a.records[0]['train_loss']


def test_schedule_free_is_evaluated_at_its_average(small):
    """The weights hold Schedule-Free's gradient point y during training; the recorded
    accuracy is that of the average x, and training resumes at y."""
    net = models.mlp((32,))
    net.initialize(mx.init.Xavier())
    trainer = training.Trainer(net.collect_params(), 'gluon_opt.schedulefree_adamw',
                               {'learning_rate': 2e-3})
    hist = training.train(net, trainer, small, epochs=1, progress=False)
    y = net[0].weight.data().asnumpy().copy()
    with gluon_opt.schedule_free.evaluation(trainer):
        assert not np.allclose(net[0].weight.data().asnumpy(), y)
        _, acc_x = training.evaluate(net, small.test, [mx.cpu()])
    # back at y, up to the rounding of x = (y - (1-b1) z)/b1 and back
    np.testing.assert_allclose(net[0].weight.data().asnumpy(), y, rtol=1e-5, atol=1e-6)
    assert hist.final('test_acc') == pytest.approx(acc_x)
