"""The classroom pipeline end to end, with the real nbgrader: release the student version,
then autograde one batch of submissions (the instructor's notebooks, the released ones left
blank, a planted typical mistake, a raising cell, an endless loop, a file that is not a
notebook) in a single `grade` run, as an instructor would.

nbgrader starts one kernel per notebook, so this file takes about a minute; everything is
computed once (module fixtures) and the tests read the results.
"""
import csv
import glob
import os
import shutil

import nbformat
import pytest

pytest.importorskip('nbgrader')

from gluon_opt.teaching import assignment  # noqa: E402

SOURCE = assignment.DEFAULT_SOURCE
ADAPTIVE = '04x_exercises_adaptive'
# Small, so the endless loop costs little, yet several times the slowest legitimate cell
# (the MLP training of 02x, a few seconds; up to ~15 s on a heavily loaded 2-core machine).
TIMEOUT = 40


def _source_cell(nb, grade_id):
    for cell in nb.cells:
        if cell.metadata.get('nbgrader', {}).get('grade_id') == grade_id:
            return cell
    raise KeyError(grade_id)


def _variant(tmp, student, edit):
    """The instructor's adaptive-methods notebook with ``edit(nb)`` applied, saved as
    ``tmp/student/04x_exercises_adaptive.ipynb`` (outputs cleared, as a student's would
    differ anyway)."""
    nb = nbformat.read(os.path.join(SOURCE, ADAPTIVE + '.ipynb'), as_version=4)
    edit(nb)
    folder = tmp / student
    folder.mkdir()
    path = folder / (ADAPTIVE + '.ipynb')
    nbformat.write(nb, str(path))
    return str(path)


def _no_bias_correction(nb):
    cell = _source_cell(nb, 'ex04-adam')
    line = 'm_hat, v_hat = bias_correct(mean, var, self.beta1, self.beta2, t)'
    assert line in cell.source
    cell.source = cell.source.replace(line, 'm_hat, v_hat = mean, var')


def _raises_and_loops(nb):
    """Two failures in one notebook: a solution cell that raises, and an answer cell that
    never ends."""
    cell = _source_cell(nb, 'ex04-bias-correction')
    cell.source = 'import a_module_that_does_not_exist\n' + cell.source
    cell = _source_cell(nb, 'ex04-first-step')
    cell.source = 'while True:\n    pass\n' + cell.source


@pytest.fixture(scope='module')
def released(tmp_path_factory):
    out = tmp_path_factory.mktemp('release')
    return assignment.release(str(out / 'release'), course_dir=str(out / 'course'))


@pytest.fixture(scope='module')
def graded(released, tmp_path_factory):
    tmp = tmp_path_factory.mktemp('submissions')
    instructor = tmp / 'instructor'
    instructor.mkdir()
    for path in assignment.exercise_notebooks().values():
        shutil.copy(path, str(instructor))
    blank = tmp / 'blank'
    blank.mkdir()
    for paths in released.values():
        for path in paths:
            shutil.copy(path, str(blank))
    planted = _variant(tmp, 'no_bias_correction', _no_bias_correction)
    broken_code = _variant(tmp, 'raises_and_loops', _raises_and_loops)
    (tmp / 'not_json').mkdir()
    broken = tmp / 'not_json' / (ADAPTIVE + '.ipynb')
    broken.write_text('{"cells": [ this is not JSON')
    stray = tmp / 'not_json' / 'my_essay.ipynb'
    stray.write_text('{}')
    out = tmp / 'grades'
    rows = assignment.grade([str(instructor), str(blank), planted, broken_code,
                             str(broken), str(stray)], output=str(out), timeout=TIMEOUT,
                            course_dir=str(tmp / 'course'))
    return rows, out


def _scores(rows, student, assignment_id=ADAPTIVE):
    return {r['exercise']: r for r in rows
            if r['student'] == student and r['assignment'] == assignment_id}


def _max(assignment_id):
    return dict(assignment.graded_cells(assignment.exercise_notebooks()[assignment_id]))


def test_course_has_enough_graded_exercises():
    cells = [c for p in assignment.exercise_notebooks().values()
             for c in assignment.graded_cells(p)]
    assert len(cells) >= 8
    assert all(points > 0 for _, points in cells)


def test_learner_versions_in_course_are_the_released_notebooks(released):
    course = os.path.dirname(SOURCE)
    for name, paths in released.items():
        for path in paths:
            mine = nbformat.read(os.path.join(course, os.path.basename(path)), as_version=4)
            theirs = nbformat.read(path, as_version=4)
            assert [(c.cell_type, c.source) for c in mine.cells] == \
                [(c.cell_type, c.source) for c in theirs.cells], (
                    '%s differs from what release makes of course/instructor/: run '
                    'python course/build.py %s' % (os.path.basename(path), name[:3]))
            assert all(not c.get('outputs') for c in mine.cells if c.cell_type == 'code')


def test_release_removes_solutions_and_hidden_tests(released):
    assert sorted(released) == sorted(assignment.exercise_notebooks())
    for assignment_id, paths in released.items():
        assert len(paths) == 1
        student = nbformat.read(paths[0], as_version=4)
        instructor = nbformat.read(assignment.exercise_notebooks()[assignment_id],
                                   as_version=4)
        text = '\n'.join(c.source for c in student.cells)
        for marker in ('BEGIN SOLUTION', 'END SOLUTION', 'BEGIN HIDDEN TESTS'):
            assert marker not in text, (assignment_id, marker)
        for cell in instructor.cells:
            meta = cell.metadata.get('nbgrader', {})
            if meta.get('solution'):
                solution = cell.source.split('### BEGIN SOLUTION')[1].split(
                    '### END SOLUTION')[0]
                for line in solution.strip().splitlines():
                    assert line.strip() not in text, (assignment_id, line)
                released_cell = _source_cell(student, meta['grade_id'])
                assert 'raise NotImplementedError()' in released_cell.source
        assert all(not c.get('outputs') for c in student.cells if c.cell_type == 'code')


def test_scores_csv_has_one_row_per_student_and_exercise(graded):
    rows, out = graded
    with open(str(out / 'scores.csv'), newline='') as f:
        written = list(csv.DictReader(f))
    assert tuple(written[0]) == assignment.SCORE_FIELDS
    assert len(written) == len(rows)
    n_exercises = sum(len(_max(a)) for a in assignment.exercise_notebooks())
    assert len([r for r in written if r['student'] == 'instructor']) == n_exercises


def test_instructor_version_gets_full_marks(graded):
    rows, out = graded
    for assignment_id in assignment.exercise_notebooks():
        scores = _scores(rows, 'instructor', assignment_id)
        assert {k: r['points'] for k, r in scores.items()} == _max(assignment_id), \
            [r['message'] for r in scores.values()]
        assert os.path.exists(str(out / 'feedback' / 'instructor' / (assignment_id + '.html')))


def test_blank_student_version_fails_every_exercise_with_not_implemented(graded):
    rows, _ = graded
    for assignment_id in assignment.exercise_notebooks():
        scores = _scores(rows, 'blank', assignment_id)
        assert set(scores) == set(_max(assignment_id))
        for exercise, r in scores.items():
            assert r['points'] == 0, exercise
            assert 'NotImplementedError' in r['message'], (exercise, r['message'])


def test_missing_bias_correction_loses_exactly_adams_points(graded):
    rows, out = graded
    scores = _scores(rows, 'no_bias_correction')
    full = _max(ADAPTIVE)
    assert scores['ex04-adam-test']['points'] == 0
    assert 'bias correction' in scores['ex04-adam-test']['message']
    assert {k: r['points'] for k, r in scores.items() if k != 'ex04-adam-test'} == \
        {k: v for k, v in full.items() if k != 'ex04-adam-test'}
    feedback = (out / 'feedback' / 'no_bias_correction' / (ADAPTIVE + '.html')).read_text()
    assert 'missing bias correction' in feedback
    assert scores['ex04-adam-test']['message'].startswith(
        'AssertionError: myadam does not update the weights as gluon_opt.adam does: likely '
        'cause, missing bias correction.')


def test_raising_cell_and_endless_loop_cost_only_the_exercises_they_break(graded):
    rows, _ = graded
    scores = _scores(rows, 'raises_and_loops')
    # bias_correct is never defined: its exercise and Adam (which calls it) score zero
    for exercise in ('ex04-bias-correction-test', 'ex04-adam-test'):
        assert scores[exercise]['points'] == 0
    assert 'ModuleNotFoundError' in scores['ex04-bias-correction-test']['message']
    assert "'bias_correct' is not defined" in scores['ex04-adam-test']['message']
    # the endless loop is stopped after the timeout; only its exercise scores zero
    looped = scores['ex04-first-step-test']
    assert looped['points'] == 0
    assert 'timed out' in looped['message'] and '%d s' % TIMEOUT in looped['message']
    assert scores['ex04-rmsprop-test']['points'] == _max(ADAPTIVE)['ex04-rmsprop-test']


def test_file_that_is_not_a_notebook_scores_zero_with_a_clear_message(graded):
    rows, out = graded
    scores = _scores(rows, 'not_json')
    assert set(scores) == set(_max(ADAPTIVE))
    for r in scores.values():
        assert r['points'] == 0 and r['status'] == 'invalid'
        assert 'not valid JSON' in r['message']
    assert (out / 'feedback' / 'not_json' / (ADAPTIVE + '.html')).exists()
    stray = [r for r in rows if r['student'] == 'not_json' and r['status'] == 'unmatched']
    assert len(stray) == 1 and 'my_essay.ipynb' in stray[0]['message']


def test_command_line_errors_are_one_line(capsys, tmp_path):
    status = assignment.main(['grade', str(tmp_path / 'missing.ipynb'),
                              '--output', str(tmp_path / 'out')])
    assert status == 2
    assert 'no such file' in capsys.readouterr().err
