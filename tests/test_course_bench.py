"""Course helpers in bench and course_plots: grouped bar charts, operator counts, step times."""
import matplotlib
matplotlib.use('Agg')
import matplotlib.pyplot as plt
import pytest

from gluon_opt import kernels
from gluon_opt.experiments import bench
from gluon_opt.teaching import course_plots as cp


def test_bars_draws_one_bar_per_value_and_leaves_gaps():
    ax = cp.bars({'a': {'x': 1.0, 'y': 2.0}, 'b': {'x': 3.0}}, errors={'a': {'x': .1, 'y': .2},
                                                                      'b': {'x': .3}})
    heights = sorted(p.get_height() for p in ax.patches)
    assert heights == [1.0, 2.0, 3.0]
    assert [t.get_text() for t in ax.get_xticklabels()] == ['a', 'b']
    plt.close('all')


def test_operator_counts_reference_launches_more_than_builtin():
    shapes = [(4, 3), (3,)]
    ref = bench.operator_counts(shapes, 'adam', 'reference')
    mxnet = bench.operator_counts(shapes, 'adam', 'mxnet')
    assert mxnet == {'adam_update': 2}
    assert sum(ref.values()) > 2 * sum(mxnet.values())
    assert 'adam_update' not in ref and not any(op.startswith('gopt_') for op in ref)
    if kernels.available():
        assert bench.operator_counts(shapes, 'adam', 'fused') == {'gopt_adam': 1}


def test_step_times_and_missing_builtin():
    times = bench.step_times([(5,)], names=('adamw',), impls=('reference', 'mxnet'),
                             budget=0.01)
    assert list(times['adamw']) == ['reference']  # MXNet 1.9.1 has no built-in AdamW
    assert times['adamw']['reference'] > 0
    with pytest.raises(ValueError, match='impl'):
        bench.operator_counts([(5,)], 'adam', 'cuda')


def test_make_closure_and_optimizer_state_bytes():
    import mxnet as mx
    from mxnet import gluon
    import gluon_opt
    from gluon_opt.experiments import training
    net = gluon.nn.Dense(3, in_units=4)
    net.initialize(mx.init.Xavier())
    x, y = mx.nd.ones((5, 4)), mx.nd.array([0, 1, 2, 0, 1])
    closure = training.make_closure(net, x, y)
    adam = gluon_opt.Trainer(net.collect_params(), 'gluon_opt.adam', {'learning_rate': 0.1})
    closure()
    adam.step(5)
    assert closure.calls == 1
    assert training.optimizer_state_bytes(adam) == 2 * 4 * (3 * 4 + 3)  # m and v, float32
    lbfgs = gluon_opt.Trainer(net.collect_params(), 'gluon_opt.lbfgs',
                              {'history_size': 2, 'max_iter': 3})
    lbfgs.step(5, closure)
    assert closure.calls == 1 + lbfgs.last_evals
    assert training.optimizer_state_bytes(lbfgs) > 0


def test_bench_times_the_copy_beside_each_optimizer(tmp_path, capsys):
    """Every row's of_copy is its bandwidth over the copy timed in its own round-robin, and the
    CSV carries that copy; an unknown set is one line and exit status 2."""
    import argparse
    import csv
    args = bench.add_arguments(argparse.ArgumentParser()).parse_args(
        ['--sets', 'mlp', '--optimizers', 'sgd', '--quick', '--budget', '0.01', '--no-torch',
         '--out', str(tmp_path)])
    rows = bench.benchmark(args)
    assert {r['impl'] for r in rows} >= {'reference', 'mxnet'}
    for r in rows:
        assert r['copy_GB/s'] > 0
        assert r['of_copy'] == pytest.approx(r['GB/s'] / r['copy_GB/s'])
    with open(tmp_path / 'bench.csv') as f:
        lines = [line for line in f if not line.startswith('#')]
    saved = list(csv.DictReader(lines))
    assert len(saved) == len(rows) and all(float(r['copy_GB/s']) > 0 for r in saved)
    with pytest.raises(SystemExit) as exit_info:
        bench.main(['--sets', 'nope'])
    assert exit_info.value.code == 2 and 'unknown set' in capsys.readouterr().err


def test_interleaved_gives_fast_runners_enough_samples_beside_a_slow_one(monkeypatch):
    """Where a slow runner leaves few rounds, a fast one is called several times a round, up
    to MIN_SAMPLES timed calls and never for longer per round than the slow one takes (on a
    fake clock that each step advances by its duration)."""
    clock = [0.0]
    monkeypatch.setattr(bench.time, 'perf_counter', lambda: clock[0])
    calls = {'slow': 0, 'fast': 0, 'mid': 0}

    def runner(name, seconds):
        def step():
            calls[name] += 1
            clock[0] += seconds
        return None, step
    secs = bench._interleaved([runner('slow', 0.025), runner('fast', 0.0005),
                               runner('mid', 0.01)], budget=0.001, min_iters=3)
    assert calls['slow'] == 2 + 3  # two warm-up calls, then min_iters rounds
    assert calls['fast'] == 2 + 3 * 5 and 3 * 5 >= bench.MIN_SAMPLES
    assert calls['mid'] == 2 + 3 * 2  # no longer per round than the slow runner: 2 calls
    assert secs == pytest.approx([0.025, 0.0005, 0.01])
    calls.update(slow=0, fast=0)
    bench._interleaved([runner('slow', 0.001), runner('fast', 0.0005)], budget=10,
                       min_iters=3, max_iters=20)
    assert calls == {'slow': 2 + 20, 'fast': 2 + 20, 'mid': calls['mid']}  # enough rounds


def test_e2e_divides_by_the_sgd_loop_timed_beside_each_optimizer(monkeypatch):
    """Each optimizer's vs_mxnet_sgd is against MXNet's SGD loop timed in its own round-robin
    (the machine's speed drifts within a run), on a fake clock where the SGD loop gets slower
    from one round-robin to the next."""
    clock = [0.0]
    monkeypatch.setattr(bench.time, 'perf_counter', lambda: clock[0])
    made = []

    def fake_runner(optimizer, hp, batches=10, batch_size=256):
        if optimizer == 'sgd':  # MXNet's built-in: 0.1 s, 0.2 s, 0.3 s per loop
            made.append(optimizer)
            seconds = 0.1 * len(made)
        else:  # fused loops twice as fast as the SGD loop beside them, reference as fast
            seconds = 0.1 * (len(made) + 1) / (2 if hp['use_fused'] else 1)

        def step():
            clock[0] += seconds
        return None, step
    monkeypatch.setattr(bench, 'mlp_training_runner', fake_runner)
    rows = bench._run_e2e(['adam', 'lion'], True, budget=0.01)
    samples = bench.E2E_BATCHES * bench.E2E_BATCH_SIZE
    got = {(r['optimizer'], r['impl']): r for r in rows}
    assert got['sgd', 'mxnet']['samples/s'] == pytest.approx(samples / 0.1)
    for name, sgd_seconds in (('adam', 0.2), ('lion', 0.3)):
        assert got[name, 'fused']['sgd_samples/s'] == pytest.approx(samples / sgd_seconds)
        assert got[name, 'fused']['vs_mxnet_sgd'] == pytest.approx(2.0)
        assert got[name, 'reference']['vs_mxnet_sgd'] == pytest.approx(1.0)
    assert bench._run_e2e(['adam'], False, budget=0.01)[1]['impl'] == 'reference'


def test_chart_has_a_panel_for_the_e2e_set(tmp_path):
    """bench.png: one panel per set, the e2e set's (samples/s relative to MXNet's SGD) too; a
    run of only ``--sets e2e`` drew an empty chart."""
    import struct
    rows = [{'set': 'e2e', 'optimizer': 'sgd', 'impl': 'mxnet', 'samples/s': 6e4,
             'vs_mxnet_sgd': 1.0},
            {'set': 'e2e', 'optimizer': 'adam', 'impl': 'fused', 'samples/s': 6.6e4,
             'vs_mxnet_sgd': 1.1},
            {'set': 'mlp', 'optimizer': 'adam', 'impl': 'fused', 'ms': 0.5}]

    def width(path):  # a PNG's width: IHDR, bytes 16-20
        with open(path, 'rb') as f:
            return struct.unpack('>I', f.read(24)[16:20])[0]
    bench._plot(rows, str(tmp_path / 'both.png'))
    bench._plot(rows[:2], str(tmp_path / 'e2e.png'))
    assert width(tmp_path / 'both.png') == 2 * width(tmp_path / 'e2e.png') == 1000  # 5 in, 100 dpi
