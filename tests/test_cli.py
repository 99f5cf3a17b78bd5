"""The ``gluon-opt`` command line: ``list``, a small ``compare`` run and its outputs, and the
one-line errors (exit status 2, no output folder) for bad options."""
import csv
import json
import os

import mxnet as mx
import pytest

import gluon_opt
from gluon_opt import cli, compare

QUICK = ['--train-subset', '640', '--epochs', '1', '--no-progress']


def _listing(folder):
    return sorted(os.listdir(folder))


def test_list_prints_every_optimizer_with_family_paper_and_defaults(capsys):
    assert cli.main(['list']) == 0
    out = capsys.readouterr().out
    for name, cls in gluon_opt.REGISTRY.items():
        assert 'gluon_opt.%s\n' % name in out
        assert cls.paper in out
    assert 'family:  adam' in out and "nesterov=False" in out and 'learning_rate=0.01' in out
    assert cli.main(['list', '--family', 'sgd']) == 0
    assert 'gluon_opt.adam\n' not in capsys.readouterr().out


def test_subcommands_are_a_table_of_small_entries():
    names = [c.name for c in cli.SUBCOMMANDS]
    assert {'compare', 'list'} <= set(names)
    parser = cli.build_parser()
    assert parser.parse_args(['compare', '--epochs', '2']).epochs == 2


def test_compare_runs_and_writes_complete_outputs(tmp_path, capsys):
    out = tmp_path / 'run'
    rc = cli.main(['compare', '--opt', 'adam', 'fast=sgd:learning_rate=0.1,momentum=0.9',
                   '--seeds', '0', '1', '--out', str(out)] + QUICK)
    assert rc == 0
    text = capsys.readouterr().out
    table = text[text.index('optimizer'):]
    assert 'Adam' in table and 'fast' in table and '±' in table  # two seeds: spreads
    assert _listing(tmp_path) == ['run']  # no partial folder left beside it
    assert _listing(out) == ['history.csv', 'history.json', 'loss_vs_epoch.png',
                             'loss_vs_time.png', 'summary.csv', 'test_accuracy.png']
    with open(out / 'history.csv') as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 2 * 2 * 2  # optimizers x seeds x epochs 0..1
    assert {r['label'] for r in rows} == {'Adam', 'fast'}
    with open(out / 'history.json') as f:
        hist = json.load(f)
    assert len(hist['runs']) == 4 and hist['config']['epochs'] == 1
    assert hist['summary'][0]['label'] == 'Adam' and hist['summary'][0]['seeds'] == 2
    assert all(os.path.getsize(out / p) > 10000 for p in _listing(out) if p.endswith('.png'))


def test_compare_schedule_and_two_contexts(tmp_path, capsys):
    out = tmp_path / 'sched'
    rc = cli.main(['compare', '--opt', 'sgd:learning_rate=0.05', '--schedule', 'cosine',
                   '--epochs', '2', '--warmup-epochs', '1', '--ctx', 'cpu:0,cpu:1',
                   '--hidden', '16,16', '--train-subset', '320', '--no-progress',
                   '--out', str(out)])
    assert rc == 0
    with open(out / 'history.json') as f:
        run = json.load(f)['runs'][0]
    assert run['meta']['ctx'] == ['cpu(0)', 'cpu(1)']
    assert [r['lr'] for r in run['records']][1:] == pytest.approx([0.05, 0.0], abs=1e-9)


def test_diverged_run_is_a_row_not_a_crash(tmp_path, capsys):
    rc = cli.main(['compare', '--opt', 'sgd:learning_rate=1e30', 'adam',
                   '--out', str(tmp_path / 'd')] + QUICK)
    assert rc == 0
    captured = capsys.readouterr()
    assert 'SGD(learning_rate=1e+30)  diverged: loss' in captured.out
    assert 'warning: SGD(learning_rate=1e+30) diverged' in captured.err
    with open(tmp_path / 'd' / 'history.json') as f:  # strict JSON: no NaN
        runs = json.load(f, parse_constant=lambda c: pytest.fail('non-finite %s' % c))['runs']
    assert runs[0]['diverged'] and runs[1]['diverged'] is None


def test_failure_while_writing_leaves_no_folder(tmp_path, monkeypatch, capsys):
    def broken(*args, **kwargs):
        raise RuntimeError('disk full')
    monkeypatch.setattr(compare, 'write_outputs', broken)
    with pytest.raises(RuntimeError, match='disk full'):
        cli.main(['compare', '--opt', 'adam', '--out', str(tmp_path / 'x')] + QUICK)
    assert _listing(tmp_path) == []


BAD = [
    (['--opt', 'adma'], "unknown optimizer 'adma'; did you mean"),
    (['--opt', 'adam:learning_rate'], "hyperparameter 'learning_rate' in"),
    (['--opt', 'adam:learning_rate=fast'], "is malformed: 'fast' is not a number"),
    (['--opt', 'adam:'], 'nothing after ":"'),
    (['--opt', 'adam:beta1=2'], 'beta1=2.0 is invalid'),
    (['--opt', 'adam:momentum=0.9'], 'unknown hyperparameter momentum'),
    (['--opt', 'sgd:learning_rate=0.1,learning_rate=0.2'], 'given twice'),
    (['--hidden', '128,-5'], 'model shape'),
    (['--hidden', 'wide'], 'model shape'),
    (['--dropout', '1.5'], 'dropout'),
    (['--epochs', '0'], '--epochs 0 is invalid'),
    (['--batch-size', '0'], '--batch-size 0 is invalid'),
    (['--epochs', '2', '--warmup-epochs', '2'], '--warmup-epochs 2 is invalid'),
    (['--ctx', 'tpu:0'], "context 'tpu:0' is invalid"),
    (['--seeds', '1', '1'], '--seeds 1 1 is invalid'),
    (['--train-subset', '99999999'], 'train_subset=99999999 is invalid'),
    (['--schedule', 'wavy'], "invalid choice: 'wavy'"),
    (['--epochs', 'two'], "invalid int value: 'two'"),
]


@pytest.mark.parametrize('argv, message', BAD, ids=[' '.join(a) for a, _ in BAD])
def test_bad_options_give_one_line_errors_and_exit_2(tmp_path, capsys, argv, message):
    out = tmp_path / 'out'
    assert cli.main(['compare', '--out', str(out), '--no-progress'] + argv) == 2
    err = capsys.readouterr().err
    assert message in err
    assert err.count('\n') == 1 and err.startswith('gluon-opt compare: error: ')
    assert not out.exists() and _listing(tmp_path) == []


def test_gpu_context_missing_is_a_usage_error(tmp_path, capsys):
    if mx.context.num_gpus():
        pytest.skip('this machine has a GPU')
    assert cli.main(['compare', '--ctx', 'gpu:0', '--out', str(tmp_path / 'g')]) == 2
    assert 'gpu:0 is not available' in capsys.readouterr().err


def test_existing_output_folder_is_refused(tmp_path, capsys):
    (tmp_path / 'done').mkdir()
    assert cli.main(['compare', '--out', str(tmp_path / 'done')] + QUICK) == 2
    assert 'already exists' in capsys.readouterr().err


def test_missing_data_file_is_a_one_line_error(tmp_path, monkeypatch, capsys):
    from gluon_opt import data
    monkeypatch.setenv(data.DATA_ENV, str(tmp_path / 'absent.npz'))
    monkeypatch.setattr(data, '_download', lambda *a, **k: (_ for _ in ()).throw(
        OSError('offline')))
    assert cli.main(['compare', '--out', str(tmp_path / 'o')] + QUICK) == 1
    err = capsys.readouterr().err
    assert 'absent.npz' in err and err.count('\n') == 1
    assert not (tmp_path / 'o').exists()


# ------------------------------------------------------------------------- specs

def test_parse_spec_values_labels_and_short_names():
    s = compare.parse_spec('sgd:learning_rate=3e-2,momentum=0.9,nesterov=true')
    assert s.name == 'gluon_opt.sgd'  # the short name resolves to ours first
    assert s.params == {'learning_rate': 0.03, 'momentum': 0.9, 'nesterov': True}
    assert s.label == 'SGD(learning_rate=0.03,momentum=0.9,nesterov=True)'
    assert compare.parse_spec('mine=adam').label == 'mine'
    assert compare.parse_spec('gluon_opt.adamw:wd=0').params == {'wd': 0}
    assert compare.parse_spec('nag').name == 'nag'  # MXNet's own, where we have none
    with pytest.raises(compare.SpecError, match='no optimizer name'):
        compare.parse_spec(':learning_rate=1')


def test_default_specs_follow_the_registry(monkeypatch):
    specs = compare.default_specs()
    labels = [s.label for s in specs]
    assert labels[:3] == ['SGD', 'Momentum', 'Nesterov']
    assert {'Adam', 'AdamW'} <= set(labels)
    registry = dict(mx.optimizer.Optimizer.opt_registry)
    registry['gluon_opt.lion'] = registry['gluon_opt.adam']  # pretend Lion has landed
    monkeypatch.setattr(mx.optimizer.Optimizer, 'opt_registry', registry)
    assert 'Lion' in [s.label for s in compare.default_specs()]
    for s in specs:
        s.check()  # every default entry is accepted by its optimizer
