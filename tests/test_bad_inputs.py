"""Every registered optimizer refuses every invalid input clearly (issue 15).

"Clearly" means a ``ValueError`` or ``TypeError`` whose message names the optimizer class, the
parameter and the value, raised at construction or at the first step, before the weight is
touched: no crash (integer weights used to kill the process with SIGFPE), no silent acceptance
(``nesterov='False'`` used to mean True, a (1, n) gradient used to be broadcast over an (m, n)
weight). The invalid inputs come from ``optimizer_table.error_inputs``: the ones every
optimizer shares and each optimizer's own. Update inputs run through MXNet's ``Updater``
on the reference and the fused path, and integer weights also through ``gluon.Trainer`` (and
``gluon_opt.Trainer`` with a closure for the closure-based optimizers).

``python tests/test_bad_inputs.py`` prints how many inputs each optimizer family refuses
clearly, per input class.
"""
import collections
import os
import sys
import warnings

import numpy as np
import pytest
import mxnet as mx
from mxnet import nd, gluon, autograd

import gluon_opt
from gluon_opt import kernels

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from optimizer_table import (one_per_optimizer, error_inputs, ERROR_INPUTS, NAME_ONLY,  # noqa: E402
                             WEIGHT_SHAPE)

ENTRIES = {e.name: e for e in one_per_optimizer()}
NAMES = sorted(gluon_opt.REGISTRY)


def _arrays(spec):
    """The weight and gradient an ``Arrays`` row describes. The weight holds zeros (integer
    division by a zero state is what raised SIGFPE)."""
    weight = nd.array(np.arange(12).reshape(WEIGHT_SHAPE) % 3 - 1, dtype=spec.weight_dtype)
    grad = nd.ones(spec.grad_shape, ctx=spec.grad_ctx or mx.cpu(), dtype=spec.grad_dtype)
    if spec.grad_stype != 'default':
        grad = grad.tostype(spec.grad_stype)
    return weight, grad


def _closure_trainer(optimizer, optimizer_params=None, dtype='float32'):
    """A ``gluon_opt.Trainer`` over one parameter ``w`` and a quadratic closure."""
    param = gluon.Parameter('w', shape=(3,), dtype=dtype, init=mx.init.Zero())
    param.initialize(ctx=mx.cpu())
    trainer = gluon_opt.Trainer([param], optimizer, optimizer_params)

    def closure():
        with autograd.record():
            loss = nd.sum(nd.square(param.data() - 1))
        loss.backward()
        return loss
    return trainer, closure, param


def _first_step(name, opt):
    """One valid update with ``opt``: an input that construction let through may still be
    refused at the first step."""
    if ENTRIES[name].closure:
        trainer, closure, _ = _closure_trainer(opt)
        trainer.step(1, closure)
    else:
        weight = nd.ones(WEIGHT_SHAPE)
        mx.optimizer.get_updater(opt)(0, nd.ones(WEIGHT_SHAPE) * 0.5, weight)
        weight.wait_to_read()


def cases(name):
    """``(bad input, use_fused)`` for every invalid input of optimizer ``name``: update inputs
    on the reference path (False) and, where the kernels load, the fused one (True);
    constructor inputs, and everything for the closure-based optimizers, once (None)."""
    paths = [False] + ([True] if kernels.available() else [])
    if ENTRIES[name].closure:
        paths = [None]
    out = []
    for bad in error_inputs(name, ENTRIES[name].closure):
        out.extend((bad, fused) for fused in (paths if bad.arrays is not None else [None]))
    return out


def attempt(name, bad, use_fused=None):
    """What the optimizer does with ``bad``: 'clear' where it refuses it as this module's
    docstring asks, else what went wrong."""
    cls = gluon_opt.REGISTRY[name]
    kwargs = dict(ENTRIES[name].kwargs, **bad.kwargs)
    if use_fused is not None:
        kwargs['use_fused'] = use_fused
    weight = before = None
    try:
        with warnings.catch_warnings():
            warnings.simplefilter('ignore')  # float16 without master weights, on purpose
            opt = mx.optimizer.create('gluon_opt.' + name, **kwargs)
            if bad.arrays is None:
                _first_step(name, opt)
            elif ENTRIES[name].closure:  # a weight dtype, through gluon_opt.Trainer
                trainer, _, param = _closure_trainer(opt, dtype=bad.arrays.weight_dtype)
                weight = param.data()
                before = weight.asnumpy()
                trainer.step(1, lambda: 0.0)
            else:
                weight, grad = _arrays(bad.arrays)
                before = weight.asnumpy()
                mx.optimizer.get_updater(opt)(0, grad, weight)
                weight.wait_to_read()
    except (ValueError, TypeError) as exc:
        message = str(exc)
        wanted = [cls.__name__, bad.param] + ([] if bad.value is NAME_ONLY
                                              else [repr(bad.value)])
        missing = [w for w in wanted if w not in message]
        if missing:
            return 'unclear (does not name %s): %s: %s' % (', '.join(missing),
                                                          type(exc).__name__, message)
        if weight is not None and not np.array_equal(weight.asnumpy(), before):
            return 'refused after changing the weight: %s' % message
        return 'clear'
    except Exception as exc:  # noqa: BLE001 (any other error is a finding)
        return 'wrong error: %s: %s' % (type(exc).__name__, str(exc).splitlines()[0][:200])
    return 'accepted'


def describe(name, bad, use_fused):
    args = (', '.join('%s=%r' % kv for kv in sorted(bad.kwargs.items()))
            or 'valid hyperparameters')
    if bad.arrays is not None:
        args += '; %s; %s' % (bad.arrays, {None: 'gluon_opt.Trainer', False: 'reference',
                                           True: 'fused'}[use_fused])
    return '%s(%s)' % (name, args)


def test_every_registered_optimizer_has_its_own_error_inputs():
    assert set(ERROR_INPUTS) == set(gluon_opt.REGISTRY)
    for name in NAMES:
        assert ERROR_INPUTS[name], name


@pytest.mark.parametrize('name', NAMES)
def test_every_invalid_input_is_refused_clearly(name):
    failures = []
    for bad, fused in cases(name):
        result = attempt(name, bad, fused)
        if result != 'clear':
            failures.append('%s -> %s' % (describe(name, bad, fused), result))
    assert not failures, '\n'.join(failures)


@pytest.mark.parametrize('name', NAMES)
def test_integer_weights_are_refused_through_the_trainer(name):
    cls = gluon_opt.REGISTRY[name]
    kwargs = dict(ENTRIES[name].kwargs)
    pattern = r"%s: weight\.dtype='int32' is invalid.*parameter 'w'" % cls.__name__
    if ENTRIES[name].closure:
        trainer, _, param = _closure_trainer('gluon_opt.' + name, kwargs, dtype='int32')
        with pytest.raises(ValueError, match=pattern):
            trainer.step(1, lambda: 0.0)
    else:
        param = gluon.Parameter('w', shape=(3,), dtype='int32', init=mx.init.Zero())
        param.initialize(ctx=mx.cpu())
        trainer = gluon.Trainer([param], 'gluon_opt.' + name, kwargs)
        param.list_data()[0]._fresh_grad = True  # as if backward had run
        with pytest.raises(ValueError, match=pattern):
            trainer.step(1)
    np.testing.assert_array_equal(param.data().asnumpy(), 0)


@pytest.mark.parametrize('name', [n for n in NAMES if not ENTRIES[n].closure])
def test_valid_edge_inputs_are_accepted(name):
    """What the checks must still let through: MXNet's "no clipping" (a negative bound),
    numpy booleans and 0/1 for options, gluoncv's schedulers, float16 weights with float16
    gradients and float32 master weights, a gradient on another CPU context (host memory all
    the same: MXNet's KVStore hands the updater such pairs)."""
    from gluon_opt._compat import import_gluoncv
    gcv = import_gluoncv()
    kwargs = dict(ENTRIES[name].kwargs)
    lr = kwargs.pop('learning_rate', 0.01)
    opt = mx.optimizer.create('gluon_opt.' + name, clip_gradient=-1, multi_precision=np.True_,
                              use_fused=1, learning_rate=lr, **kwargs)
    assert opt.clip_gradient is None and opt.multi_precision is True and opt.use_fused is True
    weight = nd.ones(WEIGHT_SHAPE, dtype='float16')
    mx.optimizer.get_updater(opt)(0, nd.ones(WEIGHT_SHAPE, dtype='float16') * 0.5, weight)
    assert not np.array_equal(weight.asnumpy(), 1)
    weight = nd.ones(WEIGHT_SHAPE, ctx=mx.Context('cpu_pinned', 0))
    mx.optimizer.get_updater(opt)(1, nd.ones(WEIGHT_SHAPE, ctx=mx.cpu(1)) * 0.5, weight)
    assert not np.array_equal(weight.asnumpy(), 1)
    sched = gcv.utils.LRSequential([
        gcv.utils.LRScheduler('linear', base_lr=0, target_lr=lr, niters=2),
        gcv.utils.LRScheduler('cosine', base_lr=lr, target_lr=0, niters=4)])
    opt = mx.optimizer.create('gluon_opt.' + name, lr_scheduler=sched, **kwargs)
    _first_step(name, opt)


def tally(names=NAMES, run=attempt):
    """``{(input class, family): [tried, refused clearly]}`` and the inputs not refused
    clearly."""
    counts = collections.defaultdict(lambda: [0, 0])
    failures = []
    for name in names:
        family = gluon_opt.REGISTRY[name].family
        for bad, fused in cases(name):
            result = run(name, bad, fused)
            cell = counts[(bad.kind, family)]
            cell[0] += 1
            cell[1] += result == 'clear'
            if result != 'clear':
                failures.append('%s -> %s' % (describe(name, bad, fused), result))
    return counts, failures


def format_tally(counts):
    """The counts as a text table: input classes down, optimizer families across, each cell
    'refused clearly/tried'."""
    kinds = sorted({k for k, _ in counts})
    families = sorted({f for _, f in counts})
    rows = [['input class'] + families + ['all']]
    for kind in kinds + ['all']:
        row = [kind]
        for family in families + ['all']:
            cells = [v for (k, f), v in counts.items()
                     if kind in ('all', k) and family in ('all', f)]
            tried, clear = sum(c[0] for c in cells), sum(c[1] for c in cells)
            row.append('%d/%d' % (clear, tried) if tried else '-')
        rows.append(row)
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return '\n'.join('  '.join(c.rjust(w) if i else c.ljust(w)
                               for i, (c, w) in enumerate(zip(r, widths))) for r in rows)


if __name__ == '__main__':
    table, not_clear = tally()
    print(format_tally(table))
    print('\n'.join(not_clear))
