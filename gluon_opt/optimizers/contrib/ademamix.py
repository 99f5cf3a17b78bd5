r"""AdEMAMix: Adam with a mixture of two exponential moving averages of the gradient.

Adam's single momentum forgets old gradients within ~1/(1 - beta1) steps. AdEMAMix keeps a
second, much slower average (beta3 = 0.9999: a memory of ~10^4 steps) and adds it, weighted by
``alpha``, to Adam's bias-corrected fast momentum; the denominator is Adam's. Old gradients
stay useful for a long time, and the slow average forgets more slowly than the weights move.
Because the slow average is still near zero at the start and a large ``alpha`` would then
make the first steps unstable, the paper warms ``alpha`` up linearly and ``beta3`` up in log
space (``t_alpha_beta3`` steps).

Follows the paper's Algorithm 1 and the authors' code (apple/ml-ademamix, ``AdEMAMix``), and
pytorch-optimizer's ``AdEMAMix`` (the oracle of the tests) where the two agree.

Reference: Pagliardini, Ablin & Grangier, "The AdEMAMix Optimizer: Better, Faster, Older",
ICLR 2025 (arXiv:2409.03137, 2024).
"""
import math

from mxnet import nd

from ..base import (GluonOptOptimizer, check_range, check_positive, check_nonnegative,
                    check_int, check_bool, decay_weight, bias_corrections, cautious_mask)
from ..registry import register

__all__ = ['AdEMAMix', 'alpha_schedule', 'beta3_schedule']


def alpha_schedule(t, alpha, warmup):
    """The paper's linear warmup of ``alpha`` from 0 over ``warmup`` steps (None: none), for
    the 1-based step ``t``: ``min(t * alpha / warmup, alpha)``."""
    return alpha if warmup is None else min(t * alpha / warmup, alpha)


def beta3_schedule(t, beta1, beta3, warmup):
    r"""The paper's warmup of ``beta3`` from ``beta1`` over ``warmup`` steps (None: none),
    linear in the half-life ``ln(0.5) / ln(beta)``. The closed form below is
    pytorch-optimizer's; the authors' ``linear_hl_warmup_scheduler`` interpolates the half-life
    itself, which is the same function (up to the 1e-8 it adds to beta inside the logarithm):

    .. math::

        \beta_3(t) = \min\left(\exp\frac{\ln\beta_1 \ln\beta_3}
            {(1 - t/T)\ln\beta_3 + (t/T)\ln\beta_1}, \ \beta_3\right)
    """
    if warmup is None:
        return beta3
    s = t / warmup
    log1, log3 = math.log(beta1), math.log(beta3)
    return min(math.exp(log1 * log3 / ((1.0 - s) * log3 + s * log1)), beta3)


@register
class AdEMAMix(GluonOptOptimizer):
    r"""AdEMAMix: Adam's fast momentum plus a slow momentum, with decoupled weight decay.

    Update rule (:math:`g` the gradient, rescaled and clipped; :math:`t` the parameter's step;
    :math:`\eta` = ``learning_rate``, :math:`\lambda` = ``wd``; :math:`\alpha_t`,
    :math:`\beta_{3,t}` the warmed-up ``alpha`` and ``beta3``, see ``alpha_schedule`` and
    ``beta3_schedule``, constant without ``t_alpha_beta3``):

    .. math::

        m_1 &\leftarrow \beta_1 m_1 + (1 - \beta_1) g \qquad \text{(fast EMA)} \\
        m_2 &\leftarrow \beta_{3,t} m_2 + (1 - \beta_{3,t}) g \qquad \text{(slow EMA)} \\
        v &\leftarrow \beta_2 v + (1 - \beta_2) g^2 \\
        u &= \frac{m_1 / (1 - \beta_1^t) + \alpha_t m_2}
                  {\sqrt{v} / \sqrt{1 - \beta_2^t} + \epsilon} \\
        w &\leftarrow w (1 - \eta \lambda) - \eta u

    With ``cautious=True`` (Liang et al., 2024) the fast term :math:`m_1` is multiplied by
    ``cautious_mask(m_1, g)`` (zero where :math:`m_1 g \le 0`, the kept coordinates rescaled by
    :math:`n / (\sum\phi + 1)`) before the bias correction; the slow term is not masked.

    Parameters
    ----------
    learning_rate : float, default 1e-3
    beta1 : float in [0, 1), default 0.9 (fast EMA)
    beta2 : float in [0, 1), default 0.999 (second moment)
    beta3 : float in [0, 1), default 0.9999 (slow EMA)
    alpha : float >= 0, default 5.0 (weight of the slow EMA)
    t_alpha_beta3 : int >= 1 or None, default None (warmup steps of alpha and beta3; the paper
        sets it to the training length; None: no warmup). Needs beta1 > 0 and beta3 > 0 (the
        schedule takes their logarithms).
    epsilon : float > 0, default 1e-8 (added after the bias correction of sqrt(v))
    cautious : bool, default False
    wd : float, default 0; decoupled and multiplied by the learning rate, as AdamW.

    Conventions: the paper's Algorithm 1 and the authors' code: the slow EMA is not
    bias-corrected, epsilon is added to the bias-corrected root, the decay is decoupled
    (``w <- w - lr * (u + wd * w)`` there, the same arithmetic). pytorch-optimizer's
    ``AdEMAMix`` differs by default: its ``weight_decay`` is coupled L2 (added to the gradient)
    unless ``weight_decouple=True``, and its ``betas`` are ``(beta1, beta2, beta3)`` in that
    order. Its cautious variant masks the fast EMA only, as here; the cautious rescaling is
    ``cautious_mask``'s (the authors' ``n / (sum + 1)``). The authors' code warms ``alpha``
    and ``beta3`` up over two lengths of its own (``alpha_warmup``, ``beta3_warmup``); here one
    ``t_alpha_beta3`` serves both, as the paper's :math:`T_{\alpha,\beta_3}` and
    pytorch-optimizer's. Its default ``alpha`` is 2; 5 here, as pytorch-optimizer's.

    Example::

        trainer = gluon.Trainer(net.collect_params(), 'gluon_opt.ademamix',
                                {'learning_rate': 1e-3, 'alpha': 5.0,
                                 't_alpha_beta3': 10000, 'wd': 0.01})
    """
    name = 'ademamix'
    family = 'adam'
    paper = ('Pagliardini, Ablin & Grangier, "The AdEMAMix Optimizer: Better, Faster, Older", '
             'ICLR 2025')
    # best test accuracy of {3e-4, 1e-3, 3e-3, 1e-2} on the course MLP, 3 epochs, seed 0
    # (86.77, 87.66, 87.85, 86.10 %), defaults otherwise (alpha 5, beta3 0.9999, no warmup:
    # 3 epochs are ~1300 steps, a tenth of the slow EMA's memory)
    tuned = {'AdEMAMix': {'learning_rate': 3e-3}}
    bench_hyperparameters = {'learning_rate': 1e-3}
    step_bytes = 9 * 4  # read w, g, m1, m2, v; write w, m1, m2, v
    # cautious (the fast EMA masked): a first pass reads g and m1 for the mask's count
    bench_variants = {'cautious': ({'cautious': True}, (9 + 2) * 4)}
    state_bytes = 3 * 4
    oracle = 'pytorch_optimizer.AdEMAMix (weight_decouple=True)'
    default_learning_rate = 1e-3
    state_names = ('exp_avg', 'exp_avg_sq', 'exp_avg_slow')
    low_precision_states = {'exp_avg': 'signed', 'exp_avg_sq': 'unsigned',
                            'exp_avg_slow': 'signed'}
    fused_op = 'gopt_ademamix'

    def __init__(self, learning_rate=None, beta1=0.9, beta2=0.999, beta3=0.9999, alpha=5.0,
                 t_alpha_beta3=None, epsilon=1e-8, cautious=False, **kwargs):
        owner = type(self).__name__
        self.beta1 = check_range(owner, 'beta1', beta1, 0.0, 1.0)
        self.beta2 = check_range(owner, 'beta2', beta2, 0.0, 1.0)
        self.beta3 = check_range(owner, 'beta3', beta3, 0.0, 1.0)
        self.alpha = check_nonnegative(owner, 'alpha', alpha)
        self.t_alpha_beta3 = (None if t_alpha_beta3 is None
                              else check_int(owner, 't_alpha_beta3', t_alpha_beta3, 1))
        if self.t_alpha_beta3 is not None:
            for name in ('beta1', 'beta3'):
                if getattr(self, name) == 0.0:
                    raise ValueError('%s: %s=0.0 is invalid with t_alpha_beta3=%r; expected a '
                                     'number in (0, 1) (the beta3 warmup takes its logarithm).'
                                     % (owner, name, t_alpha_beta3))
        self.epsilon = check_positive(owner, 'epsilon', epsilon)
        self.cautious = check_bool(owner, 'cautious', cautious)
        super(AdEMAMix, self).__init__(learning_rate=learning_rate, **kwargs)

    def low_precision_refusal(self):
        # the cautious kernels count the mask in a first pass over the states: not yet over
        # states stored in low precision
        if self.cautious:
            return 'with cautious=True'
        return super(AdEMAMix, self).low_precision_refusal()

    def schedules(self, t):
        """``(alpha_t, beta3_t)`` at the 1-based step ``t``."""
        return (alpha_schedule(t, self.alpha, self.t_alpha_beta3),
                beta3_schedule(t, self.beta1, self.beta3, self.t_alpha_beta3))

    def step(self, weight, grad, state, lr, wd, t):
        exp_avg, exp_avg_sq, exp_avg_slow = state
        alpha, beta3 = self.schedules(t)
        exp_avg[:] = self.beta1 * exp_avg + (1 - self.beta1) * grad
        exp_avg_sq[:] = self.beta2 * exp_avg_sq + (1 - self.beta2) * nd.square(grad)
        exp_avg_slow[:] = beta3 * exp_avg_slow + (1 - beta3) * grad
        bc1, bc2 = bias_corrections(self.beta1, self.beta2, t)
        fast = exp_avg * cautious_mask(exp_avg, grad) if self.cautious else exp_avg
        update = ((fast / bc1 + alpha * exp_avg_slow)
                  / (nd.sqrt(exp_avg_sq) / math.sqrt(bc2) + self.epsilon))
        decay_weight(weight, lr * wd)
        weight[:] -= lr * update

    def fused_attrs(self):
        return {'beta1': self.beta1, 'beta2': self.beta2, 'epsilon': self.epsilon}

    def fused_scalars(self, lr, wd, t):
        alpha, beta3 = self.schedules(t)
        bc1, bc2 = bias_corrections(self.beta1, self.beta2, t)
        return (lr, 1.0 - lr * wd, bc1, math.sqrt(bc2), alpha, beta3, 1.0 - beta3)

    def _fused_update(self, items):
        # the cautious rule needs the mask's count before the update: its own op, with a
        # counting pass (the op of the record stays the plain one)
        return self._fused_rule_update(self.fused_op + ('_cautious' if self.cautious else ''),
                                       items)
