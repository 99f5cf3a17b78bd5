"""Set the validation targets of ``gluon-opt benchmark``, as AlgoPerf sets its own.

For each workload, each target-setting baseline (AdamW, NAdamW, Nesterov, heavy ball) runs
``--trials`` quasirandom trials of its search space over the whole step budget; its best
trial's lowest validation value (the median over ``--reruns`` more seeds of that setting,
where asked) is its value; the target is the best value over the baselines times
``1 + --fraction``. The procedure is ``gluon_opt.experiments.benchmark.targets.set_targets``;
this script runs it and writes the targets, with how they were set, into the package's
``targets.json`` (or ``--out``), replacing the entries of the workloads it ran and keeping
the others.

The trials are kept in ``--log`` (one JSON line each): an interrupted run resumes from it,
and a rerun with another ``--fraction`` trains nothing. Same options, same log or not: the
same targets (the trials' validation values repeat exactly on one machine).

    python benchmarks/set_targets.py                       # every workload and variant
    python benchmarks/set_targets.py --workloads mlp --trials 16 --reruns 4
"""
import argparse
import os
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)  # this checkout's gluon_opt, whatever else is installed

from gluon_opt import kernels  # noqa: E402
from gluon_opt.experiments.benchmark import (runner, search_spaces, targets,  # noqa: E402
                                             workloads)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('--workloads', nargs='+', metavar='NAME',
                   help='workloads (default: all, with their held-out variants)')
    p.add_argument('--baselines', nargs='+', default=list(search_spaces.BASELINES),
                   help='target-setting optimizers (default: %s)'
                        % ' '.join(search_spaces.BASELINES))
    p.add_argument('--trials', type=int, default=8, help='trials per baseline (default 8)')
    p.add_argument('--reruns', type=int, default=0,
                   help="more seeds of each baseline's best setting; its value is the "
                        'median over them (default 0)')
    p.add_argument('--fraction', type=float, default=targets.FRACTION,
                   help='target = best value x (1 + fraction) (default %g)'
                        % targets.FRACTION)
    p.add_argument('--log', default=os.path.join(ROOT, 'runs', 'set-targets', 'trials.jsonl'),
                   help='the trial records (resumable; default runs/set-targets/trials.jsonl)')
    p.add_argument('--out', default=targets.TARGETS_FILE,
                   help='the targets file to update (default: the package\'s targets.json)')
    args = p.parse_args(argv)
    if args.trials < 1 or args.reruns < 0 or not 0 <= args.fraction < 1:
        p.error('expected --trials >= 1, --reruns >= 0 and 0 <= --fraction < 1.')
    try:  # exactly the workloads named, else every workload and variant
        chosen = ([workloads.get(n) for n in args.workloads] if args.workloads
                  else workloads.resolve(None))
        for b in args.baselines:
            search_spaces.entry(b)
    except ValueError as err:
        p.error(str(err))
    os.makedirs(os.path.dirname(os.path.abspath(args.log)), exist_ok=True)
    log = runner.TrialLog(args.log)
    kernels.prebuild()
    total = len(chosen) * len(args.baselines) * (args.trials + args.reruns)
    t0 = time.time()

    def progress(index, _, spec, record, resumed):
        if not resumed:
            sys.stderr.write('%s %-10s trial %d (seed %d): best %.5g in %d steps, %.1f s '
                             '(wall %.1f s)\n' % (
                                 spec.workload, spec.optimizer, spec.trial, spec.seed,
                                 record['best_value'] if record['best_value'] is not None
                                 else float('nan'), record['steps'], record['train_time'],
                                 record['wall_time']))
    found = targets.set_targets(chosen, log, baselines=tuple(args.baselines),
                                trials=args.trials, reruns=args.reruns,
                                fraction=args.fraction, progress=progress)
    command = 'python benchmarks/set_targets.py ' + ' '.join(
        a if a.startswith('--') else repr(a) if ' ' in a else a for a in (argv or sys.argv[1:]))
    path = targets.write(found, args.out, command=command.strip())
    print('%-18s %-11s %10s %10s  %s' % ('workload', 'metric', 'best', 'target', 'set by'))
    for name, e in found.items():
        print('%-18s %-11s %10.5g %10.5g  %s  (%s)' % (
            name, e['metric'], e['best_value'], e['target'], e['set_by'],
            ', '.join('%s %.5g' % kv for kv in sorted(e['baselines'].items()))))
    print('%d trials in the log (%d planned); %.0f s. Wrote %s.'
          % (len(log), total, time.time() - t0, path))
    return 0


if __name__ == '__main__':
    sys.exit(main())
