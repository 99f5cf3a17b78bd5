"""The training loop: determinism under a seed, NaN/inf detection, several contexts, the
generic (Gluon DataLoader) path, schedules; and the MLP builders."""
import math
from functools import partial

import numpy as np
import mxnet as mx
import pytest

import gluon_opt  # noqa: F401  (registers the optimizers)
from gluon_opt.experiments import data, models, training, compare
from gluon_opt.teaching import inspection
from gluon_opt.trainer import Trainer


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


def _diverge_with_trainer(small, value, make_trainer, **mlp):
    """Train (through ``make_trainer(params, name, hyperparameters)``) on data whose batch 7
    holds ``value`` in one pixel; returns the ``TrainingDiverged`` raised."""
    poisoned = data.Loaders(_PoisonedLoader(small.train, 7, value), small.val, small.test)
    net = models.mlp((32,), **mlp)
    training.seed_everything(0)
    net.initialize(mx.init.Xavier())
    trainer = make_trainer(net.collect_params(), 'gluon_opt.adam', {'learning_rate': 1e-3})
    with pytest.raises(training.TrainingDiverged) as err:
        training.train(net, trainer, poisoned, 2, progress=False, check_every=4,
                       train_eval_size=300)
    return err.value


def test_non_finite_weights_behind_a_finite_loss_are_caught(small):
    # MXNet's ReLU maps NaN to 0: the NaN pixel of batch 7 poisons the first layer's weights
    # while the loss stays finite; the weight check at batch 8 catches it
    e = _diverge_with_trainer(small, float('nan'), mx.gluon.Trainer, dropout=0.1)
    assert e.weights and (e.epoch, e.batch) == (1, 8) and math.isfinite(e.loss)
    assert 'weights became NaN or inf by epoch 1, batch 8' in str(e)


def test_a_trainer_that_refuses_nonfinite_gradients_stops_at_their_batch(small):
    # gluon_opt.Trainer(nonfinite='raise') refuses batch 7's inf gradients before they reach
    # the weights; train() reports it as a divergence at that batch
    e = _diverge_with_trainer(small, float('inf'), partial(Trainer, nonfinite='raise'),
                              activation='tanh')
    assert e.gradients and (e.epoch, e.batch) == (1, 7) and math.isfinite(e.loss)
    assert 'the gradients became NaN or inf at epoch 1, batch 7' in str(e)


def test_a_finite_loss_that_explodes_is_a_divergence_at_its_batch(small):
    # one pixel of batch 7 at 1e8: that batch's loss is huge (about 1e5) but finite
    poisoned = data.Loaders(_PoisonedLoader(small.train, 7, 1e8), small.val, small.test)
    with pytest.raises(training.TrainingDiverged) as err:
        _run(poisoned, seed=0, check_every=4)
    e = err.value
    assert (e.epoch, e.batch) == (1, 7) and math.isfinite(e.loss)
    initial = e.history.records[0]['train_loss']
    assert e.limit == pytest.approx(training.EXPLODE_FACTOR * initial) and e.loss > e.limit
    assert 'the training loss exploded to %.4g at epoch 1, batch 7 (over 1000 times its ' \
        'initial %.4g)' % (e.loss, initial) in str(e)


def test_builtin_optimizer_with_valid_settings_that_explodes_is_caught(small):
    # MXNet's NAG accepts a negative rate: gradient ascent, the loss reaches 1e5 while finite.
    # train_eval_size=0: no epoch-0 loss, the first minibatch's is the reference
    with pytest.raises(training.TrainingDiverged, match='nag diverged: the training loss '
                                                        'exploded to') as err:
        training.train(models.mlp((32,)), 'nag', small, 1, progress=False,
                       optimizer_params={'learning_rate': -1.0}, train_eval_size=0)
    assert err.value.limit > 1000  # 1000 times a cross-entropy near ln 10


def test_a_spike_that_recovers_is_not_a_divergence(small):
    # SGD at rate 3 peaks near 40 times its initial loss and settles at chance: a bad run,
    # not a diverged one (EXPLODE_FACTOR keeps a wide margin over such spikes)
    h = _run(small, seed=0, opt='gluon_opt.sgd', params={'learning_rate': 3.0}, check_every=1)
    peak = max(s[3] for s in h.steps) / h.records[0]['train_loss']
    assert 10 < peak < training.EXPLODE_FACTOR / 10 and len(h.records) == 3


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
# -- gradient noise and effective learning rates (course helpers) ------------------------------

def _initialised(width=16, seed=0):
    net = models.mlp((width,))
    training.seed_everything(seed)
    net.initialize(mx.init.Xavier())
    return net


def test_flat_gradient_is_every_parameter_gradient(small):
    net = _initialised()
    x, y = small.train.data[:64], small.train.label[:64]
    g = inspection.flat_gradient(net, x, y)
    sizes = sum(p.data().size for p in net.collect_params().values())
    assert g.shape == (sizes,) and g.dtype == np.float64 and np.abs(g).sum() > 0
    # the mean loss over a batch: the gradient of two copies of a batch is the batch's
    g2 = inspection.flat_gradient(net, mx.nd.concat(x, x, dim=0), mx.nd.concat(y, y, dim=0))
    np.testing.assert_allclose(g2, g, rtol=1e-4, atol=1e-7)


def test_gradient_noise_shrinks_with_batch_size_and_vanishes_at_full_batch(small):
    net = _initialised()
    x, y = small.train.data[:512], small.train.label[:512]
    noise = inspection.gradient_noise(net, x, y, [4, 64, 512], samples=6, seed=1)
    rv = [noise[b]['relative_variance'] for b in (4, 64, 512)]
    cos = [noise[b]['cosine'] for b in (4, 64, 512)]
    assert rv[0] > 4 * rv[1] > 0          # sampling theory: about 16x for 16x the batch
    assert rv[2] < 1e-8 and abs(cos[2] - 1) < 1e-6   # all 512 examples: the full gradient
    assert cos[0] < cos[1] < cos[2]
    with pytest.raises(ValueError, match='batch size'):
        inspection.gradient_noise(net, x, y, [513])


@pytest.mark.parametrize('name', ['adam', 'rmsprop', 'adagrad', 'sgd'])
def test_effective_learning_rates_after_one_step(small, name):
    net = _initialised()
    x, y = small.train.data[:64], small.train.label[:64]
    trainer = mx.gluon.Trainer(net.collect_params(), 'gluon_opt.' + name,
                               {'learning_rate': 0.01})
    grads = {}
    with mx.autograd.record():
        loss = mx.gluon.loss.SoftmaxCrossEntropyLoss()(net(x), y)
    loss.backward()
    for p in net.collect_params().values():
        grads[p.name] = p.grad().asnumpy().astype(np.float64) / 64
    trainer.step(64)
    rates = inspection.effective_learning_rates(trainer)
    assert set(rates) == set(grads)
    for pname, g in grads.items():
        a = np.abs(g)
        if name == 'sgd':
            expected = np.full(g.shape, 0.01)
        elif name == 'adam':       # v_hat = g^2 after one step
            expected = 0.01 / (a + 1e-8)
        elif name == 'rmsprop':    # v = (1 - rho) g^2
            expected = 0.01 / (np.sqrt(0.1) * a + 1e-8)
        else:                      # history = g^2
            expected = 0.01 / (a + 1e-10)
        if name != 'sgd':
            expected = np.where(g == 0, np.nan, expected)
        # float32 states and gradients: relative 1e-4 on rates that span decades
        np.testing.assert_allclose(rates[pname], expected, rtol=1e-4)


def test_effective_learning_rates_refuses_what_it_cannot_read(small):
    net = _initialised()
    trainer = mx.gluon.Trainer(net.collect_params(), 'gluon_opt.lion', {'learning_rate': 1e-4})
    with pytest.raises(ValueError, match='adam'):
        inspection.effective_learning_rates(trainer)
    trainer = mx.gluon.Trainer(net.collect_params(), 'gluon_opt.adam', {})
    with pytest.raises(ValueError, match='no optimizer state|not made a step'):
        inspection.effective_learning_rates(trainer)


def test_history_curves_plots_epochs_steps_and_time(small):
    import matplotlib
    matplotlib.use('Agg', force=True)
    from gluon_opt.teaching import course_plots
    h = _run(small, seed=0)
    for x, n in (('epoch', len(h.records)), ('step', len(h.steps) + 1), ('time', len(h.steps) + 1)):
        ax = course_plots.history_curves({'adam': h}, x=x)
        (line,) = ax.get_lines()
        assert len(line.get_xdata()) == n and line.get_label() == 'adam'
    with pytest.raises(ValueError, match="'epoch', 'step' or 'time'"):
        course_plots.history_curves({'adam': h}, x='wall')


def test_reached_finds_the_first_sample_under_the_target():
    h = training.History()
    h.steps = [(10, 1, 0.5, 1.0), (20, 1, 1.0, 0.7), (30, 2, 1.6, 0.8), (40, 2, 2.0, 0.6)]
    assert compare.reached(h, 0.75) == (20, 1.0)
    assert compare.reached(h, 0.6) == (40, 2.0)
    assert compare.reached(h, 0.5) is None and compare.reached(None, 1.0) is None
