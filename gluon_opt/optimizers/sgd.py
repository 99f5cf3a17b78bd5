"""Stochastic gradient descent with momentum, dampening and Nesterov momentum.

Follows PyTorch's ``torch.optim.SGD`` conventions (so results match it step for step), which
differ from MXNet's ``sgd``/``nag`` in where the learning rate enters the momentum buffer.

References: Robbins & Monro, "A Stochastic Approximation Method", 1951; Polyak, "Some methods
of speeding up the convergence of iteration methods", 1964; Sutskever, Martens, Dahl & Hinton,
"On the importance of initialization and momentum in deep learning", ICML 2013.
"""
from mxnet import nd

from .base import GluonOptOptimizer, check_range, check_bool, couple_weight_decay
from .registry import register

__all__ = ['SGD']


@register
class SGD(GluonOptOptimizer):
    r"""SGD with optional (heavy-ball or Nesterov) momentum and dampening.

    Update rule for step :math:`t` (:math:`g` the gradient, rescaled and clipped;
    :math:`\eta` = ``learning_rate``, :math:`\mu` = ``momentum``, :math:`\tau` = ``dampening``,
    :math:`\lambda` = ``wd``):

    .. math::

        g &\leftarrow g + \lambda w \qquad \text{(coupled weight decay, L2)} \\
        b_t &\leftarrow g \ \text{ if } t = 1, \ \text{ else } \ \mu b_{t-1} + (1 - \tau) g
            \qquad \text{(momentum buffer)} \\
        d &\leftarrow g + \mu b_t \ \text{ with nesterov, else } \ b_t \\
        w &\leftarrow w - \eta d

    With ``momentum=0`` this is plain (minibatch) gradient descent, ``w <- w - lr * g``.

    Parameters
    ----------
    learning_rate : float, default 0.01
    momentum : float in [0, 1), default 0
    dampening : float in [0, 1], default 0
    nesterov : bool, default False (needs momentum > 0 and dampening = 0, as in PyTorch)
    wd : float, default 0; coupled (added to the gradient).

    Conventions: PyTorch's. MXNet's ``sgd`` keeps ``m <- momentum*m - lr*g`` (the learning
    rate inside the buffer), which differs from this whenever the learning rate changes, and
    has no dampening; MXNet's ``nag`` is a different Nesterov formulation.

    Example::

        trainer = gluon.Trainer(net.collect_params(), 'gluon_opt.sgd',
                                {'learning_rate': 0.1, 'momentum': 0.9, 'nesterov': True})
    """
    name = 'sgd'
    family = 'sgd'
    paper = 'Robbins & Monro 1951; Polyak 1964; Sutskever et al., ICML 2013 (Nesterov)'
    # best of a grid: plain {0.1, 0.2}, momentum 0.9 and Nesterov {0.01, 0.02, 0.05}
    tuned = {'SGD': {'learning_rate': 0.2},
             'Momentum': {'learning_rate': 0.05, 'momentum': 0.9},
             'Nesterov': {'learning_rate': 0.05, 'momentum': 0.9, 'nesterov': True}}
    bench_hyperparameters = {'learning_rate': 0.01, 'momentum': 0.9}
    step_bytes = 5 * 4  # read w, g, b; write w, b
    state_bytes = 0  # the momentum buffer only with momentum > 0 (4 bytes)
    mxnet_builtin = 'sgd'
    torch_class = 'SGD'
    default_learning_rate = 0.01
    low_precision_states = {'momentum': 'signed'}
    fused_op = 'gopt_sgd'

    def __init__(self, learning_rate=None, momentum=0.0, dampening=0.0, nesterov=False,
                 **kwargs):
        owner = type(self).__name__
        self.momentum = check_range(owner, 'momentum', momentum, 0.0, 1.0)
        self.dampening = check_range(owner, 'dampening', dampening, 0.0, 1.0, high_open=False)
        self.nesterov = check_bool(owner, 'nesterov', nesterov)
        if self.nesterov and (self.momentum <= 0 or self.dampening != 0):
            raise ValueError('%s: nesterov=True needs momentum > 0 and dampening = 0 '
                             '(got momentum=%r, dampening=%r).' % (owner, momentum, dampening))
        super(SGD, self).__init__(learning_rate=learning_rate, **kwargs)

    @property
    def state_names(self):
        return ('momentum',) if self.momentum > 0 else ()

    def step(self, weight, grad, state, lr, wd, t):
        grad = couple_weight_decay(grad, weight, wd)
        if self.momentum > 0:
            buf, = state
            if t == self.begin_num_update + 1:  # first update: the buffer starts at g
                buf[:] = grad
            else:
                buf[:] = self.momentum * buf + (1 - self.dampening) * grad
            direction = grad + self.momentum * buf if self.nesterov else buf
        else:
            direction = grad
        weight[:] -= lr * direction

    def fused_attrs(self):
        return {'momentum': self.momentum, 'dampening': self.dampening,
                'nesterov': int(self.nesterov)}

    def fused_scalars(self, lr, wd, t):
        return (lr, wd, 1.0 if t == self.begin_num_update + 1 else 0.0)
