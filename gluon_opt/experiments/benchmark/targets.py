"""The validation targets: how they are set, where they are kept, how they are read.

AlgoPerf sets a workload's target from well-tuned runs of four standard algorithms (AdamW,
NAdamW, Nesterov momentum, heavy-ball momentum): each is tuned within the workload's budget,
its best setting is rerun several times and the median of its best validation value taken,
and the target is the best of the four. ``set_targets`` does the same at a small scale:

1. each baseline (``search_spaces.BASELINES``) runs ``trials`` quasirandom trials of its
   external-tuning search space, each for the whole step budget with no target, and its best
   trial is the one with the lowest validation value at any evaluation. The trials are study
   ``TARGET_STUDY``'s: points and seeds of their own, so that no trial of a benchmark run
   (studies 0, 1, ...) repeats the one that set the target;
2. with ``reruns`` > 0 that trial's setting is rerun under ``reruns`` more seeds (studies
   ``TARGET_STUDY + 1``, ...) and the baseline's value is the median over the runs; with 0
   it is the best trial's value;
3. the best value over the baselines, relaxed by ``fraction`` (target = value * (1 +
   fraction); every metric here is lower-is-better), is the target. The relaxation stands in
   for AlgoPerf's median over reruns where those are not afforded: the best of a few dozen
   trials is an optimistic draw, and a target only it attains would measure luck.

Everything is recorded with the target (``TARGETS_FILE``): the procedure's settings, the date,
each baseline's value and the winning setting, and the workload's definition, so that a
target set for another definition of a workload is refused rather than silently used.
``benchmarks/set_targets.py`` is the script that runs the procedure and writes the file;
its trials are kept in a ``runner.TrialLog``, so it resumes and can be rerun with another
``fraction`` without training again.
"""
import dataclasses
import datetime
import json
import os

import numpy as np

from . import runner, search_spaces, workloads

__all__ = ['TARGETS_FILE', 'FRACTION', 'TARGET_STUDY', 'TargetError', 'load', 'targets_for',
           'set_targets', 'write']

#: the targets shipped with gluon-opt (written by benchmarks/set_targets.py)
TARGETS_FILE = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'targets.json')
#: the default relaxation of the best baseline value (see the module docstring)
FRACTION = 0.02
#: the study number of the target-setting trials (their search points and seeds), far from
#: the benchmark's studies 0, 1, ...
TARGET_STUDY = 1000


class TargetError(ValueError):
    """A workload without a usable target (none set, or set for another definition)."""


def load(path=TARGETS_FILE):
    """The targets file as a dict (``{'workloads': {name: entry}, ...}``); an empty one where
    the file does not exist."""
    if not os.path.exists(path):
        return {'workloads': {}}
    with open(path) as f:
        return json.load(f)


def targets_for(chosen, path=TARGETS_FILE):
    """``{workload name: target}`` for the workloads ``chosen``; ``TargetError`` naming those
    that have no target, or one set for another definition of the workload."""
    entries = load(path)['workloads']
    out, missing = {}, []
    for w in chosen:
        entry = entries.get(w.name)
        if entry is None or entry.get('definition') != w.definition():
            missing.append(w.name + ('' if entry is None else ' (set for another definition)'))
        else:
            out[w.name] = float(entry['target'])
    if missing:
        raise TargetError('no validation target for %s in %s; set it with python '
                          'benchmarks/set_targets.py --workloads %s'
                          % (', '.join(missing), path,
                             ' '.join(m.split()[0] for m in missing)))
    return out


def _rerun_specs(spec, reruns):
    """``spec``'s setting under ``reruns`` more seeds (as the studies after its own)."""
    return [dataclasses.replace(spec, study=k, seed=runner.trial_seed(k, spec.trial))
            for k in range(spec.study + 1, spec.study + reruns + 1)]


def set_targets(chosen, log, baselines=search_spaces.BASELINES, trials=8, reruns=0,
                fraction=FRACTION, progress=None, clock=None):
    """Run the procedure of the module docstring on the workloads ``chosen``, keeping the
    trials in ``log`` (a ``runner.TrialLog``: trials already there are not run again).
    Returns ``{workload name: entry}``, each entry holding the ``target``, the ``best_value``
    it relaxes, the ``fraction``, the baseline that ``set_by`` it with its
    ``hyperparameters``, every baseline's value, and the settings of the procedure."""
    kwargs = {} if clock is None else {'clock': clock}
    entries = [search_spaces.entry(b) for b in baselines]
    out = {}
    for w in chosen:
        specs = runner.plan(entries, [w], 'external', trials, 1, first_study=TARGET_STUDY)
        records = runner.run_plan(specs, log, progress=progress, **kwargs)
        values, best_specs = {}, {}
        for e in entries:
            mine = [(r, s) for r, s in zip(records, specs)
                    if s.optimizer == e.name and r['best_value'] is not None]
            if not mine:
                continue
            record, spec = min(mine, key=lambda rs: (rs[0]['best_value'], rs[1].trial))
            runs = [record] + runner.run_plan(_rerun_specs(spec, reruns), log,
                                              progress=progress, **kwargs)
            got = [r['best_value'] for r in runs if r['best_value'] is not None]
            values[e.name] = float(np.median(got))
            best_specs[e.name] = spec
        if not values:
            raise TargetError('no baseline trained on %s (every trial diverged); the '
                              'workload or the search spaces need a look.' % w.name)
        winner = min(values, key=lambda name: (values[name], baselines.index(name)))
        best = values[winner]
        out[w.name] = {
            'metric': w.metric, 'target': float('%.6g' % (best * (1.0 + fraction))),
            'best_value': best, 'fraction': fraction, 'set_by': winner,
            'hyperparameters': best_specs[winner].params,
            'warmup_steps': best_specs[winner].warmup_steps,
            'baselines': values, 'trials': trials, 'reruns': reruns,
            'max_steps': w.max_steps, 'definition': w.definition()}
    return out


def write(entries, path=TARGETS_FILE, command=None, merge=True):
    """Write ``entries`` (``set_targets``'s result) into the targets file at ``path``
    (atomically), keeping the other workloads' entries when ``merge``; each entry is
    stamped with today's date and the ``command`` that produced it."""
    doc = load(path) if merge else {'workloads': {}}
    doc['about'] = ('Validation targets of gluon-opt benchmark, set by '
                    'benchmarks/set_targets.py (procedure: '
                    'gluon_opt/experiments/benchmark/targets.py, docs/benchmark.md). A '
                    'target is the best baseline value times (1 + fraction).')
    doc['search_seed'] = search_spaces.SEARCH_SEED
    doc['target_study'] = TARGET_STUDY  # the trials' Halton seed is search_seed + this
    doc['split_seed'] = workloads.SPLIT_SEED
    today = datetime.date.today().isoformat()
    for name, entry in entries.items():
        doc['workloads'][name] = dict(entry, date=today, command=command)
    tmp = path + '.tmp'
    with open(tmp, 'w') as f:
        json.dump(doc, f, indent=1, sort_keys=True)
        f.write('\n')
    os.replace(tmp, path)
    return path
