"""Schedule-Free optimisation: AdamW without a learning-rate schedule.

Schedule-Free keeps two sequences: ``z``, a plain (Adam-normalised) gradient-descent
iterate, and ``x``, a weighted running average of the ``z``'s. Gradients are evaluated at
``y``, an interpolation between them. The averaging replaces the decaying schedule: with a
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

Follows the official code (github.com/facebookresearch/schedule_free,
``AdamWScheduleFree``). Reference: Defazio, Yang, Mehta, Mishchenko, Khaled & Cutkosky,
"The Road Less Scheduled", NeurIPS 2024.
"""
import contextlib

import numpy as np
from mxnet import nd

from ..base import (GluonOptOptimizer, check_range, check_positive, check_int,
                    check_nonnegative, zeros_like)
from ..registry import register

__all__ = ['ScheduleFreeAdamW', 'to_eval', 'to_train', 'evaluation']


@register
class ScheduleFreeAdamW(GluonOptOptimizer):
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

    Parameters
    ----------
    learning_rate : float, default 0.0025 (the official default; Schedule-Free tolerates, and
        usually wants, a larger rate than AdamW)
    beta1 : float in [0, 1), default 0.9: the interpolation between z and x (not a momentum
        EMA: there is no first moment)
    beta2 : float in [0, 1), default 0.999
    epsilon : float > 0, default 1e-8 (outside the square root, after bias correction)
    wd : float >= 0, default 0: decoupled in effect, applied at ``y`` through ``d``
    warmup_steps : int >= 0, default 0: linear warmup of the learning rate
    r : float >= 0, default 0: polynomial weighting ``t^r`` of the average
    weight_lr_power : float >= 0, default 2: the average weights steps by ``lr_max^p``

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
    oracle = 'numpy transcription of the official AdamWScheduleFree'
    default_learning_rate = 0.0025
    fused_op = 'gopt_schedulefree_adamw'
    state_names = ('z', 'var', 'weight_sum')
    #: True between ``to_eval`` and ``to_train``: the weights hold x, and updates refuse
    eval_mode = False

    def __init__(self, learning_rate=None, beta1=0.9, beta2=0.999, epsilon=1e-8,
                 warmup_steps=0, r=0.0, weight_lr_power=2.0, **kwargs):
        owner = type(self).__name__
        self.beta1 = check_range(owner, 'beta1', beta1, 0.0, 1.0, low_open=True)
        self.beta2 = check_range(owner, 'beta2', beta2, 0.0, 1.0)
        self.epsilon = check_positive(owner, 'epsilon', epsilon)
        self.warmup_steps = check_int(owner, 'warmup_steps', warmup_steps, 0)
        self.r = check_nonnegative(owner, 'r', r)
        self.weight_lr_power = check_nonnegative(owner, 'weight_lr_power', weight_lr_power)
        super(ScheduleFreeAdamW, self).__init__(learning_rate=learning_rate, **kwargs)

    def _update(self, index, weight, grad, state, multi_precision):
        if self.eval_mode:
            raise RuntimeError('%s: the weights hold the evaluation point x; call '
                               'gluon_opt.schedule_free.to_train(trainer) (or leave the '
                               '`evaluation` block) before training again.'
                               % type(self).__name__)
        super(ScheduleFreeAdamW, self)._update(index, weight, grad, state, multi_precision)

    def init_state(self, weight):
        # z starts at the initial weight; (lr_max, weight_sum) at zero
        return (weight.copy(), zeros_like(weight),
                nd.zeros((2,), ctx=weight.context, dtype=np.float32))

    def step(self, weight, grad, state, lr, wd, t):
        z, var, sums = state
        if self.warmup_steps and t <= self.warmup_steps:
            lr = lr * t / self.warmup_steps
        lr_max = nd.maximum(sums[0:1], lr)
        avg_weight = (float(t) ** self.r) * lr_max ** self.weight_lr_power
        weight_sum = sums[1:2] + avg_weight
        sums[:] = nd.concat(lr_max, weight_sum, dim=0)
        # c_t = weight / weight_sum, 0 while no step has had a positive learning rate
        ckp1 = nd.where(weight_sum > 0, avg_weight / nd.maximum(weight_sum, 1e-38),
                        nd.zeros_like(weight_sum))
        ckp1 = ckp1.astype(weight.dtype).reshape((1,) * weight.ndim)

        var[:] = self.beta2 * var + (1 - self.beta2) * nd.square(grad)
        bc2 = 1.0 - self.beta2 ** t
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
        if self.warmup_steps and t <= self.warmup_steps:
            lr = lr * t / self.warmup_steps
        return (lr, float(t) ** self.r, 1.0 - self.beta2 ** t, wd)

    def evaluation_weights(self, trainer):
        """``evaluation(trainer)``: the weights hold the averaged point x inside the block."""
        return evaluation(trainer)

    # -- x <-> y ------------------------------------------------------------------------------
    def x_of(self, y, state):
        """The averaged iterate ``x = (y - (1 - beta1) z) / beta1`` for the weight ``y`` and
        its state (a new NDArray)."""
        z = state[0]
        return (y - (1 - self.beta1) * z.as_in_context(y.context).astype(y.dtype)) / self.beta1

    def y_of(self, x, state):
        """The training point ``y = (1 - beta1) z + beta1 x`` (a new NDArray)."""
        z = state[0]
        return (1 - self.beta1) * z.as_in_context(x.context).astype(x.dtype) + self.beta1 * x


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
    if not isinstance(opt, ScheduleFreeAdamW):
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
