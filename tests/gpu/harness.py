"""The kernel library with its CUDA driver, built and called without MXNet (on a GPU, or with
CUDA emulated on the CPU).

MXNet's last GPU wheels cannot run on the GPUs this project is tested on (no code for Hopper),
so the CUDA driver of the rule ops is tested through ``harness.cc``: a stand-in for MXNet's side
of the external-operator API, built into the library by the same ``build.build_library`` that
``gluon_opt`` uses (nvcc, the same flags), and called here through ctypes on NumPy arrays
(``"cpu"``) or CuPy arrays (``"gpu"``). Needs nvcc, CuPy, a CUDA GPU, and MXNet's
``include/mxnet/lib_api.h`` and ``src/lib_api.cc`` (from an installed MXNet, or the folder named
by ``GLUON_OPT_MXNET_DIR``).
"""
import ctypes
import importlib.util
import json
import os

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
BUILD_PY = os.path.join(ROOT, 'gluon_opt', 'kernels', 'build.py')
HARNESS_CC = os.path.join(HERE, 'harness.cc')
EMULATE_DIR = os.path.join(HERE, 'emulate')
CASES = os.path.join(HERE, 'cases.json')
MXNET_DIR_ENV = 'GLUON_OPT_MXNET_DIR'
#: MXNet's dtype codes (lib_api.h's MXDType)
DTYPES = {'float32': 0, 'float64': 1, 'float16': 2}


def build_module():
    """gluon_opt/kernels/build.py, loaded alone (importing gluon_opt would import MXNet)."""
    spec = importlib.util.spec_from_file_location('gluon_opt_kernel_build', BUILD_PY)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def mxnet_dir():
    """A folder with MXNet's include/mxnet/lib_api.h and src/lib_api.cc, or None."""
    candidates = [os.environ.get(MXNET_DIR_ENV)]
    try:
        spec = importlib.util.find_spec('mxnet')
        if spec is not None and spec.origin:
            candidates.append(os.path.dirname(spec.origin))
    except (ImportError, ValueError):
        pass
    for path in candidates:
        if path and os.path.exists(os.path.join(path, 'include', 'mxnet', 'lib_api.h')) and \
                os.path.exists(os.path.join(path, 'src', 'lib_api.cc')):
            return path
    return None


def load_cases():
    with open(CASES) as f:
        return json.load(f)


def _pointer(a):
    return a.ctypes.data if isinstance(a, np.ndarray) else a.data.ptr


class Harness(object):
    """The library built in ``workdir`` with nvcc (or, ``emulate``, with the C++ compiler and
    ``emulate/``'s CPU stand-in for the CUDA runtime); ``prepare``/``sync`` run its ops."""

    def __init__(self, workdir, emulate=False):
        build = build_module()
        nvcc, cxx, mxdir = build._find_nvcc(), build._compiler(), mxnet_dir()
        if emulate:
            # 8 threads per block: the emulated GPU's threads are the CPU's; -O1: a quicker build
            nvcc, flags = None, ('-D__CUDACC__', '-DGOPT_CUDA_THREADS=8', '-O1', '-std=c++20',
                                 '-pthread', '-I', EMULATE_DIR)
        else:
            flags = ()
        if (nvcc is None and not emulate) or cxx is None or mxdir is None:
            raise RuntimeError('needs nvcc (%s), a C++ compiler (%s) and lib_api (%s)'
                               % (nvcc, cxx, mxdir))
        self.path = os.path.join(workdir, 'libgopt_harness.so')
        build.build_library(cxx, nvcc, os.path.join(mxdir, 'include'),
                            os.path.join(mxdir, 'src', 'lib_api.cc'), workdir, self.path,
                            extra_sources=(HARNESS_CC,), extra_flags=flags)
        lib = self.lib = ctypes.CDLL(self.path)
        lib.gopt_harness_has_forward.argtypes = [ctypes.c_char_p, ctypes.c_char_p]
        lib.gopt_harness_error.restype = ctypes.c_char_p
        P, I = ctypes.c_void_p, ctypes.c_int
        lib.gopt_harness_call.argtypes = [ctypes.c_char_p, ctypes.c_char_p, I, P, P, I, P, P, P,
                                          P, I, P, P, P, P, P]

    def has_forward(self, op, ctx):
        return self.lib.gopt_harness_has_forward(op.encode(), ctx.encode())

    def prepare(self, op, attrs, inputs, outputs, ctx):
        """A function that runs ``op`` once over these arrays (NumPy for ``"cpu"``, CuPy for
        ``"gpu"``; the ctypes arguments are built once, as gluon_opt's prepared calls)."""
        keys = list(attrs)
        args = [op.encode(), ctx.encode(), len(keys),
                (ctypes.c_char_p * len(keys))(*[k.encode() for k in keys]),
                (ctypes.c_char_p * len(keys))(*[str(attrs[k]).encode() for k in keys])]
        keep = []
        for arrays in (inputs, outputs):
            shapes = np.array([d for a in arrays for d in a.shape], dtype=np.int64)
            dims = np.array([a.ndim for a in arrays], dtype=np.int32)
            data = (ctypes.c_void_p * len(arrays))(*[_pointer(a) for a in arrays])
            types = np.array([DTYPES[np.dtype(a.dtype).name] for a in arrays], dtype=np.int32)
            keep.extend([shapes, dims, data, types])
            args += [len(arrays), data, types.ctypes.data, shapes.ctypes.data, dims.ctypes.data]
        args.append(None)  # the default stream
        lib = self.lib

        def run():
            if lib.gopt_harness_call(*args) != 0:
                raise RuntimeError(lib.gopt_harness_error().decode())
        run.keep = (keep, args, inputs, outputs)
        return run

    def sync(self):
        err = self.lib.gopt_harness_sync()
        if err:
            raise RuntimeError('CUDA error %d' % err)


def host_arrays(call, seed):
    """Inputs and outputs for a captured call: weights and gradients N(0, 1), states uniform
    on [0.1, 1) (second moments must be positive), outputs aliasing the inputs they alias in
    gluon_opt (the weight, updated in place), or else the float16 copy of the master weight."""
    rng = np.random.RandomState(seed)
    n = int(call['attrs'].get('n', 1))
    per = len(call['inputs']) // n
    inputs = []
    for j, (shape, dtype) in enumerate(call['inputs']):
        if j % per < 2:
            a = rng.randn(*shape)
        else:
            a = rng.uniform(0.1, 1.0, size=shape)
        inputs.append(np.ascontiguousarray(a, dtype=dtype))
    outputs = []
    for k, ((shape, dtype), alias) in enumerate(zip(call['outputs'], call['alias'])):
        if alias >= 0:
            outputs.append(inputs[alias])
        else:
            outputs.append(inputs[k * per].astype(dtype))
    return inputs, outputs


def to_device(inputs, outputs, copy=None):
    """Device copies (CuPy's, or ``copy``'s: NumPy copies for the emulated device), aliases
    kept."""
    if copy is None:
        import cupy as cp
        copy = cp.asarray
    dev_in = [copy(a) for a in inputs]
    dev_out = []
    for a in outputs:
        same = [i for i, b in enumerate(inputs) if b is a]
        dev_out.append(dev_in[same[0]] if same else copy(a))
    return dev_in, dev_out
