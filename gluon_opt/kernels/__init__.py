"""Fused optimizer kernels: C++ through MXNet's external-operator API (``mx.library.load``).

An optimizer step is memory-bound; composed from ``mx.nd`` operations it reads and writes
every tensor many times and pays Python dispatch per operation. Each kernel here updates a
tensor in one pass (OpenMP across cores, vectorised loops), and one call takes many tensors,
so that small tensors do not pay MXNet's dispatch each.

The interface the optimizers call:

* ``available()``: True when the kernel library is built (or cached) and loaded; the first
  call builds it (``build.py``) and, where that fails, warns once and returns False;
* ``require()``: the same, raising ``KernelBuildError`` with the compiler's message instead
  (``use_fused=True`` or ``GLUON_OPT_IMPL=fused``);
* ``fused_update(optimizer, items)``: run the ``UpdateItem``s it can through the kernel named
  by ``optimizer.fused_op`` and return the others (the reference update runs those).

How an optimizer gets a fused path: set ``fused_op = '<name>'`` on the class and add an
``FusedOp`` entry for ``<name>`` to ``OPS`` below. The entry says which C++ op runs the rule,
which hyperparameters it reads from the optimizer (``attrs``), which scalars it needs per
tensor (``scalars``: learning rate, bias corrections, ... computed in Python in double
precision exactly as the reference computes them) and, optionally, which optimizer settings it
handles (``supports``). An optimizer whose ``fused_op`` has no entry keeps the reference path.

Optimizers whose update is several kernels with other work between them (Muon: matrix
products between two elementwise kernels; Lookahead: its inner optimizer's kernel, then the
slow-weight synchronisation) list their ``fused_op`` in ``COMPOSITE`` instead and run the
pieces in their own ``_fused_update(items)`` (returning the items it could not take), with
``call`` and the helper ops of ``HELPER_OPS``.

Taken by the kernels: dense float32 weights with float32 states, and float16 weights with
float32 master weights and states (``multi_precision``), on CPU; on GPU too for the ops of
``GPU_OPS`` where the library was built with its CUDA kernels (a CUDA build of MXNet and nvcc,
see ``build.py``). Anything else (float16 without master weights, other contexts, Adafactor and
Lookahead's synchronisation on a GPU) falls back to the reference per item.
"""
import math
import os
import warnings

import numpy as np

from .build import KernelBuildError, cuda_enabled, load as _load_library

__all__ = ['available', 'require', 'fused_update', 'has_fused_path', 'fusable', 'call',
           'grad_attrs', 'FusedOp', 'OPS', 'COMPOSITE', 'HELPER_OPS', 'KernelBuildError',
           'KernelBuildWarning', 'MAX_TENSORS_PER_CALL', 'GPU_OPS', 'cuda_enabled']

#: tensors per kernel call at most (MXNet's Updater hands us up to ``aggregate_num`` at once)
MAX_TENSORS_PER_CALL = 256


class KernelBuildWarning(RuntimeWarning):
    """The fused kernels could not be built or loaded; the reference updates run instead."""


class FusedOp(object):
    """How one ``fused_op`` name maps onto a C++ op.

    op : name of the registered C++ op (``mx.nd.<op>`` once the library is loaded)
    attrs : ``optimizer -> dict`` of the hyperparameters the kernel reads
    scalars : ``(optimizer, item) -> tuple of floats``, the per-tensor scalars in the order the
        kernel's ``kScalars`` expects; a function of the optimizer's hyperparameters and the
        item's ``lr``, ``wd`` and ``t`` only (``fused_update`` computes it once per distinct
        triple in a call)
    supports : ``optimizer -> bool``; False keeps this optimizer on the reference path
    """
    __slots__ = ('op', 'attrs', 'scalars', 'supports')

    def __init__(self, op, attrs, scalars, supports=None):
        self.op, self.attrs, self.scalars = op, attrs, scalars
        self.supports = supports or (lambda optimizer: True)


def _sgd_scalars(opt, item):
    return (item.lr, item.wd, 1.0 if item.t == opt.begin_num_update + 1 else 0.0)


def _adam_scalars(opt, item, decoupled):
    from ..optimizers.base import bias_corrections
    bc1, bc2 = bias_corrections(opt.beta1, opt.beta2, item.t)
    if decoupled:
        return (item.lr / bc1, bc2, 0.0, 1.0 - item.lr * item.wd)
    return (item.lr / bc1, bc2, item.wd, 1.0)


def _adam_attrs(opt):
    return {'beta1': opt.beta1, 'beta2': opt.beta2, 'epsilon': opt.epsilon}


def _decay_wd(opt, item):
    """``(decay factor, coupled wd)``: ``(1 - lr*wd, 0)`` with decoupled weight decay (the
    reference's ``decay_weight``), ``(1, wd)`` with coupled (``couple_weight_decay``)."""
    if getattr(opt, 'decoupled_wd', False):
        return (1.0 - item.lr * item.wd, 0.0)
    return (1.0, item.wd)


def _adamax_scalars(opt, item):
    return (1.0, item.wd, item.lr / (1 - opt.beta1 ** item.t))


def _nadam_scalars(opt, item):
    t = item.t
    mu, mu_next = opt.momentum_at(t), opt.momentum_at(t + 1)
    return _decay_wd(opt, item) + (mu, item.lr * (1 - mu), item.lr * mu_next, mu_next,
                                   1 - opt.beta2 ** t)


def _radam_scalars(opt, item):
    from ..optimizers.base import bias_corrections
    bc1, bc2 = bias_corrections(opt.beta1, opt.beta2, item.t)
    rect = opt.rectification(item.t)
    if rect is None:
        return _decay_wd(opt, item) + (0.0, item.lr / bc1)
    return _decay_wd(opt, item) + (1.0, item.lr * rect * math.sqrt(bc2) / bc1)


def _adabelief_scalars(opt, item):
    from ..optimizers.base import bias_corrections
    bc1, bc2 = bias_corrections(opt.beta1, opt.beta2, item.t)
    return _decay_wd(opt, item) + (item.lr / bc1, bc2)


def _adagrad_scalars(opt, item):
    return (item.lr / (1 + (item.t - 1) * opt.lr_decay), item.wd)


def _lamb_scalars(opt, item):
    from ..optimizers.base import bias_corrections
    bc1, bc2 = bias_corrections(opt.beta1, opt.beta2, item.t)
    return (item.lr, item.wd, bc1, bc2)


def _lamb_attrs(opt):
    return dict(_adam_attrs(opt), bias_correction=int(opt.bias_correction),
                lower_bound=-1.0 if opt.lower_bound is None else opt.lower_bound,
                upper_bound=-1.0 if opt.upper_bound is None else opt.upper_bound)


def _schedulefree_scalars(opt, item):
    t, lr = item.t, item.lr
    if opt.warmup_steps and t <= opt.warmup_steps:
        lr = lr * t / opt.warmup_steps
    return (lr, float(t) ** opt.r, 1.0 - opt.beta2 ** t, item.wd)


def _adafactor_attrs(opt):
    return {'epsilon1': opt.epsilon1, 'epsilon2': opt.epsilon2,
            'clip_threshold': opt.clip_threshold, 'momentum': int(opt.beta1 is not None),
            'beta1': 0.0 if opt.beta1 is None else opt.beta1,
            'scale_parameter': int(opt.scale_parameter)}


def _adafactor_scalars(opt, item):
    alpha = item.lr * opt.relative_step_size(item.t)  # times max(eps2, RMS(w)) in the kernel
    return (alpha, opt.second_moment_decay(item.t), item.wd, 1.0 - item.wd * alpha)


def _lr_wd(opt, item):
    return (item.lr, item.wd)


#: fused_op name -> FusedOp
OPS = {
    'sgd': FusedOp('gopt_sgd',
                   lambda o: {'momentum': o.momentum, 'dampening': o.dampening,
                              'nesterov': int(o.nesterov)},
                   _sgd_scalars),
    'adam': FusedOp('gopt_adam', _adam_attrs, lambda o, it: _adam_scalars(o, it, False)),
    'adamw': FusedOp('gopt_adam', _adam_attrs, lambda o, it: _adam_scalars(o, it, True)),
    'adamax': FusedOp('gopt_adamax', _adam_attrs, _adamax_scalars),
    'nadam': FusedOp('gopt_nadam', _adam_attrs, _nadam_scalars),
    'radam': FusedOp('gopt_radam', _adam_attrs, _radam_scalars),
    'adabelief': FusedOp('gopt_adabelief', _adam_attrs, _adabelief_scalars),
    'adagrad': FusedOp('gopt_adagrad', lambda o: {'epsilon': o.epsilon}, _adagrad_scalars),
    'rmsprop': FusedOp('gopt_rmsprop',
                       lambda o: {'rho': o.rho, 'epsilon': o.epsilon, 'momentum': o.momentum,
                                  'centered': int(o.centered)},
                       _lr_wd),
    'adadelta': FusedOp('gopt_adadelta', lambda o: {'rho': o.rho, 'epsilon': o.epsilon},
                        _lr_wd),
    'lion': FusedOp('gopt_lion', lambda o: {'beta1': o.beta1, 'beta2': o.beta2},
                    lambda o, it: (it.lr, 1.0 - it.lr * it.wd)),
    'lamb': FusedOp('gopt_lamb', _lamb_attrs, _lamb_scalars),
    'lars': FusedOp('gopt_lars',
                    lambda o: {'momentum': o.momentum, 'eta': o.eta, 'epsilon': o.epsilon},
                    _lr_wd),
    'adafactor': FusedOp('gopt_adafactor', _adafactor_attrs, _adafactor_scalars),
    'schedulefree_adamw': FusedOp('gopt_schedulefree_adamw',
                                  lambda o: dict(_adam_attrs(o),
                                                 weight_lr_power=o.weight_lr_power),
                                  _schedulefree_scalars),
}

#: fused_op name -> the pieces of a composite fused update (the optimizer's ``_fused_update``)
COMPOSITE = {
    'muon': 'gopt_muon_momentum, Newton-Schulz by nd.dot, gopt_muon_apply; AdamW tensors: '
            'gopt_adam',
    'lookahead': "the inner optimizer's fused update, then gopt_lookahead_sync",
}

#: ops of the library that are not an optimizer's whole rule
HELPER_OPS = ('gopt_copy', 'gopt_muon_momentum', 'gopt_muon_apply', 'gopt_lookahead_sync')

#: the ops with a CUDA driver in a CUDA build: every rule op (``GLUON_OPT_REGISTER_RULE``);
#: Adafactor's factored passes, Lookahead's synchronisation and the copy are CPU-only
#: (``tests/gpu`` checks this set against the library's registrations)
GPU_OPS = frozenset(spec.op for spec in OPS.values() if spec.op != 'gopt_adafactor') | {
    'gopt_muon_momentum', 'gopt_muon_apply'}

_state = {'error': None, 'warned': False, 'ops': None}


def _ensure_loaded():
    """Load (building if needed) once; remember the failure so it is reported only once."""
    if _state['ops'] is not None:
        return True
    if _state['error'] is not None:
        return False
    try:
        _load_library()
    except KernelBuildError as err:
        _state['error'] = err
        return False
    import mxnet as mx
    _state['ops'] = {spec.op: getattr(mx.nd, spec.op) for spec in OPS.values()}
    _state['ops'].update((name, getattr(mx.nd, name)) for name in HELPER_OPS)
    return True


def available():
    """True when the fused kernels are loaded. The first call builds them if the cache lacks
    them; on failure it warns once (``KernelBuildWarning``) and returns False."""
    if _ensure_loaded():
        return True
    if not _state['warned']:
        _state['warned'] = True
        warnings.warn('gluon_opt: the fused optimizer kernels are unavailable, so the reference '
                      'mx.nd updates run instead (slower, same results). Set GLUON_OPT_IMPL='
                      'reference to silence this. Cause: %s' % _state['error'],
                      KernelBuildWarning, stacklevel=3)
    return False


def require():
    """Load the kernels or raise ``KernelBuildError`` saying why they are unavailable."""
    if not _ensure_loaded():
        raise KernelBuildError('gluon_opt fused kernels are not available (%s); use '
                               'use_fused=None/False or GLUON_OPT_IMPL=reference.'
                               % _state['error'])


def op(name):
    """The loaded C++ op ``name`` (e.g. ``'gopt_copy'``); loads the library first."""
    require()
    return _state['ops'][name]


def _fusable(item, gpu=False):
    """Whether the kernels take ``item``; on a GPU context only where ``gpu`` (the op has a CUDA
    driver in the loaded library)."""
    w = item.weight
    if w.stype != 'default':
        return False
    device = w.context.device_type
    if device != 'cpu' and not (gpu and device == 'gpu'):
        return False
    if item.master is not None:
        return (w.dtype == np.float16 and item.master.dtype == np.float32
                and item.grad.dtype == np.float16
                and all(s.dtype == np.float32 for s in item.state))
    return (w.dtype == np.float32 and item.grad.dtype == np.float32
            and all(s.dtype == np.float32 for s in item.state))


def _arrays(item):
    """The arrays an item's kernel call touches, in a fixed order (for identity checks)."""
    return (item.weight, item.grad, item.master) + tuple(item.state)


def _same_arrays(cached, arrays):
    """True when ``arrays`` are the very objects remembered in ``cached`` (Trainer and Updater
    pass the same ones every step; a cache holding them keeps their ids unique)."""
    return len(cached) == len(arrays) and all(a is b for a, b in zip(cached, arrays))


class _Call(object):
    """One call of a multi-tensor op over ``n`` tensors, preparable once and replayable.

    Building an op call with hundreds of NDArray arguments costs milliseconds in MXNet's ctypes
    layer (a handle array per call, a string per attribute). Trainer and Updater hand us the
    same weight, gradient and state arrays every step, so ``fused_update`` keeps its calls and
    a step only formats the per-tensor scalars and calls ``MXImperativeInvokeEx``, the C
    function MXNet's generated ``mx.nd.<op>`` wrappers end in. ``self.arrays`` keeps the
    NDArrays alive, so their handles stay valid. Every kernel runs through ``__call__``."""
    __slots__ = ('op', 'n', 'arrays', 'n_in', 'inputs', 'n_out', 'outputs', 'fixed',
                 'op_handle')

    def __init__(self, op_name, inputs, outputs, **fixed):
        import ctypes
        from mxnet.base import NDArrayHandle, c_handle_array
        self.op, self.n = op_name, len(outputs)
        self.arrays = list(inputs) + list(outputs)
        self.n_in = len(inputs)
        self.inputs = c_handle_array(inputs)
        self.n_out = len(outputs)
        self.outputs = ctypes.cast(c_handle_array(outputs), ctypes.POINTER(NDArrayHandle))
        self.fixed = dict(((k, str(v)) for k, v in fixed.items()), n=str(self.n))
        self.op_handle = _op_handle(op_name)

    def __call__(self, attrs, sc=None):
        import ctypes
        from mxnet.base import _LIB, check_call, c_str_array
        params = dict(self.fixed, **attrs)
        if sc is not None:
            params['sc'] = sc
        keys = list(params)
        num_out = ctypes.c_int(self.n_out)
        outputs = self.outputs
        out_stypes = ctypes.POINTER(ctypes.c_int)()
        check_call(_LIB.MXImperativeInvokeEx(
            self.op_handle, ctypes.c_int(self.n_in), self.inputs, ctypes.byref(num_out),
            ctypes.byref(outputs), ctypes.c_int(len(keys)), c_str_array(keys),
            c_str_array([str(params[k]) for k in keys]), ctypes.byref(out_stypes)))


def _op_handle(name):
    handles = _state.setdefault('handles', {})
    if name not in handles:
        import ctypes
        from mxnet.base import _LIB, OpHandle, c_str, check_call
        hdl = OpHandle()
        check_call(_LIB.NNGetOpHandle(c_str(name), ctypes.byref(hdl)))
        handles[name] = hdl
    return handles[name]


#: prepared plans kept per optimizer (one per context and Updater chunk in normal training)
_MAX_PLANS = 64


class _Plan(object):
    """How one ``update`` call's items split into kernel calls (cached per tuple of parameter
    indices, valid while the items carry the same array objects)."""
    __slots__ = ('arrays', 'rest', 'calls')

    def __init__(self, arrays, rest, calls):
        self.arrays, self.rest, self.calls = arrays, rest, calls


def _make_plan(spec, items, arrays):
    """Group the fusable items by ``(master weights?, number of states)`` (the op's layout is
    uniform per call) in chunks of ``MAX_TENSORS_PER_CALL``; positions of the others in
    ``rest``. Reading an NDArray's dtype or context is a C call per array, so this runs only
    when the arrays change, not every step."""
    rest, groups = [], {}
    gpu = _gpu_op(spec.op)
    for pos, item in enumerate(items):
        if not _fusable(item, gpu):
            rest.append(pos)
        else:
            groups.setdefault((item.master is not None, len(item.state)), []).append(pos)
    calls = []
    for (mp, ns), positions in groups.items():
        for start in range(0, len(positions), MAX_TENSORS_PER_CALL):
            chunk = positions[start:start + MAX_TENSORS_PER_CALL]
            inputs, outputs = [], []
            for p in chunk:
                item = items[p]
                inputs.append(item.master if mp else item.weight)
                inputs.append(item.grad)
                inputs.extend(item.state)
                outputs.append(item.weight)
            calls.append((chunk, _Call(spec.op, inputs, outputs, ns=ns, mp=int(mp))))
    return _Plan(arrays, rest, calls)


def _plan(optimizer, spec, items):
    cache = optimizer.__dict__.setdefault('_fused_plans', {})
    # with several contexts one optimizer updates each context's copies of the same indices:
    # the first weight's id tells them apart (the plan holds it, so the id stays unique)
    key = (spec.op, id(items[0].weight)) + tuple(item.index for item in items)
    arrays = [a for item in items for a in _arrays(item)]
    plan = cache.get(key)
    if plan is not None and not _same_arrays(plan.arrays, arrays):
        plan = None
    if plan is None:
        if len(cache) >= _MAX_PLANS:  # weights replaced again and again: drop the old arrays
            cache.clear()
        plan = cache[key] = _make_plan(spec, items, arrays)
    return plan


def _format_scalars(optimizer, spec, items, positions, memo):
    """The ``sc`` attribute: every tensor's scalars, comma-separated. The scalars are a function
    of the optimizer and the item's (lr, wd, t), usually shared by all tensors of a call, so each
    distinct triple is computed and formatted once."""
    parts = []
    for p in positions:
        item = items[p]
        key = (item.lr, item.wd, item.t)
        text = memo.get(key)
        if text is None:
            text = memo[key] = ','.join(map(repr, map(float, spec.scalars(optimizer, item))))
        parts.append(text)
    return ','.join(parts)


def _gpu_op(op_name):
    """True where ``op_name`` runs on GPU contexts: it has a CUDA driver, and it was built."""
    return op_name in GPU_OPS and cuda_enabled()


def fusable(optimizer, item, op_name=None):
    """True where the kernels take ``item`` (dense float32, or float16 with float32 master
    weights; on CPU, or on GPU where ``op_name`` has a CUDA kernel). Reading dtypes and
    contexts is a C call per array, so the answer is remembered per parameter index while the
    item carries the same arrays."""
    cache = optimizer.__dict__.setdefault('_fusable_items', {})
    arrays = _arrays(item)
    key = (item.index, op_name)
    hit = cache.get(key)
    if hit is not None and _same_arrays(hit[0], arrays):
        return hit[1]
    answer = _fusable(item, op_name is not None and _gpu_op(op_name))
    cache[key] = (arrays, answer)
    return answer


def has_fused_path(optimizer):
    """True where ``optimizer.fused_op`` names a kernel (``OPS``) or a composite update."""
    return optimizer.fused_op in COMPOSITE or optimizer.fused_op in OPS


def grad_attrs(optimizer):
    """The kernels' gradient preprocessing attributes: ``rescale`` and ``clip`` (-1: none)."""
    clip = optimizer.clip_gradient
    return {'rescale': repr(float(optimizer.rescale_grad)),
            'clip': repr(float(clip)) if clip is not None else '-1'}


def call(op_name, tensors, **attrs):
    """Run the multi-tensor op ``op_name`` over ``tensors``, a list of ``(inputs, output,
    scalars)`` per tensor, in calls of at most ``MAX_TENSORS_PER_CALL`` tensors; ``attrs`` are
    the op's attributes (``n`` and the per-tensor scalars ``sc`` are filled in here). For the
    composite updates (``COMPOSITE``), whose calls are not replayed."""
    for start in range(0, len(tensors), MAX_TENSORS_PER_CALL):
        chunk = tensors[start:start + MAX_TENSORS_PER_CALL]
        scalars = [x for _, _, sc in chunk for x in sc]
        _Call(op_name, [a for ins, _, _ in chunk for a in ins], [out for _, out, _ in chunk])(
            attrs, ','.join(map(repr, map(float, scalars))) if scalars else None)


def fused_update(optimizer, items):
    """Update what the kernel for ``optimizer.fused_op`` can take; return the rest."""
    if optimizer.fused_op in COMPOSITE:
        return optimizer._fused_update(items) if _ensure_loaded() else items
    spec = OPS.get(optimizer.fused_op)
    if spec is None or not spec.supports(optimizer) or not _ensure_loaded():
        return items
    plan = _plan(optimizer, spec, items)
    if not plan.calls:
        return items
    attrs = {k: str(v) for k, v in spec.attrs(optimizer).items()}
    attrs.update(grad_attrs(optimizer))
    memo = {}
    for positions, prepared in plan.calls:
        prepared(attrs, _format_scalars(optimizer, spec, items, positions, memo))
    return [items[p] for p in plan.rest]
