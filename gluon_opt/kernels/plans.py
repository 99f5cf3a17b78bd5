"""Updating many tensors with one op: which tensors an op takes, and calls prepared once.

``update(op_name, items, attrs, scalars, plans, lowprec)`` runs a rule op over the update items
it takes and returns the others. The items (``UpdateItem`` in ``gluon_opt.optimizers.base``) carry the
arrays of one tensor (``weight``, ``grad``, ``state``, and the float32 ``master`` weight or
None) and its ``lr``, ``wd``, step ``t`` and parameter ``index``. The calls are grouped by
layout, prepared once (``runtime._Call``) and replayed while the same arrays come back; the
caller keeps them in ``plans``, a dict of its own.

States stored in low precision (``gluon_opt.optimizers.lowprec``: a bfloat16 NDArray, or a
``(codes, scales)`` pair for 8-bit blockwise states) go to the rule's low-precision variant
(``lowprec.h``), whose layout attribute ``fmt`` says how each state is stored.
"""
import zlib

import numpy as np

from .build import cuda_enabled
from .runtime import GPU_OPS, MAX_TENSORS_PER_CALL, _Call, format_scalars, has_op

__all__ = ['update', 'fusable', 'state_kind', 'rounding_key']

#: prepared plans kept per owner (one per context and Updater chunk in normal training)
_MAX_PLANS = 64


def state_kind(state):
    """How one state entry is stored: ``'f'`` (a float32 NDArray), ``'b'`` (bfloat16: a uint8
    NDArray of the weight's shape plus a last axis of 2, the two bytes of each element's
    bfloat16 bits: MXNet 1.9.1 has a bfloat16 dtype, but its external-operator interface
    refuses it, and no 16-bit integer dtype), ``'q'`` (a ``(uint8 codes, float32 scales)``
    pair of NDArrays: 8-bit blockwise), or None (anything else)."""
    if isinstance(state, tuple):
        if (len(state) == 2 and all(hasattr(a, 'dtype') for a in state)
                and state[0].dtype == np.uint8 and state[1].dtype == np.float32):
            return 'q'
        return None
    dtype = getattr(state, 'dtype', None)
    if dtype == np.float32:
        return 'f'
    if dtype == np.uint8 and len(state.shape) >= 2 and state.shape[-1] == 2:
        return 'b'
    return None


def _kinds(item):
    return ''.join(state_kind(s) or '?' for s in item.state)


def _fusable(item, gpu=False, lowprec=False):
    """Whether the kernels take ``item``: dense float32 weights with float32 states, or float16
    weights with float32 master weights and states; on a GPU context only where ``gpu`` (the op
    has a CUDA driver in the loaded library). ``lowprec``: the low-precision variant's test
    instead, CPU only and at least one state in bfloat16 or 8 bits."""
    w = item.weight
    if w.stype != 'default':
        return False
    device = w.context.device_type
    if device != 'cpu' and not (gpu and device == 'gpu' and not lowprec):
        return False
    kinds = _kinds(item)
    if lowprec:
        if '?' in kinds or not kinds.strip('f'):
            return False
    elif kinds.strip('f'):
        return False
    if item.master is not None:
        return (w.dtype == np.float16 and item.master.dtype == np.float32
                and item.grad.dtype == np.float16)
    return w.dtype == np.float32 and item.grad.dtype == np.float32


def _gpu_op(op_name):
    """True where ``op_name`` runs on GPU contexts: it has a CUDA driver, and it was built."""
    return op_name in GPU_OPS and cuda_enabled()


def _flat(states):
    out = []
    for s in states:
        out.extend(s if isinstance(s, tuple) else (s,))
    return out


def _arrays(item):
    """The arrays an item's kernel call touches, in a fixed order (for identity checks)."""
    return (item.weight, item.grad, item.master) + tuple(_flat(item.state))


def rounding_key(index):
    """A parameter index as the 32-bit key of its states' stochastic rounding."""
    if isinstance(index, (int, np.integer)) and not isinstance(index, bool):
        return int(index) & 0xffffffff
    return zlib.crc32(str(index).encode('utf-8'))


def _same_arrays(cached, arrays):
    """True when ``arrays`` are the very objects remembered in ``cached`` (Trainer and Updater
    pass the same ones every step; a cache holding them keeps their ids unique)."""
    return len(cached) == len(arrays) and all(a is b for a, b in zip(cached, arrays))


def fusable(item, op_name, cache):
    """True where the kernel ``op_name`` takes ``item`` (dense float32, or float16 with float32
    master weights; on CPU, or on GPU where ``op_name`` has a CUDA kernel). Reading dtypes and
    contexts is a C call per array, so the answer is remembered in ``cache`` (a dict the caller
    keeps) per parameter index while the item carries the same arrays."""
    arrays = _arrays(item)
    key = (item.index, op_name)
    hit = cache.get(key)
    if hit is not None and _same_arrays(hit[0], arrays):
        return hit[1]
    answer = _fusable(item, _gpu_op(op_name))
    cache[key] = (arrays, answer)
    return answer


class _Plan(object):
    """How one ``update`` call's items split into kernel calls (cached per tuple of parameter
    indices, valid while the items carry the same array objects); each call is ``(positions,
    prepared call, low precision?)``."""
    __slots__ = ('arrays', 'rest', 'calls')

    def __init__(self, arrays, rest, calls):
        self.arrays, self.rest, self.calls = arrays, rest, calls


def _make_plan(op_name, items, arrays, low_op=None):
    """Group the fusable items by ``(master weights?, how each state is stored)`` (the op's
    layout is uniform per call) in chunks of ``MAX_TENSORS_PER_CALL``; positions of the others
    in ``rest``. Items with states in low precision go to ``low_op`` where it is given. Reading
    an NDArray's dtype or context is a C call per array, so this runs only when the arrays
    change, not every step."""
    rest, groups = [], {}
    gpu = _gpu_op(op_name)
    for pos, item in enumerate(items):
        if _fusable(item, gpu):
            groups.setdefault((item.master is not None, _kinds(item)), []).append(pos)
        elif low_op is not None and _fusable(item, lowprec=True):
            groups.setdefault((item.master is not None, _kinds(item)), []).append(pos)
        else:
            rest.append(pos)
    calls = []
    for (mp, kinds), positions in groups.items():
        low = bool(kinds.strip('f'))
        for start in range(0, len(positions), MAX_TENSORS_PER_CALL):
            chunk = positions[start:start + MAX_TENSORS_PER_CALL]
            inputs, outputs = [], []
            for p in chunk:
                item = items[p]
                inputs.append(item.master if mp else item.weight)
                inputs.append(item.grad)
                inputs.extend(_flat(item.state))
                outputs.append(item.weight)
            fixed = dict(ns=len(kinds), mp=int(mp))
            if low:
                fixed.update(fmt=kinds, keys=','.join(str(rounding_key(items[p].index)) for p in chunk))
            calls.append((chunk, _Call(low_op if low else op_name, inputs, outputs, **fixed),
                          low))
    return _Plan(arrays, rest, calls)


def _plan(op_name, items, cache, low_op=None):
    # with several contexts one optimizer updates each context's copies of the same indices:
    # the first weight's id tells them apart (the plan holds it, so the id stays unique)
    key = (op_name, low_op, id(items[0].weight)) + tuple(item.index for item in items)
    arrays = [a for item in items for a in _arrays(item)]
    plan = cache.get(key)
    if plan is not None and not _same_arrays(plan.arrays, arrays):
        plan = None
    if plan is None:
        if len(cache) >= _MAX_PLANS:  # weights replaced again and again: drop the old arrays
            cache.clear()
        plan = cache[key] = _make_plan(op_name, items, arrays, low_op)
    return plan


def _format_scalars(scalars, items, positions, memo, with_step=False):
    """The ``sc`` attribute: every tensor's scalars, comma-separated (``with_step``: followed
    by the tensor's step, which the low-precision variants read). The scalars are a function
    of the item's (lr, wd, t), usually shared by all tensors of a call, so each distinct triple
    is computed and formatted once."""
    parts = []
    for p in positions:
        item = items[p]
        key = (item.lr, item.wd, item.t, with_step)
        text = memo.get(key)
        if text is None:
            values = tuple(scalars(*key[:3])) + ((item.t,) if with_step else ())
            text = memo[key] = format_scalars(values)
        parts.append(text)
    return ','.join(parts)


def update(op_name, items, attrs, scalars, plans, lowprec=None):
    """Update the ``items`` the rule op ``op_name`` takes, in place; return the others (all of
    them where the library is not loaded or has no such op).

    attrs : ``{name: value}``, the op's attributes (hyperparameters and gradient preprocessing)
    scalars : ``(lr, wd, t) -> tuple of floats``, one tensor's scalars in the order of the op's
        ``kScalars``
    plans : a dict the caller keeps between calls, where the prepared calls are cached
    lowprec : None, or ``(op name, attributes)`` of the low-precision variant that takes the
        items whose states are stored in bfloat16 or 8 bits (its own attributes: ``signs``,
        ``block``, ``stochastic``, ``seed``), where the library has it
    """
    if not has_op(op_name):
        return items
    low_op, low_attrs = lowprec if lowprec is not None else (None, {})
    if low_op is not None and not has_op(low_op):
        low_op = None
    plan = _plan(op_name, items, plans, low_op)
    if not plan.calls:
        return items
    texts = {False: {k: str(v) for k, v in attrs.items()}}
    texts[True] = dict(texts[False], **{k: str(v) for k, v in low_attrs.items()})
    memo = {}
    for positions, prepared, low in plan.calls:
        prepared(texts[low], _format_scalars(scalars, items, positions, memo, low))
    return [items[p] for p in plan.rest]
