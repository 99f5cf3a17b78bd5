"""Trials: what one is, how it runs, and the record of finished ones that makes a run resumable.

* ``plan(...)`` lists the trials of a benchmark run as ``TrialSpec`` objects: every workload,
  optimizer, study and trial, with its hyperparameters, seed, budget and target;
* ``run_trial(spec)`` trains one and returns its record (a dict, the line ``TrialLog``
  writes): the validation metric every ``eval_every`` steps, and when it first reached the
  target, in training time and in steps;
* ``TrialLog`` is the file of finished trials, one JSON line each, appended and synced as each
  trial ends; ``run_plan`` skips the trials it already holds, so a run that was killed
  continues from its finished trials, and the scores of the resumed run are those the
  uninterrupted run would give from the same records (``scoring`` reads only the records).

Time to target is AlgoPerf's: the wall-clock time of the training steps alone. The clock
runs from just before the first batch of a stretch of ``eval_every`` steps to just after its
last step has finished computing (``mx.nd.waitall``), and stops while the model is evaluated;
building the kernels (``kernels.prebuild``, done by the command before any trial), the data,
the model and its first forward pass are outside it. A trial stops at its first evaluation at
or under the target (``target=None``, as when targets are set: it runs the whole budget), when
its loss becomes NaN or infinite or explodes (``training.EXPLODE_FACTOR`` times the first
batch's), or when the budget of ``max_steps`` steps is spent.
"""
import contextlib
import dataclasses
import json
import math
import os
import time
import typing

import numpy as np
import mxnet as mx
from mxnet import autograd

from ...trainer import Trainer
from .. import data, training
from . import search_spaces, workloads

__all__ = ['TrialSpec', 'plan', 'run_trial', 'TrialLog', 'LogError', 'run_plan',
           'parallel_trials', 'RULESETS', 'trial_seed']

#: the two rulesets (``search_spaces`` says what each tunes)
RULESETS = ('external', 'self')


class LogError(ValueError):
    """A trial record file that does not belong to this run (other settings for a trial)."""


@dataclasses.dataclass(frozen=True)
class TrialSpec(object):
    """One trial: ``optimizer`` (a ``search_spaces.entry`` name) on ``workload`` in study
    ``study``, trial ``trial``; ``point`` the search-space point (None: self-tuning),
    ``params`` the optimizer's hyperparameters, ``schedule`` ``'cosine'`` (linear warmup of
    ``warmup_steps``, cosine decay to zero at ``max_steps``) or ``'constant'`` (a
    schedule-free optimizer gets ``warmup_steps`` as its own hyperparameter), ``seed`` the
    initialisation and batch-order seed, ``target`` the validation target (None: run the
    whole budget)."""
    workload: str
    optimizer: str
    study: int
    trial: int
    point: typing.Optional[dict]
    params: dict
    schedule: str
    warmup_steps: int
    max_steps: int
    seed: int
    target: typing.Optional[float]

    @property
    def key(self):
        return '%s/%s/%d/%d' % (self.workload, self.optimizer, self.study, self.trial)

    def settings(self):
        """What a finished record must agree on to stand for this trial on resumption."""
        return {'point': self.point, 'hyperparameters': self.params,
                'schedule': self.schedule, 'warmup_steps': self.warmup_steps,
                'max_steps': self.max_steps, 'seed': self.seed, 'target': self.target}


def trial_seed(study, trial):
    """The seed of trial ``trial`` of study ``study``: the same on every workload and for every
    optimizer, so that trial k of each optimizer starts from the same weights and batches."""
    return 100 * int(study) + int(trial)


def _spec(w, e, study, trial, point, max_steps, target):
    if point is None:  # self-tuning: the defaults, a constant rate
        params, schedule, warmup = search_spaces.self_tuning_params(e), 'constant', 0
    else:
        params = search_spaces.optimizer_params(e, point)
        warmup = search_spaces.warmup_steps(point, max_steps)
        schedule = 'constant' if e.schedule_free else 'cosine'
    return TrialSpec(w.name, e.name, int(study), int(trial), point, params, schedule, warmup,
                     int(max_steps), trial_seed(study, trial), target)


def plan(entries, chosen, ruleset='external', trials=5, studies=1, targets=None,
         first_study=0):
    """The trials of a run, workload by workload, study by study, optimizer by optimizer.

    entries : ``search_spaces.Entry`` objects; chosen : ``workloads.Workload`` objects;
    ruleset : ``'external'`` (``trials`` quasirandom points per study) or ``'self'`` (one
    trial per study with the defaults and 1.5 times the budget); targets : ``{workload name:
    target}`` (a missing one: None, the whole budget runs); the studies are numbered from
    ``first_study`` (target setting draws its own, ``targets.TARGET_STUDY``).
    """
    if ruleset not in RULESETS:
        raise ValueError('ruleset %r is invalid; expected one of %s.'
                         % (ruleset, ', '.join(RULESETS)))
    targets = targets or {}
    specs = []
    for w in chosen:
        for study in range(first_study, first_study + studies):
            for e in entries:
                if ruleset == 'self':
                    budget = int(round(w.max_steps * search_spaces.SELF_TUNING_BUDGET))
                    specs.append(_spec(w, e, study, 0, None, budget, targets.get(w.name)))
                    continue
                for t, point in enumerate(search_spaces.external_points(e, trials, study)):
                    specs.append(_spec(w, e, study, t, point, w.max_steps,
                                       targets.get(w.name)))
    return specs


def _batches(loader):
    while True:
        for batch in loader:
            yield batch


def _finite_or_none(x):
    return float(x) if x is not None and math.isfinite(x) else None


def run_trial(spec, clock=time.perf_counter):
    """Train the trial ``spec`` and return its record (a JSON-ready dict): the spec's fields,
    ``evals`` (``[step, training seconds, validation value]`` from step 0 on), ``reached``,
    ``steps_to_target`` and ``time_to_target`` (None where it did not reach the target),
    ``best_value``, ``steps``, ``train_time`` and ``diverged`` (None, or why it stopped: a
    NaN or exploding loss, or hyperparameters the optimizer rejects).

    ``clock`` is the timer (``time.perf_counter``; the tests pass a deterministic one)."""
    w = workloads.get(spec.workload)
    e = search_spaces.entry(spec.optimizer)
    started = time.perf_counter()
    train_x, train_y, val_x, val_y = workloads.arrays(w)
    record = dict(key=spec.key, workload=w.name, heldout_of=w.heldout_of,
                  optimizer=e.name, label=e.label, registry=e.key, study=spec.study,
                  trial=spec.trial, metric=w.metric, **spec.settings())
    evals, diverged = [], None
    training.seed_everything(spec.seed)
    net = w.build()
    net.initialize(mx.init.Xavier(), force_reinit=True)
    params = dict(spec.params)
    if spec.schedule == 'cosine':
        params['lr_scheduler'] = training.make_lr_scheduler(
            'cosine', params['learning_rate'], spec.max_steps, 1,
            spec.warmup_steps / float(spec.max_steps))
    elif spec.warmup_steps:
        params['warmup_steps'] = spec.warmup_steps
    try:
        trainer = Trainer(net.collect_params(), e.key, params)
    except (TypeError, ValueError) as err:
        trainer, diverged = None, 'rejected: %s' % ' '.join(str(err).split())
    if trainer is not None:
        evals, diverged = _train(spec, w, net, trainer, train_x, train_y, val_x, val_y, clock)
    hit = next((ev for ev in evals if spec.target is not None and ev[2] is not None
                and ev[2] <= spec.target), None)
    values = [ev[2] for ev in evals if ev[2] is not None]
    record.update(
        reached=hit is not None, steps_to_target=hit[0] if hit else None,
        time_to_target=hit[1] if hit else None,
        best_value=min(values) if values else None,
        steps=evals[-1][0] if evals else 0, train_time=evals[-1][1] if evals else 0.0,
        diverged=diverged, evals=evals, wall_time=time.perf_counter() - started)
    return record


def _train(spec, w, net, trainer, train_x, train_y, val_x, val_y, clock):
    """The training loop of ``run_trial``: ``(evals, diverged)``."""
    opt = trainer._optimizer
    loss_fn = w.loss()
    autoencoder = w.metric == 'mse'
    closure = bool(getattr(opt, 'needs_closure', False))
    evaluation_weights = getattr(opt, 'evaluation_weights',
                                 lambda _: contextlib.nullcontext())
    loader = data.ArrayLoader(train_x, train_y, w.batch_size, shuffle=True, seed=spec.seed,
                              last_batch='discard')
    batches = _batches(loader)

    def evaluate():
        with evaluation_weights(trainer):
            return _finite_or_none(workloads.validation_metric(net, w, val_x, val_y))

    evals = [[0, 0.0, evaluate()]]  # also builds the forward graph, outside the clock
    step, elapsed, limit = 0, 0.0, None
    while step < spec.max_steps:
        mx.nd.waitall()
        t0 = clock()
        for _ in range(min(w.eval_every, spec.max_steps - step)):
            x, y = next(batches)
            target = x if autoencoder else y

            def forward_backward():
                with autograd.record():
                    loss = loss_fn(net(x), target)
                loss.backward()
                return loss
            if closure:  # the optimizer evaluates it as often as it needs
                loss = trainer.step(x.shape[0], forward_backward)
            else:
                loss = forward_backward()
                trainer.step(x.shape[0])
            step += 1
            if step == 1:  # the first batch's loss sets the limit (one sync, once)
                first = float(loss.mean().asscalar())
                limit = training.EXPLODE_FACTOR * first if first > 0 else None
        last = float(loss.mean().asscalar())  # waits for the stretch's last step too
        mx.nd.waitall()
        elapsed += clock() - t0
        if not math.isfinite(last) or (limit is not None and last > limit):
            return evals, 'the training loss became %.4g at step %d' % (last, step)
        evals.append([step, elapsed, evaluate()])
        if spec.target is not None and evals[-1][2] is not None \
                and evals[-1][2] <= spec.target:
            break
    return evals, None


class TrialLog(object):
    """The finished trials of a run: the file ``path``, one JSON record per line, in the order
    they finished. ``records`` maps each trial's key to its record. A line cut short (the run
    was killed while writing it) is dropped when the file is opened."""

    def __init__(self, path):
        self.path = path
        self.records = {}
        if os.path.exists(path):
            self._load()

    def _load(self):
        with open(self.path) as f:
            text = f.read()
        lines = text.split('\n')
        kept = []
        for i, line in enumerate(lines):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except ValueError:
                if i == len(lines) - 1:  # the last line, half written: that trial reruns
                    break
                raise LogError('%s: line %d is not a trial record; it was not written by '
                               'gluon-opt benchmark (or was edited): choose another --out.'
                               % (self.path, i + 1)) from None
            self.records[record['key']] = record
            kept.append(line)
        if len(kept) != len([l for l in lines if l.strip()]):
            tmp = self.path + '.tmp'
            with open(tmp, 'w') as f:
                f.write(''.join(l + '\n' for l in kept))
            os.replace(tmp, self.path)

    def __contains__(self, key):
        return key in self.records

    def __len__(self):
        return len(self.records)

    def check(self, spec):
        """Raise ``LogError`` if the record of ``spec``'s trial was run with other settings."""
        record = self.records.get(spec.key)
        if record is None:
            return
        wanted = json.loads(json.dumps(spec.settings()))
        held = {k: record.get(k) for k in wanted}
        if held != wanted:
            diff = sorted(k for k in wanted if held[k] != wanted[k])
            raise LogError('%s holds trial %s run with other settings (%s); it belongs to '
                           'another run: choose another --out.'
                           % (self.path, spec.key, ', '.join(diff)))

    def append(self, record):
        """Add ``record`` and write it as one line, flushed and synced before returning."""
        line = json.dumps(record, allow_nan=False, sort_keys=True)
        with open(self.path, 'a') as f:
            f.write(line + '\n')
            f.flush()
            os.fsync(f.fileno())
        self.records[record['key']] = record


def run_plan(specs, log, progress=None, limit=None, clock=time.perf_counter, jobs=1):
    """Run every trial of ``specs`` that ``log`` (a ``TrialLog``) does not hold yet, appending
    each record as it finishes; ``progress(index, total, spec, record, resumed)`` is called for
    every trial (``resumed``: it came from the log). ``limit``: stop after so many new trials
    (what a kill would leave). ``jobs``: trials run at once, each in its own process
    (``parallel_trials``; ``clock`` then is the workers' ``time.perf_counter``). Returns the
    records of ``specs`` the log holds, in plan order."""
    for spec in specs:
        log.check(spec)
    todo = []
    for i, spec in enumerate(specs):
        if spec.key in log:
            if progress:
                progress(i, len(specs), spec, log.records[spec.key], True)
        elif limit is None or len(todo) < limit:
            todo.append((i, spec))
    if jobs > 1 and len(todo) > 1:
        finished = parallel_trials([spec for _, spec in todo], jobs)
    else:
        finished = (run_trial(spec, clock=clock) for _, spec in todo)
    index = {spec.key: i for i, spec in todo}
    for record in finished:
        log.append(record)
        if progress:
            progress(index[record['key']], len(specs), specs[index[record['key']]], record,
                     False)
    return [log.records[s.key] for s in specs if s.key in log]


def _worker_trial(spec, workload):
    """``run_trial`` in a worker process, which first learns ``workload`` if it lacks it (one
    defined at run time, as the tests' tiny one)."""
    if workloads.WORKLOADS.get(workload.name) != workload:
        workloads.WORKLOADS[workload.name] = workload
    return run_trial(spec)


def parallel_trials(specs, jobs):
    """Run ``specs`` ``jobs`` at a time, each trial in one of ``jobs`` worker processes
    (started fresh, as ``spawn`` does) with ``cpu_count // jobs`` threads (at least 1);
    yields each record as its trial ends, in the order they end. On a small model one thread
    per trial is about as fast as two (measured: the course MLP's 450 steps take 0.9 s of
    training with one thread, 1.5 s with two, on 2 cores), so ``jobs`` = the cores nearly
    multiplies the trials per hour; times are comparable within a run, not across runs with
    other ``jobs``. A ``KeyboardInterrupt`` stops the workers (their trials rerun on resume)."""
    import concurrent.futures
    import multiprocessing
    threads = str(max(1, (os.cpu_count() or 1) // jobs))
    saved = {k: os.environ.get(k) for k in ('OMP_NUM_THREADS', 'MKL_NUM_THREADS')}
    os.environ.update(OMP_NUM_THREADS=threads, MKL_NUM_THREADS=threads)  # the workers inherit
    pool = concurrent.futures.ProcessPoolExecutor(
        jobs, mp_context=multiprocessing.get_context('spawn'))
    complete = False
    try:
        futures = [pool.submit(_worker_trial, spec, workloads.get(spec.workload))
                   for spec in specs]
        for future in concurrent.futures.as_completed(futures):
            yield future.result()
        complete = True
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
        if not complete:  # stopped: the trials under way are dropped, not waited for
            for p in list(getattr(pool, '_processes', None) or {}).values():
                p.terminate()
        pool.shutdown(wait=True, cancel_futures=True)


def per_trial_seconds(records):
    """``{workload: mean wall seconds of a trial}`` over ``records`` (setup and evaluations
    included): what a run of that size costs here."""
    out = {}
    for r in records:
        out.setdefault(r['workload'], []).append(r['wall_time'])
    return {k: float(np.mean(v)) for k, v in out.items()}


__all__ += ['per_trial_seconds']
