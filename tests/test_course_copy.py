"""gluon-opt course: the learner's copy of the course, never overwriting what they edited."""
import json
import os
import subprocess
import sys

import pytest

from gluon_opt.teaching import course_copy

# no floating-point result: the instruction set cannot change the outcome
pytestmark = pytest.mark.isa_independent


@pytest.fixture()
def source(tmp_path):
    src = tmp_path / 'src'
    src.mkdir()
    for name in ('01_intro.ipynb', '02x_exercises.ipynb', 'README.md'):
        (src / name).write_text('{"v": 1, "name": "%s"}' % name)
    (src / 'instructor').mkdir()
    (src / 'instructor' / '02x_exercises.ipynb').write_text('solutions')
    return src


def test_first_copy_takes_chapters_and_learner_exercises_only(tmp_path, source):
    out = tmp_path / 'course'
    report = course_copy.copy_course(str(out), source=str(source))
    assert sorted(report['copied']) == ['01_intro.ipynb', '02x_exercises.ipynb', 'README.md']
    assert not (out / 'instructor').exists()
    assert json.loads((out / course_copy.MANIFEST).read_text())['files']


def test_an_edited_notebook_is_kept_and_the_new_version_put_beside_it(tmp_path, source):
    out = tmp_path / 'course'
    course_copy.copy_course(str(out), source=str(source))
    (out / '01_intro.ipynb').write_text('my notes')          # the learner edits one
    for name in ('01_intro.ipynb', '02x_exercises.ipynb'):    # the course changes two
        (source / name).write_text('{"v": 2}')
    (source / '03_new.ipynb').write_text('{"v": 2}')          # and gains a chapter
    again = course_copy.copy_course(str(out), source=str(source))
    assert again['copied'] == [] and again['updated'] == []   # without --update: nothing
    assert (out / '01_intro.ipynb').read_text() == 'my notes'
    report = course_copy.copy_course(str(out), update=True, source=str(source))
    assert report['copied'] == ['03_new.ipynb']
    assert report['updated'] == ['02x_exercises.ipynb']
    assert report['kept'] == [('01_intro.ipynb', '01_intro.new.ipynb')]
    assert (out / '01_intro.ipynb').read_text() == 'my notes'
    assert (out / '01_intro.new.ipynb').read_text() == '{"v": 2}'


def test_command_copies_this_installations_course(tmp_path):
    out = tmp_path / 'c'
    proc = subprocess.run([sys.executable, '-m', 'gluon_opt', 'course', str(out)],
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    assert proc.returncode == 0, proc.stdout
    names = os.listdir(str(out))
    assert '01_what_is_an_optimizer.ipynb' in names and '04x_exercises_adaptive.ipynb' in names
    text = (out / '04x_exercises_adaptive.ipynb').read_text()
    assert 'BEGIN SOLUTION' not in text and 'HIDDEN TESTS' not in text
    again = subprocess.run([sys.executable, '-m', 'gluon_opt', 'course', str(out)],
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    assert again.returncode == 0 and 'nothing overwritten' in again.stdout
