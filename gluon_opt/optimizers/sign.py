"""Sign methods: the update direction is the elementwise sign of a momentum-like average.

Lion (EvoLved Sign Momentum) was found by program search. It keeps a single moving average
``m`` of the gradient (half of Adam's memory) and moves every coordinate by exactly ``lr``
per step, in the direction of the sign of an interpolation between ``m`` and the fresh
gradient. Because the step has a fixed size, Lion wants a learning rate 3-10x smaller than
AdamW's and a weight decay 3-10x larger (the product ``lr * wd`` sets the decay strength).

Follows the paper's Algorithm 2 and the authors' reference (google/automl ``lion``) and
lucidrains/lion-pytorch.

Reference: Chen, Liang, Huang, Real, Wang, Pham, Dong, Luong, Hsieh, Lu & Le, "Symbolic
Discovery of Optimization Algorithms", NeurIPS 2023.
"""
from mxnet import nd

from .base import GluonOptOptimizer, check_range, check_bool, decay_weight, cautious_mask
from .registry import register

__all__ = ['Lion']


@register
class Lion(GluonOptOptimizer):
    r"""Lion: sign of an interpolated momentum, with decoupled weight decay.

    Update rule (:math:`g` the gradient, rescaled and clipped; :math:`\eta` =
    ``learning_rate``, :math:`\lambda` = ``wd``):

    .. math::

        c &\leftarrow \beta_1 m + (1 - \beta_1) g
            \qquad \text{(interpolation used for the step)} \\
        u &= \operatorname{sign}(c), \qquad
            u \leftarrow u \odot \phi \, \frac{n}{\textstyle\sum_i \phi_i + 1}, \;
            \phi = \mathbb{1}[u \odot g > 0] \qquad \text{(cautious only)} \\
        w &\leftarrow w - \eta \left(u + \lambda w\right)
            \qquad \text{(decoupled decay, scaled by } \eta) \\
        m &\leftarrow \beta_2 m + (1 - \beta_2) g
            \qquad \text{(momentum tracked with the slower } \beta_2)

    ``sign(0) = 0``, as ``torch.sign``/``jnp.sign``. There is no bias correction: the step
    has size ``lr`` whatever the magnitude of ``m``.

    Parameters
    ----------
    learning_rate : float, default 1e-4
    beta1 : float in [0, 1), default 0.9 (interpolation for the update)
    beta2 : float in [0, 1), default 0.99 (momentum decay)
    cautious : bool, default False: the cautious mask of Liang et al., "Cautious Optimizers:
        Improving Training with One Line of Code" (2024), rescaled by ``n / (kept + 1)`` as the
        authors' code (``base.cautious_mask``; ``n`` the tensor's size), as
        pytorch-optimizer's ``Lion(cautious=True)``.
    wd : float, default 0; decoupled and multiplied by the learning rate, as in the paper's
        Algorithm 2 and lion-pytorch (``w <- w * (1 - lr * wd)``).

    Conventions: the same as lion-pytorch and optax's ``lion`` (whose ``b1``/``b2`` are these
    ``beta1``/``beta2``). The decay is applied to the weight before the sign step, which is the
    same as the paper's ``w - lr * (sign(c) + wd * w)`` since neither depends on the other.

    Example::

        trainer = gluon.Trainer(net.collect_params(), 'gluon_opt.lion',
                                {'learning_rate': 3e-4, 'wd': 0.1})
    """
    name = 'lion'
    family = 'sign'
    paper = 'Chen et al., "Symbolic Discovery of Optimization Algorithms", NeurIPS 2023'
    # best of {1e-4, 3e-4} (tuned with a plain nd transcription of the paper's update)
    tuned = {'Lion': {'learning_rate': 3e-4}}
    step_bytes = 5 * 4  # read w, g, m; write w, m
    # cautious: a first pass reads g and m for the mask's count (u needs m before its update)
    bench_variants = {'cautious': ({'cautious': True}, (5 + 2) * 4)}
    state_bytes = 4
    oracle = "numpy transcription of the paper's Algorithm 2"
    default_learning_rate = 1e-4
    state_names = ('exp_avg',)
    low_precision_states = {'exp_avg': 'signed'}
    fused_op = 'gopt_lion'

    def __init__(self, learning_rate=None, beta1=0.9, beta2=0.99, cautious=False, **kwargs):
        owner = type(self).__name__
        self.beta1 = check_range(owner, 'beta1', beta1, 0.0, 1.0)
        self.beta2 = check_range(owner, 'beta2', beta2, 0.0, 1.0)
        self.cautious = check_bool(owner, 'cautious', cautious)
        if self.cautious:
            # the mask's count is a per-tensor reduction: a two-pass kernel of its own, so
            # that gopt_lion keeps its single pass
            self.fused_op = 'gopt_lion_cautious'
        super(Lion, self).__init__(learning_rate=learning_rate, **kwargs)

    def low_precision_refusal(self):
        # the cautious kernels count the mask in a first pass over the states: not yet over
        # states stored in low precision
        if self.cautious:
            return 'with cautious=True'
        return super(Lion, self).low_precision_refusal()

    def step(self, weight, grad, state, lr, wd, t):
        exp_avg, = state
        direction = nd.sign(self.beta1 * exp_avg + (1 - self.beta1) * grad)
        if self.cautious:
            direction = direction * cautious_mask(direction, grad)
        decay_weight(weight, lr * wd)
        weight[:] -= lr * direction
        exp_avg[:] = self.beta2 * exp_avg + (1 - self.beta2) * grad

    def fused_attrs(self):
        return {'beta1': self.beta1, 'beta2': self.beta2}

    def fused_scalars(self, lr, wd, t):
        return (lr, 1.0 - lr * wd)
