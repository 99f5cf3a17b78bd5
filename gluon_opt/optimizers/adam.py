"""The Adam family: Adam (with AMSGrad), AdamW, Adamax, NAdam, RAdam and AdaBelief.

Every member keeps Adam's exponential moving average ``m`` of the gradient and a second
statistic (``v`` of its square; Adamax an infinity norm; AdaBelief the squared deviation of ``g``
from ``m``), corrects their bias towards zero per parameter (``t`` is the parameter's own update
count) and places epsilon as the paper's Algorithm 1 and PyTorch do: outside the square root,
after bias correction (RAdam, following PyTorch, adds it to the uncorrected ``sqrt(v)``).
MXNet's built-in ``adam`` folds the corrections into the learning rate and adds epsilon to the
*uncorrected* ``sqrt(v)``, which differs in the first steps.

References: Kingma & Ba, "Adam: A Method for Stochastic Optimization", ICLR 2015 (Adam, and
Adamax in its section 7.1); Reddi, Kale & Kumar, "On the Convergence of Adam and Beyond",
ICLR 2018 (AMSGrad); Loshchilov & Hutter, "Decoupled Weight Decay Regularization", ICLR 2019
(AdamW); Dozat, "Incorporating Nesterov Momentum into Adam", ICLR 2016 workshop (NAdam);
Liu et al., "On the Variance of the Adaptive Learning Rate and Beyond", ICLR 2020 (RAdam);
Zhuang et al., "AdaBelief Optimizer: Adapting Stepsizes by the Belief in Observed Gradients",
NeurIPS 2020 (AdaBelief, code: github.com/juntang-zhuang/Adabelief-Optimizer).
"""
import math

import numpy as np
from mxnet import nd

from .base import (GluonOptOptimizer, check_range, check_positive, check_bool,
                   check_nonnegative, couple_weight_decay, decay_weight, bias_corrections,
                   cautious_mask)
from .registry import register

__all__ = ['Adam', 'AdamW', 'Adamax', 'NAdam', 'RAdam', 'AdaBelief']


class _AdamBase(GluonOptOptimizer):
    """Shared hyperparameters (beta1, beta2, epsilon) and moment updates of the Adam family."""
    family = 'adam'
    # read w, g and the two moments, write w and the moments (NAdam's one-element mu_product
    # and AMSGrad's third state aside)
    step_bytes = 7 * 4
    state_bytes = 2 * 4
    default_learning_rate = 0.001
    state_names = ('mean', 'var')
    amsgrad = False
    #: members with a ``decoupled_wd`` option set it in ``__init__``
    decoupled_wd = False
    #: members with a ``cautious`` option (Adam, AdamW) set it in ``__init__``
    cautious = False

    def __init__(self, learning_rate=None, beta1=0.9, beta2=0.999, epsilon=1e-8, **kwargs):
        owner = type(self).__name__
        self.beta1 = check_range(owner, 'beta1', beta1, 0.0, 1.0)
        self.beta2 = check_range(owner, 'beta2', beta2, 0.0, 1.0)
        self.epsilon = check_positive(owner, 'epsilon', epsilon)
        super(_AdamBase, self).__init__(learning_rate=learning_rate, **kwargs)

    def apply_weight_decay(self, weight, grad, lr, wd):
        """Decoupled (``w <- w*(1 - lr*wd)``, returns ``grad``) or coupled (returns
        ``g + wd*w``) weight decay, as ``self.decoupled_wd`` says."""
        if self.decoupled_wd:
            decay_weight(weight, lr * wd)
            return grad
        return couple_weight_decay(grad, weight, wd)

    def update_mean(self, grad, state):
        """``m <- b1*m + (1-b1)*g`` in place; returns ``m``."""
        mean = state[0]
        mean[:] = self.beta1 * mean + (1 - self.beta1) * grad
        return mean

    def update_moments(self, grad, state):
        """``m <- b1*m + (1-b1)*g``, ``v <- b2*v + (1-b2)*g^2`` in place; returns the second
        moment to divide by (the running maximum of ``v`` with AMSGrad)."""
        self.update_mean(grad, state)
        var = state[1]
        var[:] = self.beta2 * var + (1 - self.beta2) * nd.square(grad)
        return self.amsgrad_max(var, state)

    def amsgrad_max(self, var, state):
        """With AMSGrad, ``v_max <- max(v_max, v)`` in place and returns ``v_max``; else ``v``."""
        if self.amsgrad:
            max_var = state[2]
            max_var[:] = nd.maximum(max_var, var)
            return max_var
        return var

    def adam_step(self, weight, grad, state, lr, t):
        """``w <- w - lr * m_hat / (sqrt(v_hat) + eps)`` with the moments updated first; with
        ``cautious``, the update masked by its sign agreement with ``grad`` (the gradient the
        moments took, so with Adam's coupled L2 term)."""
        var = self.update_moments(grad, state)
        bc1, bc2 = bias_corrections(self.beta1, self.beta2, t)
        denom = nd.sqrt(var / bc2) + self.epsilon
        update = (lr / bc1) * state[0] / denom
        if self.cautious:
            update = update * cautious_mask(update, grad)
        weight[:] -= update

    def fused_attrs(self):
        return {'beta1': self.beta1, 'beta2': self.beta2, 'epsilon': self.epsilon}

    def fused_decay(self, lr, wd):
        """The kernels' ``(decay factor, coupled wd)``: ``(1 - lr*wd, 0)`` with decoupled weight
        decay (``apply_weight_decay``'s ``decay_weight``), ``(1, wd)`` with coupled."""
        if self.decoupled_wd:
            return (1.0 - lr * wd, 0.0)
        return (1.0, wd)


class _AMSGradBase(_AdamBase):
    """The members with an ``amsgrad`` option (a third state, the running maximum)."""

    def __init__(self, learning_rate=None, beta1=0.9, beta2=0.999, epsilon=1e-8,
                 amsgrad=False, **kwargs):
        owner = type(self).__name__
        self.amsgrad = check_bool(owner, 'amsgrad', amsgrad)
        super(_AMSGradBase, self).__init__(learning_rate=learning_rate, beta1=beta1,
                                           beta2=beta2, epsilon=epsilon, **kwargs)

    @property
    def state_names(self):
        return ('mean', 'var', 'max_var') if self.amsgrad else ('mean', 'var')


class _CautiousAdamBase(_AMSGradBase):
    """Adam and AdamW: ``cautious=True`` masks the update (Liang et al., 2024), through a
    kernel of its own (the mask's count is a per-tensor reduction), so that ``gopt_adam``
    keeps its single pass when it is off."""
    # the mask's count must be complete before any weight is written: a first pass reads g, m,
    # v (or writes m, v and the second reads them again), then Adam's pass
    bench_variants = {'cautious': ({'cautious': True}, (7 + 3) * 4)}
    low_precision_states = {'mean': 'signed', 'var': 'unsigned', 'max_var': 'unsigned'}

    def __init__(self, learning_rate=None, beta1=0.9, beta2=0.999, epsilon=1e-8,
                 amsgrad=False, cautious=False, **kwargs):
        self.cautious = check_bool(type(self).__name__, 'cautious', cautious)
        if self.cautious:
            self.fused_op = 'gopt_adam_cautious'
        super(_CautiousAdamBase, self).__init__(learning_rate=learning_rate, beta1=beta1,
                                                beta2=beta2, epsilon=epsilon, amsgrad=amsgrad,
                                                **kwargs)

    def low_precision_refusal(self):
        # the cautious kernels count the mask in a first pass over the states: not yet over
        # states stored in low precision
        if self.cautious:
            return 'with cautious=True'
        return super(_CautiousAdamBase, self).low_precision_refusal()


@register
class Adam(_CautiousAdamBase):
    r"""Adam, optionally with AMSGrad and the cautious mask.

    Update rule (:math:`g` the gradient, rescaled and clipped; :math:`t` the parameter's step;
    :math:`\eta` = ``learning_rate``, :math:`\lambda` = ``wd``):

    .. math::

        g &\leftarrow g + \lambda w \qquad \text{(coupled L2, as torch.optim.Adam)} \\
        m &\leftarrow \beta_1 m + (1 - \beta_1) g \\
        v &\leftarrow \beta_2 v + (1 - \beta_2) g^2 \\
        v_{\max} &\leftarrow \max(v_{\max}, v)
            \qquad \text{(AMSGrad only; } v_{\max} \text{ replaces } v \text{ below)} \\
        u &= \eta \, \frac{m / (1 - \beta_1^t)}{\sqrt{v / (1 - \beta_2^t)} + \epsilon} \\
        u &\leftarrow u \odot \phi \, \frac{n}{\textstyle\sum_i \phi_i + 1}, \quad
            \phi = \mathbb{1}[u \odot g > 0]
            \qquad \text{(cautious only; } n \text{ the tensor's size)} \\
        w &\leftarrow w - u

    Parameters
    ----------
    learning_rate : float, default 0.001
    beta1 : float in [0, 1), default 0.9
    beta2 : float in [0, 1), default 0.999
    epsilon : float > 0, default 1e-8 (outside the square root, after bias correction)
    amsgrad : bool, default False
    cautious : bool, default False: the cautious mask of Liang et al., "Cautious Optimizers:
        Improving Training with One Line of Code" (2024), rescaled as the authors' code
        (``base.cautious_mask``); ``g`` in the mask is the gradient with the L2 term.
    wd : float, default 0; coupled L2. For decoupled decay use ``gluon_opt.adamw``.

    Conventions: PyTorch's ``Adam``. MXNet's ``adam`` adds epsilon to the uncorrected
    ``sqrt(v)`` (equivalently ``epsilon * sqrt(1 - beta2^t)`` here).

    Example::

        trainer = gluon.Trainer(net.collect_params(), 'gluon_opt.adam', {'learning_rate': 1e-3})
    """
    name = 'adam'
    paper = 'Kingma & Ba, ICLR 2015; AMSGrad: Reddi et al., ICLR 2018'
    tuned = {'Adam': {'learning_rate': 1e-3}}  # the usual rate: 2e-3 scored within 0.2 points
    mxnet_builtin = 'adam'
    torch_class = 'Adam'
    fused_op = 'gopt_adam'

    def step(self, weight, grad, state, lr, wd, t):
        self.adam_step(weight, couple_weight_decay(grad, weight, wd), state, lr, t)

    def fused_scalars(self, lr, wd, t):
        bc1, bc2 = bias_corrections(self.beta1, self.beta2, t)
        return (lr / bc1, bc2, wd, 1.0)


@register
class AdamW(_CautiousAdamBase):
    r"""AdamW: Adam with decoupled weight decay.

    Update rule (:math:`\eta` = ``learning_rate``, :math:`\lambda` = ``wd``; :math:`\hat m`,
    :math:`\hat v` the bias-corrected moments, as in ``gluon_opt.adam``):

    .. math::

        w &\leftarrow w (1 - \eta \lambda) \qquad \text{(decoupled decay, before the Adam step)} \\
        m, v &\leftarrow \text{Adam's moment updates of } g
            \qquad (g \text{ without any weight-decay term}) \\
        w &\leftarrow w - \eta \, \frac{\hat m}{\sqrt{\hat v} + \epsilon}
            \qquad \text{(cautious: the step masked as in } \texttt{gluon\_opt.adam})

    Parameters
    ----------
    learning_rate : float, default 0.001
    beta1, beta2, epsilon, amsgrad, cautious : as in ``gluon_opt.adam`` (the cautious mask
        compares with the raw gradient: the decay is not part of the masked step, as in the
        authors' C-Optim AdamW)
    wd : float, default 0.01 (PyTorch's AdamW default)

    Conventions: PyTorch's ``AdamW``: the decay is scaled by the learning rate (``lr * wd``,
    so it follows a schedule), unlike the paper's separate schedule multiplier ``eta_t * wd``.
    MXNet 1.9.1 has no AdamW outside ``contrib``.

    Example::

        trainer = gluon.Trainer(net.collect_params(), 'gluon_opt.adamw',
                                {'learning_rate': 1e-3, 'wd': 0.05})
    """
    name = 'adamw'
    paper = 'Loshchilov & Hutter, ICLR 2019'
    tuned = {'AdamW': {'learning_rate': 1e-3, 'wd': 0.01}}  # as Adam
    bench_hyperparameters = {'learning_rate': 1e-3, 'wd': 0.01}
    torch_class = 'AdamW'
    fused_op = 'gopt_adam'

    def __init__(self, learning_rate=None, beta1=0.9, beta2=0.999, epsilon=1e-8,
                 amsgrad=False, cautious=False, wd=0.01, **kwargs):
        super(AdamW, self).__init__(learning_rate=learning_rate, beta1=beta1, beta2=beta2,
                                    epsilon=epsilon, amsgrad=amsgrad, cautious=cautious,
                                    wd=wd, **kwargs)

    def step(self, weight, grad, state, lr, wd, t):
        decay_weight(weight, lr * wd)
        self.adam_step(weight, grad, state, lr, t)

    def fused_scalars(self, lr, wd, t):
        bc1, bc2 = bias_corrections(self.beta1, self.beta2, t)
        return (lr / bc1, bc2, 0.0, 1.0 - lr * wd)


@register
class Adamax(_AdamBase):
    r"""Adamax: Adam with the infinity norm in place of the second moment.

    Update rule (:math:`g` the gradient, rescaled and clipped; :math:`t` the parameter's step;
    :math:`\eta` = ``learning_rate``, :math:`\lambda` = ``wd``):

    .. math::

        g &\leftarrow g + \lambda w \qquad \text{(coupled L2, as torch.optim.Adamax)} \\
        m &\leftarrow \beta_1 m + (1 - \beta_1) g \\
        u &\leftarrow \max(\beta_2 u, |g| + \epsilon) \\
        w &\leftarrow w - \frac{\eta}{1 - \beta_1^t} \, \frac{m}{u}

    :math:`u` needs no bias correction (Kingma & Ba, section 7.1).

    Parameters
    ----------
    learning_rate : float, default 0.002 (the paper's, PyTorch's and MXNet's)
    beta1 : float in [0, 1), default 0.9
    beta2 : float in [0, 1), default 0.999
    epsilon : float > 0, default 1e-8 (added to ``|g|`` inside the maximum, as PyTorch)
    wd : float, default 0; coupled L2.

    Conventions: PyTorch's ``Adamax``. The paper and MXNet's ``adamax`` have no epsilon
    (``u <- max(beta2*u, |g|)``), so a zero gradient from the first step on divides 0 by 0.

    Example::

        trainer = gluon.Trainer(net.collect_params(), 'gluon_opt.adamax',
                                {'learning_rate': 2e-3})
    """
    name = 'adamax'
    paper = 'Kingma & Ba, ICLR 2015 (section 7.1)'
    mxnet_builtin = 'adamax'
    torch_class = 'Adamax'
    default_learning_rate = 0.002
    state_names = ('mean', 'inf_norm')
    fused_op = 'gopt_adamax'

    def step(self, weight, grad, state, lr, wd, t):
        grad = couple_weight_decay(grad, weight, wd)
        mean = self.update_mean(grad, state)
        inf_norm = state[1]
        inf_norm[:] = nd.maximum(self.beta2 * inf_norm, nd.abs(grad) + self.epsilon)
        weight[:] -= (lr / (1 - self.beta1 ** t)) * mean / inf_norm

    def fused_scalars(self, lr, wd, t):
        return (1.0, wd, lr / (1 - self.beta1 ** t))


@register
class NAdam(_AdamBase):
    r"""NAdam: Adam with Nesterov momentum and a warming momentum schedule.

    Update rule (:math:`t` the parameter's step, :math:`\psi` = ``schedule_decay``,
    :math:`\eta` = ``learning_rate``, :math:`\lambda` = ``wd``):

    .. math::

        g &\leftarrow g + \lambda w
            \qquad \text{(coupled; with decoupled\_wd: } w \leftarrow w (1 - \eta \lambda)) \\
        \mu_t &= \beta_1 \left(1 - 0.5 \cdot 0.96^{t \psi}\right)
            \qquad (\mu_{t+1} \text{ likewise}) \\
        P &\leftarrow P \mu_t \qquad (P = \textstyle\prod_{i \le t} \mu_i \text{, a state}) \\
        m &\leftarrow \beta_1 m + (1 - \beta_1) g \\
        v &\leftarrow \beta_2 v + (1 - \beta_2) g^2 \\
        d &= \sqrt{v / (1 - \beta_2^t)} + \epsilon \\
        w &\leftarrow w - \eta \, \frac{1 - \mu_t}{1 - P} \, \frac{g}{d}
            - \eta \, \frac{\mu_{t+1}}{1 - P \mu_{t+1}} \, \frac{m}{d}

    Parameters
    ----------
    learning_rate : float, default 0.001 (MXNet's ``nadam``; PyTorch's ``NAdam`` uses 0.002)
    beta1 : float in [0, 1), default 0.9
    beta2 : float in [0, 1), default 0.999
    epsilon : float > 0, default 1e-8 (outside the square root, after bias correction)
    schedule_decay : float >= 0, default 0.004 (MXNet's name; PyTorch's ``momentum_decay``)
    decoupled_wd : bool, default False (PyTorch's ``decoupled_weight_decay``, "NAdamW")
    wd : float, default 0.

    Conventions: PyTorch's ``NAdam``. The product of the ``mu``'s is kept per parameter, as
    the state ``mu_product`` (a one-element tensor on the weight's context, like PyTorch's
    scalar tensor). MXNet 1.9.1's ``nadam`` keeps one ``m_schedule`` on the optimizer and
    multiplies it on *every* update call, of any parameter: with ``n`` parameters it advances
    ``n`` times per iteration, so each parameter's correction depends on how many others there
    are and in which order they are updated (a bug). MXNet also adds wd before clipping.

    Example::

        trainer = gluon.Trainer(net.collect_params(), 'gluon_opt.nadam',
                                {'learning_rate': 2e-3})
    """
    name = 'nadam'
    paper = 'Dozat, ICLR 2016 workshop'
    state_bytes = staticmethod(lambda shape: 4 * (2 * int(np.prod(shape)) + 1))  # + mu_product
    mxnet_builtin = 'nadam'
    torch_class = 'NAdam'
    state_names = ('mean', 'var', 'mu_product')
    fused_op = 'gopt_nadam'

    def __init__(self, learning_rate=None, beta1=0.9, beta2=0.999, epsilon=1e-8,
                 schedule_decay=0.004, decoupled_wd=False, **kwargs):
        owner = type(self).__name__
        self.schedule_decay = check_nonnegative(owner, 'schedule_decay', schedule_decay)
        self.decoupled_wd = check_bool(owner, 'decoupled_wd', decoupled_wd)
        super(NAdam, self).__init__(learning_rate=learning_rate, beta1=beta1, beta2=beta2,
                                    epsilon=epsilon, **kwargs)

    def init_state(self, weight):
        mean, var = super(NAdam, self).init_state(weight)[:2]
        mu_product = nd.ones((1,), ctx=weight.context, dtype=weight.dtype)
        return (mean, var, mu_product)

    def momentum_at(self, t):
        """``mu_t = beta1 * (1 - 0.5 * 0.96^(t * schedule_decay))``."""
        return self.beta1 * (1.0 - 0.5 * 0.96 ** (t * self.schedule_decay))

    def step(self, weight, grad, state, lr, wd, t):
        grad = self.apply_weight_decay(weight, grad, lr, wd)
        mu, mu_next = self.momentum_at(t), self.momentum_at(t + 1)
        mu_product = state[2]
        mu_product[:] = mu_product * mu
        var = self.update_moments(grad, state)
        denom = nd.sqrt(var / (1 - self.beta2 ** t)) + self.epsilon
        # the coefficients are one-element tensors (they involve the state): broadcast them
        grad_coef = lr * (1 - mu) / (1 - mu_product)
        mean_coef = lr * mu_next / (1 - mu_product * mu_next)
        weight[:] -= (nd.broadcast_mul(grad / denom, grad_coef)
                      + nd.broadcast_mul(state[0] / denom, mean_coef))

    def fused_scalars(self, lr, wd, t):
        mu, mu_next = self.momentum_at(t), self.momentum_at(t + 1)
        return self.fused_decay(lr, wd) + (mu, lr * (1 - mu), lr * mu_next, mu_next,
                                           1 - self.beta2 ** t)


@register
class RAdam(_AdamBase):
    r"""RAdam: Adam with the variance of the adaptive learning rate rectified.

    Update rule (:math:`t` the parameter's step, :math:`\eta` = ``learning_rate``,
    :math:`\lambda` = ``wd``):

    .. math::

        g &\leftarrow g + \lambda w
            \qquad \text{(coupled; with decoupled\_wd: } w \leftarrow w (1 - \eta \lambda)) \\
        m, v &\leftarrow \text{Adam's moment updates of } g \\
        \rho_\infty &= \frac{2}{1 - \beta_2} - 1, \qquad
            \rho_t = \rho_\infty - \frac{2 t \beta_2^t}{1 - \beta_2^t} \\
        r_t &= \sqrt{\frac{(\rho_t - 4)(\rho_t - 2) \rho_\infty}
                          {(\rho_\infty - 4)(\rho_\infty - 2) \rho_t}} \\
        w &\leftarrow w - \eta \, r_t \, \frac{m}{1 - \beta_1^t} \,
            \frac{\sqrt{1 - \beta_2^t}}{\sqrt{v} + \epsilon}
            \qquad \text{if } \rho_t > 5 \\
        w &\leftarrow w - \eta \, \frac{m}{1 - \beta_1^t}
            \qquad \text{otherwise (variance intractable: SGD with momentum)}

    :math:`\rho_t` and :math:`r_t` depend on :math:`t` only: they are Python scalars, no
    device work.

    Parameters
    ----------
    learning_rate : float, default 0.001
    beta1 : float in [0, 1), default 0.9
    beta2 : float in [0, 1), default 0.999
    epsilon : float > 0, default 1e-8 (added to the *uncorrected* ``sqrt(v)``, as PyTorch)
    decoupled_wd : bool, default False (PyTorch's ``decoupled_weight_decay``)
    wd : float, default 0.

    Conventions: PyTorch's ``RAdam`` (threshold 5, as in PyTorch and the authors' code; the
    paper's Algorithm 2 uses 4). MXNet 1.9.1 has no RAdam.

    Example::

        trainer = gluon.Trainer(net.collect_params(), 'gluon_opt.radam',
                                {'learning_rate': 1e-3})
    """
    name = 'radam'
    paper = 'Liu et al., ICLR 2020'
    torch_class = 'RAdam'
    fused_op = 'gopt_radam'

    def __init__(self, learning_rate=None, beta1=0.9, beta2=0.999, epsilon=1e-8,
                 decoupled_wd=False, **kwargs):
        owner = type(self).__name__
        self.decoupled_wd = check_bool(owner, 'decoupled_wd', decoupled_wd)
        super(RAdam, self).__init__(learning_rate=learning_rate, beta1=beta1, beta2=beta2,
                                    epsilon=epsilon, **kwargs)

    def rectification(self, t):
        """The rectification factor ``r_t``, or None while ``rho_t <= 5``."""
        beta2 = self.beta2
        rho_inf = 2.0 / (1.0 - beta2) - 1.0
        rho_t = rho_inf - 2.0 * t * beta2 ** t / (1.0 - beta2 ** t)
        if rho_t <= 5.0:
            return None
        return math.sqrt((rho_t - 4) * (rho_t - 2) * rho_inf
                         / ((rho_inf - 4) * (rho_inf - 2) * rho_t))

    def step(self, weight, grad, state, lr, wd, t):
        grad = self.apply_weight_decay(weight, grad, lr, wd)
        var = self.update_moments(grad, state)
        bc1, bc2 = bias_corrections(self.beta1, self.beta2, t)
        rect = self.rectification(t)
        if rect is None:
            weight[:] -= (lr / bc1) * state[0]
        else:
            weight[:] -= (lr * rect * math.sqrt(bc2) / bc1) * state[0] / (
                nd.sqrt(var) + self.epsilon)

    def fused_scalars(self, lr, wd, t):
        bc1, bc2 = bias_corrections(self.beta1, self.beta2, t)
        rect = self.rectification(t)
        if rect is None:
            return self.fused_decay(lr, wd) + (0.0, lr / bc1)
        return self.fused_decay(lr, wd) + (1.0, lr * rect * math.sqrt(bc2) / bc1)


@register
class AdaBelief(_AMSGradBase):
    r"""AdaBelief: Adam whose step is scaled by the belief in the gradient, the variance of
    ``g`` around its moving average ``m`` rather than its second moment.

    Update rule (:math:`t` the parameter's step, :math:`\eta` = ``learning_rate``,
    :math:`\lambda` = ``wd``; Zhuang et al., Algorithm 2):

    .. math::

        w &\leftarrow w (1 - \eta \lambda)
            \qquad \text{(decoupled\_wd=True; else } g \leftarrow g + \lambda w) \\
        m &\leftarrow \beta_1 m + (1 - \beta_1) g \\
        s &\leftarrow \beta_2 s + (1 - \beta_2) (g - m)^2 + \epsilon \\
        s_{\max} &\leftarrow \max(s_{\max}, s)
            \qquad \text{(AMSGrad only; } s_{\max} \text{ replaces } s \text{ below)} \\
        w &\leftarrow w - \eta \, \frac{m / (1 - \beta_1^t)}{\sqrt{s / (1 - \beta_2^t)} + \epsilon}

    Epsilon enters twice: added to ``s`` every step (so the state ``var`` holds it) and
    outside the square root, as in the paper and the official code.

    Parameters
    ----------
    learning_rate : float, default 0.001
    beta1 : float in [0, 1), default 0.9
    beta2 : float in [0, 1), default 0.999
    epsilon : float > 0, default 1e-16 (the official code's default; inside ``s`` it plays
        the part of Adam's 1e-8 outside the root)
    amsgrad : bool, default False
    decoupled_wd : bool, default True (the official code's ``weight_decouple=True``: AdamW's
        decay ``lr * wd``); False adds ``wd * w`` to the gradient.
    wd : float, default 0.

    Conventions: the official ``adabelief-pytorch`` 0.2 with ``fixed_decay=False`` and
    ``rectify=False``; its default ``rectify=True`` (RAdam's rectification on top) is not
    implemented here. PyTorch and MXNet have no AdaBelief.

    Example::

        trainer = gluon.Trainer(net.collect_params(), 'gluon_opt.adabelief',
                                {'learning_rate': 1e-3, 'wd': 1e-2})
    """
    name = 'adabelief'
    paper = 'Zhuang et al., NeurIPS 2020'
    low_precision_states = {'mean': 'signed', 'var': 'unsigned', 'max_var': 'unsigned'}
    oracle = 'numpy transcription of the official adabelief-pytorch 0.2'
    fused_op = 'gopt_adabelief'

    def __init__(self, learning_rate=None, beta1=0.9, beta2=0.999, epsilon=1e-16,
                 amsgrad=False, decoupled_wd=True, **kwargs):
        owner = type(self).__name__
        self.decoupled_wd = check_bool(owner, 'decoupled_wd', decoupled_wd)
        super(AdaBelief, self).__init__(learning_rate=learning_rate, beta1=beta1,
                                        beta2=beta2, epsilon=epsilon, amsgrad=amsgrad,
                                        **kwargs)

    def step(self, weight, grad, state, lr, wd, t):
        grad = self.apply_weight_decay(weight, grad, lr, wd)
        mean = self.update_mean(grad, state)
        belief = state[1]
        belief[:] = (self.beta2 * belief + (1 - self.beta2) * nd.square(grad - mean)
                     + self.epsilon)
        belief = self.amsgrad_max(belief, state)
        bc1, bc2 = bias_corrections(self.beta1, self.beta2, t)
        weight[:] -= (lr / bc1) * mean / (nd.sqrt(belief / bc2) + self.epsilon)

    def fused_scalars(self, lr, wd, t):
        bc1, bc2 = bias_corrections(self.beta1, self.beta2, t)
        return self.fused_decay(lr, wd) + (lr / bc1, bc2)
