"""The one training loop, used by the CLI, the course and the benchmarks.

``train(net, optimizer, loaders, epochs, ...)`` seeds everything, initialises the network,
trains it and returns a ``History``: one record per epoch (epoch 0 is the untrained network)
with the training, validation and test loss and accuracy, the wall time of the epoch and the
part of it spent in ``Trainer.step`` (gradient aggregation and the optimizer update), plus the
running minibatch loss sampled every ``check_every`` batches for loss-against-time plots.

The loss is checked every ``check_every`` batches (one device sync per check, not per batch);
a loss that is NaN or infinite, or that explodes (see ``EXPLODE_FACTOR``), raises
``TrainingDiverged`` naming the optimizer, the epoch and the exact batch, with the history up
to that point attached.
"""
import contextlib
import random
import sys
import time

import numpy as np
import mxnet as mx
from mxnet import autograd, gluon

from .. import averaging
from .. import schedules as _schedules
from .. import trainer as _trainer
from ..trainer import Trainer

# gluon_opt.Trainer refuses a step with NaN or inf gradients (nonfinite='raise')
_NONFINITE_GRADIENT = getattr(_trainer, 'NonFiniteGradient', ())

__all__ = ['TrainingDiverged', 'History', 'seed_everything', 'parse_ctx', 'make_lr_scheduler',
           'SCHEDULES', 'EXPLODE_FACTOR', 'evaluate', 'train', 'make_closure',
           'optimizer_state_bytes']

#: A run has diverged when a minibatch's mean loss, or an epoch's training loss, exceeds this
#: many times its initial loss (the untrained network's, epoch 0; rule skipped where that is
#: not a positive number). A finite loss can still be a divergence: gradient ascent (a
#: negative learning rate) drives the cross-entropy to 1e5 and beyond without overflowing.
#: The factor is far from what recovering runs reach: SGD at learning rate 3 on chapter 2's MLP
#: peaks at 28 times its initial loss (and ends at chance), NAG at learning rate -1 reaches
#: 5e4 times it within four batches.
EXPLODE_FACTOR = 1000.0

#: learning-rate schedules ``make_lr_scheduler`` builds (all accept a linear warmup)
SCHEDULES = ('constant', 'cosine', 'linear')
# -- schedules: warmup-stable-decay and the plateau schedule (gluon_opt.schedules) --
SCHEDULES += ('wsd', 'plateau')
#: WSD's decay phase in make_lr_scheduler: the last 20% of the updates, 1-sqrt (Hägele et al.)
WSD_DECAY_FRACTION = 0.2


class TrainingDiverged(RuntimeError):
    """The training loss, the gradients or the weights became NaN or infinite, or the loss
    exploded past ``limit`` (``EXPLODE_FACTOR`` times the initial loss). ``history`` holds the epochs
    completed before it; ``optimizer``, ``epoch``, ``batch`` and ``loss`` say where.

    The weights are checked too because a loss can stay finite over non-finite weights: MXNet's
    ReLU maps NaN to 0, so a network whose first layer holds NaN can still output finite
    logits (its biases) while learning nothing.
    """

    def __init__(self, optimizer, epoch, batch, loss, history=None, weights=False, limit=None,
                 gradients=False):
        self.optimizer, self.epoch, self.batch, self.loss = optimizer, epoch, batch, loss
        self.history, self.weights, self.limit = history, weights, limit
        self.gradients = gradients
        if gradients:
            what = ('the gradients became NaN or inf at epoch %d, batch %d (the loss, %.4g, '
                    'stayed finite)' % (epoch, batch, loss))
        elif limit is not None:
            what = ('the training loss exploded to %.4g at epoch %d, batch %d (over %g '
                    'times its initial %.4g)' % (loss, epoch, batch, EXPLODE_FACTOR,
                                                 limit / EXPLODE_FACTOR))
        elif weights:
            what = ('the weights became NaN or inf by epoch %d, batch %d (the loss, %.4g, '
                    'stayed finite)' % (epoch, batch, loss))
        else:
            what = 'the training loss became %s at epoch %d, batch %d' % (loss, epoch, batch)
        super(TrainingDiverged, self).__init__(
            '%s diverged: %s; try a smaller learning rate.' % (optimizer, what))


class History(object):
    """What one training run produced.

    ``records``: one dict per epoch (0 = before training) with the keys of ``FIELDS``;
    ``steps``: ``(step, epoch, wall_time, loss)`` samples of the running minibatch loss;
    ``meta``: what was trained and how (optimizer, hyperparameters, seed, contexts, ...).
    """
    FIELDS = ('epoch', 'train_loss', 'train_acc', 'batch_loss', 'batch_acc', 'val_loss',
              'val_acc', 'test_loss', 'test_acc', 'lr', 'epoch_time', 'step_time', 'eval_time',
              'wall_time')

    def __init__(self, meta=None):
        self.meta = dict(meta or {})
        self.records = []
        self.steps = []

    def __len__(self):
        return len(self.records)

    def column(self, key):
        """The values of ``key`` over the epochs, epoch 0 included."""
        return [r[key] for r in self.records]

    def final(self, key):
        return self.records[-1][key] if self.records else None

    def losses(self):
        """The numbers that must repeat under a fixed seed: every loss and accuracy (timings
        left out)."""
        keys = [k for k in self.FIELDS if k.endswith(('_loss', '_acc'))]
        return [[r[k] for k in keys] for r in self.records] + [s[3:] for s in self.steps]

    def to_dict(self):
        return {'meta': self.meta, 'records': self.records,
                'steps': [dict(zip(('step', 'epoch', 'wall_time', 'loss'), s))
                          for s in self.steps]}

    def __repr__(self):
        last = self.records[-1] if self.records else {}
        return 'History(%s, epochs=%d, test_acc=%s)' % (
            self.meta.get('optimizer'), max(0, len(self.records) - 1), last.get('test_acc'))


def seed_everything(seed):
    """Seed MXNet (every device), NumPy and Python's ``random``."""
    seed = int(seed)
    random.seed(seed)
    np.random.seed(seed)
    mx.random.seed(seed)


def parse_ctx(text):
    """``'cpu'``, ``'gpu:0'``, ``'cpu:0,cpu:1'``, ... -> a list of ``mx.Context``.

    ``ValueError`` with a one-line reason for a malformed entry or a GPU that is not there.
    """
    if isinstance(text, mx.Context):
        return [text]
    if not isinstance(text, str):
        return [c if isinstance(c, mx.Context) else parse_ctx(c)[0] for c in text]
    ctxs = []
    for part in [p.strip().lower() for p in text.split(',')]:
        kind, _, index = part.partition(':')
        if kind not in ('cpu', 'gpu') or (index and not index.isdigit()):
            raise ValueError('context %r is invalid; expected cpu, cpu:N, gpu or gpu:N, '
                             'comma-separated for several.' % part)
        index = int(index or 0)
        if kind == 'gpu':
            found = mx.context.num_gpus()
            if index >= found:
                raise ValueError('context gpu:%d is not available: this MXNet build sees %d '
                                 'GPU%s.' % (index, found, '' if found == 1 else 's'))
        ctxs.append(mx.Context(kind, index))
    if len(set(ctxs)) != len(ctxs):
        raise ValueError('context %r names a device twice.' % text)
    return ctxs


def make_lr_scheduler(kind, base_lr, steps_per_epoch, epochs, warmup_epochs=0.0,
                      final_lr=0.0):
    """An MXNet learning-rate scheduler counted in updates: ``'constant'``, ``'cosine'``
    (down to ``final_lr``), ``'linear'`` decay, ``'wsd'`` (warmup-stable-decay, the last
    ``WSD_DECAY_FRACTION`` of the updates decaying as 1-sqrt to ``final_lr``) or
    ``'plateau'`` (halved after each epoch that does not improve the validation loss, which
    ``train`` reports), each after a linear warmup from 0 over ``warmup_epochs`` epochs.
    Returns None for ``'constant'`` without warmup."""
    if kind not in SCHEDULES:
        raise ValueError('schedule %r is invalid; expected one of %s.'
                         % (kind, ', '.join(SCHEDULES)))
    total = int(steps_per_epoch * epochs)
    warmup = int(round(steps_per_epoch * warmup_epochs))
    if warmup_epochs < 0 or warmup >= max(total, 1) and warmup > 0:
        raise ValueError('warmup_epochs=%r is invalid; expected 0 <= warmup < epochs (%r).'
                         % (warmup_epochs, epochs))
    if kind == 'constant':
        if not warmup:
            return None
        # factor 1 never decays; the step only has to lie beyond the run
        return mx.lr_scheduler.FactorScheduler(step=total + 1, factor=1.0, base_lr=base_lr,
                                               warmup_steps=warmup)
    if kind == 'wsd':
        return _schedules.WSDScheduler(total, base_lr=base_lr, final_lr=final_lr,
                                       decay_fraction=WSD_DECAY_FRACTION, decay_shape='1-sqrt',
                                       warmup_steps=warmup)
    if kind == 'plateau':
        # halves the rate after each epoch without a 0.01% better validation loss: with
        # torch's patience of 10 (or even 1) it would hardly act in the course's 3-6 epochs
        return _schedules.ReduceLROnPlateauScheduler(base_lr=base_lr, factor=0.5, patience=0,
                                                     warmup_steps=warmup)
    if kind == 'cosine':
        return mx.lr_scheduler.CosineScheduler(max_update=total, base_lr=base_lr,
                                               final_lr=final_lr, warmup_steps=warmup)
    return mx.lr_scheduler.PolyScheduler(max_update=total, base_lr=base_lr, pwr=1,
                                         final_lr=final_lr, warmup_steps=warmup)


def _split(data, label, ctxs):
    if len(ctxs) == 1:
        return [data.as_in_context(ctxs[0])], [label.as_in_context(ctxs[0])]
    return (gluon.utils.split_and_load(data, ctxs, even_split=False),
            gluon.utils.split_and_load(label, ctxs, even_split=False))


def evaluate(net, loader, ctx, loss_fn=None, max_examples=None):
    """``(mean loss, accuracy)`` of ``net`` over ``loader`` (in prediction mode), stopping
    after ``max_examples`` examples if given. One device sync at the end."""
    ctxs = parse_ctx(ctx)
    loss_fn = loss_fn or gluon.loss.SoftmaxCrossEntropyLoss()
    total = correct = None
    n = 0
    for data, label in loader:
        if max_examples is not None and n >= max_examples:
            break
        if max_examples is not None and n + data.shape[0] > max_examples:
            data, label = data[:max_examples - n], label[:max_examples - n]
        for x, y in zip(*_split(data, label, ctxs)):
            out = net(x)
            s = loss_fn(out, y).sum().as_in_context(mx.cpu())
            c = (out.argmax(axis=1) == y.astype(out.dtype)).sum().as_in_context(mx.cpu())
            total = s if total is None else total + s
            correct = c if correct is None else correct + c
        n += data.shape[0]
    if not n:
        return float('nan'), float('nan')
    return float(total.asscalar()) / n, float(correct.asscalar()) / n


class _Progress(object):
    """Progress on stderr: a tqdm bar over each epoch's batches with the running loss (only
    where stderr is a terminal), and one summary line per epoch (whenever enabled)."""

    def __init__(self, enabled, name, epochs, stream=None):
        self.enabled, self.name, self.epochs = enabled, name, epochs
        self.stream = stream or sys.stderr
        self.live = enabled and self.stream.isatty()  # a redrawn bar only makes sense live
        self.bar = None

    def update(self, epoch, batch, batches, loss):
        if not self.live:
            return
        if self.bar is None:
            from tqdm import tqdm
            self.bar = tqdm(total=batches, desc='%-20s epoch %d/%d' % (
                self.name[:20], epoch, self.epochs), file=self.stream, leave=False,
                unit='batch', dynamic_ncols=True)
        self.bar.n = batch
        self.bar.set_postfix_str('loss %.4f' % loss, refresh=False)
        self.bar.refresh()

    def end_epoch(self, rec):
        if self.bar is not None:
            self.bar.close()
            self.bar = None
        if not self.enabled:
            return
        self.stream.write('%-20s epoch %d/%d  train loss %.4f  val acc %s  test acc %.4f  '
                          '%.1fs\n' % (
                              self.name[:20], rec['epoch'], self.epochs, rec['train_loss'],
                              'n/a' if rec['val_acc'] is None else '%.4f' % rec['val_acc'],
                              rec['test_acc'], rec['epoch_time']))
        self.stream.flush()


def _num_batches(loader):
    try:
        return len(loader)
    except TypeError:
        return None


def _explode_limit(loss):
    """The loss above which a run counts as exploded, given its initial ``loss``; None (no
    limit) when that is not a positive number."""
    if loss is None or not np.isfinite(loss) or loss <= 0:
        return None
    return EXPLODE_FACTOR * float(loss)


def _check(pending, name, epoch, history, weight_sum, limit=None):
    """Sync the pending per-batch ``(batch, size, loss sum, correct)`` and the weights' absolute
    sum: raise ``TrainingDiverged`` at the first non-finite loss or loss above ``limit``, or
    for non-finite weights; else return the totals."""
    sums = mx.nd.stack(*[p[2] for p in pending]).asnumpy().ravel()
    cors = mx.nd.stack(*[p[3] for p in pending]).asnumpy().ravel()
    sizes = [p[1] for p in pending]
    means = sums / np.asarray(sizes, dtype=sums.dtype)
    bad = ~np.isfinite(sums)
    if limit is not None:
        bad |= means > limit
    bad = np.flatnonzero(bad)
    if bad.size:
        i = bad[0]
        finite = bool(np.isfinite(sums[i]))
        raise TrainingDiverged(name, epoch, pending[i][0], float(means[i]), history,
                               limit=limit if finite else None)
    if not np.isfinite(weight_sum.asscalar()):
        raise TrainingDiverged(name, epoch, pending[-1][0], float(sums[-1] / sizes[-1]),
                               history, weights=True)
    return float(sums.sum()), float(cors.sum()), int(sum(sizes))


def train(net, optimizer, loaders, epochs, ctx=None, seed=0, optimizer_params=None,
          lr_scheduler=None, loss_fn=None, initializer=None, progress=True, check_every=20,
          name=None, train_eval_size=10000, time_steps=True, kvstore='device', ema=None):
    """Train ``net`` and return its ``History``.

    Parameters
    ----------
    net : gluon.HybridBlock; initialised here under ``seed`` (``force_reinit``) unless
        ``optimizer`` is a ready ``gluon.Trainer``
    optimizer : registry name (``'gluon_opt.adam'``), ``mx.optimizer.Optimizer`` or
        ``gluon.Trainer``
    loaders : object with ``train``, ``test`` and optionally ``val`` iterables of
        ``(data, label)`` batches (``data.load_fashion_mnist`` or
        ``get_dataloaders``; any Gluon ``DataLoader`` works)
    epochs : int >= 1
    ctx : context, list of contexts or a string for ``parse_ctx``; default ``mx.cpu()``.
        With several, each batch is split across them (``split_and_load``)
    seed : int; seeds MXNet, NumPy and ``random`` before initialisation and the training
        loader's shuffling: the same seed repeats every loss exactly
    optimizer_params : dict passed to ``gluon.Trainer`` with an optimizer name
    lr_scheduler : an MXNet/gluoncv scheduler (see ``make_lr_scheduler``); one with a
        ``report`` method (``gluon_opt.schedules.ReduceLROnPlateauScheduler``) is given the
        validation loss after each epoch (the training loss without a validation set)
    progress : bool; a progress line on stderr
    check_every : int; batches between divergence checks (and loss samples in ``steps``)
    train_eval_size : int; training examples re-evaluated in prediction mode after each
        epoch (``train_loss``/``train_acc``; the running means are ``batch_loss``/
        ``batch_acc``); 0 to skip and report the running means instead
    time_steps : bool; time ``Trainer.step`` exactly (a device sync around each step)
    ema : float in (0, 1) or None; also evaluate an exponential moving average of the weights
        with this decay (``gluon_opt.averaging.EMA``, warmed up, BatchNorm statistics averaged
        too) on the test set after each epoch: ``ema_test_loss``/``ema_test_acc`` in every
        record, beside the raw weights' ``test_loss``/``test_acc``

    Raises ``TrainingDiverged`` when the training loss (or a gradient, or a weight) becomes
    NaN or infinite, or the loss explodes: a minibatch's mean loss or an epoch's training loss above
    ``EXPLODE_FACTOR`` times the initial loss (epoch 0's ``train_loss``, else the first
    minibatch's).
    """
    if isinstance(epochs, bool) or not isinstance(epochs, int) or epochs < 1:
        raise ValueError('epochs=%r is invalid; expected an integer >= 1.' % (epochs,))
    if isinstance(check_every, bool) or not isinstance(check_every, int) or check_every < 1:
        raise ValueError('check_every=%r is invalid; expected an integer >= 1.' % (check_every,))
    ctxs = parse_ctx(ctx if ctx is not None else mx.cpu())
    loss_fn = loss_fn or gluon.loss.SoftmaxCrossEntropyLoss()
    seed_everything(seed)
    for loader in (loaders.train, getattr(loaders, 'val', None), loaders.test):
        if hasattr(loader, 'reseed'):
            loader.reseed(seed)

    if isinstance(optimizer, gluon.Trainer):
        trainer = optimizer
    else:
        net.initialize(initializer or mx.init.Xavier(), ctx=ctxs, force_reinit=True)
        params = dict(optimizer_params or {})
        if lr_scheduler is not None:
            params['lr_scheduler'] = lr_scheduler
        # gluon_opt.Trainer is gluon.Trainer plus closures (L-BFGS, SAM, ... need them)
        trainer = Trainer(net.collect_params(), optimizer, params, kvstore=kvstore)
    opt = trainer._optimizer
    closure_opt = bool(getattr(opt, 'needs_closure', False))
    if closure_opt and not isinstance(trainer, Trainer):
        raise ValueError('%s needs a closure (it re-evaluates the loss inside its step): pass '
                         'a gluon_opt.Trainer, or the optimizer by name.' % type(opt).__name__)
    # the weights to evaluate: the optimizer's hook (Schedule-Free swaps in its average x)
    evaluation_weights = getattr(opt, 'evaluation_weights', lambda _: contextlib.nullcontext())
    name = name or (optimizer if isinstance(optimizer, str) else type(opt).__name__)

    history = History({'optimizer': name, 'class': '%s.%s' % (type(opt).__module__,
                                                             type(opt).__name__),
                       'hyperparameters': {k: v for k, v in (optimizer_params or {}).items()},
                       'seed': seed, 'epochs': epochs, 'ctx': [str(c) for c in ctxs]})
    batches = _num_batches(loaders.train)
    trained = [p for p in net.collect_params().values() if p.grad_req != 'null']

    def weight_sum():
        # one scalar per check: the absolute sum over every trained weight (first context)
        return mx.nd.add_n(*[mx.nd.sum(mx.nd.abs(p.data(ctxs[0]))).as_in_context(mx.cpu())
                             for p in trained])

    bar = _Progress(progress, name, epochs)
    # the average is updated after every step (its update is outside the timed step)
    average = averaging.EMA(net, decay=ema, use_buffers=True) if ema is not None else None

    def eval_record(epoch, epoch_time, step_time, wall, batch_loss, batch_acc):
        t0 = time.perf_counter()
        with evaluation_weights(trainer):
            return _eval_record(epoch, epoch_time, step_time, wall, batch_loss, batch_acc, t0)

    def _eval_record(epoch, epoch_time, step_time, wall, batch_loss, batch_acc, t0):
        val = getattr(loaders, 'val', None)
        val_loss, val_acc = evaluate(net, val, ctxs, loss_fn) if val is not None else (None,
                                                                                        None)
        test_loss, test_acc = evaluate(net, loaders.test, ctxs, loss_fn)
        if train_eval_size:
            source = loaders.train
            if hasattr(source, 'head'):  # unshuffled, so the subset is the same every epoch
                source = source.head(train_eval_size)
            train_loss, train_acc = evaluate(net, source, ctxs, loss_fn, train_eval_size)
        else:
            train_loss, train_acc = batch_loss, batch_acc
        rec = {'epoch': epoch, 'train_loss': train_loss, 'train_acc': train_acc,
               'batch_loss': batch_loss, 'batch_acc': batch_acc, 'val_loss': val_loss,
               'val_acc': val_acc, 'test_loss': test_loss, 'test_acc': test_acc,
               'lr': float(trainer.learning_rate), 'epoch_time': epoch_time,
               'step_time': step_time, 'eval_time': time.perf_counter() - t0,
               'wall_time': wall}
        if average is not None:
            with average.evaluation():
                rec['ema_test_loss'], rec['ema_test_acc'] = evaluate(net, loaders.test, ctxs,
                                                                     loss_fn)
        history.records.append(rec)
        return rec

    # epoch 0: the untrained network (deferred shapes are inferred on this first forward)
    limit = _explode_limit(eval_record(0, 0.0, 0.0, 0.0, None, None)['train_loss'])
    wall = 0.0
    step = 0
    for epoch in range(1, epochs + 1):
        t_epoch = time.perf_counter()
        step_time = 0.0
        pending = []            # per-batch mean losses not yet synced
        loss_sum = correct = 0.0
        seen = 0
        for batch, (data, label) in enumerate(loaders.train, 1):
            xs, ys = _split(data, label, ctxs)
            first = []  # the outputs and losses at the weights before the step

            def forward_backward():
                with autograd.record():
                    outs = [net(x) for x in xs]
                    losses = [loss_fn(o, y) for o, y in zip(outs, ys)]
                autograd.backward(losses)
                if not first:
                    first.extend((outs, losses))
                return losses
            if not closure_opt:
                forward_backward()
            if time_steps:
                mx.nd.waitall()
                t0 = time.perf_counter()
            if closure_opt:
                # the optimizer evaluates the closure as often as it needs (SAM: twice; a
                # line search: a few times): step_time includes those evaluations
                step_args = (data.shape[0], forward_backward)
            else:
                step_args = (data.shape[0],)
            try:
                trainer.step(*step_args)
            except _NONFINITE_GRADIENT:  # nothing was updated; the loss says where it began
                lost = float(mx.nd.add_n(*[l.sum().as_in_context(mx.cpu())
                                           for l in first[1]]).asscalar()) / data.shape[0] \
                    if first else float('nan')
                raise TrainingDiverged(name, epoch, batch, lost, history,
                                       gradients=bool(np.isfinite(lost))) from None
            if time_steps:
                mx.nd.waitall()
                step_time += time.perf_counter() - t0
            if average is not None:
                average.update()
            outs, losses = first
            step += 1
            bsum = mx.nd.add_n(*[l.sum().as_in_context(mx.cpu()) for l in losses])
            bcor = mx.nd.add_n(*[(o.argmax(axis=1) == y.astype(o.dtype)).sum()
                                 .as_in_context(mx.cpu()) for o, y in zip(outs, ys)])
            pending.append((batch, data.shape[0], bsum, bcor))
            if limit is None and step == 1:  # no epoch-0 loss (train_eval_size=0)
                limit = _explode_limit(float(bsum.asscalar()) / data.shape[0])
            if batch % check_every == 0 or batch == batches:
                s, c, n = _check(pending, name, epoch, history, weight_sum(), limit)
                loss_sum, correct, seen, pending = loss_sum + s, correct + c, seen + n, []
                # the mean over the batches since the last check: a smoothed loss curve
                history.steps.append((step, epoch, wall + time.perf_counter() - t_epoch,
                                      s / n))
                bar.update(epoch, batch, batches, loss_sum / seen)
        if pending:  # a loader of unknown length: check what is left
            s, c, n = _check(pending, name, epoch, history, weight_sum(), limit)
            loss_sum, correct, seen = loss_sum + s, correct + c, seen + n
        mx.nd.waitall()
        epoch_time = time.perf_counter() - t_epoch
        wall += epoch_time
        if not seen:
            raise ValueError('the training loader yielded no batches.')
        rec = eval_record(epoch, epoch_time, step_time, wall, loss_sum / seen, correct / seen)
        if not np.isfinite(rec['train_loss']):
            raise TrainingDiverged(name, epoch, batches or 0, rec['train_loss'], history)
        if limit is not None and rec['train_loss'] > limit:
            raise TrainingDiverged(name, epoch, batches or 0, rec['train_loss'], history,
                                   limit=limit)
        # a plateau schedule (anything with report) hears the validation loss each epoch
        report = getattr(opt.lr_scheduler, 'report', None)
        if report is not None:
            report(rec['val_loss'] if rec['val_loss'] is not None else rec['train_loss'])
        bar.end_epoch(rec)
    return history


def make_closure(net, x, y, loss_fn=None):
    """A closure for ``gluon_opt.Trainer.step(batch_size, closure)``: one forward and
    backward pass of ``loss_fn(net(x), y)`` (default softmax cross-entropy) on the fixed batch
    ``(x, y)``, returning the per-example losses. ``closure.calls`` counts its evaluations."""
    loss_fn = loss_fn or gluon.loss.SoftmaxCrossEntropyLoss()

    def closure():
        closure.calls += 1
        with autograd.record():
            loss = loss_fn(net(x), y)
        loss.backward()
        return loss
    closure.calls = 0
    return closure


def optimizer_state_bytes(trainer):
    """Bytes of every NDArray that ``trainer``'s optimizer (its attributes, e.g. L-BFGS's
    history or SAM's base optimizer) and updaters (the per-parameter states) hold between
    steps; each array counted once."""
    seen = set()

    def walk(obj):
        if isinstance(obj, mx.nd.NDArray):
            if id(obj) in seen:
                return 0
            seen.add(id(obj))
            return obj.size * np.dtype(obj.dtype).itemsize
        if isinstance(obj, dict):
            return sum(walk(v) for v in obj.values())
        if isinstance(obj, (list, tuple)):
            return sum(walk(v) for v in obj)
        if isinstance(obj, mx.optimizer.Optimizer):
            # param_dict and the caches refer to the weights and gradients
            skip = ('param_dict',) + tuple(getattr(obj, 'cache_attributes', ()))
            return sum(walk(v) for k, v in vars(obj).items() if k not in skip)
        return 0
    return walk(trainer._optimizer) + sum(walk(u.states) for u in trainer._updaters)
