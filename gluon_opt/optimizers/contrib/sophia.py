r"""Sophia: a clipped, preconditioned momentum with a diagonal curvature estimate.

Needs a closure (see ``gluon_opt.optimizers.closure``): use it through ``gluon_opt.Trainer``
and ``trainer.step(batch_size, closure)``. A per-tensor diagonal method: nothing is copied to
the host. The curvature is Hutchinson's estimate of the Hessian's diagonal from
finite-difference Hessian-vector products (``gluon_opt.hvp``).

Cost: one evaluation per step plus two every ``update_interval`` steps; memory ``2 n``.

References: Liu, Li, Hall, Liang & Ma, "Sophia: A Scalable Stochastic Second-order Optimizer
for Language Model Pre-training", ICLR 2024 (arXiv 2023); Hutchinson, "A stochastic estimator
of the trace of the influence matrix for Laplacian smoothing splines", 1989.
"""
from mxnet import nd

from ..base import check_range, check_positive, check_int, decay_weight
from ..closure import ClosureOptimizer
from ..registry import register

__all__ = ['Sophia']


@register
class Sophia(ClosureOptimizer):
    r"""Sophia-H: a clipped diagonal-curvature method with Hutchinson's estimator.

    Every ``update_interval`` steps it estimates the Hessian's diagonal with one random probe
    :math:`u \sim N(0, I)` and a finite-difference Hessian-vector product (Hutchinson, 1989:
    :math:`E[u \odot H u] = \operatorname{diag}(H)`), and takes a clipped, preconditioned
    momentum step (:math:`\eta` = ``learning_rate``, :math:`\lambda` = ``wd``):

    .. math::

        m &\leftarrow \beta_1 m + (1 - \beta_1) g \\
        h &\leftarrow \beta_2 h + (1 - \beta_2) \, u \odot (H u)
            \qquad \text{(every update\_interval steps)} \\
        w &\leftarrow w (1 - \eta \lambda) \qquad \text{(decoupled weight decay)} \\
        w &\leftarrow w - \eta \operatorname{clip}\left(\frac{m}{\max(\rho h, \epsilon)},
            -1, 1\right)

    Clipping bounds every coordinate's step by ``lr`` and makes negative or noisy curvature
    estimates harmless (where ``h <= 0`` the step is ``lr * sign(m)``).

    Parameters
    ----------
    learning_rate : float, default 1e-3
    beta1 : float in [0, 1), default 0.965
    beta2 : float in [0, 1), default 0.99
    rho : float > 0, default 0.04 (gamma in the paper)
    epsilon : float > 0, default 1e-12
    update_interval : int >= 1, default 10 (k in the paper)
    wd : float, default 0.1 (decoupled, as in the paper's code)

    Cost: one gradient per step plus two more every ``update_interval`` steps; memory ``2n``.
    Gradient rescaling, ``clip_gradient`` and the Trainer's ``clip_global_norm`` apply to
    ``g`` (not to the curvature probe).

    Conventions: the paper's Algorithm 3 (Sophia-H), ``max(rho h, epsilon)`` in the
    denominator; the authors' code for Sophia-G divides by ``rho * batch_size * h`` instead
    (the Gauss-Newton estimate scales with the batch). No Sophia in PyTorch or MXNet.

    Example::

        trainer = gluon_opt.Trainer(net.collect_params(), 'gluon_opt.sophia',
                                    {'learning_rate': 1e-3})
        loss = trainer.step(batch_size, closure)

    Reference: Liu, Li, Hall, Liang & Ma, "Sophia", arXiv 2023 / ICLR 2024.
    """
    name = 'sophia'
    family = 'second_order'
    paper = 'Liu, Li, Hall, Liang & Ma, arXiv 2023 (ICLR 2024)'
    state_bytes = 2 * 4
    oracle = ("the analytic Hessian diagonal (Hutchinson's estimate); the known minima of a "
              "parabola and of Rosenbrock's function")
    default_learning_rate = 1e-3
    exact_gradient = False
    state_names = ('mean', 'hessian')

    def __init__(self, learning_rate=None, beta1=0.965, beta2=0.99, rho=0.04, epsilon=1e-12,
                 update_interval=10, wd=0.1, **kwargs):
        owner = type(self).__name__
        self.beta1 = check_range(owner, 'beta1', beta1, 0.0, 1.0)
        self.beta2 = check_range(owner, 'beta2', beta2, 0.0, 1.0)
        self.rho = check_positive(owner, 'rho', rho)
        self.epsilon = check_positive(owner, 'epsilon', epsilon)
        self.update_interval = check_int(owner, 'update_interval', update_interval, 1)
        super(Sophia, self).__init__(learning_rate=learning_rate, wd=wd, **kwargs)
        self.states = {}   # index -> (mean, hessian), on the parameter's first context

    def _state(self, index, weight):
        if index not in self.states:
            self.states[index] = self.init_state(weight)
        mean, hess = self.states[index]
        if mean.context != weight.context:  # loaded from a file saved on another context
            self.states[index] = (mean.as_in_context(weight.context),
                                  hess.as_in_context(weight.context))
        return self.states[index]

    def closure_step(self, problem):
        loss, grads = problem.evaluate(with_wd=False)  # decoupled decay below
        indices = problem.indices
        self._update_count(indices)
        weights = problem.weights()
        t = self._index_update_count[indices[0]]
        if (t - 1 - self.begin_num_update) % self.update_interval == 0:
            probes = [nd.random.normal(shape=w.shape, ctx=w.context, dtype=w.dtype)
                      for w in weights]
            hvps = problem.hvp(probes, with_wd=False)
            for idx, w, u, hu in zip(indices, weights, probes, hvps):
                hess = self._state(idx, w)[1]
                hess[:] = self.beta2 * hess + (1 - self.beta2) * u * hu
        lrs = self._get_lrs(indices)
        wds = self._get_wds(indices)
        new = []
        for idx, w, g, lr, wd in zip(indices, weights, grads, lrs, wds):
            w = w.copy()
            self.step(w, self.prepare_grad(g), self._state(idx, w), lr, wd, t)
            new.append(w)
        problem.set_weights(new)
        return loss

    def prepare_grad(self, grad):
        # the problem already rescaled the gradient; only elementwise clipping remains
        if self.clip_gradient is not None:
            grad = nd.clip(grad, -self.clip_gradient, self.clip_gradient)
        return grad

    def step(self, weight, grad, state, lr, wd, t):
        mean, hess = state
        mean[:] = self.beta1 * mean + (1 - self.beta1) * grad
        decay_weight(weight, lr * wd)
        ratio = mean / nd.maximum(self.rho * hess, self.epsilon)
        weight[:] -= lr * nd.clip(ratio, -1.0, 1.0)
