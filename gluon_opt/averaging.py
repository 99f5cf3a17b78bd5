r"""Weight averages of a Gluon network: an exponential moving average (EMA) and stochastic
weight averaging (SWA), kept beside the training weights and swapped in for evaluation.

Both keep one float32 average per averaged parameter and fold the current weights into it
after optimizer steps with one update,

.. math::

    \bar w \leftarrow \bar w + \alpha_t (w - \bar w),

whose :math:`\alpha_t` is all that tells them apart: :math:`1 - \text{decay}_t` for the EMA,
:math:`1 / (n + 1)` for SWA's equal-weight mean of the :math:`n + 1` weights averaged so far.
The update runs as one fused kernel call over every parameter (``gopt_average`` in
``gluon_opt/kernels/averaging.cc``) where the kernels are built and the weights are float32
arrays on a CPU, else as the readable ``mx.nd`` reference (``_blend``); the two agree bit for
bit. ``use_fused`` and ``GLUON_OPT_IMPL`` choose as for the optimizers.

Usage, with any trainer::

    ema = gluon_opt.averaging.EMA(net, decay=0.999)
    for x, y in loader:
        ...; trainer.step(batch_size)
        ema.update()
    with ema.evaluation():          # the parameters hold the averages, restored on exit
        evaluate(net, test_loader)

SWA (``SWA(net, start=..., frequency=...)``) is used the same way; a network with BatchNorm
then needs its running statistics recomputed at the averaged weights (:func:`update_bn`)
inside the ``evaluation`` block, as ``torch.optim.swa_utils.update_bn`` does, or once after
:meth:`WeightAverage.copy_to_params` at the end of training.

What is averaged: the trained parameters (``grad_req != 'null'``), as
``torch.optim.swa_utils.AveragedModel``; ``use_buffers=True`` averages the others too
(BatchNorm's running mean and variance), as ``AveragedModel(use_buffers=True)`` and timm's
``ModelEmaV3`` do. The averages are read from, and swapped into, the parameters' arrays on
every context (the first context's weights are read: every context holds the same after a
step). With float16 weights the float16 weights are averaged in float32 (the optimizer's float32
master copies are its own).

``save``/``load`` write and read plain arrays (an ``.npz`` read with ``allow_pickle=False``, a
JSON description and a SHA-256 checksum, as ``gluon_opt.states``): loading runs no code and
checks the kind, the settings, the names, shapes and count of the averages.
"""
import contextlib
import json
import os

import numpy as np
import mxnet as mx
from mxnet import autograd, gluon

from . import kernels
from . import states as _states
from .optimizers.base import (IMPL_ENV, check_bool, check_int, check_range,
                              _IMPL_CHOICES)

__all__ = ['WeightAverage', 'EMA', 'SWA', 'update_bn', 'AveragesFileError']

FORMAT = 'gluon_opt.weight_averages'
VERSION = 1
_AVERAGE_OP = 'gopt_average'


class AveragesFileError(ValueError):
    """An averages file that cannot be read, or was written for other parameters or settings
    (one line naming the file)."""

    def __init__(self, path, reason):
        super(AveragesFileError, self).__init__('weight averages file %r: %s.' % (path, reason))


def _parameters(params, owner):
    """The ``[Parameter]`` of a Block, a ParameterDict, a dict or a sequence of Parameters."""
    if isinstance(params, gluon.Block):
        params = params.collect_params()
    if isinstance(params, (gluon.ParameterDict, dict)):
        params = list(params.values())
    if isinstance(params, (list, tuple)) and params and all(
            isinstance(p, gluon.Parameter) for p in params):
        return list(params)
    raise ValueError('%s: params=%r is invalid; expected a Block, a ParameterDict, a dict of '
                     'Parameters or a non-empty list of Parameters.' % (owner, params))


def _blend(average, weight, alpha):
    """The reference update ``avg <- avg + alpha * (w - avg)`` in float32, in place (the
    kernel repeats these operations in this order)."""
    diff = weight.astype(np.float32, copy=False) - average
    average[:] = average + alpha * diff


class WeightAverage(object):
    """What EMA and SWA share: the averages, their update, evaluation swap-in, save and load.
    Subclasses define ``_alpha()`` (None where an update is not due) and ``settings()``."""
    kind = None

    def __init__(self, params, use_buffers=False, use_fused=None):
        owner = type(self).__name__
        self.use_buffers = check_bool(owner, 'use_buffers', use_buffers)
        self.use_fused = check_bool(owner, 'use_fused', use_fused, allow_none=True)
        params = _parameters(params, owner)
        self.params = [p for p in params if self.use_buffers or p.grad_req != 'null']
        if not self.params:
            raise ValueError('%s: params holds no trained parameter (grad_req is "null" for '
                             'all of them); pass use_buffers=True to average those.' % owner)
        names = [p.name for p in self.params]
        if len(set(names)) != len(names):
            raise ValueError('%s: params holds several parameters of the same name; the '
                             'averages are saved and loaded by name.' % owner)
        #: ``update()`` calls so far (optimizer steps, when called after each)
        self.num_updates = 0
        #: updates folded into the averages so far (SWA's n; every update for the EMA)
        self.num_averaged = 0
        #: ``{name: float32 NDArray}`` on each parameter's first context; empty until the
        #: parameters are initialised (deferred shapes: the first update fills it)
        self.averages = {}
        self._initialise()

    # -- the averages ----------------------------------------------------------------------
    def _initialise(self):
        """Start the averages from the current weights, once every parameter has them."""
        if self.averages or any(p._data is None for p in self.params):
            return bool(self.averages)
        self.averages = {p.name: p.list_data()[0].astype(np.float32) for p in self.params}
        return True

    def update(self):
        """Fold the current weights into the averages where an update is due (call it after
        every optimizer step). Returns True when the averages changed."""
        if not self._initialise():
            raise RuntimeError('%s.update: the parameters are not initialised yet; run a '
                               'forward pass and an optimizer step first.' % type(self).__name__)
        self.num_updates += 1
        alpha = self._alpha()
        if alpha is None:
            return False
        pairs = [(p.list_data()[0], self.averages[p.name]) for p in self.params]
        if alpha == 1.0:  # the first average is the weights themselves, exactly
            for w, avg in pairs:
                w.astype(np.float32, copy=False).copyto(avg)
        else:
            rest = self._fused_blend(pairs, alpha) if self._fused_selected() else pairs
            for w, avg in rest:
                _blend(avg, w, alpha)
        self.num_averaged += 1
        return True

    def _fused_selected(self):
        choice = self.use_fused
        if choice is False:
            return False
        if choice is None:
            env = os.environ.get(IMPL_ENV, 'auto').strip().lower() or 'auto'
            if env not in _IMPL_CHOICES:
                raise ValueError('%s=%r is invalid; expected one of %s.'
                                 % (IMPL_ENV, env, ', '.join(_IMPL_CHOICES)))
            if env == 'reference':
                return False
            if env == 'auto':
                return kernels.available()
        kernels.require()
        return True

    @staticmethod
    def _fused_blend(pairs, alpha):
        """One ``gopt_average`` call (per 256 tensors) over the float32 CPU weights; returns the
        pairs it does not take (float16 or GPU weights), which the reference updates."""
        taken, rest = [], []
        for w, avg in pairs:
            if w.dtype == np.float32 and w.context.device_type != 'gpu' and w.stype == 'default':
                taken.append(([w, avg], avg, ()))
            else:
                rest.append((w, avg))
        if taken:
            kernels.call(_AVERAGE_OP, taken, alpha=repr(float(alpha)))
        return rest

    # -- evaluation ------------------------------------------------------------------------
    @contextlib.contextmanager
    def evaluation(self):
        """A context manager under which the parameters hold the averages (on every context),
        restored bit for bit on exit, also when the block raises. The optimizer's states and
        master weights are not touched, so training resumes exactly where it stopped; do not
        step the optimizer inside the block."""
        if not self._initialise():
            raise RuntimeError('%s.evaluation: the parameters are not initialised yet.'
                               % type(self).__name__)
        saved = [[arr.copy() for arr in p.list_data()] for p in self.params]
        try:
            self._write(self.params)
            yield self
        finally:
            for p, copies in zip(self.params, saved):
                for arr, copy in zip(p.list_data(), copies):
                    copy.copyto(arr)

    def copy_to_params(self):
        """Write the averages into the parameters for good (the end of SWA training)."""
        if not self._initialise():
            raise RuntimeError('%s.copy_to_params: the parameters are not initialised yet.'
                               % type(self).__name__)
        self._write(self.params)

    def _write(self, params):
        # into the arrays, not through Parameter.set_data, which resets the kvstore (and with
        # it the optimizer's states) under update_on_kvstore=True
        for p in params:
            avg = self.averages[p.name]
            for arr in p.list_data():
                avg.astype(arr.dtype, copy=False).copyto(arr)

    # -- save and load -----------------------------------------------------------------------
    def settings(self):
        """The hyperparameters a file must match (``{name: value}``)."""
        raise NotImplementedError

    def save(self, fname):
        """The averages and counters into ``fname`` (plain arrays, JSON, a checksum)."""
        if not self._initialise():
            raise RuntimeError('%s.save: the parameters are not initialised yet.'
                               % type(self).__name__)
        names = [p.name for p in self.params]
        document = {'format': FORMAT, 'version': VERSION, 'kind': self.kind,
                    'settings': self.settings(), 'use_buffers': self.use_buffers,
                    'num_updates': self.num_updates, 'num_averaged': self.num_averaged,
                    'params': [{'name': n, 'shape': list(self.averages[n].shape)}
                               for n in names]}
        arrays = {'a%d' % i: self.averages[n].asnumpy() for i, n in enumerate(names)}
        _states.write(fname, document, arrays)

    def load(self, fname):
        """Read what :meth:`save` wrote, checked against these averages; nothing changes when
        the file is refused (``AveragesFileError``)."""
        try:
            with np.load(fname, allow_pickle=False) as z:
                arrays = {name: z[name] for name in z.files}
        except Exception as err:  # missing, truncated, not a zip, a pickle: all refused here
            raise AveragesFileError(fname, 'cannot be read (%s: %s)' % (type(err).__name__, err))
        raw = arrays.pop(_states._JSON, None)
        stored = arrays.pop(_states._DIGEST, None)
        if raw is None or stored is None:
            raise AveragesFileError(fname, 'not a gluon_opt weight averages file')
        raw = raw.tobytes()
        if _states._digest(raw, arrays) != stored.tobytes().decode('ascii', 'replace'):
            raise AveragesFileError(fname, 'corrupt: its SHA-256 checksum does not match')
        try:
            doc = json.loads(raw.decode('utf-8'))
        except ValueError as err:
            raise AveragesFileError(fname, 'corrupt (its JSON does not parse: %s)' % err)
        if not isinstance(doc, dict) or doc.get('format') != FORMAT or \
                doc.get('version') != VERSION:
            raise AveragesFileError(fname, 'not a version-%d gluon_opt weight averages file'
                                    % VERSION)
        mine = (self.kind, self.settings(), self.use_buffers)
        theirs = (doc.get('kind'), doc.get('settings'), doc.get('use_buffers'))
        if mine != theirs:
            raise AveragesFileError(fname, 'written by %s %s (use_buffers=%s), not %s %s '
                                    '(use_buffers=%s)' % (theirs + mine))
        self._initialise()
        expected = [(p.name, list(self.averages[p.name].shape) if self.averages else None)
                    for p in self.params]
        got = [(e.get('name'), e.get('shape')) for e in doc.get('params', [])]
        if [n for n, _ in got] != [n for n, _ in expected] or any(
                s is not None and s != g for (_, s), (_, g) in zip(expected, got)):
            raise AveragesFileError(fname, 'holds the averages of %s, not of %s'
                                    % (got, expected))
        counts = (doc.get('num_updates'), doc.get('num_averaged'))
        if not all(isinstance(c, int) and not isinstance(c, bool) and c >= 0 for c in counts):
            raise AveragesFileError(fname, 'bad counters %r' % (counts,))
        values = []
        for i, (name, shape) in enumerate(got):
            a = arrays.get('a%d' % i)
            if a is None or a.dtype != np.float32 or list(a.shape) != shape:
                raise AveragesFileError(fname, 'array of %s missing or not float32 %s'
                                        % (name, shape))
            values.append(a)
        for p, a in zip(self.params, values):
            ctx = p.list_ctx()[0] if p._data is not None else mx.cpu()
            self.averages[p.name] = mx.nd.array(a, ctx=ctx, dtype=np.float32)
        self.num_updates, self.num_averaged = counts

    def __repr__(self):
        return '%s(%s, %d parameters, %d updates, %d averaged)' % (
            type(self).__name__, ', '.join('%s=%r' % kv for kv in sorted(self.settings().items())),
            len(self.params), self.num_updates, self.num_averaged)


class EMA(WeightAverage):
    r"""An exponential moving average of the weights, with the decay warmed up.

    After the optimizer step number :math:`t` (1-based; ``update()`` counts them):

    .. math::

        d_t = \min\left(d, \frac{1 + t}{10 + t}\right), \qquad
        \bar w \leftarrow d_t \bar w + (1 - d_t) w
        \quad (\text{computed as } \bar w + (1 - d_t)(w - \bar w))

    with :math:`\bar w` starting from the weights at construction (at the first update where
    the parameters are not initialised yet). The warmup is TensorFlow's
    ``tf.train.ExponentialMovingAverage(decay, num_updates=step)``; without it (``warmup=False``,
    :math:`d_t = d`) a decay of 0.9999 would keep the initial weights' mark for tens of
    thousands of steps.

    Parameters
    ----------
    params : Block, ParameterDict, dict or list of Parameters
    decay : float in [0, 1], default 0.9999
    warmup : bool, default True
    use_buffers : bool, default False
        Also average the parameters that are not trained (BatchNorm's running statistics).
    use_fused : bool or None, default None (``GLUON_OPT_IMPL``)

    Example::

        ema = gluon_opt.averaging.EMA(net, decay=0.999)
        ...; trainer.step(batch_size); ema.update()
        with ema.evaluation():
            evaluate(net, test_loader)

    Conventions: ``torch.optim.swa_utils.AveragedModel(multi_avg_fn=get_ema_multi_avg_fn(d))``
    uses a constant decay and *copies* the weights at its first ``update_parameters`` call;
    here the average starts from the weights at construction, so ``warmup=False`` matches torch
    when torch's first update is made at construction (as the tests do). timm's ``ModelEmaV3``
    warms up with ``1 - (1 + t / inv_gamma)^{-power}`` instead. Reference: Polyak & Juditsky,
    "Acceleration of Stochastic Approximation by Averaging", SIAM J. Control Optim. 1992 (the
    average); TensorFlow's ``ExponentialMovingAverage`` (the warmup).
    """
    kind = 'ema'

    def __init__(self, params, decay=0.9999, warmup=True, use_buffers=False, use_fused=None):
        self.decay = check_range('EMA', 'decay', decay, 0.0, 1.0, high_open=False)
        self.warmup = check_bool('EMA', 'warmup', warmup)
        super(EMA, self).__init__(params, use_buffers=use_buffers, use_fused=use_fused)

    def decay_at(self, t):
        """:math:`d_t` of the update after step ``t`` (1-based)."""
        return min(self.decay, (1.0 + t) / (10.0 + t)) if self.warmup else self.decay

    def _alpha(self):
        return 1.0 - self.decay_at(self.num_updates)

    def settings(self):
        return {'decay': self.decay, 'warmup': self.warmup}


class SWA(WeightAverage):
    r"""Stochastic weight averaging: the equal-weight mean of the weights after the steps
    ``start``, ``start + frequency``, ``start + 2 frequency``, ...

    .. math::

        \bar w \leftarrow \bar w + \frac{w - \bar w}{n + 1}, \qquad n \leftarrow n + 1

    at those steps (1-based step numbers, as ``update()`` counts them); the first one copies the
    weights (:math:`n = 0`). Before it, :math:`\bar w` holds the weights at construction.
    Izmailov et al. average once per epoch under a cyclical or high constant learning rate
    (``frequency`` = the steps per epoch); BatchNorm statistics must then be recomputed at the
    average (:func:`update_bn`).

    Parameters
    ----------
    params : Block, ParameterDict, dict or list of Parameters
    start : int >= 1, default 1
        The first step averaged.
    frequency : int >= 1, default 1
        Steps between two averaged ones.
    use_buffers : bool, default False
    use_fused : bool or None, default None (``GLUON_OPT_IMPL``)

    Example::

        swa = gluon_opt.averaging.SWA(net, start=75 * steps_per_epoch,
                                      frequency=steps_per_epoch)
        ...; trainer.step(batch_size); swa.update()
        swa.copy_to_params(); gluon_opt.averaging.update_bn(train_loader, net)

    Conventions: as ``torch.optim.swa_utils.AveragedModel`` with its default averaging, which
    leaves *when* to call ``update_parameters`` to the caller (here ``start``/``frequency``).
    Reference: Izmailov, Podoprikhin, Garipov, Vetrov & Wilson, "Averaging Weights Leads to
    Wider Optima and Better Generalization", UAI 2018.
    """
    kind = 'swa'

    def __init__(self, params, start=1, frequency=1, use_buffers=False, use_fused=None):
        self.start = check_int('SWA', 'start', start, 1)
        self.frequency = check_int('SWA', 'frequency', frequency, 1)
        super(SWA, self).__init__(params, use_buffers=use_buffers, use_fused=use_fused)

    def _alpha(self):
        t = self.num_updates
        if t < self.start or (t - self.start) % self.frequency:
            return None
        return 1.0 / (self.num_averaged + 1)

    def settings(self):
        return {'start': self.start, 'frequency': self.frequency}


def _batch_norms(block):
    """The BatchNorm blocks under ``block`` that update running statistics."""
    out = []
    stack = [block]
    while stack:
        b = stack.pop()
        if isinstance(b, gluon.nn.BatchNorm) and not b._kwargs.get('use_global_stats', False):
            out.append(b)
        stack.extend(b._children.values())
    return out


def _clear_cached_graphs(block):
    # a hybridized block bakes BatchNorm's momentum into its cached graph: rebuild it
    stack = [block]
    while stack:
        b = stack.pop()
        if isinstance(b, gluon.HybridBlock):
            b._clear_cached_op()
        stack.extend(b._children.values())


def update_bn(loader, net, ctx=None, momentum=None):
    """Recompute the running mean and variance of every BatchNorm in ``net`` from the batches
    of ``loader`` at the current weights (``torch.optim.swa_utils.update_bn``): the statistics
    are reset (mean 0, variance 1) and one forward and backward pass in training mode is made per
    batch (MXNet updates the statistics in BatchNorm's backward pass; the parameters' gradients
    are restored afterwards, so an update_bn between two steps changes no gradient).

    ``momentum=None`` (the default, as torch's) makes the result the equal-weight mean of the
    batches' statistics (a cumulative average); a number in [0, 1) keeps MXNet's exponential
    update ``running <- momentum * running + (1 - momentum) * batch`` with that momentum
    (MXNet's convention: the weight of the old value, torch's is the new one's). Each batch is
    ``data`` or ``(data, ...)`` (``(data, label)`` from a ``DataLoader``); it is moved to
    ``ctx`` (default: the context of ``net``'s first parameter), and the statistics found there
    are written to every context. MXNet's running variance is
    the biased batch variance (torch's is the unbiased one). The blocks' momentum and cached
    graphs are restored afterwards. Returns the number of batches seen (0: nothing to do).
    """
    if momentum is not None:
        momentum = check_range('update_bn', 'momentum', momentum, 0.0, 1.0)
    bns = _batch_norms(net)
    if not bns:
        return 0
    if ctx is None:
        ctx = next(iter(net.collect_params().values())).list_ctx()[0]
    saved = [b._kwargs['momentum'] for b in bns]
    # cumulative: momentum 0 leaves each batch's statistics in the running ones, which are
    # summed here in float64
    for b in bns:
        b._kwargs['momentum'] = 0.0 if momentum is None else momentum
        for p in (b.running_mean, b.running_var):
            for arr in p.list_data():
                arr[:] = 0.0 if p is b.running_mean else 1.0
    _clear_cached_graphs(net)
    sums = [[0.0, 0.0] for _ in bns]
    seen = 0
    # MXNet updates the running statistics in BatchNorm's backward pass, so every batch is a
    # forward and backward pass; the gradients it writes are put back as they were
    grads = [(g, g.copy()) for p in net.collect_params().values() if p.grad_req != 'null'
             and p._data is not None for g in p.list_grad()]
    try:
        for batch in loader:
            data = batch[0] if isinstance(batch, (list, tuple)) else batch
            with autograd.record(train_mode=True):
                out = net(data.as_in_context(ctx))
            autograd.backward(list(out) if isinstance(out, (list, tuple)) else [out])
            seen += 1
            if momentum is None:
                for s, b in zip(sums, bns):
                    s[0] = s[0] + b.running_mean.data(ctx).asnumpy().astype(np.float64)
                    s[1] = s[1] + b.running_var.data(ctx).asnumpy().astype(np.float64)
        for s, b in zip(sums, bns):
            for i, p in enumerate((b.running_mean, b.running_var)):
                value = (mx.nd.array(s[i] / seen, dtype=p.dtype) if momentum is None and seen
                         else p.data(ctx))
                for arr in p.list_data():  # every context; not set_data: see _write
                    if arr is not value:
                        value.copyto(arr)
    finally:
        for g, copy in grads:
            copy.copyto(g)
        for b, m in zip(bns, saved):
            b._kwargs['momentum'] = m
        _clear_cached_graphs(net)
    return seen
