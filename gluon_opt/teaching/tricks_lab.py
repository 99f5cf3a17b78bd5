"""The training runs of chapter 8 (schedules and practical tricks), kept out of the notebook
so that its cells show the experiment, not the plumbing.

* ``sgd_run(loaders, ...)``: SGD with momentum on the chapter's MLP, with an optional
  scheduler or clipping; a run that diverges returns None instead of raising;
* ``warmup_cosine(peak, steps_per_epoch, epochs)``: gluoncv's "linear warmup, then cosine"
  schedule, built fresh (a scheduler keeps state, so every run needs its own);
* ``by_epoch(history)``: a History column as a compact line of numbers.
"""
import mxnet as mx

__all__ = ['sgd_run', 'warmup_cosine', 'by_epoch']


def sgd_run(loaders, lr_scheduler=None, epochs=4, lr=0.5, momentum=0.9, hidden=(64,),
            seed=0, optimizer_params=None, train_eval_size=2000, **trainer_kwargs):
    """Train ``models.mlp(hidden)`` with ``gluon_opt.sgd`` (``momentum``) and return the
    ``History``, or None if training diverged.

    With ``lr_scheduler`` the rate comes from the scheduler (which starts from its own base
    rate), else it is the constant ``lr``. ``optimizer_params`` are added to the optimizer's
    (``{'clip_gradient': 0.01}``); ``trainer_kwargs`` go to ``gluon_opt.Trainer``
    (``clip_global_norm=0.5``)."""
    from .. import Trainer
    from ..experiments import models, training
    net = models.mlp(hidden=hidden)
    training.seed_everything(seed)
    net.initialize(mx.init.Xavier())
    params = {'momentum': momentum}
    if lr_scheduler is not None:
        params['lr_scheduler'] = lr_scheduler
    else:
        params['learning_rate'] = lr
    params.update(optimizer_params or {})
    trainer = Trainer(net.collect_params(), 'gluon_opt.sgd', params, **trainer_kwargs)
    try:
        return training.train(net, trainer, loaders, epochs, seed=seed, progress=False,
                              train_eval_size=train_eval_size)
    except training.TrainingDiverged:
        return None


def warmup_cosine(peak, steps_per_epoch, epochs, warmup_epochs=1):
    """gluoncv's ``LRSequential``: a linear ramp from 0 to ``peak`` over ``warmup_epochs``
    epochs, then a cosine from ``peak`` down to 0 over the remaining epochs."""
    from .._compat import import_gluoncv
    import_gluoncv()  # gluoncv 0.10 refuses to import beside torch 2.x; the shim fixes that
    from gluoncv.utils import LRScheduler, LRSequential
    return LRSequential([
        LRScheduler('linear', base_lr=0, target_lr=peak, nepochs=warmup_epochs,
                    iters_per_epoch=steps_per_epoch),
        LRScheduler('cosine', base_lr=peak, target_lr=0, nepochs=epochs - warmup_epochs,
                    iters_per_epoch=steps_per_epoch)])


def by_epoch(history, key='train_loss'):
    """``history``'s ``key`` after each epoch (epoch 0, the untrained network, left out) as
    ``'1.599 2.110 ...'``."""
    return ' '.join('%.3f' % v for v in history.column(key)[1:])
