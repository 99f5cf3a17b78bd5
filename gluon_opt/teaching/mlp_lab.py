"""Chapter 6's experiments: one MLP, every optimizer, in updates and in seconds.

* ``TUNING_GRID`` and ``tune(...)``: the learning-rate grid the chapter's settings were chosen
  from (each optimizer's best value by the mean training loss over the epochs), runnable;
* ``implementation(name, params)``: which update an optimizer runs in this process, its fused
  kernel or its readable reference made of ``mx.nd`` operations (``use_fused`` in ``params``,
  else the environment variable ``GLUON_OPT_IMPL``, else whether the kernels loaded);
* ``time_to_target(...)``: wall-clock time and updates until the running training loss
  falls to a target, for one optimizer under each implementation and batch size (the
  fastest of a few repeats).
"""
import mxnet as mx
import numpy as np

from ..experiments import compare, models, training

__all__ = ['TUNING_GRID', 'tune', 'FUSED', 'REFERENCE', 'implementation', 'SpeedRun',
           'time_to_target']

#: ``{label: (registry name, fixed hyperparameters, learning rates tried)}``: the grid of the
#: chapter's comparison (MLP 784-64-10, 5,120 images, batch 128, 4 epochs, seed 0)
TUNING_GRID = {
    'SGD': ('gluon_opt.sgd', {}, (0.1, 0.2, 0.4)),
    'Momentum': ('gluon_opt.sgd', {'momentum': 0.9}, (0.02, 0.05, 0.1, 0.2)),
    'Nesterov': ('gluon_opt.sgd', {'momentum': 0.9, 'nesterov': True},
                 (0.02, 0.05, 0.1, 0.2)),
    'AdaGrad': ('gluon_opt.adagrad', {}, (0.01, 0.03, 0.1, 0.3)),
    'RMSprop': ('gluon_opt.rmsprop', {}, (3e-4, 1e-3, 3e-3)),
    'AdaDelta': ('gluon_opt.adadelta', {}, (0.3, 1.0, 3.0)),
    'Adam': ('gluon_opt.adam', {}, (1e-3, 3e-3, 1e-2, 3e-2)),
    'AdamW': ('gluon_opt.adamw', {'wd': 0.01}, (1e-3, 3e-3, 1e-2, 3e-2)),
    'Lion': ('gluon_opt.lion', {}, (1e-4, 3e-4, 1e-3, 3e-3)),
}


def tune(loaders, epochs=4, grid=None, hidden=(64,), seed=0, train_eval_size=2000):
    """Run every learning rate of ``grid`` (default ``TUNING_GRID``) and score it by the mean
    training loss over the epochs (the area under the curve: fast *and* far; a diverged run
    scores infinity). Returns ``{label: (best rate, {rate: score})}``."""
    grid = TUNING_GRID if grid is None else grid
    best = {}
    for label, (name, fixed, rates) in grid.items():
        specs = [compare.OptimizerSpec('%s %g' % (label, lr), name,
                                       dict(fixed, learning_rate=lr)) for lr in rates]
        runs = compare.run_comparison(specs, loaders, lambda: models.mlp(hidden=hidden), epochs,
                                      seeds=(seed,), progress=False,
                                      train_eval_size=train_eval_size)
        scores = {}
        for lr, run in zip(rates, runs):
            ok = run.diverged is None and run.history is not None
            scores[lr] = (float(np.mean(run.history.column('train_loss')[1:])) if ok
                          else float('inf'))
        best[label] = (min(scores, key=scores.get), scores)
    return best


FUSED, REFERENCE = 'fused kernel', 'reference mx.nd ops'


def implementation(name, params=None):
    """``FUSED`` or ``REFERENCE``: the update that the optimizer ``name`` with ``params``
    runs in this process as it is now, the way every ``Trainer.step`` decides it (so, for runs
    made in this process with the same settings, the implementation they used)."""
    opt = mx.optimizer.create(name, **dict(params or {}))
    selected = getattr(opt, '_fused_selected', None)
    return FUSED if selected is not None and selected() else REFERENCE


class SpeedRun(object):
    """One run of ``time_to_target``: ``batch_size``, ``impl`` (``FUSED``/``REFERENCE``),
    ``updates`` and ``seconds`` (training wall time, evaluation excluded) until the running
    loss first reached the target (``inf`` when it did not), ``update_seconds`` the part of
    the whole run spent in ``Trainer.step`` and ``train_seconds`` the whole run's training
    time (both over all its epochs)."""

    def __init__(self, batch_size, impl, updates, seconds, update_seconds, train_seconds):
        self.batch_size, self.impl = batch_size, impl
        self.updates, self.seconds = updates, seconds
        self.update_seconds, self.train_seconds = update_seconds, train_seconds

    @property
    def update_share(self):
        """Fraction of the training time spent in the optimizer update."""
        return self.update_seconds / self.train_seconds

    def __repr__(self):
        return 'SpeedRun(batch %d, %s: %s updates)' % (self.batch_size, self.impl,
                                                        self.updates)


def time_to_target(name, params, load, epochs, target, impls=(FUSED, REFERENCE), hidden=(64,),
                   seed=0, check_every=5, repeats=2):
    """Train ``name`` with ``params`` under each implementation in ``impls`` and each batch
    size in ``epochs`` (``{batch size: epochs}``) on the loaders ``load(batch_size)``.

    Each configuration runs ``repeats`` times and keeps the smallest of each time (the value
    least disturbed by other programs, as ``timeit`` does); the implementations alternate
    within a batch size, so that load from other processes falls on both alike. Every repeat
    computes the same numbers (same seed), so only the times differ. Returns a list of
    ``SpeedRun``, one per batch size and implementation, in that order."""
    out = []
    for batch_size, n_epochs in epochs.items():
        loaders = load(batch_size)
        best = {}
        for _ in range(repeats):
            for impl in impls:
                hp = dict(params, use_fused=impl == FUSED)
                history = training.train(models.mlp(hidden=hidden), name, loaders, n_epochs,
                                         seed=seed, optimizer_params=hp, progress=False,
                                         train_eval_size=0, check_every=check_every)
                hit = compare.reached(history, target) or (float('inf'), float('inf'))
                run = SpeedRun(batch_size, implementation(name, hp), hit[0], hit[1],
                               float(sum(history.column('step_time'))),
                               history.records[-1]['wall_time'])
                if impl in best:  # the same numbers: keep each time's least disturbed value
                    old = best[impl]
                    run = SpeedRun(batch_size, run.impl, run.updates,
                                   min(run.seconds, old.seconds),
                                   min(run.update_seconds, old.update_seconds),
                                   min(run.train_seconds, old.train_seconds))
                best[impl] = run
        out.extend(best[impl] for impl in impls)
    return out
