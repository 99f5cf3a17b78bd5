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
``GLUON_OPT_CXXFLAGS``      extra flags appended to the compile commands;
``GLUON_OPT_CUDA``          ``0`` (default): CPU kernels only (GPU contexts take the reference
                            updates); ``1``: nvcc also compiles the rule ops' CUDA driver
                            (``cuda.cuh``) and they run on GPU contexts too (a clear error where
                            MXNet is not a CUDA build or nvcc is missing); ``auto``: that where
                            possible, else CPU only. Off by default until the CUDA driver has
                            passed ``tests/gpu`` on a GPU (see the README's GPU section);
``NVCC``                    the CUDA compiler (default: ``$CUDA_HOME/bin/nvcc``, else ``nvcc`` on
                            the PATH, else ``/usr/local/cuda/bin/nvcc``);
``GLUON_OPT_CUDA_ARCH``     nvcc's ``-arch`` (default ``native``: the GPUs of this machine);
``GLUON_OPT_NVCCFLAGS``     extra flags appended to nvcc's commands.

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

__all__ = ['KernelBuildError', 'library_path', 'load', 'sources', 'cuda_sources', 'cache_root',
           'cuda_compiler', 'compile_commands', 'build_library', 'cuda_enabled']

LIB_NAME = 'libgluon_opt_kernels.so'
SOURCE_DIR = os.path.dirname(os.path.abspath(__file__))
CACHE_ENV = 'GLUON_OPT_KERNEL_CACHE'
FLAGS_ENV = 'GLUON_OPT_CXXFLAGS'
CUDA_ENV = 'GLUON_OPT_CUDA'
CUDA_ARCH_ENV = 'GLUON_OPT_CUDA_ARCH'
NVCC_FLAGS_ENV = 'GLUON_OPT_NVCCFLAGS'
#: what marks a source as holding rule ops, which get the CUDA driver under nvcc
RULE_MARK = 'GLUON_OPT_REGISTER_RULE('

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
_loaded = {}  # library path -> whether it has CUDA kernels, once mx.library.load succeeded


def _mxnet_dir():
    import mxnet as mx
    return os.path.dirname(os.path.abspath(mx.__file__))


def sources():
    """The C++ sources of the library."""
    return sorted(glob.glob(os.path.join(SOURCE_DIR, '*.cc')))


def cuda_sources():
    """The sources holding rule ops (``GLUON_OPT_REGISTER_RULE``): in a CUDA build nvcc compiles
    these, and each of their ops gets the CUDA driver of ``cuda.cuh`` beside its CPU one."""
    out = []
    for path in sources():
        with open(path) as f:
            if RULE_MARK in f.read():
                out.append(path)
    return out


def _headers():
    return sorted(glob.glob(os.path.join(SOURCE_DIR, '*.h')) +
                  glob.glob(os.path.join(SOURCE_DIR, '*.cuh')))


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


def _find_nvcc():
    explicit = os.environ.get('NVCC')
    if explicit:
        return explicit
    home = os.environ.get('CUDA_HOME') or os.environ.get('CUDA_PATH')
    if home and os.path.exists(os.path.join(home, 'bin', 'nvcc')):
        return os.path.join(home, 'bin', 'nvcc')
    found = shutil.which('nvcc')
    if found:
        return found
    default = '/usr/local/cuda/bin/nvcc'
    return default if os.path.exists(default) else None


def _mxnet_has_cuda():
    import mxnet as mx
    try:
        return bool(mx.runtime.Features().is_enabled('CUDA'))
    except Exception:  # a build without the feature list
        return False


def cuda_compiler():
    """nvcc's path where the CUDA kernels are to be built (``GLUON_OPT_CUDA``), else None.
    Raises ``KernelBuildError`` where ``GLUON_OPT_CUDA=1`` asks for what cannot be had."""
    setting = os.environ.get(CUDA_ENV, '0').strip().lower()
    if setting in ('0', 'off', 'no', 'false', ''):
        return None
    if setting not in ('auto', '1', 'on', 'yes', 'true'):
        raise KernelBuildError('%s must be 0, 1 or auto, got %r' % (CUDA_ENV,
                                                                  os.environ[CUDA_ENV]))
    required = setting != 'auto'
    if not _mxnet_has_cuda():
        if required:
            raise KernelBuildError('%s=1 asks for CUDA kernels, but this MXNet is built without '
                                   'CUDA (install a CUDA build of MXNet, or unset %s)'
                                   % (CUDA_ENV, CUDA_ENV))
        return None
    nvcc = _find_nvcc()
    if nvcc is None and required:
        raise KernelBuildError('%s=1 asks for CUDA kernels, but no nvcc was found (set NVCC or '
                               'CUDA_HOME)' % CUDA_ENV)
    return nvcc


def _nvcc_flags():
    """nvcc's flags: no fused multiply-add contraction (-fmad=false) and IEEE division and
    square root (nvcc's defaults, no --use_fast_math), so the device rounds as the CPU kernels
    do; the host compiler gets BASE_FLAGS less what nvcc sets itself."""
    host = [f for f in _flags() if f not in ('-std=c++17', '-O3')]
    flags = ['-std=c++17', '-O3', '-fmad=false', '-arch=%s' % os.environ.get(CUDA_ARCH_ENV,
                                                                            'native'),
             '-Xcompiler', ','.join(host)]
    if os.environ.get('CXX'):
        flags += ['-ccbin', os.environ['CXX']]
    return flags + os.environ.get(NVCC_FLAGS_ENV, '').split()


def compile_commands(cxx, nvcc, include, lib_api_cc, workdir, target, extra_sources=(),
                     extra_flags=()):
    """The compile commands (``[(command, object)]``) and the link command of the library:
    ``cxx`` compiles every source, except that with ``nvcc`` (a CUDA build) nvcc compiles the
    rule sources (``cuda_sources()``), MXNet's ``lib_api.cc`` and ``extra_sources`` as CUDA and
    links; ``extra_flags`` go to every command. Needs no MXNet import (``tests/gpu`` builds its
    harness with it, on a GPU machine without MXNet, or with CUDA emulated on the CPU)."""
    cuda = set(cuda_sources()) if nvcc else set()
    compiles = []
    for src in sources() + list(extra_sources) + [lib_api_cc]:
        obj = os.path.join(workdir, os.path.basename(src) + '.o')
        if nvcc and (src in cuda or src == lib_api_cc or src in extra_sources):
            cmd = [nvcc] + _nvcc_flags() + ['-x', 'cu']
        else:
            cmd = [cxx] + _flags()
        compiles.append((cmd + list(extra_flags) + ['-I', include, '-I', SOURCE_DIR, '-c', src,
                                                    '-o', obj], obj))
    objects = [obj for _, obj in compiles]
    if nvcc:
        link = [nvcc, '-shared', '-Xcompiler', '-fopenmp,-fPIC'] + objects + ['-lgomp']
    else:
        link = [cxx] + _flags() + ['-shared'] + objects
    return compiles, link + list(extra_flags) + ['-o', target]


def _nvcc_version(nvcc):
    try:
        return subprocess.run([nvcc, '--version'], stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, universal_newlines=True).stdout
    except OSError as err:
        raise KernelBuildError('cannot run nvcc %r: %s' % (nvcc, err))


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


def library_path(nvcc=None):
    """Where the library for these sources, this MXNet and this compiler (and nvcc, for a CUDA
    build) lives in the cache."""
    import mxnet as mx
    digest = hashlib.sha256()
    mxdir = _mxnet_dir()
    for path in sources() + _headers() + [os.path.join(mxdir, 'include', 'mxnet', 'lib_api.h'),
                                          os.path.join(mxdir, 'src', 'lib_api.cc')]:
        digest.update(os.path.basename(path).encode())
        with open(path, 'rb') as f:
            digest.update(f.read())
    digest.update(' '.join([str(_compiler())] + _flags()).encode())
    digest.update(_cpu_flags().encode())
    if nvcc:
        digest.update(' '.join([_nvcc_version(nvcc)] + _nvcc_flags()).encode())
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


def _build(target, nvcc=None):
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
        tmp_lib = os.path.join(workdir, LIB_NAME)
        build_library(cxx, nvcc, include, lib_api_cc, workdir, tmp_lib)
        os.replace(tmp_lib, target)  # atomic: a concurrent loader sees all or nothing
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def build_library(cxx, nvcc, include, lib_api_cc, workdir, target, extra_sources=(),
                  extra_flags=()):
    """Run ``compile_commands``: the translation units in parallel (lib_api.cc alone takes
    seconds), then the link."""
    compiles, link = compile_commands(cxx, nvcc, include, lib_api_cc, workdir, target,
                                      extra_sources, extra_flags)
    procs = []
    for cmd, _ in compiles:
        try:
            procs.append((cmd, subprocess.Popen(cmd, stdout=subprocess.PIPE,
                                                stderr=subprocess.STDOUT,
                                                universal_newlines=True)))
        except OSError as err:
            raise KernelBuildError('cannot run the compiler %r: %s' % (cmd[0], err))
    failures = []
    for cmd, proc in procs:
        out, _ = proc.communicate()
        if proc.returncode != 0:
            failures.append('  %s\n%s' % (' '.join(cmd), out[-4000:]))
    if failures:
        raise KernelBuildError('the C++ compiler failed:\n' + '\n'.join(failures))
    _run(link)


def load():
    """Build the library if the cache lacks it, load it into MXNet once per process, and return
    its path. Raises ``KernelBuildError`` with the compiler's message when that fails."""
    import mxnet as mx
    with _lock:
        nvcc = cuda_compiler()
        path = library_path(nvcc)
        if path in _loaded:
            return path
        if not os.path.exists(path):
            _build(path, nvcc)
        try:
            mx.library.load(path, verbose=False)
        except Exception as err:  # MXNetError: version check failed, bad library, ...
            raise KernelBuildError('MXNet could not load %s: %s' % (path, err))
        _loaded[path] = nvcc is not None
    return path


def cuda_enabled():
    """True when the loaded library holds the CUDA kernels (a CUDA build of MXNet and nvcc)."""
    return any(_loaded.values())


if __name__ == '__main__':
    try:
        print(load())
    except KernelBuildError as err:
        sys.exit(str(err))
