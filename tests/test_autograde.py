"""gluon_opt.teaching.autograde without a sandbox: how test cells are read, and that nothing
the instructor keeps (hidden tests, expected answers, reference results) goes into the run
the student's code sees."""
import json

import nbformat
import pytest

from gluon_opt.teaching import assignment, autograde


def test_a_test_cell_is_read_not_run():
    calls = autograde.parse_test_cell('t', (
        "print(grading.check_choice(answer_q))\n"
        "### BEGIN HIDDEN TESTS\n"
        "print(grading.check_choice(answer_q, 'b', explanation='because'))\n"
        "grading.check_learning_rate(lr, optimizer='gluon_opt.adam', target=0.7, seed=1)\n"
        "### END HIDDEN TESTS\n"))
    assert [(c.check, c.expr, c.hidden) for c in calls] == [
        ('check_choice', 'answer_q', False), ('check_choice', 'answer_q', True),
        ('check_learning_rate', 'lr', True)]
    assert calls[1].constants['expected'] == 'b'
    assert calls[2].constants == {'optimizer': 'gluon_opt.adam', 'target': 0.7, 'seed': 1}


@pytest.mark.parametrize('source,why', [
    ("print(grading.check_quiz('ch03-nesterov', answer))", 'ship with the package'),
    ("import os\nos.system('x')", 'is not a call of one of grading'),
    ("print(grading.check_choice(answer, EXPECTED))", 'must be a literal'),
    ("x = 1", 'is not a call'),
])
def test_a_test_cell_the_grader_cannot_read_is_refused_by_name(source, why):
    with pytest.raises(autograde.AssignmentSourceError, match='test cell ex-1 .*' + why):
        autograde.parse_test_cell('ex-1', source)


@pytest.mark.parametrize('name', sorted(assignment.exercise_notebooks()))
def test_the_run_holds_no_hidden_test_expected_answer_or_reference_result(name):
    path = assignment.exercise_notebooks()[name]
    graded = autograde.Assignment(name, path)
    graded.prepare()
    nb = nbformat.read(path, as_version=4)  # the instructor's own notebook as a submission
    cells, _ = autograde.build_run(nb, graded)
    plan = json.dumps(autograde.plan(cells, graded, 60, 64))
    assert 'HIDDEN TESTS' not in plan
    for _points, calls in graded.tests.values():
        for call in calls:
            for key in ('expected', 'explanation', 'reference'):
                value = call.constants.get(key)
                if isinstance(value, str) and len(value) > 2:
                    assert json.dumps(value) not in plan, (name, key, value)
            private = json.dumps(call.private, default=lambda a: a.tolist())
            if call.private is not None and len(private) > 40:
                assert private[:40] not in plan
