r"""Hessian-vector products by central finite differences of gradients.

Why finite differences
----------------------
MXNet 1.9.1 cannot differentiate twice through ``Dense``/``Activation`` (its autograd reports
``_backward_Activation is non-differentiable``), so the exact Hessian-vector product
:math:`Hv = \nabla (\nabla f \cdot v)` (Pearlmutter, 1994) is out of reach for Gluon models.
Two gradients give it approximately::

    Hv  ~=  (g(w + h u) - g(w - h u)) / (2 h) * ||v||,        u = v / ||v||

The error, and the choice of ``h``
----------------------------------
Taylor expansion of the gradient along ``u`` gives two error terms:

* truncation: the central difference cancels the even terms, leaving
  :math:`(h^2/6)\,\nabla^3 g[u, u]` -- proportional to ``h**2`` and to the third derivative
  (zero for a quadratic);
* rounding: each computed gradient carries an absolute error of about ``u_mach * G``
  (``u_mach`` the unit roundoff of the dtype, ``G`` the size of the terms summed to form the
  gradient, of the order of ``||H|| (1 + ||w||)``); dividing their difference by ``2h`` gives
  about ``u_mach * G / h``.

The sum ``M h**2 / 6 + u_mach G / h`` is smallest at ``h* = (3 u_mach G / M)**(1/3)``, i.e.
``h ~ u_mach**(1/3)`` in relative units, where the error is ``~ u_mach**(2/3)`` relative.
(A *forward* difference has an ``O(h)`` truncation term instead, its optimum is
``h ~ sqrt(u_mach)`` and its error ``~ sqrt(u_mach)``: the ``sqrt(eps)`` rule of thumb of
Jacobian-free Newton-Krylov solvers applies to forward differences, not to these.)
We therefore take, as in Jacobian-free Newton-Krylov practice, a step relative to the size of
the weights::

    h = eps**(1/3) * (1 + ||w||),        i.e. the multiplier of v is h / ||v||

with ``eps`` the dtype's machine epsilon (``np.finfo(dtype).eps``: 1.19e-7 for float32,
2.2e-16 for float64). For float32 that is ``h = 4.9e-3 (1 + ||w||)`` and an expected relative
error of the order of ``eps**(2/3) ~ 2.4e-5`` times a problem-dependent constant. Measured
against analytic Hessians (``tests/test_second_order.py``, 20 random directions): worst
relative error 2e-5 (quadratic) and 4e-5 (logistic regression) in float32, 2e-11 and 7e-11 in
float64; the tests hold it to 5e-4 and 1e-9. With the forward-difference rule's
``h ~ sqrt(eps)`` the float32 error is several times larger (rounding dominates), which a test
also checks.
Summation over large batches and kinks (ReLU) make real networks worse than this estimate;
every user here (Newton-CG's conjugate gradient, Hutchinson diagonals) tolerates a few
digits of error.

Cost: two gradient evaluations (two forward and backward passes) per product, against
about one for the exact (double-backward) product.
"""
import numpy as np
import mxnet as mx
from mxnet import nd

__all__ = ['fd_epsilon', 'fd_hvp', 'global_norm', 'quadratic_hvp', 'logistic_regression',
           'logistic_hvp']


def _machine_eps(dtype):
    return float(np.finfo(np.dtype(dtype)).eps)


def fd_epsilon(weight_norm, direction_norm, dtype='float32'):
    """The multiplier ``eps`` of the direction ``v`` in ``w +- eps v``:
    ``eps_mach**(1/3) * (1 + ||w||) / ||v||`` (see the module docstring).

    ``weight_norm`` and ``direction_norm`` may be floats or 1-element NDArrays; with NDArrays
    the result stays an NDArray on their context (no copy to the host)."""
    c = _machine_eps(dtype) ** (1.0 / 3.0)
    if isinstance(direction_norm, nd.NDArray):
        # a zero direction gives a zero product whatever eps is; avoid dividing by zero
        return c * (1.0 + weight_norm) / nd.maximum(direction_norm, 1e-30)
    return c * (1.0 + weight_norm) / max(direction_norm, 1e-30)


def global_norm(arrays):
    """``sqrt(sum ||a||^2)`` over a list of NDArrays, as a 1-element NDArray on the first
    array's context (no host synchronisation)."""
    ctx = arrays[0].context
    sq = [nd.sum(nd.square(a)).as_in_context(ctx) for a in arrays]
    return nd.sqrt(nd.add_n(*sq) if len(sq) > 1 else sq[0])


def fd_hvp(grad_fn, weights, vector, eps=None):
    """Central finite-difference Hessian-vector product.

    Parameters
    ----------
    grad_fn : callable
        ``grad_fn(list_of_weights) -> list_of_gradients`` (NDArrays of the same shapes).
    weights, vector : list of NDArray
        The point ``w`` and the direction ``v`` (same shapes, same context).
    eps : float, 1-element NDArray or None
        Multiplier of ``v``; None picks :func:`fd_epsilon` for the weights' dtype.

    Returns the list ``(g(w + eps v) - g(w - eps v)) / (2 eps)``.
    """
    if eps is None:
        eps = fd_epsilon(global_norm(weights), global_norm(vector), weights[0].dtype)
    bc = nd.broadcast_mul if isinstance(eps, nd.NDArray) else (lambda a, b: a * b)
    plus = grad_fn([nd.broadcast_add(w, bc(v, eps)) if isinstance(eps, nd.NDArray)
                    else w + eps * v for w, v in zip(weights, vector)])
    plus = [g.copy() for g in plus]
    minus = grad_fn([nd.broadcast_sub(w, bc(v, eps)) if isinstance(eps, nd.NDArray)
                     else w - eps * v for w, v in zip(weights, vector)])
    if isinstance(eps, nd.NDArray):
        return [nd.broadcast_div(p - m, 2.0 * eps) for p, m in zip(plus, minus)]
    return [(p - m) / (2.0 * eps) for p, m in zip(plus, minus)]


# ---------------------------------------------------------------------------------------------
# Analytic Hessians (NumPy, float64): the references the tests hold the products to.

def quadratic_hvp(A, v):
    """``f(w) = 0.5 w^T A w - b^T w`` has Hessian ``(A + A^T) / 2``."""
    A = np.asarray(A, np.float64)
    return 0.5 * (A + A.T).dot(np.asarray(v, np.float64))


def logistic_regression(X, y, w, l2=0.0):
    """Mean logistic loss with labels ``y`` in {0, 1}, ``f(w) = mean(log(1 + exp(x.w)) -
    y x.w) + l2/2 ||w||^2``; returns ``(f, gradient, Hessian)`` in float64.

    Hessian: ``X^T diag(p (1 - p)) X / n + l2 I`` with ``p = sigmoid(X w)``."""
    X = np.asarray(X, np.float64)
    y = np.asarray(y, np.float64)
    w = np.asarray(w, np.float64)
    z = X.dot(w)
    p = 1.0 / (1.0 + np.exp(-z))
    n = len(y)
    f = np.mean(np.logaddexp(0.0, z) - y * z) + 0.5 * l2 * w.dot(w)
    g = X.T.dot(p - y) / n + l2 * w
    H = (X.T * (p * (1 - p))).dot(X) / n + l2 * np.eye(len(w))
    return f, g, H


def logistic_hvp(X, y, w, v, l2=0.0):
    """The exact Hessian-vector product of :func:`logistic_regression`'s loss."""
    return logistic_regression(X, y, w, l2)[2].dot(np.asarray(v, np.float64))
