"""Loading the kernel library and calling its ops.

The library (``build.py`` compiles it) registers its ops with MXNet; this module knows their
names (``RULE_OPS``, ``CPU_ONLY_OPS``), loads the library once (``available``, ``require``,
``op``), and calls an op over many tensors through MXNet's C API (``_Call``, ``call``).
"""
import os
import sys
import time
import warnings

from .build import KernelBuildError, load as _load_library

__all__ = ['RULE_OPS', 'CPU_ONLY_OPS', 'GPU_OPS', 'LOWPREC_OPS', 'MAX_TENSORS_PER_CALL', 'KernelBuildWarning',
           'available', 'require', 'loaded', 'has_op', 'op', 'call', 'grad_attrs',
           'format_scalars', 'prebuild']

#: the ops registered with ``GLUON_OPT_REGISTER_RULE`` (``common.h``): one elementwise rule,
#: with a CPU and, in a CUDA build, a CUDA driver
RULE_OPS = ('gopt_sgd', 'gopt_adam', 'gopt_adamax', 'gopt_nadam', 'gopt_radam',
            'gopt_adabelief', 'gopt_adagrad', 'gopt_rmsprop', 'gopt_adadelta', 'gopt_lion',
            'gopt_lamb', 'gopt_lars', 'gopt_schedulefree_adamw', 'gopt_muon_momentum',
            'gopt_muon_apply',
            # -- schedule_free (SGD, the wrapper's averaging) --
            'gopt_schedulefree_sgd', 'gopt_schedulefree_wrap',
            # -- ademamix, mars (issue 20) --
            'gopt_ademamix', 'gopt_ademamix_cautious', 'gopt_mars', 'gopt_mars_moments',
            'gopt_mars_1d', 'gopt_mars_1d_cautious', 'gopt_mars_apply_cautious',
            # -- ADOPT, LaProp, cautious (modern.cc, cautious.cc) --
            'gopt_adopt', 'gopt_laprop', 'gopt_laprop_cautious', 'gopt_adam_cautious',
            'gopt_lion_cautious')

#: the other ops, CPU only: Adafactor's factored passes, Lookahead's synchronisation, the
#: copy that measures the memory bandwidth, the weight averages' update (averaging.py), and
#: the learning-rate-free optimizers' whole-step reductions across tensors
CPU_ONLY_OPS = ('gopt_adafactor', 'gopt_lookahead_sync', 'gopt_copy', 'gopt_average',
                'gopt_prodigy', 'gopt_dadapt_adam', 'gopt_dog')

#: the low-precision variants of rule ops (``lowprec.h``, CPU only): the same rule over states
#: stored in bfloat16 or blockwise 8 bits; and the quantiser itself, for the tests
LOWPREC_OPS = ('gopt_adam_lp', 'gopt_lion_lp', 'gopt_sgd_lp', 'gopt_adabelief_lp',
               'gopt_rmsprop_lp', 'gopt_laprop_lp', 'gopt_ademamix_lp',
               'gopt_blockwise_quantize', 'gopt_blockwise_dequantize', 'gopt_bfloat16_round')

#: the ops with a CUDA driver in a CUDA build (``tests/gpu`` checks this set against the
#: library's registrations)
GPU_OPS = frozenset(RULE_OPS)

#: tensors per kernel call at most (MXNet's Updater hands us up to ``aggregate_num`` at once)
MAX_TENSORS_PER_CALL = 256


class KernelBuildWarning(RuntimeWarning):
    """The fused kernels could not be built or loaded; the reference updates run instead."""


_state = {'error': None, 'warned': False, 'ops': None, 'handles': {}}


def loaded():
    """Load (building if needed) once; remember the failure so it is reported only once.
    True when the library is loaded."""
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
    _state['ops'] = {name: getattr(mx.nd, name)
                     for name in RULE_OPS + CPU_ONLY_OPS + LOWPREC_OPS}
    return True


def available():
    """True when the fused kernels are loaded. The first call builds them if the cache lacks
    them; on failure it warns once (``KernelBuildWarning``) and returns False."""
    if loaded():
        return True
    if not _state['warned']:
        _state['warned'] = True
        warnings.warn('gluon_opt: the fused optimizer kernels are unavailable, so the reference '
                      'mx.nd updates run instead (slower, same results). Set GLUON_OPT_IMPL='
                      'reference to silence this. Cause: %s' % _state['error'],
                      KernelBuildWarning, stacklevel=3)
    return False


def prebuild(stream=None):
    """Build the library (where the cache lacks it) and load it now, before any timed work,
    saying so in one line on ``stream`` (default stderr): what is built, about how long it
    takes and where it is cached. Returns ``available()``; does nothing (False) under
    ``GLUON_OPT_IMPL=reference``. ``python -m gluon_opt.kernels.build`` does the same ahead of
    time."""
    if os.environ.get('GLUON_OPT_IMPL', '').strip().lower() == 'reference':
        return False
    if _state['ops'] is not None or _state['error'] is not None:
        return _state['ops'] is not None
    stream = stream or sys.stderr
    from . import build
    try:
        path = build.library_path(build.cuda_compiler())
    except Exception:  # noqa: BLE001 (available() reports the cause)
        path = None
    start = time.time()
    if path is not None and not os.path.exists(path):
        stream.write('gluon-opt: building the fused optimizer kernels (once, about 20-60 s on '
                     '2 cores), cached in %s\n' % os.path.dirname(os.path.dirname(path)))
        stream.flush()
        ok = available()
        stream.write('gluon-opt: kernels %s in %.0f s\n' % (
            'built' if ok else 'unavailable (the reference updates run)', time.time() - start))
        return ok
    return available()


def require():
    """Load the kernels or raise ``KernelBuildError`` saying why they are unavailable."""
    if not loaded():
        raise KernelBuildError('gluon_opt fused kernels are not available (%s); use '
                               'use_fused=None/False or GLUON_OPT_IMPL=reference.'
                               % _state['error'])


def has_op(name):
    """True where the library is loaded and registers the op ``name``."""
    return loaded() and name in _state['ops']


def op(name):
    """The loaded C++ op ``name`` (e.g. ``'gopt_copy'``); loads the library first."""
    require()
    return _state['ops'][name]


class _Call(object):
    """One call of a multi-tensor op over ``n`` tensors, preparable once and replayable.

    Building an op call with hundreds of NDArray arguments costs milliseconds in MXNet's ctypes
    layer (a handle array per call, a string per attribute). Trainer and Updater hand us the
    same weight, gradient and state arrays every step, so the prepared plans (``plans.py``) keep
    their calls and a step only formats the per-tensor scalars and calls
    ``MXImperativeInvokeEx``, the C function MXNet's generated ``mx.nd.<op>`` wrappers end in.
    ``self.arrays`` keeps the NDArrays alive, so their handles stay valid. Every kernel runs
    through ``__call__``."""
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
    handles = _state['handles']
    if name not in handles:
        import ctypes
        from mxnet.base import _LIB, OpHandle, c_str, check_call
        hdl = OpHandle()
        check_call(_LIB.NNGetOpHandle(c_str(name), ctypes.byref(hdl)))
        handles[name] = hdl
    return handles[name]


def format_scalars(scalars):
    """The ``sc`` attribute: floats, comma-separated, each exactly (``repr``)."""
    return ','.join(map(repr, map(float, scalars)))


def grad_attrs(rescale_grad, clip_gradient):
    """The kernels' gradient preprocessing attributes: ``rescale`` and ``clip`` (-1: none)."""
    return {'rescale': repr(float(rescale_grad)),
            'clip': repr(float(clip_gradient)) if clip_gradient is not None else '-1'}


def call(op_name, tensors, **attrs):
    """Run the multi-tensor op ``op_name`` over ``tensors``, a list of ``(inputs, output,
    scalars)`` per tensor, in calls of at most ``MAX_TENSORS_PER_CALL`` tensors; ``attrs`` are
    the op's attributes (``n`` and the per-tensor scalars ``sc`` are filled in here). For the
    composite updates (Muon, Lookahead), whose calls are not replayed."""
    for start in range(0, len(tensors), MAX_TENSORS_PER_CALL):
        chunk = tensors[start:start + MAX_TENSORS_PER_CALL]
        scalars = [x for _, _, sc in chunk for x in sc]
        _Call(op_name, [a for ins, _, _ in chunk for a in ins], [out for _, out, _ in chunk])(
            attrs, format_scalars(scalars) if scalars else None)
