"""Output folders (``gluon_opt.experiments.outputs``): the tool replaces only what it wrote,
refuses every other destination in one line before any work, and marks an unfinished folder
incomplete."""
import json
import os
import shutil
import tempfile

import pytest

from gluon_opt.experiments.outputs import MARKER, Output, OutputError

# no floating-point result: the instruction set cannot change the outcome
pytestmark = pytest.mark.isa_independent


def _marker(folder):
    with open(os.path.join(str(folder), MARKER)) as f:
        return json.load(f)


def _tree(folder):
    """Every path under ``folder`` with the content of its files: what must stay untouched."""
    found = {}
    for root, dirs, names in os.walk(str(folder)):
        for name in dirs + names:
            path = os.path.join(root, name)
            rel = os.path.relpath(path, str(folder))
            found[rel] = None if os.path.isdir(path) else open(path, 'rb').read()
    return found


def _written(folder, files=('a.csv',)):
    """A folder as gluon-opt leaves it: the marker lists every file."""
    out = Output(str(folder), 'compare')
    for name in files:
        with out.open(name) as f:
            f.write('old ' + name)
    out.finish()
    return folder


def test_folder_appears_at_the_first_file_with_a_marker_that_lists_it(tmp_path):
    out = Output(str(tmp_path / 'a' / 'b'), 'compare')
    assert not (tmp_path / 'a').exists()  # checked, not created: a stopped run leaves nothing
    with out.open('history.csv') as f:
        f.write('x')
    with open(out.file('feedback/s1/ex.html'), 'w') as f:
        f.write('y')
    assert _marker(out.path)['complete'] is False
    out.finish()
    marker = _marker(out.path)
    assert marker['complete'] is True and marker['command'] == 'compare'
    assert marker['files'] == ['feedback/', 'feedback/s1/', 'feedback/s1/ex.html',
                               'history.csv']
    assert sorted(os.listdir(out.path)) == [MARKER, 'feedback', 'history.csv']


def test_an_existing_empty_folder_is_used_as_it_is(tmp_path):
    out = Output(str(tmp_path), 'bench')
    out.finish()  # nothing written yet: nothing created
    assert os.listdir(str(tmp_path)) == []
    with out.open('bench.csv') as f:
        f.write('x')
    assert sorted(os.listdir(str(tmp_path))) == [MARKER, 'bench.csv']


def test_overwrite_replaces_a_folder_gluon_opt_wrote_and_nothing_else(tmp_path):
    folder = _written(tmp_path / 'run', ('a.csv', 'plots/p.png'))
    open(str(folder / '.gluon-opt-tmp-a.csv'), 'w').close()  # a write that was cut short
    with pytest.raises(OutputError, match='already exists; choose another --out or pass '
                                          '--overwrite'):
        Output(str(folder), 'compare')
    out = Output(str(folder), 'compare', overwrite=True)
    assert (folder / 'a.csv').read_text() == 'old a.csv'  # nothing removed before a write
    with out.open('b.csv') as f:
        f.write('new')
    out.finish()
    assert sorted(os.listdir(str(folder))) == [MARKER, 'b.csv']
    assert _marker(folder)['files'] == ['b.csv']


def _precious(folder):
    folder.mkdir(parents=True, exist_ok=True)
    (folder / 'precious.txt').write_text('mine')
    (folder / 'sub').mkdir(exist_ok=True)
    (folder / 'sub' / 'notes.txt').write_text('mine too')
    return folder


def _user_file_in_marked(tmp_path):
    folder = _written(tmp_path / 'run', ('a.csv', 'plots/p.png'))
    (folder / 'plots' / 'notes.txt').write_text('mine')
    return str(folder), 'holds plots/notes.txt, which gluon-opt did not write'


def _user_folder_in_marked(tmp_path):
    folder = _written(tmp_path / 'run')
    (folder / 'empty').mkdir()
    return str(folder), 'holds empty/'


def _no_marker(tmp_path):
    return str(_precious(tmp_path / 'mine')), 'was not written by gluon-opt'


def _unreadable_marker(tmp_path):
    folder = _written(tmp_path / 'run')
    (folder / MARKER).write_text('{"tool": "gluon-opt", "files": ')
    return str(folder), 'was not written by gluon-opt'


def _a_file(tmp_path):
    (tmp_path / 'existing_file.txt').write_text('mine')
    return str(tmp_path / 'existing_file.txt'), 'is a file, not a folder'


def _under_a_file(tmp_path):
    (tmp_path / 'file.txt').write_text('mine')
    return str(tmp_path / 'file.txt' / 'out'), 'file.txt is a file, not a folder'


def _a_link(tmp_path):
    target = _written(tmp_path / 'run')
    os.symlink(str(target), str(tmp_path / 'link'))
    return str(tmp_path / 'link'), 'is a symbolic link'


REFUSED = [_user_file_in_marked, _user_folder_in_marked, _no_marker, _unreadable_marker,
           _a_file, _under_a_file, _a_link]


@pytest.mark.parametrize('make', REFUSED, ids=[f.__name__.strip('_') for f in REFUSED])
def test_overwrite_refuses_what_gluon_opt_did_not_write_and_deletes_nothing(tmp_path, make):
    path, message = make(tmp_path)
    before = _tree(tmp_path)
    with pytest.raises(OutputError) as err:
        Output(path, 'compare', overwrite=True)
    assert message in str(err.value) and '\n' not in str(err.value)
    assert _tree(tmp_path) == before


@pytest.mark.parametrize('where', ['.', '..'])
def test_the_current_directory_and_those_above_it_are_never_replaced(tmp_path, monkeypatch,
                                                                     where):
    _precious(tmp_path / 'cwd')
    monkeypatch.chdir(str(tmp_path / 'cwd'))
    before = _tree(tmp_path)
    with pytest.raises(OutputError, match='is the current directory'):
        Output(where, 'compare', overwrite=True)
    assert _tree(tmp_path) == before


def test_a_folder_that_changed_since_the_check_is_checked_again(tmp_path):
    folder = _written(tmp_path / 'run')
    out = Output(str(folder), 'compare', overwrite=True)
    (folder / 'late.txt').write_text('mine')  # the user adds a file while the run trains
    with pytest.raises(OutputError, match='holds late.txt'):
        out.file('a.csv')
    assert (folder / 'late.txt').read_text() == 'mine'


def test_writing_marks_a_folder_incomplete_when_the_work_fails(tmp_path):
    out = Output(str(tmp_path / 'grades'), 'assignment grade', option='--output')
    with pytest.raises(RuntimeError):
        with out.writing() as path:
            os.makedirs(os.path.join(path, 'feedback', 's1'))
            open(os.path.join(path, 'feedback', 's1', 'a.html'), 'w').close()
            raise RuntimeError('grading broke')
    marker = _marker(out.path)
    assert marker['complete'] is False and 'feedback/s1/a.html' in marker['files']
    Output(out.path, 'assignment grade', overwrite=True)  # so it can be replaced later


def test_unwritable_destination_is_refused(tmp_path, monkeypatch):
    real = os.access
    monkeypatch.setattr(os, 'access', lambda path, mode: False if str(path) == str(tmp_path)
                        else real(path, mode))
    with pytest.raises(OutputError, match='permission denied: cannot write in'):
        Output(str(tmp_path / 'out'), 'compare')


def _unprivileged(check):
    """``check()`` as user nobody (root ignores permissions): its message, or '' if it
    passed."""
    if os.geteuid() != 0:
        try:
            check()
        except OutputError as err:
            return str(err)
        return ''
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child only runs the check (no MXNet call) and leaves at once
        message = ''
        try:
            os.setgid(65534)
            os.setuid(65534)
            check()
        except OutputError as err:
            message = str(err)
        except BaseException as err:  # noqa: BLE001 (reported to the parent)
            message = 'crashed: %r' % err
        os.write(write, message.encode() or b'-')
        os._exit(0)
    os.close(write)
    with os.fdopen(read, 'rb') as f:
        message = f.read().decode()
    os.waitpid(pid, 0)
    return '' if message == '-' else message


def test_unwritable_destination_is_refused_for_an_unprivileged_user(tmp_path):
    top = tempfile.mkdtemp(prefix='gluon-opt-test-')  # searchable by everyone, unlike tmp_path
    try:
        os.chmod(top, 0o755)
        os.mkdir(os.path.join(top, 'locked'), 0o555)
        locked = os.path.join(top, 'locked', 'out')
        hidden = str(tmp_path / 'out')  # in a folder only its owner may search (0700)
        message = _unprivileged(lambda: Output(locked, 'compare'))
        assert 'permission denied: cannot write in' in message and 'locked' in message
        if os.geteuid() == 0:
            os.chmod(str(tmp_path), 0o700)
            message = _unprivileged(lambda: Output(hidden, 'compare'))
            assert 'cannot reach' in message and 'Permission denied' in message
    finally:
        shutil.rmtree(top)
