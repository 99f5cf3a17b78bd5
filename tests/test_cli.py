"""The ``gluon-opt`` command line: ``list``, a small ``compare`` run and its outputs, and the
one-line errors (exit status 2, no output folder) for bad options; output folders that are not
the tool's to replace, interruptions (every finished run kept), exploding runs, closed pipes
and ``launch``'s numbers."""
import csv
import json
import os
import signal
import socket
import subprocess
import sys
import time

import mxnet as mx
import pytest

import gluon_opt
from gluon_opt import cli, kernels
from gluon_opt.experiments import compare, data
from gluon_opt.experiments.outputs import MARKER, Output
from gluon_opt.teaching import assignment

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
    files = ['history.csv', 'history.json', 'loss_vs_epoch.png', 'loss_vs_time.png',
             'summary.csv', 'test_accuracy.png']
    assert _listing(out) == [MARKER] + files
    with open(out / MARKER) as f:
        marker = json.load(f)
    assert marker['complete'] and marker['command'] == 'compare' and marker['files'] == files
    with open(out / 'history.csv') as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 2 * 2 * 2  # optimizers x seeds x epochs 0..1
    assert {r['label'] for r in rows} == {'Adam', 'fast'}
    with open(out / 'history.json') as f:
        hist = json.load(f)
    assert len(hist['runs']) == 4 and hist['config']['epochs'] == 1 and hist['complete']
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


def test_failure_at_the_end_keeps_the_finished_runs_marked_incomplete(tmp_path, monkeypatch,
                                                                      capsys):
    def broken(*args, **kwargs):
        raise RuntimeError('plotting broke')
    monkeypatch.setattr(compare, 'write_plots', broken)
    with pytest.raises(RuntimeError, match='plotting broke'):
        cli.main(['compare', '--opt', 'adam', '--out', str(tmp_path / 'x')] + QUICK)
    assert _listing(tmp_path) == ['x']  # no staging folder beside it
    assert _listing(tmp_path / 'x') == [MARKER, 'history.csv', 'history.json', 'summary.csv']
    with open(tmp_path / 'x' / MARKER) as f:
        assert json.load(f)['complete'] is False
    with open(tmp_path / 'x' / 'history.json') as f:
        hist = json.load(f)
    assert hist['complete'] is False and len(hist['runs']) == 1


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
    # -- schedules --
    (['--epochs', '5', '--schedule', 'wsd', '--warmup-epochs', '4.5'],
     '--warmup-epochs 4.5 is invalid with --schedule wsd'),
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
    (tmp_path / 'done' / 'results.csv').write_text('earlier results')
    assert cli.main(['compare', '--out', str(tmp_path / 'done')] + QUICK) == 2
    assert 'already exists' in capsys.readouterr().err


def test_missing_data_file_is_a_one_line_error(tmp_path, monkeypatch, capsys):
    from gluon_opt.experiments import data
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


# ------------------------------------------------------------------ output folders

def _precious(folder):
    """A folder of the user's (the issue's reproducer): nothing in it may be touched."""
    folder.mkdir(exist_ok=True)
    (folder / 'precious.txt').write_text('mine')
    (folder / 'sub').mkdir(exist_ok=True)
    (folder / 'sub' / 'notes.txt').write_text('mine too')
    return folder


def _tree(folder):
    return sorted((str(p.relative_to(folder)), p.read_bytes() if p.is_file() else None)
                  for p in folder.rglob('*'))


def _no_work(monkeypatch):
    """Every command's first step of real work fails the test: refusals come before it."""
    def forbidden(*args, **kwargs):
        pytest.fail('work started before the destination was checked')
    monkeypatch.setattr(data, 'load_fashion_mnist', forbidden)  # compare: before training
    monkeypatch.setattr(kernels, 'available', forbidden)  # bench: before timing
    monkeypatch.setattr(assignment, 'exercise_notebooks', forbidden)  # before nbgrader


def _write_cmd(command, out):
    return {'compare': ['compare', '--out', out, '--opt', 'sgd'] + QUICK,
            'bench': ['bench', '--out', out, '--sets', 'mlp', '--no-torch'],
            'release': ['assignment', 'release', '--output', out],
            'grade': ['assignment', 'grade', 'missing.ipynb', '--output', out]}[command]


DESTINATIONS = [  # (where, what the one-line error says)
    ('.', 'is the current directory'),
    ('precious.txt', 'is a file, not a folder'),
    ('precious.txt/out', 'precious.txt is a file, not a folder'),
    ('sub', 'was not written by gluon-opt'),
    ('marked', 'holds notes.txt, which gluon-opt did not write'),
]


@pytest.mark.parametrize('command', ['compare', 'bench', 'release', 'grade'])
@pytest.mark.parametrize('where, message', DESTINATIONS, ids=[w for w, _ in DESTINATIONS])
def test_overwrite_refuses_what_the_tool_did_not_write_before_any_work(
        tmp_path, monkeypatch, capsys, command, where, message):
    home = _precious(tmp_path / 'home')
    marked = Output(str(home / 'marked'), command)  # a folder gluon-opt wrote ...
    with open(marked.file('history.csv'), 'w') as f:
        f.write('old')
    marked.finish()
    (home / 'marked' / 'notes.txt').write_text('mine')  # ... where the user added a file
    before = _tree(home)
    monkeypatch.chdir(home)
    _no_work(monkeypatch)
    assert cli.main(_write_cmd(command, where) + ['--overwrite']) == 2
    err = capsys.readouterr().err
    assert err.count('\n') == 1 and ': error: ' in err and message in err, err
    assert _tree(home) == before


def test_overwrite_replaces_a_folder_the_tool_wrote(tmp_path, capsys):
    old = Output(str(tmp_path / 'run'), 'compare')
    for name in ('history.csv', 'stale.png'):
        with open(old.file(name), 'w') as f:
            f.write('old')
    old.finish()
    assert cli.main(['compare', '--out', str(tmp_path / 'run'), '--overwrite', '--opt',
                     'sgd'] + QUICK) == 0
    assert 'stale.png' not in _listing(tmp_path / 'run')
    assert (tmp_path / 'run' / 'history.csv').read_text().startswith('label,optimizer')


def test_unwritable_destination_is_one_line_before_training(tmp_path, monkeypatch, capsys):
    real = os.access
    monkeypatch.setattr(os, 'access', lambda path, mode: False if str(path) == str(tmp_path)
                        else real(path, mode))
    _no_work(monkeypatch)
    assert cli.main(['compare', '--out', str(tmp_path / 'out')] + QUICK) == 2
    err = capsys.readouterr().err
    assert err.startswith('gluon-opt compare: error: --out ') and err.count('\n') == 1
    assert 'permission denied: cannot write in %s' % tmp_path in err


# ------------------------------------------------------------------ interruptions

@pytest.mark.parametrize('sig', [signal.SIGINT, signal.SIGTERM], ids=['SIGINT', 'SIGTERM'])
def test_interrupted_compare_keeps_every_finished_run(tmp_path, sig):
    out = tmp_path / 'run'
    proc = subprocess.Popen(
        [sys.executable, '-m', 'gluon_opt', 'compare', '--out', str(out), '--opt', 'sgd',
         'adam', 'sgd:learning_rate=0.2'] + QUICK,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=str(tmp_path),
        # a shell script's background jobs inherit SIGINT ignored (and Python then keeps it
        # ignored, as it should): give the child the terminal's default, as Ctrl-C meets it
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    try:
        deadline = time.monotonic() + 120
        while not (out / 'history.json').exists():  # the first run is saved when it ends
            assert proc.poll() is None, proc.communicate()
            assert time.monotonic() < deadline, 'no run finished in 120 s'
            time.sleep(0.05)
        proc.send_signal(sig)
        _, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
    err = err.decode()
    assert proc.returncode == 128 + sig and 'Traceback' not in err, err
    last = err.strip().splitlines()[-1]
    assert last.startswith('gluon-opt compare: interrupted by %s after ' % sig.name), err
    finished = int(last.split(' after ')[1].split()[0])
    assert 1 <= finished < 3 and last.endswith('(marked incomplete)')
    assert _listing(tmp_path) == ['run']  # no staging folder or scratch files
    assert _listing(out) == [MARKER, 'history.csv', 'history.json', 'loss_vs_epoch.png',
                             'loss_vs_time.png', 'summary.csv', 'test_accuracy.png']
    with open(out / 'history.json') as f:
        hist = json.load(f)
    assert not hist['complete'] and len(hist['runs']) == finished
    assert hist['runs'][0]['label'] == 'SGD' and len(hist['runs'][0]['records']) == 2
    with open(out / MARKER) as f:
        assert json.load(f)['complete'] is False


# ------------------------------------------------------------------ divergence

def test_builtin_optimizer_whose_loss_explodes_is_flagged_diverged(tmp_path, capsys):
    # gradient ascent: the loss grows to 1e5 within a few batches, finite all along
    assert cli.main(['compare', '--opt', 'nag:learning_rate=-1', '--out',
                     str(tmp_path / 'n')] + QUICK) == 0
    captured = capsys.readouterr()
    assert 'NAG(learning_rate=-1)  diverged: loss ' in captured.out
    assert 'diverged: the training loss exploded to ' in captured.err


# ------------------------------------------------------------------ pipes and launch

def test_closed_pipe_ends_quietly():
    proc = subprocess.Popen([sys.executable, '-m', 'gluon_opt', 'list'],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    proc.stdout.close()  # as `gluon-opt list | head` once head has its lines
    err = proc.stderr.read().decode()
    assert proc.wait(timeout=60) == 1 and err == ''


LAUNCH_BAD = [
    (['-n', '1', '--timeout', '-5'], '--timeout -5 is invalid', 2),
    (['-n', '1', '--timeout', 'nan'], '--timeout nan is invalid', 2),
    (['-n', '1', '--hang-timeout', '-1'], '--hang-timeout -1 is invalid', 2),
    (['-n', '1', '--port', '1'], '--port 1 is invalid; expected 1024..65535', 2),
    (['-n', '1', '--port', '99999'], '--port 99999 is invalid', 2),
    (['-n', '0'], 'need at least one worker', 2),
    (['-n', '1', '-s', '0'], 'need at least one worker and one server', 2),
]


@pytest.mark.parametrize('argv, message, status', LAUNCH_BAD,
                         ids=[' '.join(a) for a, _, _ in LAUNCH_BAD])
def test_launch_numbers_are_checked_in_one_line(capsys, argv, message, status):
    assert cli.main(['launch'] + argv + ['--', 'true']) == status
    err = capsys.readouterr().err
    assert err.startswith('gluon-opt launch: error: ') and message in err
    assert err.count('\n') == 1


def test_launch_names_a_missing_command_or_a_taken_port(capsys):
    assert cli.main(['launch', '-n', '1', '--', 'no_such_cmd']) == 127
    err = capsys.readouterr().err
    assert err == 'gluon-opt launch: error: command not found: no_such_cmd (not on PATH)\n'
    with socket.socket() as taken:
        taken.bind(('127.0.0.1', 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        assert cli.main(['launch', '-n', '1', '--port', str(port), '--', 'true']) == 2
    assert '--port %d cannot be used: already in use' % port in capsys.readouterr().err
