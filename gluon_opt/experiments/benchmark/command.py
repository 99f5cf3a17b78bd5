"""``gluon-opt benchmark``: the options, the run, the files it writes.

``run(args)`` checks every option and the output folder before any training, builds the
kernels, runs the plan (``runner.plan``, ``runner.run_plan``) with one progress line per
trial, and writes into the output folder (an ``outputs.Output``, default
``runs/benchmark-<timestamp>``):

=======================  ==================================================================
``config.json``          the run's settings and targets (``--resume`` checks them)
``trials.jsonl``         one line per finished trial, written as each finishes
``results.json``         ``scoring.summarize``'s result, per-trial seconds, ``complete``
``scores.csv``           per optimizer: score, score by steps, per workload time and steps
``time_to_target.csv``   per optimizer, workload and study: the study's best trial
``profiles.png``         the performance profiles
``time_to_target.png``   the median time to target per workload
=======================  ==================================================================

A run stopped by Ctrl-C or SIGTERM scores the trials it finished and marks the folder
incomplete; one killed outright leaves them in ``trials.jsonl``. Either way ``--resume --out
DIR`` continues it.
"""
import csv
import datetime
import json
import math
import os
import signal
import sys
import time

from .. import outputs
from . import plots, runner, scoring, search_spaces, targets as targets_mod, workloads
# what the command line reports as a usage error (one line, exit status 2)
from .runner import LogError  # noqa: F401
from .search_spaces import SearchSpaceError  # noqa: F401
from .targets import TargetError  # noqa: F401
from .workloads import WorkloadError  # noqa: F401

__all__ = ['BenchmarkError', 'PRESETS', 'add_arguments', 'run', 'settings', 'write_results']


class BenchmarkError(ValueError):
    """An option or combination the benchmark cannot run (one line, exit status 2)."""


#: the line-ups and sizes of the presets, per ruleset (options given explicitly win)
PRESETS = {
    'default': {
        'external': dict(optimizers=search_spaces.BASELINES + ('adam', 'lion'), trials=5,
                         studies=1, heldout=True),
        'self': dict(optimizers=('adamw', 'prodigy', 'dadapt_adam', 'dog',
                                 'schedulefree_adamw', 'schedulefree_sgd'),
                     trials=1, studies=1, heldout=True)},
    # a few minutes on 2 cores: trials matter more than workloads (with 2 trials of a
    # quasirandom search hardly any target is reached), so 3 workloads of 3 kinds
    'quick': {
        'external': dict(optimizers=('adamw', 'nesterov', 'lion'), trials=3, studies=1,
                         heldout=False, workloads=('mlp', 'softmax', 'conv')),
        'self': dict(optimizers=('adamw', 'prodigy', 'schedulefree_adamw'), trials=1,
                     studies=1, heldout=False)},
    'full': {
        'external': dict(optimizers=search_spaces.BASELINES + (
            'adam', 'rmsprop', 'lion', 'radam', 'adabelief', 'lamb', 'adopt', 'soap'),
            trials=5, studies=3, heldout=True),
        'self': dict(optimizers=('adamw', 'nadamw', 'nesterov', 'heavy_ball', 'adam', 'lion',
                                 'radam', 'prodigy', 'dadapt_adam', 'dog',
                                 'schedulefree_adamw', 'schedulefree_sgd'),
                     trials=1, studies=3, heldout=True)},
}


def add_arguments(parser):
    p = parser
    p.add_argument('--optimizers', nargs='+', metavar='NAME',
                   help='gluon_opt optimizers (adamw, lion, prodigy, ...) or the baselines '
                        'nesterov, heavy_ball, nadamw (default: the preset\'s line-up)')
    p.add_argument('--workloads', nargs='+', metavar='NAME',
                   help='workloads: %s (default: all; each brings its held-out variant)'
                        % ', '.join(w.name for w in workloads.BASE))
    p.add_argument('--ruleset', choices=runner.RULESETS, default='external',
                   help='external: N quasirandom trials per study from one search space; '
                        'self: the defaults, one trial, 1.5x the budget (default external)')
    p.add_argument('--trials', type=int, default=None,
                   help='external tuning: trials per study (default 5; --quick 3)')
    p.add_argument('--studies', type=int, default=None,
                   help='studies (seeds of the search and the training); the median over '
                        'them counts (default 1; --full 3)')
    p.add_argument('--no-heldout', action='store_true',
                   help='skip the held-out variants (they are skipped with --quick)')
    size = p.add_mutually_exclusive_group()
    size.add_argument('--quick', action='store_true',
                      help='3 optimizers, 3 workloads, 3 trials, no held-out variants: a '
                           'few minutes')
    size.add_argument('--full', action='store_true',
                      help='%d optimizers, 3 studies, held-out variants: about an hour '
                           'with --jobs 2 on 2 cores'
                           % len(PRESETS['full']['external']['optimizers']))
    p.add_argument('--targets', default=targets_mod.TARGETS_FILE, metavar='FILE',
                   help='the validation targets (default: those shipped, set by '
                        'benchmarks/set_targets.py)')
    p.add_argument('--out', default=None,
                   help='output folder (default runs/benchmark-<timestamp>)')
    p.add_argument('--overwrite', action='store_true',
                   help='replace an existing --out folder, only if gluon-opt wrote it')
    p.add_argument('--resume', action='store_true',
                   help='continue the run in --out from its finished trials (same options)')
    p.add_argument('--jobs', type=int, default=1,
                   help='trials run at once, each in its own process with cores/JOBS threads '
                        '(default 1; on 2 cores --jobs 2 nearly doubles the trials per hour: '
                        'a small model trains as fast on one thread). Times compare within '
                        'a run; --resume needs the same --jobs')
    p.add_argument('--no-progress', action='store_true', help='no progress lines')
    return parser


def _positive(value, option):
    if value is not None and value < 1:
        raise BenchmarkError('%s %d is invalid; expected an integer >= 1.' % (option, value))


def settings(args):
    """The run's settings from ``args`` (the preset filled in), checked:
    ``(entries, chosen workloads, ruleset, trials, studies, targets)``; ``BenchmarkError``
    (or a ``WorkloadError``/``SearchSpaceError``/``TargetError``) naming what is wrong."""
    _positive(args.trials, '--trials')
    _positive(args.studies, '--studies')
    _positive(getattr(args, 'jobs', 1), '--jobs')
    if args.ruleset == 'self' and args.trials not in (None, 1):
        raise BenchmarkError('--trials %d does not apply to --ruleset self: self-tuning runs '
                             'one trial per study, with the defaults.' % args.trials)
    preset = PRESETS['quick' if args.quick else 'full' if args.full else 'default'][
        args.ruleset]
    names = args.optimizers or preset['optimizers']
    entries = [search_spaces.entry(n) for n in names]
    dup = sorted({e.name for e in entries if [x.name for x in entries].count(e.name) > 1})
    if dup:
        raise BenchmarkError('--optimizers names %s twice.' % ', '.join(dup))
    heldout = preset['heldout'] and not args.no_heldout
    chosen = workloads.resolve(args.workloads or preset.get('workloads'), heldout=heldout)
    trials = 1 if args.ruleset == 'self' else (args.trials or preset['trials'])
    studies = args.studies or preset['studies']
    goals = targets_mod.targets_for(chosen, args.targets)
    return entries, chosen, args.ruleset, trials, studies, goals


def _config(entries, chosen, ruleset, trials, studies, goals, jobs=1):
    return {'ruleset': ruleset, 'optimizers': [e.name for e in entries],
            'workloads': [w.name for w in chosen], 'trials': trials, 'studies': studies,
            'targets': goals, 'max_steps': {w.name: w.max_steps for w in chosen},
            'tau_max': scoring.TAU_MAX, 'jobs': jobs}


def _check_resume(out, config):
    path = os.path.join(out.path, 'config.json')
    if not os.path.exists(path):
        return
    with open(path) as f:
        old = json.load(f)
    old.setdefault('jobs', 1)  # written before --jobs existed: its trials ran one at a time
    differ = [k for k in config if old.get(k) != config[k]]
    if differ:
        raise BenchmarkError('--resume: the run in %s was started with other settings (%s: '
                             '%s); give the same options, or choose another --out.' % (
                                 out.given, ', '.join(differ),
                                 '; '.join('%s=%s' % (k, json.dumps(old.get(k)))
                                           for k in differ)[:300]))


class _Progress(object):
    """One line per trial on stderr (through a tqdm bar over the trials when stderr is a
    terminal), with the count and an estimate of the time left."""

    def __init__(self, enabled, total, stream=None, jobs=1):
        self.enabled, self.total, self.jobs = enabled, total, jobs
        self.stream = stream or sys.stderr
        self.bar = None
        if enabled and self.stream.isatty():
            from tqdm import tqdm
            self.bar = tqdm(total=total, file=self.stream, unit='trial', leave=False,
                            dynamic_ncols=True)
        self.walls = []
        self.count = 0  # trials finished, from the log or run

    def __call__(self, index, total, spec, record, resumed):
        self.count += 1
        if not resumed:
            self.walls.append(record['wall_time'])
        if self.bar is not None:
            self.bar.update(1)
        if not self.enabled or resumed:
            return
        if record['reached']:
            what = 'reached %.4g at step %d, %.1f s' % (
                spec.target, record['steps_to_target'], record['time_to_target'])
        elif record['diverged']:
            what = 'stopped: %s' % record['diverged']
        else:
            what = 'did not reach %s (best %s)' % (
                '%.4g' % spec.target if spec.target is not None else '-',
                '%.4g' % record['best_value'] if record['best_value'] is not None else '-')
        left = (total - self.count) * sum(self.walls) / len(self.walls) / self.jobs
        line = '[%d/%d] %s %s study %d trial %d: %s (wall %.1f s; ~%.0f min left)' % (
            self.count, total, spec.workload, record['label'], spec.study, spec.trial, what,
            record['wall_time'], left / 60.0)
        if self.bar is not None:
            self.bar.write(line, file=self.stream)
        else:
            self.stream.write(line + '\n')
            self.stream.flush()

    def close(self):
        if self.bar is not None:
            self.bar.close()


def _fmt(value):
    return '' if value is None or (isinstance(value, float) and not math.isfinite(value)) \
        else value


def write_results(out, records, config, complete):
    """Score ``records`` and write the tables, ``results.json`` and the plots into ``out``;
    returns ``(summary, file names)``."""
    summary = scoring.summarize(records)
    wls = summary['workloads']
    with out.open('scores.csv', newline='') as f:
        w = csv.writer(f)
        w.writerow(['optimizer', 'label', 'score', 'score_steps', 'study_scores']
                   + ['%s_%s' % (x, k) for x in wls for k in ('time', 'steps')])
        for o in summary['optimizers']:
            w.writerow([o['name'], o['label'], o['score'], o['score_steps'],
                        ' '.join('%.4f' % v for v in o['study_scores'])]
                       + [_fmt(o[k][x]) for x in wls for k in ('times', 'steps')])
    with out.open('time_to_target.csv', newline='') as f:
        w = csv.writer(f)
        w.writerow(['optimizer', 'workload', 'study', 'reached', 'trial', 'time_to_target',
                    'steps_to_target'])
        for (opt, wl, study), best in sorted(scoring.study_bests(records).items()):
            w.writerow([opt, wl, study, int(best is not None)] + (
                [best['trial'], best['time_to_target'], best['steps_to_target']]
                if best is not None else ['', '', '']))
    with out.open('results.json') as f:
        json.dump(outputs.finite_json({'config': config, 'complete': complete, 'summary': summary,
                              'per_trial_seconds': runner.per_trial_seconds(records),
                              'trials': len(records)}), f, indent=1, allow_nan=False)
    names = ['scores.csv', 'time_to_target.csv', 'results.json']
    title = ' (%s tuning, %d stud%s)' % (config['ruleset'], summary['studies'],
                                          'y' if summary['studies'] == 1 else 'ies')
    names += out.drawn(lambda folder: plots.write_plots(summary, folder, title))
    return summary, names


def run(args):
    """``gluon-opt benchmark``; returns the exit status (128 + the signal when stopped)."""
    if args.resume and args.overwrite:
        raise BenchmarkError('--resume and --overwrite contradict each other: --resume keeps '
                             'the finished trials in --out, --overwrite deletes them.')
    if args.resume and not args.out:
        raise BenchmarkError('--resume needs --out, the folder of the run to continue.')
    entries, chosen, ruleset, trials, studies, goals = settings(args)
    config = _config(entries, chosen, ruleset, trials, studies, goals, args.jobs)
    out = outputs.Output(args.out or os.path.join(
        'runs', 'benchmark-' + datetime.datetime.now().strftime('%Y%m%d-%H%M%S')),
        'benchmark', overwrite=args.overwrite, resume=bool(args.resume))
    if args.resume:
        _check_resume(out, config)
    specs = runner.plan(entries, chosen, ruleset, trials, studies, goals)
    print('Benchmark (%s tuning): %d optimizer%s x %d workload%s (%s) x %d stud%s%s = %d '
          'trials.' % (ruleset, len(entries), '' if len(entries) == 1 else 's', len(chosen),
                       '' if len(chosen) == 1 else 's', ', '.join(w.name for w in chosen),
                       studies, 'y' if studies == 1 else 'ies',
                       ' x %d trials' % trials if ruleset == 'external' else '', len(specs)))
    from ... import kernels
    kernels.prebuild()  # before the first timed step: a build never falls inside a timing
    t0 = time.perf_counter()
    out.create()
    resumed = out.resumed
    if not resumed or not os.path.exists(os.path.join(out.path, 'config.json')):
        with out.open('config.json') as f:
            json.dump(config, f, indent=1)
    log = runner.TrialLog(out.file('trials.jsonl'))
    if resumed:
        print('Resuming %s: %d of the %d trials are finished.'
              % (out.given, sum(s.key in log for s in specs), len(specs)))
    progress = _Progress(not args.no_progress, len(specs), jobs=args.jobs)
    records = []
    try:
        try:
            records = runner.run_plan(specs, log, progress=progress, jobs=args.jobs)
        finally:
            progress.close()
        summary, files = write_results(out, records, config, complete=True)
        out.finish()
    except KeyboardInterrupt as stop:  # SIGINT, or SIGTERM (gluon_opt.cli.main raises it)
        signum = getattr(stop, 'signum', signal.SIGINT)
        done = [log.records[s.key] for s in specs if s.key in log]
        if done:
            write_results(out, done, config, complete=False)
        out.finish(complete=False)
        print('%s: interrupted by %s after %d of %d trials; continue with: gluon-opt '
              'benchmark --resume --out %s (and the same options)'
              % (args.prog, signal.Signals(signum).name, len(done), len(specs), out.given),
              file=sys.stderr)
        return 128 + signum
    print()
    print(scoring.format_table(summary))
    print()
    print('score: normalised area under the performance profile over tau in [1, %g] (1: the '
          'fastest on every workload); cells: median time to target / steps; -: not reached.'
          % scoring.TAU_MAX)
    print('Wrote %s/: trials.jsonl, config.json, %s' % (out.given, ', '.join(files)))
    print('Total time %.1f s.' % (time.perf_counter() - t0))
    return 0
