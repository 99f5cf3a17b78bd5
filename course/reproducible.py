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
import functools
import json
import os
import subprocess
import sys

#: numpy's dispatched AVX-512 targets (numpy.core._multiarray_umath.__cpu_dispatch__)
NUMPY_AVX512 = ('AVX512F', 'AVX512CD', 'AVX512_KNL', 'AVX512_KNM', 'AVX512_SKX', 'AVX512_CLX',
                'AVX512_CNL', 'AVX512_ICL')


@functools.lru_cache(maxsize=None)
def _numpy_features():
    """numpy's view of this CPU, uncapped: ``(features, dispatched)``, asked of a fresh
    interpreter without ``NPY_DISABLE_CPU_FEATURES``. A process that runs capped itself (as
    under ``main``: CI's second pass on an AVX-512 machine) sees the features it disabled as
    absent, and a cap computed from that view would leave its children uncapped."""
    env = dict(os.environ)
    env.pop('NPY_DISABLE_CPU_FEATURES', None)
    code = ('import json; from numpy.core._multiarray_umath import __cpu_dispatch__ as d, '
            '__cpu_features__ as f; print(json.dumps([f, list(d)]))')
    out = subprocess.run([sys.executable, '-c', code], env=env, capture_output=True,
                         text=True, check=True, timeout=120)
    features, dispatched = json.loads(out.stdout.strip().splitlines()[-1])
    return features, set(dispatched)


#: the caps of each level: ``avx2`` is the course's recording environment; ``avx`` (AVX
#: without AVX2 and FMA) is the "other instruction set" of an AVX2-only machine, so that CI there
#: too runs the unit tests on a second set of roundings and summation orders
LEVELS = {
    'avx2': {'DNNL_MAX_CPU_ISA': 'AVX2', 'OPENBLAS_CORETYPE': 'Haswell',
             'GLUON_OPT_CXXFLAGS': '-mno-avx512f', 'numpy': ()},
    'avx': {'DNNL_MAX_CPU_ISA': 'AVX', 'OPENBLAS_CORETYPE': 'Sandybridge',
            'GLUON_OPT_CXXFLAGS': '-mno-avx512f -mno-avx2 -mno-fma', 'numpy': ('FMA3', 'AVX2')},
}


def cap(level, environ=None, features=None, dispatched=None):
    """Set the variables that cap numpy, oneDNN, OpenBLAS and our kernels at ``level`` (a key
    of ``LEVELS``) in ``environ`` (default ``os.environ``), for processes started afterwards.
    Values already set are kept. Returns the variables set. ``features`` (name -> bool) and
    ``dispatched`` (names) describe the CPU as numpy sees it (default: this machine's). A CPU
    without AVX2 and FMA is left alone (OpenBLAS's Haswell kernels would not run there)."""
    environ = os.environ if environ is None else environ
    if features is None:
        features, dispatched = _numpy_features()
    if not (features.get('AVX2') and features.get('FMA3')):
        return {}
    caps = dict(LEVELS[level])
    # numpy warns at import about a feature the CPU lacks or does not dispatch: name only
    # the targets this CPU has (no AVX-512 one on an AVX2 machine)
    off = [f for f in caps.pop('numpy') + NUMPY_AVX512 if f in dispatched and features.get(f)]
    if off:
        caps['NPY_DISABLE_CPU_FEATURES'] = ' '.join(off)
    done = {}
    for key, value in caps.items():
        if key not in environ:
            environ[key] = value
            done[key] = value
    return done


def pin(environ=None, features=None, dispatched=None):
    """``cap('avx2', ...)``: the environment the notebooks are recorded and checked in."""
    return cap('avx2', environ, features, dispatched)


def second_level(features=None):
    """The cap that gives this machine a second instruction set: ``avx2`` on a CPU with
    AVX-512, ``avx`` on one with AVX2 only, None on older ones."""
    if features is None:
        features, _ = _numpy_features()
    if not (features.get('AVX2') and features.get('FMA3')):
        return None
    return 'avx2' if features.get('AVX512F') else 'avx'


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


def main(argv=None):
    """``python course/reproducible.py [--level LEVEL|second] -- COMMAND ...``: run COMMAND
    with the caps of LEVEL (``second``, the default: ``second_level()``), after printing them.
    CI runs the unit tests this way once more, so that tolerances are checked against two
    instruction sets on whatever machine it has."""
    import argparse
    import subprocess
    import sys
    parser = argparse.ArgumentParser(prog='reproducible.py')
    parser.add_argument('--level', default='second', choices=sorted(LEVELS) + ['second'])
    parser.add_argument('command', nargs=argparse.REMAINDER)
    args = parser.parse_args(argv)
    command = args.command[1:] if args.command[:1] == ['--'] else args.command
    if not command:
        parser.error('no command to run (reproducible.py --level avx -- pytest ...)')
    level = second_level() if args.level == 'second' else args.level
    env = dict(os.environ)
    done = cap(level, env) if level else {}
    print('reproducible.py: %s: %s' % (level or 'no AVX2: no cap',
                                        ', '.join('%s=%s' % kv for kv in sorted(done.items()))
                                        or 'nothing set'), flush=True)
    return subprocess.call(command, env=env)


if __name__ == '__main__':
    raise SystemExit(main())
