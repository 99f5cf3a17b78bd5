r"""L-BFGS with an optional strong-Wolfe line search, as ``torch.optim.LBFGS``.

Needs a closure (see ``gluon_opt.optimizers.closure``): use it through ``gluon_opt.Trainer``
and ``trainer.step(batch_size, closure)``. It treats all trainable parameters as one flat vector
and decides its line search on the host (a few scalars per evaluation).

Cost per iteration: one evaluation plus the line search's; memory ``2 m n`` for ``m``
curvature pairs of ``n`` parameters.

L-BFGS and its strong-Wolfe line search (bracketing, then zoom by cubic interpolation) are
transcribed from ``torch.optim.LBFGS`` (which follows Schmidt's minFunc), so the two take the
same steps.

References: Liu & Nocedal, "On the limited memory BFGS method for large scale optimization",
Math. Prog. 1989; Nocedal & Wright, "Numerical Optimization", 2nd ed., 2006 (L-BFGS: 7.2; line
searches: 3.1, 3.5).
"""
import math

import numpy as np
from mxnet import nd

from .base import check_nonnegative, check_int, check_choice
from .closure import ClosureOptimizer, flat_dot
from .registry import register

__all__ = ['LBFGS']


@register
class LBFGS(ClosureOptimizer):
    r"""L-BFGS with an optional strong-Wolfe line search, as ``torch.optim.LBFGS``.

    Keeps the last ``history_size`` pairs :math:`s = w_{k+1} - w_k`, :math:`y = g_{k+1} - g_k`
    (only those with :math:`y^\top s > 10^{-10}`) and computes :math:`d = -H_k g` by the
    two-loop recursion, with :math:`H_0 = (y^\top s / y^\top y) I` and
    :math:`\rho_i = 1 / y_i^\top s_i`:

    .. math::

        q &\leftarrow -g; \quad \text{for } i \text{ newest to oldest: }
            a_i = \rho_i s_i^\top q, \ q \leftarrow q - a_i y_i \\
        r &\leftarrow H_0 q; \quad \text{for } i \text{ oldest to newest: }
            b = \rho_i y_i^\top r, \ r \leftarrow r + (a_i - b) s_i \\
        w &\leftarrow w + t r

    The step ``t`` is ``lr`` (the very first: ``min(1, 1/|g|_1) lr``), or the strong-Wolfe
    line search's (``c1 = 1e-4``, ``c2 = 0.9``, cubic interpolation) with
    ``line_search_fn='strong_wolfe'``. Up to ``max_iter`` iterations (``max_eval``
    evaluations) per ``trainer.step``; it stops early when ``max|g| <= tolerance_grad``, or
    the step or the loss change falls below ``tolerance_change``.

    The parameters are ``torch.optim.LBFGS``'s, with its names and defaults.

    Parameters
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
    label = 'L-BFGS'
    family = 'second_order'
    paper = 'Liu & Nocedal, Mathematical Programming, 1989'
    # once the history is full: history_size pairs (s, y), the direction and the last gradient
    state_bytes = (2 * 100 + 2) * 4
    torch_class = 'LBFGS'
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
                ys = flat_dot(y, s)
                if ys > 1e-10:
                    if len(old_dirs) == self.history_size:
                        old_dirs.pop(0)
                        old_stps.pop(0)
                        ro.pop(0)
                    old_dirs.append(y)
                    old_stps.append(s)
                    ro.append(1.0 / ys)
                    H_diag = ys / flat_dot(y, y)
                num_old = len(old_dirs)
                al = [None] * num_old
                q = -flat_grad
                for i in range(num_old - 1, -1, -1):
                    al[i] = flat_dot(old_stps[i], q) * ro[i]
                    q = q - al[i] * old_dirs[i]
                r = q * H_diag
                for i in range(num_old):
                    be_i = flat_dot(old_dirs[i], r) * ro[i]
                    r = r + (al[i] - be_i) * old_stps[i]
                d = r
            prev_flat_grad = flat_grad.copy()
            prev_loss = loss
            if self.n_iter == 1:
                t = min(1.0, 1.0 / float(nd.sum(nd.abs(flat_grad)).asscalar())) * lr
            else:
                t = lr
            gtd = flat_dot(flat_grad, d)
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
    gtd_new = flat_dot(g_new, d)
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
        gtd_new = flat_dot(g_new, d)
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
        gtd_new = flat_dot(g_new, d)
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
