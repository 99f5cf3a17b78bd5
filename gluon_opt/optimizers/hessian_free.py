r"""Hessian-free optimisation (truncated Newton, Newton-CG) with Levenberg-Marquardt damping.

Needs a closure (see ``gluon_opt.optimizers.closure``): use it through ``gluon_opt.Trainer``
and ``trainer.step(batch_size, closure)``. It treats all trainable parameters as one flat vector,
touches the Hessian only through finite-difference products (``gluon_opt.hvp``) and decides
its line search on the host (a few scalars per evaluation).

Cost per step, ``k`` CG iterations: ``1 + 2k`` evaluations plus the line search; memory
``~5 n`` (the CG vectors) for ``n`` parameters.

References: Martens, "Deep learning via Hessian-free optimization", ICML 2010; Nocedal &
Wright, "Numerical Optimization", 2nd ed., 2006 (Newton-CG: 7.1).
"""
import math

from mxnet import nd

from .base import check_range, check_nonnegative, check_int, check_bool
from .closure import ClosureOptimizer, ArmijoLineSearch, armijo_backtrack, flat_dot
from .registry import register

__all__ = ['HessianFree']


@register
class HessianFree(ClosureOptimizer, ArmijoLineSearch):
    r"""Hessian-free optimisation (truncated Newton / Newton-CG) with Levenberg-Marquardt
    damping.

    Each step approximately solves the damped Newton system by conjugate gradient, touching
    the Hessian only through finite-difference products :math:`Hv` (two gradient evaluations
    each), then backtracks (:math:`\lambda` the damping, :math:`\eta` = ``learning_rate``):

    .. math::

        &\text{solve } (H + \lambda I) d = -g \text{ by CG from } d = 0 \text{ until }
            \lVert r \rVert \le \kappa \lVert g \rVert, \quad
            \kappa = \min(0.5, \sqrt{\lVert g \rVert})
            \quad \text{(superlinear forcing, N\&W 7.1)} \\
        &w \leftarrow w + t d \qquad \text{(Armijo backtracking from } t = \eta) \\
        &\rho = \frac{f(w + d) - f(w)}{g^\top d + \frac{1}{2} d^\top (H + \lambda I) d}
            \qquad (\text{when } t = 1) \\
        &\lambda \leftarrow 1.5 \lambda \ \text{ if } \rho < 1/4, \qquad
            \lambda \leftarrow \tfrac{2}{3} \lambda \ \text{ if } \rho > 3/4

    On non-positive curvature, :math:`p^\top (H + \lambda I) p \le 0`, CG raises
    :math:`\lambda` past it and restarts (``max_restarts`` times), then uses the :math:`d`
    found so far (or :math:`-g` at the start).

    Parameters
    ----------
    learning_rate : float, default 1.0 (first step tried)
    damping : float >= 0, default 1e-3 (initial lambda)
    adapt_damping : bool, default True (Martens' Levenberg-Marquardt rule above)
    max_cg_iter : int >= 1, default 50
    cg_tol : float in (0, 1) or None, default None (the forcing term above)
    max_restarts : int >= 0, default 5 (CG restarts with more damping on negative curvature)
    c1, backtrack, max_backtracks : Armijo line search, defaults 1e-4, 0.5, 30
    wd : float, default 0; L2 added to the objective.

    Memory ``~5n`` (CG vectors); cost ``1 + 2 (CG iterations) + line search`` evaluations.
    Martens (2010) uses the Gauss-Newton matrix, which is never indefinite; this is the plain
    Hessian, and negative curvature is handled by raising the damping.

    Example::

        trainer = gluon_opt.Trainer(net.collect_params(), 'gluon_opt.hessian_free',
                                    {'max_cg_iter': 20})
        loss = trainer.step(batch_size, closure)

    References: Martens, ICML 2010; Nocedal & Wright 2006, Algorithm 7.1.
    """
    name = 'hessian_free'
    label = 'Hessian-free'
    family = 'second_order'
    paper = 'Martens, ICML 2010; Nocedal & Wright 2006 (Newton-CG, Alg. 7.1)'
    state_bytes = 0  # the CG vectors live within a step
    oracle = "the known minima of a parabola and of Rosenbrock's function"
    default_learning_rate = 1.0

    def __init__(self, learning_rate=None, damping=1e-3, adapt_damping=True, max_cg_iter=50,
                 cg_tol=None, max_restarts=5, c1=1e-4, backtrack=0.5, max_backtracks=30,
                 **kwargs):
        owner = type(self).__name__
        self.damping = check_nonnegative(owner, 'damping', damping)
        self.adapt_damping = check_bool(owner, 'adapt_damping', adapt_damping)
        self.max_cg_iter = check_int(owner, 'max_cg_iter', max_cg_iter, 1)
        self.max_restarts = check_int(owner, 'max_restarts', max_restarts, 0)
        self.cg_tol = (None if cg_tol is None
                       else check_range(owner, 'cg_tol', cg_tol, 0.0, 1.0, low_open=True))
        self._check_line_search(c1, backtrack, max_backtracks)
        super(HessianFree, self).__init__(learning_rate=learning_rate, **kwargs)
        self.n_iter = 0
        self.cg_iters = 0
        self.lam = self.damping

    def conjugate_gradient(self, problem, x, g):
        """Returns ``(d, predicted_reduction)`` for ``(H + lambda I) d = -g``.

        Where CG meets a direction ``p`` of non-positive curvature, ``lambda`` is raised past
        it (to ``max(2 lambda, 2 |p.(H + lambda I)p| / p.p)``) and CG restarts, up to
        ``max_restarts`` times; after that the direction found so far (or ``-g``) is used."""
        gnorm = math.sqrt(flat_dot(g, g))
        if gnorm == 0:
            return nd.zeros_like(g), 0.0
        eta = self.cg_tol if self.cg_tol is not None else min(0.5, math.sqrt(gnorm))
        for restart in range(self.max_restarts + 1):
            d = nd.zeros_like(g)
            Hd = nd.zeros_like(g)
            r = -g
            p = r.copy()
            rr = gnorm ** 2
            negative = False
            for j in range(self.max_cg_iter):
                Hp = problem.flat_hvp(x, p) + self.lam * p
                self.cg_iters += 1
                pHp = flat_dot(p, Hp)
                if not pHp > 0 or not math.isfinite(pHp):
                    negative = True
                    break
                alpha = rr / pHp
                d = d + alpha * p
                Hd = Hd + alpha * Hp
                r = r - alpha * Hp
                rr_new = flat_dot(r, r)
                if math.sqrt(rr_new) <= eta * gnorm:
                    break
                p = r + (rr_new / rr) * p
                rr = rr_new
            if not negative or restart == self.max_restarts or not math.isfinite(pHp):
                break
            self.lam = max(2.0 * self.lam, 2.0 * abs(pHp) / max(flat_dot(p, p), 1e-300), 1e-8)
        problem.set_flat(x)
        if negative and j == 0:
            return -g, None  # steepest descent; no model of the reduction
        return d, flat_dot(g, d) + 0.5 * flat_dot(d, Hd)

    def closure_step(self, problem):
        f, g = problem.evaluate_flat()
        x = problem.flat_weights().copy()
        d, predicted = self.conjugate_gradient(problem, x, g)
        gtd = flat_dot(g, d)
        predicted = predicted if predicted is not None else 0.0
        if not gtd < 0:
            return f
        t, f_new, _, ok = armijo_backtrack(problem, x, f, g, d, self.learning_rate, gtd, self.c1,
                                     self.backtrack, self.max_backtracks)
        self.n_iter += 1
        if self.adapt_damping:
            rho = (f_new - f) / predicted if (ok and t == 1.0 and predicted < 0) else 0.0
            if rho < 0.25:
                self.lam = max(self.lam, 1e-8) * 1.5
            elif rho > 0.75:
                self.lam *= 2.0 / 3.0
        return f
