"""The base class every gluon_opt optimizer derives from, and the steps they all share.

An optimizer here is an ``mxnet.optimizer.Optimizer`` subclass that writes only two things:

* ``init_state(weight)``: the per-weight state tensors, in the order of ``state_names``;
* ``step(weight, grad, state, lr, wd, t)``: the *reference* update of one tensor, written with
  readable ``mx.nd`` operations that modify ``weight`` and ``state`` in place. ``grad`` arrives
  already rescaled (``rescale_grad``) and clipped (``clip_gradient``); ``lr`` and ``wd`` already
  carry the parameter's ``lr_mult``/``wd_mult`` and the learning-rate schedule; ``t`` is the
  1-based update count of *this* parameter (bias corrections are per parameter).

Everything else is done once, here: hyperparameter validation, the per-index update counts,
learning-rate multipliers and schedules, gradient rescaling and clipping, float16 weights with
float32 master copies (``multi_precision``), sparse-gradient rejection, and the choice between
the reference update and a fused kernel (``gluon_opt.kernels``).

Choosing the implementation
---------------------------
``use_fused=None`` (the default) follows the environment variable ``GLUON_OPT_IMPL``:
``auto`` (default: the fused kernel where one is built and loads, else the reference),
``reference`` (always the readable ``mx.nd`` update) or ``fused`` (the fused kernel, and an
error where it is unavailable). ``use_fused=True``/``False`` overrides the variable for one
optimizer. The reference is the oracle the fused path is tested against.
"""
import inspect
import os
import warnings

import numpy as np
import mxnet as mx

__all__ = ['GluonOptOptimizer', 'register', 'REGISTRY', 'MXNET_BUILTIN_NAMES',
           'check_range', 'check_nonnegative', 'check_positive', 'check_choice',
           'couple_weight_decay', 'decay_weight', 'bias_corrections', 'zeros_like', 'check_int',
           'IMPL_ENV']

IMPL_ENV = 'GLUON_OPT_IMPL'
#: tensors MXNet's ``Updater`` hands to one ``update`` call for optimizers with a fused kernel
#: (``Optimizer.aggregate_num``): the kernels update them all in one op call, so small tensors
#: do not pay MXNet's per-op dispatch each. The reference path loops over them as before.
AGGREGATE_NUM = 256
_IMPL_CHOICES = ('auto', 'reference', 'fused')

# MXNet 1.9.1's own registry keys. Registering one of these names again silently replaces the
# built-in (Optimizer.register keys on the lower-cased class name), so we never do.
MXNET_BUILTIN_NAMES = frozenset([
    'adadelta', 'adagrad', 'adam', 'adamax', 'ccsgd', 'dcasgd', 'ftml', 'ftrl',
    'groupadagrad', 'lamb', 'lars', 'lbsgd', 'nadam', 'nag', 'rmsprop', 'sgd', 'sgld',
    'signum', 'test'])

#: short name -> optimizer class, in registration order. ``gluon-opt list`` and the tests read it.
REGISTRY = {}


def register(cls):
    """Register ``cls`` as ``gluon_opt.<cls.name>``, and as ``<cls.name>`` too when MXNet has
    no optimizer of that name. Used as a class decorator."""
    name = cls.name
    if not name or name != name.lower():
        raise ValueError('optimizer %s needs a lower-case `name`' % cls.__name__)
    registry = mx.optimizer.Optimizer.opt_registry
    registry['gluon_opt.' + name] = cls
    if name not in MXNET_BUILTIN_NAMES and (name not in registry
                                            or registry[name].__module__.startswith('gluon_opt')):
        registry[name] = cls
    REGISTRY[name] = cls
    return cls


# ---------------------------------------------------------------------------------------------
# Validation helpers: every message names the optimizer, the parameter, and what is accepted.

def _fail(owner, name, value, expected):
    raise ValueError('%s: %s=%r is invalid; %s.' % (owner, name, value, expected))


def _as_float(owner, name, value):
    if isinstance(value, bool) or not isinstance(value, (int, float, np.floating, np.integer)):
        _fail(owner, name, value, 'expected a number')
    value = float(value)
    if not np.isfinite(value):
        _fail(owner, name, value, 'expected a finite number')
    return value


def check_range(owner, name, value, low, high, low_open=False, high_open=True):
    """``value`` must lie in the interval from ``low`` to ``high`` (open or closed ends)."""
    value = _as_float(owner, name, value)
    bad_low = value <= low if low_open else value < low
    bad_high = value >= high if high_open else value > high
    if bad_low or bad_high:
        _fail(owner, name, value, 'expected a value in %s%g, %g%s'
              % ('(' if low_open else '[', low, high, ')' if high_open else ']'))
    return value


def check_nonnegative(owner, name, value):
    value = _as_float(owner, name, value)
    if value < 0:
        _fail(owner, name, value, 'expected a value >= 0')
    return value


def check_positive(owner, name, value):
    value = _as_float(owner, name, value)
    if value <= 0:
        _fail(owner, name, value, 'expected a value > 0')
    return value


def check_choice(owner, name, value, choices):
    if value not in choices:
        _fail(owner, name, value, 'expected one of %s' % ', '.join(repr(c) for c in choices))
    return value


def check_int(owner, name, value, minimum):
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        _fail(owner, name, value, 'expected an integer >= %d' % minimum)
    return int(value)


# ---------------------------------------------------------------------------------------------
# Steps shared by the reference updates.

def zeros_like(weight):
    """A zero state tensor of ``weight``'s shape and dtype, on ``weight``'s context (with
    ``multi_precision`` the weight passed here is already the float32 master copy)."""
    return mx.nd.zeros(weight.shape, ctx=weight.context, dtype=weight.dtype)


def couple_weight_decay(grad, weight, wd):
    """L2 regularisation folded into the gradient: ``g + wd * w`` (PyTorch's ``weight_decay``
    in SGD/Adam, MXNet's ``wd``). Returns ``grad`` itself when ``wd`` is 0."""
    return grad + wd * weight if wd else grad


def decay_weight(weight, factor):
    """Decoupled weight decay (Loshchilov & Hutter, 2019): ``w <- w * (1 - factor)`` in place,
    with ``factor = lr * wd`` as in PyTorch's AdamW."""
    if factor:
        weight[:] = weight * (1.0 - factor)


def bias_corrections(beta1, beta2, t):
    """Adam's bias corrections ``(1 - beta1**t, 1 - beta2**t)`` for the 1-based step ``t``."""
    return 1.0 - beta1 ** t, 1.0 - beta2 ** t


def _as_lists(index, weight, grad, state):
    if isinstance(index, (list, tuple)):
        return list(index), list(weight), list(grad), list(state)
    return [index], [weight], [grad], [state]


class UpdateItem(object):
    """One tensor's share of an update call: what the reference and fused paths both need."""
    __slots__ = ('index', 'weight', 'grad', 'state', 'lr', 'wd', 't', 'master')

    def __init__(self, index, weight, grad, state, lr, wd, t, master):
        self.index, self.weight, self.grad, self.state = index, weight, grad, state
        self.lr, self.wd, self.t, self.master = lr, wd, t, master


class GluonOptOptimizer(mx.optimizer.Optimizer):
    """Base class of the gluon_opt optimizers (see the module docstring for the contract).

    Parameters shared by every optimizer (MXNet's names and meanings):

    learning_rate : float >= 0
        Step size; a ``lr_scheduler`` (MXNet's or gluoncv's) overrides it per update.
    wd : float >= 0, default 0
        Weight decay; coupled (L2 in the gradient) or decoupled as each optimizer documents.
    rescale_grad : float, default 1
        Gradients are multiplied by it first (``gluon.Trainer`` sets it to ``1/batch_size``).
    clip_gradient : float > 0 or None
        After rescaling, every gradient element is clipped to ``[-clip, clip]``.
    multi_precision : bool, default False
        With float16 weights, keep float32 master weights and float32 states.
    use_fused : bool or None
        Force the fused kernel (True) or the reference update (False); None follows
        ``GLUON_OPT_IMPL``.
    """
    #: registry short name (``gluon_opt.<name>``)
    name = None
    #: family shown by ``gluon-opt list`` (the module the class lives in)
    family = None
    #: the paper the update follows, with its year
    paper = None
    #: names of the per-weight state tensors, in ``init_state``'s order
    state_names = ()
    #: name of the fused kernel in ``gluon_opt.kernels``, None where there is none
    fused_op = None
    #: True for optimizers whose ``step`` needs a closure (see ``gluon_opt.Trainer``)
    needs_closure = False
    #: attributes that only cache references to the weights and gradients being updated
    #: (the fused kernels' prepared calls, the dense-gradient check): not state, not
    #: pickled, not counted as optimizer memory
    cache_attributes = ('_fused_plans', '_fusable_items', '_dense_grads')
    #: MXNet's default learning rate for this optimizer (used when learning_rate is None)
    default_learning_rate = 0.001

    def __init__(self, learning_rate=None, wd=0.0, rescale_grad=1.0, clip_gradient=None,
                 lr_scheduler=None, multi_precision=False, use_fused=None,
                 param_dict=None, param_idx2name=None, sym=None, begin_num_update=0,
                 **unknown):
        owner = type(self).__name__
        if unknown:
            accepted = sorted(self.hyperparameters()) + [
                'lr_scheduler', 'multi_precision', 'use_fused', 'rescale_grad',
                'clip_gradient', 'param_dict', 'param_idx2name', 'sym', 'begin_num_update']
            raise ValueError('%s: unknown hyperparameter%s %s; accepted: %s.' % (
                owner, 's' if len(unknown) > 1 else '', ', '.join(sorted(unknown)),
                ', '.join(sorted(set(accepted)))))
        if learning_rate is None and lr_scheduler is None:
            learning_rate = self.default_learning_rate
        if learning_rate is not None:
            learning_rate = check_nonnegative(owner, 'learning_rate', learning_rate)
        wd = check_nonnegative(owner, 'wd', wd)
        rescale_grad = _as_float(owner, 'rescale_grad', rescale_grad)
        if clip_gradient is not None and clip_gradient >= 0:
            clip_gradient = check_positive(owner, 'clip_gradient', clip_gradient)
        else:
            clip_gradient = None  # MXNet treats a negative clip_gradient as "no clipping"
        if use_fused is not None and not isinstance(use_fused, bool):
            _fail(owner, 'use_fused', use_fused, 'expected True, False or None')
        super(GluonOptOptimizer, self).__init__(
            rescale_grad=rescale_grad, param_idx2name=param_idx2name, wd=wd,
            clip_gradient=clip_gradient, learning_rate=learning_rate,
            lr_scheduler=lr_scheduler, sym=sym, begin_num_update=begin_num_update,
            multi_precision=bool(multi_precision), param_dict=param_dict)
        self.use_fused = use_fused
        if self.fused_op is not None:
            self.aggregate_num = AGGREGATE_NUM

    # -- description -----------------------------------------------------------------------
    @classmethod
    def hyperparameters(cls):
        """``{name: default}`` of the hyperparameters this optimizer's ``__init__`` declares,
        its own and the shared ones (learning_rate, wd)."""
        out = {}
        for klass in reversed(cls.__mro__):
            if '__init__' not in vars(klass) or not issubclass(klass, GluonOptOptimizer):
                continue
            for p in inspect.signature(klass.__init__).parameters.values():
                if p.kind in (p.VAR_KEYWORD, p.VAR_POSITIONAL) or p.name == 'self':
                    continue
                if klass is GluonOptOptimizer and p.name not in ('learning_rate', 'wd'):
                    continue
                out[p.name] = p.default
        if out.get('learning_rate', None) is None:
            out['learning_rate'] = cls.default_learning_rate
        return out

    def __repr__(self):
        hp = ', '.join('%s=%r' % (k, getattr(self, k, v))
                       for k, v in sorted(self.hyperparameters().items())
                       if k != 'learning_rate')
        return '%s(learning_rate=%r, %s)' % (type(self).__name__, self.learning_rate, hp)

    # -- states ----------------------------------------------------------------------------
    def state_names_for(self, shape):
        """The state names of a weight of this ``shape``, in ``init_state``'s order: the same
        as ``state_names`` unless the states depend on the shape (Adafactor's factored moments,
        Muon's matrices and the rest) or on a wrapped optimizer (Lookahead)."""
        return self.state_names

    def init_state(self, weight):
        """The per-weight state tensors (a tuple, order of ``state_names``)."""
        return tuple(zeros_like(weight) for _ in self.state_names_for(weight.shape))

    def create_state(self, index, weight):
        return self.init_state(weight)

    def _uses_master(self, weight):
        return self.multi_precision and weight.dtype == np.float16

    def create_state_multi_precision(self, index, weight):
        if self._uses_master(weight):
            master = weight.astype(np.float32)
            return (master, self.create_state(index, master))
        if weight.dtype == np.float16:
            warnings.warn('%s: updating float16 weights in float16 loses precision; pass '
                          'multi_precision=True to keep float32 master weights.'
                          % type(self).__name__, stacklevel=2)
        return self.create_state(index, weight)

    # -- the update ------------------------------------------------------------------------
    def update(self, index, weight, grad, state):
        self._update(index, weight, grad, state, multi_precision=False)

    def update_multi_precision(self, index, weight, grad, state):
        self._update(index, weight, grad, state, multi_precision=self.multi_precision)

    def _update(self, index, weight, grad, state, multi_precision):
        indices, weights, grads, states = _as_lists(index, weight, grad, state)
        # Reading stype is a C call (microseconds): remember the gradient arrays already seen
        # dense (Trainer and Updater pass the same ones every step).
        dense = self.__dict__.setdefault('_dense_grads', {})
        for idx, g in zip(indices, grads):
            if dense.get(idx) is g:
                continue
            if g.stype == 'default':
                dense[idx] = g
            else:
                raise ValueError(
                    '%s: parameter %r has a %s gradient, which this optimizer does not support;'
                    ' create the parameter with sparse_grad=False (dense gradients).'
                    % (type(self).__name__, self.idx2name.get(idx, idx), g.stype))
        self._update_count(indices)
        lrs = self._get_lrs(indices)
        wds = self._get_wds(indices)
        items = []
        for idx, w, g, s, lr, wd in zip(indices, weights, grads, states, lrs, wds):
            master = None
            if multi_precision and w.dtype == np.float16:
                master, s = s
            items.append(UpdateItem(idx, w, g, s, lr, wd, self._index_update_count[idx],
                                    master))
        if self._fused_selected():
            from .. import kernels
            items = kernels.fused_update(self, items)  # returns what it could not take
        for item in items:
            self._reference_update(item)

    def _reference_update(self, item):
        if item.master is not None:
            grad = self.prepare_grad(item.grad.astype(np.float32))
            self.step(item.master, grad, item.state, item.lr, item.wd, item.t)
            mx.nd.cast(item.master, dtype=item.weight.dtype, out=item.weight)
        else:
            grad = self.prepare_grad(item.grad)
            self.step(item.weight, grad, item.state, item.lr, item.wd, item.t)

    def prepare_grad(self, grad):
        """``clip(rescale_grad * grad, -clip_gradient, clip_gradient)``: the one gradient
        preprocessing every optimizer applies before its own rule."""
        if self.rescale_grad != 1.0:
            grad = grad * self.rescale_grad
        if self.clip_gradient is not None:
            grad = mx.nd.clip(grad, -self.clip_gradient, self.clip_gradient)
        return grad

    def step(self, weight, grad, state, lr, wd, t):
        """The reference update of one tensor, in place. Subclasses implement it."""
        raise NotImplementedError

    # -- implementation choice -------------------------------------------------------------
    def _fused_selected(self):
        if self.fused_op is None:
            if self.use_fused:
                raise ValueError('%s: use_fused=True, but this optimizer has no fused kernel; '
                                 'use use_fused=None or False.' % type(self).__name__)
            return False
        choice = self.use_fused
        if choice is False:  # forced reference, whatever the environment says
            return False
        if choice is None:
            env = os.environ.get(IMPL_ENV, 'auto').strip().lower() or 'auto'
            if env not in _IMPL_CHOICES:
                raise ValueError('%s=%r is invalid; expected one of %s.'
                                 % (IMPL_ENV, env, ', '.join(_IMPL_CHOICES)))
            if env == 'reference':
                return False
            choice = True if env == 'fused' else None
        from .. import kernels
        if choice is None:
            return kernels.available()
        kernels.require()  # forced: raise with the build error where the kernels are missing
        return True

    # -- pickling ----------------------------------------------------------------------------
    def __getstate__(self):
        """MXNet drops ``param_dict`` when it pickles an optimizer, and with it every
        Parameter's ``lr_mult``/``wd_mult``: a kvstore server (``update_on_kvstore=True`` on a
        ``dist_*`` kvstore) would update with multipliers 1. We bake the multipliers into the
        ``lr_mult``/``wd_mult`` dictionaries keyed by parameter index, which MXNet's
        ``_get_lrs``/``_get_wds`` consult right after ``param_dict``, so the unpickled copy
        computes the same learning rates and weight decays."""
        state = super(GluonOptOptimizer, self).__getstate__()
        for key in self.cache_attributes:  # caches that refer to live weights and gradients
            state.pop(key, None)
        param_dict = getattr(self, 'param_dict', None) or {}
        if param_dict:
            state['lr_mult'] = dict(state.get('lr_mult', {}))
            state['wd_mult'] = dict(state.get('wd_mult', {}))
            for index, param in param_dict.items():
                state['lr_mult'][index] = param.lr_mult
                state['wd_mult'][index] = param.wd_mult
        return state

    def __setstate__(self, state):
        super(GluonOptOptimizer, self).__setstate__(state)
