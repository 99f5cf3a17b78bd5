"""Build, cache and load the fused-kernel library: the one place that calls
``mx.library.load``.

The C++ sources beside this file (``*.cc``, ``common.h``) are compiled with the system C++
compiler against the installed MXNet wheel's ``include/mxnet/lib_api.h`` and ``src/lib_api.cc``
into one shared library, on first use (the first fused update or ``kernels.available()``),
never at ``import gluon_opt``. The library is cached per MXNet version and per hash of the
sources, compiler flags and host CPU, so later processes only load it (a few milliseconds)::

    ~/.cache/gluon_opt/kernels/<mxnet-version>-<hash>/libgluon_opt_kernels.so

Environment variables:

``GLUON_OPT_KERNEL_CACHE``  cache directory (default ``$XDG_CACHE_HOME/gluon_opt/kernels`` or
                            ``~/.cache/gluon_opt/kernels``);
``CXX``                     the compiler (default ``c++``, else ``g++``, else ``clang++``);
``GLUON_OPT_CXXFLAGS``      extra flags appended to the compile commands.

Building twice at once (threads or processes) is safe: each build writes a private temporary
file and renames it into place atomically. ``python -m gluon_opt.kernels.build`` builds ahead
of time and prints the library's path.
"""
import glob
import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
import threading

import mxnet as mx

__all__ = ['KernelBuildError', 'library_path', 'load', 'sources', 'cache_root']

LIB_NAME = 'libgluon_opt_kernels.so'
SOURCE_DIR = os.path.dirname(os.path.abspath(__file__))
CACHE_ENV = 'GLUON_OPT_KERNEL_CACHE'
FLAGS_ENV = 'GLUON_OPT_CXXFLAGS'

# -O3 and -march=native vectorise the update loops (the cache key holds the host's CPU flags);
# -fno-math-errno lets sqrt vectorise. No -ffast-math and no FMA contraction (-ffp-contract=off;
# g++ contracts a * b + c into one fused multiply-add by default, even in ISO mode, rounding
# once instead of twice): the kernels must keep IEEE semantics and the reference's roundings
# to agree with the reference updates.
BASE_FLAGS = ['-std=c++17', '-O3', '-march=native', '-ffp-contract=off', '-fno-math-errno',
              '-fno-trapping-math', '-fopenmp', '-fPIC']


class KernelBuildError(RuntimeError):
    """The kernel library could not be built or loaded."""


_lock = threading.Lock()
_loaded = {}  # library path -> True once mx.library.load succeeded in this process


def _mxnet_dir():
    return os.path.dirname(os.path.abspath(mx.__file__))


def sources():
    """The C++ sources of the library (the CUDA ``.cu`` files are not built by the CPU wheel)."""
    return sorted(glob.glob(os.path.join(SOURCE_DIR, '*.cc')))


def _headers():
    return sorted(glob.glob(os.path.join(SOURCE_DIR, '*.h')))


def cache_root():
    root = os.environ.get(CACHE_ENV)
    if not root:
        base = os.environ.get('XDG_CACHE_HOME') or os.path.join(os.path.expanduser('~'), '.cache')
        root = os.path.join(base, 'gluon_opt', 'kernels')
    return os.path.abspath(root)


def _compiler():
    cxx = os.environ.get('CXX')
    if cxx:
        return cxx
    for name in ('c++', 'g++', 'clang++'):
        if shutil.which(name):
            return name
    return None


def _flags():
    return BASE_FLAGS + os.environ.get(FLAGS_ENV, '').split()


def _cpu_flags():
    try:
        with open('/proc/cpuinfo') as f:
            for line in f:
                if line.startswith('flags'):
                    return line
    except OSError:
        pass
    import platform
    return platform.processor() or platform.machine()


def library_path():
    """Where the library for these sources, this MXNet and this compiler lives in the cache."""
    digest = hashlib.sha256()
    mxdir = _mxnet_dir()
    for path in sources() + _headers() + [os.path.join(mxdir, 'include', 'mxnet', 'lib_api.h'),
                                          os.path.join(mxdir, 'src', 'lib_api.cc')]:
        digest.update(os.path.basename(path).encode())
        with open(path, 'rb') as f:
            digest.update(f.read())
    digest.update(' '.join([str(_compiler())] + _flags()).encode())
    digest.update(_cpu_flags().encode())
    return os.path.join(cache_root(), '%s-%s' % (mx.__version__, digest.hexdigest()[:16]),
                        LIB_NAME)


def _run(cmd):
    try:
        proc = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                              universal_newlines=True)
    except OSError as err:
        raise KernelBuildError('cannot run the C++ compiler %r: %s' % (cmd[0], err))
    if proc.returncode != 0:
        raise KernelBuildError('the C++ compiler failed (exit %d):\n  %s\n%s' % (
            proc.returncode, ' '.join(cmd), proc.stdout[-4000:]))


def _build(target):
    cxx = _compiler()
    if cxx is None:
        raise KernelBuildError('no C++ compiler found (set CXX, or install g++ or clang++)')
    mxdir = _mxnet_dir()
    lib_api_cc = os.path.join(mxdir, 'src', 'lib_api.cc')
    include = os.path.join(mxdir, 'include')
    if not os.path.exists(lib_api_cc):
        raise KernelBuildError('the MXNet wheel has no src/lib_api.cc (%s)' % lib_api_cc)
    os.makedirs(os.path.dirname(target), exist_ok=True)
    workdir = tempfile.mkdtemp(prefix='build-', dir=os.path.dirname(target))
    try:
        # Compile the translation units in parallel (lib_api.cc alone takes seconds), then link.
        objects, procs = [], []
        for src in sources() + [lib_api_cc]:
            obj = os.path.join(workdir, os.path.basename(src) + '.o')
            cmd = [cxx] + _flags() + ['-I', include, '-I', SOURCE_DIR, '-c', src, '-o', obj]
            objects.append(obj)
            try:
                procs.append((cmd, subprocess.Popen(cmd, stdout=subprocess.PIPE,
                                                    stderr=subprocess.STDOUT,
                                                    universal_newlines=True)))
            except OSError as err:
                raise KernelBuildError('cannot run the C++ compiler %r: %s' % (cxx, err))
        failures = []
        for cmd, proc in procs:
            out, _ = proc.communicate()
            if proc.returncode != 0:
                failures.append('  %s\n%s' % (' '.join(cmd), out[-4000:]))
        if failures:
            raise KernelBuildError('the C++ compiler failed:\n' + '\n'.join(failures))
        tmp_lib = os.path.join(workdir, LIB_NAME)
        _run([cxx] + _flags() + ['-shared'] + objects + ['-o', tmp_lib])
        os.replace(tmp_lib, target)  # atomic: a concurrent loader sees all or nothing
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def load():
    """Build the library if the cache lacks it, load it into MXNet once per process, and return
    its path. Raises ``KernelBuildError`` with the compiler's message when that fails."""
    path = library_path()
    with _lock:
        if _loaded.get(path):
            return path
        if not os.path.exists(path):
            _build(path)
        try:
            mx.library.load(path, verbose=False)
        except Exception as err:  # MXNetError: version check failed, bad library, ...
            raise KernelBuildError('MXNet could not load %s: %s' % (path, err))
        _loaded[path] = True
    return path


if __name__ == '__main__':
    try:
        print(load())
    except KernelBuildError as err:
        sys.exit(str(err))
