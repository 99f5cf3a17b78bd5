"""Run a command on untrusted input inside bubblewrap: what grading a submission runs in.

``run(argv, stdin, limits, hide=...)`` starts ``argv`` (the grading runner) under
`bubblewrap <https://github.com/containers/bubblewrap>`_ (``bwrap``, Debian package
``bubblewrap``), the sandbox Flatpak builds on, with:

* **a filesystem of its own**: the system (``/usr``), this Python and its packages, the
  ``gluon_opt`` package and the course data, all read-only; an empty, size-limited ``/tmp``
  as the only writable place (the working directory). Nothing else of the machine exists
  inside: not the instructor's home, course folder, source notebooks, gradebook, grades, nor
  the other submissions. Folders that must stay unseen but lie under a bound path (``hide``:
  the instructor notebooks, the output) are covered by empty ones;
* **namespaces**: its own PIDs (it sees only its processes), network (loopback only), IPC,
  hostname and user (uid 65534, no capabilities), a new session (no terminal to write to);
* **an end**: every process it started is killed when the command ends or is stopped
  (``--die-with-parent``, and the PID namespace dies with its first process), including one
  that ``setsid``-ed or forked away;
* **limits**: wall time and CPU time (``max_seconds``), address space (``max_memory_mb``),
  size of any file written (``max_file_mb``) and of ``/tmp``; the results come back through
  a pipe read with a size cap.

``run(..., sandbox=False)`` (``--no-sandbox``) runs the command as a plain child with the same
limits, for machines without bubblewrap: it protects nothing from the student's code.
"""
import os
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time

__all__ = ['SandboxError', 'Limits', 'Result', 'bwrap', 'run', 'bound_paths']

NOBODY = 65534


class SandboxError(Exception):
    """The sandbox cannot be used here (no bubblewrap, or it cannot start)."""


class Limits(object):
    """What one run may cost."""

    def __init__(self, max_seconds=900, max_memory_mb=4096, max_file_mb=64, tmp_mb=256,
                 max_result_mb=64):
        self.max_seconds, self.max_memory_mb = float(max_seconds), int(max_memory_mb)
        self.max_file_mb, self.tmp_mb = int(max_file_mb), int(tmp_mb)
        self.max_result_mb = int(max_result_mb)


class Result(object):
    """``returncode``, ``results`` (bytes from fd 3), ``log`` (stdout and stderr, capped),
    ``timed_out``, ``seconds``."""

    def __init__(self, returncode, results, log, timed_out, seconds):
        self.returncode, self.results, self.log = returncode, results, log
        self.timed_out, self.seconds = timed_out, seconds


def bwrap():
    """The ``bwrap`` executable, or None."""
    return shutil.which('bwrap')


def _package_dirs():
    """``(package folder, data file)``."""
    import gluon_opt
    from ..experiments.data import default_path
    return os.path.dirname(os.path.abspath(gluon_opt.__file__)), os.path.abspath(default_path())


def bound_paths():
    """The read-only paths a sandbox sees: the system, this Python, its site-packages, the
    gluon_opt package and its data folder (nothing else of the checkout it lives in)."""
    paths = ['/usr', '/etc/ld.so.cache', '/etc/ld.so.conf', '/etc/ld.so.conf.d',
             '/etc/alternatives', '/etc/localtime']
    for prefix in (sys.base_prefix, sys.base_exec_prefix, sys.prefix, sys.exec_prefix,
                   os.path.dirname(os.path.dirname(os.path.realpath(sys.executable)))):
        paths.append(prefix)
    paths += [p for p in sys.path if p.endswith(('site-packages', 'dist-packages'))]
    package, data = _package_dirs()
    paths += [package, os.path.dirname(data)]
    out = []
    for p in paths:
        p = os.path.abspath(p)
        if os.path.exists(p) and p not in out and p != '/':
            out.append(p)
    return out


def _inside(path, roots):
    path = os.path.realpath(path)
    return any(path == r or path.startswith(r.rstrip('/') + '/')
               for r in (os.path.realpath(x) for x in roots))


def _environment(sandbox):
    package, data = _package_dirs()
    env = {
        'PATH': os.pathsep.join([os.path.dirname(sys.executable), '/usr/bin', '/bin']),
        'HOME': '/tmp' if sandbox else tempfile.gettempdir(),
        'LANG': 'C.UTF-8',
        'PYTHONPATH': os.path.dirname(package),
        'PYTHONNOUSERSITE': '1',
        'PYTHONDONTWRITEBYTECODE': '1',
        'MPLBACKEND': 'Agg',
        'OMP_NUM_THREADS': os.environ.get('OMP_NUM_THREADS', '2'),
        'GLUON_OPT_IMPL': 'reference',
        'GLUON_OPT_DATA': data,
    }
    if not sandbox:
        env['MPLCONFIGDIR'] = env['IPYTHONDIR'] = tempfile.gettempdir()
    return env


def _command(argv, limits, hide):
    exe = bwrap()
    if exe is None:
        raise SandboxError('bubblewrap (bwrap) is not installed: install it (Debian/Ubuntu: '
                           'apt-get install bubblewrap) or, on a machine where students '
                           'cannot harm anything, pass --no-sandbox')
    roots = bound_paths()
    cmd = [exe, '--unshare-all', '--die-with-parent', '--new-session', '--cap-drop', 'ALL',
           '--uid', str(NOBODY), '--gid', str(NOBODY), '--hostname', 'grading',
           # the private /tmp first: a Python installed under /tmp is bound on top of it
           '--size', str(limits.tmp_mb << 20), '--tmpfs', '/tmp']
    for p in roots:
        if os.path.islink(p) and not p.startswith('/usr'):
            cmd += ['--ro-bind', os.path.realpath(p), p]
        else:
            cmd += ['--ro-bind', p, p]
    for link, target in (('/bin', 'usr/bin'), ('/lib', 'usr/lib'), ('/lib64', 'usr/lib64'),
                         ('/sbin', 'usr/sbin')):
        if os.path.islink(link):
            cmd += ['--symlink', target, link]
        elif os.path.isdir(link):
            cmd += ['--ro-bind', link, link]
    for p in hide:  # an instructor's folder under a bound path: an empty folder instead
        if p and os.path.exists(p) and _inside(p, roots):
            cmd += ['--tmpfs', os.path.realpath(p)]
    cmd += ['--proc', '/proc', '--dev', '/dev', '--dir', '/tmp/work', '--chdir', '/tmp/work',
            '--clearenv']
    for key, value in sorted(_environment(True).items()):
        cmd += ['--setenv', key, value]
    return cmd + ['--'] + list(argv)


def _limit(limits):
    def apply():
        mb = 1 << 20
        resource.setrlimit(resource.RLIMIT_AS, (limits.max_memory_mb * mb,) * 2)
        cpu = int(limits.max_seconds) + 5
        resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu))
        resource.setrlimit(resource.RLIMIT_FSIZE, (limits.max_file_mb * mb,) * 2)
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    return apply


def _drain(stream, cap, sink):
    total = 0
    while True:
        chunk = stream.read(65536)
        if not chunk:
            break
        if total < cap:
            sink.append(chunk[:cap - total])
        total += len(chunk)
    stream.close()


def run(argv, stdin, limits=None, sandbox=True, hide=()):
    """Run ``argv`` with ``stdin`` (bytes); returns a ``Result``: what the command wrote to
    the results pipe, whose file descriptor replaces ``{fd}`` in ``argv``. Raises
    ``SandboxError`` where bubblewrap is missing (``sandbox=True``)."""
    limits = limits or Limits()
    read_fd, write_fd = os.pipe()
    argv = [a.replace('{fd}', str(write_fd)) for a in argv]
    cmd = _command(argv, limits, hide) if sandbox else list(argv)
    workdir = None if sandbox else tempfile.mkdtemp(prefix='gluon_opt_grading_')
    start = time.time()
    try:
        proc = subprocess.Popen(
            cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
            pass_fds=(write_fd,), preexec_fn=_limit(limits), start_new_session=True,
            # bwrap's own process (PID 1 inside, /proc/1/environ) gets no more than the command
            env=_environment(sandbox), cwd=workdir,
            close_fds=True)
    except OSError as err:
        os.close(read_fd)
        os.close(write_fd)
        raise SandboxError('cannot start %s: %s' % (cmd[0], err))
    os.close(write_fd)
    results, log = [], []
    readers = [threading.Thread(target=_drain, args=(os.fdopen(read_fd, 'rb'),
                                                     limits.max_result_mb << 20, results)),
               threading.Thread(target=_drain, args=(proc.stdout, 64 << 10, log))]
    for t in readers:
        t.daemon = True
        t.start()
    try:
        proc.stdin.write(stdin)
        proc.stdin.close()
    except (BrokenPipeError, OSError):
        pass
    timed_out = False
    try:
        proc.wait(timeout=limits.max_seconds)
    except subprocess.TimeoutExpired:
        timed_out = True
    finally:
        try:  # the whole group: the sandbox, or every plain child that did not setsid
            os.killpg(proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        proc.wait()
        for t in readers:
            t.join(5)
        if workdir:
            shutil.rmtree(workdir, ignore_errors=True)
    return Result(proc.returncode, b''.join(results), b''.join(log).decode('utf-8', 'replace'),
                  timed_out, time.time() - start)
