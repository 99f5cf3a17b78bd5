"""LaProp: momentum over normalised gradients (Adam with the two operations swapped).

Adam averages raw gradients and divides the average by ``sqrt(v)``; LaProp divides each
gradient by ``sqrt(v)`` first and averages the quotients, so the momentum and the adaptivity
are separate and any ``beta1 < 1`` works with any ``beta2`` (Adam needs ``beta1^2 < beta2``).

Follows the authors' code (Z-T-WANG/LaProp-Optimizer, ``laprop.py``): the learning rate is
multiplied in *before* the momentum average, ``m <- b1 m + (1 - b1) lr g / d``, and the
first moment's bias correction is a running average of the learning rates,
``a <- b1 a + (1 - b1) lr``, so the step is ``(lr / a) m``: with a constant rate that is Adam's
``m / (1 - b1^t)``, and under a schedule each past gradient keeps the rate it came with.

Reference: Ziyin, Wang & Ueda, "LaProp: Separating Momentum and Adaptivity in Adam", arXiv
2002.04839 (2020).
"""
import numpy as np
from mxnet import nd

from ..base import (GluonOptOptimizer, check_range, check_positive, check_bool, decay_weight,
                    cautious_mask)
from ..registry import register

__all__ = ['LaProp']


@register
class LaProp(GluonOptOptimizer):
    r"""LaProp: normalise the gradient by the second moment, then momentum.

    Update rule (:math:`g` the gradient, rescaled and clipped; :math:`t` the parameter's step;
    :math:`\eta_t` = the learning rate at step :math:`t`, :math:`\lambda` = ``wd``):

    .. math::

        v &\leftarrow \beta_2 v + (1 - \beta_2) g^2 \\
        d &= \sqrt{v / (1 - \beta_2^t)} + \epsilon \\
        a &\leftarrow \beta_1 a + (1 - \beta_1) \eta_t
            \qquad (a = \eta (1 - \beta_1^t) \text{ for a constant rate)} \\
        m &\leftarrow \beta_1 m + (1 - \beta_1) \, \eta_t \, g / d \\
        u &= \frac{\eta_t}{a} \, m \qquad (u = m \text{ when } \eta_t = 0 \text{, as the
            authors' code}) \\
        u &\leftarrow u \odot \phi \, \frac{n}{\textstyle\sum_i \phi_i + 1}, \quad
            \phi = \mathbb{1}[u \odot g > 0] \qquad \text{(cautious only)} \\
        w &\leftarrow (w - u)(1 - \eta_t \lambda)
            \qquad \text{(decoupled decay, after the step)}

    The states are ``exp_avg`` (:math:`m`, which carries the learning rate), ``exp_avg_sq``
    (:math:`v`) and ``lr_avg`` (:math:`a`, one element per parameter, like NAdam's
    ``mu_product``).

    Parameters
    ----------
    learning_rate : float, default 4e-4 (the authors')
    beta1 : float in [0, 1), default 0.9
    beta2 : float in [0, 1), default 0.999
    epsilon : float > 0, default 1e-15 (the authors'; added to the bias-corrected
        ``sqrt(v)``)
    cautious : bool, default False: the cautious mask of Liang et al., "Cautious Optimizers:
        Improving Training with One Line of Code" (2024), rescaled as the authors' code
        (``base.cautious_mask``), as pytorch-optimizer's ``LaProp(cautious=True)``
    wd : float, default 0; decoupled, scaled by the learning rate, applied after the step.

    Conventions: the authors' code without its ``centered`` and ``amsgrad`` options (not
    implemented). Their weight decay is ``w <- w - wd * w``, not scaled by the learning rate
    (pytorch-optimizer's ``fixed_decay=True``); ours is scaled by it, as AdamW and
    pytorch-optimizer's default (``weight_decouple=True, fixed_decay=False``): under a constant
    rate, their ``wd`` is our ``lr * wd``. pytorch-optimizer 4.1.0's ``LaProp`` (the oracle)
    divides ``sqrt(v + 1e-15) + eps`` by ``sqrt(1 - beta2^t)``, i.e. its epsilon is scaled by
    the bias correction and it adds 1e-15 inside the root; at the default epsilon the two agree
    to ~1e-14 relative (``tests/test_modern_oracles.py`` compares with that 1e-15 removed).

    Example::

        trainer = gluon.Trainer(net.collect_params(), 'gluon_opt.laprop',
                                {'learning_rate': 1e-3, 'cautious': True})
    """
    name = 'laprop'
    label = 'LaProp'
    family = 'adam'
    paper = ('Ziyin, Wang & Ueda, "LaProp: Separating Momentum and Adaptivity in Adam", '
             'arXiv 2020')
    # course MLP, 3 epochs, seed 0, test accuracy: 5e-4 87.3, 1e-3 87.4, 2e-3 87.4,
    # 4e-3 87.0 (%)
    tuned = {'LaProp': {'learning_rate': 1e-3}}
    step_bytes = 7 * 4  # read w, g, m, v; write w, m, v (lr_avg: one element per tensor)
    # cautious: a first pass reads g, m, v for the mask's count
    bench_variants = {'cautious': ({'cautious': True}, (7 + 3) * 4)}
    state_bytes = staticmethod(lambda shape: 4 * (2 * int(np.prod(shape)) + 1))
    oracle = "pytorch-optimizer 4.1.0's LaProp (pytorch_optimizer.LaProp)"
    default_learning_rate = 4e-4
    state_names = ('exp_avg', 'exp_avg_sq', 'lr_avg')
    # lr_avg, one element, stays float32
    low_precision_states = {'exp_avg': 'signed', 'exp_avg_sq': 'unsigned'}
    fused_op = 'gopt_laprop'

    def __init__(self, learning_rate=None, beta1=0.9, beta2=0.999, epsilon=1e-15,
                 cautious=False, **kwargs):
        owner = type(self).__name__
        self.beta1 = check_range(owner, 'beta1', beta1, 0.0, 1.0)
        self.beta2 = check_range(owner, 'beta2', beta2, 0.0, 1.0)
        self.epsilon = check_positive(owner, 'epsilon', epsilon)
        self.cautious = check_bool(owner, 'cautious', cautious)
        if self.cautious:
            self.fused_op = 'gopt_laprop_cautious'  # two passes: the mask's count first
        super(LaProp, self).__init__(learning_rate=learning_rate, **kwargs)

    def low_precision_refusal(self):
        # the cautious kernels count the mask in a first pass over the states: not yet over
        # states stored in low precision
        if self.cautious:
            return 'with cautious=True'
        return super(LaProp, self).low_precision_refusal()

    def init_state(self, weight):
        exp_avg, exp_avg_sq = (nd.zeros(weight.shape, ctx=weight.context, dtype=weight.dtype)
                               for _ in range(2))
        lr_avg = nd.zeros((1,), ctx=weight.context, dtype=weight.dtype)
        return (exp_avg, exp_avg_sq, lr_avg)

    def step(self, weight, grad, state, lr, wd, t):
        exp_avg, exp_avg_sq, lr_avg = state
        exp_avg_sq[:] = self.beta2 * exp_avg_sq + (1 - self.beta2) * nd.square(grad)
        denom = nd.sqrt(exp_avg_sq / (1 - self.beta2 ** t)) + self.epsilon
        lr_avg[:] = self.beta1 * lr_avg + (1 - self.beta1) * lr
        exp_avg[:] = self.beta1 * exp_avg + ((1 - self.beta1) * lr) * (grad / denom)
        # 1 / bias correction = lr / a: a one-element tensor, broadcast
        step_size = lr / lr_avg if lr else nd.ones_like(lr_avg)
        update = nd.broadcast_mul(exp_avg, step_size.reshape((1,) * exp_avg.ndim))
        if self.cautious:
            update = update * cautious_mask(update, grad)
        weight[:] -= update
        decay_weight(weight, lr * wd)

    def fused_attrs(self):
        return {'beta1': self.beta1, 'beta2': self.beta2, 'epsilon': self.epsilon}

    def fused_scalars(self, lr, wd, t):
        return (lr, (1 - self.beta1) * lr, 1 - self.beta2 ** t, 1.0 - lr * wd)
