"""The benchmark runs whose results the docs and the course cite, shipped as their trial
records, so that anyone can score them again (``scoring.summarize(records(name))``).

``benchmarks/publish_run.py RUN_DIR NAME`` writes ``published/NAME.jsonl.gz`` from a finished
``gluon-opt benchmark`` output folder: every trial record without its evaluation curve (the
scores read only when each trial reached its target, in seconds and steps), and
``published/NAME.json``, the run's ``config.json`` with the machine it ran on and how it was
run. ``records(NAME)`` reads them back; the tests check that a published run is complete (every
trial its configuration plans) and scores as it was scored when it was written.
"""
import gzip
import json
import os

__all__ = ['FOLDER', 'RUNS', 'KEPT', 'records', 'config', 'planned', 'write']

#: where the published runs are kept (package data)
FOLDER = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'published')
#: the published runs: name -> what it is
RUNS = {
    'full-external': 'gluon-opt benchmark --full --jobs 2: external tuning, 12 optimizers x '
                     '10 workloads x 3 studies x 5 trials',
    'full-self': 'gluon-opt benchmark --full --ruleset self --jobs 2: self-tuning (defaults), '
                 '12 optimizers x 10 workloads x 3 studies',
}
#: the fields of a trial record that are kept (the evaluation curve ``evals`` is dropped)
KEPT = ('key', 'workload', 'heldout_of', 'optimizer', 'label', 'registry', 'study', 'trial',
        'metric', 'hyperparameters', 'point', 'schedule', 'warmup_steps', 'seed', 'max_steps',
        'target',
        'reached', 'steps_to_target', 'time_to_target', 'best_value', 'steps', 'train_time',
        'diverged', 'wall_time')


def _path(name, ext):
    if name not in RUNS:
        raise ValueError('unknown published benchmark run %r; expected one of %s.'
                         % (name, ', '.join(sorted(RUNS))))
    return os.path.join(FOLDER, name + ext)


def records(name):
    """The trial records of the published run ``name``, in the order they finished."""
    with gzip.open(_path(name, '.jsonl.gz'), 'rt') as f:
        return [json.loads(line) for line in f if line.strip()]


def config(name):
    """The published run's configuration (its ``config.json``), with ``machine`` and
    ``command`` (how it was run) and ``scores`` (each optimizer's score when published)."""
    with open(_path(name, '.json')) as f:
        return json.load(f)


def planned(run_config):
    """The trials (``runner.TrialSpec``) that a run's configuration (its ``config.json``, or a
    published ``config``) plans, in plan order: what a complete run holds."""
    from . import runner, search_spaces, workloads
    c = run_config
    return runner.plan([search_spaces.entry(n) for n in c['optimizers']],
                       [workloads.get(n) for n in c['workloads']], c['ruleset'], c['trials'],
                       c['studies'], c['targets'])


def write(run_records, run_config, name, folder=FOLDER):
    """Write the published run ``name`` (``records`` reads it back): the records with the
    fields of ``KEPT`` only, in order, and ``run_config``. Returns the two paths."""
    os.makedirs(folder, exist_ok=True)
    data = os.path.join(folder, name + '.jsonl.gz')
    with gzip.GzipFile(data, 'wb', mtime=0) as raw:  # mtime 0: the same records, the same bytes
        for r in run_records:
            raw.write((json.dumps({k: r.get(k) for k in KEPT}, sort_keys=True,
                                  allow_nan=False) + '\n').encode())
    meta = os.path.join(folder, name + '.json')
    with open(meta, 'w') as f:
        json.dump(run_config, f, indent=1, sort_keys=True)
        f.write('\n')
    return data, meta
