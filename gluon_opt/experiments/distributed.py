"""Launch an MXNet parameter-server job (scheduler, servers, workers) on this machine.

``gluon-opt launch -n 2 -s 1 -- python train.py --kvstore dist_sync`` (or ``python -m
gluon_opt.experiments.distributed -n 2 -s 1 -- python train.py ...``) starts, on 127.0.0.1, one
scheduler, ``-s`` servers and ``-n`` workers, each running the *same* command with the
``DMLC_*`` environment ps-lite reads (``DMLC_ROLE``, ``DMLC_PS_ROOT_URI``,
``DMLC_PS_ROOT_PORT``, ``DMLC_NUM_SERVER``, ``DMLC_NUM_WORKER``, ``DMLC_NODE_HOST``), as
MXNet's own ``tools/launch.py`` does on a cluster. Their output is streamed with a prefix
(``[scheduler]``, ``[server 0]``, ``[worker 1]``); the exit status is 0 when every worker
exits 0.

Faults. The job is stopped, every process group killed, and the exit status is non-zero with a
message naming the process, when

* a worker exits with a non-zero status or is killed;
* a server or the scheduler exits with a non-zero status (a server that cannot build the
  optimizer exits 1, see ``gluon_opt._compat.fail_loudly_on_server``; ps-lite itself has no
  failure detection, the surviving processes would wait forever);
* a worker prints nothing for ``--hang-timeout`` seconds (the training script must report
  progress at least that often);
* the whole job runs longer than ``--timeout`` seconds;
* the launcher itself gets SIGINT/SIGTERM.

Bad input is refused before anything starts, in one line: ``-n``/``-s`` below 1,
``--timeout`` or ``--hang-timeout`` not a positive number (``--hang-timeout 0``: no limit),
``--port`` outside 1024..65535 (0: a free one) or already taken (exit status 2), a command
that is not found (127) or not executable (126).

Worker labels are launch order. The rank MXNet gives a worker (``kv.rank``) is assigned by the
scheduler in the order workers register and may differ: print it in the script.
"""
import argparse
import errno
import math
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time

__all__ = ['add_arguments', 'run', 'launch', 'free_port', 'LaunchError']

_POLL_S = 0.05


class LaunchError(RuntimeError):
    """A job that cannot start; ``status`` is the exit status (2: a bad option; 127: the
    command is not found; 126: it cannot be executed)."""

    def __init__(self, message, status=2):
        super(LaunchError, self).__init__(message)
        self.status = status


def _check_command(command):
    """``LaunchError`` (status 127 or 126) unless ``command[0]`` can be executed."""
    program = command[0]
    if os.sep in program:
        if not os.path.isfile(program):
            raise LaunchError('command not found: %s' % program, 127)
        if not os.access(program, os.X_OK):
            raise LaunchError('permission denied: %s is not executable' % program, 126)
    elif shutil.which(program) is None:
        raise LaunchError('command not found: %s (not on PATH)' % program, 127)


def _check_numbers(workers, servers, timeout, hang_timeout, port):
    """``LaunchError`` naming the first option out of range."""
    if workers < 1 or servers < 1:
        raise LaunchError('need at least one worker and one server (got -n %d -s %d)'
                          % (workers, servers))
    for flag, value in (('--timeout', timeout), ('--hang-timeout', hang_timeout)):
        if value is not None and not (math.isfinite(value) and value > 0):
            raise LaunchError('%s %g is invalid; expected a positive number of seconds%s'
                              % (flag, value, ' (or 0: no limit)' if 'hang' in flag else ''))
    if port is not None and port != 0:
        if not 1024 <= port <= 65535:
            raise LaunchError('--port %d is invalid; expected 1024..65535 (or 0: a free one)'
                              % port)
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            try:
                s.bind(('127.0.0.1', port))
            except OSError as err:
                raise LaunchError('--port %d cannot be used: %s' % (
                    port, 'already in use' if err.errno == errno.EADDRINUSE
                    else err.strerror or err)) from None


def free_port(host='127.0.0.1'):
    """A TCP port nobody listens on right now (the scheduler binds it a moment later)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def _describe_status(rc):
    if rc is None:
        return 'still running'
    if rc < 0:
        try:
            return 'killed by %s' % signal.Signals(-rc).name
        except ValueError:
            return 'killed by signal %d' % -rc
    return 'exit status %d' % rc


def _die_with_parent():
    """Linux: the child gets SIGKILL if the launcher dies, even by SIGKILL (nothing is left
    running when the launcher cannot clean up itself)."""
    if sys.platform.startswith('linux'):
        import ctypes
        try:
            ctypes.CDLL(None).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
        except (OSError, AttributeError):
            pass


class _Proc(object):
    """One role's process, its output pump and the time it last printed."""

    def __init__(self, label, role, command, env, out, lock):
        self.label, self.role = label, role
        self.last_output = time.monotonic()
        self.popen = subprocess.Popen(
            command, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT, start_new_session=True,  # own process group
            preexec_fn=_die_with_parent)
        self._out, self._lock = out, lock
        self.thread = threading.Thread(target=self._pump, name='pump-' + label, daemon=True)
        self.thread.start()

    def _pump(self):
        prefix = '[%s] ' % self.label
        for raw in iter(self.popen.stdout.readline, b''):
            self.last_output = time.monotonic()
            line = raw.decode('utf-8', 'replace').rstrip('\n')
            with self._lock:
                self._out.write(prefix + line + '\n')
                self._out.flush()
        self.popen.stdout.close()

    def poll(self):
        return self.popen.poll()

    def signal_group(self, sig):
        try:
            os.killpg(self.popen.pid, sig)
        except (ProcessLookupError, PermissionError):
            pass


def _stop_all(procs, grace_s=3.0):
    """SIGTERM every process group, SIGKILL what is left after ``grace_s``, reap them all."""
    for p in procs:
        if p.poll() is None:
            p.signal_group(signal.SIGTERM)
    deadline = time.monotonic() + grace_s
    for p in procs:
        try:
            p.popen.wait(timeout=max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            pass
    for p in procs:
        p.signal_group(signal.SIGKILL)  # the group: children the command started die too
        p.popen.wait()
    for p in procs:
        p.thread.join(timeout=2.0)


def launch(command, workers, servers=1, timeout=None, hang_timeout=None, port=None,
           env=None, out=None, shutdown_grace=15.0):
    """Run ``command`` as a parameter-server job on 127.0.0.1; returns the exit status
    (0 when every worker succeeded). See the module docstring for the fault handling."""
    if not command:
        raise LaunchError('no command to launch (put it after --)')
    _check_numbers(workers, servers, timeout, hang_timeout, port)
    _check_command(command)
    out = out or sys.stdout
    lock = threading.Lock()

    def say(msg):
        with lock:
            sys.stderr.write('gluon-opt launch: %s\n' % msg)
            sys.stderr.flush()

    base = dict(os.environ if env is None else env)
    base.update({
        'DMLC_PS_ROOT_URI': '127.0.0.1', 'DMLC_PS_ROOT_PORT': str(port or free_port()),
        'DMLC_NUM_SERVER': str(servers), 'DMLC_NUM_WORKER': str(workers),
        'DMLC_NODE_HOST': '127.0.0.1', 'PYTHONUNBUFFERED': '1'})
    roles = [('scheduler', 'scheduler')]
    roles += [('server %d' % i, 'server') for i in range(servers)]
    roles += [('worker %d' % i, 'worker') for i in range(workers)]

    procs = []
    stop_signal = []

    def on_signal(signum, _frame):
        stop_signal.append(signum)

    old_handlers = {}
    if threading.current_thread() is threading.main_thread():
        for sig in (signal.SIGINT, signal.SIGTERM):
            old_handlers[sig] = signal.signal(sig, on_signal)
    start = time.monotonic()
    failure, status = None, 0
    try:
        try:
            for label, role in roles:
                procs.append(_Proc(label, role, command, dict(base, DMLC_ROLE=role), out,
                                   lock))
        except OSError as err:  # e.g. a script without a #! line: exec format error
            raise LaunchError('cannot start %s: %s' % (command[0], err.strerror or err),
                              126) from None
        worker_procs = [p for p in procs if p.role == 'worker']
        while True:
            time.sleep(_POLL_S)
            now = time.monotonic()
            if stop_signal:
                failure = 'interrupted by %s' % signal.Signals(stop_signal[0]).name
                status = 128 + stop_signal[0]
                break
            bad = [p for p in worker_procs if p.poll() not in (None, 0)]
            if bad:
                p = bad[0]
                failure = '%s (pid %d) failed: %s' % (p.label, p.popen.pid,
                                                      _describe_status(p.poll()))
                status = p.poll() if p.poll() > 0 else 1
                break
            if all(p.poll() == 0 for p in worker_procs):
                break
            # a server or the scheduler exits 0 once every worker has closed its kvstore,
            # which may be before the workers' own exit; any other status is a failure
            early = [p for p in procs if p.role != 'worker' and p.poll() not in (None, 0)]
            if early:
                p = early[0]
                failure = '%s (pid %d) failed while workers were running: %s' % (
                    p.label, p.popen.pid, _describe_status(p.poll()))
                status = 1
                break
            if hang_timeout:
                stuck = [p for p in worker_procs
                         if p.poll() is None and now - p.last_output > hang_timeout]
                if stuck:
                    failure = '%s (pid %d) printed nothing for %.0f s: hung?' % (
                        stuck[0].label, stuck[0].popen.pid, hang_timeout)
                    status = 1
                    break
            if timeout and now - start > timeout:
                failure = 'the job ran past --timeout %.0f s' % timeout
                status = 1
                break
        if failure is None:
            # workers are done: servers and scheduler shut down when the workers' kvstores close
            deadline = time.monotonic() + shutdown_grace
            rest = [p for p in procs if p.role != 'worker']
            while any(p.poll() is None for p in rest) and time.monotonic() < deadline:
                time.sleep(_POLL_S)
            lingering = [p.label for p in rest if p.poll() is None]
            if lingering:
                say('%s still running %.0f s after the workers finished; stopping them'
                    % (', '.join(lingering), shutdown_grace))
            failed = [p for p in rest if p.poll() not in (None, 0)]
            if failed:
                p = failed[0]
                failure = '%s (pid %d) failed at shutdown: %s' % (
                    p.label, p.popen.pid, _describe_status(p.poll()))
                status = 1
    finally:
        if failure:
            say('%s; stopping the job' % failure)
        _stop_all(procs)
        for sig, handler in old_handlers.items():
            signal.signal(sig, handler)
    if failure is None:
        say('all %d workers finished in %.1f s' % (workers, time.monotonic() - start))
    return status


def add_arguments(parser):
    """The ``launch`` options (shared by ``gluon-opt launch`` and ``python -m
    gluon_opt.experiments.distributed``)."""
    parser.add_argument('-n', '--workers', type=int, required=True, help='number of workers')
    parser.add_argument('-s', '--servers', type=int, default=1, help='number of servers')
    parser.add_argument('--timeout', type=float, default=None,
                        help='stop the job (exit 1) after this many seconds')
    parser.add_argument('--hang-timeout', type=float, default=300.0,
                        help='a worker silent this many seconds counts as hung (0: never)')
    parser.add_argument('--port', type=int, default=None,
                        help='scheduler port, 1024..65535 (default or 0: a free one)')
    parser.add_argument('command', nargs=argparse.REMAINDER,
                        help='the training command, after --, run in every role')
    return parser


def run(args):
    """Run the job ``args`` (from ``add_arguments``) describes; returns the exit status."""
    command = list(args.command)
    if command and command[0] == '--':
        command = command[1:]
    try:
        return launch(command, args.workers, args.servers, timeout=args.timeout,
                      hang_timeout=args.hang_timeout or None, port=args.port)
    except LaunchError as err:
        sys.stderr.write('gluon-opt launch: error: %s\n' % err)
        return err.status


def main(argv=None):
    parser = add_arguments(argparse.ArgumentParser(
        prog='gluon-opt launch', description=__doc__.split('\n')[0]))
    return run(parser.parse_args(argv))


if __name__ == '__main__':
    sys.exit(main())
