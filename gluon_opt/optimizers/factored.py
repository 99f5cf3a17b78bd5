"""Factored second moments: Adafactor.

Adam keeps a second-moment estimate as large as the weight. For a matrix gradient ``G``
(``n x m``), Adafactor keeps only the exponential averages of its row means and column means
of ``G^2`` (``n + m`` numbers) and rebuilds the rank-1 estimate
``V_hat = R C / mean(R)``, the best rank-1 fit of ``V`` in the I-divergence. Tensors of more
than two dimensions are factored over their last two; vectors keep a full ``v``. The paper
also replaces the learning rate by a *relative* step size (a fraction of the weight's RMS),
clips each update by its RMS instead of relying on ``beta2``, and drops momentum by default.

This module follows the HuggingFace ``transformers.optimization.Adafactor`` conventions
(themselves from fairseq), which are the ones most models are trained with.

Reference: Shazeer & Stern, "Adafactor: Adaptive Learning Rates with Sublinear Memory Cost",
ICML 2018.
"""
import math

import numpy as np
from mxnet import nd

from .base import (GluonOptOptimizer, check_range, check_positive, check_nonnegative,
                   check_bool, zeros_like)
from .registry import register

__all__ = ['Adafactor']


def _rms(x):
    """Root mean square of all elements, as a shape-(1,) NDArray on ``x``'s context."""
    return nd.norm(x) / math.sqrt(x.size)


def _second_moment_size(shape):
    """Elements of the second-moment states of a tensor of ``shape``: a row and a column state
    for tensors of ndim >= 2 (as large as the weight each for 1 x 1 convolution kernels, a
    third of it each for 3 x 3 ones), ``v`` for vectors."""
    if len(shape) >= 2:
        return int(np.prod(shape[:-1])) + int(np.prod(shape[:-2])) * shape[-1]
    return int(np.prod(shape))


def _state_bytes(shape):
    """Bytes of the default states (no momentum) of one float32 tensor of ``shape``."""
    return 4 * _second_moment_size(shape)


def _step_bytes(shape):
    """Bytes one step moves for one tensor of ``shape``: every array once (read w, g and the
    states, write w and the states), plus a second read of w and g: the step size needs RMS(w)
    and the clipping RMS(u), each known only after a full read (as LAMB's norms). A lower bound
    for tensors larger than the caches: u comes from the final row and column means, so a
    large matrix's g is read a third time (RMS(u), then the update)."""
    n = int(np.prod(shape))
    return 4 * (3 * n + 2 * _second_moment_size(shape)) + 4 * 2 * n


@register
class Adafactor(GluonOptOptimizer):
    r"""Adafactor with factored second moments, relative step size and update clipping.

    Update rule for step :math:`t` (:math:`g` the gradient, rescaled and clipped; :math:`R`,
    :math:`C` for tensors of ndim >= 2, over the last two axes; :math:`v` for vectors;
    :math:`\eta` = ``learning_rate``, :math:`\lambda` = ``wd``, :math:`d` =
    ``clip_threshold``):

    .. math::

        \rho_t &= \min(10^{-6} t \text{ with warmup\_init, else } 10^{-2}, \ 1 / \sqrt{t})
            \ \text{ with relative\_step, else } \ 1 \\
        \alpha_t &= \eta \, \rho_t \max(\epsilon_2, \operatorname{RMS}(w))
            \qquad (\max(\epsilon_2, \operatorname{RMS}(w)) \text{ only with scale\_parameter,
            else } 1) \\
        \hat\beta_{2,t} &= 1 - t^{\text{decay\_rate}} \\
        R &\leftarrow \hat\beta_{2,t} R + (1 - \hat\beta_{2,t})
            \operatorname{mean}_{\text{cols}}(g^2 + \epsilon_1) \qquad \text{(row means)} \\
        C &\leftarrow \hat\beta_{2,t} C + (1 - \hat\beta_{2,t})
            \operatorname{mean}_{\text{rows}}(g^2 + \epsilon_1) \qquad \text{(column means)} \\
        u &\leftarrow g / \sqrt{R C^\top / \operatorname{mean}(R)}
            \qquad (\text{vectors: } v \leftarrow \dots, \ u \leftarrow g / \sqrt{v}) \\
        u &\leftarrow \alpha_t u / \max(1, \operatorname{RMS}(u) / d) \\
        m &\leftarrow \beta_1 m + (1 - \beta_1) u, \quad u \leftarrow m
            \qquad (\text{if } \beta_1 \text{ is not None}) \\
        w &\leftarrow w (1 - \lambda \alpha_t) - u

    Parameters
    ----------
    learning_rate : float or None
        With ``relative_step=True`` (default) a multiplier of the relative step size, 1.0 when
        not given (HuggingFace's behaviour; ``lr_mult`` and schedules act as multipliers).
        With ``relative_step=False`` the step size itself, and required.
    epsilon1 : float > 0, default 1e-30 (added to ``g^2``)
    epsilon2 : float >= 0, default 1e-3 (floor of the parameter scale ``RMS(w)``)
    clip_threshold : float > 0, default 1.0 (``d`` in the paper)
    decay_rate : float <= 0, default -0.8 (``beta2_t = 1 - t^decay_rate``)
    beta1 : float in [0, 1) or None, default None (no momentum)
    relative_step : bool, default True
    scale_parameter : bool, default True (scale the step by ``max(epsilon2, RMS(w))``)
    warmup_init : bool, default False (relative step ``min(1e-6 t, 1/sqrt(t))``; needs
        ``relative_step=True``)
    wd : float, default 0; decoupled, scaled by ``alpha_t`` as in HuggingFace.

    States depend on the weight's shape: ``('exp_avg_sq_row', 'exp_avg_sq_col'[,
    'exp_avg'])`` for tensors of ndim >= 2 (shapes ``shape[:-1]`` and
    ``shape[:-2] + shape[-1:]``), ``('exp_avg_sq'[, 'exp_avg'])`` for vectors; see
    ``state_names_for(shape)``.

    Conventions: HuggingFace's ``Adafactor`` (``eps=(epsilon1, epsilon2)``,
    ``weight_decay=wd``), except that a learning rate with ``relative_step=True`` multiplies
    the relative step instead of raising. As there, ``epsilon1`` is added to ``g^2`` (the
    paper adds it inside the row/column sums, the same up to a factor), momentum averages the
    already scaled and clipped update (no bias correction), and ``scale_parameter`` also
    applies with a fixed learning rate. ``torch.optim.Adafactor`` differs: ``lr`` (1e-2) is
    the cap of the relative step, ``epsilon1`` clamps ``V_hat`` instead of being added, weight
    decay is scaled by ``lr`` rather than ``alpha_t``, and there is no momentum.

    A fused CPU kernel (``gluon_opt/kernels/factored.cc``) runs this update where it can (float32,
    or float16 with ``multi_precision``); ``use_fused=False`` forces the reference below. It sums
    the norms behind ``RMS(w)`` and ``RMS(u)`` in double precision, so it differs from the
    reference by the reference's float32 rounding of ``nd.norm`` (about 1e-5 relative on tensors
    of 10^5 elements).

    Example::

        trainer = gluon.Trainer(net.collect_params(), 'gluon_opt.adafactor', {})
        trainer = gluon.Trainer(net.collect_params(), 'gluon_opt.adafactor',
                                {'learning_rate': 1e-3, 'relative_step': False,
                                 'scale_parameter': False})
    """
    name = 'adafactor'
    family = 'factored'
    paper = ('Shazeer & Stern, "Adafactor: Adaptive Learning Rates with Sublinear Memory '
             'Cost", ICML 2018')
    step_bytes = staticmethod(_step_bytes)
    state_bytes = staticmethod(_state_bytes)
    # torch.optim.Adafactor's conventions differ (see above): an oracle for the relative-step,
    # momentum-free form only, and no torch_class to time beside this one
    oracle = 'torch.optim.Adafactor (relative step, no momentum); numpy transcription of ' \
             "HuggingFace's Adafactor"
    default_learning_rate = 1.0
    fused_op = 'gopt_adafactor'

    def __init__(self, learning_rate=None, epsilon1=1e-30, epsilon2=1e-3, clip_threshold=1.0,
                 decay_rate=-0.8, beta1=None, relative_step=True, scale_parameter=True,
                 warmup_init=False, **kwargs):
        owner = type(self).__name__
        self.epsilon1 = check_positive(owner, 'epsilon1', epsilon1)
        self.epsilon2 = check_nonnegative(owner, 'epsilon2', epsilon2)
        self.clip_threshold = check_positive(owner, 'clip_threshold', clip_threshold)
        self.decay_rate = check_range(owner, 'decay_rate', decay_rate, -float('inf'), 0.0,
                                      high_open=False)
        self.beta1 = None if beta1 is None else check_range(owner, 'beta1', beta1, 0.0, 1.0)
        self.relative_step = check_bool(owner, 'relative_step', relative_step)
        self.scale_parameter = check_bool(owner, 'scale_parameter', scale_parameter)
        self.warmup_init = check_bool(owner, 'warmup_init', warmup_init)
        if self.warmup_init and not self.relative_step:
            raise ValueError('%s: warmup_init=True needs relative_step=True.' % owner)
        if (not self.relative_step and learning_rate is None
                and kwargs.get('lr_scheduler') is None):
            raise ValueError('%s: learning_rate=None is invalid with relative_step=False; '
                             'expected a learning rate (or relative_step=True).' % owner)
        super(Adafactor, self).__init__(learning_rate=learning_rate, **kwargs)

    @property
    def state_names(self):
        """The state names of a weight of ndim >= 2 (see ``state_names_for``)."""
        return self.state_names_for((2, 2))

    def state_names_for(self, shape):
        names = (('exp_avg_sq_row', 'exp_avg_sq_col') if len(shape) >= 2
                 else ('exp_avg_sq',))
        return names + (('exp_avg',) if self.beta1 is not None else ())

    def init_state(self, weight):
        shape, ctx, dtype = weight.shape, weight.context, weight.dtype
        if len(shape) >= 2:
            states = [nd.zeros(shape[:-1], ctx=ctx, dtype=dtype),
                      nd.zeros(shape[:-2] + shape[-1:], ctx=ctx, dtype=dtype)]
        else:
            states = [zeros_like(weight)]
        if self.beta1 is not None:
            states.append(zeros_like(weight))
        return tuple(states)

    def relative_step_size(self, t):
        """``rho_t``: the step size relative to the parameter scale (a Python float)."""
        if not self.relative_step:
            return 1.0
        cap = 1e-6 * t if self.warmup_init else 1e-2
        return min(cap, 1.0 / math.sqrt(t))

    def second_moment_decay(self, t):
        """``beta2_t = 1 - t^decay_rate`` (a Python float; 0 at the first step)."""
        return 1.0 - t ** self.decay_rate

    def step(self, weight, grad, state, lr, wd, t):
        alpha = lr * self.relative_step_size(t)
        if self.scale_parameter:
            alpha = alpha * nd.maximum(_rms(weight), self.epsilon2)
        beta2t = self.second_moment_decay(t)
        sq = nd.square(grad) + self.epsilon1
        if weight.ndim >= 2:
            row, col = state[0], state[1]
            row[:] = beta2t * row + (1 - beta2t) * nd.mean(sq, axis=-1)
            col[:] = beta2t * col + (1 - beta2t) * nd.mean(sq, axis=-2)
            row_factor = nd.rsqrt(row / nd.mean(row, axis=-1, keepdims=True))
            col_factor = nd.rsqrt(col)
            update = grad * nd.expand_dims(row_factor, axis=-1) * nd.expand_dims(col_factor,
                                                                                axis=-2)
        else:
            var = state[0]
            var[:] = beta2t * var + (1 - beta2t) * sq
            update = grad * nd.rsqrt(var)
        update = update / nd.maximum(_rms(update) / self.clip_threshold, 1.0)
        update = alpha * update
        if self.beta1 is not None:
            exp_avg = state[-1]
            exp_avg[:] = self.beta1 * exp_avg + (1 - self.beta1) * update
            update = exp_avg
        if wd:
            weight[:] = weight * (1 - wd * alpha)
        weight[:] -= update

    def fused_attrs(self):
        return {'epsilon1': self.epsilon1, 'epsilon2': self.epsilon2,
                'clip_threshold': self.clip_threshold, 'momentum': int(self.beta1 is not None),
                'beta1': 0.0 if self.beta1 is None else self.beta1,
                'scale_parameter': int(self.scale_parameter)}

    def fused_scalars(self, lr, wd, t):
        alpha = lr * self.relative_step_size(t)  # times max(eps2, RMS(w)) in the kernel
        return (alpha, self.second_moment_decay(t), wd, 1.0 - wd * alpha)
