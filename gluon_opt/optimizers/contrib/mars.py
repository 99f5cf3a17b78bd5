r"""MARS: variance reduction (a scaled gradient correction) in front of AdamW.

Stochastic gradients are noisy; STORM-style variance reduction corrects the fresh gradient
with the change of gradient between the last two points. MARS scales that correction by
``gamma * beta1 / (1 - beta1)``, clips the corrected gradient ``c`` to norm 1 per tensor, and
feeds it to AdamW's moments. This is MARS-AdamW in its approximate form (MARS-approx, the one
the paper trains with): the previous step's gradient, taken at the previous weights on the
previous batch, stands in for the previous weights' gradient on the current batch, so a step
costs one gradient evaluation and the state holds that last gradient.

Tensors of fewer than two dimensions (biases, norms' scales) take plain AdamW with their own
betas unless ``optimize_1d``, as in the authors' code.

Follows the authors' code (AGI-Arena/MARS, ``MARS`` with ``mars_type='mars-adamw'``,
``is_approx=True``) and pytorch-optimizer's ``MARS`` (``mars_type='adamw'``, the oracle of the
tests) where they agree.

Reference: Yuan, Liu, Wu, Zhou & Gu, "MARS: Unleashing the Power of Variance Reduction for
Training Large Models", ICML 2025 (arXiv:2411.10438, 2024).
"""
import math

from mxnet import nd

from ... import kernels
from ..base import (GluonOptOptimizer, check_range, check_positive, check_nonnegative,
                    check_bool, decay_weight, bias_corrections, cautious_mask)
from ..registry import register

__all__ = ['MARS']


def _step_bytes(shape):
    """Bytes one step moves over a float32 tensor of ``shape`` (defaults, optimize_1d=False).
    A MARS tensor's clip needs the norm of c first: read g, g_prev; then read w, g, g_prev, m,
    v and write w, m, v, g_prev. A 1-D tensor's AdamW: read w, g, m, v; write w, m, v, g_prev."""
    n = 1
    for d in shape:
        n *= int(d)
    return (11 if len(shape) >= 2 else 8) * 4 * n


@register
class MARS(GluonOptOptimizer):
    r"""MARS-AdamW (approximate): AdamW on a clipped, variance-reduced gradient.

    Update rule of a tensor of two or more dimensions (:math:`g` the gradient, rescaled and
    clipped; :math:`g_{-}` the previous step's, 0 at the first; :math:`t` the parameter's
    step; :math:`\eta` = ``learning_rate``, :math:`\lambda` = ``wd``, :math:`\gamma` =
    ``gamma``):

    .. math::

        c &= g + \gamma \frac{\beta_1}{1 - \beta_1} (g - g_{-}), \qquad
            c \leftarrow c / \max(\lVert c \rVert, 1) \quad \text{(norm of the tensor)} \\
        m &\leftarrow \beta_1 m + (1 - \beta_1) c, \qquad
        v \leftarrow \beta_2 v + (1 - \beta_2) c^2 \\
        u &= \frac{m / (1 - \beta_1^t)}{\sqrt{v} / \sqrt{1 - \beta_2^t} + \epsilon} \\
        w &\leftarrow w (1 - \eta \lambda) - \eta u, \qquad g_{-} \leftarrow g

    Tensors of fewer than two dimensions, unless ``optimize_1d``: the same with :math:`c = g`
    (plain AdamW), betas ``beta1_1d``/``beta2_1d`` and learning rate
    :math:`\eta \cdot \text{lr\_1d} / \text{learning\_rate}` (a schedule and ``lr_mult`` scale
    both alike). With ``cautious=True`` (Liang et al., 2024) :math:`m` in :math:`u` is
    multiplied by ``cautious_mask(m, g)`` (with the raw gradient :math:`g`, not :math:`c`).

    Parameters
    ----------
    learning_rate : float, default 3e-3
    beta1 : float in [0, 1), default 0.95
    beta2 : float in [0, 1), default 0.99
    gamma : float >= 0, default 0.025 (strength of the gradient correction; 0 is AdamW on the
        clipped gradient)
    epsilon : float > 0, default 1e-8 (added after the bias correction of sqrt(v))
    optimize_1d : bool, default False (True: MARS on every tensor)
    lr_1d : float >= 0 or None, default None (the 1-D tensors' base learning rate; None: the
        same as ``learning_rate``)
    beta1_1d, beta2_1d : float in [0, 1), default 0.9 and 0.95 (the 1-D tensors' AdamW)
    cautious : bool, default False
    wd : float, default 0; decoupled and multiplied by the learning rate (the tensor's own),
        for every tensor.

    Conventions: the authors' code adds epsilon to the bias-corrected root, as here (and as
    MXNet's and torch's Adam); pytorch-optimizer's ``MARS`` adds it before the bias
    correction (``sqrt(v + 1e-15) + eps``, then divided by ``sqrt(1 - beta2^t)``), which
    differs by ``eps * (1/sqrt(1 - beta2^t) - 1)`` in the denominator (the tests align it). Both codes give 1-D tensors a
    weight decay of their own (``weight_decay_1d``, default 0.1); here ``wd`` (with the
    parameter's ``wd_mult``) applies to every tensor: set ``wd_mult`` per parameter to decay
    1-D tensors differently. ``lr_1d`` defaults to ``learning_rate`` (their default is 3e-3,
    the same as their ``lr``'s). "Two or more dimensions" is pytorch-optimizer's test
    (``ndim >= 2``); the authors' code takes exactly two (a 4-D convolution kernel takes
    their 1-D AdamW path). Only the approximate variant (their default ``is_approx=True``):
    the exact one needs a second gradient evaluation per step.

    Example::

        trainer = gluon.Trainer(net.collect_params(), 'gluon_opt.mars',
                                {'learning_rate': 3e-3, 'gamma': 0.025, 'wd': 0.01})
    """
    name = 'mars'
    family = 'adam'
    paper = ('Yuan, Liu, Wu, Zhou & Gu, "MARS: Unleashing the Power of Variance Reduction for '
             'Training Large Models", ICML 2025')
    # best test accuracy of {1e-3, 3e-3, 1e-2} on the course MLP, 3 epochs, seed 0 (87.47,
    # 88.02, 87.44 %), defaults otherwise (the paper's default rate is 3e-3 too)
    tuned = {'MARS': {'learning_rate': 3e-3}}
    bench_hyperparameters = {'learning_rate': 3e-3}
    step_bytes = staticmethod(_step_bytes)
    state_bytes = 3 * 4
    oracle = 'pytorch_optimizer.MARS (mars_type="adamw")'
    default_learning_rate = 3e-3
    state_names = ('exp_avg', 'exp_avg_sq', 'last_grad')
    fused_op = 'gopt_mars'

    def __init__(self, learning_rate=None, beta1=0.95, beta2=0.99, gamma=0.025, epsilon=1e-8,
                 optimize_1d=False, lr_1d=None, beta1_1d=0.9, beta2_1d=0.95, cautious=False,
                 **kwargs):
        owner = type(self).__name__
        self.beta1 = check_range(owner, 'beta1', beta1, 0.0, 1.0)
        self.beta2 = check_range(owner, 'beta2', beta2, 0.0, 1.0)
        self.gamma = check_nonnegative(owner, 'gamma', gamma)
        self.epsilon = check_positive(owner, 'epsilon', epsilon)
        self.optimize_1d = check_bool(owner, 'optimize_1d', optimize_1d)
        self.lr_1d = None if lr_1d is None else check_nonnegative(owner, 'lr_1d', lr_1d)
        self.beta1_1d = check_range(owner, 'beta1_1d', beta1_1d, 0.0, 1.0)
        self.beta2_1d = check_range(owner, 'beta2_1d', beta2_1d, 0.0, 1.0)
        self.cautious = check_bool(owner, 'cautious', cautious)
        super(MARS, self).__init__(learning_rate=learning_rate, **kwargs)
        base = (self.lr_scheduler.base_lr if self.lr_scheduler is not None
                else self.learning_rate)
        if self.lr_1d is None:
            self.lr_1d_factor = 1.0
        elif base > 0:
            self.lr_1d_factor = self.lr_1d / base
        else:
            raise ValueError('%s: lr_1d=%r is invalid with learning_rate=%r; the 1-D tensors '
                             'step with learning_rate * lr_1d / learning_rate: give a '
                             'learning_rate > 0, or lr_1d=None.' % (owner, lr_1d, base))

    def mixed(self, shape):
        """True where a tensor of ``shape`` takes the MARS update, False for plain AdamW."""
        return self.optimize_1d or len(shape) >= 2

    def step(self, weight, grad, state, lr, wd, t):
        exp_avg, exp_avg_sq, last_grad = state
        if self.mixed(weight.shape):
            beta1, beta2 = self.beta1, self.beta2
            c = (grad - last_grad) * (self.gamma * (beta1 / (1.0 - beta1))) + grad
            c = c / nd.maximum(nd.norm(c), 1.0)  # the paper's Clip(c, 1)
        else:
            beta1, beta2, c = self.beta1_1d, self.beta2_1d, grad
            lr = lr * self.lr_1d_factor
        exp_avg[:] = beta1 * exp_avg + (1 - beta1) * c
        exp_avg_sq[:] = beta2 * exp_avg_sq + (1 - beta2) * nd.square(c)
        bc1, bc2 = bias_corrections(beta1, beta2, t)
        momentum = exp_avg * cautious_mask(exp_avg, grad) if self.cautious else exp_avg
        update = (momentum / bc1) / (nd.sqrt(exp_avg_sq) / math.sqrt(bc2) + self.epsilon)
        decay_weight(weight, lr * wd)
        weight[:] -= lr * update
        last_grad[:] = grad

    # -- the fused path: one op for the MARS tensors, one (AdamW) for the 1-D ones ----------
    def fused_attrs(self):
        return {'beta1': self.beta1, 'beta2': self.beta2, 'epsilon': self.epsilon,
                'gamma_coef': self.gamma * (self.beta1 / (1.0 - self.beta1))}

    def fused_scalars(self, lr, wd, t):
        bc1, bc2 = bias_corrections(self.beta1, self.beta2, t)
        return (lr, 1.0 - lr * wd, bc1, math.sqrt(bc2))

    def fused_scalars_1d(self, lr, wd, t):
        lr = lr * self.lr_1d_factor
        bc1, bc2 = bias_corrections(self.beta1_1d, self.beta2_1d, t)
        return (lr, 1.0 - lr * wd, bc1, math.sqrt(bc2))

    def _fused_update(self, items):
        mixed, flat = [], []
        for item in items:
            (mixed if self.mixed(item.weight.shape) else flat).append(item)
        plans = self.__dict__.setdefault('_fused_plans', {})
        grad_attrs = self.kernel_grad_attrs()
        rest = []
        if mixed:
            attrs = dict(self.fused_attrs(), **grad_attrs)
            if not self.cautious:
                rest += kernels.update(self.fused_op, mixed, attrs, self.fused_scalars, plans)
            else:
                # the mask's count needs the updated m, which needs the norm of c: the moments
                # in one call (norm, then m and v), the count and the step in a second
                left = kernels.update('gopt_mars_moments', mixed, attrs, self.fused_scalars,
                                      plans)
                left_ids = set(map(id, left))
                taken = [item for item in mixed if id(item) not in left_ids]
                if taken:
                    untaken = kernels.update('gopt_mars_apply_cautious', taken, attrs,
                                             self.fused_scalars, plans)
                    if untaken:  # both ops take the same items; a half-done step is a bug
                        raise RuntimeError('MARS: gopt_mars_apply_cautious did not take '
                                           'items that gopt_mars_moments took')
                rest += left
        if flat:
            attrs = dict(beta1=self.beta1_1d, beta2=self.beta2_1d, epsilon=self.epsilon,
                         **grad_attrs)
            op_name = 'gopt_mars_1d_cautious' if self.cautious else 'gopt_mars_1d'
            rest += kernels.update(op_name, flat, attrs, self.fused_scalars_1d, plans)
        return rest
