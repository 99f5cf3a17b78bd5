"""Classroom assignments: release the student version, grade submissions in a sandbox.

    gluon-opt assignment release [--output release/ [--overwrite]] [--course-dir DIR]
    gluon-opt assignment grade SUBMISSION... [--output grades/ [--overwrite]] [--student ID]
        [--timeout S] [--max-seconds S] [--max-memory-mb MB] [--max-notebook-mb MB]
        [--max-cells N] [--max-output-kb KB] [--no-sandbox] [--course-dir DIR]
    (or: python -m gluon_opt.teaching.assignment release|grade ...)

Every exercise notebook of the course (``course/NNx_exercises_*.ipynb``, the instructor
version with solutions and hidden tests) is one nbgrader assignment named after the notebook.

``release`` builds the student versions with nbgrader's ``generate_assignment`` in an nbgrader
course directory (a temporary one unless ``--course-dir`` names one; in an existing one
nothing is overwritten) and copies them to ``--output``: each solution region replaced by
``raise NotImplementedError()``, hidden tests removed.

``grade`` takes submitted notebooks, or folders of them (one folder per student). The student
id is ``--student``, else the folder's name; the assignment is found from the file name. Each
submission is graded by ``gluon_opt.teaching.autograde``: its code runs in a bubblewrap
sandbox (``gluon_opt.teaching.sandbox``; ``--no-sandbox`` for trusted code only), the test
cells are read, not run, and every verdict is computed in this process from what the
student's code produced. It writes ``--output``/scores.csv (student, assignment, exercise,
points, max_points, status, message; one row per graded cell) and
``--output``/feedback/<student>/<assignment>.html. ``--output`` is a new (or empty) folder;
``--overwrite`` replaces one only if gluon-opt wrote it (``gluon_opt.experiments.outputs``).

Submissions are untrusted (course/ASSIGNMENTS.md, "Threat model"): two folders giving one
student id stop ``grade`` before any work; a file over ``--max-notebook-mb`` or
``--max-cells`` is not run; a cell over ``--timeout``, a notebook over ``--max-seconds`` or
``--max-memory-mb`` is stopped; a cell with nbgrader metadata the assignment does not have is
graded as an ordinary cell (a ``notice`` row says so); an exercise that asks for an
implementation scores nothing when the notebook calls an existing one
(``gluon_opt.teaching.policy``); the feedback shows student output and markdown as escaped
text, never the hidden tests.
"""
import argparse
import contextlib
import csv
import glob
import json
import os
import re
import shutil
import sys
import tempfile
import unicodedata

from ..experiments.outputs import Output, OutputError
from . import autograde, sandbox

__all__ = ['add_arguments', 'run', 'release', 'grade', 'exercise_notebooks', 'graded_cells',
           'write_course_config', 'AssignmentError', 'DEFAULT_TIMEOUT', 'DEFAULT_MAX_NOTEBOOK_MB',
           'DEFAULT_MAX_CELLS', 'DEFAULT_MAX_OUTPUT_KB', 'DEFAULT_MAX_SECONDS',
           'DEFAULT_MAX_MEMORY_MB', 'SCORE_FIELDS']

HERE = os.path.dirname(os.path.abspath(__file__))
REPO_ROOT = os.path.dirname(os.path.dirname(HERE))  # above gluon_opt/teaching/
DEFAULT_SOURCE = os.path.join(REPO_ROOT, 'course')
#: seconds one cell may run during autograding (nbgrader's own default, 30 s, is too short
#: for the training cells on a small machine)
DEFAULT_TIMEOUT = 300
#: limits on what one submission may cost: its file size, its number of cells (both checked
#: before any kernel starts) and the size of the outputs shown in its feedback (beyond it they
#: are cut, so that a loop printing megabytes cannot make a megabyte feedback page)
DEFAULT_MAX_NOTEBOOK_MB = 5.0
DEFAULT_MAX_CELLS = 1000
DEFAULT_MAX_OUTPUT_KB = 1024
#: what one submission may cost in all: wall and CPU seconds for all its cells, and memory
DEFAULT_MAX_SECONDS = 900
DEFAULT_MAX_MEMORY_MB = 4096
SCORE_FIELDS = ('student', 'assignment', 'exercise', 'points', 'max_points', 'status', 'message')
_EXERCISE_GLOB = '[0-9][0-9]x_*.ipynb'


class AssignmentError(Exception):
    """A problem the user can fix (no exercise notebooks, a missing submission path, ...)."""


# ---------------------------------------------------------------------------------------
# The course's exercise notebooks

def exercise_notebooks(source_dir=DEFAULT_SOURCE):
    """``{assignment_id: path}`` of the exercise notebooks in ``source_dir``, in order."""
    paths = sorted(glob.glob(os.path.join(source_dir, _EXERCISE_GLOB)))
    if not paths:
        raise AssignmentError('no exercise notebooks (%s) in %s' % (_EXERCISE_GLOB, source_dir))
    return {os.path.splitext(os.path.basename(p))[0]: p for p in paths}


def graded_cells(path):
    """``[(grade_id, points), ...]`` of a notebook's autograded test cells, in order."""
    import nbformat
    nb = nbformat.read(path, as_version=4)
    out = []
    for cell in nb.cells:
        meta = cell.metadata.get('nbgrader', {})
        if meta.get('grade'):
            out.append((meta['grade_id'], float(meta.get('points', 0))))
    return out


def write_course_config(course_dir, timeout=DEFAULT_TIMEOUT):
    """Write ``nbgrader_config.py`` so that nbgrader's own commands, run in ``course_dir``,
    behave as ``gluon-opt assignment`` does."""
    text = '''# nbgrader configuration written by `gluon-opt assignment`.
c = get_config()  # noqa: F821
c.CourseDirectory.root = %(root)r
c.CourseDirectory.db_url = %(db)r
# Seconds one cell may run when autograding; nbgrader's default (30 s) is too short for the
# training cells. A cell past it is interrupted, reported as a timeout and scores zero.
c.Execute.timeout = %(timeout)d
c.ExecutePreprocessor.timeout = %(timeout)d
c.Execute.interrupt_on_timeout = True
''' % {'root': os.path.abspath(course_dir), 'db': _db_url(course_dir), 'timeout': timeout}
    with open(os.path.join(course_dir, 'nbgrader_config.py'), 'w') as f:
        f.write(text)


def _db_url(course_dir):
    return 'sqlite:///' + os.path.join(os.path.abspath(course_dir), 'gradebook.db')


def _api(course_dir, timeout):
    from traitlets.config import Config
    from nbgrader.apps import NbGraderAPI
    config = Config()
    config.CourseDirectory.root = os.path.abspath(course_dir)
    config.CourseDirectory.db_url = _db_url(course_dir)
    config.Execute.timeout = int(timeout)
    config.ExecutePreprocessor.timeout = int(timeout)
    config.Execute.interrupt_on_timeout = True
    return NbGraderAPI(config=config)


@contextlib.contextmanager
def _environment():
    """Kernels started by nbgrader import this checkout's gluon_opt, installed or not; and
    nbgrader finds ``alembic`` (it runs it when it creates a gradebook) beside this Python
    even where the virtual environment is not activated."""
    saved = {k: os.environ.get(k) for k in ('PYTHONPATH', 'PATH', 'OMP_NUM_THREADS')}

    def prepend(key, first):
        rest = [p for p in (saved[key] or '').split(os.pathsep) if p and p != first]
        os.environ[key] = os.pathsep.join([first] + rest)
    prepend('PYTHONPATH', REPO_ROOT)
    prepend('PATH', os.path.dirname(sys.executable))
    os.environ.setdefault('OMP_NUM_THREADS', '2')
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


@contextlib.contextmanager
def _course_directory(course_dir):
    if course_dir:
        os.makedirs(course_dir, exist_ok=True)
        yield course_dir
    else:
        tmp = tempfile.mkdtemp(prefix='gluon_opt_nbgrader_')
        try:
            yield tmp
        finally:
            shutil.rmtree(tmp, ignore_errors=True)


def _prepare(course_dir, notebooks, timeout):
    """Copy the instructor versions into ``source/`` and run ``generate_assignment`` for each
    (which also records the assignments and their graded cells in the gradebook). In an
    existing course directory nothing is overwritten: its ``nbgrader_config.py`` is kept, a
    different notebook already in ``source/`` or an existing ``release/<assignment>/`` stops
    the command before any work."""
    for assignment, path in notebooks.items():
        target = os.path.join(course_dir, 'source', assignment, os.path.basename(path))
        if os.path.exists(target) and not _same_file(target, path):
            raise AssignmentError('%s exists and differs from %s: remove it, or use another '
                                  '--course-dir (nothing was changed)' % (target, path))
        released = os.path.join(course_dir, 'release', assignment)
        if os.path.exists(released):
            raise AssignmentError('%s exists: remove it, or use another --course-dir '
                                  '(nothing was changed)' % released)
    if not os.path.exists(os.path.join(course_dir, 'nbgrader_config.py')):
        write_course_config(course_dir, timeout)
    api = _api(course_dir, timeout)
    for assignment, path in notebooks.items():
        target = os.path.join(course_dir, 'source', assignment)
        os.makedirs(target, exist_ok=True)
        if not os.path.exists(os.path.join(target, os.path.basename(path))):
            shutil.copy(path, os.path.join(target, os.path.basename(path)))
        result = api.generate_assignment(assignment)
        if not result.get('success'):
            raise AssignmentError('nbgrader generate_assignment failed for %s:\n%s'
                                  % (assignment, result.get('error') or result.get('log')))
    return api


def _same_file(a, b):
    with open(a, 'rb') as f, open(b, 'rb') as g:
        return f.read() == g.read()


# ---------------------------------------------------------------------------------------
# release

def release(output='release', source_dir=DEFAULT_SOURCE, course_dir=None, assignments=None,
            timeout=DEFAULT_TIMEOUT, overwrite=False):
    """Build the student version of every exercise notebook with nbgrader and copy it to
    ``output/<assignment>/``. Returns ``{assignment: [student notebook paths]}``.

    ``output`` must be new or empty, or with ``overwrite`` a folder gluon-opt wrote
    (``gluon_opt.experiments.outputs``; ``OutputError`` otherwise, before any work)."""
    folder = Output(output, 'assignment release', overwrite=overwrite, option='--output')
    notebooks = _select(exercise_notebooks(source_dir), assignments)
    out = {}
    with _course_directory(course_dir) as cdir, _environment():
        _prepare(cdir, notebooks, timeout)
        with folder.writing():
            for assignment in notebooks:
                dst = os.path.join(output, assignment)
                shutil.copytree(os.path.join(cdir, 'release', assignment), dst)
                out[assignment] = sorted(glob.glob(os.path.join(dst, '*.ipynb')))
    return out


def _select(notebooks, assignments):
    if not assignments:
        return notebooks
    unknown = [a for a in assignments if a not in notebooks]
    if unknown:
        raise AssignmentError('unknown assignment%s %s; the course has: %s' % (
            's' if len(unknown) > 1 else '', ', '.join(unknown), ', '.join(notebooks)))
    return {a: notebooks[a] for a in notebooks if a in assignments}


# ---------------------------------------------------------------------------------------
# grade

def _student_id(text):
    # keeps letters of any script (\w is Unicode-aware): Josè and José stay two students
    text = unicodedata.normalize('NFC', str(text))
    sid = re.sub(r'[^\w.@-]+', '_', text).strip('._')
    return sid or 'student'


def _match_assignment(path, notebooks):
    """The assignment a submitted file belongs to: the same file name, else the same
    ``NNx`` prefix (a renamed copy such as ``04x_exercises_adaptive (1).ipynb``)."""
    name = os.path.basename(path)
    stem = os.path.splitext(name)[0]
    if stem in notebooks:
        return stem
    prefix = stem.split('_', 1)[0].lower()
    matches = [a for a in notebooks if a.split('_', 1)[0].lower() == prefix]
    return matches[0] if len(matches) == 1 else None


def collect_submissions(paths, notebooks, student=None):
    """``(jobs, problems)``: ``jobs`` maps ``(student, assignment)`` to a submitted file;
    ``problems`` lists ``(student, path, message)`` for files that match no assignment."""
    jobs, problems, owners = {}, [], {}

    def owner(sid, folder):
        # two different folders must never become one student: one would silently replace
        # the other's work
        first = owners.setdefault(sid, folder)
        if first != folder and not student:
            raise AssignmentError('the student folders %r and %r both give the student id %r; '
                                  'rename one (nothing was graded)' % (first, folder, sid))
        return sid

    for path in paths:
        if not os.path.exists(path):
            raise AssignmentError('no such file or folder: %s' % path)
        if os.path.isdir(path):
            folder = os.path.abspath(path)
            sid = owner(_student_id(student or os.path.basename(folder)), folder)
            files = sorted(p for p in glob.glob(os.path.join(path, '**', '*.ipynb'),
                                                recursive=True)
                           if '.ipynb_checkpoints' not in p)
            if not files:
                problems.append((sid, path, 'no notebook in this folder'))
        else:
            folder = os.path.dirname(os.path.abspath(path))
            sid = owner(_student_id(student or os.path.basename(folder)), folder)
            files = [path]
        for f in files:
            assignment = _match_assignment(f, notebooks)
            if assignment is None:
                problems.append((sid, f, 'its name matches no exercise notebook (%s)'
                                 % ', '.join(os.path.basename(p) for p in notebooks.values())))
            else:
                jobs[(sid, assignment)] = f  # a later file for the same pair wins
    return jobs, problems


def _read_notebook_or_reason(path, max_mb=DEFAULT_MAX_NOTEBOOK_MB,
                             max_cells=DEFAULT_MAX_CELLS):
    """None when ``path`` is a readable notebook within the limits, else why it is not."""
    import nbformat
    size = os.path.getsize(path)
    if size > max_mb * 1e6:
        return 'the notebook is %.1f MB, over the limit of %g MB (--max-notebook-mb)' % (
            size / 1e6, max_mb)
    try:
        with open(path, encoding='utf-8') as f:
            text = f.read()
    except (OSError, UnicodeDecodeError) as err:
        return 'the file cannot be read as text (%s)' % err
    try:
        data = json.loads(text)
    except ValueError as err:
        return 'not a notebook: the file is not valid JSON (%s)' % err
    cells = data.get('cells') if isinstance(data, dict) else None
    if isinstance(cells, list) and len(cells) > max_cells:
        return 'the notebook has %d cells, over the limit of %d (--max-cells)' % (
            len(cells), max_cells)
    try:
        nb = nbformat.from_dict(data)
        if nb.get('nbformat') != 4:
            return 'not a notebook in format 4 (nbformat=%r)' % nb.get('nbformat')
        nbformat.validate(nb)
    except Exception as err:  # noqa: BLE001 (any validation failure means: not gradable)
        return 'not a valid notebook (%s)' % str(err).splitlines()[0]
    return None


def _zero_rows(student, assignment, cells, status, message):
    return [dict(student=student, assignment=assignment, exercise=gid, points=0.0,
                 max_points=pts, status=status, message=message) for gid, pts in cells]


def _write(path, text):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, 'w', encoding='utf-8') as f:
        f.write(text)


def _notice_rows(student, assignment, notices):
    return [dict(student=student, assignment=assignment, exercise=gid, points=0.0,
                 max_points=0.0, status='notice', message=message) for gid, message in notices]


def _sources(source_dir, course_dir):
    """The instructor notebooks: ``source_dir``'s, each replaced by the one in an nbgrader
    course directory's ``source/<assignment>/`` where that exists (read, never written)."""
    notebooks = exercise_notebooks(source_dir)
    if course_dir:
        for name in notebooks:
            own = os.path.join(course_dir, 'source', name, name + '.ipynb')
            if os.path.isfile(own):
                notebooks[name] = own
    return notebooks


def _load(notebooks, name, cache):
    if name not in cache:
        try:
            cache[name] = autograde.Assignment(name, notebooks[name])
        except autograde.AssignmentSourceError as err:
            raise AssignmentError('%s: %s' % (notebooks[name], err))
    return cache[name]


def _grade_file(assignment, sid, path, output, timeout, limits, use_sandbox, max_notebook_mb,
                max_cells, max_output_kb, hide):
    import nbformat
    feedback = os.path.join(output, 'feedback', sid, assignment.name + '.html')
    reason = _read_notebook_or_reason(path, max_notebook_mb, max_cells)
    if reason is not None:
        rows = _zero_rows(sid, assignment.name, assignment.graded(), 'invalid', reason)
        _write(feedback, autograde.feedback_html(assignment.name, sid, rows, [], {}, reason))
        return rows
    try:
        nb = nbformat.read(path, as_version=4)
        rows, notices, page = autograde.grade_submission(
            nb, assignment, sid, timeout, limits, use_sandbox, max_output_kb, hide=hide)
    except sandbox.SandboxError:
        raise
    except Exception as err:  # noqa: BLE001 (one submission never stops the rest)
        reason = 'grading failed: %s: %s' % (type(err).__name__, autograde._first_line(err))
        rows = _zero_rows(sid, assignment.name, assignment.graded(), 'error', reason)
        _write(feedback, autograde.feedback_html(assignment.name, sid, rows, [], {}, reason))
        return rows
    _write(feedback, page)
    return rows + _notice_rows(sid, assignment.name, notices)


def grade(submissions, output='grades', student=None, source_dir=DEFAULT_SOURCE,
          course_dir=None, timeout=DEFAULT_TIMEOUT, log=None, overwrite=False,
          max_notebook_mb=DEFAULT_MAX_NOTEBOOK_MB, max_cells=DEFAULT_MAX_CELLS,
          max_output_kb=DEFAULT_MAX_OUTPUT_KB, max_seconds=DEFAULT_MAX_SECONDS,
          max_memory_mb=DEFAULT_MAX_MEMORY_MB, use_sandbox=True):
    """Grade ``submissions`` (notebook files or per-student folders) against the course's
    exercise notebooks; write ``output``/scores.csv and ``output``/feedback/. Returns the
    score rows (dicts with ``SCORE_FIELDS``).

    Each submission's code runs in a sandbox (``gluon_opt.teaching.sandbox``: bubblewrap;
    ``use_sandbox=False`` runs it unprotected) and every verdict is computed in this process
    (``gluon_opt.teaching.autograde``). ``output`` must be new or empty, or with ``overwrite``
    a folder gluon-opt wrote (``OutputError`` otherwise)."""
    folder = Output(output, 'assignment grade', overwrite=overwrite, option='--output')
    log = log or (lambda msg: None)
    if use_sandbox and sandbox.bwrap() is None:
        raise AssignmentError('bubblewrap (bwrap) is not installed, and grading runs each '
                              'submission in it: install it (Debian/Ubuntu: apt-get install '
                              'bubblewrap), or pass --no-sandbox to run the students\' code '
                              'with your rights (unsafe with submissions you do not trust)')
    notebooks = _sources(source_dir, course_dir)
    jobs, problems = collect_submissions(submissions, notebooks, student=student)
    rows = []
    for sid, path, message in problems:
        log('%s: %s: %s' % (sid, path, message))
        rows.append(dict(student=sid, assignment='', exercise='', points=0.0, max_points=0.0,
                         status='unmatched', message='%s: %s' % (os.path.basename(path),
                                                                message)))
    limits = sandbox.Limits(max_seconds=max_seconds, max_memory_mb=max_memory_mb,
                            max_file_mb=max(64, int(max_output_kb / 1024) + 1))
    # folders the sandbox must not show even where they lie under a path it binds
    hide = [source_dir, course_dir, os.path.abspath(output)] + sorted(
        {os.path.dirname(os.path.abspath(p)) for p in jobs.values()})
    cache = {}
    with folder.writing():
        for (sid, name), path in sorted(jobs.items()):
            assignment = _load(notebooks, name, cache)
            log('grading %s / %s (%s)' % (sid, name, path))
            rows.extend(_grade_file(assignment, sid, path, output, timeout, limits,
                                    use_sandbox, max_notebook_mb, max_cells, max_output_kb,
                                    hide))
        with open(os.path.join(output, 'scores.csv'), 'w', newline='', encoding='utf-8') as f:
            writer = csv.DictWriter(f, fieldnames=SCORE_FIELDS)
            writer.writeheader()
            for r in rows:
                writer.writerow(dict(r, points='%g' % r['points'],
                                     max_points='%g' % r['max_points']))
    return rows


def _summary(rows):
    totals = {}
    for r in rows:
        if r['assignment']:
            got, best = totals.get((r['student'], r['assignment']), (0.0, 0.0))
            totals[(r['student'], r['assignment'])] = (got + r['points'], best + r['max_points'])
    return ['%-20s %-34s %5g / %g' % (s, a, got, best)
            for (s, a), (got, best) in sorted(totals.items())]


# ---------------------------------------------------------------------------------------
# Command line

def add_arguments(parser):
    """Declare ``release`` and ``grade`` under ``parser`` (``gluon-opt assignment``)."""
    sub = parser.add_subparsers(dest='assignment_command', metavar='{release,grade}')
    sub.required = True
    p = sub.add_parser('release', help='build the student version of the exercise notebooks',
                       description='Build the student version of every exercise notebook '
                       '(solutions replaced by raise NotImplementedError(), hidden tests '
                       'removed) with nbgrader.')
    p.add_argument('--output', default='release',
                   help='folder for the student notebooks, one subfolder per assignment '
                        '(default: release)')
    p.add_argument('--assignment', action='append',
                   help='only this assignment (notebook name without .ipynb); repeatable')
    _overwrite(p)
    _common(p)
    g = sub.add_parser('grade', help='autograde submitted notebooks: scores.csv and feedback',
                       description='Autograde submitted notebooks, each run in a bubblewrap '
                       'sandbox, with every verdict computed outside it; write scores.csv '
                       '(one row per student, assignment and graded exercise) and feedback '
                       'HTML.')
    g.add_argument('submissions', nargs='+', metavar='SUBMISSION',
                   help='a submitted notebook, or a folder of one student\'s notebooks')
    g.add_argument('--student', help='student id for all the submissions (default: the '
                                     'name of the folder each is in)')
    g.add_argument('--output', default='grades',
                   help='folder for scores.csv and feedback/ (default: grades)')
    g.add_argument('--timeout', type=int, default=DEFAULT_TIMEOUT,
                   help='seconds one cell may run before it is stopped and scores zero '
                        '(default: %d)' % DEFAULT_TIMEOUT)
    g.add_argument('--max-notebook-mb', type=float, default=DEFAULT_MAX_NOTEBOOK_MB,
                   help='a larger submitted file is not run and scores zero (default: %g)'
                   % DEFAULT_MAX_NOTEBOOK_MB)
    g.add_argument('--max-cells', type=int, default=DEFAULT_MAX_CELLS,
                   help='a notebook with more cells is not run and scores zero (default: %d)'
                   % DEFAULT_MAX_CELLS)
    g.add_argument('--max-output-kb', type=float, default=DEFAULT_MAX_OUTPUT_KB,
                   help='outputs of one submission shown in its feedback; the rest is cut '
                        '(default: %g)' % DEFAULT_MAX_OUTPUT_KB)
    g.add_argument('--max-seconds', type=float, default=DEFAULT_MAX_SECONDS,
                   help='wall and CPU seconds for all the cells of one submission; what has '
                        'not run by then scores zero (default: %g)' % DEFAULT_MAX_SECONDS)
    g.add_argument('--max-memory-mb', type=int, default=DEFAULT_MAX_MEMORY_MB,
                   help='address space of one submission\'s process (default: %d)'
                   % DEFAULT_MAX_MEMORY_MB)
    g.add_argument('--no-sandbox', action='store_true',
                   help='run the students\' code without the bubblewrap sandbox, with your '
                        'rights: only for code you trust')
    _overwrite(g)
    _common(g)


def _overwrite(p):
    p.add_argument('--overwrite', action='store_true',
                   help='replace an existing --output folder, only if gluon-opt wrote it')


def _common(p):
    p.add_argument('--source', default=DEFAULT_SOURCE,
                   help='folder with the instructor notebooks NNx_exercises_*.ipynb '
                        '(default: the course/ of this checkout)')
    p.add_argument('--course-dir',
                   help='an nbgrader course directory: release works in it (keeping what is '
                        'there; default: a temporary one); grade reads its source/ '
                        'notebooks, if any, and writes nothing there')


def run(args):
    """Run ``gluon-opt assignment release|grade``; returns the exit status."""
    if args.assignment_command == 'release':
        out = release(args.output, source_dir=args.source, course_dir=args.course_dir,
                      assignments=args.assignment, overwrite=args.overwrite)
        for assignment, paths in out.items():
            for p in paths:
                print(p)
        print('student versions of %d assignment%s in %s' % (
            len(out), 's' if len(out) != 1 else '', args.output))
        return 0
    if args.timeout <= 0:
        raise AssignmentError('--timeout must be a positive number of seconds')
    for option in ('max_notebook_mb', 'max_cells', 'max_output_kb', 'max_seconds',
                   'max_memory_mb'):
        if getattr(args, option) <= 0:
            raise AssignmentError('--%s must be positive' % option.replace('_', '-'))
    if args.no_sandbox:
        print('WARNING: --no-sandbox: the submissions\' code runs with your rights and can '
              'read and change your files, other submissions and the grades; use it only for '
              'code you trust', file=sys.stderr)
    rows = grade(args.submissions, output=args.output, student=args.student,
                 source_dir=args.source, course_dir=args.course_dir, timeout=args.timeout,
                 log=lambda msg: print(msg, file=sys.stderr), overwrite=args.overwrite,
                 max_notebook_mb=args.max_notebook_mb, max_cells=args.max_cells,
                 max_output_kb=args.max_output_kb, max_seconds=args.max_seconds,
                 max_memory_mb=args.max_memory_mb, use_sandbox=not args.no_sandbox)
    for line in _summary(rows):
        print(line)
    for r in rows:
        if r['status'] in ('invalid', 'error', 'unmatched'):
            print('%s %s: %s' % (r['student'], r['assignment'] or '-', r['message']),
                  file=sys.stderr)
            break
    print('scores: %s; feedback: %s' % (os.path.join(args.output, 'scores.csv'),
                                        os.path.join(args.output, 'feedback')))
    return 0


def main(argv=None):
    parser = argparse.ArgumentParser(prog='gluon-opt assignment', description=__doc__.split(
        '\n\n')[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    add_arguments(parser)
    args = parser.parse_args(argv)
    try:
        return run(args)
    except (AssignmentError, OutputError, sandbox.SandboxError) as err:
        print('%s: error: %s' % (parser.prog, err), file=sys.stderr)
        return 2


if __name__ == '__main__':
    sys.exit(main())
