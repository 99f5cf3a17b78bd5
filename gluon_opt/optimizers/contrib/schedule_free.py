"""Schedule-Free optimisation: AdamW, SGD, and any first-order optimizer without a
learning-rate schedule.

Schedule-Free keeps two sequences: ``z``, a plain (SGD, Adam-normalised, or any base
optimizer's) gradient-descent iterate, and ``x``, a weighted running average of the ``z``'s.
Gradients are evaluated at ``y``, an interpolation between them. The averaging replaces the decaying schedule: with a
constant learning rate ``x`` matches or beats cosine/linear-decay schedules without knowing
the training length.

**The model's weights hold y during training, not x.** Evaluate (and save for inference)
at ``x``::

    with gluon_opt.schedule_free.evaluation(trainer):
        validate(net)          # weights are x here (on every context)
    # weights are y again; training continues

or ``to_eval(trainer)`` / ``to_train(trainer)`` for the two swaps separately. The optimizer's
``evaluation_weights(trainer)`` is the same context manager: code that evaluates any optimizer
(``gluon_opt.experiments.training``) calls that hook, a no-op for the others. BatchNorm
running statistics collected at ``y`` are close to, but not exactly, those at ``x``; the
authors recommend recomputing them at ``x`` with a few forward passes in training mode.

Three optimizers: ``schedulefree_adamw`` and ``schedulefree_sgd`` follow the official code
(github.com/facebookresearch/schedule_free, ``AdamWScheduleFree`` and ``SGDScheduleFree``;
the AdamW bias-correction conventions are in ``ScheduleFreeAdamW``'s docstring);
``schedulefree`` wraps any first-order gluon_opt optimizer as optax's
``contrib.schedule_free`` does. Reference: Defazio, Yang, Mehta, Mishchenko, Khaled & Cutkosky,
"The Road Less Scheduled", NeurIPS 2024.
"""
import contextlib
import math

import numpy as np
import mxnet as mx
from mxnet import nd

from ..base import (GluonOptOptimizer, UpdateItem, check_range, check_positive, check_int,
                    check_nonnegative, check_choice, zeros_like, _fail)
from ..registry import register
from ..wrappers import Lookahead, make_inner, adopt_inner
from ... import kernels

__all__ = ['ScheduleFreeAdamW', 'ScheduleFreeSGD', 'ScheduleFree', 'to_eval', 'to_train',
           'evaluation']


class _ScheduleFreeBase(GluonOptOptimizer):
    """What every Schedule-Free optimizer shares: the warmup, the weights ``c_t`` of the
    average (kept per parameter in the state ``(lr_max, weight_sum)``), the x <-> y
    conversions and the refusal to step while the weights hold x. Subclasses set
    ``interpolation`` (the beta between z and x: ``beta1`` or ``momentum``) and state z
    first."""
    #: True between ``to_eval`` and ``to_train``: the weights hold x, and updates refuse
    eval_mode = False

    def _check_schedule(self, warmup_steps, r, weight_lr_power):
        owner = type(self).__name__
        self.warmup_steps = check_int(owner, 'warmup_steps', warmup_steps, 0)
        self.r = check_nonnegative(owner, 'r', r)
        self.weight_lr_power = check_nonnegative(owner, 'weight_lr_power', weight_lr_power)

    @property
    def interpolation(self):
        raise NotImplementedError

    def _update(self, index, weight, grad, state, multi_precision):
        if self.eval_mode:
            raise RuntimeError('%s: the weights hold the evaluation point x; call '
                               'gluon_opt.schedule_free.to_train(trainer) (or leave the '
                               '`evaluation` block) before training again.'
                               % type(self).__name__)
        super(_ScheduleFreeBase, self)._update(index, weight, grad, state, multi_precision)

    def warmed_up(self, lr, t):
        """The learning rate of step ``t`` after the linear warmup."""
        if self.warmup_steps and t <= self.warmup_steps:
            return lr * t / self.warmup_steps
        return lr

    def average_weight(self, sums, lr, t, weight):
        """Advance ``sums = (lr_max, weight_sum)`` in place and return ``c_t``, shaped to
        broadcast over ``weight`` (float32 arithmetic on the device, as the kernels repeat)."""
        lr_max = nd.maximum(sums[0:1], lr)
        avg_weight = (float(t) ** self.r) * lr_max ** self.weight_lr_power
        weight_sum = sums[1:2] + avg_weight
        sums[:] = nd.concat(lr_max, weight_sum, dim=0)
        # c_t = weight / weight_sum, 0 while no step has had a positive learning rate
        ckp1 = nd.where(weight_sum > 0, avg_weight / nd.maximum(weight_sum, 1e-38),
                        nd.zeros_like(weight_sum))
        return ckp1.astype(weight.dtype).reshape((1,) * weight.ndim)

    def evaluation_weights(self, trainer):
        """``evaluation(trainer)``: the weights hold the averaged point x inside the block."""
        return evaluation(trainer)

    # -- x <-> y ------------------------------------------------------------------------------
    def x_of(self, y, state):
        """The averaged iterate ``x = (y - (1 - beta) z) / beta`` for the weight ``y`` and its
        state (a new NDArray)."""
        b, z = self.interpolation, state[0]
        return (y - (1 - b) * z.as_in_context(y.context).astype(y.dtype)) / b

    def y_of(self, x, state):
        """The training point ``y = (1 - beta) z + beta x`` (a new NDArray)."""
        b, z = self.interpolation, state[0]
        return (1 - b) * z.as_in_context(x.context).astype(x.dtype) + b * x


@register
class ScheduleFreeAdamW(_ScheduleFreeBase):
    r"""Schedule-Free AdamW (the official ``AdamWScheduleFree``).

    Update rule for step :math:`t` (1-based, per parameter; :math:`\eta` = ``learning_rate``
    carries MXNet's schedule and ``lr_mult``; :math:`\lambda` = ``wd``; the stored weight is
    :math:`y`):

    .. math::

        \eta_t &= \eta \min(1, t / \text{warmup\_steps})
            \qquad (\eta_t = \eta \text{ when warmup\_steps} = 0) \\
        \eta_{\max} &\leftarrow \max(\eta_{\max}, \eta_t) \\
        c_t &= \frac{t^r \eta_{\max}^p}{\sum_{i \le t} i^r \eta_{\max,i}^p}
            \qquad (p = \text{weight\_lr\_power}) \\
        v &\leftarrow \beta_2 v + (1 - \beta_2) g^2 \\
        d &= \frac{g}{\sqrt{v / (1 - \beta_2^t)} + \epsilon} + \lambda y \\
        y &\leftarrow (1 - c_t) y + c_t z + \eta_t \left(\beta_1 (1 - c_t) - 1\right) d \\
        z &\leftarrow z - \eta_t d

    which is the paper's :math:`z \leftarrow z - \eta_t d`,
    :math:`x \leftarrow (1 - c_t) x + c_t z`, :math:`y = (1 - \beta_1) z + \beta_1 x` written on
    :math:`y` so that :math:`x` is never stored. For evaluation,
    :math:`x = (y - (1 - \beta_1) z) / \beta_1` (see ``to_eval``/``evaluation``).

    **Bias correction** (``bias_correction``; facebookresearch/schedule_free issue #38): the
    two conventions the authors' code has used differ in more than where a constant sits.

    * ``'v'`` (default): :math:`v` is bias-corrected, as above, as the paper's Algorithm 1
      writes it and as optax's ``schedule_free_adamw`` does; this is ``AdamWScheduleFree``
      (and ``AdamWScheduleFreeReference``) of the ``schedulefree`` package 1.4.1, the version
      the tests check it against.
    * ``'lr'``: :math:`v` is not corrected and the learning rate carries the correction
      instead, :math:`\eta_t \leftarrow \eta_t \sqrt{1 - \beta_2^t}`, with
      :math:`d = g / (\sqrt{v} + \epsilon) + \lambda y`. This is the package's
      ``AdamWScheduleFreePaper`` (the code the paper's experiments ran, and the
      ``AdamWScheduleFree`` of earlier releases that issue #38 discusses). Since
      :math:`\eta_t` enters :math:`\eta_{\max}`, the averaging weights :math:`c_t` change too,
      and the weight decay is scaled by :math:`\sqrt{1 - \beta_2^t}` as well, so the two are
      not a rescaling of each other; they become the same update as :math:`t` grows
      (:math:`\beta_2^t \to 0`) except for :math:`\epsilon`, whose relative size differs
      by the factor :math:`\sqrt{1 - \beta_2^t}` early on.

    Parameters
    ----------
    learning_rate : float, default 0.0025 (the official default; Schedule-Free tolerates, and
        usually wants, a larger rate than AdamW)
    beta1 : float in (0, 1), default 0.9: the interpolation between z and x (not a momentum
        EMA: there is no first moment)
    beta2 : float in [0, 1), default 0.999
    epsilon : float > 0, default 1e-8 (outside the square root, after bias correction)
    wd : float >= 0, default 0: decoupled in effect, applied at ``y`` through ``d``
    warmup_steps : int >= 0, default 0: linear warmup of the learning rate
    r : float >= 0, default 0: polynomial weighting ``t^r`` of the average
    weight_lr_power : float >= 0, default 2: the average weights steps by ``lr_max^p``
    bias_correction : ``'v'`` (default) or ``'lr'``: where Adam's second-moment correction
        goes (above).

    Conventions: the official code keeps ``k``, ``lr_max`` and the weight sum per parameter
    group; here they are per parameter (``t`` is the parameter's count, ``lr`` includes its
    ``lr_mult``), kept on the parameter's device as a state ``(lr_max, weight_sum)`` so that
    nothing waits on the host and ``Trainer.save_states`` saves them. Do not combine with a
    decaying ``lr_scheduler`` (warmup only).

    Example::

        trainer = gluon.Trainer(net.collect_params(), 'gluon_opt.schedulefree_adamw',
                                {'learning_rate': 0.0025, 'warmup_steps': 100})
        ... training ...
        with gluon_opt.schedule_free.evaluation(trainer):
            evaluate(net)
    """
    name = 'schedulefree_adamw'
    label = 'Schedule-free AdamW'
    family = 'schedule_free'
    paper = 'Defazio et al., "The Road Less Scheduled", NeurIPS 2024'
    # best of {2e-3, 5e-3} (warmup 50 steps) on a 15k-image subset, 2 epochs: 0.857 test
    # accuracy at 5e-3 against 0.847; evaluated at the average x (evaluation_weights)
    tuned = {'Schedule-free AdamW': {'learning_rate': 5e-3, 'warmup_steps': 50}}
    bench_hyperparameters = {'learning_rate': 1e-3}
    step_bytes = 7 * 4  # read w, g, z, v; write w, z, v (the two sums per tensor aside)
    state_bytes = staticmethod(lambda shape: 4 * (2 * int(np.prod(shape)) + 2))  # z, v; sums
    oracle = ("the schedulefree package's AdamWScheduleFree (bias_correction='v') and "
              "AdamWScheduleFreePaper ('lr'); numpy transcription of the official code")
    default_learning_rate = 0.0025
    fused_op = 'gopt_schedulefree_adamw'
    state_names = ('z', 'var', 'weight_sum')

    def __init__(self, learning_rate=None, beta1=0.9, beta2=0.999, epsilon=1e-8,
                 warmup_steps=0, r=0.0, weight_lr_power=2.0, bias_correction='v', **kwargs):
        owner = type(self).__name__
        self.beta1 = check_range(owner, 'beta1', beta1, 0.0, 1.0, low_open=True)
        self.beta2 = check_range(owner, 'beta2', beta2, 0.0, 1.0)
        self.epsilon = check_positive(owner, 'epsilon', epsilon)
        self.bias_correction = check_choice(owner, 'bias_correction', bias_correction,
                                            ('v', 'lr'))
        self._check_schedule(warmup_steps, r, weight_lr_power)
        super(ScheduleFreeAdamW, self).__init__(learning_rate=learning_rate, **kwargs)

    @property
    def interpolation(self):
        return self.beta1

    def init_state(self, weight):
        # z starts at the initial weight; (lr_max, weight_sum) at zero
        return (weight.copy(), zeros_like(weight),
                nd.zeros((2,), ctx=weight.context, dtype=np.float32))

    def _rates(self, lr, t):
        """``(eta_t, the divisor of v)`` of step ``t`` under the ``bias_correction``
        convention, in double precision (the kernel gets the same numbers)."""
        lr = self.warmed_up(lr, t)
        bc2 = 1.0 - self.beta2 ** t
        if self.bias_correction == 'lr':
            return lr * math.sqrt(bc2), 1.0
        return lr, bc2

    def step(self, weight, grad, state, lr, wd, t):
        z, var, sums = state
        lr, bc2 = self._rates(lr, t)
        ckp1 = self.average_weight(sums, lr, t, weight)
        var[:] = self.beta2 * var + (1 - self.beta2) * nd.square(grad)
        direction = grad / (nd.sqrt(var / bc2) + self.epsilon)
        if wd:
            direction = direction + wd * weight
        weight[:] = (weight + nd.broadcast_mul(ckp1, z - weight)
                     + nd.broadcast_mul(lr * (self.beta1 * (1 - ckp1) - 1), direction))
        z[:] = z - lr * direction

    def fused_attrs(self):
        return {'beta1': self.beta1, 'beta2': self.beta2, 'epsilon': self.epsilon,
                'weight_lr_power': self.weight_lr_power}

    def fused_scalars(self, lr, wd, t):
        lr, bc2 = self._rates(lr, t)
        return (lr, float(t) ** self.r, bc2, wd)


@register
class ScheduleFreeSGD(_ScheduleFreeBase):
    r"""Schedule-Free SGD (the official ``SGDScheduleFree``).

    Update rule for step :math:`t` (1-based, per parameter; :math:`\eta` = ``learning_rate``
    with MXNet's schedule and ``lr_mult``; :math:`\beta` = ``momentum``; :math:`\lambda` =
    ``wd``; the stored weight is :math:`y`):

    .. math::

        \eta_t &= \eta \min(1, t / \text{warmup\_steps}), \qquad
        \eta_{\max} \leftarrow \max(\eta_{\max}, \eta_t), \qquad
        c_t = \frac{t^r \eta_{\max}^p}{\sum_{i \le t} i^r \eta_{\max,i}^p} \\
        d &= g + \lambda y \\
        y &\leftarrow (1 - c_t) y + c_t z + \eta_t \left(\beta (1 - c_t) - 1\right) d \\
        z &\leftarrow z - \eta_t d

    the paper's :math:`z \leftarrow z - \eta_t d`, :math:`x \leftarrow (1 - c_t) x + c_t z`,
    :math:`y = (1 - \beta) z + \beta x` written on :math:`y` (x is never stored; ``to_eval``
    and ``evaluation`` compute :math:`x = (y - (1 - \beta) z) / \beta`).

    Parameters
    ----------
    learning_rate : float, default 1.0 (the official default: Schedule-Free SGD wants rates
        10-50x larger than SGD with momentum)
    momentum : float in (0, 1), default 0.9: the interpolation :math:`\beta` between z and x
        (there is no momentum buffer: the averaging plays its part)
    wd : float >= 0, default 0: an L2 term in the gradient, evaluated at y, as the official
        code (``grad + wd * y``)
    warmup_steps : int >= 0, default 0: linear warmup of the learning rate
    r : float >= 0, default 0: polynomial weighting ``t^r`` of the average
    weight_lr_power : float >= 0, default 2: the average weights steps by ``lr_max^p``

    Conventions: as ``ScheduleFreeAdamW``, ``k``, ``lr_max`` and the weight sum are per
    parameter here (per group officially), and warmup is the only schedule to combine it
    with. The weights hold y during training: evaluate at x with
    ``gluon_opt.schedule_free.evaluation(trainer)``.

    Example::

        trainer = gluon.Trainer(net.collect_params(), 'gluon_opt.schedulefree_sgd',
                                {'learning_rate': 1.0, 'momentum': 0.9, 'warmup_steps': 50})
        with gluon_opt.schedule_free.evaluation(trainer):
            evaluate(net)

    Reference: Defazio, Yang, Mehta, Mishchenko, Khaled & Cutkosky, "The Road Less
    Scheduled", NeurIPS 2024 (SGD variant).
    """
    name = 'schedulefree_sgd'
    label = 'Schedule-free SGD'
    family = 'schedule_free'
    paper = 'Defazio et al., "The Road Less Scheduled", NeurIPS 2024'
    # best of {0.3, 1, 3, 10} (warmup 50 steps; full course MLP, 3 epochs, seed 0, evaluated at
    # x): 0.8700, 0.8840, 0.8873, 0.2791 test accuracy (10 fails to train)
    tuned = {'Schedule-free SGD': {'learning_rate': 3.0, 'warmup_steps': 50}}
    bench_hyperparameters = {'learning_rate': 1.0}
    step_bytes = 5 * 4  # read w, g, z; write w, z (the two sums per tensor aside)
    state_bytes = staticmethod(lambda shape: 4 * (int(np.prod(shape)) + 2))  # z; sums
    oracle = "the schedulefree package's SGDScheduleFreeReference and SGDScheduleFree"
    default_learning_rate = 1.0
    fused_op = 'gopt_schedulefree_sgd'
    state_names = ('z', 'weight_sum')

    def __init__(self, learning_rate=None, momentum=0.9, warmup_steps=0, r=0.0,
                 weight_lr_power=2.0, **kwargs):
        owner = type(self).__name__
        self.momentum = check_range(owner, 'momentum', momentum, 0.0, 1.0, low_open=True)
        self._check_schedule(warmup_steps, r, weight_lr_power)
        super(ScheduleFreeSGD, self).__init__(learning_rate=learning_rate, **kwargs)

    @property
    def interpolation(self):
        return self.momentum

    def init_state(self, weight):
        return (weight.copy(), nd.zeros((2,), ctx=weight.context, dtype=np.float32))

    def step(self, weight, grad, state, lr, wd, t):
        z, sums = state
        lr = self.warmed_up(lr, t)
        ckp1 = self.average_weight(sums, lr, t, weight)
        if wd:
            grad = grad + wd * weight
        weight[:] = (weight + nd.broadcast_mul(ckp1, z - weight)
                     + nd.broadcast_mul(lr * (self.momentum * (1 - ckp1) - 1), grad))
        z[:] = z - lr * grad

    def fused_attrs(self):
        return {'momentum': self.momentum, 'weight_lr_power': self.weight_lr_power}

    def fused_scalars(self, lr, wd, t):
        return (self.warmed_up(lr, t), float(t) ** self.r, wd)


@register
class ScheduleFree(_ScheduleFreeBase):
    r"""Schedule-Free around any first-order gluon_opt optimizer (as optax's
    ``contrib.schedule_free`` wraps any base optimizer).

    The inner optimizer's step, taken at the training point :math:`y` with the gradient there,
    is the step of the sequence :math:`z`; :math:`x` averages the :math:`z`'s as in
    ``ScheduleFreeSGD`` (:math:`\beta` = ``momentum``, :math:`c_t` the same weights):

    .. math::

        \Delta &= \text{inner\_step}(y, g; \eta_t) - y
            \qquad \text{(the inner's state advances; its weight decay is taken at } y) \\
        y &\leftarrow (1 - c_t) y + c_t z + \left(1 - \beta (1 - c_t)\right) \Delta \\
        z &\leftarrow z + \Delta

    which is optax's :math:`z \leftarrow z + u`, :math:`x \leftarrow (1 - c_t) x + c_t z`,
    :math:`y = \beta x + (1 - \beta) z` (:math:`u` the base optimizer's update computed with
    ``params = y``), written on :math:`y`. Wrapping plain SGD (``gluon_opt.sgd`` without
    momentum) gives ``ScheduleFreeSGD``: :math:`\Delta = -\eta_t (g + \lambda y)`.

    Parameters
    ----------
    optimizer : str or GluonOptOptimizer, default 'gluon_opt.sgd': the inner optimizer, a
        registry name (created with the remaining keyword arguments, which it validates) or
        an instance (then no further keyword arguments). Not a closure-based optimizer, and
        not a Schedule-Free one.
    momentum : float in (0, 1), default 0.9: the interpolation :math:`\beta` (optax's ``b1``,
        the official ``ScheduleFreeWrapper``'s ``momentum``). It is the wrapper's: an inner
        SGD's own momentum can only be set on an instance (and is rarely wanted).
    warmup_steps : int >= 0, default 0: linear warmup of the learning rate, which the inner
        step and the weights :math:`c_t` both use
    r : float >= 0, default 0; weight_lr_power : float >= 0, default 2: the average's weights
        :math:`t^r \eta_{\max}^p`, as ``ScheduleFreeSGD``
    learning_rate, wd : default None: the inner optimizer's defaults. As with Lookahead, the
        wrapper's learning rate *is* the inner one's: the wrapper applies the schedule, the
        warmup, ``lr_mult`` and ``wd_mult`` and passes the resulting rates to the inner step.
    **inner_hyperparameters : the inner optimizer's own (``beta1``, ``beta2``, ...).

    Conventions: the inner's weight decay is computed at :math:`y`, as optax does (the
    base optimizer sees ``params = y``); the official torch ``ScheduleFreeWrapper`` runs the
    base optimizer on :math:`z` (its decay, and LAMB/LARS-style norms, are taken at
    :math:`z`) and offers ``weight_decay_at_y`` instead. optax's weights are
    :math:`\eta_{\max}^p` (no :math:`t^r`): ``r = 0`` here. The wrapper rescales and clips the
    gradient, counts updates per parameter and keeps float32 master weights once; the
    weights hold :math:`y` during training (evaluate at :math:`x` with
    ``gluon_opt.schedule_free.evaluation(trainer)``). The inner step is taken on a copy of
    :math:`y`, so one float32 tensor per parameter is used as scratch during the update.

    Fused path: where the inner optimizer has one, the inner step is its fused update (on the
    copy of :math:`y`) and the averaging is one kernel pass (``gopt_schedulefree_wrap``) over
    the float32 weights; with float16 weights and master weights the averaging is the
    reference's nd operations on the master (the inner step still fused). An inner without a
    kernel makes the whole update the reference.

    Example::

        trainer = gluon.Trainer(net.collect_params(), 'gluon_opt.schedulefree',
                                {'optimizer': 'gluon_opt.lion', 'learning_rate': 3e-4,
                                 'beta1': 0.9, 'beta2': 0.99, 'momentum': 0.9, 'wd': 0.1})
        with gluon_opt.schedule_free.evaluation(trainer):
            evaluate(net)

    References: Defazio et al., "The Road Less Scheduled", NeurIPS 2024; optax
    ``contrib.schedule_free`` (2024).
    """
    name = 'schedulefree'
    label = 'Schedule-free wrapper'
    family = 'schedule_free'
    paper = 'Defazio et al., "The Road Less Scheduled", NeurIPS 2024'
    # Lion inside, best of {3e-4, 1e-3, 3e-3, 1e-2} (warmup 50 steps; full course MLP, 3 epochs,
    # seed 0, evaluated at x): 0.8594, 0.8604, 0.8634, 0.8421 test accuracy
    tuned = {'Schedule-free Lion': {'optimizer': 'gluon_opt.lion', 'learning_rate': 3e-3,
                                    'warmup_steps': 50}}
    bench_hyperparameters = {'optimizer': 'gluon_opt.adam', 'learning_rate': 1e-3}
    # Adam inside: copy y to the scratch (read w, write s), Adam on it (read s, g, m, v;
    # write s, m, v), the averaging (read w, s, z; write w, z)
    step_bytes = (2 + 7 + 5) * 4
    # z and the sums; the inner's states: its own record says what those are (SGD: none)
    state_bytes = staticmethod(lambda shape: 4 * (int(np.prod(shape)) + 2))
    oracle = ("numpy transcription of optax's contrib.schedule_free (Adam, Lion inside); "
              "wrapping SGD against ScheduleFreeSGD")
    fused_op = 'gopt_schedulefree_wrap'
    cache_attributes = GluonOptOptimizer.cache_attributes + ('_scratch',)

    def __init__(self, optimizer='gluon_opt.sgd', momentum=0.9, warmup_steps=0, r=0.0,
                 weight_lr_power=2.0, learning_rate=None, wd=None, rescale_grad=1.0,
                 clip_gradient=None, lr_scheduler=None, multi_precision=False, use_fused=None,
                 param_dict=None, param_idx2name=None, sym=None, begin_num_update=0,
                 **inner_hyperparameters):
        owner = type(self).__name__
        self.momentum = check_range(owner, 'momentum', momentum, 0.0, 1.0, low_open=True)
        self._check_schedule(warmup_steps, r, weight_lr_power)
        inner = make_inner(owner, optimizer, learning_rate, wd, lr_scheduler, begin_num_update,
                           inner_hyperparameters)
        if isinstance(inner, (_ScheduleFreeBase, Lookahead)) or inner.needs_closure:
            _fail(owner, 'optimizer', optimizer, 'expected a first-order optimizer without a '
                  'closure, not a Schedule-Free or Lookahead one')
        adopt_inner(self, ScheduleFree, inner, learning_rate, wd, lr_scheduler,
                    rescale_grad=rescale_grad, clip_gradient=clip_gradient,
                    multi_precision=multi_precision, use_fused=use_fused, param_dict=param_dict,
                    param_idx2name=param_idx2name, sym=sym, begin_num_update=begin_num_update)

    def __repr__(self):
        return 'ScheduleFree(momentum=%r, warmup_steps=%d, r=%r, weight_lr_power=%r, ' \
               'optimizer=%r)' % (self.momentum, self.warmup_steps, self.r,
                                  self.weight_lr_power, self.inner)

    @property
    def interpolation(self):
        return self.momentum

    def set_learning_rate(self, lr):
        super(ScheduleFree, self).set_learning_rate(lr)
        self.inner.set_learning_rate(lr)

    # -- states ------------------------------------------------------------------------------
    @property
    def state_names(self):
        return ('z', 'weight_sum') + tuple(self.inner.state_names)

    def state_names_for(self, shape):
        return ('z', 'weight_sum') + tuple(self.inner.state_names_for(shape))

    def _share_parameter_info(self):
        # as Lookahead: optimizers that route by name (Muon) need param_dict on the inner too
        inner = self.inner
        inner.param_dict, inner.idx2name = self.param_dict, self.idx2name
        inner.lr_mult, inner.wd_mult = self.lr_mult, self.wd_mult

    def create_state(self, index, weight):
        self._share_parameter_info()
        return (weight.copy(), nd.zeros((2,), ctx=weight.context, dtype=np.float32),
                self.inner.create_state(index, weight))

    # -- the update ----------------------------------------------------------------------------
    def average(self, weight, moved, z, sums, lr, t):
        """Given ``moved``, the inner step taken from ``weight`` (= y): advance z by the
        displacement and y towards the new average, in place."""
        ckp1 = self.average_weight(sums, lr, t, weight)
        delta = moved - weight
        weight[:] = (weight + nd.broadcast_mul(ckp1, z - weight)
                     + nd.broadcast_mul(1 - self.momentum * (1 - ckp1), delta))
        z[:] = z + delta

    def step(self, weight, grad, state, lr, wd, t):
        z, sums, inner_state = state
        lr = self.warmed_up(lr, t)
        moved = weight.copy()
        self.inner.step(moved, grad, inner_state, lr, wd, t)
        self.average(weight, moved, z, sums, lr, t)

    def _reference_update(self, item):
        # the inner's own _reference_update (not just its step), as Lookahead, so that inners
        # with a per-parameter hook there (Muon's AdamW rates) behave as they do unwrapped
        self._share_parameter_info()
        z, sums, inner_state = item.state
        weight = item.weight if item.master is None else item.master
        grad = item.grad if item.master is None else item.grad.astype('float32')
        lr = self.warmed_up(item.lr, item.t)
        moved = weight.copy()
        self.inner._reference_update(UpdateItem(item.index, moved, self.prepare_grad(grad),
                                                inner_state, lr, item.wd, item.t, None))
        self.average(weight, moved, z, sums, lr, item.t)
        if item.master is not None:
            mx.nd.cast(item.master, dtype=item.weight.dtype, out=item.weight)

    def _buffers(self, item, weight):
        """The buffer the inner steps on for this parameter (a copy of y, float32 with master
        weights) and, with master weights, the float32 copy of the gradient the inner reads:
        kept, so that the kernels' prepared calls are replayed."""
        cache = self.__dict__.setdefault('_scratch', {})
        key = (item.index, id(item.weight))
        hit = cache.get(key)
        if hit is None or hit[0] is not item.weight:
            grad32 = None if item.master is None else zeros_like(weight)
            hit = (item.weight, zeros_like(weight), grad32)
            cache[key] = hit
        return hit[1], hit[2]

    def _fused_update(self, items):
        """The inner's fused update on a copy of y, then ``gopt_schedulefree_wrap`` over the
        float32 weights (float16 ones with master weights, and what the kernels do not take,
        average with the reference's nd operations); all of it the reference where the inner
        has no fused path."""
        inner = self.inner
        if inner.fused_op is None:
            return items
        self._share_parameter_info()
        inner_items, averaging, by_hand = [], [], []
        for item in items:
            z, sums, inner_state = item.state
            weight = item.weight if item.master is None else item.master
            scratch, grad32 = self._buffers(item, weight)
            weight.copyto(scratch)
            if grad32 is not None:
                mx.nd.cast(item.grad, dtype=np.float32, out=grad32)
            inner_items.append(UpdateItem(item.index, scratch,
                                          item.grad if grad32 is None else grad32,
                                          inner_state, self.warmed_up(item.lr, item.t),
                                          item.wd, item.t, None))
            avg_item = UpdateItem(item.index, item.weight, scratch, (z, sums), item.lr,
                                  item.wd, item.t, None)
            if item.master is None and self.fusable(avg_item, self.fused_op):
                averaging.append(avg_item)
            else:
                by_hand.append((item, scratch))
        # the inner kernels rescale and clip the raw gradient, and so does the inner
        # reference for the items they leave: lend the inner our settings for this call only
        saved = inner.rescale_grad, inner.clip_gradient
        inner.rescale_grad, inner.clip_gradient = self.rescale_grad, self.clip_gradient
        try:
            for inner_item in inner._fused_update(inner_items):
                inner._reference_update(inner_item)
        finally:
            inner.rescale_grad, inner.clip_gradient = saved
        # the averaging reads the moved copy as its "gradient": no rescaling, no clipping
        attrs = dict(momentum=self.momentum, weight_lr_power=self.weight_lr_power,
                     **kernels.grad_attrs(1.0, None))
        left = kernels.update(self.fused_op, averaging, attrs,
                              lambda lr, wd, t: (self.warmed_up(lr, t), float(t) ** self.r),
                              self.__dict__.setdefault('_fused_plans', {})) if averaging else []
        by_hand += [(avg_item, avg_item.grad) for avg_item in left]
        for item, scratch in by_hand:
            z, sums = item.state[:2]
            weight = item.weight if item.master is None else item.master
            self.average(weight, scratch, z, sums, self.warmed_up(item.lr, item.t), item.t)
            if item.master is not None:
                mx.nd.cast(item.master, dtype=item.weight.dtype, out=item.weight)
        return []


# ---------------------------------------------------------------------------------------------
# Swapping a gluon.Trainer's parameters between y (training) and x (evaluation).

def _trainer_states(trainer):
    """``{index: state}`` from wherever the trainer keeps its optimizer states."""
    if trainer._update_on_kvstore and trainer._kvstore is not None:
        updaters = [getattr(trainer._kvstore, '_updater', None)]
    else:
        updaters = getattr(trainer, '_updaters', [])
    out = {}
    for updater in updaters:
        if updater is None:
            continue
        for index, state in updater.states.items():
            out.setdefault(index, state)
    return out


def _swap(trainer, to_x):
    opt = trainer._optimizer
    if not isinstance(opt, _ScheduleFreeBase):
        raise ValueError('gluon_opt.schedule_free: the trainer uses %s, not a Schedule-Free '
                         'optimizer' % type(opt).__name__)
    if getattr(opt, 'eval_mode', False) == to_x:
        return  # already there
    states = _trainer_states(trainer)
    for index, param in enumerate(trainer._params):
        state = states.get(index)
        if state is None:
            continue  # never updated: z = y = x
        master = None
        if isinstance(state, (tuple, list)) and len(state) == 2 and \
                isinstance(state[1], (tuple, list)):
            master, state = state  # multi_precision: (float32 master, states)
        convert = opt.x_of if to_x else opt.y_of
        if master is not None:
            master[:] = convert(master, state)
        for data in param.list_data():
            if master is not None:
                data[:] = master.as_in_context(data.context).astype(data.dtype)
            else:
                data[:] = convert(data, state)
    opt.eval_mode = to_x


def to_eval(trainer):
    """Set every parameter of ``trainer`` (each context's copy, and float32 master weights)
    from the training point y to the averaged point x. Training must not step until
    ``to_train``: ``update`` refuses while in evaluation mode (with
    ``update_on_kvstore=True`` MXNet runs the update in a KVStore callback and only prints
    that error, skipping the update)."""
    _swap(trainer, True)


def to_train(trainer):
    """Undo ``to_eval``: parameters back to y."""
    _swap(trainer, False)


@contextlib.contextmanager
def evaluation(trainer):
    """``with evaluation(trainer): ...`` runs the block with the weights at x, then restores
    y (also when the block raises)."""
    to_eval(trainer)
    try:
        yield trainer
    finally:
        to_train(trainer)
