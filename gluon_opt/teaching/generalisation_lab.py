"""Comparing optimizers over seeds, honestly (chapter 7).

* ``interval(values)``: the mean of a few runs with a t-based confidence interval;
* ``paired_difference(a, b, comparisons=k)``: the mean of per-seed differences ``a - b`` (the
  same seed gives both optimizers the same initial weights and minibatch order, so the runs
  are paired) with a t interval, Bonferroni-widened when ``k`` differences are read at once;
* ``per_seed(runs, key)``: one final metric per seed for every label of a comparison;
* ``fit(spec, loaders, ...)``: one training run, measured once at the end;
* ``tune_then_test(candidates, ...)``: pick each optimizer's learning rate on the validation
  set, then train the pick under fresh seeds and measure it on the test set.

>>> from gluon_opt.teaching.generalisation_lab import interval, paired_difference
>>> str(interval([0.80, 0.82, 0.81, 0.79, 0.83]))
'0.810 ± 0.020'
>>> d = paired_difference([0.80, 0.82, 0.81], [0.78, 0.80, 0.80])
>>> d.excludes_zero
True
"""
import math

import numpy as np

from ..experiments import compare

__all__ = ['Interval', 't_quantile', 'interval', 'paired_difference', 'per_seed',
           'fit', 'tune_then_test']


def t_quantile(confidence, df):
    """The two-sided Student-t quantile: ``P(|T| <= q) = confidence`` with ``df`` degrees of
    freedom (scipy, which gluoncv already requires)."""
    from scipy import stats
    if not 0 < confidence < 1:
        raise ValueError('confidence=%r is invalid; expected 0 < confidence < 1.' % (confidence,))
    if df < 1:
        raise ValueError('an interval needs at least 2 values; got %d.' % (df + 1))
    return float(stats.t.ppf(0.5 + confidence / 2, df))


class Interval(object):
    """``mean ± half`` from ``n`` values at ``confidence`` (a t interval)."""

    def __init__(self, mean, half, n, confidence):
        self.mean, self.half, self.n, self.confidence = mean, half, n, confidence

    @property
    def low(self):
        return self.mean - self.half

    @property
    def high(self):
        return self.mean + self.half

    @property
    def excludes_zero(self):
        """Whether the interval lies entirely on one side of 0: a difference beyond the noise
        at this confidence."""
        return self.low > 0 or self.high < 0

    def __str__(self):
        return '%.3f ± %.3f' % (self.mean, self.half)

    def __repr__(self):
        return 'Interval(%s, n=%d, %.1f %%)' % (self, self.n, 100 * self.confidence)


def interval(values, confidence=0.95):
    """The mean of ``values`` with the half-width ``t * s / sqrt(n)`` of a t interval."""
    v = np.asarray(values, dtype=np.float64)
    if v.ndim != 1 or v.size < 2 or not np.all(np.isfinite(v)):
        raise ValueError('expected at least 2 finite values; got %r.' % (values,))
    half = t_quantile(confidence, v.size - 1) * v.std(ddof=1) / math.sqrt(v.size)
    return Interval(float(v.mean()), float(half), int(v.size), confidence)


def paired_difference(a, b, confidence=0.95, comparisons=1):
    """The interval of the mean per-seed difference ``a[i] - b[i]``. With ``comparisons``
    differences read together, each is given confidence ``1 - (1 - confidence) /
    comparisons`` (Bonferroni), so that all of them hold together with at least
    ``confidence``."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if a.shape != b.shape:
        raise ValueError('paired values need the same length; got %d and %d.'
                         % (a.size, b.size))
    if comparisons < 1:
        raise ValueError('comparisons=%r is invalid; expected >= 1.' % (comparisons,))
    return interval(a - b, 1 - (1 - confidence) / comparisons)


def per_seed(runs, key):
    """``{label: array over seeds}`` of a final metric of ``compare.run_comparison``'s runs,
    in seed order. ``key``: a History column (``'test_acc'``, ``'train_loss'``, ...) or
    ``'gap'`` (train minus test accuracy). A diverged run gives NaN."""
    out = {}
    for r in sorted(runs, key=lambda r: r.seed):
        if r.diverged is not None:
            value = float('nan')
        elif key == 'gap':
            value = r.history.final('train_acc') - r.history.final('test_acc')
        else:
            value = r.history.final(key)
        out.setdefault(r.spec.label, []).append(value)
    return {label: np.array(v) for label, v in out.items()}


def fit(spec, loaders, net_factory, epochs, seed, **train_kwargs):
    """Train ``net_factory()`` with ``spec`` (an ``OptimizerSpec``) for ``epochs`` under
    ``seed``; return ``{'train_acc', 'train_loss', 'val_acc', 'test_acc'}`` measured once, at
    the end, in prediction mode (the whole training set, and ``loaders.val``/``loaders.test``;
    ``val_acc`` is None without a validation loader), or None if the run diverged.

    ``training.train`` evaluates after every epoch; here only the end counts, so it is given
    a 16-example stand-in for the test set and no validation set while it trains."""
    import mxnet as mx
    from ..experiments import data, training
    stand_in = data.ArrayLoader(loaders.test.data[:16], loaders.test.label[:16], 16)
    lean = data.Loaders(loaders.train, None, stand_in)
    net = net_factory()
    try:
        training.train(net, spec.name, lean, epochs, seed=seed, optimizer_params=spec.params,
                       progress=False, train_eval_size=0, **train_kwargs)
    except training.TrainingDiverged:
        return None
    ctx = [mx.cpu()]
    n = loaders.train.num_examples
    train_loss, train_acc = training.evaluate(net, loaders.train.head(n), ctx)
    val = getattr(loaders, 'val', None)
    return {'train_acc': train_acc, 'train_loss': train_loss,
            'val_acc': training.evaluate(net, val, ctx)[1] if val is not None else None,
            'test_acc': training.evaluate(net, loaders.test, ctx)[1]}


def tune_then_test(candidates, loaders, net_factory, epochs, tune_seeds, test_seeds,
                   **train_kwargs):
    """For every ``{name: [OptimizerSpec, ...]}`` entry, ``fit`` each spec under
    ``tune_seeds`` and keep the one with the highest mean validation accuracy (a diverged run
    disqualifies its spec); then ``fit`` the kept spec under ``test_seeds`` (seeds not used
    for tuning, so the test runs are fresh draws). The test set plays no part in the choice.

    Returns ``{name: {'chosen': spec, 'val_acc': {spec label: mean validation accuracy},
    'test': {metric: array over test_seeds}}}`` (metrics as ``fit`` returns them; NaN for a
    diverged run).
    """
    if getattr(loaders, 'val', None) is None:
        raise ValueError('tune_then_test needs a validation loader (val_size > 0).')
    if set(tune_seeds) & set(test_seeds):
        raise ValueError('tuning and test seeds overlap: %s.'
                         % sorted(set(tune_seeds) & set(test_seeds)))
    out = {}
    for name, specs in candidates.items():
        scores = {}
        for spec in specs:
            runs = [fit(spec, loaders, net_factory, epochs, s, **train_kwargs)
                    for s in tune_seeds]
            scores[spec.label] = (float(np.mean([r['val_acc'] for r in runs]))
                                  if all(r is not None for r in runs) else float('-inf'))
        chosen = max(specs, key=lambda s: scores[s.label])
        runs = [fit(chosen, loaders, net_factory, epochs, s, **train_kwargs)
                for s in test_seeds]
        keys = ('train_acc', 'train_loss', 'val_acc', 'test_acc')
        test = {k: np.array([np.nan if r is None else r[k] for r in runs], dtype=np.float64)
                for k in keys}
        out[name] = {'chosen': chosen, 'val_acc': scores, 'test': test}
    return out
