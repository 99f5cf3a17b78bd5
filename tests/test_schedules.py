"""gluon_opt.schedules against independent references over many updates: torch's schedulers
(LambdaLR, LinearLR, CosineAnnealingLR, MultiStepLR, SequentialLR, ReduceLROnPlateau) and
optax's documented formulas, transcribed below (optax is not installed beside MXNet); then
pickling, states files, gluon.Trainer with gluon_opt's and MXNet's optimizers, argument
errors, and the training loop's plateau reports.

Index convention: MXNet calls a scheduler with ``num_update`` t (1 for the first update); a
torch scheduler after t calls of ``step()`` has ``last_epoch`` t, and optax's schedules take a
count: so each comparison puts our value at t beside torch's after t steps and optax's
``schedule(t)``.
"""
import math
import pickle
import sys

import numpy as np
import mxnet as mx
import pytest

import gluon_opt  # noqa: F401  (registers the optimizers)
from gluon_opt import schedules
from gluon_opt.schedules import (WSDScheduler, ReduceLROnPlateauScheduler,
                                 SequentialScheduler)

torch = pytest.importorskip('torch')

STEPS = 240  # every phase of each schedule below spans tens of these


# -- optax's schedules, transcribed from optax/schedules/_schedule.py (v0.2) ------------------

def optax_constant(value):
    return lambda count: value


def optax_linear(init_value, end_value, transition_steps, transition_begin=0):
    def schedule(count):
        count = min(max(count - transition_begin, 0), transition_steps)
        frac = 1 - count / transition_steps
        return (init_value - end_value) * frac + end_value
    return schedule


def optax_cosine_decay(init_value, decay_steps, alpha=0.0, exponent=1.0):
    def schedule(count):
        count = min(count, decay_steps)
        cosine_decay = 0.5 * (1 + math.cos(math.pi * count / decay_steps))
        return init_value * ((1 - alpha) * cosine_decay ** exponent + alpha)
    return schedule


def optax_join(schedules_, boundaries):
    def schedule(step):
        output = schedules_[0](step)
        for boundary, s in zip(boundaries, schedules_[1:]):
            output = output if step < boundary else s(step - boundary)
        return output
    return schedule


def hagele_1_sqrt(init_value, end_value, decay_steps):
    """Hägele et al. (2024), eq. (1-sqrt cooldown): lr = end + (init - end)(1 - sqrt(n/N))."""
    return lambda n: end_value + (init_value - end_value) * (1 - math.sqrt(min(n, decay_steps)
                                                                           / decay_steps))


def _wsd_optax(base, begin, warmup, total, decay, shape, final):
    start = total - decay
    if shape == 'linear':
        tail = optax_linear(base, final, decay)
    elif shape == 'cosine':
        tail = optax_cosine_decay(base, decay, alpha=final / base)
    else:
        tail = hagele_1_sqrt(base, final, decay)
    parts, bounds = [optax_constant(base), tail], [start]
    if warmup:
        parts, bounds = [optax_linear(begin, base, warmup)] + parts, [warmup] + bounds
    return optax_join(parts, bounds)


def _rel(a, b):
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    return float(np.max(np.abs(a - b) / np.maximum(np.abs(b), 1e-300)))


# the cases: warmup from 0 and from a floor, every shape, a floor at the end or none, no warmup
WSD_CASES = [dict(base_lr=0.1, warmup_steps=20, decay_fraction=0.25, decay_shape=shape,
                  final_lr=final, warmup_begin_lr=begin)
             for shape in schedules.WSD_DECAY_SHAPES
             for final, begin in ((0.0, 0.0), (0.01, 0.02))] + \
    [dict(base_lr=0.05, warmup_steps=0, decay_fraction=0.1, decay_shape='cosine', final_lr=0.0,
          warmup_begin_lr=0.0)]


@pytest.mark.parametrize('case', WSD_CASES, ids=lambda c: '%s-w%d-f%g' % (
    c['decay_shape'], c['warmup_steps'], c['final_lr']))
def test_wsd_is_optax_join_of_its_phases(case):
    total = 200
    ours = WSDScheduler(total, **case)
    decay = int(round(case['decay_fraction'] * total))
    ref = _wsd_optax(case['base_lr'], case['warmup_begin_lr'], case['warmup_steps'], total,
                     decay, case['decay_shape'], case['final_lr'])
    ts = range(0, STEPS + 1)
    got, want = [ours(t) for t in ts], [ref(t) for t in ts]
    # the same float64 operations up to reassociation (optax's alpha form of the cosine,
    # (init - end) * frac + end for the linear ones): a few ulps, hence 1e-13
    assert _rel(got, want) < 1e-13, _rel(got, want)
    print('WSD %s vs optax join_schedules: max rel err %.2e over %d updates'
          % (case['decay_shape'], _rel(got, want), len(ts)))
    assert got[total] == pytest.approx(case['final_lr'], abs=1e-15)
    assert got[total - decay] == case['base_lr']  # the stable phase ends at the top


def test_wsd_without_decay_stays_at_the_top():
    sched = WSDScheduler(50, base_lr=0.1, decay_fraction=0.0, warmup_steps=5, final_lr=0.01)
    assert [sched(t) for t in (0, 5, 50, 51, 10 ** 6)] == [0.0, 0.1, 0.1, 0.1, 0.1]
    assert WSDScheduler(50, decay_fraction=0.009).decay_steps == 0  # 0.45 rounds to 0


@pytest.mark.parametrize('shape', schedules.WSD_DECAY_SHAPES)
def test_wsd_against_torch_sequential_of_lambdas(shape):
    """torch's SequentialLR of LinearLR (warmup), ConstantLR-like LambdaLR and a LambdaLR decay:
    the same values after t steps as WSD at num_update t."""
    base, total, warmup, decay = 0.1, 200, 20, 40
    opt = torch.optim.SGD([torch.zeros(1, dtype=torch.float64)], lr=base)
    g = {'linear': lambda x: 1 - x, 'cosine': lambda x: 0.5 * (1 + math.cos(math.pi * x)),
         '1-sqrt': lambda x: 1 - math.sqrt(x)}[shape]
    seq = torch.optim.lr_scheduler.SequentialLR(opt, [
        torch.optim.lr_scheduler.LinearLR(opt, start_factor=1e-3, end_factor=1.0,
                                          total_iters=warmup),
        torch.optim.lr_scheduler.LambdaLR(opt, lambda k: 1.0),
        torch.optim.lr_scheduler.LambdaLR(opt, lambda k: g(min(k, decay) / decay))],
        milestones=[warmup, total - decay])
    ours = WSDScheduler(total, base_lr=base, decay_fraction=decay / total, decay_shape=shape,
                        warmup_steps=warmup, warmup_begin_lr=1e-3 * base)
    got, want = [], []
    for t in range(1, STEPS + 1):
        opt.step()
        seq.step()
        got.append(ours(t))
        want.append(seq.get_last_lr()[0])
    # LinearLR multiplies the previous rate by a ratio each step (torch's recursive form):
    # about one ulp per warmup step, 20 steps -> well under 1e-13
    assert _rel(got, want) < 1e-13, _rel(got, want)
    print('WSD %s vs torch SequentialLR: max rel err %.2e over %d updates'
          % (shape, _rel(got, want), STEPS))


def _torch_sgd(lr):
    return torch.optim.SGD([torch.zeros(1, dtype=torch.float64)], lr=lr)


def test_sequential_of_mxnet_schedulers_against_torch_sequential_lr():
    """MXNet's own warmup (FactorScheduler), CosineScheduler and MultiFactorScheduler joined,
    against torch's LinearLR, CosineAnnealingLR and MultiStepLR joined by SequentialLR."""
    base, warmup, cos_len = 0.2, 30, 100
    ours = SequentialScheduler([
        mx.lr_scheduler.FactorScheduler(10 ** 9, 1.0, base_lr=base, warmup_steps=warmup,
                                        warmup_begin_lr=0.01 * base),
        mx.lr_scheduler.CosineScheduler(cos_len, base_lr=base, final_lr=0.1 * base),
        mx.lr_scheduler.MultiFactorScheduler([20, 50], factor=0.5, base_lr=base)],
        milestones=[warmup, warmup + cos_len])
    opt = _torch_sgd(base)
    lr = torch.optim.lr_scheduler
    seq = lr.SequentialLR(opt, [
        lr.LinearLR(opt, start_factor=0.01, end_factor=1.0, total_iters=warmup),
        lr.CosineAnnealingLR(opt, T_max=cos_len, eta_min=0.1 * base),
        # SequentialLR restarts MultiStepLR from the base rate; MXNet's MultiFactorScheduler
        # changes after update m (num_update > m), torch's at count m: its milestones are one
        # later
        lr.MultiStepLR(opt, milestones=[21, 51], gamma=0.5)],
        milestones=[warmup, warmup + cos_len])
    got, want = [], []
    for t in range(1, STEPS + 1):
        opt.step()
        seq.step()
        got.append(ours(t))
        want.append(seq.get_last_lr()[0])
    # CosineAnnealingLR updates recursively (each rate from the previous one): its rounding
    # accumulates over the 100 cosine steps to ~1e-13 relative; MXNet's is closed-form
    assert _rel(got, want) < 1e-11, _rel(got, want)
    print('sequential vs torch SequentialLR: max rel err %.2e over %d updates'
          % (_rel(got, want), STEPS))


def test_sequential_is_optax_join_schedules():
    parts = [WSDScheduler(50, base_lr=0.1, decay_fraction=0.4, decay_shape='linear',
                          warmup_steps=10),
             mx.lr_scheduler.PolyScheduler(80, base_lr=0.05, pwr=2, final_lr=0.001),
             WSDScheduler(100, base_lr=0.02, decay_fraction=0.5, decay_shape='cosine')]
    ours = SequentialScheduler(parts, milestones=[50, 130])
    ref = optax_join([
        _wsd_optax(0.1, 0.0, 10, 50, 20, 'linear', 0.0),
        lambda c: 0.001 + (0.05 - 0.001) * (1 - min(c, 80) / 80) ** 2,
        _wsd_optax(0.02, 0.0, 0, 100, 50, 'cosine', 0.0)], [50, 130])
    got = [ours(t) for t in range(STEPS + 1)]
    want = [ref(t) for t in range(STEPS + 1)]
    assert _rel(got, want) < 1e-13  # same float64 operations up to reassociation
    print('sequential vs optax join_schedules: max rel err %.2e over %d updates'
          % (_rel(got, want), STEPS + 1))
    assert ours(49) == parts[0](49) and ours(50) == parts[1](0) and ours(130) == parts[2](0)


# -- ReduceLROnPlateau -------------------------------------------------------------------------

def _metrics(n, seed, kind):
    """A loss that falls, stalls, wobbles and jumps (every branch of the rule is taken)."""
    rng = np.random.RandomState(seed)
    t = np.arange(n)
    base = np.maximum(2.0 * np.exp(-t / 15.0), 0.3) if kind == 'min' \
        else np.minimum(1 - np.exp(-t / 15.0), 0.8)
    noise = rng.normal(0, 0.01, n)
    values = base + noise
    values[n // 2] = float('nan')  # NaN never improves, in torch and here
    return [float(v) for v in values]


PLATEAU_CASES = [
    dict(),  # torch's defaults
    dict(factor=0.5, patience=2),
    dict(factor=0.5, patience=1, threshold=0.01, threshold_mode='abs', cooldown=2),
    dict(mode='max', factor=0.3, patience=3, threshold=1e-3, min_lr=1e-3),
    dict(mode='max', factor=0.9, patience=0, threshold=0.0, threshold_mode='abs',
         cooldown=1, eps=1e-3),
    dict(factor=0.2, patience=0, min_lr=2e-4, eps=0.0),
]


@pytest.mark.parametrize('case', PLATEAU_CASES, ids=lambda c: ','.join(
    '%s=%s' % kv for kv in sorted(c.items())) or 'defaults')
def test_plateau_equals_torch_reduce_lr_on_plateau(case):
    mode = case.get('mode', 'min')
    metrics = _metrics(150, seed=len(case), kind=mode)
    opt = _torch_sgd(0.1)
    ref = torch.optim.lr_scheduler.ReduceLROnPlateau(opt, **case)
    ours = ReduceLROnPlateauScheduler(base_lr=0.1, **case)
    got, want = [], []
    for i, m in enumerate(metrics):
        report = ours.report if i % 2 else ours.step  # torch's name is an alias
        got.append(report(m))
        ref.step(m)
        want.append(opt.param_groups[0]['lr'])
        assert ours(1000 + i) == got[-1]  # the optimizer sees what the report left
    # the same float64 operations in the same order: equal bit for bit
    assert got == want
    print('plateau %s vs torch ReduceLROnPlateau: equal over %d metrics, %d reductions'
          % (case, len(metrics), len(set(got)) - 1))
    assert len(set(got)) > 2, 'the sequence should make the rule reduce several times'
    assert (ours.best, ours.num_bad_epochs, ours.cooldown_counter) == (
        ref.best, ref.num_bad_epochs, ref.cooldown_counter)


def test_plateau_takes_the_optimizers_learning_rate_and_warms_up_to_the_current_rate():
    sched = ReduceLROnPlateauScheduler(base_lr=1.0, factor=0.5, patience=0, warmup_steps=10)
    opt = mx.optimizer.create('gluon_opt.sgd', learning_rate=0.4, lr_scheduler=sched)
    assert sched.base_lr == 0.4 and sched(10) == 0.4  # MXNet writes learning_rate there
    assert opt.learning_rate == 0.0  # num_update 0: the warmup's start
    assert sched(5) == pytest.approx(0.2)
    sched.report(1.0)
    sched.report(2.0)  # worse: halved
    assert sched(10) == 0.2 and sched(5) == pytest.approx(0.1)


# -- pickling, states files, Trainer --------------------------------------------------------

def _all_three():
    return [WSDScheduler(100, base_lr=0.1, warmup_steps=10, decay_shape='cosine'),
            ReduceLROnPlateauScheduler(base_lr=0.1, factor=0.5, patience=1, cooldown=1),
            SequentialScheduler([mx.lr_scheduler.FactorScheduler(10 ** 9, 1.0, base_lr=0.1,
                                                                 warmup_steps=10),
                                 ReduceLROnPlateauScheduler(base_lr=0.1, patience=0)], [10])]


@pytest.mark.parametrize('index', range(3), ids=['wsd', 'plateau', 'sequential'])
def test_pickle_round_trip_mid_run_continues_identically(index):
    a = _all_three()[index]
    for t, m in zip(range(1, 40), _metrics(40, 0, 'min')):
        a(t)
        if hasattr(a, 'report'):
            a.report(m)
    b = pickle.loads(pickle.dumps(a, 0))  # protocol 0, as MXNet's kvstore sends optimizers
    assert type(b) is type(a)
    for t, m in zip(range(40, 120), _metrics(80, 1, 'min')):
        assert a(t) == b(t)
        if hasattr(a, 'report'):
            assert a.report(m) == b.report(m)


def _net_and_grad(ctx=None):
    net = mx.gluon.nn.Dense(3, in_units=4)
    net.initialize(mx.init.Constant(0.5), ctx=ctx)
    return net


@pytest.mark.parametrize('optimizer', ['gluon_opt.sgd', 'sgd'])
@pytest.mark.parametrize('update_on_kvstore', [False, True])
def test_trainer_steps_with_the_scheduled_rate(optimizer, update_on_kvstore):
    """Plain SGD's step is -lr * grad: the weights show the rate each update used. Two
    contexts, so that a kvstore exists and update_on_kvstore means something."""
    ctxs = [mx.cpu(0), mx.cpu(1)]
    net = _net_and_grad(ctxs)
    sched = WSDScheduler(12, base_lr=0.1, warmup_steps=3, decay_fraction=0.5,
                         decay_shape='1-sqrt')
    trainer = mx.gluon.Trainer(net.collect_params(), optimizer,
                               {'learning_rate': 0.1, 'lr_scheduler': sched, 'wd': 0.0},
                               kvstore='device', update_on_kvstore=update_on_kvstore)
    for t in range(1, 16):
        before = net.weight.data(ctxs[1]).copy()
        with mx.autograd.record():
            losses = [net(mx.nd.ones((1, 4), ctx=c)).sum() for c in ctxs]
        mx.autograd.backward(losses)
        trainer.step(1)
        moved = (before - net.weight.data(ctxs[1])).asnumpy()
        # dloss/dW summed over the two contexts = 2 everywhere; float32 weights: 1e-5 relative
        np.testing.assert_allclose(moved, 2 * sched(t), rtol=1e-5, atol=1e-7)
    assert trainer.learning_rate == sched(15) == 0.0


def test_states_file_restores_the_schedules_progress(tmp_path):
    net = _net_and_grad()

    def make():
        return gluon_opt.Trainer(net.collect_params(), 'gluon_opt.sgd', {
            'lr_scheduler': SequentialScheduler([
                WSDScheduler(20, base_lr=0.1, warmup_steps=5),
                ReduceLROnPlateauScheduler(base_lr=0.05, patience=0)], [20])})
    a = make()
    x = mx.nd.ones((2, 4))
    for t in range(25):
        with mx.autograd.record():
            loss = net(x).sum()
        loss.backward()
        a.step(1)
    a._optimizer.lr_scheduler.report(1.0)
    a._optimizer.lr_scheduler.report(2.0)  # the plateau child has reduced once
    path = str(tmp_path / 'states')
    a.save_states(path)
    b = make()
    b.load_states(path)
    sb, sa = b._optimizer.lr_scheduler, a._optimizer.lr_scheduler
    assert sb.schedulers[1].lr == sa.schedulers[1].lr == pytest.approx(0.005)
    assert b.learning_rate == a.learning_rate


def test_training_loop_reports_the_validation_loss_to_a_plateau_schedule():
    from gluon_opt.experiments import data, models, training
    loaders = data.load_fashion_mnist(batch_size=64, val_size=200, train_subset=640,
                                      test_subset=200, seed=0)
    sched = training.make_lr_scheduler('plateau', 0.05, len(loaders.train), 3)
    seen = []
    report = sched.report
    sched.report = lambda m: seen.append(m) or report(m)
    h = training.train(models.mlp((16,)), 'gluon_opt.sgd', loaders, 3, seed=0,
                       progress=False, optimizer_params={'learning_rate': 0.05},
                       lr_scheduler=sched, train_eval_size=100)
    assert seen == h.column('val_loss')[1:]
    assert sched.num_reports == 3
    wsd = training.make_lr_scheduler('wsd', 0.1, 10, 5, warmup_epochs=1)
    assert isinstance(wsd, WSDScheduler)
    assert (wsd.warmup_steps, wsd.decay_steps, wsd.max_update) == (10, 10, 50)


# -- argument errors -------------------------------------------------------------------------

_ok_wsd = dict(max_update=100)
_ok_seq = dict(schedulers=[mx.lr_scheduler.FactorScheduler(10), WSDScheduler(10)],
               milestones=[5])

ERRORS = [
    (WSDScheduler, dict(max_update=0), 'max_update'),
    (WSDScheduler, dict(max_update=10.0), 'max_update'),
    (WSDScheduler, dict(_ok_wsd, base_lr=-1), 'base_lr'),
    (WSDScheduler, dict(_ok_wsd, base_lr=float('nan')), 'base_lr'),
    (WSDScheduler, dict(_ok_wsd, decay_fraction=1.5), 'decay_fraction'),
    (WSDScheduler, dict(_ok_wsd, decay_fraction=-0.1), 'decay_fraction'),
    (WSDScheduler, dict(_ok_wsd, decay_shape='exp'), 'decay_shape'),
    (WSDScheduler, dict(_ok_wsd, final_lr=-0.1), 'final_lr'),
    (WSDScheduler, dict(_ok_wsd, warmup_steps=-1), 'warmup_steps'),
    (WSDScheduler, dict(_ok_wsd, warmup_steps=2.5), 'warmup_steps'),
    (WSDScheduler, dict(_ok_wsd, warmup_steps=90, decay_fraction=0.2), 'warmup_steps'),
    (WSDScheduler, dict(_ok_wsd, warmup_begin_lr=0.5), 'warmup_begin_lr'),
    (ReduceLROnPlateauScheduler, dict(mode='minimum'), 'mode'),
    (ReduceLROnPlateauScheduler, dict(factor=1.0), 'factor'),
    (ReduceLROnPlateauScheduler, dict(factor=0.0), 'factor'),
    (ReduceLROnPlateauScheduler, dict(patience=-1), 'patience'),
    (ReduceLROnPlateauScheduler, dict(patience=True), 'patience'),
    (ReduceLROnPlateauScheduler, dict(threshold=-1e-4), 'threshold'),
    (ReduceLROnPlateauScheduler, dict(threshold_mode='relative'), 'threshold_mode'),
    (ReduceLROnPlateauScheduler, dict(cooldown=0.5), 'cooldown'),
    (ReduceLROnPlateauScheduler, dict(min_lr=-1.0), 'min_lr'),
    (ReduceLROnPlateauScheduler, dict(eps='1e-8'), 'eps'),
    (ReduceLROnPlateauScheduler, dict(base_lr=None), 'base_lr'),
    (SequentialScheduler, dict(_ok_seq, schedulers=[WSDScheduler(10)], milestones=[]),
     'schedulers'),
    (SequentialScheduler, dict(_ok_seq, schedulers=[WSDScheduler(10), 'cosine']),
     r'schedulers\[1\]'),
    (SequentialScheduler, dict(_ok_seq, schedulers=[_ok_seq['schedulers'][0]] * 2),
     'schedulers'),
    (SequentialScheduler, dict(_ok_seq, milestones=[5, 6]), 'milestones'),
    (SequentialScheduler, dict(_ok_seq, milestones=5), 'milestones'),
    (SequentialScheduler, dict(_ok_seq, milestones=[0]), r'milestones\[0\]'),
    (SequentialScheduler, dict(schedulers=[WSDScheduler(10), WSDScheduler(10),
                                           WSDScheduler(10)], milestones=[5, 5]),
     'milestones'),
]


@pytest.mark.parametrize('cls,kwargs,name', ERRORS,
                         ids=['%s-%d' % (c.__name__, i) for i, (c, _, _) in enumerate(ERRORS)])
def test_bad_arguments_are_refused_by_name(cls, kwargs, name):
    with pytest.raises(ValueError, match=r'^%s: %s=.* is invalid; expected'
                       % (cls.__name__, name)):
        cls(**kwargs)


def test_a_metric_that_is_not_a_number_is_refused():
    with pytest.raises(ValueError, match='ReduceLROnPlateauScheduler: metric=.*expected a num'):
        ReduceLROnPlateauScheduler().report('low')


def test_compare_runs_wsd_and_plateau(tmp_path):
    import json
    from gluon_opt import cli
    lrs = {}
    # a rate high enough for the validation loss to go up now and then (momentum 0.9; on the
    # machine this was written on, after epoch 4): the check below holds whether it does or not
    for schedule, opt in (('wsd', 'sgd:learning_rate=0.05'),
                          ('plateau', 'sgd:learning_rate=0.5,momentum=0.9')):
        out = tmp_path / schedule
        assert cli.main(['compare', '--opt', opt, '--schedule', schedule,
                         '--epochs', '5', '--hidden', '16', '--train-subset', '320',
                         '--no-progress', '--out', str(out)]) == 0
        with open(out / 'history.json') as f:
            records = json.load(f)['runs'][0]['records']
        lrs[schedule] = [r['lr'] for r in records]
    # WSD: constant through epoch 4, the last 20% (epoch 5) decays to 0
    assert lrs['wsd'][1:] == pytest.approx([0.05] * 4 + [0.0], abs=1e-12)
    # plateau (patience 0): halved after each epoch whose validation loss is not below the
    # best so far by 0.01%; an epoch's record shows the rate it trained with
    best, lr, expected = math.inf, 0.5, []
    for r in records[1:]:
        expected.append(lr)
        if r['val_loss'] < best * (1 - 1e-4):
            best = r['val_loss']
        else:
            lr *= 0.5
    assert lrs['plateau'][1:] == expected
    print('compare --schedule plateau, learning rates per epoch:', expected)


def test_sequential_of_gluoncv_schedulers_matches_gluoncv_lr_sequential():
    """gluoncv's own composition (LRSequential: each schedule for its niters updates) is a
    third independent reference, and its LRScheduler a third family of children."""
    from gluon_opt import _compat
    _compat.import_gluoncv()
    from gluoncv.utils import LRScheduler, LRSequential

    def parts():
        return [LRScheduler('linear', base_lr=0.0, target_lr=0.1, niters=30),
                LRScheduler('cosine', base_lr=0.1, target_lr=0.001, niters=150)]
    ours = SequentialScheduler(parts(), milestones=[30])
    ref = LRSequential(parts())
    got = [ours(t) for t in range(STEPS)]
    want = [ref(t) for t in range(STEPS)]
    assert got == want  # the same children, called with the same counts
    # gluoncv's ramps end at niters - 1: the warmup tops out one update before the cosine
    assert ours(0) == 0.0 and ours(28) < ours(29) == ours(30) == 0.1
    print('sequential vs gluoncv LRSequential: max rel err %.2e over %d updates'
          % (_rel(got, want), STEPS))


_SERVER_SCRIPT = '''
import mxnet as mx
import gluon_opt
from gluon_opt.schedules import WSDScheduler
from mxnet import nd
kv = mx.kv.create('dist_sync')
sched = WSDScheduler(4, base_lr=0.1, warmup_steps=2, decay_fraction=0.5,
                     decay_shape='linear')
kv.set_optimizer(mx.optimizer.create('gluon_opt.sgd', learning_rate=0.1, lr_scheduler=sched))
kv.init(3, nd.ones((4,)))
out = nd.zeros((4,))
for _ in range(5):
    kv.push(3, nd.ones((4,)))
    kv.pull(3, out=out)
    print('weight', out.asnumpy().tolist()[0], flush=True)
'''


def test_a_schedule_runs_on_the_kvstore_servers(tmp_path):
    """The optimizer and its schedule are pickled onto the server, which updates with them:
    plain SGD on the summed gradient of the two workers (2) moves the weight by 2 * lr_t,
    with lr_t = 0.05, 0.1 (warmup), 0.05, 0 (linear decay over updates 3-4), then 0."""
    from test_dist import launch, _job_processes
    script = tmp_path / 'server_schedule.py'
    script.write_text(_SERVER_SCRIPT)
    rc, out, _, port = launch([sys.executable, str(script)])
    assert rc == 0, out[-4000:]
    assert 'Exception ignored' not in out, out[-4000:]
    weights = [float(line.rsplit(' ', 1)[1]) for line in out.splitlines()
               if line.split('] ')[-1].startswith('weight ')]
    # two workers print the same five weights; float32 on the server: 1e-6
    assert len(weights) == 10, out[-4000:]
    expected = np.cumsum([0.0, 0.1, 0.2, 0.1, 0.0, 0.0])[1:]
    np.testing.assert_allclose(sorted(weights, reverse=True),
                               np.repeat(1 - expected, 2), atol=1e-6)
    assert not _job_processes(port)
