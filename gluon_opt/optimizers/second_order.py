r"""Second-order methods: Newton's method, L-BFGS, Hessian-free (Newton-CG), and Sophia.

All four need a closure (see ``gluon_opt.optimizers.closure``): use them through
``gluon_opt.Trainer`` and ``trainer.step(batch_size, closure)``. Newton, L-BFGS and Newton-CG
treat all trainable parameters as one flat vector and decide their line searches on the host
(a few scalars per evaluation); Sophia is a per-tensor diagonal method and syncs nothing.

Curvature comes from finite differences of gradients (``gluon_opt.hvp``): MXNet 1.9.1 cannot
differentiate twice through Dense/Activation.

Cost per step, ``n`` parameters, ``m`` L-BFGS history, ``k`` CG iterations (``E`` = one
forward+backward pass over the batch):

==========  ===========================  ==================================
method      evaluations per step         memory beyond the weights
==========  ===========================  ==================================
Newton      ``2n + 1 + line search``     ``n^2`` (the Hessian) + eigenvectors
L-BFGS      ``1 + line search`` per iter ``2 m n`` (curvature pairs)
Newton-CG   ``1 + 2k + line search``     ``~5 n`` (CG vectors)
Sophia      ``1 + 2/update_interval``    ``2 n`` (momentum, diagonal)
==========  ===========================  ==================================

References: Nocedal & Wright, "Numerical Optimization", 2nd ed., 2006 (Newton with modified
Hessian: 3.4; line searches: 3.1, 3.5; L-BFGS: 7.2; Newton-CG: 7.1); Liu & Nocedal, "On the
limited memory BFGS method for large scale optimization", Math. Prog. 1989; Martens, "Deep
learning via Hessian-free optimization", ICML 2010; Liu, Li, Hall, Liang & Ma, "Sophia: A
Scalable Stochastic Second-order Optimizer for Language Model Pre-training", ICLR 2024
(arXiv 2023); Hutchinson, "A stochastic estimator of the trace of the influence matrix", 1989.
L-BFGS and its strong-Wolfe line search are transcribed from ``torch.optim.LBFGS`` (which
follows Schmidt's minFunc), so the two take the same steps.
"""
import math

import numpy as np
import mxnet as mx
from mxnet import nd

from .base import (register, check_range, check_positive, check_nonnegative, check_int,
                   check_choice, check_bool, decay_weight)
from .closure import ClosureOptimizer
from ..hvp import global_norm

__all__ = ['Newton', 'LBFGS', 'HessianFree', 'Sophia']


def _dot(a, b):
    return float(nd.dot(a, b).asscalar())


def _backtrack(problem, x0, f0, g0, d, t, gtd, c1, factor, max_backtracks):
    """Armijo backtracking from step ``t``: the first ``t * factor**j`` with
    ``f(x0 + t d) <= f0 + c1 t g.d``. Returns ``(t, f, flat_grad, accepted)``; the model is
    left at the accepted point, or at ``x0`` when no step was accepted."""
    for _ in range(max_backtracks + 1):
        f, g = problem.evaluate_flat(x0 + t * d)
        if f <= f0 + c1 * t * gtd and math.isfinite(f):
            return t, f, g, True
        t *= factor
    problem.set_flat(x0)
    return 0.0, f0, g0, False


class _LineSearchMixin(object):
    def _check_line_search(self, c1, backtrack, max_backtracks):
        owner = type(self).__name__
        self.c1 = check_range(owner, 'c1', c1, 0.0, 0.5, low_open=True)
        self.backtrack = check_range(owner, 'backtrack', backtrack, 0.0, 1.0, low_open=True)
        self.max_backtracks = check_int(owner, 'max_backtracks', max_backtracks, 0)


@register
class Newton(ClosureOptimizer, _LineSearchMixin):
    r"""Damped Newton's method with a modified Hessian and a backtracking line search.

    Each step forms the Hessian of the loss column by column from finite-difference
    Hessian-vector products (``2n`` gradient evaluations for ``n`` parameters), symmetrises
    it, and solves with eigenvalues bounded away from zero::

        H = Q diag(lambda) Q^T,      lambda' = max(|lambda|, damping)
        d = -Q diag(1 / lambda') Q^T g
        w <- w + t d,    t = lr * backtrack^j, the first with f(w + t d) <= f(w) + c1 t g.d

    On a strongly convex problem with ``damping`` below the smallest eigenvalue, the
    modification does nothing and the full step is accepted near the optimum: the error then
    falls quadratically, ``e_{k+1} <= C e_k^2`` (until the finite-difference Hessian's
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
            gtd = _dot(g, d)
            if not gtd < 0:  # zero gradient (or NaN): nothing to do
                problem.set_flat(x)
                break
            t, f, g, ok = _backtrack(problem, x, f, g, d, self.learning_rate, gtd, self.c1,
                                     self.backtrack, self.max_backtracks)
            self.n_iter += 1
            if not ok:
                break
        return first_loss


@register
class LBFGS(ClosureOptimizer):
    r"""L-BFGS with an optional strong-Wolfe line search, as ``torch.optim.LBFGS``.

    Keeps the last ``history_size`` pairs ``s = w_{k+1} - w_k``, ``y = g_{k+1} - g_k`` (only
    those with ``y.s > 1e-10``) and computes ``d = -H_k g`` by the two-loop recursion, with
    ``H_0 = (y.s / y.y) I``::

        q <- -g;  for i newest..oldest: a_i = rho_i s_i.q,  q <- q - a_i y_i
        r <- H_0 q;  for i oldest..newest: b = rho_i y_i.r,  r <- r + (a_i - b) s_i
        w <- w + t r

    The step ``t`` is ``lr`` (the very first: ``min(1, 1/|g|_1) lr``), or the strong-Wolfe
    line search's (``c1 = 1e-4``, ``c2 = 0.9``, cubic interpolation) with
    ``line_search_fn='strong_wolfe'``. Up to ``max_iter`` iterations (``max_eval``
    evaluations) per ``trainer.step``; it stops early when ``max|g| <= tolerance_grad``, or
    the step or the loss change falls below ``tolerance_change``.

    Parameters (torch.optim.LBFGS's names and defaults)
    ----------
    learning_rate : float, default 1.0 (``lr``)
    max_iter : int >= 1, default 20
    max_eval : int >= 1 or None, default ``max_iter * 5 // 4``
    tolerance_grad : float >= 0, default 1e-7
    tolerance_change : float >= 0, default 1e-9
    history_size : int >= 1, default 100
    line_search_fn : None or 'strong_wolfe', default None
    wd : float, default 0; L2 added to the objective (PyTorch's LBFGS has none).

    Conventions: PyTorch's, transcribed operation for operation, so both take the same
    iterates and evaluation counts (up to rounding). Memory: ``2 * history_size`` vectors of
    the model's size. ``func_evals`` and ``n_iter`` count, as in PyTorch's state. The
    history is laid out in the Trainer's parameter order: as for every Gluon trainer state,
    ``load_states`` needs the parameters in the same order (a ``ParameterDict`` is sorted by
    name, so pass a list when the names differ between the runs).

    Example::

        trainer = gluon_opt.Trainer(net.collect_params(), 'gluon_opt.lbfgs',
                                    {'history_size': 10, 'line_search_fn': 'strong_wolfe'})
        loss = trainer.step(batch_size, closure)

    Reference: Liu & Nocedal, Math. Programming 45, 1989; Nocedal & Wright 2006, 7.2 and 3.5.
    """
    name = 'lbfgs'
    family = 'second_order'
    paper = 'Liu & Nocedal, Mathematical Programming, 1989'
    default_learning_rate = 1.0

    def __init__(self, learning_rate=None, max_iter=20, max_eval=None, tolerance_grad=1e-7,
                 tolerance_change=1e-9, history_size=100, line_search_fn=None, **kwargs):
        owner = type(self).__name__
        self.max_iter = check_int(owner, 'max_iter', max_iter, 1)
        self.max_eval = (self.max_iter * 5 // 4 if max_eval is None
                         else check_int(owner, 'max_eval', max_eval, 1))
        self.tolerance_grad = check_nonnegative(owner, 'tolerance_grad', tolerance_grad)
        self.tolerance_change = check_nonnegative(owner, 'tolerance_change', tolerance_change)
        self.history_size = check_int(owner, 'history_size', history_size, 1)
        self.line_search_fn = check_choice(owner, 'line_search_fn', line_search_fn,
                                           (None, 'strong_wolfe'))
        super(LBFGS, self).__init__(learning_rate=learning_rate, **kwargs)
        self.func_evals = 0
        self.n_iter = 0
        self.d = self.t = self.H_diag = self.prev_flat_grad = self.prev_loss = None
        self.old_dirs, self.old_stps, self.ro = [], [], []

    def closure_step(self, problem):
        lr = self.learning_rate
        orig_loss, flat_grad = problem.evaluate_flat()
        loss = orig_loss
        current_evals = 1
        self.func_evals += 1
        if nd.max(nd.abs(flat_grad)).asscalar() <= self.tolerance_grad:
            return orig_loss
        ctx = flat_grad.context
        # state saved on another context (load_states) follows the parameters
        move = (lambda a: a.as_in_context(ctx) if a is not None else None)
        d, t, H_diag = move(self.d), self.t, self.H_diag
        old_dirs = [move(a) for a in self.old_dirs]
        old_stps = [move(a) for a in self.old_stps]
        ro = list(self.ro)
        prev_flat_grad, prev_loss = move(self.prev_flat_grad), self.prev_loss

        n_iter = 0
        while n_iter < self.max_iter:
            n_iter += 1
            self.n_iter += 1
            if self.n_iter == 1:
                d = -flat_grad
                old_dirs, old_stps, ro = [], [], []
                H_diag = 1.0
            else:
                y = flat_grad - prev_flat_grad
                s = d * t
                ys = _dot(y, s)
                if ys > 1e-10:
                    if len(old_dirs) == self.history_size:
                        old_dirs.pop(0)
                        old_stps.pop(0)
                        ro.pop(0)
                    old_dirs.append(y)
                    old_stps.append(s)
                    ro.append(1.0 / ys)
                    H_diag = ys / _dot(y, y)
                num_old = len(old_dirs)
                al = [None] * num_old
                q = -flat_grad
                for i in range(num_old - 1, -1, -1):
                    al[i] = _dot(old_stps[i], q) * ro[i]
                    q = q - al[i] * old_dirs[i]
                r = q * H_diag
                for i in range(num_old):
                    be_i = _dot(old_dirs[i], r) * ro[i]
                    r = r + (al[i] - be_i) * old_stps[i]
                d = r
            prev_flat_grad = flat_grad.copy()
            prev_loss = loss
            if self.n_iter == 1:
                t = min(1.0, 1.0 / float(nd.sum(nd.abs(flat_grad)).asscalar())) * lr
            else:
                t = lr
            gtd = _dot(flat_grad, d)
            if gtd > -self.tolerance_change:
                break

            ls_func_evals = 0
            if self.line_search_fn is not None:
                x_init = problem.flat_weights().copy()

                def obj_func(x, step, direction):
                    return problem.evaluate_flat(x + step * direction)

                loss, flat_grad, t, ls_func_evals = _strong_wolfe(
                    obj_func, x_init, t, d, loss, flat_grad, gtd,
                    tolerance_change=self.tolerance_change,
                    max_ls=self.max_eval - current_evals)
                problem.set_flat(x_init + t * d)
                opt_cond = nd.max(nd.abs(flat_grad)).asscalar() <= self.tolerance_grad
            else:
                problem.set_flat(problem.flat_weights() + t * d)
                opt_cond = False
                if n_iter != self.max_iter:
                    loss, flat_grad = problem.evaluate_flat()
                    opt_cond = nd.max(nd.abs(flat_grad)).asscalar() <= self.tolerance_grad
                    ls_func_evals = 1
            current_evals += ls_func_evals
            self.func_evals += ls_func_evals

            if n_iter == self.max_iter or current_evals >= self.max_eval or opt_cond:
                break
            if nd.max(nd.abs(d * t)).asscalar() <= self.tolerance_change:
                break
            if abs(loss - prev_loss) < self.tolerance_change:
                break

        self.d, self.t, self.H_diag = d, t, H_diag
        self.old_dirs, self.old_stps, self.ro = old_dirs, old_stps, ro
        self.prev_flat_grad, self.prev_loss = prev_flat_grad, prev_loss
        return orig_loss

    def state_nbytes(self):
        """Bytes of the tensors L-BFGS holds (curvature pairs, direction, previous gradient)."""
        arrays = self.old_dirs + self.old_stps + [a for a in (self.d, self.prev_flat_grad)
                                                  if a is not None]
        return int(sum(a.size * np.dtype(a.dtype).itemsize for a in arrays))


def _cubic_interpolate(x1, f1, g1, x2, f2, g2, bounds=None):
    """Minimiser of the cubic through (x1, f1, g1), (x2, f2, g2), clamped to ``bounds``
    (torch.optim.lbfgs's ``_cubic_interpolate``, after minFunc's ``polyinterp``)."""
    if bounds is not None:
        xmin_bound, xmax_bound = bounds
    else:
        xmin_bound, xmax_bound = (x1, x2) if x1 <= x2 else (x2, x1)
    d1 = g1 + g2 - 3 * (f1 - f2) / (x1 - x2)
    d2_square = d1 ** 2 - g1 * g2
    if d2_square >= 0:
        d2 = math.sqrt(d2_square)
        if x1 <= x2:
            min_pos = x2 - (x2 - x1) * ((g2 + d2 - d1) / (g2 - g1 + 2 * d2))
        else:
            min_pos = x1 - (x1 - x2) * ((g1 + d2 - d1) / (g1 - g2 + 2 * d2))
        return min(max(min_pos, xmin_bound), xmax_bound)
    return (xmin_bound + xmax_bound) / 2.0


def _strong_wolfe(obj_func, x, t, d, f, g, gtd, c1=1e-4, c2=0.9, tolerance_change=1e-9,
                  max_ls=25):
    """Line search for the strong Wolfe conditions (torch.optim.lbfgs's ``_strong_wolfe``:
    bracketing, then zoom by cubic interpolation; Nocedal & Wright, Algorithms 3.5-3.6).
    Returns ``(f_new, g_new, t, evaluations)``."""
    d_norm = float(nd.max(nd.abs(d)).asscalar())
    f_new, g_new = obj_func(x, t, d)
    ls_func_evals = 1
    gtd_new = _dot(g_new, d)
    t_prev, f_prev, g_prev, gtd_prev = 0, f, g, gtd
    done = False
    ls_iter = 0
    bracket_gtd = None
    while ls_iter < max_ls:
        if f_new > (f + c1 * t * gtd) or (ls_iter > 1 and f_new >= f_prev):
            bracket, bracket_f = [t_prev, t], [f_prev, f_new]
            bracket_g, bracket_gtd = [g_prev, g_new], [gtd_prev, gtd_new]
            break
        if abs(gtd_new) <= -c2 * gtd:
            bracket, bracket_f, bracket_g = [t], [f_new], [g_new]
            done = True
            break
        if gtd_new >= 0:
            bracket, bracket_f = [t_prev, t], [f_prev, f_new]
            bracket_g, bracket_gtd = [g_prev, g_new], [gtd_prev, gtd_new]
            break
        min_step = t + 0.01 * (t - t_prev)
        max_step = t * 10
        tmp = t
        t = _cubic_interpolate(t_prev, f_prev, gtd_prev, t, f_new, gtd_new,
                               bounds=(min_step, max_step))
        t_prev, f_prev, g_prev, gtd_prev = tmp, f_new, g_new, gtd_new
        f_new, g_new = obj_func(x, t, d)
        ls_func_evals += 1
        gtd_new = _dot(g_new, d)
        ls_iter += 1
    if ls_iter == max_ls:
        bracket, bracket_f, bracket_g = [0, t], [f, f_new], [g, g_new]

    insuf_progress = False
    low_pos, high_pos = (0, 1) if bracket_f[0] <= bracket_f[-1] else (1, 0)
    while not done and ls_iter < max_ls:
        if abs(bracket[1] - bracket[0]) * d_norm < tolerance_change:
            break
        t = _cubic_interpolate(bracket[0], bracket_f[0], bracket_gtd[0],
                               bracket[1], bracket_f[1], bracket_gtd[1])
        eps = 0.1 * (max(bracket) - min(bracket))
        if min(max(bracket) - t, t - min(bracket)) < eps:
            if insuf_progress or t >= max(bracket) or t <= min(bracket):
                if abs(t - max(bracket)) < abs(t - min(bracket)):
                    t = max(bracket) - eps
                else:
                    t = min(bracket) + eps
                insuf_progress = False
            else:
                insuf_progress = True
        else:
            insuf_progress = False
        f_new, g_new = obj_func(x, t, d)
        ls_func_evals += 1
        gtd_new = _dot(g_new, d)
        ls_iter += 1
        if f_new > (f + c1 * t * gtd) or f_new >= bracket_f[low_pos]:
            bracket[high_pos], bracket_f[high_pos] = t, f_new
            bracket_g[high_pos], bracket_gtd[high_pos] = g_new, gtd_new
            low_pos, high_pos = (0, 1) if bracket_f[0] <= bracket_f[1] else (1, 0)
        else:
            if abs(gtd_new) <= -c2 * gtd:
                done = True
            elif gtd_new * (bracket[high_pos] - bracket[low_pos]) >= 0:
                bracket[high_pos], bracket_f[high_pos] = bracket[low_pos], bracket_f[low_pos]
                bracket_g[high_pos] = bracket_g[low_pos]
                bracket_gtd[high_pos] = bracket_gtd[low_pos]
            bracket[low_pos], bracket_f[low_pos] = t, f_new
            bracket_g[low_pos], bracket_gtd[low_pos] = g_new, gtd_new
    return bracket_f[low_pos], bracket_g[low_pos], bracket[low_pos], ls_func_evals


@register
class HessianFree(ClosureOptimizer, _LineSearchMixin):
    r"""Hessian-free optimisation (truncated Newton / Newton-CG) with Levenberg-Marquardt
    damping.

    Each step approximately solves the damped Newton system by conjugate gradient, touching
    the Hessian only through finite-difference products ``Hv`` (two gradient evaluations
    each), then backtracks::

        solve (H + lambda I) d = -g  by CG from d = 0, until ||r|| <= eta ||g||,
            eta = min(0.5, sqrt(||g||))          (superlinear forcing, N&W 7.1)
            on non-positive curvature p.(H + lambda I)p <= 0: raise lambda past it and
            restart (max_restarts times), then use d so far (or -g at the start)
        w <- w + t d,    Armijo backtracking from t = lr
        rho = (f(w + d) - f(w)) / (g.d + d.(H + lambda I)d / 2)       (when t = 1)
        lambda <- 1.5 lambda if rho < 1/4;  lambda <- lambda * 2/3 if rho > 3/4

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
    family = 'second_order'
    paper = 'Martens, ICML 2010; Nocedal & Wright 2006 (Newton-CG, Alg. 7.1)'
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
        gnorm = math.sqrt(_dot(g, g))
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
                pHp = _dot(p, Hp)
                if not pHp > 0 or not math.isfinite(pHp):
                    negative = True
                    break
                alpha = rr / pHp
                d = d + alpha * p
                Hd = Hd + alpha * Hp
                r = r - alpha * Hp
                rr_new = _dot(r, r)
                if math.sqrt(rr_new) <= eta * gnorm:
                    break
                p = r + (rr_new / rr) * p
                rr = rr_new
            if not negative or restart == self.max_restarts or not math.isfinite(pHp):
                break
            self.lam = max(2.0 * self.lam, 2.0 * abs(pHp) / max(_dot(p, p), 1e-300), 1e-8)
        problem.set_flat(x)
        if negative and j == 0:
            return -g, None  # steepest descent; no model of the reduction
        return d, _dot(g, d) + 0.5 * _dot(d, Hd)

    def closure_step(self, problem):
        f, g = problem.evaluate_flat()
        x = problem.flat_weights().copy()
        d, predicted = self.conjugate_gradient(problem, x, g)
        gtd = _dot(g, d)
        predicted = predicted if predicted is not None else 0.0
        if not gtd < 0:
            return f
        t, f_new, _, ok = _backtrack(problem, x, f, g, d, self.learning_rate, gtd, self.c1,
                                     self.backtrack, self.max_backtracks)
        self.n_iter += 1
        if self.adapt_damping:
            rho = (f_new - f) / predicted if (ok and t == 1.0 and predicted < 0) else 0.0
            if rho < 0.25:
                self.lam = max(self.lam, 1e-8) * 1.5
            elif rho > 0.75:
                self.lam *= 2.0 / 3.0
        return f


@register
class Sophia(ClosureOptimizer):
    r"""Sophia-H: a clipped diagonal-curvature method with Hutchinson's estimator.

    Every ``update_interval`` steps it estimates the Hessian's diagonal with one random probe
    ``u ~ N(0, I)`` and a finite-difference Hessian-vector product (Hutchinson, 1989:
    ``E[u * (H u)] = diag(H)``), and takes a clipped, preconditioned momentum step::

        m <- beta1 m + (1 - beta1) g
        h <- beta2 h + (1 - beta2) u * (H u)          (every update_interval steps)
        w <- w (1 - lr wd)                           (decoupled weight decay)
        w <- w - lr * clip(m / max(rho * h, epsilon), -1, 1)

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
