"""The folders the command line writes, and the only ones it ever replaces.

Every folder ``gluon-opt`` writes (``compare --out``, ``bench --out``, ``assignment release``
and ``grade --output``) carries a marker file, ``.gluon-opt-output``: JSON naming the command,
whether it finished (``complete``) and every file and folder it wrote there (``files``). The
rules, checked when ``Output`` is built, before any work starts:

* a new folder is created (with its parents); an existing *empty* folder is used as it is;
* an existing folder with anything in it is replaced only with ``overwrite``, and only when
  it carries the marker and holds nothing but what the marker lists (and the tool's own
  ``.gluon-opt-*`` scratch files): a folder without the marker, one where the user added a
  file, the current directory (or one above it), a file or a symbolic link is refused;
* the place must be writable (no file in the way, no permission problem);
* ``resume=True`` (``gluon-opt benchmark --resume``) continues a run instead: an existing
  folder is kept as it is, with what it holds, when its marker names the same command and it
  holds nothing the marker does not list; a folder that does not exist yet is created.

A refusal is an ``OutputError`` with a one-line message; the command line prints it as
``gluon-opt <command>: error: ...`` and exits with status 2. Nothing is deleted that the
marker does not list.

The folder itself is made at the first ``file()`` (or ``create()``), so a run stopped before
it wrote anything leaves nothing behind, and the marker says ``complete: false`` until
``finish()``: an interrupted run keeps what it finished, marked incomplete::

    out = Output(path, 'compare', overwrite=args.overwrite)   # checks now
    with out.open('history.csv') as f:                        # atomic; makes the folder
        f.write(...)
    out.finish()                                              # complete: true
"""
import contextlib
import datetime
import json
import math
import os
import shutil
import tempfile

__all__ = ['MARKER', 'SCRATCH', 'OutputError', 'Output', 'finite_json']

#: the marker file of a folder gluon-opt wrote
MARKER = '.gluon-opt-output'
#: the prefix of the tool's own scratch names (the marker, ``tmp-`` files and folders of
#: atomic writes); never the user's
SCRATCH = '.gluon-opt-'


class OutputError(ValueError):
    """A destination that cannot or must not be written; the message is one line."""


def _is_inside(path, folder):
    return path == folder or path.startswith(folder.rstrip(os.sep) + os.sep)


class Output(object):
    """An output folder of command ``command`` (``'compare'``, ``'bench'``, ...) at ``path``.

    Building it checks the destination (``OutputError`` otherwise); ``option`` names the
    command-line option in messages. ``path`` is the absolute folder; ``file(name)``
    registers a file and returns its path; ``open(name)`` writes one atomically;
    ``finish(complete)`` records what is there and whether the run finished.
    """

    def __init__(self, path, command, overwrite=False, option='--out', resume=None):
        self.given, self.path = path, os.path.abspath(path)
        self.command, self.overwrite, self.option = command, overwrite, option
        # None: the command cannot resume; False: it can, and was not asked to
        self.resume = resume
        self.files = []
        self.created = False
        self.resumed = False
        self.check()

    def _refuse(self, why):
        raise OutputError('%s %s: %s' % (self.option, self.given, why))

    def check(self):
        """Raise ``OutputError`` unless the destination can be written under the rules of the
        module docstring; returns the folder that must be writable."""
        path = self.path
        try:
            cwd = os.getcwd()
        except OSError:  # the current directory was deleted: it cannot be the target
            cwd = None
        if cwd and _is_inside(cwd, path):
            self._refuse('is the current directory%s; gluon-opt writes only into a folder of '
                         'its own: choose a new one.'
                         % ('' if path == cwd else ' or a folder above it'))
        if os.path.islink(path):
            self._refuse('is a symbolic link; choose another %s.' % self.option)
        if self._exists(path):
            if not os.path.isdir(path):
                self._refuse('is a file, not a folder; choose another %s.' % self.option)
            try:
                held = os.listdir(path)
            except OSError as err:
                self._refuse('cannot read it: %s.' % (err.strerror or err))
            if held and self.resume:
                self._check_resumable()
            elif held:
                self._check_replaceable()
            return self._check_writable(path)
        parent = os.path.dirname(path)
        while not self._exists(parent):
            parent = os.path.dirname(parent)
        if not os.path.isdir(parent):
            self._refuse('%s is a file, not a folder.' % parent)
        return self._check_writable(parent)

    def _exists(self, path):
        """Whether ``path`` exists; a folder on the way that cannot be searched is refused
        (``os.path.exists`` would call the path missing and send the search elsewhere)."""
        try:
            os.lstat(path)
        except (FileNotFoundError, NotADirectoryError):
            return False
        except OSError as err:
            self._refuse('cannot reach %s: %s.' % (path, err.strerror or err))
        return True

    def _check_replaceable(self):
        if not self.overwrite:
            self._refuse('already exists; choose another %s%s or pass --overwrite (which '
                         'replaces only a folder gluon-opt wrote).' % (
                             self.option, ', pass --resume to continue the run in it'
                             if self.resume is False else ''))
        marker = _read_marker(self.path)
        if marker is None:
            self._refuse('already exists and was not written by gluon-opt (no readable %s '
                         'marker in it); --overwrite replaces only gluon-opt output folders, '
                         'so it is left as it is.' % MARKER)
        foreign = _foreign(self.path, marker.get('files', ()))
        if foreign:
            self._refuse('holds %s, which gluon-opt did not write; --overwrite replaces only '
                         'what gluon-opt wrote, so nothing was deleted: move it away or choose '
                         'another %s.' % (', '.join(foreign[:3]) + (', ...' if len(foreign) > 3
                                                                    else ''), self.option))

    def _check_resumable(self):
        marker = _read_marker(self.path)
        if marker is None or marker.get('command') != self.command:
            self._refuse('holds no run of gluon-opt %s to resume (%s); choose another %s.'
                         % (self.command, 'no readable %s marker' % MARKER if marker is None
                            else 'it was written by gluon-opt %s' % marker.get('command'),
                            self.option))
        foreign = _foreign(self.path, marker.get('files', ()))
        if foreign:
            self._refuse('holds %s, which gluon-opt did not write; --resume continues only a '
                         'folder that holds nothing else: move it away.'
                         % (', '.join(foreign[:3]) + (', ...' if len(foreign) > 3 else '')))

    def _check_writable(self, folder):
        if not os.access(folder, os.W_OK | os.X_OK):
            self._refuse('permission denied: cannot write in %s.' % folder)
        try:  # os.access does not see read-only file systems, ACLs, root squash, ...
            fd, probe = tempfile.mkstemp(prefix=SCRATCH + 'probe-', dir=folder)
            os.close(fd)
            os.remove(probe)
        except OSError as err:
            self._refuse('cannot write in %s: %s.' % (folder, err.strerror or err))
        return folder

    def create(self):
        """Make the folder (after checking again; emptying a replaceable old one) and write
        the marker, ``complete: false``. Done by the first ``file()``; idempotent."""
        if self.created:
            return self.path
        self.check()
        marker = _read_marker(self.path) if self.resume else None
        if marker is not None:  # continue the run: keep everything it wrote
            self.created, self.resumed = True, True
            self.files = list(marker.get('files', []))
            self.started = marker.get('started')
            self._write_marker(False)
            return self.path
        try:
            if os.path.isdir(self.path):
                _empty(self.path)
            os.makedirs(self.path, exist_ok=True)
        except OSError as err:
            self._refuse('cannot %s it: %s.' % ('replace' if os.path.isdir(self.path)
                                                  else 'create', err.strerror or err))
        self.created = True
        self.started = datetime.datetime.now().isoformat(timespec='seconds')
        self._write_marker(False)
        return self.path

    def file(self, name):
        """The path of the file ``name`` (relative, ``/``-separated) in the folder, registered
        in the marker before it is written; the folder is made on the first call."""
        self.create()
        if name not in self.files:
            parts = name.split('/')
            for i in range(1, len(parts)):
                folder = '/'.join(parts[:i]) + '/'
                if folder not in self.files:
                    self.files.append(folder)
            self.files.append(name)
            self._write_marker(False)
        path = os.path.join(self.path, *name.split('/'))
        os.makedirs(os.path.dirname(path), exist_ok=True)
        return path

    @contextlib.contextmanager
    def open(self, name, mode='w', **kwargs):
        """Write ``name`` atomically: a reader (or an interruption) sees the old file or the
        new one, never half of it."""
        path = self.file(name)
        tmp = os.path.join(os.path.dirname(path), SCRATCH + 'tmp-' + os.path.basename(path))
        with open(tmp, mode, **kwargs) as f:
            yield f
        os.replace(tmp, path)

    def drawn(self, draw):
        """Call ``draw(folder)`` with a scratch folder inside this one and move the files it
        returns (their paths) in, registered; returns their names. A figure drawn only in
        part is never left under its real name."""
        scratch = os.path.join(self.create(), SCRATCH + 'tmp-drawn')
        os.makedirs(scratch, exist_ok=True)
        names = []
        for path in draw(scratch):
            name = os.path.basename(path)
            os.replace(path, self.file(name))
            names.append(name)
        os.rmdir(scratch)
        return names

    def finish(self, complete=True):
        """Record every file now in the folder (all written by this run, which made or emptied
        it) and whether the run finished; remove leftover scratch files."""
        if not self.created:
            return
        for root, dirs, names in os.walk(self.path):
            rel = os.path.relpath(root, self.path).replace(os.sep, '/')
            prefix = '' if rel == '.' else rel + '/'
            for name in [d for d in dirs if d.startswith(SCRATCH)]:
                dirs.remove(name)
                if name.startswith(SCRATCH + 'tmp-'):  # an interrupted write's
                    shutil.rmtree(os.path.join(root, name))
            for name in names:
                if name.startswith(SCRATCH + 'tmp-'):
                    os.remove(os.path.join(root, name))
                elif not name.startswith(SCRATCH) and prefix + name not in self.files:
                    self.files.append(prefix + name)
            for name in dirs:
                if prefix + name + '/' not in self.files:
                    self.files.append(prefix + name + '/')
        self._write_marker(complete)

    @contextlib.contextmanager
    def writing(self):
        """``create()`` the folder, yield its path; ``finish()`` it, complete unless the block
        raised (then what was written stays, marked incomplete)."""
        self.create()
        try:
            yield self.path
        except BaseException:
            self.finish(complete=False)
            raise
        self.finish()

    def _write_marker(self, complete):
        record = {'tool': 'gluon-opt', 'command': self.command, 'complete': complete,
                  'started': self.started,
                  'finished': datetime.datetime.now().isoformat(timespec='seconds')
                  if complete else None,
                  'files': sorted(self.files)}
        tmp = os.path.join(self.path, MARKER + '.tmp')  # a scratch name too (.gluon-opt-)
        with open(tmp, 'w') as f:
            json.dump(record, f, indent=1)
        os.replace(tmp, os.path.join(self.path, MARKER))


def finite_json(obj):
    """``obj`` with every NaN and infinity (a diverged run's last numbers, a target not
    reached) as None, nested dicts and lists included: strict JSON has neither."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {k: finite_json(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [finite_json(v) for v in obj]
    return obj


def _read_marker(folder):
    try:
        with open(os.path.join(folder, MARKER)) as f:
            marker = json.load(f)
    except (OSError, ValueError):
        return None
    if not isinstance(marker, dict) or marker.get('tool') != 'gluon-opt' \
            or not isinstance(marker.get('files', []), list):
        return None
    return marker


def _foreign(folder, listed):
    """Relative paths under ``folder`` the marker does not list (scratch names excepted):
    what the user put there."""
    listed, foreign = set(listed), []
    for root, dirs, names in os.walk(folder):
        rel = os.path.relpath(root, folder).replace(os.sep, '/')
        prefix = '' if rel == '.' else rel + '/'
        for name in sorted(dirs):
            if os.path.islink(os.path.join(root, name)):
                names.append(name)  # os.walk does not follow it: judge it as a file
            elif prefix + name + '/' not in listed and not name.startswith(SCRATCH):
                foreign.append(prefix + name + '/')
        dirs[:] = [d for d in dirs if prefix + d + '/' in listed]
        for name in sorted(names):
            if prefix + name not in listed and not name.startswith(SCRATCH):
                foreign.append(prefix + name)
    return foreign


def _empty(folder):
    """Remove everything inside ``folder`` (already checked to be the tool's own) but the
    marker, which ``create`` rewrites: cut short, the folder is still marked as the tool's."""
    marker = os.path.join(folder, MARKER)
    for root, dirs, names in os.walk(folder, topdown=False):
        for name in names:
            if os.path.join(root, name) != marker:
                os.remove(os.path.join(root, name))
        for name in dirs:
            path = os.path.join(root, name)
            os.remove(path) if os.path.islink(path) else os.rmdir(path)
