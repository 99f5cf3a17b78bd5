"""Grading submissions written to game the grader or to harm whoever reads the feedback:
HTML and script in outputs and markdown, an invented graded cell, floods of output, huge
notebooks, student folders whose names collide. One `grade` run, one kernel (about 20 s)."""
import os

import nbformat
import pytest

pytest.importorskip('nbgrader')

from gluon_opt.teaching import assignment  # noqa: E402

ADAPTIVE = '04x_exercises_adaptive'
SCRIPT = '<script>alert(1)</script>'
IMG = '<img src=x onerror=alert(2)>'


def _hostile(nb):
    """The honest instructor notebook with hostile additions after its first cell."""
    code = nbformat.v4.new_code_cell
    added = [
        code('from IPython.display import HTML, display\n'
             'print(%r)\ndisplay(HTML(%r))' % (SCRIPT, IMG)),
        nbformat.v4.new_markdown_cell('My answer ' + SCRIPT),
        nbformat.v4.new_raw_cell(SCRIPT, metadata={'raw_mimetype': 'text/html'}),
        code('display({"image/png": %r}, raw=True)' % ('"><svg onload=alert(3)>',)),
        code('print("x" * 300000)'),
        code('assert False', metadata={'nbgrader': {
            'grade': True, 'grade_id': 'ex04-x', 'points': 100, 'locked': False,
            'solution': False, 'schema_version': 3}}),
    ]
    nb.cells[1:1] = added


@pytest.fixture(scope='module')
def graded(tmp_path_factory):
    tmp = tmp_path_factory.mktemp('hostile')
    nb = nbformat.read(assignment.exercise_notebooks()[ADAPTIVE], as_version=4)
    _hostile(nb)
    for student, cells in (('José', nb.cells), ('many_cells', [nbformat.v4.new_code_cell(
            '') for _ in range(1001)]), ('huge', [nbformat.v4.new_code_cell('#' * 600000)])):
        (tmp / student).mkdir()
        nbformat.write(nbformat.v4.new_notebook(cells=cells, metadata=nb.metadata),
                       str(tmp / student / (ADAPTIVE + '.ipynb')))
    out = tmp / 'grades'
    rows = assignment.grade([str(tmp / s) for s in ('José', 'many_cells', 'huge')],
                            output=str(out), timeout=60, max_notebook_mb=0.5,
                            max_output_kb=64, course_dir=str(tmp / 'course'))
    return rows, out


def _rows(rows, student):
    return [r for r in rows if r['student'] == student]


def test_feedback_escapes_student_html_and_hides_hidden_tests(graded):
    rows, out = graded
    page = (out / 'feedback' / 'José' / (ADAPTIVE + '.html')).read_text(encoding='utf-8')
    # the strings appear only escaped (in the code as typed, in the printed output)
    assert SCRIPT not in page and IMG not in page and '<svg onload' not in page
    assert '&lt;script&gt;alert(1)' in page
    source = nbformat.read(assignment.exercise_notebooks()[ADAPTIVE], as_version=4)
    hidden = [c.source for c in source.cells if 'BEGIN HIDDEN TESTS' in c.source]
    assert hidden
    assert 'BEGIN HIDDEN TESTS' not in page and 'hidden tests not shown' in page


def test_invented_graded_cell_is_reported_and_the_honest_rest_graded(graded):
    rows, _ = graded
    mine = _rows(rows, 'José')
    full = dict(assignment.graded_cells(assignment.exercise_notebooks()[ADAPTIVE]))
    assert {r['exercise']: r['points'] for r in mine if r['status'] != 'notice'} == full
    notices = [r['message'] for r in mine if r['status'] == 'notice']
    assert any('cell ex04-x has grade: true but is not in the assignment' in m
               for m in notices), notices


def test_output_flood_is_cut_in_the_feedback(graded):
    rows, out = graded
    assert any('--max-output-kb' in r['message'] for r in _rows(rows, 'José'))
    page = out / 'feedback' / 'José' / (ADAPTIVE + '.html')
    assert page.stat().st_size < 1_000_000
    assert 'output cut' in page.read_text(encoding='utf-8')


def test_limits_refuse_huge_notebooks_before_running_them(graded):
    rows, _ = graded
    for student, option in (('many_cells', '--max-cells'), ('huge', '--max-notebook-mb')):
        mine = _rows(rows, student)
        assert mine and all(r['status'] == 'invalid' and r['points'] == 0 for r in mine)
        assert all(option in r['message'] for r in mine), mine[0]['message']


def test_student_id_collision_is_an_error_naming_both_folders(tmp_path):
    notebooks = assignment.exercise_notebooks()
    for name in ('Jos\u00e8', 'Jos\u00e9', 'Jose\u0301'):  # the last is José decomposed
        (tmp_path / name).mkdir()
    jobs, _ = assignment.collect_submissions(
        [str(tmp_path / 'Jos\u00e8'), str(tmp_path / 'Jos\u00e9')], notebooks)
    with pytest.raises(assignment.AssignmentError) as err:
        assignment.collect_submissions(
            [str(tmp_path / 'Jos\u00e9'), str(tmp_path / 'Jose\u0301')], notebooks)
    assert 'Jos\u00e9' in str(err.value) and 'Jose\u0301' in str(err.value)
    assert 'nothing was graded' in str(err.value)
