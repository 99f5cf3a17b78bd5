"""Optimizers that wrap another optimizer: Lookahead.

Reference: Zhang, Lucas, Hinton & Ba, "Lookahead Optimizer: k steps forward, 1 step back",
NeurIPS 2019.
"""
import numpy as np
import mxnet as mx

from .base import (GluonOptOptimizer, check_range, check_int, check_nonnegative,
                   check_lr_scheduler, _fail, UpdateItem, refuse_low_precision)
from .registry import register
from .. import kernels

__all__ = ['Lookahead', 'make_inner', 'adopt_inner']

# the wrapper does these itself, once, before the inner step; they must not reach the inner
_OUTER_ONLY = ('rescale_grad', 'clip_gradient', 'lr_scheduler', 'multi_precision',
               'param_dict', 'param_idx2name', 'sym', 'use_fused')


def _sync_layout(item):
    """``gopt_lookahead_sync``'s ``mp`` for ``item`` (0: float32 weight, 1: float16 weight
    with a float32 master), or None where the kernel does not take it."""
    w, slow = item.weight, item.state[0]
    if w.stype != 'default' or w.context.device_type != 'cpu' or slow.dtype != np.float32:
        return None
    if item.master is not None:
        return 1 if w.dtype == np.float16 and item.master.dtype == np.float32 else None
    return 0 if w.dtype == np.float32 else None


def make_inner(owner, optimizer, learning_rate, wd, lr_scheduler, begin_num_update,
               inner_hyperparameters):
    """The inner optimizer of a wrapper (Lookahead, Schedule-Free): created from a registry
    name with ``inner_hyperparameters`` (which it validates), or an instance taken as it is
    (then no further keyword arguments). The wrapper's learning rate and weight decay, where
    given, become the inner's. Errors name the wrapper ``owner``. The inner must be a gluon_opt
    optimizer: MXNet's built-ins apply their own rescaling and counts."""
    # the shared hyperparameters are checked here, before they reach the inner optimizer,
    # so that errors name the wrapper (the base class checks the rest again)
    if learning_rate is not None:
        learning_rate = check_nonnegative(owner, 'learning_rate', learning_rate)
    if wd is not None:
        wd = check_nonnegative(owner, 'wd', wd)
    lr_scheduler = check_lr_scheduler(owner, lr_scheduler)
    if isinstance(optimizer, str):
        if optimizer.lower() not in mx.optimizer.Optimizer.opt_registry:
            _fail(owner, 'optimizer', optimizer, 'expected the name of a registered '
                  'optimizer (gluon_opt.<name>) or a gluon_opt optimizer instance')
        inner_kwargs = dict(inner_hyperparameters, begin_num_update=begin_num_update)
        if learning_rate is not None:
            inner_kwargs['learning_rate'] = learning_rate
        elif lr_scheduler is not None:
            inner_kwargs['learning_rate'] = lr_scheduler.base_lr
        if wd is not None:
            inner_kwargs['wd'] = wd
        try:
            inner = mx.optimizer.create(optimizer, **inner_kwargs)
        except (ValueError, TypeError) as exc:
            raise type(exc)('%s: optimizer=%r rejected its hyperparameters: %s'
                            % (owner, optimizer, exc))
    elif isinstance(optimizer, mx.optimizer.Optimizer):
        if inner_hyperparameters:
            _fail(owner, 'optimizer', optimizer, 'an optimizer instance takes no further '
                  'keyword arguments (got %s)' % ', '.join(sorted(inner_hyperparameters)))
        inner = optimizer
        if learning_rate is not None:
            inner.set_learning_rate(learning_rate)
        if wd is not None:
            inner.wd = wd
    else:
        _fail(owner, 'optimizer', optimizer, 'expected a registered optimizer name or a '
              'gluon_opt optimizer instance')
    if not isinstance(inner, GluonOptOptimizer):
        _fail(owner, 'optimizer', optimizer, 'expected a gluon_opt optimizer (MXNet\'s '
              'built-ins apply their own rescaling and counts); use gluon_opt.<name>')
    if inner.state_dtype != 'float32':  # the wrappers step the inner's float32 states
        refuse_low_precision(owner, inner.state_dtype)
    return inner


def adopt_inner(wrapper, cls, inner, learning_rate, wd, lr_scheduler, **outer):
    """The rest of a wrapper's ``__init__`` once it has checked ``inner`` (from
    ``make_inner``): the wrapper prepares the gradient once, so the inner must not rescale,
    clip, schedule or keep master weights again; the wrapper keeps ``inner`` and takes its
    learning rate and weight decay where none was given. ``cls`` is the wrapper's class (for
    ``super``), ``outer`` the base class's other keyword arguments."""
    inner.rescale_grad, inner.clip_gradient, inner.lr_scheduler = 1.0, None, None
    inner.multi_precision = False
    wrapper.inner = inner
    if learning_rate is None and lr_scheduler is None:
        learning_rate = inner.lr
    super(cls, wrapper).__init__(learning_rate=learning_rate,
                                 wd=inner.wd if wd is None else wd, lr_scheduler=lr_scheduler,
                                 **outer)
    wrapper.optimizer = type(inner).name


@register
class Lookahead(GluonOptOptimizer):
    r"""Lookahead around any gluon_opt optimizer.

    The inner ("fast") optimizer updates the weight every step; every ``k``-th update of a
    parameter the slow weight moves towards the fast one and the fast weight restarts from it
    (:math:`t` the parameter's update count, :math:`\alpha` = ``alpha``):

    .. math::

        w &\leftarrow \text{inner\_step}(w, g) \qquad \text{(every step)} \\
        \text{slow} &\leftarrow \text{slow} + \alpha (w - \text{slow}), \quad
            w \leftarrow \text{slow} \qquad \text{(when } t \bmod k = 0)

    ``slow`` starts at the initial weight. The inner optimizer keeps its state across the
    synchronisations (the paper's default; resetting it is an option it discusses).

    Parameters
    ----------
    optimizer : str or GluonOptOptimizer, default 'gluon_opt.adam': the inner optimizer, a
        registry name (created with the remaining keyword arguments, which it validates) or
        an instance (then no further keyword arguments).
    k : int >= 1, default 5: synchronisation period, in updates of each parameter
    alpha : float in (0, 1], default 0.5: slow-weight step size
    learning_rate, wd : default None: the inner optimizer's defaults. The wrapper's
        learning rate *is* the inner one's: the wrapper applies the schedule, ``lr_mult``
        and ``wd_mult`` and passes the resulting rates to the inner step.
    **inner_hyperparameters : the inner optimizer's own (``beta1``, ``momentum``, ...).

    Conventions: the wrapper rescales and clips the gradient, counts updates per parameter
    and keeps float32 master weights (``multi_precision``) once; the inner optimizer steps
    with the wrapper's learning rates, weight decays and update counts. Inner optimizers must
    be gluon_opt ones (MXNet's built-ins have no separable step).

    Fused path (``use_fused``, ``GLUON_OPT_IMPL``): where the inner optimizer has one, the
    fast step is the inner's fused update (its kernel does the rescaling and clipping) and
    the synchronisation is one kernel pass per tensor (``gopt_lookahead_sync``) for all the
    parameters due; with an inner that has no kernel the whole update stays the reference.

    Example::

        trainer = gluon.Trainer(net.collect_params(), 'gluon_opt.lookahead',
                                {'optimizer': 'gluon_opt.adamw', 'k': 5, 'alpha': 0.5,
                                 'learning_rate': 1e-3, 'wd': 0.01})
    """
    name = 'lookahead'
    family = 'wrapper'
    paper = 'Zhang, Lucas, Hinton & Ba, NeurIPS 2019'
    bench_hyperparameters = {'optimizer': 'gluon_opt.adam', 'learning_rate': 1e-3, 'k': 5}
    # Adam's bytes, plus the sync (read w, slow; write w, slow) every k = 5th step
    step_bytes = 7 * 4 + 4 * 4 / 5
    state_bytes = 4 + 2 * 4  # the slow weight and the inner Adam's m, v
    oracle = "numpy transcription of the paper's Algorithm 1"
    # the fast step is the inner optimizer's fused update, then the synchronisation kernel
    fused_op = 'gopt_lookahead_sync'

    def __init__(self, optimizer='gluon_opt.adam', k=5, alpha=0.5, learning_rate=None,
                 wd=None, rescale_grad=1.0, clip_gradient=None, lr_scheduler=None,
                 multi_precision=False, use_fused=None, param_dict=None, param_idx2name=None,
                 sym=None, begin_num_update=0, **inner_hyperparameters):
        owner = type(self).__name__
        self.k = check_int(owner, 'k', k, 1)
        self.alpha = check_range(owner, 'alpha', alpha, 0.0, 1.0, low_open=True,
                                 high_open=False)
        inner = make_inner(owner, optimizer, learning_rate, wd, lr_scheduler, begin_num_update,
                           inner_hyperparameters)
        if isinstance(inner, Lookahead):
            _fail(owner, 'optimizer', optimizer, 'Lookahead inside Lookahead is not supported')
        adopt_inner(self, Lookahead, inner, learning_rate, wd, lr_scheduler,
                    rescale_grad=rescale_grad, clip_gradient=clip_gradient,
                    multi_precision=multi_precision, use_fused=use_fused, param_dict=param_dict,
                    param_idx2name=param_idx2name, sym=sym, begin_num_update=begin_num_update)

    def __repr__(self):
        return 'Lookahead(k=%d, alpha=%r, optimizer=%r)' % (self.k, self.alpha, self.inner)

    def set_learning_rate(self, lr):
        super(Lookahead, self).set_learning_rate(lr)
        self.inner.set_learning_rate(lr)

    # -- states ------------------------------------------------------------------------------
    @property
    def state_names(self):
        return ('slow',) + tuple(self.inner.state_names)

    def state_names_for(self, shape):
        return ('slow',) + tuple(self.inner.state_names_for(shape))

    def _share_parameter_info(self):
        # gluon.Trainer sets param_dict (lr_mult, wd_mult, names) on the wrapper, also after
        # load_states; optimizers that route by name (Muon) need it on the inner one too
        inner = self.inner
        inner.param_dict, inner.idx2name = self.param_dict, self.idx2name
        inner.lr_mult, inner.wd_mult = self.lr_mult, self.wd_mult

    def create_state(self, index, weight):
        self._share_parameter_info()
        return (weight.copy(), self.inner.create_state(index, weight))

    # -- the update ----------------------------------------------------------------------------
    def synchronise(self, weight, slow, t):
        """Every ``k``-th update: ``slow <- slow + alpha (w - slow)``, ``w <- slow``."""
        if (t - self.begin_num_update) % self.k == 0:
            slow[:] = slow + self.alpha * (weight - slow)
            weight[:] = slow

    def step(self, weight, grad, state, lr, wd, t):
        slow, inner_state = state
        self.inner.step(weight, grad, inner_state, lr, wd, t)
        self.synchronise(weight, slow, t)

    def _fused_update(self, items):
        """The fused path: the inner optimizer's, then ``gopt_lookahead_sync``; returns the
        items left to the reference (all of them where the inner optimizer has no fused
        path)."""
        inner = self.inner
        if inner.fused_op is None:
            return items
        self._share_parameter_info()
        inner_items = [UpdateItem(item.index, item.weight, item.grad, item.state[1], item.lr,
                                  item.wd, item.t, item.master) for item in items]
        # The inner kernels rescale and clip the raw gradient, and so does the inner reference
        # for the items they leave: lend the inner our settings for this call only.
        saved = inner.rescale_grad, inner.clip_gradient
        inner.rescale_grad, inner.clip_gradient = self.rescale_grad, self.clip_gradient
        try:
            for inner_item in inner._fused_update(inner_items):
                inner._reference_update(inner_item)
        finally:
            inner.rescale_grad, inner.clip_gradient = saved
        due = [item for item in items if (item.t - self.begin_num_update) % self.k == 0]
        groups, rest = {}, []
        for item in due:
            mp = _sync_layout(item)
            if mp is None:
                rest.append(item)
            else:  # one call per layout: float32 weights, or float16 ones with masters
                fast = item.weight if item.master is None else item.master
                groups.setdefault(mp, []).append(([fast, item.state[0]], item.weight, ()))
        for mp, group in groups.items():
            kernels.call('gopt_lookahead_sync', group, mp=mp, alpha=self.alpha)
        for item in rest:
            self._synchronise_item(item)
        return []

    def _synchronise_item(self, item):
        fast = item.weight if item.master is None else item.master
        self.synchronise(fast, item.state[0], item.t)
        if item.master is not None:
            mx.nd.cast(item.master, dtype=item.weight.dtype, out=item.weight)

    def _reference_update(self, item):
        # The inner's own _reference_update (not just its step), so that optimizers with a
        # per-parameter hook there (Muon's AdamW rates) behave as they do unwrapped. The
        # gradient is prepared here; the inner's rescale/clip are neutral.
        self._share_parameter_info()
        slow, inner_state = item.state
        grad = item.grad if item.master is None else item.grad.astype('float32')
        inner_item = UpdateItem(item.index, item.weight, self.prepare_grad(grad), inner_state,
                                item.lr, item.wd, item.t, item.master)
        self.inner._reference_update(inner_item)
        if (item.t - self.begin_num_update) % self.k == 0:
            self._synchronise_item(item)
