"""``gluon_opt.Trainer``: ``gluon.Trainer`` plus closures, global-norm clipping, gradient
accumulation, weight-decay exclusion, a check of NaN/inf gradients and safe states files.

It is a drop-in subclass: code written for ``gluon.Trainer`` runs unchanged. What it adds:

* ``step(batch_size, closure=None)``: the closure re-evaluates the loss and gradients (like
  ``torch.optim.LBFGS.step(closure)``). Closure-based optimizers (``gluon_opt.newton``,
  ``lbfgs``, ``hessian_free``, ``sam``, ``sophia``) need it; with any other optimizer a
  closure is simply called once before the usual update. ``step`` returns the loss (a float
  for the line-search methods, an NDArray otherwise, None without a closure).
* ``clip_global_norm=max_norm``: gradients (after the ``1/batch_size`` rescale, summed over
  contexts) are scaled so that their global L2 norm is at most ``max_norm``
  (``torch.nn.utils.clip_grad_norm_``), on the device, without a host synchronisation.
* ``clip_adaptive=lambda``: adaptive gradient clipping (AGC, Brock et al., 2021), unit-wise:
  each output unit's gradient is scaled down where its norm exceeds ``lambda`` times its
  weights' norm (:meth:`Trainer._clip_adaptive_units`).
* ``accumulate=k``: gradients of ``k`` consecutive ``step`` calls are summed and applied once,
  normalised by the total batch size (the effective batch is ``k`` batches). Parameters get
  ``grad_req='add'`` and are zeroed after each update, so the training loop is unchanged.
* ``no_decay=True`` (or a predicate ``f(param) -> bool``): biases and normalisation
  parameters (names ending in ``bias``, ``gamma``, ``beta``) get ``wd_mult = 0``.
* ``nonfinite='raise'`` or ``'skip'``: a step with NaN or infinite gradients updates nothing and
  raises :class:`NonFiniteGradient` naming the step and the parameters, or is skipped and
  counted. The default, ``'ignore'``, applies it as ``gluon.Trainer`` does (the weights become
  NaN without a word): the check costs a device pass and a host synchronisation per step, 20%
  of a step of the course MLP on a CPU (``docs/robustness.md``).
* ``save_states``/``load_states`` in a format that cannot run code (``gluon_opt.states``: arrays
  in an ``.npz``, everything else in JSON, a SHA-256 checksum), checked against the trainer on
  loading. ``gluon.Trainer``'s states file is a pickle: loading one runs whatever code it holds.
* A fix for a race of MXNet 1.9.1's ``gluon.Trainer`` on ``dist_*`` kvstores with
  ``update_on_kvstore=False`` (see ``Trainer._init_params``): with ``gluon.Trainer`` a worker can
  start training from the *gradient sum* in place of its initial weights.

The closure
-----------
``closure()`` runs the forward pass under ``autograd.record()``, calls ``backward()`` and
returns the loss it differentiated, e.g.::

    def closure():
        with autograd.record():
            loss = loss_fn(net(x), y)      # per-sample losses
        loss.backward()
        return loss
    trainer.step(len(x), closure)

As everywhere in Gluon, the loss and the gradients are multiplied by ``1/batch_size``; if the
closure averages the loss itself, pass ``batch_size=1``. With several contexts, return the
list of per-context losses.
"""
import math

import numpy as np
from mxnet import gluon, nd

from . import states as _states
from .optimizers.closure import ParamProblem
from .states import StatesFileError

__all__ = ['Trainer', 'default_no_decay', 'NonFiniteGradient', 'StatesFileError',
           'NONFINITE_MODES']

#: what ``Trainer(nonfinite=...)`` accepts
NONFINITE_MODES = ('raise', 'skip', 'ignore')
#: arrays per ``multi_sum_sq`` call (MXNet's multi-tensor ops take a bounded number of inputs:
#: ``multi_all_finite`` crashes the process past 200 on CPU, and is 20 times slower)
_CHUNK = 128


class NonFiniteGradient(FloatingPointError):
    """A step met NaN or infinite gradients (``nonfinite='raise'``, or more than
    ``max_consecutive_skips`` steps in a row with ``'skip'``). Nothing was updated: weights,
    optimizer states and update counts are those before the step.

    ``step``: the number of the ``Trainer.step`` call (1-based); ``params``: the names of the
    parameters whose gradients hold NaN or inf; ``skipped``: consecutive steps skipped before
    this one (``'skip'`` only)."""

    def __init__(self, message, step, params, skipped=0):
        super(NonFiniteGradient, self).__init__(message)
        self.step, self.params, self.skipped = step, list(params), skipped


class _SkipStep(Exception):
    """Raised inside the closure to abandon a closure-based step before it changes anything."""

    def __init__(self, loss):
        super(_SkipStep, self).__init__()
        self.loss = loss


def _sum_of_squares(grads, dtype):
    """The sum of the squares of every element of ``grads``, computed in ``dtype``, as one
    NDArray on their context (the global norm's square, for ``clip_global_norm``)."""
    sq = [nd.sum(nd.square(g.astype(dtype))) for g in grads]
    return nd.add_n(*sq) if len(sq) > 1 else sq[0]


def _squares(grads):
    """The sums of the squares of the gradients' elements, as float32 NDArrays on their context
    (one ``multi_sum_sq`` call per dtype and chunk; one entry per gradient). A sum is NaN or inf
    exactly when an element is, or when a square overflows float32 (|g| > 1.8e19), which
    ``Trainer._diagnose`` tells apart on the host."""
    by_dtype = {}
    for g in grads:
        if g.stype == 'row_sparse':
            g = g.data
        # integer gradients cannot be NaN or inf (and multi_sum_sq refuses them): the
        # optimizer's own dtype check names such a parameter
        if g.size and np.issubdtype(np.dtype(g.dtype), np.floating):
            by_dtype.setdefault(np.dtype(g.dtype), []).append(g)
    out = []
    for gs in by_dtype.values():
        for i in range(0, len(gs), _CHUNK):
            chunk = gs[i:i + _CHUNK]
            out.append(nd.multi_sum_sq(*chunk, num_arrays=len(chunk)))
    return out


_NO_DECAY_SUFFIXES = ('bias', 'gamma', 'beta')


def default_no_decay(param):
    """True for biases and normalisation scales/shifts (names ending in bias/gamma/beta)."""
    return param.name.endswith(_NO_DECAY_SUFFIXES)


class Trainer(gluon.Trainer):
    """``gluon.Trainer`` with closures, global-norm clipping, accumulation, no-decay sets, an
    optional check of the gradients and a states file that cannot run code.

    Parameters
    ----------
    params, optimizer, optimizer_params, kvstore, compression_params, update_on_kvstore :
        as ``gluon.Trainer``.
    clip_global_norm : float > 0 or None, default None
        Maximum global L2 norm of the (rescaled) gradients.
    clip_adaptive : float > 0 or None, default None
        Adaptive gradient clipping's factor lambda (the paper: 0.01 at batch 4096, larger for
        smaller batches; timm's default 0.01): see :meth:`_clip_adaptive_units`. Exclusive
        with ``clip_global_norm``.
    accumulate : int >= 1, default 1
        Number of ``step`` calls whose gradients are summed before one update.
    no_decay : bool or callable, default False
        True excludes biases and normalisation parameters from weight decay
        (:func:`default_no_decay`); a callable ``f(param) -> bool`` chooses the excluded ones.
    nonfinite : {'raise', 'skip', 'ignore'}, default 'ignore'
        What a step whose gradients hold NaN or inf does. ``'raise'``: nothing is updated and
        :class:`NonFiniteGradient` names the step and the parameters. ``'skip'``: nothing is
        updated (weights, optimizer states and update counts stay as they were), the step is
        counted in ``skipped_steps``, and a step that would be the ``max_consecutive_skips +
        1``-th skip in a row raises :class:`NonFiniteGradient` instead. ``'ignore'``: the
        update is applied, as ``gluon.Trainer`` does (the weights become NaN); no check, no
        cost. The default is 'ignore' because the check costs about 20% of a step of the
        course MLP's training loop on a CPU (a 269k-parameter model whose step takes 5 ms:
        one more pass over the gradients and a host synchronisation that stops MXNet from
        queueing the next batch's work meanwhile); on ResNet-50's 25.6M parameters it costs
        26 ms per step, 0.2% of a forward and backward pass of 32 images (14 s on the same
        CPU). Ask for 'raise' or 'skip' for long or unattended runs and for large models.
    max_consecutive_skips : int >= 0, default 10
        With ``nonfinite='skip'``: how many steps in a row may be skipped.

    Clipping and accumulation need the gradients reduced before the update, so they imply
    ``update_on_kvstore=False`` (passing True with them is an error). Closure-based optimizers
    update the parameters themselves and also imply ``update_on_kvstore=False``; they do not
    combine with ``accumulate > 1``, and the line-search methods (Newton, L-BFGS, Newton-CG)
    refuse ``clip_global_norm`` (their line search needs the exact gradient).

    The gradient check
    ------------------
    One device pass and one host synchronisation per step: after the gradients are reduced
    over the contexts, MXNet's multi-tensor ``multi_sum_sq`` gives the sum of the squares of
    every gradient element in one call per dtype (with ``clip_global_norm``, the sum of squares
    the clipping computes anyway serves, and no extra pass is made); that one scalar is read.
    It is finite exactly when every element is finite and no square overflows float32; when it
    is not, each parameter's gradient is checked on the host (this path costs time only when it
    is taken), so that a finite gradient whose square overflows (|g| > 1.8e19) is not taken for
    a NaN (with clipping, the norm is then recomputed in float64). Its cost, measured with
    ``gluon-opt bench --sets nonfinite``, chose the default: see ``docs/robustness.md``.

    * ``update_on_kvstore=True``: the kvstore updates the weights as the gradients are pushed,
      so the check runs before the push, on each context's own gradients (a sum that
      overflows only when the contexts' gradients are added up escapes it). On a ``dist_*``
      kvstore each worker checks its own gradients; ``'skip'`` there needs
      ``update_on_kvstore=False`` (implied when it is left None): after the reduction every
      worker sees the same sum and skips the same steps.
    * Closure-based optimizers: the gradients of the closure's first evaluation (at the
      current weights) are checked; the trial points of a line search may be NaN or inf and
      are the optimizer's business. ``'skip'`` abandons the step before the optimizer changes
      anything and returns the closure's loss.
    * ``accumulate > 1``: the summed gradients are checked when the update is due; a skipped
      accumulation is discarded (the gradients are zeroed). After a ``'raise'`` the gradients
      are left as they are, for inspection: zero them before going on.

    States files
    ------------
    :meth:`save_states` writes, and :meth:`load_states` reads, the format of
    :mod:`gluon_opt.states`: arrays in an ``.npz``, the rest in JSON, a SHA-256 checksum;
    nothing in it is executed. Loading checks the optimizer's class, its hyperparameters and
    every parameter's shape and dtype against this trainer, and restores the states and the
    update counts bit for bit.

    Example::

        trainer = gluon_opt.Trainer(net.collect_params(), 'gluon_opt.adamw',
                                    {'learning_rate': 1e-3, 'wd': 0.05},
                                    clip_global_norm=1.0, accumulate=4, no_decay=True)
    """

    def __init__(self, params, optimizer, optimizer_params=None, kvstore='device',
                 compression_params=None, update_on_kvstore=None, clip_global_norm=None,
                 accumulate=1, no_decay=False, nonfinite='ignore', max_consecutive_skips=10,
                 clip_adaptive=None):
        if clip_adaptive is not None:
            if (isinstance(clip_adaptive, bool) or not isinstance(clip_adaptive, (int, float))
                    or not math.isfinite(clip_adaptive) or not clip_adaptive > 0):
                raise ValueError('Trainer: clip_adaptive=%r is invalid; expected a finite number '
                                 '> 0 (the clipping factor lambda, e.g. 0.01) or None.'
                                 % (clip_adaptive,))
            clip_adaptive = float(clip_adaptive)
            if clip_global_norm is not None:
                raise ValueError('Trainer: clip_adaptive=%r and clip_global_norm=%r were both '
                                 'given; pass one of them.' % (clip_adaptive, clip_global_norm))
        if clip_global_norm is not None:
            if (isinstance(clip_global_norm, bool) or
                    not isinstance(clip_global_norm, (int, float)) or not clip_global_norm > 0):
                raise ValueError('Trainer: clip_global_norm=%r is invalid; expected a number '
                                 '> 0 or None.' % (clip_global_norm,))
            clip_global_norm = float(clip_global_norm)
        if isinstance(accumulate, bool) or not isinstance(accumulate, int) or accumulate < 1:
            raise ValueError('Trainer: accumulate=%r is invalid; expected an integer >= 1.'
                             % (accumulate,))
        if not (isinstance(no_decay, bool) or callable(no_decay)):
            raise ValueError('Trainer: no_decay=%r is invalid; expected True, False or a '
                             'function param -> bool.' % (no_decay,))
        if not isinstance(nonfinite, str) or nonfinite not in NONFINITE_MODES:
            raise ValueError('Trainer: nonfinite=%r is invalid; expected one of %s.'
                             % (nonfinite, ', '.join(repr(m) for m in NONFINITE_MODES)))
        if (isinstance(max_consecutive_skips, bool) or not isinstance(max_consecutive_skips, int)
                or max_consecutive_skips < 0):
            raise ValueError('Trainer: max_consecutive_skips=%r is invalid; expected an integer '
                             '>= 0.' % (max_consecutive_skips,))
        super(Trainer, self).__init__(params, optimizer, optimizer_params, kvstore=kvstore,
                                      compression_params=compression_params,
                                      update_on_kvstore=update_on_kvstore)
        self._clip_global_norm = clip_global_norm
        self._clip_adaptive = clip_adaptive
        self._accumulate = accumulate
        self._accum_count = 0
        self._accum_batch = 0
        self._nonfinite = nonfinite
        self._max_consecutive_skips = max_consecutive_skips
        #: ``step`` calls so far (the step number :class:`NonFiniteGradient` reports)
        self.num_steps = 0
        #: steps skipped for non-finite gradients (``nonfinite='skip'``), in all and in a row
        self.skipped_steps = 0
        self.consecutive_skips = 0
        needs_closure = self.needs_closure
        owner = type(self._optimizer).__name__
        if needs_closure:
            if accumulate > 1:
                raise ValueError('Trainer: accumulate=%d does not combine with %s, which '
                                 're-evaluates the loss itself through the closure.'
                                 % (accumulate, owner))
            if clip_global_norm is not None and self._optimizer.exact_gradient:
                raise ValueError('Trainer: clip_global_norm is not supported with %s: its line '
                                 'search needs the exact gradient of the loss.' % owner)
            if clip_adaptive is not None:
                raise ValueError('Trainer: clip_adaptive is not supported with %s, which '
                                 're-evaluates the gradients itself through the closure.'
                                 % owner)
        # the learning-rate-free optimizers' global sums need every parameter in one call
        whole_step = getattr(self._optimizer, 'whole_step', False)
        clipping = clip_global_norm is not None or clip_adaptive is not None
        if needs_closure or whole_step or clipping or accumulate > 1:
            if update_on_kvstore:
                raise ValueError('Trainer: update_on_kvstore=True is incompatible with %s; '
                                 'leave it None.' % ('closure-based optimizers' if needs_closure
                                                     else owner if whole_step
                                                     else 'clip_global_norm/clip_adaptive/'
                                                     'accumulate'))
            self._kvstore_params['update_on_kvstore'] = False
        kv_type = kvstore if isinstance(kvstore, str) else getattr(kvstore, 'type', '')
        if nonfinite == 'skip' and 'dist' in str(kv_type):
            # the servers apply the update as the gradients arrive: workers can only skip a
            # step together when each updates itself from the same reduced gradient
            if update_on_kvstore or 'async' in str(kv_type):
                raise ValueError("Trainer: nonfinite='skip' on a dist kvstore needs "
                                 "update_on_kvstore=False (and a synchronous kvstore), so that "
                                 "all workers skip the same steps; use nonfinite='raise' "
                                 "otherwise.")
            self._kvstore_params['update_on_kvstore'] = False
        if accumulate > 1:
            for p in self._params:
                if p.grad_req != 'null':
                    p.grad_req = 'add'
        if no_decay:
            pred = default_no_decay if no_decay is True else no_decay
            for p in self._params:
                if pred(p):
                    p.wd_mult = 0.0

    @property
    def needs_closure(self):
        """True when the optimizer must be stepped with a closure."""
        return bool(getattr(self._optimizer, 'needs_closure', False))

    def step(self, batch_size, ignore_stale_grad=False, closure=None):
        """One update. See the class docstring; returns the closure's loss (None without a
        closure, and on the ``accumulate - 1`` calls that only accumulate).

        ``trainer.step(batch_size, closure)`` works too: a callable in ``ignore_stale_grad``'s
        position (gluon.Trainer's second argument, a bool) is taken as the closure.

        Raises :class:`NonFiniteGradient` for NaN or infinite gradients (``nonfinite``)."""
        if callable(ignore_stale_grad) and closure is None:
            closure, ignore_stale_grad = ignore_stale_grad, False
        if self.needs_closure:
            if closure is None:
                self._optimizer._refuse()
            self.num_steps += 1
            return self._closure_step(batch_size, closure)
        self.num_steps += 1
        loss = closure() if closure is not None else None
        if self._accumulate > 1:
            self._accum_count += 1
            self._accum_batch += batch_size
            if self._accum_count < self._accumulate:
                return None
            batch_size = self._accum_batch
            self._accum_count = self._accum_batch = 0
        # gluon.Trainer.step, with the check and the clipping between reduction and update
        rescale_grad = self._scale / batch_size
        self._check_and_rescale_grad(rescale_grad)
        if not self._kv_initialized:
            self._init_kvstore()
        if self._params_to_init:
            self._init_params()
        if not self._reduce_check_clip(rescale_grad, ignore_stale_grad):
            return loss  # skipped: nothing updated
        self._update(ignore_stale_grad)
        if self._accumulate > 1:
            for p in self._params:
                if p.grad_req != 'null':
                    p.zero_grad()
        return loss

    def update(self, batch_size, ignore_stale_grad=False):
        """``gluon.Trainer.update`` (after your own ``allreduce_grads``), with the gradient
        check of ``nonfinite`` (each context's gradients are checked)."""
        if self._nonfinite != 'ignore' and not (self._kvstore and self._update_on_kvstore):
            if not self._kv_initialized:
                self._init_kvstore()
            if self._params_to_init:
                self._init_params()
            self.num_steps += 1
            params = self._trained_params(ignore_stale_grad)
            if self._check(params, range(len(self._contexts))) is False:
                return
        super(Trainer, self).update(batch_size, ignore_stale_grad)

    # -- the gradient check ------------------------------------------------------------------
    def _trained_params(self, ignore_stale_grad):
        """The parameters whose gradients the update will use."""
        return [p for p in self._params if p.grad_req != 'null' and
                (not ignore_stale_grad or any(d._fresh_grad for d in p.list_data()))]

    def _reduce_check_clip(self, rescale_grad, ignore_stale_grad):
        """Reduce the gradients over the contexts (and the kvstore), check them, clip them.
        False when the step is skipped."""
        check = self._nonfinite != 'ignore'
        clip = self._clip_global_norm is not None
        agc = self._clip_adaptive is not None
        on_kvstore = self._kvstore is not None and self._update_on_kvstore
        n_ctx = len(self._contexts)
        params = self._trained_params(ignore_stale_grad) if check or clip or agc else None
        if check and on_kvstore:
            # the kvstore applies the update during the push: check before it
            if self._check(params, range(n_ctx)) is False:
                return False
            self._allreduce_grads()
            return True
        self._allreduce_grads()
        if not params:
            return True
        sums = {}
        if clip:
            for k in range(n_ctx):
                sums[k] = _sum_of_squares([p.list_grad()[k] for p in params], 'float32')
        overflow = False
        if check:
            # reduced by a kvstore: every context holds the same sum, so the first one tells
            ks = [0] if self._kvstore is not None else list(range(n_ctx))
            verdict = self._check(params, ks, [sums.get(k) for k in ks])
            if verdict is False:
                return False
            overflow = verdict == 'overflow'
        if clip:
            self._clip_by_global_norm(rescale_grad, params, sums, overflow)
        if agc:
            self._clip_adaptive_units(rescale_grad, params)
        return True

    def _check(self, params, ks, sums=None):
        """True when the gradients of ``params`` on contexts ``ks`` are finite; 'overflow' when
        they are but a square overflowed; otherwise handle the step as ``nonfinite`` says
        (raise, or count the skip and return False)."""
        ks = list(ks)
        sums = list(sums) if sums is not None else [None] * len(ks)
        parts = []
        for s, k in zip(sums, ks):
            parts.extend([s] if s is not None else _squares([p.list_grad()[k] for p in params]))
        # the one wait of the step (the others find their arrays ready); summed on the host in
        # float64, where finite float32 sums cannot overflow
        total = sum(float(np.sum(a.asnumpy(), dtype=np.float64)) for a in parts)
        if math.isfinite(total):
            self.consecutive_skips = 0
            return True
        bad = self._diagnose(params, ks)
        if not bad:
            self.consecutive_skips = 0
            return 'overflow'
        names = [name for name, _ in bad]
        detail = ', '.join('%s (%s)' % (name, what) for name, what in bad)
        if self._nonfinite == 'skip':
            if self.consecutive_skips < self._max_consecutive_skips:
                self.skipped_steps += 1
                self.consecutive_skips += 1
                self._discard(params)
                return False
            raise NonFiniteGradient(
                'gluon_opt.Trainer: non-finite gradients at step %d: %s; the %d steps before '
                'it were skipped for the same reason (max_consecutive_skips=%d), so this one '
                'raises; nothing was updated.' % (self.num_steps, detail,
                                                  self.consecutive_skips,
                                                  self._max_consecutive_skips),
                self.num_steps, names, self.consecutive_skips)
        raise NonFiniteGradient(
            "gluon_opt.Trainer: non-finite gradients at step %d: %s; nothing was updated "
            "(nonfinite='raise'; nonfinite='skip' skips such steps)." % (self.num_steps, detail),
            self.num_steps, names)

    def _diagnose(self, params, ks):
        """``[(name, 'N NaN, M inf')]`` of the parameters whose gradients are not finite, on the
        host (only run once the device sum says something is)."""
        bad = []
        for p in params:
            nan = inf = 0
            for k in ks:
                g = p.list_grad()[k]
                a = (g.data if g.stype == 'row_sparse' else g).asnumpy()
                nan += int(np.isnan(a).sum())
                inf += int(np.isinf(a).sum())
            if nan or inf:
                what = ', '.join(w for w in ('%d NaN' % nan if nan else '',
                                             '%d inf' % inf if inf else '') if w)
                bad.append((p.name, what))
        return bad

    def _discard(self, params):
        """A skipped step consumes its gradients as an update would."""
        if not (self._kvstore is not None and self._update_on_kvstore):
            for p in params:
                for d in p.list_data():
                    d._fresh_grad = False
        if self._accumulate > 1:
            for p in self._params:
                if p.grad_req != 'null':
                    p.zero_grad()

    def _checked_closure(self, closure):
        """``closure`` whose first call (at the current weights) checks the gradients."""
        first = [True]

        def checked():
            out = closure()
            if first[0]:
                first[0] = False
                params = [p for p in self._params if p.grad_req != 'null' and p.lr_mult != 0
                          and p._data is not None]
                if params and self._check(params, range(len(self._contexts))) is False:
                    raise _SkipStep(out)
            return out
        return checked

    # -- kvstore, clipping, closures -----------------------------------------------------------
    def _init_params(self):
        """MXNet's broadcast of the initial weights, then, on a ``dist_*`` kvstore, a wait until
        every worker holds them.

        MXNet 1.9.1 races here with ``update_on_kvstore=False``: the first ``step`` broadcasts the
        weights (rank 0 stores them on the servers under the parameter's key and every worker
        pulls them back) and right after pushes the gradients under the *same* key. The weight
        pull writes the weight array and the gradient push reads the gradient array, so MXNet's
        engine does not order them: when the servers have already merged the workers' gradients
        before they answer a worker's weight pull, that worker's weight becomes the gradient sum
        (measured: about one first step in three of ``examples/dist_train.py`` with two workers
        lost a whole layer this way). Waiting for the pulled weights before the first push closes
        the window.
        """
        super(Trainer, self)._init_params()
        if self._kvstore is not None and self._distributed:
            pending = set(self._params_to_init)  # deferred-init parameters are not pulled yet
            for param in self._params:
                if param not in pending:
                    for arr in param.list_data():
                        arr.wait_to_read()

    def _clip_by_global_norm(self, rescale_grad, params, sums, overflow=False):
        """Scale each context's (already reduced) gradients so that ``rescale * ||g||`` is at
        most the maximum; every context computes the same factor from its own copies.
        ``sums``: each context's sum of squares; ``overflow``: it overflowed float32 (the
        gradients are finite), so the norm is recomputed in float64."""
        for k in range(len(self._contexts)):
            grads = [p.list_grad()[k] for p in params]
            total = _sum_of_squares(grads, 'float64') if overflow else sums[k]
            norm = nd.sqrt(total) * rescale_grad
            factor = nd.clip(self._clip_global_norm / (norm + 1e-6), 0.0, 1.0)
            for g in grads:
                g[:] = nd.broadcast_mul(g, factor.astype(g.dtype))

    #: AGC's floor on a unit's weight norm (the paper's and timm's 1e-3): units whose weights
    #: are zero-initialised (biases, gains) can still move
    AGC_EPS = 1e-3

    def _clip_adaptive_units(self, rescale_grad, params):
        r"""Adaptive gradient clipping (Brock, De, Smith & Simonyan, "High-Performance
        Large-Scale Image Recognition Without Normalization", ICML 2021), on each context's
        (already reduced) gradients. With :math:`G_i` the rescaled gradient of unit :math:`i`
        and :math:`W_i` its weights,

        .. math::

            G_i \leftarrow \begin{cases}
                \lambda \frac{\max(\|W_i\|, \epsilon)}{\max(\|G_i\|, 10^{-6})} G_i
                    & \text{if } \|G_i\| \ge \lambda \max(\|W_i\|, \epsilon) \\
                G_i & \text{otherwise}
            \end{cases}
            \qquad (\epsilon = 10^{-3})

        A unit is a row along the first axis, the norm taken over all the others (a Dense
        weight's ``(units, in_units)`` row, a convolution's output channel: MXNet's layouts put
        the output first, as PyTorch's), and a tensor of at most one dimension (a bias, a
        BatchNorm gain) is one unit, as in the authors' code and timm's ``adaptive_clip_grad``,
        which this follows (the ``10^{-6}`` floor included). The paper does not clip the final
        classifier layer; pass that layer's parameters to another trainer, or leave AGC off,
        to do the same. Norms are computed in float32 (float16 weights included)."""
        lam, eps = self._clip_adaptive, self.AGC_EPS
        for p in params:
            for w, g in zip(p.list_data(), p.list_grad()):
                if g.stype != 'default':
                    raise ValueError('Trainer: clip_adaptive needs dense gradients; parameter '
                                     '%r has %s ones.' % (p.name, g.stype))
                w32, g32 = w.astype('float32', copy=False), g.astype('float32', copy=False)
                if w.ndim <= 1:
                    w_norm, g_norm = nd.norm(w32), nd.norm(g32)
                else:
                    axes = tuple(range(1, w.ndim))
                    w_norm = nd.norm(w32, axis=axes, keepdims=True)
                    g_norm = nd.norm(g32, axis=axes, keepdims=True)
                max_norm = nd.maximum(w_norm, eps) * lam
                g_norm = g_norm * rescale_grad
                factor = nd.where(g_norm < max_norm, nd.ones_like(g_norm),
                                  max_norm / nd.maximum(g_norm, 1e-6))
                g[:] = nd.broadcast_mul(g, factor.astype(g.dtype))

    def _closure_step(self, batch_size, closure):
        rescale_grad = self._scale / batch_size
        self._check_and_rescale_grad(rescale_grad)
        if not self._kv_initialized:
            self._init_kvstore()
        if self._nonfinite != 'ignore':
            closure = self._checked_closure(closure)
        problem = ParamProblem(self._optimizer, list(enumerate(self._params)), closure,
                               rescale=rescale_grad, clip_global_norm=self._clip_global_norm)
        try:
            loss = self._optimizer.closure_step(problem)
            evals = problem.n_evals
        except _SkipStep as skip:
            loss = skip.loss  # nothing changed: the first evaluation precedes every update
            evals = 1
        if self._params_to_init:
            self._init_params()
        #: closure evaluations (forward+backward passes) the last step took
        self.last_evals = evals
        return loss

    # -- states ----------------------------------------------------------------------------
    def save_states(self, fname):
        """Save the optimizer and its states to ``fname`` in ``gluon_opt.states``' format:
        one ``.npz`` holding every array plus a JSON document (optimizer, hyperparameters,
        update counts, parameter names, shapes and dtypes, the structure of each state) and a
        SHA-256 checksum. Nothing in it is executed on loading, unlike ``gluon.Trainer``'s
        pickle. The file is written next to ``fname`` and renamed into place.

        The states of the first context are saved (every context holds the same);
        ``update_on_kvstore=True`` is supported on a local kvstore (its updater's states are
        saved) and refused on a ``dist_*`` one, whose states live on the servers."""
        assert self._optimizer is not None
        if not self._kv_initialized:
            self._init_kvstore()
        if self._params_to_init:
            self._init_params()
        if self._kvstore is not None and self._update_on_kvstore and self._params_to_init:
            raise ValueError('Trainer.save_states: some parameters are not initialised in the '
                             'kvstore yet; run a step first.')
        if self._accum_count:
            import warnings
            warnings.warn('Trainer.save_states after %d of accumulate=%d steps: the gradients '
                          'accumulated so far are not saved.'
                          % (self._accum_count, self._accumulate), stacklevel=2)
        _states.save(self, fname)

    def load_states(self, fname, allow_pickle=False, check_hyperparameters=True):
        """Load what :meth:`save_states` wrote, checked against this trainer, into every
        context; training then continues exactly as if it had not stopped.

        Raises :class:`StatesFileError` (a ``ValueError``), one line naming ``fname``, when
        the file is missing, empty, truncated, corrupt (checksum), not in this format, or
        holds another optimizer, other hyperparameters, another number of parameters or other
        shapes or dtypes; the trainer is left as it was then.

        Parameters
        ----------
        fname : str
        allow_pickle : bool, default False
            Also read a pickled states file (what ``gluon.Trainer.save_states`` and earlier
            versions of gluon_opt write). Unpickling executes whatever code the file names (a
            ``__reduce__`` payload), so pass True only for a file you wrote or trust; it is then
            checked as above.
        check_hyperparameters : bool, default True
            False takes the file's hyperparameters (a learning rate changed during training,
            say) in place of this trainer's, as ``gluon.Trainer`` does; the optimizer's class
            and the parameters' shapes and dtypes are still checked.
        """
        if not self._kv_initialized:
            self._init_kvstore()
        if self._params_to_init:
            self._init_params()
        _states.load(self, fname, allow_pickle=allow_pickle,
                     check_hyperparameters=check_hyperparameters)

    def _states_extra(self):
        """The trainer's own part of a states file."""
        return {'update_on_kvstore': self._kvstore is not None and bool(self._update_on_kvstore),
                'contexts': len(self._contexts), 'clip_global_norm': self._clip_global_norm,
                'clip_adaptive': self._clip_adaptive,
                'accumulate': self._accumulate, 'nonfinite': self._nonfinite,
                'num_steps': self.num_steps, 'skipped_steps': self.skipped_steps,
                'consecutive_skips': self.consecutive_skips}

    def _restore_extra(self, extra):
        for key in ('num_steps', 'skipped_steps', 'consecutive_skips'):
            value = extra.get(key)
            if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
                setattr(self, key, value)
