"""``gluon_opt.Trainer``: ``gluon.Trainer`` plus closures, global-norm clipping, gradient
accumulation and weight-decay exclusion.

It is a drop-in subclass: code written for ``gluon.Trainer`` runs unchanged. What it adds:

* ``step(batch_size, closure=None)``: the closure re-evaluates the loss and gradients (like
  ``torch.optim.LBFGS.step(closure)``). Closure-based optimizers (``gluon_opt.newton``,
  ``lbfgs``, ``hessian_free``, ``sam``, ``sophia``) need it; with any other optimizer a
  closure is simply called once before the usual update. ``step`` returns the loss (a float
  for the line-search methods, an NDArray otherwise, None without a closure).
* ``clip_global_norm=max_norm``: gradients (after the ``1/batch_size`` rescale, summed over
  contexts) are scaled so that their global L2 norm is at most ``max_norm``
  (``torch.nn.utils.clip_grad_norm_``), on the device, without a host synchronisation.
* ``accumulate=k``: gradients of ``k`` consecutive ``step`` calls are summed and applied once,
  normalised by the total batch size (the effective batch is ``k`` batches). Parameters get
  ``grad_req='add'`` and are zeroed after each update, so the training loop is unchanged.
* ``no_decay=True`` (or a predicate ``f(param) -> bool``): biases and normalisation
  parameters (names ending in ``bias``, ``gamma``, ``beta``) get ``wd_mult = 0``.
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
from mxnet import gluon, nd

from .optimizers.closure import ParamProblem

__all__ = ['Trainer', 'default_no_decay']

_NO_DECAY_SUFFIXES = ('bias', 'gamma', 'beta')


def default_no_decay(param):
    """True for biases and normalisation scales/shifts (names ending in bias/gamma/beta)."""
    return param.name.endswith(_NO_DECAY_SUFFIXES)


class Trainer(gluon.Trainer):
    """``gluon.Trainer`` with closures, global-norm clipping, accumulation and no-decay sets.

    Parameters
    ----------
    params, optimizer, optimizer_params, kvstore, compression_params, update_on_kvstore :
        as ``gluon.Trainer``.
    clip_global_norm : float > 0 or None, default None
        Maximum global L2 norm of the (rescaled) gradients.
    accumulate : int >= 1, default 1
        Number of ``step`` calls whose gradients are summed before one update.
    no_decay : bool or callable, default False
        True excludes biases and normalisation parameters from weight decay
        (:func:`default_no_decay`); a callable ``f(param) -> bool`` chooses the excluded ones.

    Clipping and accumulation need the gradients reduced before the update, so they imply
    ``update_on_kvstore=False`` (passing True with them is an error). Closure-based optimizers
    update the parameters themselves and also imply ``update_on_kvstore=False``; they do not
    combine with ``accumulate > 1``, and the line-search methods (Newton, L-BFGS, Newton-CG)
    refuse ``clip_global_norm`` (their line search needs the exact gradient).

    Example::

        trainer = gluon_opt.Trainer(net.collect_params(), 'gluon_opt.adamw',
                                    {'learning_rate': 1e-3, 'wd': 0.05},
                                    clip_global_norm=1.0, accumulate=4, no_decay=True)
    """

    def __init__(self, params, optimizer, optimizer_params=None, kvstore='device',
                 compression_params=None, update_on_kvstore=None, clip_global_norm=None,
                 accumulate=1, no_decay=False):
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
        super(Trainer, self).__init__(params, optimizer, optimizer_params, kvstore=kvstore,
                                      compression_params=compression_params,
                                      update_on_kvstore=update_on_kvstore)
        self._clip_global_norm = clip_global_norm
        self._accumulate = accumulate
        self._accum_count = 0
        self._accum_batch = 0
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
        if needs_closure or clip_global_norm is not None or accumulate > 1:
            if update_on_kvstore:
                raise ValueError('Trainer: update_on_kvstore=True is incompatible with %s; '
                                 'leave it None.' % ('closure-based optimizers' if needs_closure
                                                     else 'clip_global_norm/accumulate'))
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
        position (gluon.Trainer's second argument, a bool) is taken as the closure."""
        if callable(ignore_stale_grad) and closure is None:
            closure, ignore_stale_grad = ignore_stale_grad, False
        if self.needs_closure:
            if closure is None:
                self._optimizer._refuse()
            return self._closure_step(batch_size, closure)
        loss = closure() if closure is not None else None
        if self._accumulate > 1:
            self._accum_count += 1
            self._accum_batch += batch_size
            if self._accum_count < self._accumulate:
                return None
            batch_size = self._accum_batch
            self._accum_count = self._accum_batch = 0
        if self._clip_global_norm is None and self._accumulate == 1:
            super(Trainer, self).step(batch_size, ignore_stale_grad)
            return loss
        rescale_grad = self._scale / batch_size
        self._check_and_rescale_grad(rescale_grad)
        if not self._kv_initialized:
            self._init_kvstore()
        if self._params_to_init:
            self._init_params()
        self._allreduce_grads()
        if self._clip_global_norm is not None:
            self._clip_by_global_norm(rescale_grad)
        self._update(ignore_stale_grad)
        if self._accumulate > 1:
            for p in self._params:
                if p.grad_req != 'null':
                    p.zero_grad()
        return loss

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

    def _clip_by_global_norm(self, rescale_grad):
        """Scale each context's (already reduced) gradients so that ``rescale * ||g||`` is at
        most the maximum; every context computes the same factor from its own copies."""
        params = [p for p in self._params if p.grad_req != 'null']
        if not params:
            return
        for k in range(len(params[0].list_grad())):
            grads = [p.list_grad()[k] for p in params]
            sq = [nd.sum(nd.square(g.astype('float32'))) for g in grads]
            norm = nd.sqrt(nd.add_n(*sq) if len(sq) > 1 else sq[0]) * rescale_grad
            factor = nd.clip(self._clip_global_norm / (norm + 1e-6), 0.0, 1.0)
            for g in grads:
                g[:] = nd.broadcast_mul(g, factor.astype(g.dtype))

    def _closure_step(self, batch_size, closure):
        rescale_grad = self._scale / batch_size
        self._check_and_rescale_grad(rescale_grad)
        if not self._kv_initialized:
            self._init_kvstore()
        problem = ParamProblem(self._optimizer, list(enumerate(self._params)), closure,
                               rescale=rescale_grad, clip_global_norm=self._clip_global_norm)
        loss = self._optimizer.closure_step(problem)
        if self._params_to_init:
            self._init_params()
        #: closure evaluations (forward+backward passes) the last step took
        self.last_evals = problem.n_evals
        return loss
