"""Publish a finished ``gluon-opt benchmark`` run for the docs and the course: its trial
records (without the evaluation curves) and configuration go to
``gluon_opt/experiments/benchmark/published/NAME.*`` (``published.write``).

    python benchmarks/publish_run.py runs/full-external full-external \
        --command "gluon-opt benchmark --full --jobs 2 --out runs/full-external"

Refuses a run that is not complete (every trial its configuration plans) and checks that the
published records score exactly as the run's own records do.
"""
import argparse
import json
import os
import platform
import sys

from gluon_opt.experiments.benchmark import published, runner, scoring


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    p.add_argument('run', help='the output folder of a finished gluon-opt benchmark run')
    p.add_argument('name', choices=sorted(published.RUNS))
    p.add_argument('--command', required=True, help='the command line that made the run')
    args = p.parse_args(argv)
    with open(os.path.join(args.run, 'config.json')) as f:
        config = json.load(f)
    log = runner.TrialLog(os.path.join(args.run, 'trials.jsonl'))
    specs = published.planned(config)
    missing = [s.key for s in specs if s.key not in log]
    if missing:
        sys.exit('%s is not complete: %d of %d trials missing (first %s); finish it with '
                 '--resume.' % (args.run, len(missing), len(specs), missing[0]))
    records = [log.records[s.key] for s in specs]
    summary = scoring.summarize(records)
    machine = {'cpu': _cpu(), 'cores': os.cpu_count(), 'python': platform.python_version()}
    scores = {o['name']: {'score': o['score'], 'score_steps': o['score_steps'],
                          'study_scores': o['study_scores']} for o in summary['optimizers']}
    paths = published.write(records, dict(config, machine=machine, command=args.command,
                                          scores=scores), args.name)
    again = scoring.summarize(published.records(args.name))
    assert json.dumps(again, sort_keys=True) == json.dumps(summary, sort_keys=True)
    print('wrote %s (%d trials)' % (', '.join(paths), len(records)))
    print(scoring.format_table(summary))


def _cpu():
    try:
        with open('/proc/cpuinfo') as f:
            for line in f:
                if line.startswith('model name'):
                    return line.split(':', 1)[1].strip()
    except OSError:
        pass
    return platform.processor()


if __name__ == '__main__':
    main()
