"""``gluon-opt benchmark`` (``gluon_opt.experiments.benchmark``): the scoring against
hand-computed profiles, the search spaces, trials on a tiny workload (a resumed run equals an
uninterrupted one, record for record and score for score), reproducible target setting, and
the command line's errors and output folders.

The trials here train softmax regression for 24 steps on 2,048 images: a fraction of a second
each. Their clock is a counter, so that times, and the scores made of them, repeat exactly."""
import dataclasses
import itertools
import json
import math
import os

import numpy as np
import pytest

from gluon_opt import cli
from gluon_opt.experiments.benchmark import (command, published, runner, scoring,
                                             search_spaces, targets, workloads)
from gluon_opt.experiments.outputs import MARKER, Output

INF = float('inf')


# ---------------------------------------------------------------------------------------------
# scoring, on records made by hand

def rec(opt, wl, t=None, steps=None, study=0, trial=0, heldout_of=None):
    """A trial record that reached the target in ``t`` seconds and ``steps`` steps (None:
    did not reach)."""
    return {'optimizer': opt, 'label': opt.upper(), 'workload': wl, 'heldout_of': heldout_of,
            'study': study, 'trial': trial, 'reached': t is not None, 'time_to_target': t,
            'steps_to_target': steps if steps is not None else (None if t is None
                                                                else int(10 * t)),
            'wall_time': 1.0}


def by_name(summary):
    return {o['name']: o for o in summary['optimizers']}


def test_a_hand_computed_profile_and_its_score():
    # best time: 10 on both workloads. a: ratios 1 and 3; b: 2 and 1; c: 5 (beyond
    # tau_max = 4) and not reached
    records = [rec('a', 'w1', 10), rec('a', 'w2', 30), rec('b', 'w1', 20), rec('b', 'w2', 10),
               rec('c', 'w1', 50), rec('c', 'w2')]
    s = scoring.summarize(records)
    o = by_name(s)
    assert o['a']['ratios'] == {'w1': 1.0, 'w2': 3.0}
    assert o['c']['ratios'] == {'w1': 5.0, 'w2': INF}
    taus = [1.0, 2.0, 2.5, 3.0, 4.0]
    assert scoring.profile(o['a']['ratios'], taus) == [0.5, 0.5, 0.5, 1.0, 1.0]
    assert scoring.profile(o['b']['ratios'], taus) == [0.5, 1.0, 1.0, 1.0, 1.0]
    assert scoring.profile(o['c']['ratios'], taus) == [0.0] * 5
    # area over [1, 4] / 3: a = (3 + 1) / 2 / 3, b = (2 + 3) / 2 / 3
    assert o['a']['score'] == pytest.approx(2 / 3)
    assert o['b']['score'] == pytest.approx(5 / 6)
    assert o['c']['score'] == 0.0
    # the exact area agrees with AlgoPerf's way, a trapezoid over a fine grid of the profile
    grid = np.linspace(1, 4, 30001)
    for name in 'abc':
        rho = scoring.profile(o[name]['ratios'], grid)
        assert np.trapz(rho, grid) / 3 == pytest.approx(o[name]['score'], abs=1e-3)
    assert [line.split()[0] for line in scoring.format_table(s).splitlines()[2:]] == \
        ['B', 'A', 'C']


def test_an_optimizer_identical_to_the_best_scores_one_and_one_that_never_reaches_zero():
    records = []
    for wl, t in (('w1', 3.0), ('w2', 7.5), ('w3', 1.25)):
        records += [rec('best', wl, t), rec('twin', wl, t), rec('slow', wl, 2 * t),
                    rec('never', wl)]
    o = by_name(scoring.summarize(records))
    assert o['best']['score'] == o['twin']['score'] == 1.0
    assert o['best']['score_steps'] == 1.0
    assert o['slow']['score'] == pytest.approx(2 / 3)  # ratio 2 everywhere: (4 - 2) / 3
    assert o['never']['score'] == 0.0 and o['never']['profile'] == [0.0] * 121


def test_fastest_trial_per_study_then_the_median_over_studies():
    records = [rec('a', 'w', 5, study=0, trial=0), rec('a', 'w', 3, study=0, trial=1),
               rec('a', 'w', None, study=0, trial=2), rec('a', 'w', 4, study=1),
               rec('a', 'w', None, study=2)]
    assert scoring.workload_times(records)['a']['w'] == 4.0  # median of 3, 4, inf
    # two studies of three missing: the median is not reached
    records[3] = rec('a', 'w', None, study=1)
    assert scoring.workload_times(records)['a']['w'] == INF


def test_each_study_scored_alone_gives_the_spread_of_the_score():
    # study 0: a fastest on both workloads; study 1: b fastest on w1 (a 2x slower), a on w2;
    # study 2: a misses w1, b is 4x slower on w2
    records = [rec('a', 'w1', 1, study=0), rec('a', 'w2', 1, study=0),
               rec('b', 'w1', 2, study=0), rec('b', 'w2', 3, study=0),
               rec('a', 'w1', 2, study=1), rec('a', 'w2', 1, study=1),
               rec('b', 'w1', 1, study=1), rec('b', 'w2', 1, study=1),
               rec('a', 'w1', None, study=2), rec('a', 'w2', 1, study=2),
               rec('b', 'w1', 1, study=2), rec('b', 'w2', 4, study=2)]
    o = by_name(scoring.summarize(records))
    assert o['a']['study_scores'] == pytest.approx([1.0, (2 / 3 + 1) / 2, 0.5])
    assert o['b']['study_scores'] == pytest.approx([(2 / 3 + 1 / 3) / 2, 1.0, 0.5])
    table = scoring.format_table(scoring.summarize(records))
    assert 'studies' in table.splitlines()[0] and '0.50-1.00' in table
    assert 'studies' not in scoring.format_table(scoring.summarize(records[:4]))


def test_missing_the_held_out_variant_loses_the_base_workload():
    records = [rec('a', 'w', 2.0), rec('a', 'w_var', 2.0, heldout_of='w'),
               rec('b', 'w', 1.0), rec('b', 'w_var', None, heldout_of='w'),
               rec('a', 'v', 1.0), rec('b', 'v', 1.0)]
    s = scoring.summarize(records)
    assert s['workloads'] == ['w', 'v'] and s['gates'] == {'w': 'w_var'}
    o = by_name(s)
    assert o['b']['times']['w'] == INF and o['b']['raw_times']['w'] == 1.0
    assert o['a']['ratios'] == {'w': 1.0, 'v': 1.0} and o['a']['score'] == 1.0
    assert o['b']['score'] == 0.5
    assert 'held-out x' in scoring.format_table(s)
    # the variant alone is scored as a workload of its own
    alone = scoring.summarize([r for r in records if r['workload'] == 'w_var'])
    assert alone['workloads'] == ['w_var']


# ---------------------------------------------------------------------------------------------
# search spaces

def test_the_search_space_is_quasirandom_fixed_per_study_and_the_same_on_every_workload():
    e = search_spaces.entry('nesterov')
    assert [d.name for d in search_spaces.space(e)] == ['learning_rate', 'one_minus_beta1',
                                                        'wd', 'warmup_fraction']
    a = search_spaces.external_points(e, 5, study=0)
    assert a == search_spaces.external_points(e, 5, study=0)
    assert a[:3] == search_spaces.external_points(e, 3, study=0)  # a prefix: more trials
    assert a != search_spaces.external_points(e, 5, study=1)
    for p in a:
        assert e.lr_centre / 5 <= p['learning_rate'] <= e.lr_centre * 20
        assert 0.02 <= p['one_minus_beta1'] <= 0.5 and 0 <= p['warmup_fraction'] <= 0.1
    params = search_spaces.optimizer_params(e, a[0])
    assert params['nesterov'] is True
    assert params['momentum'] == pytest.approx(1 - a[0]['one_minus_beta1'])
    specs = runner.plan([e], [workloads.get('mlp'), workloads.get('conv')], trials=5)
    assert [s.params for s in specs[:5]] == [s.params for s in specs[5:]]
    # plain SGD has no momentum to tune; AdamW's beta1 is; self-tuning keeps the defaults
    assert 'one_minus_beta1' not in [d.name for d in search_spaces.space(
        search_spaces.entry('sgd'))]
    assert 'beta1' in search_spaces.optimizer_params(
        search_spaces.entry('adamw'), search_spaces.external_points(
            search_spaces.entry('adamw'), 1, 0)[0])
    assert search_spaces.self_tuning_params(search_spaces.entry('prodigy')) == \
        {'learning_rate': 1.0}


# ---------------------------------------------------------------------------------------------
# trials on a tiny workload

TINY = workloads.Workload('tiny', 'softmax regression, 24 steps', 'mlp',
                          (('hidden', ()), ('activation', 'relu')), 'error_rate', 64, 24, 6,
                          train_size=2048, val_size=500)
TINY_VAR = dataclasses.replace(TINY, name='tiny_b32', batch_size=32, heldout_of='tiny')


@pytest.fixture
def tiny(monkeypatch):
    monkeypatch.setitem(workloads.WORKLOADS, 'tiny', TINY)
    monkeypatch.setitem(workloads.WORKLOADS, 'tiny_b32', TINY_VAR)
    return [TINY, TINY_VAR]


def counter():
    """A clock that advances by 1/1024 s per reading: a trial's times depend only on how many
    readings it takes, and (binary fractions) add up exactly, so they repeat exactly."""
    ticks = itertools.count()
    return lambda: next(ticks) / 1024.0


def _plan(chosen):
    entries = [search_spaces.entry('adamw'), search_spaces.entry('nesterov')]
    return runner.plan(entries, chosen, 'external', trials=2, studies=2,
                       targets={'tiny': 0.45, 'tiny_b32': 0.45})


def _without_wall(records):
    return [{k: v for k, v in r.items() if k != 'wall_time'} for r in records]


def test_a_resumed_run_equals_an_uninterrupted_one(tiny, tmp_path):
    specs = _plan(tiny)
    assert len(specs) == 16
    whole = runner.run_plan(specs, runner.TrialLog(str(tmp_path / 'whole.jsonl')),
                            clock=counter())
    assert any(r['reached'] for r in whole) and not all(r['reached'] for r in whole)

    path = str(tmp_path / 'cut.jsonl')
    first = runner.run_plan(specs, runner.TrialLog(path), limit=5, clock=counter())
    assert len(first) == 5
    with open(path) as f:
        before = f.read()
    seen = []
    log = runner.TrialLog(path)  # opened afresh, as a new process would
    resumed = runner.run_plan(specs, log, clock=counter(),
                              progress=lambda i, n, spec, r, old: seen.append(old))
    assert seen == [True] * 5 + [False] * 11  # the finished trials were not run again
    with open(path) as f:
        assert f.read().startswith(before)
    assert _without_wall(resumed) == _without_wall(whole)
    assert scoring.summarize(resumed) == scoring.summarize(whole)


def test_a_record_cut_short_is_run_again_and_other_settings_are_refused(tiny, tmp_path):
    specs = _plan(tiny)[:2]
    path = str(tmp_path / 'trials.jsonl')
    runner.run_plan(specs, runner.TrialLog(path), clock=counter())
    with open(path) as f:
        lines = f.read().splitlines()
    with open(path, 'w') as f:  # killed in the middle of writing the second line
        f.write(lines[0] + '\n' + lines[1][:40])
    log = runner.TrialLog(path)
    assert list(log.records) == [specs[0].key]
    with open(path) as f:
        assert f.read() == lines[0] + '\n'
    other = [dataclasses.replace(specs[0], target=0.3)]
    with pytest.raises(runner.LogError, match='other settings .*target'):
        runner.run_plan(other, log)
    with open(path, 'a') as f:
        f.write('not json\n' + lines[1] + '\n')
    with pytest.raises(runner.LogError, match='line 2 is not a trial record'):
        runner.TrialLog(path)


def test_a_trial_records_time_and_steps_to_target_and_stops_there(tiny):
    spec = _plan(tiny)[2]  # Nesterov, study 0, trial 0: reaches 0.45 within the budget
    assert spec.optimizer == 'nesterov'
    r = runner.run_trial(spec, clock=counter())
    assert r['reached'] and r['steps'] < spec.max_steps  # it stopped there
    assert r['evals'][0][:2] == [0, 0.0]
    assert [e[0] for e in r['evals']] == list(range(0, r['steps'] + 1, 6))
    assert r['evals'][-1][2] <= spec.target < min(e[2] for e in r['evals'][:-1])
    assert (r['steps_to_target'], r['time_to_target']) == tuple(r['evals'][-1][:2])
    assert r['time_to_target'] == r['train_time'] > 0
    bad = dataclasses.replace(spec, params=dict(spec.params, beta1=1.5))
    assert runner.run_trial(bad)['diverged'].startswith('rejected: ')
    wild = dataclasses.replace(spec, params=dict(spec.params, learning_rate=1e4),
                               schedule='constant', warmup_steps=0)
    r = runner.run_trial(wild)
    assert not r['reached'] and 'training loss became' in r['diverged']


def test_target_setting_is_reproducible(tiny, tmp_path):
    def once(name):
        log = runner.TrialLog(str(tmp_path / name))
        return targets.set_targets([TINY], log, baselines=('adamw', 'nesterov'), trials=2,
                                   reruns=1, fraction=0.05)
    a, b = once('a.jsonl'), once('b.jsonl')
    assert a == b
    entry = a['tiny']
    assert entry['best_value'] == min(entry['baselines'].values())
    assert entry['set_by'] in ('adamw', 'nesterov')
    assert entry['target'] == pytest.approx(entry['best_value'] * 1.05, rel=1e-5)
    assert entry['definition'] == TINY.definition()
    path = targets.write(a, str(tmp_path / 'targets.json'), command='test')
    assert targets.targets_for([TINY], path) == {'tiny': entry['target']}
    with pytest.raises(targets.TargetError, match='another definition'):
        targets.targets_for([dataclasses.replace(TINY, max_steps=30)], path)
    with pytest.raises(targets.TargetError, match='tiny_b32'):
        targets.targets_for([TINY_VAR], path)


def test_the_shipped_targets_cover_every_workload_as_defined():
    found = targets.targets_for(workloads.resolve(None))
    assert set(found) == set(workloads.WORKLOADS)
    doc = targets.load()
    for name, entry in doc['workloads'].items():
        assert entry['target'] == pytest.approx(entry['best_value'] * (1 + entry['fraction']),
                                                rel=1e-5)
        assert set(entry['baselines']) <= set(search_spaces.BASELINES)


# ---------------------------------------------------------------------------------------------
# the command line

def _targets_file(tmp_path):
    entries = {w.name: {'target': 0.45, 'definition': w.definition()} for w in (TINY, TINY_VAR)}
    path = str(tmp_path / 'targets.json')
    with open(path, 'w') as f:
        json.dump({'workloads': entries}, f)
    return path


def test_the_command_runs_is_interrupted_and_resumes(tiny, tmp_path, capsys, monkeypatch):
    out = str(tmp_path / 'run')
    argv = ['benchmark', '--workloads', 'tiny', '--optimizers', 'adamw', 'nesterov',
            '--trials', '2', '--targets', _targets_file(tmp_path), '--out', out,
            '--no-progress']
    real, calls = runner.run_trial, []

    def killed_after_three(spec, clock=None):
        if len(calls) == 3:
            raise KeyboardInterrupt
        calls.append(spec.key)
        return real(spec)
    monkeypatch.setattr(runner, 'run_trial', killed_after_three)
    assert cli.main(argv) == 130
    assert 'after 3 of 8 trials' in capsys.readouterr().err
    with open(os.path.join(out, MARKER)) as f:
        assert json.load(f)['complete'] is False
    with open(os.path.join(out, 'results.json')) as f:
        assert json.load(f)['trials'] == 3
    assert cli.main(argv) == 2  # the folder is there: --resume or another --out
    assert '--resume' in capsys.readouterr().err
    monkeypatch.setattr(runner, 'run_trial', real)
    assert cli.main(argv + ['--resume']) == 0
    text = capsys.readouterr().out
    assert '3 of the 8 trials are finished' in text and 'score' in text
    for name in ('config.json', 'trials.jsonl', 'results.json', 'scores.csv',
                 'time_to_target.csv', 'profiles.png', 'time_to_target.png'):
        assert os.path.isfile(os.path.join(out, name)), name
    with open(os.path.join(out, MARKER)) as f:
        marker = json.load(f)
    assert marker['complete'] is True and 'profiles.png' in marker['files']
    with open(os.path.join(out, 'trials.jsonl')) as f:
        keys = [json.loads(line)['key'] for line in f]
    assert keys[:3] == calls and len(keys) == len(set(keys)) == 8
    # other settings do not resume this run, another --jobs neither (times compare within a
    # run); a run started before --jobs existed counts as --jobs 1
    assert cli.main(argv[:-1] + ['--trials', '3', '--resume']) == 2
    assert 'started with other settings (trials' in capsys.readouterr().err
    assert cli.main(argv + ['--resume', '--jobs', '2']) == 2
    assert 'started with other settings (jobs' in capsys.readouterr().err
    path = os.path.join(out, 'config.json')
    with open(path) as f:
        config = json.load(f)
    del config['jobs']
    with open(path, 'w') as f:
        json.dump(config, f)
    assert cli.main(argv + ['--resume']) == 0


@pytest.mark.parametrize('argv, message', [
    (['--optimizers', 'adamm'], "unknown gluon_opt optimizer 'adamm'; did you mean adam"),
    (['--optimizers', 'sam'], 'no learning rate of its own'),
    (['--optimizers', 'adamw', 'adamw'], 'names adamw twice'),
    (['--workloads', 'resnet'], "unknown workload 'resnet'; expected one of mlp, mlp_bn"),
    (['--trials', '0'], '--trials 0 is invalid; expected an integer >= 1'),
    (['--studies', '-1'], '--studies -1 is invalid'),
    (['--jobs', '0'], '--jobs 0 is invalid'),
    (['--ruleset', 'self', '--trials', '3'], 'self-tuning runs one trial per study'),
    (['--resume'], '--resume needs --out'),
    (['--resume', '--overwrite', '--out', 'x'], 'contradict each other'),
    (['--quick', '--full'], 'not allowed with argument'),
])
def test_bad_options_are_one_line_errors_before_any_work(tmp_path, capsys, argv, message,
                                                         monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(runner, 'run_trial', None)  # nothing may train
    assert cli.main(['benchmark'] + argv) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1, err
    assert os.listdir(str(tmp_path)) == []


def test_output_folders_follow_the_rules_of_outputs(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(runner, 'run_trial', None)  # nothing may train
    base = ['benchmark', '--workloads', 'softmax', '--no-heldout', '--optimizers', 'adamw']
    mine = tmp_path / 'mine'
    mine.mkdir()
    (mine / 'notes.txt').write_text('keep me')
    for extra, message in ((['--overwrite'], 'was not written by gluon-opt'),
                           (['--resume'], 'holds no run of gluon-opt benchmark to resume')):
        assert cli.main(base + ['--out', str(mine)] + extra) == 2
        assert message in capsys.readouterr().err
    assert os.listdir(str(mine)) == ['notes.txt']
    other = Output(str(tmp_path / 'compare-run'), 'compare')
    with other.open('history.csv') as f:
        f.write('x')
    other.finish()
    assert cli.main(base + ['--out', other.path, '--resume']) == 2
    assert 'written by gluon-opt compare' in capsys.readouterr().err
    ours = Output(str(tmp_path / 'ours'), 'benchmark')
    with ours.open('trials.jsonl') as f:
        f.write('')
    ours.finish(complete=False)
    (tmp_path / 'ours' / 'added.txt').write_text('mine')
    assert cli.main(base + ['--out', ours.path, '--resume']) == 2
    assert 'holds added.txt, which gluon-opt did not write' in capsys.readouterr().err
    assert os.path.isfile(str(tmp_path / 'ours' / 'added.txt'))


def test_the_presets_are_what_the_help_says():
    args = cli.build_parser().parse_args(['benchmark', '--quick'])
    entries, chosen, ruleset, trials, studies, goals = command.settings(args)
    assert [e.name for e in entries] == ['adamw', 'nesterov', 'lion']
    assert [w.name for w in chosen] == ['mlp', 'softmax', 'conv']
    assert (ruleset, trials, studies) == ('external', 3, 1)
    args = cli.build_parser().parse_args(['benchmark', '--full'])
    entries, chosen, _, trials, studies, _ = command.settings(args)
    assert len(entries) >= 10 and studies == 3 and len(chosen) == 2 * len(workloads.BASE)
    args = cli.build_parser().parse_args(['benchmark', '--ruleset', 'self', '--workloads',
                                          'mlp'])
    entries, chosen, _, trials, _, _ = command.settings(args)
    assert trials == 1 and 'prodigy' in [e.name for e in entries]
    assert [w.name for w in chosen] == ['mlp', 'mlp_tanh']
    specs = runner.plan(entries[:1], chosen[:1], 'self', 1, 1)
    assert specs[0].max_steps == int(1.5 * workloads.get('mlp').max_steps)
    assert math.isclose(search_spaces.SELF_TUNING_BUDGET, 1.5)


def test_trials_in_parallel_processes_give_the_records_of_one_process(tiny, tmp_path):
    # --jobs 2: the workers (fresh processes, one thread each) learn the tiny workload from
    # the parent; the log holds every trial once, the records come back in plan order, and
    # what a trial reaches does not depend on where it ran
    specs = _plan(tiny)[:6]
    one = runner.run_plan(specs, runner.TrialLog(str(tmp_path / 'one.jsonl')))
    log = runner.TrialLog(str(tmp_path / 'two.jsonl'))
    seen = []
    two = runner.run_plan(specs, log, jobs=2,
                          progress=lambda i, n, spec, r, old: seen.append((i, r['key'])))
    assert [r['key'] for r in two] == [s.key for s in specs]
    assert sorted(seen) == [(i, s.key) for i, s in enumerate(specs)]
    assert len(runner.TrialLog(log.path)) == len(specs)
    for a, b in zip(one, two):
        assert (a['reached'], a['steps_to_target'], a['steps']) == \
            (b['reached'], b['steps_to_target'], b['steps'])
        assert b['best_value'] == pytest.approx(a['best_value'], abs=0.005)


@pytest.mark.parametrize('name', sorted(published.RUNS))
def test_a_published_run_is_complete_current_and_scores_as_published(name):
    # the runs docs/benchmark.md and chapter 11 cite: every trial their configuration plans,
    # each run with the settings the plan gives it today, against today's targets, at the
    # size the issue asks of a full run, and scored as they were when published
    cfg, records = published.config(name), published.records(name)
    chosen = [workloads.get(n) for n in cfg['workloads']]
    assert targets.targets_for(chosen) == cfg['targets']
    specs = published.planned(cfg)
    assert sorted(r['key'] for r in records) == sorted(s.key for s in specs)
    held = {r['key']: r for r in records}
    for spec in specs:
        wanted = json.loads(json.dumps(spec.settings()))
        assert {k: held[spec.key][k] for k in wanted} == wanted, spec.key
    assert len(cfg['optimizers']) >= 10 and cfg['studies'] >= 3
    summary = scoring.summarize(records)
    assert {o['name']: {'score': o['score'], 'score_steps': o['score_steps'],
                        'study_scores': o['study_scores']}
            for o in summary['optimizers']} == cfg['scores']
