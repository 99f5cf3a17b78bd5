"""Classroom assignments with nbgrader: release the student version, autograde submissions.

    gluon-opt assignment release [--output release/ [--overwrite]] [--course-dir DIR]
    gluon-opt assignment grade SUBMISSION... [--output grades/ [--overwrite]] [--student ID]
        [--timeout S] [--max-notebook-mb MB] [--max-cells N] [--max-output-kb KB]
    (or: python -m gluon_opt.teaching.assignment release|grade ...)

Every exercise notebook of the course (``course/NNx_exercises_*.ipynb``, the instructor
version with solutions) is one nbgrader assignment named after the notebook. Both commands
work in an nbgrader course directory (a temporary one unless ``--course-dir`` names one to
keep)::

    <course-dir>/
        nbgrader_config.py               cell timeout, database location
        gradebook.db                     nbgrader's SQLite gradebook
        source/<assignment>/<nb>.ipynb   instructor versions (copied from course/)
        release/<assignment>/<nb>.ipynb  student versions (nbgrader generate_assignment)
        submitted/<student>/<assignment>/<nb>.ipynb
        autograded/<student>/<assignment>/<nb>.ipynb   (nbgrader autograde)
        feedback/<student>/<assignment>/<nb>.html      (nbgrader generate_feedback)

``--output`` is a new (or empty) folder; ``--overwrite`` replaces one only if gluon-opt wrote
it (``gluon_opt.experiments.outputs``), and anything else is refused before any work.

``release`` copies ``release/`` to ``--output``: one folder per assignment, the notebooks with
every solution region replaced by ``raise NotImplementedError()`` and hidden tests removed.

``grade`` takes submitted notebooks, or folders of them (one folder per student). The student
id is ``--student``, else the folder's name; the assignment is found from the notebook's file
name. It writes ``--output``/scores.csv (student, assignment, exercise, points, max_points,
status, message; one row per graded cell) and ``--output``/feedback/<student>/<assignment>.html.
A file that is not a notebook, a notebook nbgrader cannot grade, a cell that raises or runs
past ``--timeout`` seconds: each costs the affected exercises their points, with the reason
in ``message``, and the grading of everything else goes on.

Submissions are untrusted (course/ASSIGNMENTS.md, "Hostile submissions"): two folders giving
one student id stop ``grade`` before any work; a file over ``--max-notebook-mb`` or
``--max-cells`` is not run; a cell with nbgrader metadata the assignment does not have loses
that metadata (a ``notice`` row says so); the feedback shows student HTML and markdown as
escaped text, hidden tests as a placeholder, and at most ``--max-output-kb`` of outputs.
"""
import argparse
import contextlib
import csv
import glob
import html
import json
import os
import re
import shutil
import sys
import tempfile
import unicodedata

from ..experiments.outputs import Output, OutputError

__all__ = ['add_arguments', 'run', 'release', 'grade', 'exercise_notebooks', 'graded_cells',
           'write_course_config', 'AssignmentError', 'DEFAULT_TIMEOUT', 'DEFAULT_MAX_NOTEBOOK_MB',
           'DEFAULT_MAX_CELLS', 'DEFAULT_MAX_OUTPUT_KB', 'SCORE_FIELDS']

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
    (which also records the assignments and their graded cells in the gradebook)."""
    write_course_config(course_dir, timeout)
    api = _api(course_dir, timeout)
    for assignment, path in notebooks.items():
        target = os.path.join(course_dir, 'source', assignment)
        os.makedirs(target, exist_ok=True)
        shutil.copy(path, os.path.join(target, os.path.basename(path)))
        result = api.generate_assignment(assignment)
        if not result.get('success'):
            raise AssignmentError('nbgrader generate_assignment failed for %s:\n%s'
                                  % (assignment, result.get('error') or result.get('log')))
    return api


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


def _first_line(text, limit=1500):
    text = ' '.join(line.strip() for line in str(text).splitlines() if line.strip())
    return text if len(text) <= limit else text[:limit - 3] + '...'


_ANSI = re.compile(r'\x1b\[[0-9;]*m')


def _error_text(output, timeout):
    ename = output.get('ename', 'Error')
    # nbgrader interrupts a cell past the timeout: the kernel then reports KeyboardInterrupt
    # (CellTimeoutError where the kernel did not answer at all)
    if ename in ('CellTimeoutError', 'KeyboardInterrupt'):
        return 'timed out: the cell ran longer than %d s and was stopped (an endless loop?)' \
            % timeout
    evalue = _ANSI.sub('', output.get('evalue', ''))
    return _first_line('%s: %s' % (ename, evalue) if evalue else ename)


def _cell_messages(autograded_path, timeout):
    """``{grade_id: message}`` for the graded cells that failed, from the autograded
    notebook's outputs. Where a cell between the previous test and this one (the solution
    cell, usually) raised or timed out, the message says so first: that is the cause."""
    import nbformat
    out = {}
    if not os.path.exists(autograded_path):
        return out
    nb = nbformat.read(autograded_path, as_version=4)
    earlier = []
    for cell in nb.cells:
        if cell.cell_type != 'code':
            continue
        meta = cell.metadata.get('nbgrader', {})
        errors = [o for o in cell.get('outputs', []) if o.get('output_type') == 'error']
        if not meta.get('grade'):
            if errors and meta.get('grade_id'):  # a solution or setup cell, not a free one
                earlier.append('your cell %s failed first (%s)' % (
                    meta['grade_id'], _error_text(errors[0], timeout)))
            continue
        if errors:
            text = _error_text(errors[0], timeout)
            out[meta['grade_id']] = '; '.join(earlier + ['then the test: ' + text]) \
                if earlier else text
        earlier = []
    return out


def _strip_foreign_cells(path, target, source_path):
    """Copy the submission ``path`` to ``target``, removing the nbgrader metadata of every
    cell whose grade_id is not one of the assignment's (or repeats one): nbgrader would
    refuse the whole notebook for it. Returns ``[(grade_id, message), ...]``."""
    import nbformat
    source = nbformat.read(source_path, as_version=4)
    known = {c.metadata.get('nbgrader', {}).get('grade_id') for c in source.cells} - {None}
    nb = nbformat.read(path, as_version=4)
    seen, notices = set(), []
    for cell in nb.cells:
        meta = cell.metadata.get('nbgrader')
        if meta is None:
            continue
        gid = meta.get('grade_id') if isinstance(meta, dict) else None
        gid = gid if isinstance(gid, str) else None
        if gid in known and gid not in seen:
            seen.add(gid)
            continue
        kind = 'grade: true' if isinstance(meta, dict) and meta.get('grade') else \
            'nbgrader metadata'
        why = 'appears twice' if gid in seen else 'is not in the assignment'
        notices.append((str(gid or ''), 'cell %s has %s but %s: graded as an ordinary cell' % (
            gid or '(without grade_id)', kind, why)))
        del cell.metadata['nbgrader']
    if notices:
        nbformat.write(nb, target)
    else:
        shutil.copy(path, target)
    return notices


#: output types shown as they are in the feedback; anything else (text/html, javascript,
#: svg, widgets: HTML the student's code chose) is shown as its text/plain form, escaped
_SAFE_MIME = ('text/plain', 'image/png', 'image/jpeg')
_BASE64 = re.compile(r'[A-Za-z0-9+/=\s]*')
_HIDDEN = re.compile(r'^[ \t]*#+ *BEGIN HIDDEN TESTS.*?^[ \t]*#+ *END HIDDEN TESTS[^\n]*',
                     re.S | re.M)


def _output_size(output):
    if output.get('output_type') == 'stream':
        return len(output.get('text', ''))
    if output.get('output_type') == 'error':
        return sum(len(t) for t in output.get('traceback', [])) + len(output.get('evalue', ''))
    return sum(len(v) if isinstance(v, str) else len(json.dumps(v))
               for v in output.get('data', {}).values())


def _sanitise_for_feedback(path, max_output_kb=DEFAULT_MAX_OUTPUT_KB):
    """Rewrite the autograded notebook ``path`` before nbgrader renders it as feedback HTML
    (nbgrader shows outputs and markdown as they are): student HTML becomes escaped text,
    hidden tests become a placeholder, outputs beyond ``max_output_kb`` are cut. Returns a
    notice, or None."""
    import nbformat
    nb = nbformat.read(path, as_version=4)
    budget = int(max_output_kb * 1024)
    cut = 0
    for cell in nb.cells:
        meta = cell.metadata.get('nbgrader', {})
        if cell.cell_type == 'markdown' and not meta.get('locked'):
            cell.source = html.escape(cell.source, quote=False)
        if cell.cell_type == 'raw':  # a raw cell marked text/html is copied into the page
            cell.metadata.pop('raw_mimetype', None)
            cell.metadata.pop('format', None)
        if cell.cell_type != 'code':
            continue
        if meta.get('grade') and meta.get('locked'):
            cell.source = _HIDDEN.sub('# (hidden tests not shown)', cell.source)
        outputs, noted = [], False
        for out in cell.get('outputs', []):
            if 'data' in out:
                # images go into the page as data: URLs, unescaped: base64 or nothing
                data = {k: v for k, v in out['data'].items() if k in _SAFE_MIME and (
                    k == 'text/plain' or isinstance(v, str) and _BASE64.fullmatch(v))}
                if not data:
                    data = {'text/plain': '[output of type %s not shown]'
                            % ', '.join(sorted(out['data']))}
                out['data'] = data
            size = _output_size(out)
            if size <= budget:
                budget -= size
                outputs.append(out)
                continue
            cut += size
            if out.get('output_type') == 'stream' and budget > 0:
                cut -= budget
                out['text'] = out['text'][:budget]
                outputs.append(out)
                budget = 0
            if not noted:
                noted = True
                outputs.append(nbformat.v4.new_output('stream', name='stdout', text=(
                    '\n[output cut: this submission\'s outputs exceed %g KB]\n'
                    % max_output_kb)))
        cell.outputs = outputs
    os.chmod(path, 0o644)  # nbgrader leaves the autograded notebook read-only
    nbformat.write(nb, path)
    os.chmod(path, 0o444)
    if cut:
        return ('outputs over the limit of %g KB (--max-output-kb): %d KB cut from the '
                'feedback' % (max_output_kb, cut // 1024))
    return None


def _zero_rows(student, assignment, cells, status, message):
    return [dict(student=student, assignment=assignment, exercise=gid, points=0.0,
                 max_points=pts, status=status, message=message) for gid, pts in cells]


def _write_html(path, title, student, rows, reason):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    items = ''.join('<tr><td>%s</td><td>%g / %g</td><td>%s</td></tr>' % (
        html.escape(r['exercise']), r['points'], r['max_points'], html.escape(r['message']))
        for r in rows)
    with open(path, 'w', encoding='utf-8') as f:
        f.write('<!DOCTYPE html><html><head><meta charset="utf-8"><title>%s</title></head>'
                '<body><h1>%s: %s</h1><p><strong>Not graded:</strong> %s</p>'
                '<table border="1"><tr><th>exercise</th><th>score</th><th>message</th></tr>%s'
                '</table></body></html>' % (html.escape(title), html.escape(title),
                                            html.escape(student), html.escape(reason), items))


def _notice_rows(student, assignment, notices):
    return [dict(student=student, assignment=assignment, exercise=gid, points=0.0,
                 max_points=0.0, status='notice', message=message) for gid, message in notices]


def _grade_one(api, course_dir, student, assignment, source_path, submitted, output,
               timeout, limits=None):
    """Autograde one student's notebook for one assignment; returns the score rows. Never
    raises for a problem of the submission."""
    from nbgrader.api import Gradebook, MissingEntry
    cells = graded_cells(source_path)
    name = os.path.basename(source_path)
    stem = os.path.splitext(name)[0]
    feedback = os.path.join(output, 'feedback', student, assignment + '.html')

    limits = dict(limits or {})
    max_output_kb = limits.pop('max_output_kb', DEFAULT_MAX_OUTPUT_KB)
    reason = _read_notebook_or_reason(submitted, **limits)
    if reason is not None:
        rows = _zero_rows(student, assignment, cells, 'invalid', reason)
        _write_html(feedback, assignment, student, rows, reason)
        return rows

    target = os.path.join(course_dir, 'submitted', student, assignment)
    if os.path.isdir(target):
        shutil.rmtree(target)
    os.makedirs(target)
    notices = _strip_foreign_cells(submitted, os.path.join(target, name), source_path)
    result = api.autograde(assignment, student)
    if not result.get('success'):
        reason = 'nbgrader could not autograde this notebook: %s' % _first_line(
            (result.get('error') or result.get('log') or 'unknown error').strip()
            .splitlines()[-1])
        rows = _zero_rows(student, assignment, cells, 'error', reason) + _notice_rows(
            student, assignment, notices)
        _write_html(feedback, assignment, student, rows, reason)
        return rows

    autograded = os.path.join(course_dir, 'autograded', student, assignment, name)
    messages = _cell_messages(autograded, timeout)
    rows = []
    with Gradebook(_db_url(course_dir)) as gb:
        try:
            nb = gb.find_submission_notebook(stem, assignment, student)
            grades = {g.name: g for g in nb.grades}
        except MissingEntry:
            grades = {}
        for gid, pts in cells:
            g = grades.get(gid)
            score = float(g.score) if g is not None and g.score is not None else 0.0
            max_points = float(g.max_score) if g is not None else pts
            full = score >= max_points
            rows.append(dict(student=student, assignment=assignment, exercise=gid,
                             points=score, max_points=max_points,
                             status='passed' if full else 'failed',
                             message='' if full else messages.get(
                                 gid, 'no points (see the feedback)')))
    if os.path.exists(autograded):
        cut = _sanitise_for_feedback(autograded, max_output_kb)
        if cut:
            notices.append(('', cut))
    rows.extend(_notice_rows(student, assignment, notices))
    api.generate_feedback(assignment, student)
    html_path = os.path.join(course_dir, 'feedback', student, assignment, stem + '.html')
    if os.path.exists(html_path):
        os.makedirs(os.path.dirname(feedback), exist_ok=True)
        shutil.copy(html_path, feedback)
    else:
        _write_html(feedback, assignment, student, rows, 'nbgrader wrote no feedback')
    return rows


def grade(submissions, output='grades', student=None, source_dir=DEFAULT_SOURCE,
          course_dir=None, timeout=DEFAULT_TIMEOUT, log=None, overwrite=False,
          max_notebook_mb=DEFAULT_MAX_NOTEBOOK_MB, max_cells=DEFAULT_MAX_CELLS,
          max_output_kb=DEFAULT_MAX_OUTPUT_KB):
    """Autograde ``submissions`` (notebook files or per-student folders) against the
    course's exercise notebooks; write ``output``/scores.csv and ``output``/feedback/.
    Returns the score rows (dicts with ``SCORE_FIELDS``). ``output`` must be new or empty,
    or with ``overwrite`` a folder gluon-opt wrote (``OutputError`` otherwise)."""
    folder = Output(output, 'assignment grade', overwrite=overwrite, option='--output')
    log = log or (lambda msg: None)
    notebooks = exercise_notebooks(source_dir)
    jobs, problems = collect_submissions(submissions, notebooks, student=student)
    rows = []
    for sid, path, message in problems:
        log('%s: %s: %s' % (sid, path, message))
        rows.append(dict(student=sid, assignment='', exercise='', points=0.0, max_points=0.0,
                         status='unmatched', message='%s: %s' % (os.path.basename(path),
                                                                message)))
    with folder.writing():
        needed = {a: notebooks[a] for a in notebooks if any(a == j[1] for j in jobs)}
        if needed:
            with _course_directory(course_dir) as cdir, _environment():
                api = _prepare(cdir, needed, timeout)
                for (sid, assignment), path in sorted(jobs.items()):
                    log('grading %s / %s (%s)' % (sid, assignment, path))
                    try:
                        got = _grade_one(api, cdir, sid, assignment, needed[assignment], path,
                                         output, timeout, limits=dict(
                                             max_mb=max_notebook_mb, max_cells=max_cells,
                                             max_output_kb=max_output_kb))
                    except Exception as err:  # noqa: BLE001 (one never stops the rest)
                        reason = 'grading failed: %s: %s' % (type(err).__name__,
                                                             _first_line(err))
                        got = _zero_rows(sid, assignment, graded_cells(needed[assignment]),
                                         'error', reason)
                        _write_html(os.path.join(output, 'feedback', sid, assignment + '.html'),
                                    assignment, sid, got, reason)
                    rows.extend(got)
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
                       description='Autograde submitted notebooks with nbgrader; write '
                       'scores.csv (one row per student, assignment and graded exercise) '
                       'and feedback HTML.')
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
                   help='nbgrader course directory to use and keep (default: a temporary one)')


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
    for option in ('max_notebook_mb', 'max_cells', 'max_output_kb'):
        if getattr(args, option) <= 0:
            raise AssignmentError('--%s must be positive' % option.replace('_', '-'))
    rows = grade(args.submissions, output=args.output, student=args.student,
                 source_dir=args.source, course_dir=args.course_dir, timeout=args.timeout,
                 log=lambda msg: print(msg, file=sys.stderr), overwrite=args.overwrite,
                 max_notebook_mb=args.max_notebook_mb, max_cells=args.max_cells,
                 max_output_kb=args.max_output_kb)
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
    except (AssignmentError, OutputError) as err:
        print('%s: error: %s' % (parser.prog, err), file=sys.stderr)
        return 2


if __name__ == '__main__':
    sys.exit(main())
