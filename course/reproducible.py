"""The numeric environment the course's recorded outputs are made and checked in.

The notebooks print numbers that nbval compares with the recorded ones, and some cells amplify
the last bits of float arithmetic (a learning rate past the edge of stability, Newton's method
near machine precision, a grid search between two nearly equal runs). Those bits depend on
which vector instructions the libraries pick at run time: on a CPU with AVX-512, numpy's ufuncs
(e.g. ``np.cos``) and oneDNN's matrix products (MXNet's ``Dense``) use other code paths, with
other roundings or summation orders, than on a CPU with AVX2 only, and our kernel library is
compiled with ``-march=native``. Outputs recorded on one kind of x86-64 CPU then failed nbval on
the other (13 cells in 7 notebooks).

``pin(environ)`` caps every one of those libraries at AVX2, which every x86-64 CPU since 2013
has, so the notebooks compute the same bits on any of them: numpy's AVX-512 dispatch off, oneDNN
at most AVX2, OpenBLAS's Haswell kernels, our kernels compiled without AVX-512 (into their own
cache directory: the flags are part of the library's hash). ``course/build.py`` (recording)
calls it before the notebooks' kernels start; ``course/conftest.py`` (nbval) wraps each
kernel's start in ``pinned()``, so that the rest of the test run (``tests/``, which must
exercise the kernels as the machine compiles them) keeps its environment. On a CPU without AVX2
it changes nothing, and the recorded numbers may differ in their last digits there. A learner
running a notebook by hand gets the machine's own numbers: the same lessons, but in the cells
at the edge of stability other details (see ``course/README.md``).
"""
import contextlib
import os

#: numpy's dispatched AVX-512 targets (numpy.core._multiarray_umath.__cpu_dispatch__)
NUMPY_AVX512 = ('AVX512F', 'AVX512CD', 'AVX512_KNL', 'AVX512_KNM', 'AVX512_SKX', 'AVX512_CLX',
                'AVX512_CNL', 'AVX512_ICL')


def _numpy_features():
    from numpy.core._multiarray_umath import __cpu_dispatch__, __cpu_features__
    return __cpu_features__, set(__cpu_dispatch__)


def pin(environ=None, features=None, dispatched=None):
    """Set the variables that cap numpy, oneDNN, OpenBLAS and our kernels at AVX2 in
    ``environ`` (default ``os.environ``), for processes started afterwards. Values already set
    are kept. Returns the variables set. ``features`` (name -> bool) and ``dispatched`` (names)
    describe the CPU as numpy sees it (default: this machine's)."""
    environ = os.environ if environ is None else environ
    if features is None:
        features, dispatched = _numpy_features()
    if not (features.get('AVX2') and features.get('FMA3')):
        return {}
    pinned = {
        'DNNL_MAX_CPU_ISA': 'AVX2',
        'OPENBLAS_CORETYPE': 'Haswell',
        'GLUON_OPT_CXXFLAGS': '-mno-avx512f',
    }
    # numpy warns at import about a feature the CPU lacks or does not dispatch: name only
    # the AVX-512 targets this CPU has (none on an AVX2 machine)
    avx512 = [f for f in NUMPY_AVX512 if f in dispatched and features.get(f)]
    if avx512:
        pinned['NPY_DISABLE_CPU_FEATURES'] = ' '.join(avx512)
    done = {}
    for key, value in pinned.items():
        if key not in environ:
            environ[key] = value
            done[key] = value
    return done


@contextlib.contextmanager
def pinned():
    """``pin()`` for the duration of a ``with`` block: ``os.environ`` is restored after it
    (the variables matter to processes started inside it)."""
    done = pin()
    try:
        yield done
    finally:
        for key in done:
            os.environ.pop(key, None)
