"""ADOPT: Adam that normalises the gradient by the *previous* second moment, then averages it.

Adam's update divides the momentum by a second moment that already contains the current
gradient, which correlates the two and is why Adam can diverge unless beta2 is tuned to the
problem. ADOPT divides the gradient by ``sqrt(v)`` of the previous steps *before* the
momentum, and updates ``v`` afterwards; the paper proves the optimal O(1/sqrt(T)) rate for
any beta2. The first step only initialises ``v <- g^2``: there is nothing yet to normalise by.
The authors' code clips the normalised gradient to ``[-t^(1/4), t^(1/4)]``, which the paper's
analysis does not need but its experiments use; we do the same.

Follows the authors' code (iShohei220/adopt, ``adopt.py``). Reference: Taniguchi, Harada,
Minegishi, Oshima, Jeong, Nagahara, Iiyama, Suzuki, Iwasawa & Matsuo, "ADOPT: Modified Adam
Can Converge with Any beta2 with the Optimal Rate", NeurIPS 2024.
"""
from mxnet import nd

from ..base import (GluonOptOptimizer, check_range, check_positive, check_nonnegative,
                    check_bool, couple_weight_decay, decay_weight)
from ..registry import register

__all__ = ['ADOPT']


@register
class ADOPT(GluonOptOptimizer):
    r"""ADOPT: normalise by the previous second moment, then momentum.

    Update rule (:math:`g` the gradient, rescaled and clipped; :math:`t` the parameter's step;
    :math:`\eta` = ``learning_rate``, :math:`\lambda` = ``wd``, :math:`p` = ``clip_exponent``):

    .. math::

        g &\leftarrow g + \lambda w
            \qquad \text{(coupled; with decoupled\_wd: } w \leftarrow w (1 - \eta \lambda)) \\
        v &\leftarrow g^2 \qquad \text{at } t = 1 \text{ (and nothing else moves)} \\
        \tilde g &= \operatorname{clip}\!\left(\frac{g}{\max(\sqrt{v}, \epsilon)},
                    -t^{p}, t^{p}\right) \qquad (t > 1) \\
        m &\leftarrow \beta_1 m + (1 - \beta_1) \tilde g \\
        w &\leftarrow w - \eta \, m \\
        v &\leftarrow \beta_2 v + (1 - \beta_2) g^2
            \qquad \text{(after the step: } v \text{ never contains the current } g)

    There is no bias correction: ``m`` averages normalised gradients of size ~1 and ``v``
    starts at ``g_1^2``, not at zero.

    Parameters
    ----------
    learning_rate : float, default 0.001
    beta1 : float in [0, 1), default 0.9
    beta2 : float in [0, 1), default 0.9999 (the paper's; any beta2 converges)
    epsilon : float > 0, default 1e-6 (a floor on ``sqrt(v)``, not added to it)
    clip_exponent : float >= 0, default 0.25: the bound ``t^clip_exponent`` of the authors'
        ``clip_lambda = lambda step: step ** 0.25``
    decoupled_wd : bool, default False (the authors' ``decouple``): decay ``w <- w (1 - lr
        wd)`` instead of adding ``wd * w`` to the gradient
    wd : float, default 0.

    Conventions: the authors' code, including the weight decay on the first step (before
    ``v`` is initialised). Their ``clip_lambda`` is any function of the step, or None (no
    clipping); here it is ``t ** clip_exponent`` (a kernel cannot call Python). The oracle,
    pytorch-optimizer 4.1.0's ``ADOPT``, differs in three places, all tested aligned in
    ``tests/test_modern_oracles.py``: its step count, hence the first step that only
    initialises ``v`` and the clipping bound, is per parameter group, not per parameter (a
    parameter that first gets a gradient later skips its initialisation step); it adds the
    coupled decay to ``p.grad`` in place; and it has ``fixed_decay`` (decay by ``wd`` without
    the learning rate), which we do not. ``t`` here is each parameter's own update count, as
    the authors' per-parameter ``state['step']``.

    Example::

        trainer = gluon.Trainer(net.collect_params(), 'gluon_opt.adopt',
                                {'learning_rate': 1e-3})
    """
    name = 'adopt'
    label = 'ADOPT'
    family = 'adam'
    paper = ('Taniguchi et al., "ADOPT: Modified Adam Can Converge with Any beta2 with the '
             'Optimal Rate", NeurIPS 2024')
    # course MLP, 3 epochs, seed 0, test accuracy: 1e-4 84.9, 2.5e-4 86.6, 5e-4 87.3,
    # 1e-3 87.0, 2e-3 87.2, 4e-3 87.2 (%); the top four lie within 0.3 points
    tuned = {'ADOPT': {'learning_rate': 5e-4}}
    step_bytes = 7 * 4  # read w, g, m, v; write w, m, v
    state_bytes = 2 * 4
    oracle = "pytorch-optimizer 4.1.0's ADOPT (pytorch_optimizer.ADOPT)"
    default_learning_rate = 0.001
    state_names = ('mean', 'var')
    fused_op = 'gopt_adopt'

    def __init__(self, learning_rate=None, beta1=0.9, beta2=0.9999, epsilon=1e-6,
                 clip_exponent=0.25, decoupled_wd=False, **kwargs):
        owner = type(self).__name__
        self.beta1 = check_range(owner, 'beta1', beta1, 0.0, 1.0)
        self.beta2 = check_range(owner, 'beta2', beta2, 0.0, 1.0)
        self.epsilon = check_positive(owner, 'epsilon', epsilon)
        self.clip_exponent = check_nonnegative(owner, 'clip_exponent', clip_exponent)
        self.decoupled_wd = check_bool(owner, 'decoupled_wd', decoupled_wd)
        super(ADOPT, self).__init__(learning_rate=learning_rate, **kwargs)

    def clip_bound(self, t):
        """The bound on the normalised gradient at step ``t``: ``t ** clip_exponent``."""
        return float(t) ** self.clip_exponent

    def step(self, weight, grad, state, lr, wd, t):
        if self.decoupled_wd:
            decay_weight(weight, lr * wd)
        else:
            grad = couple_weight_decay(grad, weight, wd)
        mean, var = state
        if t == 1:
            var[:] = nd.square(grad)
            return
        normed = grad / nd.maximum(nd.sqrt(var), self.epsilon)
        bound = self.clip_bound(t)
        # minimum/maximum with scalars, not nd.clip: clip parses its bounds with a float parser
        # that is not correctly rounded (t = 9 gives 1.7320509 for 1.7320508), the scalar ops
        # round them as the kernel does
        normed = nd.maximum(nd.minimum(normed, bound), -bound)
        mean[:] = self.beta1 * mean + (1 - self.beta1) * normed
        weight[:] -= lr * mean
        var[:] = self.beta2 * var + (1 - self.beta2) * nd.square(grad)

    def fused_attrs(self):
        return {'beta1': self.beta1, 'beta2': self.beta2, 'epsilon': self.epsilon}

    def fused_scalars(self, lr, wd, t):
        decay, coupled = (1.0 - lr * wd, 0.0) if self.decoupled_wd else (1.0, wd)
        return (1.0 if t == 1 else 0.0, lr, self.clip_bound(t), decay, coupled)
