"""Small test functions ("landscapes") with exact gradients, and ``trajectory``, which runs any
registered optimizer on one of them. The course uses them to show what an update rule does.

Every landscape is a ``Landscape``: ``value(x)`` and ``grad(x)`` on float64 NumPy arrays of
shape ``(dim,)``, the known ``minimum`` (where it is known), and a plotting window ``bounds``.

>>> from gluon_opt.teaching import landscapes
>>> bowl = landscapes.quadratic(condition=50)
>>> run = landscapes.trajectory('gluon_opt.sgd', bowl, start=(-4, 1.5), steps=100,
...                             learning_rate=0.03, momentum=0.9)
>>> run.path.shape, run.final_loss < 1e-3
((101, 2), True)
"""
import numpy as np
import mxnet as mx

__all__ = ['Landscape', 'Trajectory', 'quadratic', 'rosenbrock', 'double_well', 'beale',
           'parabola', 'trajectory', 'make_optimizer']


class Landscape(object):
    """A differentiable function of ``dim`` variables.

    Parameters
    ----------
    name : str
    value, grad : callables taking a float64 array of shape ``(dim,)``
    dim : int
    minimum : array or None, the global minimiser (None where unknown)
    bounds : ((xmin, xmax),) or ((xmin, xmax), (ymin, ymax)), the window plots show
    log_levels : bool, whether contour plots should space levels logarithmically
    """

    def __init__(self, name, value, grad, dim, minimum=None, bounds=None, log_levels=False,
                 description=''):
        self.name, self.dim = name, dim
        self._value, self._grad = value, grad
        self.minimum = None if minimum is None else np.asarray(minimum, dtype=np.float64)
        self.bounds = bounds
        self.log_levels = log_levels
        self.description = description

    def value(self, x):
        return float(self._value(np.asarray(x, dtype=np.float64)))

    def grad(self, x):
        return np.asarray(self._grad(np.asarray(x, dtype=np.float64)), dtype=np.float64)

    @property
    def min_value(self):
        """The value at the global minimum (None where unknown)."""
        return None if self.minimum is None else self.value(self.minimum)

    def grid(self, n=200):
        """``(X, Y, Z)`` on an ``n`` x ``n`` grid over ``bounds`` (2-D landscapes), or
        ``(x, f(x))`` (1-D), for plotting."""
        if self.dim == 1:
            x = np.linspace(self.bounds[0][0], self.bounds[0][1], n)
            return x, np.array([self.value([xi]) for xi in x])
        (x0, x1), (y0, y1) = self.bounds
        X, Y = np.meshgrid(np.linspace(x0, x1, n), np.linspace(y0, y1, n))
        pts = np.stack([X.ravel(), Y.ravel()], axis=1)
        Z = np.array([self._value(p) for p in pts]).reshape(X.shape)
        return X, Y, Z

    def __repr__(self):
        return 'Landscape(%r, dim=%d)' % (self.name, self.dim)


def parabola(curvature=1.0):
    """``f(x) = curvature / 2 * x^2`` in one dimension; gradient descent converges for
    ``learning_rate < 2 / curvature`` and diverges above."""
    a = float(curvature)
    return Landscape('parabola', lambda x: 0.5 * a * x[0] ** 2, lambda x: a * x,
                     dim=1, minimum=[0.0], bounds=((-3.0, 3.0),),
                     description='f(x) = %g/2 x^2' % a)


def quadratic(condition=10.0, angle=0.0):
    """The bowl ``f(x) = 1/2 x^T H x`` with eigenvalues ``1`` and ``condition``, its axes
    rotated by ``angle`` radians. A large condition number makes a ravine: steep walls
    (curvature ``condition``), a nearly flat floor (curvature 1)."""
    c, s = np.cos(angle), np.sin(angle)
    R = np.array([[c, -s], [s, c]])
    H = R @ np.diag([1.0, float(condition)]) @ R.T
    span = 5.0
    return Landscape('quadratic (condition %g)' % condition,
                     lambda x: 0.5 * x @ H @ x, lambda x: H @ x, dim=2, minimum=[0.0, 0.0],
                     bounds=((-span, span), (-span / 2, span / 2)), log_levels=True,
                     description='f(x) = 1/2 x^T H x, eigenvalues 1 and %g' % condition)


def rosenbrock(a=1.0, b=100.0):
    """Rosenbrock's banana ``(a - x)^2 + b (y - x^2)^2``: a curved valley, minimum at
    ``(a, a^2)``."""
    def value(p):
        x, y = p[0], p[1]
        return (a - x) ** 2 + b * (y - x * x) ** 2

    def grad(p):
        x, y = p
        return np.array([-2 * (a - x) - 4 * b * x * (y - x * x), 2 * b * (y - x * x)])

    return Landscape('rosenbrock', value, grad, dim=2, minimum=[a, a * a],
                     bounds=((-2.0, 2.0), (-1.0, 3.0)), log_levels=True,
                     description='(%g - x)^2 + %g (y - x^2)^2' % (a, b))


def double_well(tilt=0.3):
    """``f(x) = (x^2 - 1)^2 + tilt * x``: two valleys, the deeper one on the left (for a
    positive tilt). Started on the right, gradient descent settles in the shallow valley."""
    t = float(tilt)
    roots = np.roots([4.0, 0.0, -4.0, t])  # f'(x) = 4x^3 - 4x + t
    real = np.sort(roots[np.abs(roots.imag) < 1e-12].real)
    return Landscape('double well', lambda x: (x[0] ** 2 - 1) ** 2 + t * x[0],
                     lambda x: np.array([4 * x[0] ** 3 - 4 * x[0] + t]), dim=1,
                     minimum=[real[0]], bounds=((-2.0, 2.0),),
                     description='f(x) = (x^2 - 1)^2 + %g x; deep minimum %.3f, shallow %.3f'
                     % (t, real[0], real[-1]))


def beale():
    """Beale's function: flat plateaus and steep walls, minimum 0 at ``(3, 0.5)``."""
    def value(p):
        x, y = p[0], p[1]
        return ((1.5 - x + x * y) ** 2 + (2.25 - x + x * y ** 2) ** 2
                + (2.625 - x + x * y ** 3) ** 2)

    def grad(p):
        x, y = p
        a, b, c = 1.5 - x + x * y, 2.25 - x + x * y ** 2, 2.625 - x + x * y ** 3
        dx = 2 * a * (y - 1) + 2 * b * (y ** 2 - 1) + 2 * c * (y ** 3 - 1)
        dy = 2 * a * x + 2 * b * 2 * x * y + 2 * c * 3 * x * y ** 2
        return np.array([dx, dy])

    return Landscape('beale', value, grad, dim=2, minimum=[3.0, 0.5],
                     bounds=((-4.5, 4.5), (-4.5, 4.5)), log_levels=True,
                     description="Beale's function")


class Trajectory(object):
    """What ``trajectory`` returns: ``path`` (``steps + 1`` points, the start first),
    ``losses`` (the value at each point), the optimizer's ``label`` and the landscape."""

    def __init__(self, label, landscape, path, losses):
        self.label, self.landscape = label, landscape
        self.path, self.losses = path, losses

    @property
    def final_loss(self):
        return float(self.losses[-1])

    @property
    def final_point(self):
        return self.path[-1]

    @property
    def diverged(self):
        return not np.all(np.isfinite(self.losses)) or self.losses[-1] > 1e6 * max(
            1.0, abs(self.losses[0]))

    def gap(self):
        """``loss - min_value`` at every step (the landscape's minimum value must be known)."""
        return self.losses - self.landscape.min_value

    def steps_to(self, tol):
        """The first step from which on ``loss - min_value <= tol`` holds to the end of the
        run, or None if it does not hold at the end. (An oscillating run may touch ``tol`` in
        passing and climb back out; that does not count.)"""
        above = np.nonzero(~(self.gap() <= tol))[0]
        if not above.size:
            return 0
        if above[-1] == len(self.losses) - 1:
            return None
        return int(above[-1]) + 1

    def __repr__(self):
        return 'Trajectory(%r on %s, %d steps, final loss %.4g)' % (
            self.label, self.landscape.name, len(self.losses) - 1, self.final_loss)


def make_optimizer(optimizer, **hyper):
    """An optimizer instance from a registered name (``mx.optimizer.create``), a class, or an
    instance (returned as is; then ``hyper`` must be empty)."""
    if isinstance(optimizer, mx.optimizer.Optimizer):
        if hyper:
            raise ValueError('hyperparameters go to the optimizer when it is created; got an '
                             'instance and %s' % ', '.join(sorted(hyper)))
        return optimizer
    if isinstance(optimizer, type):
        return optimizer(**hyper)
    return mx.optimizer.create(optimizer, **hyper)


def trajectory(optimizer, landscape, start, steps, label=None, dtype='float64', until=None,
               patience=10, **hyper):
    """Run ``steps`` updates of ``optimizer`` (a registered name such as ``'gluon_opt.adam'``,
    a class or an instance) on ``landscape`` from ``start``; return a ``Trajectory``.

    The optimizer is driven exactly as ``gluon.Trainer`` drives it: one weight (the point)
    with its state from ``create_state_multi_precision``, and ``update`` called with the
    exact gradient at every step. Divergence is allowed (losses become huge or inf/nan).
    With ``until``, stop early once ``loss - min_value`` has stayed ``<= until`` for
    ``patience`` consecutive steps (the path is then shorter; an oscillating run that only
    touches the tolerance in passing keeps going).
    """
    opt = make_optimizer(optimizer, **hyper)
    x = np.atleast_1d(np.asarray(start, dtype=np.float64))
    if x.shape != (landscape.dim,):
        raise ValueError('start must have %d coordinates for %s' % (landscape.dim,
                                                                      landscape.name))
    weight = mx.nd.array(x, dtype=dtype)
    state = opt.create_state_multi_precision(0, weight)
    path = [x.copy()]
    losses = [landscape.value(x)]
    below = 0
    with np.errstate(over='ignore', invalid='ignore'):
        for _ in range(int(steps)):
            g = landscape.grad(x)
            if not np.all(np.isfinite(g)):
                g = np.nan_to_num(g)
            opt.update_multi_precision(0, weight, mx.nd.array(g, dtype=dtype), state)
            x = weight.asnumpy().astype(np.float64)
            path.append(x.copy())
            losses.append(landscape.value(x))
            if until is not None:
                below = below + 1 if losses[-1] - landscape.min_value <= until else 0
                if below >= patience:
                    break
    if label is None:
        label = optimizer if isinstance(optimizer, str) else type(opt).__name__
    return Trajectory(label, landscape, np.array(path), np.array(losses))
