"""Small problems for the closure-based optimizers: each returns the Gluon parameter(s) and a
closure computing the loss with ``mx.nd`` operations under autograd."""
import numpy as np
import mxnet as mx
from mxnet import nd, gluon, autograd

from gluon_opt.hvp import logistic_regression

#: parabola of the generic tests: f(w) = sum a_i (w_i - c_i)^2 / 2, condition number 10
PARABOLA_A = np.linspace(1.0, 10.0, 6)
PARABOLA_C = np.random.RandomState(3).randn(6)


def parameter(value, dtype='float32', ctx=None):
    p = gluon.Parameter('w', shape=np.shape(value), dtype=dtype)
    p.initialize(mx.init.Zero(), ctx=ctx or mx.cpu())
    p.set_data(nd.array(value, dtype=dtype))
    return p


def _numpy_closure(p, fn):
    """A closure that computes loss and gradient in NumPy and writes the gradient into the
    parameter (a closure only has to leave the gradients in place and return the loss):
    ~50x cheaper than MXNet autograd on two-element problems, for the long runs."""
    def closure():
        w = p.data().asnumpy().astype(np.float64)
        loss, grad = fn(w)
        p.grad()[:] = grad.astype(p.dtype)
        return loss
    return closure


def parabola_numpy(dtype='float32'):
    p = parameter(np.zeros(6), dtype)
    return p, _numpy_closure(p, lambda w: (0.5 * np.sum(PARABOLA_A * (w - PARABOLA_C) ** 2),
                                           PARABOLA_A * (w - PARABOLA_C)))


def _rosen(w):
    x, y = w
    return ((1 - x) ** 2 + 100 * (y - x * x) ** 2,
            np.array([-2 * (1 - x) - 400 * x * (y - x * x), 200 * (y - x * x)]))


def rosenbrock_numpy(dtype='float32', start=(-1.0, 1.5)):
    p = parameter(np.array(start), dtype)
    return p, _numpy_closure(p, _rosen)


def parabola(dtype='float32'):
    p = parameter(np.zeros(6), dtype)
    a = nd.array(PARABOLA_A, dtype=dtype)
    c = nd.array(PARABOLA_C, dtype=dtype)

    def closure():
        with autograd.record():
            loss = 0.5 * nd.sum(a * nd.square(p.data() - c))
        loss.backward()
        return loss
    return p, closure


def rosenbrock(dtype='float32', start=(-1.0, 1.5)):
    p = parameter(np.array(start), dtype)

    def closure():
        with autograd.record():
            w = p.data()
            x, y = w[0], w[1]
            loss = nd.square(1 - x) + 100 * nd.square(y - x * x)
        loss.backward()
        return loss
    return p, closure


def logistic_data(seed=0, n=400, d=6, scales=None):
    """Non-separable logistic-regression data (labels drawn from the model), so the
    regularised optimum is finite and strongly convex."""
    rng = np.random.RandomState(seed)
    X = rng.randn(n, d)
    if scales is not None:
        X = X * scales
    w_true = rng.randn(d) / (scales if scales is not None else 1.0)
    y = (rng.rand(n) < 1.0 / (1.0 + np.exp(-X.dot(w_true)))).astype(np.float64)
    return X, y


def logistic_optimum(X, y, l2):
    """The exact minimiser by Newton's method with the analytic Hessian, in float64."""
    w = np.zeros(X.shape[1])
    for _ in range(50):
        _, g, H = logistic_regression(X, y, w, l2)
        w = w - np.linalg.solve(H, g)
    return w


def logistic_closure(p, X, y, dtype='float32'):
    """Per-sample logistic losses (step with batch_size=len(X) for the mean)."""
    Xn, yn = nd.array(X, dtype=dtype), nd.array(y, dtype=dtype)

    def closure():
        with autograd.record():
            z = nd.dot(Xn, p.data())
            # log(1 + e^z) - y z; softrelu is smooth at 0 (relu(z) + log(1 + e^-|z|) has the
            # wrong subgradient there, and the start w = 0 puts every z at 0)
            loss = nd.Activation(z, act_type='softrelu') - z * yn
        loss.backward()
        return loss
    return closure
