"""Grade one submitted notebook: student code in the sandbox, verdicts outside it.

``gluon-opt assignment grade`` calls ``grade_submission`` once per student and assignment:

1. **Read the instructor's notebook** (``Assignment``): its setup cells, its solution cells
   (by nbgrader ``grade_id``), and its test cells, each parsed (never executed) into the
   checks it calls, ``grading.check_optimizer('myadam', reference='gluon_opt.adam', ...)``:
   the argument that names the student's work (``'myadam'``) and the instructor's constants
   (reference, settings, expected answers, including the hidden tests'). From the constants
   it computes the test instances (``grading.Check.problem``): public ones (start weights,
   gradients, random matrices) and private ones (the reference's results).
2. **Build the run** from the submission: its cells in its order, with the instructor's setup
   cells restored, each test cell replaced by a probe that hands the student's answer and the
   public instances to ``grading.observe``. Nothing private goes into the run: no hidden
   test, no expected answer, no reference result.
3. **Read the student's code** (``policy.violations``) for uses of an existing
   implementation of what an exercise asks to implement.
4. **Run it in the sandbox** (``sandbox.run`` + ``runner``): the only step that executes
   student code.
5. **Judge** every check here, in the grader's process, from what the run observed
   (``grading.Check.judge``); write the rows and an escaped feedback page.

So patching ``grading`` in the student's kernel, an input transformer that turns test cells
into ``pass``, or rebinding names changes nothing: the test cells never run there, and the
verdicts are computed where the student's code never ran.
"""
import ast
import base64
import binascii
import html
import inspect
import json
import os
import re
import sys

from . import grading, policy, sandbox

__all__ = ['Assignment', 'AssignmentSourceError', 'grade_submission', 'TestCall']

_HIDDEN = re.compile(r'^[ \t]*#+ *BEGIN HIDDEN TESTS.*?^[ \t]*#+ *END HIDDEN TESTS[^\n]*',
                     re.S | re.M)
_HIDDEN_LINES = re.compile(r'^[ \t]*#+ *(BEGIN|END) HIDDEN TESTS', re.M)


class AssignmentSourceError(Exception):
    """The instructor's notebook cannot be graded this way (a test cell the grader cannot
    read, a graded answer whose key ships in the package)."""


class TestCall(object):
    """One check call of a test cell: ``check`` (its name), ``expr`` (the source of the
    student's argument), ``constants``, ``hidden``, and the instances ``public``/``private``."""

    def __init__(self, check, expr, constants, hidden):
        self.check, self.expr, self.constants, self.hidden = check, expr, constants, hidden
        self.public = self.private = None

    def prepare(self):
        self.public, self.private = grading.CHECKS[self.check].problem(**self.constants)


def _hidden_lines(source):
    lines, inside = set(), False
    for i, line in enumerate(source.splitlines(), 1):
        m = _HIDDEN_LINES.match(line)
        if m:
            inside = m.group(1) == 'BEGIN'
        if inside:
            lines.add(i)
    return lines


def parse_test_cell(grade_id, source):
    """The ``TestCall``s of a test cell, in order. A test cell may hold imports, comments and
    calls ``grading.check_*(...)`` (bare or printed) whose arguments other than the student's
    are literals."""
    try:
        tree = ast.parse(source)
    except SyntaxError as err:
        raise _source_error(grade_id, 'is not valid Python (%s)' % err.msg)
    hidden = _hidden_lines(source)
    calls = []
    for stmt in tree.body:
        if isinstance(stmt, (ast.Import, ast.ImportFrom)):
            continue
        node = stmt.value if isinstance(stmt, ast.Expr) else None
        if (isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
                and node.func.id == 'print' and len(node.args) == 1 and not node.keywords):
            node = node.args[0]
        name = None
        if isinstance(node, ast.Call):
            f = node.func
            name = f.attr if isinstance(f, ast.Attribute) else getattr(f, 'id', None)
        if name not in grading.FUNCTIONS:
            raise _source_error(grade_id, 'line %d is not a call of one of grading.%s '
                                       '(the grader reads test cells, it does not run them)'
                                       % (stmt.lineno, ', '.join(sorted(grading.FUNCTIONS))))
        if name == 'check_quiz':
            raise _source_error(grade_id, 'uses check_quiz, whose answers ship with the '
                                       'package (the self-check quiz bank): put the answer in '
                                       'hidden tests with check_choice or check_number')
        check = grading.CHECKS[name]
        try:
            bound = inspect.signature(grading.FUNCTIONS[name]).bind(*node.args, **{
                k.arg: k.value for k in node.keywords})
        except TypeError as err:
            raise _source_error(grade_id, 'line %d: %s' % (stmt.lineno, err))
        constants = {}
        expr = None
        params = inspect.signature(grading.FUNCTIONS[name]).parameters
        for key, value in bound.arguments.items():
            if key == check.student:
                expr = ast.get_source_segment(source, value)
                continue
            # **hyper: each keyword is a constant of its own
            items = value.items() if params[key].kind == params[key].VAR_KEYWORD else \
                [(key, value)]
            for k, v in items:
                try:
                    constants[k] = ast.literal_eval(v)
                except ValueError:
                    raise _source_error(grade_id, 'line %d: the argument %s of %s must be a '
                                        'literal (the grader evaluates it without running the '
                                        'notebook)' % (stmt.lineno, k, name))
        if expr is None:
            raise _source_error(grade_id, 'line %d: %s without the student\'s answer'
                                       % (stmt.lineno, name))
        calls.append(TestCall(name, expr, constants, stmt.lineno in hidden))
    if not calls:
        raise _source_error(grade_id, 'calls no check')
    return calls


def _source_error(grade_id, text):
    return AssignmentSourceError('test cell %s %s' % (grade_id, text))


class Assignment(object):
    """The instructor's notebook of one assignment, read for grading."""

    def __init__(self, name, path):
        import nbformat
        self.name, self.path = name, path
        nb = nbformat.read(path, as_version=4)
        self.cells = nb.cells
        self.metadata = nb.metadata
        self.by_id, self.tests, self.setup, self.given = {}, {}, [], set()
        for cell in nb.cells:
            meta = cell.metadata.get('nbgrader', {})
            gid = meta.get('grade_id')
            if gid:
                self.by_id[gid] = cell
            if cell.cell_type != 'code':
                continue
            if meta.get('grade'):
                self.tests[gid] = (float(meta.get('points', 0)), parse_test_cell(
                    gid, cell.source))
            elif meta.get('locked') or (gid and not meta.get('solution')):
                self.setup.append(cell.source)
            elif not meta.get('solution'):
                self.given.add(cell.source.strip())
        self._prepared = False

    def graded(self):
        """``[(grade_id, points), ...]`` in order."""
        return [(gid, pts) for gid, (pts, _calls) in self.tests.items()]

    def prepare(self):
        """Compute every check's instances (once per grading run)."""
        if not self._prepared:
            for _pts, calls in self.tests.values():
                for call in calls:
                    call.prepare()
            self._prepared = True

    def visible_source(self, grade_id):
        return _HIDDEN.sub('# (hidden tests not shown)', self.by_id[grade_id].source)


# ---------------------------------------------------------------------------------------
# Building the run

class _Cell(object):
    """A cell of the run: ``kind`` code | probe | markdown, ``role`` setup | solution |
    student | given | test | text, its ``source`` and ``grade_id``."""

    def __init__(self, kind, role, source, grade_id=None):
        self.kind, self.role, self.source, self.grade_id = kind, role, source, grade_id
        self.outputs, self.error, self.observations = [], None, None


def build_run(nb, assignment):
    """``(cells, notices)``: the run of submission ``nb`` against ``assignment``."""
    cells, notices, seen = [], [], set()
    for cell in nb.cells:
        meta = cell.metadata.get('nbgrader')
        gid = meta.get('grade_id') if isinstance(meta, dict) else None
        gid = gid if isinstance(gid, str) else None
        known = gid in assignment.by_id and gid not in seen
        if meta is not None and not known:
            kind = 'grade: true' if isinstance(meta, dict) and meta.get('grade') else \
                'nbgrader metadata'
            why = 'appears twice' if gid in seen else 'is not in the assignment'
            notices.append((str(gid or ''), 'cell %s has %s but %s: graded as an ordinary cell'
                            % (gid or '(without grade_id)', kind, why)))
        if known:
            seen.add(gid)
            source_cell = assignment.by_id[gid]
            smeta = source_cell.metadata['nbgrader']
            if gid in assignment.tests:
                cells.append(_Cell('probe', 'test', assignment.visible_source(gid), gid))
            elif source_cell.cell_type == 'markdown':
                cells.append(_Cell('markdown', 'given', source_cell.source, gid))
            elif smeta.get('solution') and not smeta.get('locked'):
                cells.append(_Cell('code', 'solution', cell.source if cell.cell_type == 'code'
                                   else '', gid))
            else:
                cells.append(_Cell('code', 'setup', source_cell.source, gid))
            continue
        if cell.cell_type == 'code':
            role = 'given' if cell.source.strip() in assignment.given else 'student'
            cells.append(_Cell('code', role, cell.source))
        else:
            cells.append(_Cell('markdown', 'text', cell.source))
    missing = [g for g in assignment.by_id if g not in seen]
    for gid in missing:  # a deleted setup or test cell comes back (setup first)
        source_cell = assignment.by_id[gid]
        if gid in assignment.tests:
            cells.append(_Cell('probe', 'test', assignment.visible_source(gid), gid))
        elif source_cell.cell_type == 'code' and not source_cell.metadata['nbgrader'].get(
                'solution'):
            cells.insert(0, _Cell('code', 'setup', source_cell.source, gid))
    return cells, notices


def plan(cells, assignment, timeout, max_output_kb):
    out = []
    for i, cell in enumerate(cells):
        if cell.kind == 'code':
            out.append({'index': i, 'kind': 'code', 'source': cell.source})
        elif cell.kind == 'probe':
            calls = assignment.tests[cell.grade_id][1]
            out.append({'index': i, 'kind': 'probe', 'probes': [
                {'check': c.check, 'expr': c.expr, 'public': c.public} for c in calls]})
    return {'timeout': timeout, 'max_output_chars': int(max_output_kb * 1024), 'cells': out}


def _read_results(data, cells):
    """Fill the cells from the runner's JSON lines (untrusted: malformed lines are skipped,
    the first record of a cell counts). Returns ``(finished, characters of output cut)``."""
    done, cut, filled = False, 0, set()
    for line in data.decode('utf-8', 'replace').splitlines():
        try:
            record = json.loads(line)
        except ValueError:
            continue
        if not isinstance(record, dict):
            continue
        if record.get('done') is True:
            done = True
            cut = record.get('cut') if isinstance(record.get('cut'), int) else 0
            continue
        i = record.get('index')
        if not isinstance(i, int) or not 0 <= i < len(cells) or i in filled:
            continue
        filled.add(i)
        cell = cells[i]
        if cell.kind == 'code':
            outputs = record.get('outputs')
            cell.outputs = outputs if isinstance(outputs, list) else []
            error = record.get('error')
            cell.error = error if isinstance(error, dict) else None
        elif cell.kind == 'probe':
            obs = record.get('observations')
            cell.observations = obs if isinstance(obs, list) else []
    return done, cut


# ---------------------------------------------------------------------------------------
# Judging

def _first_line(text, limit=1500):
    text = ' '.join(line.strip() for line in str(text).splitlines() if line.strip())
    return text if len(text) <= limit else text[:limit - 3] + '...'


def _error_message(error, timeout):
    ename = str(error.get('ename', 'Error'))
    if ename in ('Timeout', 'KeyboardInterrupt'):
        return 'timed out: the cell ran longer than %d s and was stopped (an endless loop?)' \
            % timeout
    evalue = str(error.get('evalue', ''))
    return _first_line('%s: %s' % (ename, evalue) if evalue else ename)


def _judge_call(call, observation, timeout):
    """``(passed, text)`` of one check."""
    if observation is None:
        return False, None
    if isinstance(observation, dict) and observation.get('error') == 'Timeout':
        return False, 'timed out: the test ran longer than %d s and was stopped' % timeout
    try:
        return True, grading.judge(call.check, observation, call.public, call.private,
                                   **call.constants)
    except grading.StudentError as err:
        return False, _first_line(str(err))
    except AssertionError as err:
        return False, _first_line('AssertionError: %s' % err)
    except Exception as err:  # noqa: BLE001 (malformed observations: the student's loss)
        return False, _first_line('the grader could not judge this answer (%s: %s)'
                                  % (type(err).__name__, err))


def judge_run(cells, assignment, timeout, delegation, stopped):
    """``{grade_id: (points, status, message, verdict lines)}`` for every test cell."""
    out, earlier = {}, []
    for cell in cells:
        if cell.kind == 'code':
            if cell.error and cell.role in ('solution', 'setup'):
                earlier.append('your cell %s failed first (%s)' % (
                    cell.grade_id, _error_message(cell.error, timeout)))
            continue
        if cell.kind != 'probe':
            continue
        points, calls = assignment.tests[cell.grade_id]
        lines, failure = [], None
        for k, call in enumerate(calls):
            if delegation and grading.CHECKS[call.check].implementation:
                failure = ('no points: this exercise asks for your own implementation, and '
                           'your notebook %s. Write the update yourself with nd/numpy '
                           'operations.' % delegation)
                break
            obs = cell.observations[k] if cell.observations is not None and \
                k < len(cell.observations) else None
            passed, text = _judge_call(call, obs, timeout)
            if text is None:
                failure = 'this test did not run: %s' % stopped
                break
            lines.append(text)
            if not passed:
                failure = text
                break
        if failure is None:
            out[cell.grade_id] = (points, 'passed', '', lines)
        else:
            message = '; '.join(earlier + ['then the test: ' + failure]) if earlier and \
                not failure.startswith('no points') else failure
            out[cell.grade_id] = (0.0, 'failed', message, lines + [failure])
        earlier = []
    return out


def delegation_of(cells, assignment):
    """A sentence naming the first uses of an existing implementation, or ''."""
    student = [('cell %d' % (i + 1), c.source) for i, c in enumerate(cells)
               if c.kind == 'code' and c.role in ('solution', 'student')]
    found = policy.violations(student, assignment.setup)
    if not found:
        return ''
    shown = '; '.join(str(v) for v in found[:3])
    more = ' (and %d more)' % (len(found) - 3) if len(found) > 3 else ''
    return 'delegates or uses code the grader cannot check: %s%s' % (shown, more)


# ---------------------------------------------------------------------------------------
# Feedback

_CSS = ('body{font-family:sans-serif;max-width:60em;margin:2em auto;line-height:1.4}'
        'pre{background:#f6f6f6;padding:.5em;white-space:pre-wrap;word-break:break-word}'
        '.passed{color:#1a7f37}.failed{color:#b42318}.cell{border-left:3px solid #ccc;'
        'padding-left:.8em;margin:1em 0}.test{border-color:#4c6ef5}'
        'table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:.3em .6em}')


def _image(mime, data):
    try:
        base64.b64decode(data.encode('ascii'), validate=True)
    except (binascii.Error, ValueError, UnicodeEncodeError):
        return None
    return '<img alt="figure" src="data:%s;base64,%s">' % (mime, data)


def _render_outputs(outputs):
    parts = []
    for out in outputs:
        if not isinstance(out, dict):
            continue
        if out.get('type') == 'stream':
            parts.append('<pre>%s</pre>' % html.escape(str(out.get('text', ''))))
        elif out.get('type') == 'display' and isinstance(out.get('data'), dict):
            data = out['data']
            img = None
            for mime in ('image/png', 'image/jpeg'):
                if isinstance(data.get(mime), str):
                    img = _image(mime, data[mime])
                    if img:
                        break
            parts.append(img or '<pre>%s</pre>' % html.escape(str(data.get('text/plain', ''))))
    return ''.join(parts)


def feedback_html(title, student, rows, cells, verdicts, reason=None):
    """The feedback page: a score table, then the notebook as it ran (student text, code and
    outputs escaped; test cells as their visible part with the verdicts)."""
    e = html.escape
    total = sum(r['points'] for r in rows)
    best = sum(r['max_points'] for r in rows)
    table = ''.join('<tr><td>%s</td><td>%g / %g</td><td class="%s">%s</td><td>%s</td></tr>' % (
        e(r['exercise']), r['points'], r['max_points'], e(r['status']), e(r['status']),
        e(r['message'])) for r in rows)
    body = []
    for cell in cells or []:
        if cell.kind == 'markdown':
            body.append('<div class="cell"><pre>%s</pre></div>' % e(cell.source))
        elif cell.kind == 'code':
            body.append('<div class="cell"><pre>%s</pre>%s</div>' % (
                e(cell.source), _render_outputs(cell.outputs)))
        else:
            points, status, _msg, lines = verdicts.get(cell.grade_id, (0, 'failed', '', []))
            body.append('<div class="cell test"><p><strong>Test %s</strong>: <span class="%s">'
                        '%s</span></p><pre>%s</pre>%s</div>' % (
                            e(cell.grade_id), e(status), e(status), e(cell.source),
                            ''.join('<pre>%s</pre>' % e(t) for t in lines)))
    head = '<p><strong>Not graded:</strong> %s</p>' % e(reason) if reason else ''
    return ('<!DOCTYPE html><html><head><meta charset="utf-8"><title>%s</title>'
            '<style>%s</style></head><body><h1>%s: %s</h1>%s<p>Score: %g / %g</p>'
            '<table><tr><th>exercise</th><th>score</th><th>status</th><th>message</th></tr>'
            '%s</table>%s</body></html>' % (e(title), _CSS, e(title), e(student), head, total,
                                            best, table, ''.join(body)))


# ---------------------------------------------------------------------------------------
# One submission

def grade_submission(nb, assignment, student, timeout, limits, use_sandbox, max_output_kb,
                     hide=()):
    """Grade the notebook ``nb`` (already read and within the size limits). Returns
    ``(rows, notices, html)``."""
    assignment.prepare()
    cells, notices = build_run(nb, assignment)
    delegation = delegation_of(cells, assignment)
    run_plan = plan(cells, assignment, timeout, max_output_kb)
    result = sandbox.run([sys.executable, '-m', 'gluon_opt.teaching.runner', '{fd}'],
                         json.dumps(run_plan).encode('utf-8'), limits, sandbox=use_sandbox,
                         hide=hide)
    done, cut = _read_results(result.results, cells)
    if cut:
        notices.append(('', 'outputs over the limit of %g KB (--max-output-kb): %d KB cut from '
                        'the feedback' % (max_output_kb, cut // 1024 or 1)))
    if result.timed_out:
        stopped = ('the notebook ran past --max-seconds (%g s for all its cells) and was '
                   'stopped' % limits.max_seconds)
    elif not done:
        stopped = ('the notebook ended the grading process before this test (it exited, '
                   'crashed, or went over --max-memory-mb %d)' % limits.max_memory_mb)
    else:
        stopped = 'it was not reached'
    verdicts = judge_run(cells, assignment, timeout, delegation, stopped)
    rows = []
    for gid, pts in assignment.graded():
        points, status, message, _lines = verdicts.get(
            gid, (0.0, 'failed', 'this test did not run: %s' % stopped, []))
        rows.append(dict(student=student, assignment=assignment.name, exercise=gid,
                         points=points, max_points=pts, status=status, message=message))
    page = feedback_html(assignment.name, student, rows, cells, verdicts)
    return rows, notices, page
