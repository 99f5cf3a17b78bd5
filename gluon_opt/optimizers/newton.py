r"""Newton's method with a modified Hessian and a backtracking line search.

Needs a closure (see ``gluon_opt.optimizers.closure``): use it through ``gluon_opt.Trainer``
and ``trainer.step(batch_size, closure)``. It treats all trainable parameters as one flat vector,
forms the Hessian from finite-difference Hessian-vector products (``gluon_opt.hvp``: MXNet
1.9.1 cannot differentiate twice through Dense/Activation) and decides its line search on the
host (a few scalars per evaluation).

Cost per step, ``n`` parameters: ``2n + 1`` evaluations plus the line search; memory ``n^2``
(the Hessian) and its eigenvectors.

Reference: Nocedal & Wright, "Numerical Optimization", 2nd ed., 2006 (Newton with modified
Hessian: 3.4; line searches: 3.1).
"""
from mxnet import nd

from .base import check_positive, check_int
from .closure import ClosureOptimizer, ArmijoLineSearch, armijo_backtrack, flat_dot
from .registry import register

__all__ = ['Newton']


@register
class Newton(ClosureOptimizer, ArmijoLineSearch):
    r"""Damped Newton's method with a modified Hessian and a backtracking line search.

    Each step forms the Hessian of the loss column by column from finite-difference
    Hessian-vector products (``2n`` gradient evaluations for ``n`` parameters), symmetrises
    it, and solves with eigenvalues bounded away from zero (:math:`\eta` = ``learning_rate``,
    :math:`\beta` = ``backtrack``, :math:`c_1` = ``c1``):

    .. math::

        H &= Q \operatorname{diag}(\lambda) Q^\top, \qquad
            \lambda' = \max(|\lambda|, \text{damping}) \\
        d &= -Q \operatorname{diag}(1 / \lambda') Q^\top g \\
        w &\leftarrow w + s d, \qquad s = \eta \beta^j \text{ for the first } j
            \text{ with } f(w + s d) \le f(w) + c_1 s \, g^\top d

    On a strongly convex problem with ``damping`` below the smallest eigenvalue, the
    modification does nothing and the full step is accepted near the optimum: the error then
    falls quadratically, :math:`e_{k+1} \le C e_k^2` (until the finite-difference Hessian's
    relative error, ~``eps**(2/3)``, makes it linear with that tiny rate). Flipping negative
    eigenvalues (Nocedal & Wright, 3.4) keeps ``d`` a descent direction on non-convex
    problems.

    Only for small models: memory ``n^2`` and ``O(n^3)`` time for the eigendecomposition;
    ``max_params`` refuses larger ones.

    Parameters
    ----------
    learning_rate : float, default 1.0 (the first step tried; 1 is Newton's step)
    damping : float > 0, default 1e-6 (floor on the absolute eigenvalues)
    max_iter : int >= 1, default 1 (Newton iterations per ``trainer.step``)
    c1 : float in (0, 0.5), default 1e-4 (Armijo constant)
    backtrack : float in (0, 1), default 0.5 (step reduction factor)
    max_backtracks : int >= 0, default 30
    max_params : int >= 1, default 4096
    wd : float, default 0; L2 added to the objective (coupled), so also to the Hessian.

    Example::

        trainer = gluon_opt.Trainer(net.collect_params(), 'gluon_opt.newton')
        def closure():
            with autograd.record():
                loss = loss_fn(net(x), y)
            loss.backward()
            return loss
        trainer.step(len(x), closure)

    PyTorch and MXNet have no Newton optimizer. Reference: Nocedal & Wright 2006, 3.3-3.4.
    """
    name = 'newton'
    family = 'second_order'
    paper = 'Nocedal & Wright, Numerical Optimization, 2006 (3.4: modified Newton)'
    state_bytes = 0  # the Hessian lives within a step
    oracle = 'numpy Newton with the analytic Hessian (logistic regression)'
    default_learning_rate = 1.0

    def __init__(self, learning_rate=None, damping=1e-6, max_iter=1, c1=1e-4, backtrack=0.5,
                 max_backtracks=30, max_params=4096, **kwargs):
        owner = type(self).__name__
        self.damping = check_positive(owner, 'damping', damping)
        self.max_iter = check_int(owner, 'max_iter', max_iter, 1)
        self.max_params = check_int(owner, 'max_params', max_params, 1)
        self._check_line_search(c1, backtrack, max_backtracks)
        super(Newton, self).__init__(learning_rate=learning_rate, **kwargs)
        self.n_iter = 0

    def hessian(self, problem, x):
        """The symmetrised finite-difference Hessian at the flat point ``x`` (``n x n``)."""
        n = x.shape[0]
        cols = []
        for i in range(n):
            e = nd.one_hot(nd.array([i], ctx=x.context), n, dtype=x.dtype).reshape((n,))
            cols.append(problem.flat_hvp(x, e).reshape((1, n)))
        H = nd.concat(*cols, dim=0)
        return 0.5 * (H + H.T)

    def direction(self, H, g):
        """``-Q diag(1 / max(|lambda|, damping)) Q^T g`` (MXNet's syevd returns the
        eigenvectors as the rows of ``U``: ``H = U^T diag(lambda) U``)."""
        U, lam = nd.linalg.syevd(H)
        lam = nd.maximum(nd.abs(lam), self.damping)
        return -nd.dot(U.T, nd.dot(U, g) / lam)

    def closure_step(self, problem):
        f, g = problem.evaluate_flat()
        first_loss = f
        if problem.size > self.max_params:
            raise ValueError('%s: the model has %d parameters, more than max_params=%d; the '
                             'Hessian would need %d entries. Use gluon_opt.lbfgs or '
                             'gluon_opt.hessian_free.' % (type(self).__name__, problem.size,
                                                          self.max_params, problem.size ** 2))
        for _ in range(self.max_iter):
            x = problem.flat_weights().copy()
            d = self.direction(self.hessian(problem, x), g)
            gtd = flat_dot(g, d)
            if not gtd < 0:  # zero gradient (or NaN): nothing to do
                problem.set_flat(x)
                break
            t, f, g, ok = armijo_backtrack(problem, x, f, g, d, self.learning_rate, gtd, self.c1,
                                     self.backtrack, self.max_backtracks)
            self.n_iter += 1
            if not ok:
                break
        return first_loss
