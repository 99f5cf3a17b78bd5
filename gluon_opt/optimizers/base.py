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
float32 master copies (``multi_precision``), the checks of the arrays an update is given (dense
gradients of the weight's shape, dtype and context, floating-point weights; before any kernel
or reference update touches them), and the choice between the reference update and a fused
kernel (``gluon_opt.kernels``).

The fused path sits beside the reference, on the same class (as MXNet 2's ``Adam.fused_step``
beside ``Adam.step``): ``fused_op`` names the C++ op that runs the update, ``fused_attrs()``
gives the hyperparameters it reads and ``fused_scalars(lr, wd, t)`` the per-tensor scalars
(learning rate, bias corrections, ...), computed in Python in double precision exactly as
``step`` computes them. Updates that are several kernels with other work between them (Muon,
Lookahead) override ``_fused_update(items)`` instead.

What there is to know about an optimizer besides its update (display label, family, paper,
tuned settings, benchmark settings and bytes, MXNet and torch counterparts, the oracle the
tests check it against) is declared once, as class attributes next to ``name``; see
``GluonOptOptimizer`` and ``gluon_opt.optimizers.registry.info``.

Choosing the implementation
---------------------------
``use_fused=None`` (the default) follows the environment variable ``GLUON_OPT_IMPL``:
``auto`` (default: the fused kernel where one is built and loads, else the reference),
``reference`` (always the readable ``mx.nd`` update) or ``fused`` (the fused kernel, and an
error where it is unavailable). ``use_fused=True``/``False`` overrides the variable for one
optimizer. The reference is the oracle the fused path is tested against.
"""
import contextlib
import inspect
import math
import numbers
import os
import warnings

import numpy as np
import mxnet as mx

from .. import kernels
from . import lowprec

__all__ = ['GluonOptOptimizer', 'check_range', 'check_nonnegative', 'check_positive',
           'check_choice', 'check_int', 'check_float', 'check_bool', 'check_clip_gradient',
           'check_lr_scheduler', 'check_dict', 'check_weight_dtype', 'FLOAT_DTYPES',
           'couple_weight_decay', 'decay_weight', 'bias_corrections', 'zeros_like',
           'cautious_mask', 'refuse_low_precision', 'IMPL_ENV', 'STORAGE_OPTIONS']

IMPL_ENV = 'GLUON_OPT_IMPL'
#: tensors MXNet's ``Updater`` hands to one ``update`` call for optimizers with a fused kernel
#: (``Optimizer.aggregate_num``): the kernels update them all in one op call, so small tensors
#: do not pay MXNet's per-op dispatch each. The reference path loops over them as before.
AGGREGATE_NUM = 256
_IMPL_CHOICES = ('auto', 'reference', 'fused')
#: the shared options of ``state_dtype`` storage (``lowprec``): not hyperparameters (the update
#: is the same float32 rule), so a states file saved with others still loads, converted
STORAGE_OPTIONS = ('state_dtype', 'state_rounding', 'state_block_size', 'state_min_size',
                   'state_seed')


# ---------------------------------------------------------------------------------------------
# Validation helpers: every message names the optimizer, the parameter, the value and what is
# accepted (``'Adam: beta1=1.5 is invalid; expected a number in [0, 1).'``). Numbers must be
# real numbers, finite, and not booleans (``True`` is an int to Python, never a learning rate);
# strings are refused everywhere a number or a boolean is expected, where ``float('0.1')`` or
# ``bool('False')`` would silently accept them.

def _fail(owner, name, value, expected):
    raise ValueError('%s: %s=%r is invalid; %s.' % (owner, name, value, expected))


def _number(owner, name, value, expected):
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        _fail(owner, name, value, expected)
    value = float(value)
    if not math.isfinite(value):
        _fail(owner, name, value, expected)
    return value


def check_float(owner, name, value):
    """A finite real number (not a bool, not a string), as a float."""
    return _number(owner, name, value, 'expected a finite number')


def check_range(owner, name, value, low, high, low_open=False, high_open=True):
    """``value`` must lie in the interval from ``low`` to ``high`` (open or closed ends)."""
    expected = 'expected a number in %s%g, %g%s' % ('(' if low_open else '[', low, high,
                                                    ')' if high_open else ']')
    value = _number(owner, name, value, expected)
    bad_low = value <= low if low_open else value < low
    bad_high = value >= high if high_open else value > high
    if bad_low or bad_high:
        _fail(owner, name, value, expected)
    return value


def check_nonnegative(owner, name, value):
    value = _number(owner, name, value, 'expected a finite number >= 0')
    if value < 0:
        _fail(owner, name, value, 'expected a finite number >= 0')
    return value


def check_positive(owner, name, value):
    value = _number(owner, name, value, 'expected a finite number > 0')
    if value <= 0:
        _fail(owner, name, value, 'expected a finite number > 0')
    return value


def check_choice(owner, name, value, choices):
    # identity or string equality only: ``value in choices`` would compare arrays elementwise
    if not any(value is c or (isinstance(value, str) and value == c) for c in choices):
        _fail(owner, name, value, 'expected one of %s' % ', '.join(repr(c) for c in choices))
    return value


def check_int(owner, name, value, minimum):
    """An integer (not a bool, not a float such as 5.0, not a string) >= ``minimum``."""
    if (isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer))
            or value < minimum):
        _fail(owner, name, value, 'expected an integer >= %d' % minimum)
    return int(value)


def check_bool(owner, name, value, allow_none=False):
    """``True`` or ``False`` (numpy booleans and the integers 0 and 1 too), or None where
    ``allow_none``. Strings are refused: ``bool('False')`` is True."""
    if allow_none and value is None:
        return None
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, (int, np.integer)) and value in (0, 1):
        return bool(value)
    expected = 'expected True or False' + (' or None' if allow_none else '')
    if isinstance(value, str):
        expected += ' (a string is not a boolean: pass True/False without quotes)'
    _fail(owner, name, value, expected)


def check_clip_gradient(owner, value):
    """MXNet's ``clip_gradient``: a number > 0 clips, None or a negative number turns clipping
    off (MXNet's convention, e.g. -1). Returns the bound, or None."""
    expected = ('expected a finite number > 0 (the clipping bound), or None or a negative '
                'number (no clipping)')
    if value is None:
        return None
    value = _number(owner, 'clip_gradient', value, expected)
    if value == 0:
        _fail(owner, 'clip_gradient', value, expected)
    return value if value > 0 else None


def check_lr_scheduler(owner, value):
    """None or an ``mx.lr_scheduler.LRScheduler`` instance (gluoncv's ``LRScheduler`` and
    ``LRSequential`` derive from it)."""
    if value is None or isinstance(value, mx.lr_scheduler.LRScheduler):
        return value
    _fail(owner, 'lr_scheduler', value, "expected None or an mx.lr_scheduler.LRScheduler "
          "instance (MXNet's FactorScheduler, CosineScheduler, ... or gluoncv's LRScheduler, "
          "LRSequential), not a name or a class")


def check_dict(owner, name, value):
    """None or a dict (returned as it is: ``gluon.Trainer`` keeps sharing its ``param_dict``)."""
    if value is not None and not isinstance(value, dict):
        _fail(owner, name, value, 'expected a dict or None')
    return value


#: dtypes a weight may have: gradient steps on integer or boolean tensors make no sense (and
#: integer division by a zero state kills the process with SIGFPE)
FLOAT_DTYPES = (np.float16, np.float32, np.float64)


def check_weight_dtype(owner, weight, where):
    """Refuse a weight (an NDArray or a Parameter) that is not float16/32/64 (``where`` names
    the parameter)."""
    if np.dtype(weight.dtype) not in FLOAT_DTYPES:
        _fail(owner, 'weight.dtype', np.dtype(weight.dtype).name, 'expected float16, float32 '
              'or float64 (%s); integer and boolean parameters cannot take gradient steps: '
              'create them with a floating dtype, or grad_req="null" to freeze them' % where)


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


def refuse_low_precision(owner, state_dtype, refusal=''):
    """The ValueError for ``state_dtype`` (not float32) where ``owner`` cannot store its
    states so (``refusal``: a phrase such as ``'with cautious=True'``, or '')."""
    from .registry import REGISTRY
    supported = sorted(name for name, cls in REGISTRY.items()
                       if cls.low_precision_states is not None)
    _fail(owner, 'state_dtype', state_dtype, 'state_dtype=%r is not supported by %s%s yet; '
          "supported: %s (or state_dtype='float32')" % (state_dtype, owner, ' ' + refusal
                                                         if refusal else '',
                                                         ', '.join(supported)))


def cautious_mask(update, grad):
    r"""The cautious mask of Liang, Chen, Liu & Liu, "Cautious Optimizers: Improving Training
    with One Line of Code" (2024): keep the coordinates where the update ``u`` (the direction
    the weight will move *against*, ``w <- w - lr * u``) agrees in sign with the gradient, zero
    the others, and rescale the kept ones so the update keeps its overall size:

    .. math::

        \phi = \mathbb{1}[u \odot g > 0], \qquad
        u \leftarrow u \odot \phi \, \frac{n}{\sum_i \phi_i + 1}

    with ``n`` the tensor's number of elements, as the authors' code (kyleliang919/C-Optim:
    ``mask * (mask.numel() / (mask.sum() + 1))``) and pytorch-optimizer 4.1's
    ``apply_cautious`` (some other implementations divide by ``max(mean(phi), 1e-3)``, without
    the ``+ 1``; the two agree to ``1/sum(phi)``).
    Returns the scaled mask (same shape as ``update``); multiply the update by it."""
    mask = update * grad > 0
    return mask * (float(mask.size) / (mask.sum() + 1.0))


def _memory(context):
    """Where a context's arrays live: one GPU's memory, or the host's. Every CPU context
    (``cpu(i)``, ``cpu_pinned``, ``cpu_shared``) is host memory, and MXNet's KVStore does hand
    the updater a gradient on ``cpu(1)`` with a weight on ``cpu_pinned(0)``; MXNet's ops require
    the same device type, and a GPU kernel can only read its own device's memory."""
    if context.device_type == 'gpu':
        return ('gpu', context.device_id)
    return ('cpu',)


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
        Step size; a ``lr_scheduler`` overrides it per update.
    wd : float >= 0, default 0
        Weight decay; coupled (L2 in the gradient) or decoupled as each optimizer documents.
    rescale_grad : float, default 1
        Gradients are multiplied by it first (``gluon.Trainer`` sets it to ``1/batch_size``).
    clip_gradient : float > 0, or None or a negative number (no clipping; MXNet's -1)
        After rescaling, every gradient element is clipped to ``[-clip, clip]``.
    lr_scheduler : mx.lr_scheduler.LRScheduler or None (gluoncv's schedulers are ones)
    multi_precision : bool, default False
        With float16 weights, keep float32 master weights and float32 states.
    use_fused : bool or None
        Force the fused kernel (True) or the reference update (False); None follows
        ``GLUON_OPT_IMPL``.
    state_dtype : 'float32' (default), 'bfloat16' or 'int8'
        How the optimizer keeps its moment states between steps (``gluon_opt.optimizers.
        lowprec``): bfloat16 halves their memory, blockwise 8-bit quantisation (Dettmers et
        al., ICLR 2022) quarters it. Only the optimizers that declare
        ``low_precision_states`` take the other two.
    state_rounding : 'nearest' (default) or 'stochastic'
        bfloat16 states only: round to nearest even, or stochastically (seeded by
        ``state_seed``, the parameter's index and step).
    state_block_size : int, default 256
        int8 states: elements per block sharing one float32 scale (64, 128, ..., 4096).
    state_min_size : int, default 4096
        int8 states: tensors of fewer elements keep float32 states.
    state_seed : int, default 0
        The seed of stochastic rounding.
    """
    # -- the record (``gluon_opt.optimizers.info``): declared once, on each optimizer --------
    #: registry short name (``gluon_opt.<name>``)
    name = None
    #: display name (``'Schedule-free AdamW'``); None: the class name
    label = None
    #: family shown by ``gluon-opt list``
    family = None
    #: the paper the update follows, with its year
    paper = None
    #: the course MLP's tuned settings, ``{label: hyperparameters}`` (the comparison's default
    #: line-up: MLP 784-256-10, batch 128, 3 epochs, seed 0, the best test accuracy of a small
    #: grid); empty where the optimizer was not tuned
    tuned = {}
    #: the hyperparameters ``gluon-opt bench`` times; None: the default learning rate
    #: (closure-based optimizers are not benchmarked)
    bench_hyperparameters = None
    #: float32 bytes one step must move per weight element with the bench settings (read the
    #: weight, gradient and states once, write the weight and states once): a number, or a
    #: function of one tensor's shape giving that tensor's bytes where the states' sizes depend
    #: on the shape
    step_bytes = None
    #: configurations ``gluon-opt bench`` also times, as ``<name>+<variant>``: ``{variant:
    #: (hyperparameters added to bench_hyperparameters, step_bytes of that configuration)}``
    bench_variants = {}
    #: float32 bytes of state held per weight element with the default hyperparameters (a
    #: number, or a function of one tensor's shape giving that tensor's bytes)
    state_bytes = None
    #: MXNet 1.9.1's optimizer for the same algorithm (its registry name), None where none is
    mxnet_builtin = None
    #: the ``torch.optim`` class with the same conventions (its name), None where none is
    torch_class = None
    #: the independent implementation the tests check this optimizer against; None:
    #: ``torch.optim.<torch_class>``
    oracle = None

    #: names of the per-weight state tensors, in ``init_state``'s order
    state_names = ()
    #: the C++ op (``gluon_opt.kernels``) that runs the update of many tensors in one call,
    #: reading ``fused_attrs()`` and ``fused_scalars(lr, wd, t)``; None where there is no fused
    #: path. Composite updates (``_fused_update`` overridden) name the op that writes the weight.
    fused_op = None
    #: the states that ``state_dtype='bfloat16'``/``'int8'`` may store in low precision,
    #: ``{state name: 'signed' or 'unsigned'}`` (the 8-bit map for first moments, or for
    #: second moments, which are never negative); the others (one-element states) stay
    #: float32. None: the optimizer keeps float32 states only.
    low_precision_states = None
    # the storage options' defaults (``__init__`` sets them): also what an optimizer pickled
    # before they existed reads
    state_dtype, state_rounding, state_seed = 'float32', 'nearest', 0
    state_block_size, state_min_size = lowprec.DEFAULT_BLOCK_SIZE, lowprec.DEFAULT_MIN_SIZE
    #: True for optimizers whose ``step`` needs a closure (see ``gluon_opt.Trainer``)
    needs_closure = False
    #: attributes that only cache references to the weights and gradients being updated
    #: (the fused kernels' prepared calls, the arrays already checked): not state, not
    #: pickled, not counted as optimizer memory
    cache_attributes = ('_fused_plans', '_fusable_items', '_checked_last', '_checked_arrays',
                        '_checked_slots')
    #: MXNet's default learning rate for this optimizer (used when learning_rate is None)
    default_learning_rate = 0.001

    def __init__(self, learning_rate=None, wd=0.0, rescale_grad=1.0, clip_gradient=None,
                 lr_scheduler=None, multi_precision=False, use_fused=None,
                 param_dict=None, param_idx2name=None, sym=None, begin_num_update=0,
                 state_dtype='float32', state_rounding='nearest',
                 state_block_size=lowprec.DEFAULT_BLOCK_SIZE,
                 state_min_size=lowprec.DEFAULT_MIN_SIZE, state_seed=0, **unknown):
        owner = type(self).__name__
        if unknown:
            accepted = sorted(self.hyperparameters()) + [
                'lr_scheduler', 'multi_precision', 'use_fused', 'rescale_grad',
                'clip_gradient', 'param_dict', 'param_idx2name', 'sym', 'begin_num_update'
            ] + list(STORAGE_OPTIONS)
            raise ValueError('%s: unknown hyperparameter%s %s; accepted: %s.' % (
                owner, 's' if len(unknown) > 1 else '', ', '.join(sorted(unknown)),
                ', '.join(sorted(set(accepted)))))
        if learning_rate is None and lr_scheduler is None:
            learning_rate = self.default_learning_rate
        if learning_rate is not None:
            learning_rate = check_nonnegative(owner, 'learning_rate', learning_rate)
        wd = check_nonnegative(owner, 'wd', wd)
        rescale_grad = check_float(owner, 'rescale_grad', rescale_grad)
        clip_gradient = check_clip_gradient(owner, clip_gradient)
        lr_scheduler = check_lr_scheduler(owner, lr_scheduler)
        multi_precision = check_bool(owner, 'multi_precision', multi_precision)
        use_fused = check_bool(owner, 'use_fused', use_fused, allow_none=True)
        param_dict = check_dict(owner, 'param_dict', param_dict)
        param_idx2name = check_dict(owner, 'param_idx2name', param_idx2name)
        begin_num_update = check_int(owner, 'begin_num_update', begin_num_update, 0)
        self._check_storage(state_dtype, state_rounding, state_block_size, state_min_size,
                            state_seed)
        super(GluonOptOptimizer, self).__init__(
            rescale_grad=rescale_grad, param_idx2name=param_idx2name, wd=wd,
            clip_gradient=clip_gradient, learning_rate=learning_rate,
            lr_scheduler=lr_scheduler, sym=sym, begin_num_update=begin_num_update,
            multi_precision=multi_precision, param_dict=param_dict)
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
        state = self.init_state(weight)
        # float32 states (of float32 weights, or float32 master weights) only: float16 weights
        # without master weights keep their float16 states, already 2 bytes
        if self.state_dtype != 'float32' and weight.dtype == np.float32:
            state = lowprec.compress(self, state, weight.shape)
        return state

    # -- low-precision storage of the states (``lowprec``) ---------------------------------
    def low_precision_refusal(self):
        """Why this configuration cannot keep its states in low precision (a phrase such as
        ``'with cautious=True'``), or None where it can. The default: it can where the class
        declares ``low_precision_states``; options that it cannot take override this."""
        return None if self.low_precision_states is not None else ''

    def _check_storage(self, state_dtype, state_rounding, block_size, min_size, seed):
        owner = type(self).__name__
        self.state_dtype = check_choice(owner, 'state_dtype', state_dtype, lowprec.STATE_DTYPES)
        self.state_rounding = check_choice(owner, 'state_rounding', state_rounding,
                                           lowprec.ROUNDINGS)
        self.state_block_size = check_int(owner, 'state_block_size', block_size, 1)
        if self.state_block_size not in lowprec.BLOCK_SIZES:
            _fail(owner, 'state_block_size', block_size, 'expected one of %s'
                  % ', '.join(map(str, lowprec.BLOCK_SIZES)))
        self.state_min_size = check_int(owner, 'state_min_size', min_size, 0)
        self.state_seed = check_int(owner, 'state_seed', seed, 0)
        if self.state_seed >= 2 ** 32:
            _fail(owner, 'state_seed', seed, 'expected an integer in [0, 2**32)')
        if self.state_rounding == 'stochastic' and self.state_dtype != 'bfloat16':
            _fail(owner, 'state_rounding', state_rounding, "expected 'nearest' with "
                  "state_dtype=%r: stochastic rounding applies to state_dtype='bfloat16' only"
                  % self.state_dtype)
        if self.state_dtype != 'float32':
            refusal = self.low_precision_refusal()
            if refusal is not None:
                refuse_low_precision(owner, state_dtype, refusal)

    def state_memory(self, state):
        """Bytes of the arrays of one weight's ``state`` (as ``create_state_multi_precision``
        made it: a float32 master weight counts too)."""
        return lowprec.state_nbytes(state)

    def _uses_master(self, weight):
        return self.multi_precision and weight.dtype == np.float16

    def create_state_multi_precision(self, index, weight):
        check_weight_dtype(type(self).__name__, weight, self._param_label(index))
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
        self._check_inputs(indices, weights, grads)
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
            items = self._fused_update(items)  # returns what it could not take
        for item in items:
            self._reference_update(item)

    # -- the fused path --------------------------------------------------------------------------
    def fused_attrs(self):
        """The attributes of ``fused_op``: the hyperparameters the kernel reads (the gradient
        preprocessing is added by ``_fused_update``)."""
        return {}

    def fused_scalars(self, lr, wd, t):
        """The per-tensor scalars of ``fused_op``, in the order of the kernel's ``kScalars``: a
        function of the hyperparameters and of the tensor's ``lr``, ``wd`` and 1-based step
        ``t`` only (the kernels compute it once per distinct triple in a call)."""
        raise NotImplementedError('%s declares fused_op=%r but no fused_scalars'
                                  % (type(self).__name__, self.fused_op))

    def kernel_grad_attrs(self):
        """The kernels' gradient preprocessing attributes for this optimizer's settings."""
        return kernels.grad_attrs(self.rescale_grad, self.clip_gradient)

    def _fused_update(self, items):
        """The fused path: ``fused_op`` over the items the kernels take (several tensors per
        call, calls prepared once and replayed); returns the others, which the reference
        updates. Composite updates (Muon, Lookahead) override it."""
        return self._fused_rule_update(self.fused_op, items)

    def _fused_rule_update(self, op_name, items):
        """The rule op ``op_name`` over ``items``; tensors whose states are stored in low
        precision go to its low-precision variant ``<op_name>_lp`` (``kernels/lowprec.h``)."""
        attrs = dict(self.fused_attrs(), **self.kernel_grad_attrs())
        low = None
        if self.state_dtype != 'float32':
            names = self.state_names
            moments = self.low_precision_states
            low = (op_name + '_lp', {
                'signs': ''.join('s' if moments.get(n) == 'signed' else 'u' for n in names),
                'block': self.state_block_size,
                'stochastic': int(self.state_rounding == 'stochastic'),
                'seed': self.state_seed})
        return kernels.update(op_name, items, attrs, self.fused_scalars,
                              self.__dict__.setdefault('_fused_plans', {}), low)

    def fusable(self, item, op_name):
        """True where the kernel ``op_name`` takes ``item`` (for composite updates)."""
        return kernels.fusable(item, op_name, self.__dict__.setdefault('_fusable_items', {}))

    # -- evaluation ------------------------------------------------------------------------------
    def evaluation_weights(self, trainer):
        """A context manager under which ``trainer``'s parameters hold the weights to evaluate
        (and save for inference), restored on exit. By default the weights as they are;
        Schedule-Free swaps in its averaged point x (as optax's ``schedule_free_eval_params``)::

            with trainer._optimizer.evaluation_weights(trainer):
                validate(net)
        """
        return contextlib.nullcontext(trainer)

    # -- input checks --------------------------------------------------------------------------
    def _param_label(self, index):
        """``parameter 'dense0_weight'`` (or ``parameter 3`` where no name is known)."""
        param = self.param_dict.get(index) if self.param_dict else None
        name = param.name if param is not None else self.idx2name.get(index, index)
        return 'parameter %r' % (name,)

    def _check_arrays(self, index, weight, grad):
        """Refuse what no update can take: a sparse gradient, a weight that is not floating
        point, a gradient whose shape or dtype differ from the weight's (``nd`` arithmetic
        would broadcast a (1, n) gradient over an (m, n) weight), or that lives in another
        device's memory. With ``multi_precision`` the gradient has the float16 weight's dtype
        too; the float32 master is the state's. Returns the weight's context."""
        owner = type(self).__name__
        if grad.stype != 'default':
            _fail(owner, 'grad.stype', grad.stype, 'expected dense gradients (%s): this '
                  'optimizer does not support sparse ones; create the parameter with '
                  'sparse_grad=False' % self._param_label(index))
        check_weight_dtype(owner, weight, self._param_label(index))
        if grad.shape != weight.shape:
            _fail(owner, 'grad.shape', grad.shape, "expected the weight's shape %s (%s); "
                  'gradients are never broadcast' % (weight.shape, self._param_label(index)))
        if grad.dtype != weight.dtype:
            _fail(owner, 'grad.dtype', np.dtype(grad.dtype).name, "expected the weight's "
                  'dtype %s (%s)' % (np.dtype(weight.dtype).name, self._param_label(index)))
        context = weight.context
        if _memory(grad.context) != _memory(context):
            _fail(owner, 'grad.context', grad.context, "expected the weight's device %s (%s)"
                  % (context, self._param_label(index)))
        return context

    def _check_inputs(self, indices, weights, grads):
        """``_check_arrays`` once per weight and gradient array: reading a shape, dtype or
        context is a C call, and Trainer and Updater pass the same arrays every step. The last
        pair seen per index answers the common case with two identity tests; with several
        contexts (one optimizer updates each context's copy of an index) the pairs checked are
        also remembered by (index, weight's id) -- the cache holds the arrays, so the ids stay
        theirs --, one per index and context, so that arrays replaced by new ones (SAM's weight
        copies, a re-initialised model) are let go."""
        last = self.__dict__.setdefault('_checked_last', {})
        for idx, w, g in zip(indices, weights, grads):
            hit = last.get(idx)
            if hit is None or hit[0] is not w or hit[1] is not g:
                self._check_new_pair(idx, w, g)
                last[idx] = (w, g)

    def _check_new_pair(self, idx, w, g):
        checked = self.__dict__.setdefault('_checked_arrays', {})
        slots = self.__dict__.setdefault('_checked_slots', {})
        key = (idx, id(w))
        hit = checked.get(key)
        if hit is not None and hit[1] is g:
            return
        context = self._check_arrays(idx, w, g)
        old = slots.get((idx, context))
        if old is not None and old != key:
            checked.pop(old, None)
        slots[(idx, context)] = key
        checked[key] = (w, g)

    def _reference_update(self, item):
        weight = item.master if item.master is not None else item.weight
        state = item.state
        if self.state_dtype != 'float32':  # low-precision states: float32 copies, stored after
            state = lowprec.expand(self, item.state, weight.shape)
        if item.master is not None:
            grad = self.prepare_grad(item.grad.astype(np.float32))
            self.step(item.master, grad, state, item.lr, item.wd, item.t)
            mx.nd.cast(item.master, dtype=item.weight.dtype, out=item.weight)
        else:
            grad = self.prepare_grad(item.grad)
            self.step(item.weight, grad, state, item.lr, item.wd, item.t)
        if state is not item.state:
            lowprec.store(self, state, item.state, weight.shape, item.index, item.t)

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
