"""Chapter 3's measurements of momentum: its eigen-analysis on quadratics, the stability
region it measures with the real optimizer, and momentum on the course MLP over many seeds.

On a quadratic with curvature ``lam`` (an eigenvalue of the Hessian), heavy-ball momentum in
PyTorch's convention (``gluon_opt.sgd``: ``b_t = mu b_{t-1} + g_t``, ``w_{t+1} = w_t - eta b_t``)
is a linear map of the state ``(w_t, eta b_{t-1})`` that depends only on ``h = eta * lam`` and
``mu``::

    heavy ball  [[1 - h,         -mu   ],       Nesterov  [[1 - h (1 + mu), -mu^2],
                 [h,              mu   ]]                  [h,               mu  ]]

The error in that direction shrinks per step by the matrix's spectral radius, ``rate`` (the
larger eigenvalue modulus); it is below 1, so the iteration converges, exactly when
``0 < h < 2 (1 + mu)`` (heavy ball; Nesterov: ``h < 2 (1 + mu) / (1 + 2 mu)``). For
``mu = 0`` both are gradient descent, rate ``|1 - h|``.

* ``iteration_matrix``, ``predicted_rate``, ``stability_limit``: the theory;
* ``measured_rates``: the same rates measured by running ``gluon_opt.sgd`` itself on a diagonal
  quadratic (one coordinate per ``h``: the update is elementwise, so every coordinate is an
  independent one-dimensional run);
* ``measured_limit``: the edge of stability found with those runs;
* ``t_interval``: mean and t-based confidence half-width (no SciPy needed);
* ``StackedMLP`` and ``train_seeds``: the course MLP (784-64-10, ReLU) trained under several
  seeds at once, one copy per seed stacked along a leading axis, so that eight seeds cost
  about as much as one;
* ``momentum_study``, ``summarize_study``, ``plot_study``: SGD against momentum at a matched
  effective learning rate and at the same rate, per batch size, over seeds.

>>> from gluon_opt.teaching import momentum_lab as ml
>>> round(float(ml.predicted_rate(1.9, 0.0)), 3), round(float(ml.predicted_rate(1.9, 0.5)), 3)
(0.9, 0.707)
>>> ml.stability_limit(0.5)
3.0
"""
import math

import numpy as np
import mxnet as mx
from mxnet import autograd, gluon

from . import landscapes

__all__ = ['iteration_matrix', 'predicted_rate', 'stability_limit', 'diagonal_quadratic',
           'fit_rate', 'measured_rates', 'measured_limit', 't_quantile', 't_interval',
           'StackedMLP', 'train_seeds', 'ROLES', 'momentum_study', 'summarize_study',
           'plot_study', 'plot_rates', 'plot_limits']


# --- eigen-analysis on a quadratic -------------------------------------------------------

def iteration_matrix(h, mu, nesterov=False):
    """The 2x2 matrix that maps ``(w_t, eta b_{t-1})`` to ``(w_{t+1}, eta b_t)`` on a quadratic
    direction with ``h = eta * curvature`` (see the module docstring)."""
    h, mu = float(h), float(mu)
    if nesterov:
        return np.array([[1.0 - h * (1.0 + mu), -mu * mu], [h, mu]])
    return np.array([[1.0 - h, -mu], [h, mu]])


def predicted_rate(h, mu, nesterov=False):
    """The spectral radius of ``iteration_matrix(h, mu)``: the factor by which the error in a
    direction of curvature ``h / eta`` shrinks per step in the long run (above 1: grows).
    ``h`` may be an array."""
    hs = np.atleast_1d(np.asarray(h, dtype=np.float64))
    out = np.array([np.max(np.abs(np.linalg.eigvals(iteration_matrix(x, mu, nesterov))))
                    for x in hs])
    return out if np.ndim(h) else out[0]


def stability_limit(mu, nesterov=False):
    """The largest ``eta * curvature`` for which the iteration converges: ``2 (1 + mu)`` for
    heavy ball (2 for gradient descent), ``2 (1 + mu) / (1 + 2 mu)`` for Nesterov."""
    mu = float(mu)
    return 2.0 * (1.0 + mu) / (1.0 + 2.0 * mu) if nesterov else 2.0 * (1.0 + mu)


# --- the same rates, measured with gluon_opt.sgd ------------------------------------------

def diagonal_quadratic(curvatures):
    """``f(x) = 1/2 sum_i curvatures[i] x_i^2`` as a ``landscapes.Landscape`` (one coordinate
    per curvature, minimum 0 at the origin)."""
    lam = np.asarray(curvatures, dtype=np.float64)
    return landscapes.Landscape('diagonal quadratic', lambda x: 0.5 * np.sum(lam * x * x),
                                lambda x: lam * x, dim=len(lam), minimum=np.zeros(len(lam)))


def fit_rate(path, burn_in=10, low=1e-200, high=1e200):
    """The per-step rate of a run from its ``path`` (``steps + 1`` values of one coordinate):
    the slope of ``log ||(w_t, w_{t-1})||`` over ``t``, fitted by least squares after
    ``burn_in`` steps, over the values between ``low`` and ``high`` (before underflow or
    overflow). The pair, not ``|w_t|`` alone, because an oscillating coordinate passes near
    zero while the state's norm stays within a bounded factor of ``rate ** t``. A run that
    reaches exactly zero has rate 0."""
    w = np.asarray(path, dtype=np.float64)
    with np.errstate(over='ignore', invalid='ignore'):
        norm = np.sqrt(w[1:] ** 2 + w[:-1] ** 2)
    t = np.arange(1, len(w))
    if np.any(norm[:burn_in] == 0):
        return 0.0
    keep = (t >= burn_in) & np.isfinite(norm) & (norm > low) & (norm < high)
    if keep.sum() < 2:  # fell out of range during the burn-in: use what there is
        keep = np.isfinite(norm) & (norm > low) & (norm < high)
        if keep.sum() < 2:
            return 0.0 if np.all(norm[np.isfinite(norm)] <= low) else float('inf')
        if not np.any(norm[keep] > 0):
            return 0.0
    slope = np.polyfit(t[keep], np.log(norm[keep]), 1)[0]
    return float(np.exp(slope))


def measured_rates(h, mu, nesterov=False, steps=200, learning_rate=0.1, burn_in=10):
    """Run ``gluon_opt.sgd`` (``momentum=mu``, ``nesterov``) for ``steps`` updates on a
    diagonal quadratic with curvatures ``h / learning_rate``, from 1 in every coordinate, and
    return the rate ``fit_rate`` measures for each ``h`` (an array in the order of ``h``)."""
    h = np.asarray(h, dtype=np.float64)
    bowl = diagonal_quadratic(h / learning_rate)
    run = landscapes.trajectory('gluon_opt.sgd', bowl, np.ones(len(h)), steps,
                                learning_rate=learning_rate, momentum=float(mu),
                                nesterov=bool(nesterov))
    return np.array([fit_rate(run.path[:, i], burn_in) for i in range(len(h))])


def measured_limit(mu, nesterov=False, width=0.1, points=100, steps=200):
    """The edge of stability found by running ``gluon_opt.sgd``: among ``points`` values of
    ``h`` spread evenly over ``(1 +- width)`` times the predicted limit, the smallest whose
    measured rate is at least 1 (``nan`` if every one converged or every one diverged). With
    an even ``points`` no value falls on the limit itself, where the rate is exactly 1 and
    rounding would decide."""
    h = stability_limit(mu, nesterov) * np.linspace(1 - width, 1 + width, points)
    rates = measured_rates(h, mu, nesterov, steps=steps)
    above = np.nonzero(rates >= 1.0)[0]
    if not above.size or above[0] == 0:
        return float('nan')
    return float(h[above[0]])


# --- statistics --------------------------------------------------------------------------

#: two-sided 95 % quantiles of Student's t, by degrees of freedom
_T95 = {1: 12.706, 2: 4.303, 3: 3.182, 4: 2.776, 5: 2.571, 6: 2.447, 7: 2.365, 8: 2.306,
        9: 2.262, 10: 2.228, 11: 2.201, 12: 2.179, 13: 2.160, 14: 2.145, 15: 2.131,
        16: 2.120, 17: 2.110, 18: 2.101, 19: 2.093, 20: 2.086, 21: 2.080, 22: 2.074,
        23: 2.069, 24: 2.064, 25: 2.060, 26: 2.056, 27: 2.052, 28: 2.048, 29: 2.045,
        30: 2.042}


def t_quantile(df):
    """The 0.975 quantile of Student's t with ``df`` degrees of freedom (a table up to 30,
    then the Cornish-Fisher expansion around the normal's 1.96, accurate to 1e-3)."""
    df = int(df)
    if df < 1:
        raise ValueError('df=%r is invalid; expected an integer >= 1.' % (df,))
    if df in _T95:
        return _T95[df]
    z = 1.959964
    return (z + (z ** 3 + z) / (4 * df) + (5 * z ** 5 + 16 * z ** 3 + 3 * z) / (96 * df ** 2)
            + (3 * z ** 7 + 19 * z ** 5 + 17 * z ** 3 - 15 * z) / (384 * df ** 3))


def t_interval(values):
    """``(mean, half_width)`` of the two-sided 95 % t confidence interval for the mean of
    ``values`` (at least two finite numbers): ``mean +- t_{0.975, n-1} s / sqrt(n)``."""
    v = np.asarray(values, dtype=np.float64).ravel()
    if v.size < 2 or not np.all(np.isfinite(v)):
        raise ValueError('t_interval needs at least two finite values; got %r.' % (v,))
    return float(v.mean()), float(t_quantile(v.size - 1) * v.std(ddof=1) / math.sqrt(v.size))


# --- the course MLP, one copy per seed ---------------------------------------------------

class StackedMLP(gluon.HybridBlock):
    """``copies`` independent MLPs ``in_units -> hidden (ReLU) -> classes``, the course's
    ``models.mlp(hidden=(hidden,))``, their weights stacked along a leading axis: input
    ``(copies, batch, in_units)``, output ``(copies, batch, classes)``. Copy ``i`` only ever
    touches slice ``i`` of every parameter, and ``gluon_opt.sgd`` updates elementwise, so
    training the stack is training ``copies`` separate networks."""

    def __init__(self, copies, in_units=784, hidden=64, classes=10, **kwargs):
        super(StackedMLP, self).__init__(**kwargs)
        self.copies = copies
        with self.name_scope():
            self.w1 = self.params.get('w1', shape=(copies, in_units, hidden))
            self.b1 = self.params.get('b1', shape=(copies, 1, hidden), init='zeros')
            self.w2 = self.params.get('w2', shape=(copies, hidden, classes))
            self.b2 = self.params.get('b2', shape=(copies, 1, classes), init='zeros')

    def hybrid_forward(self, F, x, w1, b1, w2, b2):
        hidden = F.relu(F.broadcast_add(F.batch_dot(x, w1), b1))
        return F.broadcast_add(F.batch_dot(hidden, w2), b2)

    def initialize_seeds(self, seeds):
        """Initialise copy ``i`` as ``models.mlp`` is under Xavier: weights uniform in
        ``+- sqrt(6 / (fan_in + fan_out))`` from ``RandomState(seeds[i])``, biases zero."""
        self.initialize(mx.init.Zero(), force_reinit=True)
        for w in (self.w1, self.w2):
            _, fan_in, fan_out = w.shape
            bound = math.sqrt(6.0 / (fan_in + fan_out))
            w.set_data(mx.nd.array(np.stack([
                np.random.RandomState([int(s), fan_in]).uniform(-bound, bound,
                                                                (fan_in, fan_out))
                for s in seeds])))


def _batches(n, batch_size, seed, steps):
    """``steps`` index batches of ``batch_size`` from a new ``RandomState`` permutation of
    ``range(n)`` every pass (incomplete last batches dropped)."""
    rng = np.random.RandomState(seed)
    out, order = [], []
    while len(out) < steps:
        if len(order) < batch_size:
            order = list(rng.permutation(n))
        out.append(order[:batch_size])
        order = order[batch_size:]
    return np.array(out)


def train_seeds(x, y, seeds, batch_size, steps, optimizer_params, eval_x=None, eval_y=None,
                checks=5, hidden=64):
    """Train the course MLP with ``gluon_opt.sgd(**optimizer_params)`` once per seed (each its
    own initialisation and batch order), ``steps`` minibatches of ``batch_size`` from
    ``(x, y)`` (numpy arrays), all seeds at once in a ``StackedMLP``.

    Returns ``(steps_checked, losses)``: the mean cross-entropy on ``(eval_x, eval_y)``
    (default: ``x, y``) of every seed's network at ``checks + 1`` evenly spaced steps (0 and
    ``steps`` included), ``losses`` of shape ``(checks + 1, len(seeds))``; a run that diverged
    has ``nan`` from then on."""
    seeds = [int(s) for s in seeds]
    eval_x = x if eval_x is None else eval_x
    eval_y = y if eval_y is None else eval_y
    copies = len(seeds)
    net = StackedMLP(copies, in_units=x.shape[1], hidden=hidden)
    net.initialize_seeds(seeds)
    net.hybridize()
    trainer = gluon.Trainer(net.collect_params(), 'gluon_opt.sgd', dict(optimizer_params))
    loss_fn = gluon.loss.SoftmaxCrossEntropyLoss()
    xs, ys = mx.nd.array(x), mx.nd.array(np.asarray(y, dtype=np.float32))
    ex = mx.nd.array(np.broadcast_to(eval_x, (copies,) + eval_x.shape))
    ey = mx.nd.array(np.tile(np.asarray(eval_y, dtype=np.float32), copies))
    order = np.stack([_batches(len(x), batch_size, s, steps) for s in seeds], axis=1)
    # every step's indices in one array: no host-to-device copy (a sync point) per step
    order = mx.nd.array(order.reshape((steps, -1)), dtype='int64')
    at = sorted(set(int(round(k * steps / checks)) for k in range(checks + 1)))

    def evaluate():
        out = net(ex).reshape((copies * ex.shape[1], -1))
        per = loss_fn(out, ey).reshape((copies, -1)).mean(axis=1).asnumpy()
        return np.where(np.isfinite(per), per, np.nan)

    losses = [evaluate()] if at[0] == 0 else []
    for step in range(1, steps + 1):
        idx = order[step - 1]
        xb = mx.nd.take(xs, idx).reshape((copies, batch_size, -1))
        yb = mx.nd.take(ys, idx)
        with autograd.record():
            loss = loss_fn(net(xb).reshape((copies * batch_size, -1)), yb)
        loss.backward()
        trainer.step(batch_size)  # each copy's gradient is that of its own mean loss
        if step in at:
            losses.append(evaluate())
    losses = np.array(losses)
    for k in range(1, len(losses)):  # once diverged, stays diverged
        losses[k][np.isnan(losses[k - 1])] = np.nan
    return at, losses


#: the three settings ``momentum_study`` trains, in order
ROLES = ('SGD', 'matched', 'same lr')


def momentum_study(x, y, batch_sizes, steps, learning_rate, momentum, seeds, eval_x=None,
                   eval_y=None, checks=5):
    """Train the course MLP with SGD at ``learning_rate`` (role ``'SGD'``), momentum at the
    matched effective rate ``learning_rate * (1 - momentum)`` (``'matched'``: the same
    ``eta / (1 - mu)`` on a steady gradient) and momentum at ``learning_rate`` itself
    (``'same lr'``), for every batch size in ``batch_sizes``, under every seed (the same
    initialisations and batch orders for the three settings).

    Returns ``{batch_size: {role: (label, steps_checked, losses)}}`` with ``steps_checked`` and
    ``losses`` as ``train_seeds`` gives them and ``label`` naming the setting, e.g.
    ``'momentum 0.9, lr 0.02'``."""
    mu, lr = float(momentum), float(learning_rate)
    settings = [('SGD', 'SGD, lr %g' % lr, {'learning_rate': lr}),
                ('matched', 'momentum %g, lr %g' % (mu, lr * (1 - mu)),
                 {'learning_rate': lr * (1 - mu), 'momentum': mu}),
                ('same lr', 'momentum %g, lr %g' % (mu, lr),
                 {'learning_rate': lr, 'momentum': mu})]
    return {b: {role: (label,) + train_seeds(x, y, seeds, b, steps, hp, eval_x, eval_y,
                                              checks)
                for role, label, hp in settings} for b in batch_sizes}


def summarize_study(study):
    """The final losses of ``momentum_study``'s runs as 95 % t-intervals over the seeds:
    ``{batch_size: {key: (mean, half_width)}}`` with keys ``'SGD'``, ``'matched'``,
    ``'same lr'`` (the loss itself) and ``'matched - SGD'``, ``'same lr - SGD'`` (the paired
    difference per seed: negative means momentum ended lower)."""
    out = {}
    for b, runs in study.items():
        final = {role: runs[role][2][-1] for role in ROLES}
        row = {role: t_interval(final[role]) for role in ROLES}
        for role in ROLES[1:]:
            row['%s - SGD' % role] = t_interval(final[role] - final['SGD'])
        out[b] = row
    return out


def plot_study(study, axes, colors):
    """One panel per batch size: each setting's mean loss over the seeds against the update
    step, with its 95 % t-interval as a band; ``colors`` one per setting."""
    for ax, (b, runs) in zip(axes, study.items()):
        for color, role in zip(colors, ROLES):
            label, at, losses = runs[role]
            band = [t_interval(row) if np.all(np.isfinite(row)) else (np.nan, np.nan)
                    for row in losses]
            mean = np.array([m for m, _ in band])
            half = np.array([h for _, h in band])
            ax.plot(at, mean, 'o-', color=color, label=label, ms=4)
            ax.fill_between(at, mean - half, mean + half, color=color, alpha=0.2)
        ax.set(xlabel='update step', ylabel='training loss (mean, 95 % CI)',
               title='batch %d, %d seeds' % (b, losses.shape[1]))
        ax.legend(fontsize=9)
    return axes


# --- figures -----------------------------------------------------------------------------

def plot_rates(ax, h, rates, colors):
    """Rate per step against ``eta * lambda``: ``rates`` is ``{mu: (measured, predicted)}``
    at the points ``h`` (measured as dots, the theory as a line over the same range)."""
    fine = np.linspace(min(h), max(h), 400)
    for color, (mu, (measured, _)) in zip(colors, rates.items()):
        ax.plot(fine, predicted_rate(fine, mu), color=color, lw=1)
        ax.plot(h, measured, 'o', color=color, ms=4, label='momentum %g' % mu)
    ax.axhline(1, color='0.5', ls=':')
    ax.set(xlabel='$\\eta\\lambda$', ylabel='rate per step $\\rho$', ylim=(0, 1.6),
           title='rate per direction: measured (dots), theory (lines)')
    ax.legend(fontsize=9)
    return ax


def plot_limits(ax, limits, colors):
    """The measured stability limits ``{(mu, nesterov): eta * lambda}`` as squares over the
    theory's lines ``stability_limit(mu, nesterov)``."""
    mus = np.linspace(0, 0.95, 50)
    for color, nesterov in zip(colors, (False, True)):
        found = sorted((mu, v) for (mu, n), v in limits.items() if n == nesterov)
        ax.plot(mus, [stability_limit(m, nesterov) for m in mus], color=color, lw=1)
        if found:
            ax.plot(*zip(*found), 's', color=color,
                    label='Nesterov' if nesterov else 'heavy ball')
    ax.set(xlabel='momentum $\\mu$', ylabel='largest stable $\\eta\\lambda$',
           title='stability limit: measured (squares), theory (lines)')
    ax.legend(fontsize=9)
    return ax
