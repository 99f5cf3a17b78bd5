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

Taken by the kernels: dense float32 weights with float32 states, and float16 weights with
float32 master weights and states (``multi_precision``), on CPU. Anything else (float16 without
master weights, other contexts) falls back to the reference per item.
"""
import math
import os
import warnings

import numpy as np

from .build import KernelBuildError, load as _load_library

__all__ = ['available', 'require', 'fused_update', 'FusedOp', 'OPS', 'KernelBuildError',
           'KernelBuildWarning', 'MAX_TENSORS_PER_CALL']

#: tensors per kernel call at most (MXNet's Updater hands us up to ``aggregate_num`` at once)
MAX_TENSORS_PER_CALL = 256


class KernelBuildWarning(RuntimeWarning):
    """The fused kernels could not be built or loaded; the reference updates run instead."""


class FusedOp(object):
    """How one ``fused_op`` name maps onto a C++ op.

    op : name of the registered C++ op (``mx.nd.<op>`` once the library is loaded)
    attrs : ``optimizer -> dict`` of the hyperparameters the kernel reads
    scalars : ``(optimizer, item) -> tuple of floats``, the per-tensor scalars in the order the
        kernel's ``kScalars`` expects
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
    _state['ops']['gopt_copy'] = mx.nd.gopt_copy
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


def _fusable(item):
    w = item.weight
    if w.stype != 'default' or w.context.device_type != 'cpu':
        return False
    if item.master is not None:
        return (w.dtype == np.float16 and item.master.dtype == np.float32
                and item.grad.dtype == np.float16
                and all(s.dtype == np.float32 for s in item.state))
    return (w.dtype == np.float32 and item.grad.dtype == np.float32
            and all(s.dtype == np.float32 for s in item.state))


def _group_key(optimizer, item):
    """``(master weights?, number of states)`` of a fusable item, else None. Reading an
    NDArray's dtype or context is a C call, a few microseconds each; for 500 small tensors
    that is most of a step, so the answer is remembered per parameter index and reused while
    the weight, gradient, master and states are the same array objects (``gluon.Trainer`` and
    MXNet's ``Updater`` pass the same ones every step; holding them keeps their ids unique)."""
    cache = optimizer.__dict__.setdefault('_fused_keys', {})
    ident = (item.weight, item.grad, item.master) + tuple(item.state)
    hit = cache.get(item.index)
    if hit is not None and len(hit[0]) == len(ident) and all(
            a is b for a, b in zip(hit[0], ident)):
        return hit[1]
    key = (item.master is not None, len(item.state)) if _fusable(item) else None
    cache[item.index] = (ident, key)
    return key


def fused_update(optimizer, items):
    """Update what the kernel for ``optimizer.fused_op`` can take; return the rest."""
    spec = OPS.get(optimizer.fused_op)
    if spec is None or not spec.supports(optimizer) or not _ensure_loaded():
        return items
    rest, groups = [], {}
    for item in items:
        key = _group_key(optimizer, item)
        if key is None:
            rest.append(item)
        else:  # one call per (master weights?, number of states): the op's layout is uniform
            groups.setdefault(key, []).append(item)
    if not groups:
        return items
    fn = _state['ops'][spec.op]
    attrs = spec.attrs(optimizer)
    clip = optimizer.clip_gradient
    attrs['rescale'] = repr(float(optimizer.rescale_grad))
    attrs['clip'] = repr(float(clip)) if clip is not None else '-1'
    for (mp, ns), group in groups.items():
        for start in range(0, len(group), MAX_TENSORS_PER_CALL):
            chunk = group[start:start + MAX_TENSORS_PER_CALL]
            inputs, outputs, scalars = [], [], []
            for item in chunk:
                inputs.append(item.master if mp else item.weight)
                inputs.append(item.grad)
                inputs.extend(item.state)
                outputs.append(item.weight)
                scalars.extend(spec.scalars(optimizer, item))
            fn(*inputs, out=outputs, n=len(chunk), ns=ns, mp=int(mp),
               sc=','.join(map(repr, map(float, scalars))), **attrs)
    return rest
