"""Grading submissions written by a hostile student who knows the package (issue 18's threat
model, course/ASSIGNMENTS.md): patched checkers, an input transformer, answer-key reads,
delegation to the package's implementation, sabotage of other students' files and of the
instructor's, a process left behind, script injection, an id collision, oversized notebooks.

One ``grade`` run with the sandbox on grades every attacker beside two honest students; each
test asserts what the attacker earned (nothing it did not do) and that no other grade and no
file outside the attacker's own output changed. About 2 minutes (one sandbox per notebook).
"""
import csv
import glob
import hashlib
import os
import re
import shutil
import subprocess
import time

import nbformat
import pytest

pytest.importorskip('nbgrader')

from gluon_opt.teaching import assignment, sandbox  # noqa: E402

# no floating-point result: the instruction set cannot change the outcome
pytestmark = [pytest.mark.isa_independent,
              pytest.mark.skipif(sandbox.bwrap() is None,
                                 reason='bubblewrap (bwrap) is not installed '
                                        '(apt-get install bubblewrap; .ci/run installs it)')]

ADAPTIVE = '04x_exercises_adaptive'
NEWTON = '05x_exercises_newton'
SCRIPT = '<script>alert(1)</script>'
IMG = '<img src=x onerror=alert(2)>'
SECRET = 'TOPSECRET-7f3a'
ENV_SECRET = 'ENVSECRET-91c2'
LINGER = '31.337'  # a sleep a lingering process would still be running
_SOLUTION = re.compile(r'### BEGIN SOLUTION.*?### END SOLUTION', re.S)
_HIDDEN = re.compile(r'### BEGIN HIDDEN TESTS.*?### END HIDDEN TESTS\n?', re.S)


def _notebook(name, source_dir):
    return nbformat.read(os.path.join(source_dir, name + '.ipynb'), as_version=4)


def _blank(nb):
    """What a student receives: solutions replaced by the stub, hidden tests removed."""
    for cell in nb.cells:
        cell.source = _HIDDEN.sub('', _SOLUTION.sub('raise NotImplementedError()', cell.source))
    return nb


def _cell(nb, grade_id):
    return next(c for c in nb.cells if c.metadata.get('nbgrader', {}).get('grade_id') == grade_id)


def _after_setup(nb, *sources):
    nb.cells[2:2] = [nbformat.v4.new_code_cell(s) for s in sources]
    return nb


def _before(nb, grade_id, source):
    """``source`` as a new cell just before the cell ``grade_id`` (after the stubs it
    would otherwise be overwritten by)."""
    nb.cells.insert(nb.cells.index(_cell(nb, grade_id)), nbformat.v4.new_code_cell(source))
    return nb


def _tree_digest(root):
    out = {}
    for path in sorted(glob.glob(os.path.join(root, '**'), recursive=True)):
        if os.path.isfile(path):
            with open(path, 'rb') as f:
                out[os.path.relpath(path, root)] = hashlib.sha256(f.read()).hexdigest()
    return out


def _attackers(tmp, src, course):
    """``{student: (assignment, notebook)}``."""
    honest_a = os.path.join(course, 'submitted', 'honest_a', NEWTON, NEWTON + '.ipynb')
    gradebook = os.path.join(course, 'gradebook.db')
    output = str(tmp / 'grades')
    new = {}
    new['patcher'] = (NEWTON, _after_setup(
        _blank(_notebook(NEWTON, src)),
        "grading.check_newton_step = lambda *a, **k: 'PASS'\n"
        "grading.check_choice = lambda *a, **k: 'PASS'"))
    new['fake_grading'] = (NEWTON, _after_setup(
        _blank(_notebook(NEWTON, src)),
        "class _Any:\n    def __getattr__(self, name):\n"
        "        return lambda *a, **k: 'PASS'\ngrading = _Any()"))
    new['transformer'] = (NEWTON, _after_setup(
        _blank(_notebook(NEWTON, src)),
        "get_ipython().input_transformers_cleanup.append(lambda lines: ['pass\\n'])"))
    new['key_reader'] = (NEWTON, _before(
        _blank(_notebook(NEWTON, src)), 'ex05-newton-test',
        "import glob, os, json\n"
        "paths = [%r, '../../../source/%s/%s.ipynb'] + glob.glob('../../../source/*/*.ipynb')\n"
        "paths += glob.glob(os.path.join(os.path.dirname(grading.__file__), '..', '..',\n"
        "                                'course', '*.ipynb'))\n"
        "found = [p for p in paths if os.path.exists(p)]\n"
        "print('found:', len(found))\n"
        "for p in found:\n"
        "    for c in json.load(open(p))['cells']:\n"
        "        if 'BEGIN SOLUTION' in ''.join(c['source']):\n"
        "            exec(''.join(c['source']))" % (os.path.join(src, NEWTON + '.ipynb'),
                                                    NEWTON, NEWTON)))
    nb = _notebook(ADAPTIVE, src)
    _cell(nb, 'ex04-bias-correction').source = (
        'from gluon_opt.optimizers.base import bias_corrections\n'
        'def bias_correct(m, v, beta1, beta2, t):\n'
        '    bc1, bc2 = bias_corrections(beta1, beta2, t)\n    return m / bc1, v / bc2')
    _cell(nb, 'ex04-rmsprop').source = (
        '@mx.optimizer.Optimizer.register\nclass MyRMSprop(GluonOptOptimizer):\n'
        '    state_names = ("square_avg",)\n'
        '    def __init__(self, **kwargs):\n'
        '        self.inner = mx.optimizer.create("rmsprop", **kwargs)\n'
        '        super().__init__(**kwargs)\n'
        '    def step(self, weight, grad, state, lr, wd, t):\n'
        '        pass')
    _cell(nb, 'ex04-adam').source = (
        '@mx.optimizer.Optimizer.register\nclass MyAdam(gluon_opt.optimizers.Adam):\n    pass')
    new['delegator'] = (ADAPTIVE, nb)
    new['saboteur'] = (NEWTON, _after_setup(
        _blank(_notebook(NEWTON, src)),
        "import os, glob\n"
        "for target in [%r, %r, %r]:\n"
        "    try:\n"
        "        open(target, 'w').write('{}')\n"
        "        print('wr' + 'ote:', target)\n"
        "    except OSError as err:\n"
        "        print('re' + 'fused:', type(err).__name__)\n"
        "for p in ['/proc/1/cmdline', '/proc/1/environ'] + glob.glob('/proc/*/environ'):\n"
        "    try:\n"
        "        print(p, open(p, 'rb').read()[:2000])\n"
        "    except OSError:\n"
        "        pass\n"
        "print(dict(os.environ))\n"
        "for p in [%r, os.path.expanduser('~/.bashrc'), '/etc/passwd']:\n"
        "    try:\n"
        "        print(open(p).read())\n"
        "    except OSError as err:\n"
        "        print('no', p)" % (honest_a, gradebook, os.path.join(src, NEWTON + '.ipynb'),
                                    str(tmp / 'secret.txt'))))
    new['lingerer'] = (NEWTON, _after_setup(
        _blank(_notebook(NEWTON, src)),
        "import subprocess, os\n"
        "subprocess.Popen(['setsid', 'sh', '-c', 'sleep 2.5; echo 0 > %s/scores.csv'])\n"
        "subprocess.Popen(['setsid', 'sleep', '%s'])\n"
        "if os.fork() == 0:\n"
        "    os.setsid()\n"
        "    import time\n"
        "    time.sleep(2.5)\n"
        "    open(%r, 'w').write('hacked')\n"
        "    os._exit(0)" % (output, LINGER, os.path.join(output, 'scores.csv'))))
    honest = _notebook(NEWTON, src)
    crasher = _notebook(NEWTON, src)
    crasher.cells.insert(3, nbformat.v4.new_code_cell('import os\nos._exit(3)'))
    new['crasher'] = (NEWTON, crasher)
    hog = _notebook(NEWTON, src)
    hog.cells.insert(2, nbformat.v4.new_code_cell('x = bytearray(64 * 1024 ** 3)'))
    new['memory_hog'] = (NEWTON, hog)
    hostile = _notebook(ADAPTIVE, src)
    code = nbformat.v4.new_code_cell
    hostile.cells[1:1] = [
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
    new['José'] = (ADAPTIVE, hostile)
    new['many_cells'] = (ADAPTIVE, nbformat.v4.new_notebook(
        cells=[code('') for _ in range(1001)], metadata=honest.metadata))
    new['huge'] = (ADAPTIVE, nbformat.v4.new_notebook(cells=[code('#' * 600000)],
                                                      metadata=honest.metadata))
    return new


@pytest.fixture(scope='module')
def graded(tmp_path_factory):
    tmp = tmp_path_factory.mktemp('hostile')
    src = str(tmp / 'source')
    os.makedirs(src)
    for name in (ADAPTIVE, NEWTON):
        shutil.copy(assignment.exercise_notebooks()[name], src)
    (tmp / 'secret.txt').write_text(SECRET)
    # a real nbgrader course directory: config, gradebook, source, two honest submissions
    course = str(tmp / 'course')
    os.makedirs(os.path.join(course, 'source', NEWTON))
    shutil.copy(os.path.join(src, NEWTON + '.ipynb'), os.path.join(course, 'source', NEWTON))
    with open(os.path.join(course, 'nbgrader_config.py'), 'w') as f:
        f.write('c = get_config()  # the instructor\'s own\n')
    with open(os.path.join(course, 'gradebook.db'), 'wb') as f:
        f.write(b'SQLite format 3\x00 the instructor\'s gradebook')
    folders = []
    for student in ('honest_a', 'honest_b'):
        folder = os.path.join(course, 'submitted', student, NEWTON)
        os.makedirs(folder)
        shutil.copy(os.path.join(src, NEWTON + '.ipynb'), folder)
        folders.append(os.path.dirname(folder))
    for student, (name, nb) in _attackers(tmp, src, course).items():
        (tmp / 'attack' / student).mkdir(parents=True)
        nbformat.write(nb, str(tmp / 'attack' / student / (name + '.ipynb')))
        folders.append(str(tmp / 'attack' / student))
    before = {'course': _tree_digest(course), 'source': _tree_digest(src),
              'attack': _tree_digest(str(tmp / 'attack'))}
    os.environ['GLUON_OPT_TEST_SECRET'] = ENV_SECRET
    try:
        start = time.time()
        rows = assignment.grade(folders, output=str(tmp / 'grades'), source_dir=src,
                                course_dir=course, timeout=60, max_seconds=240,
                                max_notebook_mb=0.5, max_output_kb=64, max_memory_mb=4096)
        seconds = time.time() - start
    finally:
        del os.environ['GLUON_OPT_TEST_SECRET']
    with open(str(tmp / 'grades' / 'scores.csv'), 'rb') as f:
        scores_bytes = f.read()
    time.sleep(4)  # past the lingering processes' 2.5 s
    return dict(rows=rows, out=tmp / 'grades', tmp=tmp, course=course, src=src,
                before=before, scores=scores_bytes, seconds=seconds, folders=folders)


def _points(g, student):
    rows = [r for r in g['rows'] if r['student'] == student and r['status'] != 'notice']
    return sum(r['points'] for r in rows), {r['exercise']: r for r in rows}


def _feedback(g, student, name=NEWTON):
    with open(str(g['out'] / 'feedback' / student / (name + '.html')), encoding='utf-8') as f:
        return f.read()


def test_honest_students_get_full_marks_beside_the_attackers(graded):
    for student in ('honest_a', 'honest_b', 'memory_hog'):
        got, rows = _points(graded, student)
        assert got == 4, (student, rows)


@pytest.mark.parametrize('student', ['patcher', 'fake_grading', 'transformer'])
def test_patching_the_checks_in_the_kernel_earns_nothing(graded, student):
    got, rows = _points(graded, student)
    assert got == 0, rows
    # the test cells never run in the student's kernel, so the patch changes nothing; the
    # code that patches is also reported (it reaches into the checkers)
    message = rows['ex05-newton-test']['message']
    assert 'NotImplementedError' in message or 'own implementation' in message, message
    # (the transformer turns the student's own answer cells into `pass`: a NameError)
    assert re.search('NotImplementedError|NameError', rows['ex05-quadratic-test']['message'])


def test_answer_keys_are_not_readable_from_the_sandbox(graded):
    got, rows = _points(graded, 'key_reader')
    assert got == 0, rows
    assert 'found: 0' in _feedback(graded, 'key_reader')


def test_delegating_to_the_package_earns_nothing_and_says_so(graded):
    got, rows = _points(graded, 'delegator')
    assert got == 1, rows  # the multiple-choice answer, which is its own work
    for exercise, named in (('ex04-bias-correction-test', 'bias_corrections'),
                            ('ex04-rmsprop-test', 'mxnet.optimizer.create'),
                            ('ex04-adam-test', 'gluon_opt.optimizers.Adam')):
        message = rows[exercise]['message']
        assert rows[exercise]['points'] == 0 and 'your own implementation' in message, message
        assert named in message or 'more' in message, message


def test_sabotage_changes_no_file_and_leaks_nothing(graded):
    got, _ = _points(graded, 'saboteur')
    assert got == 0
    page = _feedback(graded, 'saboteur')
    assert 'wrote:' not in page and page.count('refused:') == 3
    for secret in (SECRET, ENV_SECRET, 'test_assignment_hostile', 'root:x:0'):
        assert secret not in page, secret
    assert _tree_digest(graded['course']) == graded['before']['course']
    assert _tree_digest(graded['src']) == graded['before']['source']
    assert _tree_digest(str(graded['tmp'] / 'attack')) == graded['before']['attack']


def test_no_process_outlives_its_grading(graded):
    with open(str(graded['out'] / 'scores.csv'), 'rb') as f:
        assert f.read() == graded['scores']
    ps = subprocess.run(['ps', '-eo', 'args'], stdout=subprocess.PIPE, text=True).stdout
    assert LINGER not in ps
    assert _points(graded, 'lingerer')[0] == 0


def test_a_crashing_notebook_is_reported(graded):
    got, rows = _points(graded, 'crasher')
    assert got == 0
    assert 'ended the grading process' in rows['ex05-quadratic-test']['message']


def test_feedback_escapes_student_html_and_hides_hidden_tests(graded):
    page = _feedback(graded, 'José', ADAPTIVE)
    for needle in (SCRIPT, IMG, '<svg onload=alert(3)>'):
        assert needle not in page
    assert '&lt;script&gt;alert(1)&lt;/script&gt;' in page
    assert 'BEGIN HIDDEN TESTS' not in page and "seeds=(2, 3)" not in page
    assert '(hidden tests not shown)' in page


def test_invented_graded_cell_is_reported_and_the_honest_rest_graded(graded):
    got, rows = _points(graded, 'José')
    assert got == 9, rows
    notices = [r for r in graded['rows'] if r['student'] == 'José' and r['status'] == 'notice']
    assert any('ex04-x has grade: true but is not in the assignment' in r['message']
               for r in notices), notices


def test_output_flood_is_cut_in_the_feedback(graded):
    page = _feedback(graded, 'José', ADAPTIVE)
    assert len(page) < 200000
    assert any('--max-output-kb' in r['message'] for r in graded['rows']
               if r['student'] == 'José' and r['status'] == 'notice')


def test_limits_refuse_huge_notebooks_before_running_them(graded):
    for student, limit in (('many_cells', '--max-cells'), ('huge', '--max-notebook-mb')):
        rows = [r for r in graded['rows'] if r['student'] == student]
        assert rows and all(r['status'] == 'invalid' and limit in r['message'] for r in rows)


def test_student_id_collision_is_an_error_naming_both_folders(tmp_path):
    for name in ('Jo sé', 'Jo_sé'):
        (tmp_path / name).mkdir()
        shutil.copy(assignment.exercise_notebooks()[NEWTON], str(tmp_path / name))
    with pytest.raises(assignment.AssignmentError, match='both give the student id'):
        assignment.grade([str(tmp_path / 'Jo sé'), str(tmp_path / 'Jo_sé')],
                         output=str(tmp_path / 'grades'))
    assert not (tmp_path / 'grades' / 'scores.csv').exists()


def test_without_bubblewrap_grading_refuses_unless_told(tmp_path, monkeypatch):
    monkeypatch.setattr(sandbox, 'bwrap', lambda: None)
    with pytest.raises(assignment.AssignmentError, match='--no-sandbox'):
        assignment.grade([assignment.exercise_notebooks()[NEWTON]], student='x',
                         output=str(tmp_path / 'grades'))


def test_scores_table_lists_every_student(graded):
    with open(str(graded['out'] / 'scores.csv'), newline='', encoding='utf-8') as f:
        students = {r['student'] for r in csv.DictReader(f)}
    assert {'honest_a', 'honest_b', 'patcher', 'delegator', 'saboteur', 'José'} <= students
