"""Updating many tensors with one op: which tensors an op takes, and calls prepared once.

``update(op_name, items, attrs, scalars, plans)`` runs a rule op over the update items it takes
and returns the others. The items (``UpdateItem`` in ``gluon_opt.optimizers.base``) carry the
arrays of one tensor (``weight``, ``grad``, ``state``, and the float32 ``master`` weight or
None) and its ``lr``, ``wd``, step ``t`` and parameter ``index``. The calls are grouped by
layout, prepared once (``runtime._Call``) and replayed while the same arrays come back; the
caller keeps them in ``plans``, a dict of its own.
"""
import numpy as np

from .build import cuda_enabled
from .runtime import GPU_OPS, MAX_TENSORS_PER_CALL, _Call, format_scalars, has_op

__all__ = ['update', 'fusable']

#: prepared plans kept per owner (one per context and Updater chunk in normal training)
_MAX_PLANS = 64


def _fusable(item, gpu=False):
    """Whether the kernels take ``item``: dense float32 weights with float32 states, or float16
    weights with float32 master weights and states; on a GPU context only where ``gpu`` (the op
    has a CUDA driver in the loaded library)."""
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


def _gpu_op(op_name):
    """True where ``op_name`` runs on GPU contexts: it has a CUDA driver, and it was built."""
    return op_name in GPU_OPS and cuda_enabled()


def _arrays(item):
    """The arrays an item's kernel call touches, in a fixed order (for identity checks)."""
    return (item.weight, item.grad, item.master) + tuple(item.state)


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
    indices, valid while the items carry the same array objects)."""
    __slots__ = ('arrays', 'rest', 'calls')

    def __init__(self, arrays, rest, calls):
        self.arrays, self.rest, self.calls = arrays, rest, calls


def _make_plan(op_name, items, arrays):
    """Group the fusable items by ``(master weights?, number of states)`` (the op's layout is
    uniform per call) in chunks of ``MAX_TENSORS_PER_CALL``; positions of the others in
    ``rest``. Reading an NDArray's dtype or context is a C call per array, so this runs only
    when the arrays change, not every step."""
    rest, groups = [], {}
    gpu = _gpu_op(op_name)
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
            calls.append((chunk, _Call(op_name, inputs, outputs, ns=ns, mp=int(mp))))
    return _Plan(arrays, rest, calls)


def _plan(op_name, items, cache):
    # with several contexts one optimizer updates each context's copies of the same indices:
    # the first weight's id tells them apart (the plan holds it, so the id stays unique)
    key = (op_name, id(items[0].weight)) + tuple(item.index for item in items)
    arrays = [a for item in items for a in _arrays(item)]
    plan = cache.get(key)
    if plan is not None and not _same_arrays(plan.arrays, arrays):
        plan = None
    if plan is None:
        if len(cache) >= _MAX_PLANS:  # weights replaced again and again: drop the old arrays
            cache.clear()
        plan = cache[key] = _make_plan(op_name, items, arrays)
    return plan


def _format_scalars(scalars, items, positions, memo):
    """The ``sc`` attribute: every tensor's scalars, comma-separated. The scalars are a function
    of the item's (lr, wd, t), usually shared by all tensors of a call, so each distinct triple
    is computed and formatted once."""
    parts = []
    for p in positions:
        item = items[p]
        key = (item.lr, item.wd, item.t)
        text = memo.get(key)
        if text is None:
            text = memo[key] = format_scalars(scalars(*key))
        parts.append(text)
    return ','.join(parts)


def update(op_name, items, attrs, scalars, plans):
    """Update the ``items`` the rule op ``op_name`` takes, in place; return the others (all of
    them where the library is not loaded or has no such op).

    attrs : ``{name: value}``, the op's attributes (hyperparameters and gradient preprocessing)
    scalars : ``(lr, wd, t) -> tuple of floats``, one tensor's scalars in the order of the op's
        ``kScalars``
    plans : a dict the caller keeps between calls, where the prepared calls are cached
    """
    if not has_op(op_name):
        return items
    plan = _plan(op_name, items, plans)
    if not plan.calls:
        return items
    attrs = {k: str(v) for k, v in attrs.items()}
    memo = {}
    for positions, prepared in plan.calls:
        prepared(attrs, _format_scalars(scalars, items, positions, memo))
    return [items[p] for p in plan.rest]
