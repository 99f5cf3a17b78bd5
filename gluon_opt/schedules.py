"""Learning-rate schedules as MXNet ``LRScheduler`` subclasses.

They go wherever MXNet's own schedulers go: ``lr_scheduler=`` of any optimizer (gluon_opt's
and MXNet's), hence ``gluon.Trainer``, and pickled onto kvstore servers with the optimizer.
A scheduler is called with MXNet's ``num_update``, the number of the update being made
(1 for the first; see ``Optimizer._update_count``), and returns the learning rate.

* ``WSDScheduler``: warmup-stable-decay (Hu et al., 2024; Hägele et al., 2024): a linear
  warmup, a constant learning rate, then a short decay (linear, cosine or 1-sqrt).
* ``ReduceLROnPlateauScheduler``: divides the learning rate when a metric the training loop
  reports (``report(metric)``, or ``step(metric)`` as in torch) stops improving, with
  ``torch.optim.lr_scheduler.ReduceLROnPlateau``'s semantics.
* ``SequentialScheduler``: runs schedules one after another at given milestones, as
  ``optax.join_schedules`` and ``torch.optim.lr_scheduler.SequentialLR``; any
  ``LRScheduler`` composes (MXNet's, gluoncv's, ours).

Every argument is validated (one-line ``ValueError`` naming the class, the argument, the value
and what is accepted). Which to use: docs/schedules.md.
"""
import bisect
import math

import mxnet as mx

from .optimizers.base import check_choice, check_int, check_nonnegative, check_range, _fail

__all__ = ['WSDScheduler', 'ReduceLROnPlateauScheduler', 'SequentialScheduler',
           'WSD_DECAY_SHAPES']

#: the shapes of WSD's decay phase, as functions of its progress x in [0, 1] (1 -> 0)
WSD_DECAY_SHAPES = ('linear', 'cosine', '1-sqrt')


def _decay_factor(shape, x):
    if shape == 'linear':
        return 1.0 - x
    if shape == 'cosine':
        return 0.5 * (1.0 + math.cos(math.pi * x))
    return 1.0 - math.sqrt(x)


def _check_warmup(owner, base_lr, warmup_steps, warmup_begin_lr):
    base_lr = check_nonnegative(owner, 'base_lr', base_lr)
    warmup_steps = check_int(owner, 'warmup_steps', warmup_steps, 0)
    warmup_begin_lr = check_nonnegative(owner, 'warmup_begin_lr', warmup_begin_lr)
    if warmup_begin_lr > base_lr:
        _fail(owner, 'warmup_begin_lr', warmup_begin_lr,
              'expected a number in [0, base_lr=%g] (the warmup rises to base_lr)' % base_lr)
    return base_lr, int(warmup_steps), warmup_begin_lr


class _Warmup(mx.lr_scheduler.LRScheduler):
    """MXNet's linear warmup, towards the *current* ``base_lr``: ``Optimizer(learning_rate=)``
    overwrites ``base_lr`` after construction, and MXNet's own ``get_warmup_lr`` would still
    rise to the value given at construction (``warmup_final_lr``)."""

    def _warmup_lr(self, num_update, target):
        return self.warmup_begin_lr + ((target - self.warmup_begin_lr)
                                       * float(num_update) / float(self.warmup_steps))


class WSDScheduler(_Warmup):
    r"""Warmup-stable-decay: a linear warmup, a long constant phase, then a short decay.

    With :math:`t` = ``num_update``, :math:`W` = ``warmup_steps``, :math:`T` = ``max_update``,
    :math:`D` = ``round(decay_fraction * T)`` decay steps and :math:`S = T - D`:

    .. math::

        \eta_t = \begin{cases}
          \eta_0 + (\eta - \eta_0)\, t / W & t < W \\
          \eta & W \le t \le S \\
          \eta_{min} + (\eta - \eta_{min})\, g\big((t - S) / D\big) & S < t \le T \\
          \eta_{min} & t > T
        \end{cases}

    with :math:`g(x) = 1 - x` (``'linear'``), :math:`(1 + \cos \pi x) / 2` (``'cosine'``) or
    :math:`1 - \sqrt{x}` (``'1-sqrt'``, Hägele et al.'s best shape).

    Unlike cosine, the stable phase does not depend on the run's length: a run can be extended
    from a checkpoint taken before the decay, and one long stable run with decays branched off
    it gives a whole scaling curve (Hägele et al.). A decay of 10-20% of the steps matches a
    cosine schedule of the same length.

    Parameters
    ----------
    max_update : int >= 1
        :math:`T`, the update at which the decay reaches ``final_lr``.
    base_lr : float >= 0, default 0.01
        :math:`\eta`; an optimizer's ``learning_rate`` replaces it (MXNet's convention).
    decay_fraction : float in [0, 1], default 0.2
        the decay phase's share of ``max_update`` (rounded to the nearest integer, halves up);
        0 (or a share that rounds to no update) keeps ``base_lr`` for ever.
    decay_shape : ``'linear'``, ``'cosine'`` or ``'1-sqrt'``, default ``'1-sqrt'``
    final_lr : float >= 0, default 0
        :math:`\eta_{min}`.
    warmup_steps : int >= 0, default 0
        :math:`W`; ``warmup_steps + decay steps <= max_update``.
    warmup_begin_lr : float in [0, base_lr], default 0
        :math:`\eta_0`.

    Example::

        sched = WSDScheduler(1000, base_lr=3e-3, warmup_steps=50, decay_fraction=0.2)
        trainer = gluon.Trainer(net.collect_params(), 'gluon_opt.adamw',
                                {'learning_rate': 3e-3, 'lr_scheduler': sched})

    Conventions: the warmup is MXNet's (``FactorScheduler(..., warmup_steps=W)``), so the
    first update (``num_update`` 1) already uses :math:`\eta_0 + (\eta - \eta_0) / W`. The
    value at ``num_update`` :math:`t` is ``optax.join_schedules`` of ``linear_schedule``,
    ``constant_schedule`` and ``linear_schedule``/``cosine_decay_schedule`` at count
    :math:`t`; optax's first update uses count 0. MiniCPM (Hu et al.) decays exponentially;
    the shapes here are Hägele et al.'s.

    References: Hu et al., "MiniCPM: Unveiling the Potential of Small Language Models with
    Scalable Training Strategies", 2024; Hägele et al., "Scaling Laws and Compute-Optimal
    Training Beyond Fixed Training Durations", NeurIPS 2024.
    """

    def __init__(self, max_update, base_lr=0.01, decay_fraction=0.2, decay_shape='1-sqrt',
                 final_lr=0.0, warmup_steps=0, warmup_begin_lr=0.0):
        owner = type(self).__name__
        max_update = int(check_int(owner, 'max_update', max_update, 1))
        base_lr, warmup_steps, warmup_begin_lr = _check_warmup(owner, base_lr, warmup_steps,
                                                               warmup_begin_lr)
        decay_fraction = check_range(owner, 'decay_fraction', decay_fraction, 0.0, 1.0,
                                     high_open=False)
        check_choice(owner, 'decay_shape', decay_shape, WSD_DECAY_SHAPES)
        final_lr = check_nonnegative(owner, 'final_lr', final_lr)
        decay_steps = int(math.floor(decay_fraction * max_update + 0.5))
        if warmup_steps + decay_steps > max_update:
            _fail(owner, 'warmup_steps', warmup_steps,
                  'expected warmup_steps + decay steps (%d = decay_fraction %g * max_update '
                  '%d) <= max_update' % (decay_steps, decay_fraction, max_update))
        super(WSDScheduler, self).__init__(base_lr, warmup_steps, warmup_begin_lr)
        self.max_update = max_update
        self.decay_fraction = decay_fraction
        self.decay_shape = decay_shape
        self.final_lr = final_lr
        self.decay_steps = decay_steps

    def __call__(self, num_update):
        # a pure function of num_update: Optimizer.learning_rate calls it at any time
        if num_update < self.warmup_steps:
            return self._warmup_lr(num_update, self.base_lr)
        start = self.max_update - self.decay_steps
        if num_update <= start or not self.decay_steps:
            return self.base_lr
        x = min(1.0, float(num_update - start) / self.decay_steps)
        return self.final_lr + (self.base_lr - self.final_lr) * _decay_factor(self.decay_shape,
                                                                              x)


class ReduceLROnPlateauScheduler(_Warmup):
    r"""Multiply the learning rate by ``factor`` when a reported metric stops improving.

    The training loop reports a metric (typically the validation loss, once an epoch) with
    ``report(metric)`` or ``step(metric)``; ``gluon_opt.experiments.training.train`` does so
    with the validation loss. After each report, with ``best`` the best metric so far:
    the metric improves when it is below ``best * (1 - threshold)`` (``mode='min'``,
    ``threshold_mode='rel'``), below ``best - threshold`` (``'abs'``), or above
    ``best * (1 + threshold)`` / ``best + threshold`` in ``mode='max'``. After more than
    ``patience`` reports without improvement (reports during a cooldown do not count):

    .. math:: \eta \leftarrow \max(\eta \cdot \mathrm{factor}, \eta_{min})
              \quad\text{if the change exceeds eps,}

    then ``cooldown`` reports pass before bad reports count again. This is
    ``torch.optim.lr_scheduler.ReduceLROnPlateau`` (same defaults, same arithmetic, so the
    learning rates are equal bit for bit); NaN never improves.

    Parameters
    ----------
    base_lr : float >= 0, default 0.01
        the learning rate before any reduction; an optimizer's ``learning_rate`` replaces it.
    mode : ``'min'`` or ``'max'``, default ``'min'``
    factor : float in (0, 1), default 0.1
    patience : int >= 0, default 10
    threshold : float >= 0, default 1e-4
    threshold_mode : ``'rel'`` or ``'abs'``, default ``'rel'``
    cooldown : int >= 0, default 0
    min_lr : float >= 0, default 0
    eps : float >= 0, default 1e-8
    warmup_steps, warmup_begin_lr : MXNet's linear warmup over the first updates, to the
        current learning rate (default none).

    Example::

        sched = ReduceLROnPlateauScheduler(base_lr=0.1, factor=0.5, patience=2)
        trainer = gluon.Trainer(net.collect_params(), 'gluon_opt.sgd',
                                {'momentum': 0.9, 'lr_scheduler': sched})
        for epoch in range(epochs):
            train_one_epoch(trainer)
            sched.report(validation_loss())

    Conventions: torch changes the optimizer's learning rate; here the scheduler holds it
    (``lr``, None until the first reduction, which starts from ``base_lr``). ``factor``
    must lie in (0, 1), where torch also takes 0 and negative values. With a dist
    kvstore the servers update with a pickled copy of the optimizer that never hears the
    reports: use it where the workers update (local kvstore, or ``update_on_kvstore=False``).

    Reference: ``torch.optim.lr_scheduler.ReduceLROnPlateau`` (Paszke et al., "PyTorch",
    NeurIPS 2019), after Keras's ``ReduceLROnPlateau`` callback.
    """

    def __init__(self, base_lr=0.01, mode='min', factor=0.1, patience=10, threshold=1e-4,
                 threshold_mode='rel', cooldown=0, min_lr=0.0, eps=1e-8, warmup_steps=0,
                 warmup_begin_lr=0.0):
        owner = type(self).__name__
        base_lr, warmup_steps, warmup_begin_lr = _check_warmup(owner, base_lr, warmup_steps,
                                                               warmup_begin_lr)
        check_choice(owner, 'mode', mode, ('min', 'max'))
        factor = check_range(owner, 'factor', factor, 0.0, 1.0, low_open=True)
        patience = int(check_int(owner, 'patience', patience, 0))
        threshold = check_nonnegative(owner, 'threshold', threshold)
        check_choice(owner, 'threshold_mode', threshold_mode, ('rel', 'abs'))
        cooldown = int(check_int(owner, 'cooldown', cooldown, 0))
        min_lr = check_nonnegative(owner, 'min_lr', min_lr)
        eps = check_nonnegative(owner, 'eps', eps)
        super(ReduceLROnPlateauScheduler, self).__init__(base_lr, warmup_steps,
                                                         warmup_begin_lr)
        self.mode, self.factor, self.patience = mode, factor, patience
        self.threshold, self.threshold_mode = threshold, threshold_mode
        self.cooldown, self.min_lr, self.eps = cooldown, min_lr, eps
        self.lr = None
        self.best = math.inf if mode == 'min' else -math.inf
        self.num_bad_epochs = 0
        self.cooldown_counter = 0
        self.num_reports = 0

    @property
    def current_lr(self):
        """The learning rate after the reductions so far (before any warmup)."""
        return self.base_lr if self.lr is None else self.lr

    def _is_better(self, a):
        if self.mode == 'min':
            return a < (self.best * (1.0 - self.threshold) if self.threshold_mode == 'rel'
                        else self.best - self.threshold)
        return a > (self.best * (self.threshold + 1.0) if self.threshold_mode == 'rel'
                    else self.best + self.threshold)

    def report(self, metric):
        """Take one value of the monitored metric (a number or a one-element array);
        returns the learning rate it leaves."""
        try:
            current = float(metric.asscalar() if hasattr(metric, 'asscalar') else metric)
        except (TypeError, ValueError):
            _fail(type(self).__name__, 'metric', metric, 'expected a number')
        self.num_reports += 1
        if self._is_better(current):
            self.best = current
            self.num_bad_epochs = 0
        else:
            self.num_bad_epochs += 1
        if self.cooldown_counter > 0:
            self.cooldown_counter -= 1
            self.num_bad_epochs = 0
        if self.num_bad_epochs > self.patience:
            old = self.current_lr
            new = max(old * self.factor, self.min_lr)
            if old - new > self.eps:
                self.lr = new
            self.cooldown_counter = self.cooldown
            self.num_bad_epochs = 0
        return self.current_lr

    step = report  # torch's name

    def __call__(self, num_update):
        if num_update < self.warmup_steps:
            return self._warmup_lr(num_update, self.current_lr)
        return self.current_lr


class SequentialScheduler(mx.lr_scheduler.LRScheduler):
    r"""Schedules one after another: ``schedulers[i]`` from update ``milestones[i-1]`` on,
    counting its own updates from 0 there.

    .. math:: \eta_t = s_i(t - m_i) \quad\text{for } m_i \le t < m_{i+1},
              \qquad m_0 = 0,\ m_{n} = \infty

    This is ``optax.join_schedules(schedulers, milestones)`` and, since a torch scheduler's
    ``last_epoch`` after ``t`` steps is ``t``, ``torch.optim.lr_scheduler.SequentialLR``
    after ``t`` steps. Any ``mx.lr_scheduler.LRScheduler`` composes: MXNet's, gluoncv's,
    ours (a plateau scheduler's reports go to the schedule running at the last update).

    Parameters
    ----------
    schedulers : list of ``mx.lr_scheduler.LRScheduler``, at least 2, distinct objects
    milestones : list of ints >= 1, strictly increasing, ``len(schedulers) - 1`` of them

    Each schedule keeps its own learning rates (as in ``optax.join_schedules``):
    ``base_lr`` here is the first schedule's, and an optimizer's ``learning_rate`` that
    differs from it does not change the schedules (MXNet then prints a warning): leave
    ``learning_rate`` out (gluon_opt's optimizers take the schedule's) or give the same
    value. MXNet's ``CosineScheduler``/``PolyScheduler`` count from their own 0, so a
    warmup written as the first schedule is followed by a decay that starts at its top.

    Example (MXNet's warmup, then a cosine over 900 updates)::

        warmup = mx.lr_scheduler.FactorScheduler(10**9, 1.0, base_lr=0.1, warmup_steps=100)
        decay = mx.lr_scheduler.CosineScheduler(900, base_lr=0.1)
        sched = SequentialScheduler([warmup, decay], milestones=[100])
        trainer = gluon.Trainer(net.collect_params(), 'gluon_opt.adamw',
                                {'lr_scheduler': sched})

    References: optax.join_schedules; torch.optim.lr_scheduler.SequentialLR.
    """

    def __init__(self, schedulers, milestones):
        owner = type(self).__name__
        if not isinstance(schedulers, (list, tuple)) or len(schedulers) < 2:
            _fail(owner, 'schedulers', schedulers,
                  'expected a list of at least 2 mx.lr_scheduler.LRScheduler instances')
        for i, s in enumerate(schedulers):
            if not isinstance(s, mx.lr_scheduler.LRScheduler):
                _fail(owner, 'schedulers[%d]' % i, s,
                      'expected an mx.lr_scheduler.LRScheduler instance (MXNet\'s, '
                      'gluoncv\'s or gluon_opt.schedules\'), not a name, class or function')
        if len(set(map(id, schedulers))) != len(schedulers):
            _fail(owner, 'schedulers', schedulers,
                  'expected distinct objects (schedulers keep state: one cannot run twice)')
        if not isinstance(milestones, (list, tuple)) or len(milestones) != len(schedulers) - 1:
            _fail(owner, 'milestones', milestones,
                  'expected a list of %d integers (one fewer than the schedulers)'
                  % (len(schedulers) - 1))
        milestones = [int(check_int(owner, 'milestones[%d]' % i, m, 1))
                      for i, m in enumerate(milestones)]
        if any(b <= a for a, b in zip(milestones, milestones[1:])):
            _fail(owner, 'milestones', milestones, 'expected strictly increasing integers')
        super(SequentialScheduler, self).__init__(schedulers[0].base_lr)
        self.schedulers = list(schedulers)
        self.milestones = milestones
        self.last_update = 0

    def _index(self, num_update):
        return bisect.bisect_right(self.milestones, num_update)

    def __call__(self, num_update):
        self.last_update = num_update
        i = self._index(num_update)
        return self.schedulers[i](num_update - (self.milestones[i - 1] if i else 0))

    def report(self, metric):
        """Forward a metric to the schedule running at the last update, if it takes one
        (``ReduceLROnPlateauScheduler``); others ignore it. Returns that schedule's answer."""
        target = getattr(self.schedulers[self._index(self.last_update)], 'report', None)
        return target(metric) if target is not None else None
