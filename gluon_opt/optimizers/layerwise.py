"""Layer-wise adaptive methods: each tensor's step is rescaled by a trust ratio, the norm of
the weight over the norm of its update, so that every layer moves by a similar *relative*
amount however different the scales of its weights and gradients. Built for large-batch
training, where one global learning rate is too large for some layers and too small for others.

The norms are computed per tensor (a "layer" is a parameter tensor) as NDArrays on the
weight's context and combined by broadcasting: the update never waits on the host.

References: You, Gitman & Ginsburg, "Large Batch Training of Convolutional Networks",
arXiv:1708.03888, 2017 (LARS); You, Li, Reddi, Hseu, Kumar, Bhojanapalli, Song, Demmel,
Keutzer & Hsieh, "Large Batch Optimization for Deep Learning: Training BERT in 76 minutes",
ICLR 2020 (LAMB).
"""
from mxnet import nd

from .base import (GluonOptOptimizer, check_range, check_positive, check_nonnegative,
                   check_bool, bias_corrections)
from .registry import register

__all__ = ['LAMB', 'LARS']


def _safe_ratio(numerator, denominator):
    """``numerator / denominator`` where both are positive, else 1 (shape-(1,) NDArrays): a
    zero norm means a freshly zeroed tensor or a vanishing gradient, where the ratio carries
    no information and the plain learning rate applies."""
    valid = (numerator > 0) * (denominator > 0)
    # where invalid, divide by 1 instead, so no inf/nan is ever formed
    return nd.where(valid, numerator / nd.where(valid, denominator, nd.ones_like(denominator)),
                    nd.ones_like(numerator))


@register
class LAMB(GluonOptOptimizer):
    r"""LAMB: Adam's direction with a per-tensor trust ratio.

    Update rule (:math:`g` the gradient, rescaled and clipped; :math:`t` the parameter's step;
    :math:`\eta` = ``learning_rate``, :math:`\lambda` = ``wd``; norms over the whole tensor):

    .. math::

        m &\leftarrow \beta_1 m + (1 - \beta_1) g \\
        v &\leftarrow \beta_2 v + (1 - \beta_2) g^2 \\
        \hat m &= \frac{m}{1 - \beta_1^t}, \quad \hat v = \frac{v}{1 - \beta_2^t}
            \qquad \text{(with bias\_correction; else } \hat m = m, \ \hat v = v) \\
        r &= \frac{\hat m}{\sqrt{\hat v} + \epsilon} + \lambda w \\
        \phi &= \operatorname{clip}(\lVert w \rVert, \text{lower\_bound}, \text{upper\_bound})
            \qquad \text{(each bound optional)} \\
        q &= \phi / \lVert r \rVert \ \text{ if } \phi > 0 \text{ and } \lVert r \rVert > 0,
            \ \text{ else } 1 \qquad \text{(the trust ratio)} \\
        w &\leftarrow w - \eta \, q \, r

    Parameters
    ----------
    learning_rate : float, default 0.001
    beta1 : float in [0, 1), default 0.9
    beta2 : float in [0, 1), default 0.999
    epsilon : float > 0, default 1e-6 (outside the square root, after bias correction)
    lower_bound, upper_bound : float > 0 or None, default None (the paper's phi; None = no
        bound)
    bias_correction : bool, default True (Adam's correction of ``m`` and ``v``, as in MXNet
        and NVIDIA's BERT code; False divides the raw moments)
    wd : float, default 0; decoupled (added to the Adam direction ``r``, so it is scaled by the
        trust ratio too).

    Conventions: MXNet's built-in ``lamb`` (``lamb_update_phase1``/``phase2``): same defaults,
    bounds applied to ``||w||`` before the zero test. MXNet treats a bound <= 0 as absent;
    here absent is ``None`` and a bound must be positive. NVIDIA apex's ``FusedLAMB`` also
    adds ``wd * w`` to ``r`` but skips the trust ratio when ``wd = 0`` by default
    (``use_nvlamb=False``); here it always applies, as in the paper.

    Example::

        trainer = gluon.Trainer(net.collect_params(), 'gluon_opt.lamb',
                                {'learning_rate': 2e-3, 'wd': 0.01})
    """
    name = 'lamb'
    family = 'layerwise'
    paper = 'You et al., "Large Batch Optimization for Deep Learning", ICLR 2020'
    # The trust ratio is a ratio of norms, known only once the whole tensor has been read, so
    # any implementation passes twice over tensors larger than the caches: read w, g, m, v and
    # write m, v (norms of w and of the update), then read w, m, v and write w.
    step_bytes = 10 * 4
    state_bytes = 2 * 4
    mxnet_builtin = 'lamb'
    oracle = "MXNet's lamb_update_phase1 and lamb_update_phase2"
    default_learning_rate = 0.001
    state_names = ('mean', 'var')
    fused_op = 'gopt_lamb'

    def __init__(self, learning_rate=None, beta1=0.9, beta2=0.999, epsilon=1e-6,
                 lower_bound=None, upper_bound=None, bias_correction=True, **kwargs):
        owner = type(self).__name__
        self.beta1 = check_range(owner, 'beta1', beta1, 0.0, 1.0)
        self.beta2 = check_range(owner, 'beta2', beta2, 0.0, 1.0)
        self.epsilon = check_positive(owner, 'epsilon', epsilon)
        self.lower_bound = (None if lower_bound is None
                            else check_positive(owner, 'lower_bound', lower_bound))
        self.upper_bound = (None if upper_bound is None
                            else check_positive(owner, 'upper_bound', upper_bound))
        if (self.lower_bound is not None and self.upper_bound is not None
                and self.lower_bound > self.upper_bound):
            raise ValueError('%s: lower_bound=%r is larger than upper_bound=%r.'
                             % (owner, lower_bound, upper_bound))
        self.bias_correction = check_bool(owner, 'bias_correction', bias_correction)
        super(LAMB, self).__init__(learning_rate=learning_rate, **kwargs)

    def step(self, weight, grad, state, lr, wd, t):
        mean, var = state
        mean[:] = self.beta1 * mean + (1 - self.beta1) * grad
        var[:] = self.beta2 * var + (1 - self.beta2) * nd.square(grad)
        if self.bias_correction:
            bc1, bc2 = bias_corrections(self.beta1, self.beta2, t)
            direction = (mean / bc1) / (nd.sqrt(var / bc2) + self.epsilon)
        else:
            direction = mean / (nd.sqrt(var) + self.epsilon)
        if wd:
            direction = direction + wd * weight
        weight_norm = nd.norm(weight)
        if self.lower_bound is not None or self.upper_bound is not None:
            weight_norm = nd.clip(weight_norm,
                                  self.lower_bound if self.lower_bound is not None else 0.0,
                                  self.upper_bound if self.upper_bound is not None
                                  else float('inf'))
        ratio = _safe_ratio(weight_norm, nd.norm(direction))
        weight[:] -= lr * ratio * direction

    def fused_attrs(self):
        return {'beta1': self.beta1, 'beta2': self.beta2, 'epsilon': self.epsilon,
                'bias_correction': int(self.bias_correction),
                'lower_bound': -1.0 if self.lower_bound is None else self.lower_bound,
                'upper_bound': -1.0 if self.upper_bound is None else self.upper_bound}

    def fused_scalars(self, lr, wd, t):
        bc1, bc2 = bias_corrections(self.beta1, self.beta2, t)
        return (lr, wd, bc1, bc2)


@register
class LARS(GluonOptOptimizer):
    r"""LARS: SGD with momentum and a per-tensor ("local") learning rate.

    Update rule (:math:`g` the gradient, rescaled and clipped; :math:`\eta` =
    ``learning_rate``, :math:`\gamma` = ``eta`` (the trust coefficient), :math:`\mu` =
    ``momentum``, :math:`\lambda` = ``wd``; norms over the whole tensor):

    .. math::

        \eta_{\text{local}} &= \frac{\gamma \lVert w \rVert}
            {\lVert g \rVert + \lambda \lVert w \rVert + \epsilon}
            \qquad (1 \text{ when } \lVert w \rVert = 0 \text{ or } \lVert g \rVert = 0) \\
        v &\leftarrow \mu v + \eta \, \eta_{\text{local}} (g + \lambda w) \\
        w &\leftarrow w - v

    With ``momentum=0``: ``w <- w - lr * local_lr * (g + wd * w)`` and no state.

    Parameters
    ----------
    learning_rate : float, default 0.01 (MXNet's; the paper's global rates are O(1) because
        ``eta`` is small)
    momentum : float in [0, 1), default 0
    eta : float > 0, default 0.001 (the trust coefficient)
    epsilon : float >= 0, default 0
    wd : float, default 0; coupled (in the gradient and in the local rate's denominator).

    Conventions: the math of MXNet's built-in ``lars`` (``multi_lars`` +
    ``sgd_mom_update``), whose momentum buffer is ``-v`` (the learning rate inside the
    buffer, so a schedule acts through the buffer). Differences: MXNet calls ``epsilon``
    ``eps``; it skips the local rate for parameters whose *names* end in ``bias``, ``gamma``
    or ``beta`` and zeroes their ``wd_mult``, whereas here every tensor gets its local rate
    (set ``wd_mult``/``lr_mult`` per parameter for exclusions); it rescales momentum by
    ``lr_t / lr_{t-1}`` under a schedule (``momentum_correction``), which this does not.
    timm-style LARS apply the local rate to ``g + wd * w`` before the momentum buffer and
    keep ``lr`` outside it (``w <- w - lr * buf``), which differs under a schedule.

    Example::

        trainer = gluon.Trainer(net.collect_params(), 'gluon_opt.lars',
                                {'learning_rate': 2.0, 'momentum': 0.9, 'eta': 0.001,
                                 'wd': 5e-4})
    """
    name = 'lars'
    family = 'layerwise'
    paper = 'You, Gitman & Ginsburg, "Large Batch Training of Convolutional Networks", 2017'
    bench_hyperparameters = {'learning_rate': 0.01, 'momentum': 0.9}
    # the local rate needs the norms of w and g first: read w, g; then read w, g, v, write w, v
    step_bytes = 7 * 4
    state_bytes = 0  # the momentum buffer only with momentum > 0 (4 bytes)
    mxnet_builtin = 'lars'
    oracle = "MXNet's LARS (multi_lars + sgd_mom_update)"
    default_learning_rate = 0.01
    fused_op = 'gopt_lars'

    def __init__(self, learning_rate=None, momentum=0.0, eta=0.001, epsilon=0.0, **kwargs):
        owner = type(self).__name__
        self.momentum = check_range(owner, 'momentum', momentum, 0.0, 1.0)
        self.eta = check_positive(owner, 'eta', eta)
        self.epsilon = check_nonnegative(owner, 'epsilon', epsilon)
        super(LARS, self).__init__(learning_rate=learning_rate, **kwargs)

    @property
    def state_names(self):
        return ('momentum',) if self.momentum > 0 else ()

    def step(self, weight, grad, state, lr, wd, t):
        weight_norm, grad_norm = nd.norm(weight), nd.norm(grad)
        local_lr = _safe_ratio(self.eta * weight_norm,
                               grad_norm + wd * weight_norm + self.epsilon)
        # with grad_norm = 0 the denominator can still be positive (wd > 0): the paper's
        # rule is 1 whenever either norm is 0
        local_lr = nd.where(grad_norm > 0, local_lr, nd.ones_like(local_lr))
        step = (lr * local_lr) * (grad + wd * weight if wd else grad)
        if self.momentum > 0:
            buf, = state
            buf[:] = self.momentum * buf + step
            step = buf
        weight[:] -= step

    def fused_attrs(self):
        return {'momentum': self.momentum, 'eta': self.eta, 'epsilon': self.epsilon}

    def fused_scalars(self, lr, wd, t):
        return (lr, wd)
