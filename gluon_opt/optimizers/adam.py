"""The Adam family: Adam (with AMSGrad) and AdamW.

Every member keeps Adam's two exponential moving averages, ``m`` of the gradient and ``v`` of
its square, corrects their bias towards zero per parameter (``t`` is the parameter's own update
count) and places epsilon as the paper's Algorithm 1 and PyTorch do: outside the square root,
after bias correction. MXNet's built-in ``adam`` folds the corrections into the learning rate
and adds epsilon to the *uncorrected* ``sqrt(v)``, which differs in the first steps.

References: Kingma & Ba, "Adam: A Method for Stochastic Optimization", ICLR 2015;
Reddi, Kale & Kumar, "On the Convergence of Adam and Beyond", ICLR 2018 (AMSGrad);
Loshchilov & Hutter, "Decoupled Weight Decay Regularization", ICLR 2019 (AdamW).
"""
from mxnet import nd

from .base import (GluonOptOptimizer, register, check_range, check_positive,
                   couple_weight_decay, decay_weight, bias_corrections)

__all__ = ['Adam', 'AdamW']


class _AdamBase(GluonOptOptimizer):
    """Shared hyperparameters and moment updates of the Adam family."""
    family = 'adam'
    default_learning_rate = 0.001

    def __init__(self, learning_rate=None, beta1=0.9, beta2=0.999, epsilon=1e-8,
                 amsgrad=False, **kwargs):
        owner = type(self).__name__
        self.beta1 = check_range(owner, 'beta1', beta1, 0.0, 1.0)
        self.beta2 = check_range(owner, 'beta2', beta2, 0.0, 1.0)
        self.epsilon = check_positive(owner, 'epsilon', epsilon)
        self.amsgrad = bool(amsgrad)
        super(_AdamBase, self).__init__(learning_rate=learning_rate, **kwargs)

    @property
    def state_names(self):
        return ('mean', 'var', 'max_var') if self.amsgrad else ('mean', 'var')

    def update_moments(self, grad, state):
        """``m <- b1*m + (1-b1)*g``, ``v <- b2*v + (1-b2)*g^2`` in place; returns the second
        moment to divide by (the running maximum of ``v`` with AMSGrad)."""
        mean, var = state[0], state[1]
        mean[:] = self.beta1 * mean + (1 - self.beta1) * grad
        var[:] = self.beta2 * var + (1 - self.beta2) * nd.square(grad)
        if self.amsgrad:
            max_var = state[2]
            max_var[:] = nd.maximum(max_var, var)
            return max_var
        return var

    def adam_step(self, weight, grad, state, lr, t):
        """``w <- w - lr * m_hat / (sqrt(v_hat) + eps)`` with the moments updated first."""
        var = self.update_moments(grad, state)
        bc1, bc2 = bias_corrections(self.beta1, self.beta2, t)
        denom = nd.sqrt(var / bc2) + self.epsilon
        weight[:] -= (lr / bc1) * state[0] / denom


@register
class Adam(_AdamBase):
    r"""Adam, optionally with AMSGrad.

    Update rule (``g`` rescaled and clipped, ``t`` the parameter's step)::

        g     <- g + wd * w                      (coupled L2, as torch.optim.Adam)
        m     <- beta1 * m + (1 - beta1) * g
        v     <- beta2 * v + (1 - beta2) * g^2
        v_max <- max(v_max, v)                   (AMSGrad only; v_max replaces v below)
        w     <- w - lr * (m / (1 - beta1^t)) / (sqrt(v / (1 - beta2^t)) + epsilon)

    Parameters
    ----------
    learning_rate : float, default 0.001
    beta1 : float in [0, 1), default 0.9
    beta2 : float in [0, 1), default 0.999
    epsilon : float > 0, default 1e-8 (outside the square root, after bias correction)
    amsgrad : bool, default False
    wd : float, default 0; coupled L2. For decoupled decay use ``gluon_opt.adamw``.

    Conventions: PyTorch's ``Adam``. MXNet's ``adam`` adds epsilon to the uncorrected
    ``sqrt(v)`` (equivalently ``epsilon * sqrt(1 - beta2^t)`` here).

    Example::

        trainer = gluon.Trainer(net.collect_params(), 'gluon_opt.adam', {'learning_rate': 1e-3})
    """
    name = 'adam'
    paper = 'Kingma & Ba, ICLR 2015; AMSGrad: Reddi et al., ICLR 2018'
    fused_op = 'adam'

    def step(self, weight, grad, state, lr, wd, t):
        self.adam_step(weight, couple_weight_decay(grad, weight, wd), state, lr, t)


@register
class AdamW(_AdamBase):
    r"""AdamW: Adam with decoupled weight decay.

    Update rule::

        w     <- w * (1 - lr * wd)                (decoupled decay, before the Adam step)
        m, v  <- Adam's moment updates of g       (g without any wd term)
        w     <- w - lr * m_hat / (sqrt(v_hat) + epsilon)

    Parameters
    ----------
    learning_rate : float, default 0.001
    beta1, beta2, epsilon, amsgrad : as in ``gluon_opt.adam``
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
    fused_op = 'adamw'

    def __init__(self, learning_rate=None, beta1=0.9, beta2=0.999, epsilon=1e-8,
                 amsgrad=False, wd=0.01, **kwargs):
        super(AdamW, self).__init__(learning_rate=learning_rate, beta1=beta1, beta2=beta2,
                                    epsilon=epsilon, amsgrad=amsgrad, wd=wd, **kwargs)

    def step(self, weight, grad, state, lr, wd, t):
        decay_weight(weight, lr * wd)
        self.adam_step(weight, grad, state, lr, t)
