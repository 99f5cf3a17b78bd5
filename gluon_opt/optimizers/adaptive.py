"""Per-coordinate adaptive step sizes without a first-moment average: AdaGrad, RMSprop,
AdaDelta.

Each divides the gradient, coordinate by coordinate, by a root of accumulated squared
gradients: AdaGrad by their running sum, RMSprop by an exponential moving average (optionally
centred by the squared mean, and with momentum), AdaDelta by a moving average with the step's
own moving RMS as numerator. All three follow PyTorch's conventions (epsilon outside the square
root for AdaGrad and RMSprop, AdaDelta with a learning rate), which differ from MXNet 1.9.1's
built-ins as each docstring says.

References: Duchi, Hazan & Singer, "Adaptive Subgradient Methods for Online Learning and
Stochastic Optimization", JMLR 2011 (AdaGrad); Tieleman & Hinton, "Lecture 6.5 - RMSProp",
COURSERA: Neural Networks for Machine Learning, 2012 (RMSprop); Graves, "Generating Sequences
With Recurrent Neural Networks", arXiv 2013, eqs. 38-45 (centred RMSprop with momentum);
Zeiler, "ADADELTA: An Adaptive Learning Rate Method", arXiv 2012 (AdaDelta).
"""
from mxnet import nd

from .base import (GluonOptOptimizer, check_range, check_nonnegative, check_positive,
                   check_bool, couple_weight_decay)
from .registry import register

__all__ = ['AdaGrad', 'RMSprop', 'AdaDelta']


@register
class AdaGrad(GluonOptOptimizer):
    r"""AdaGrad: steps scaled by the inverse root of the sum of all past squared gradients.

    Update rule (:math:`g` the gradient, rescaled and clipped; :math:`t` the parameter's step;
    :math:`\eta` = ``learning_rate``, :math:`\delta` = ``lr_decay``, :math:`\lambda` = ``wd``):

    .. math::

        g &\leftarrow g + \lambda w \qquad \text{(coupled L2)} \\
        \eta_t &= \frac{\eta}{1 + (t - 1) \delta} \\
        h &\leftarrow h + g^2 \qquad (h \text{ starts at initial\_accumulator\_value}) \\
        w &\leftarrow w - \eta_t \, \frac{g}{\sqrt{h} + \epsilon}

    Parameters
    ----------
    learning_rate : float, default 0.01
    lr_decay : float >= 0, default 0
    initial_accumulator_value : float >= 0, default 0
    epsilon : float > 0, default 1e-10 (outside the square root)
    wd : float, default 0; coupled (added to the gradient before it is accumulated).

    Conventions: PyTorch's ``Adagrad``. MXNet 1.9.1's built-in ``adagrad`` (registered as
    ``adagrad``; this one is only ``gluon_opt.adagrad``) puts its ``eps`` (default 1e-7)
    *inside* the root, ``g / sqrt(h + eps)``, has no ``lr_decay`` nor initial accumulator,
    and applies ``wd`` outside the rule (``w <- w - lr * (g / sqrt(h + eps) + wd * w)``,
    so the decay term is not accumulated). ONNX's ``Adagrad`` op is this rule with
    ``decay_factor = lr_decay`` and its step counter starting at 0.

    Example::

        trainer = gluon.Trainer(net.collect_params(), 'gluon_opt.adagrad',
                                {'learning_rate': 0.1})
    """
    name = 'adagrad'
    label = 'Adagrad'
    family = 'adaptive'
    paper = 'Duchi, Hazan & Singer, JMLR 2011'
    step_bytes = 5 * 4  # read w, g, h; write w, h
    state_bytes = 4
    mxnet_builtin = 'adagrad'
    torch_class = 'Adagrad'
    oracle = 'torch.optim.Adagrad; ONNX Adagrad'
    default_learning_rate = 0.01
    state_names = ('history',)
    fused_op = 'gopt_adagrad'

    def __init__(self, learning_rate=None, lr_decay=0.0, initial_accumulator_value=0.0,
                 epsilon=1e-10, **kwargs):
        owner = type(self).__name__
        self.lr_decay = check_nonnegative(owner, 'lr_decay', lr_decay)
        self.initial_accumulator_value = check_nonnegative(
            owner, 'initial_accumulator_value', initial_accumulator_value)
        self.epsilon = check_positive(owner, 'epsilon', epsilon)
        super(AdaGrad, self).__init__(learning_rate=learning_rate, **kwargs)

    def init_state(self, weight):
        return (nd.full(weight.shape, self.initial_accumulator_value, ctx=weight.context,
                        dtype=weight.dtype),)

    def step(self, weight, grad, state, lr, wd, t):
        grad = couple_weight_decay(grad, weight, wd)
        history, = state
        history[:] += nd.square(grad)
        clr = lr / (1 + (t - 1) * self.lr_decay)
        weight[:] -= clr * grad / (nd.sqrt(history) + self.epsilon)

    def fused_attrs(self):
        return {'epsilon': self.epsilon}

    def fused_scalars(self, lr, wd, t):
        return (lr / (1 + (t - 1) * self.lr_decay), wd)


@register
class RMSprop(GluonOptOptimizer):
    r"""RMSprop, plain (Tieleman & Hinton) or centred (Graves), with optional momentum.

    Update rule (:math:`g` the gradient, rescaled and clipped; :math:`\eta` =
    ``learning_rate``, :math:`\mu` = ``momentum``, :math:`\lambda` = ``wd``):

    .. math::

        g &\leftarrow g + \lambda w \qquad \text{(coupled L2)} \\
        v &\leftarrow \rho v + (1 - \rho) g^2 \\
        \bar g &\leftarrow \rho \bar g + (1 - \rho) g \qquad \text{(centered only)} \\
        d &= \sqrt{v - \bar g^2} + \epsilon \ \text{ if centered, else } \ \sqrt{v} + \epsilon \\
        b &\leftarrow \mu b + g / d, \quad w \leftarrow w - \eta b \qquad (\mu > 0) \\
        w &\leftarrow w - \eta \, g / d \qquad (\mu = 0)

    Parameters
    ----------
    learning_rate : float, default 0.001 (MXNet's and Hinton's; PyTorch's is 0.01)
    rho : float in [0, 1), default 0.9 (MXNet 1.9.1's ``gamma1``, PyTorch's ``alpha``,
        default 0.99 there)
    momentum : float in [0, 1), default 0 (MXNet 1.9.1's ``gamma2``, which it honours only
        with ``centered=True``)
    epsilon : float > 0, default 1e-8 (outside the square root)
    centered : bool, default False
    wd : float, default 0; coupled.

    Conventions: PyTorch's ``RMSprop`` math. MXNet 1.9.1's ``rmsprop`` puts epsilon *inside*
    the root (``sqrt(v + eps)``, ``sqrt(v - gbar^2 + eps)``), keeps the learning rate inside
    its momentum buffer (``delta <- gamma2 * delta - lr * g / d``, which is ``-lr * b`` while
    the learning rate is constant), and has no momentum without ``centered``. The two agree
    when epsilon is negligible against ``v`` (tests/oracles.py uses that). Newer MXNet names
    the hyperparameters ``rho`` and ``momentum``, as here.

    Example::

        trainer = gluon.Trainer(net.collect_params(), 'gluon_opt.rmsprop',
                                {'learning_rate': 1e-3, 'centered': True, 'momentum': 0.9})
    """
    name = 'rmsprop'
    family = 'adaptive'
    paper = 'Tieleman & Hinton 2012 (lecture 6.5); centred: Graves, arXiv 2013'
    # best of {3e-4, 5e-4, 1e-3}, tuned with MXNet's rmsprop (gamma1=0.99, eps=1e-8) before
    # this one existed
    tuned = {'RMSprop': {'learning_rate': 1e-3}}
    step_bytes = 5 * 4  # read w, g, v; write w, v
    state_bytes = 4  # v (centered adds gbar, momentum a buffer)
    mxnet_builtin = 'rmsprop'
    torch_class = 'RMSprop'
    default_learning_rate = 0.001
    low_precision_states = {'square_avg': 'unsigned', 'grad_avg': 'signed',
                            'momentum': 'signed'}
    fused_op = 'gopt_rmsprop'

    def __init__(self, learning_rate=None, rho=0.9, momentum=0.0, epsilon=1e-8,
                 centered=False, **kwargs):
        owner = type(self).__name__
        self.rho = check_range(owner, 'rho', rho, 0.0, 1.0)
        self.momentum = check_range(owner, 'momentum', momentum, 0.0, 1.0)
        self.epsilon = check_positive(owner, 'epsilon', epsilon)
        self.centered = check_bool(owner, 'centered', centered)
        super(RMSprop, self).__init__(learning_rate=learning_rate, **kwargs)

    def low_precision_refusal(self):
        # v - gbar^2 cancels where the variance is small against v: the states' rounding
        # (0.2-0.7% of each) would then decide the denominator (measured: weights off by 4 lr
        # after 25 steps with int8 states); bitsandbytes refuses centered RMSprop too
        if self.centered:
            return 'with centered=True'
        return super(RMSprop, self).low_precision_refusal()

    @property
    def state_names(self):
        return (('square_avg',) + (('grad_avg',) if self.centered else ())
                + (('momentum',) if self.momentum > 0 else ()))

    def step(self, weight, grad, state, lr, wd, t):
        grad = couple_weight_decay(grad, weight, wd)
        square_avg = state[0]
        square_avg[:] = self.rho * square_avg + (1 - self.rho) * nd.square(grad)
        if self.centered:
            grad_avg = state[1]
            grad_avg[:] = self.rho * grad_avg + (1 - self.rho) * grad
            # v - gbar^2 >= 0 in exact arithmetic; the max only absorbs rounding below zero
            variance = nd.maximum(square_avg - nd.square(grad_avg), 0)
            denom = nd.sqrt(variance) + self.epsilon
        else:
            denom = nd.sqrt(square_avg) + self.epsilon
        if self.momentum > 0:
            buf = state[-1]
            buf[:] = self.momentum * buf + grad / denom
            weight[:] -= lr * buf
        else:
            weight[:] -= lr * grad / denom

    def fused_attrs(self):
        return {'rho': self.rho, 'epsilon': self.epsilon, 'momentum': self.momentum,
                'centered': int(self.centered)}

    def fused_scalars(self, lr, wd, t):
        return (lr, wd)


@register
class AdaDelta(GluonOptOptimizer):
    r"""AdaDelta: steps of the size of the recent steps' RMS over the recent gradients' RMS.

    Update rule (:math:`g` the gradient, rescaled and clipped; :math:`\eta` =
    ``learning_rate``, :math:`\lambda` = ``wd``):

    .. math::

        g &\leftarrow g + \lambda w \qquad \text{(coupled L2)} \\
        v &\leftarrow \rho v + (1 - \rho) g^2 \\
        \Delta &= \frac{\sqrt{u + \epsilon}}{\sqrt{v + \epsilon}} \, g \\
        u &\leftarrow \rho u + (1 - \rho) \Delta^2 \\
        w &\leftarrow w - \eta \Delta

    Parameters
    ----------
    learning_rate : float, default 1.0 (the paper has none: 1.0 is its algorithm)
    rho : float in [0, 1], default 0.9
    epsilon : float > 0, default 1e-6 (inside both roots, as the paper)
    wd : float, default 0; coupled.

    Conventions: PyTorch's ``Adadelta``. MXNet 1.9.1's ``adadelta`` has no learning rate
    (it is ``learning_rate=1`` here), uses ``epsilon=1e-5`` by default and applies ``wd``
    outside the rule (``w <- w - (dx + wd * w)``, dx computed without it).

    Example::

        trainer = gluon.Trainer(net.collect_params(), 'gluon_opt.adadelta',
                                {'learning_rate': 1.0, 'rho': 0.9})
    """
    name = 'adadelta'
    label = 'Adadelta'
    family = 'adaptive'
    paper = 'Zeiler, arXiv 2012'
    step_bytes = 7 * 4  # read w, g, v, u; write w, v, u
    state_bytes = 2 * 4
    mxnet_builtin = 'adadelta'
    torch_class = 'Adadelta'
    default_learning_rate = 1.0
    state_names = ('square_avg', 'acc_delta')
    fused_op = 'gopt_adadelta'

    def __init__(self, learning_rate=None, rho=0.9, epsilon=1e-6, **kwargs):
        owner = type(self).__name__
        self.rho = check_range(owner, 'rho', rho, 0.0, 1.0, high_open=False)
        self.epsilon = check_positive(owner, 'epsilon', epsilon)
        super(AdaDelta, self).__init__(learning_rate=learning_rate, **kwargs)

    def step(self, weight, grad, state, lr, wd, t):
        grad = couple_weight_decay(grad, weight, wd)
        square_avg, acc_delta = state
        square_avg[:] = self.rho * square_avg + (1 - self.rho) * nd.square(grad)
        delta = nd.sqrt(acc_delta + self.epsilon) / nd.sqrt(square_avg + self.epsilon) * grad
        acc_delta[:] = self.rho * acc_delta + (1 - self.rho) * nd.square(delta)
        weight[:] -= lr * delta

    def fused_attrs(self):
        return {'rho': self.rho, 'epsilon': self.epsilon}

    def fused_scalars(self, lr, wd, t):
        return (lr, wd)
