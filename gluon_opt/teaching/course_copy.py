"""``gluon-opt course [DIR] [--update] [--open]``: the course, copied where a learner works.

Copies the chapters (``NN_*.ipynb``) and the exercise notebooks (``NNx_*.ipynb``, the learner
versions: no solutions, no hidden tests) with the course README into ``DIR`` (default
``./gluon-opt-course``), from a checkout's ``course/`` or the installed wheel's copy
(``gluon_opt._resources``). ``--open`` then starts JupyterLab there.

A learner's notebook is never overwritten. The copy records what it wrote
(``DIR/.gluon-opt-course.json``: each file's SHA-256), so a later ``--update`` knows which
notebooks are as they were copied (those it may refresh to the installed version) and which
the learner edited: those it keeps, writing the new version beside them
(``03_momentum.new.ipynb``) and naming each. New chapters are added. Without ``--update``, a
``DIR`` that already holds files is left alone (the command says so).
"""
import glob
import hashlib
import json
import os
import shutil
import subprocess
import sys

from .. import _resources

__all__ = ['add_arguments', 'run', 'copy_course', 'CourseError', 'MANIFEST']

MANIFEST = '.gluon-opt-course.json'
_PATTERNS = ('[0-9][0-9]_*.ipynb', '[0-9][0-9]x_*.ipynb', 'README.md')


class CourseError(Exception):
    """A problem the user can fix (DIR is a file, JupyterLab missing, ...)."""


def course_files(source=None):
    """``{name: path}`` of what a learner gets, from ``source`` (default: the course of this
    installation)."""
    source = source or _resources.course_dir()
    files = {}
    for pattern in _PATTERNS:
        for path in sorted(glob.glob(os.path.join(source, pattern))):
            files[os.path.basename(path)] = path
    if not any(name.endswith('.ipynb') for name in files):
        raise CourseError('no course notebooks in %s (a broken installation? reinstall '
                          'gluon-opt)' % source)
    return files


def _digest(path):
    with open(path, 'rb') as f:
        return hashlib.sha256(f.read()).hexdigest()


def copy_course(target, update=False, source=None):
    """Copy the course into ``target``; returns ``{'copied': [...], 'updated': [...],
    'kept': [(name, new_name)], 'unchanged': [...]}`` (file names)."""
    files = course_files(source)
    if os.path.exists(target) and not os.path.isdir(target):
        raise CourseError('%s exists and is not a folder' % target)
    os.makedirs(target, exist_ok=True)
    manifest_path = os.path.join(target, MANIFEST)
    manifest = {}
    if os.path.exists(manifest_path):
        try:
            with open(manifest_path, encoding='utf-8') as f:
                manifest = dict(json.load(f).get('files', {}))
        except (ValueError, AttributeError, OSError):
            manifest = {}
    report = {'copied': [], 'updated': [], 'kept': [], 'unchanged': []}
    existing = [n for n in files if os.path.exists(os.path.join(target, n))]
    if existing and not update:
        report['unchanged'] = sorted(existing)
        return report
    for name, path in files.items():
        dst = os.path.join(target, name)
        new = _digest(path)
        if not os.path.exists(dst):
            shutil.copy(path, dst)
            report['copied'].append(name)
        else:
            mine = _digest(dst)
            if mine == new:
                report['unchanged'].append(name)
            elif manifest.get(name) == mine:  # as we copied it: the learner did not edit it
                shutil.copy(path, dst)
                report['updated'].append(name)
            else:  # edited (or not ours): keep it, put the new version beside it
                stem, ext = os.path.splitext(name)
                beside = stem + '.new' + ext
                shutil.copy(path, os.path.join(target, beside))
                report['kept'].append((name, beside))
                continue
        manifest[name] = new
    with open(manifest_path, 'w', encoding='utf-8') as f:
        json.dump({'files': manifest}, f, indent=1, sort_keys=True)
    return report


def add_arguments(parser):
    parser.add_argument('dir', nargs='?', default='gluon-opt-course',
                        help='where to put the course (default: ./gluon-opt-course)')
    parser.add_argument('--update', action='store_true',
                        help='bring a copy up to date: new chapters added, notebooks you did '
                             'not edit refreshed, edited ones kept (the new version beside '
                             'them as NAME.new.ipynb)')
    parser.add_argument('--open', action='store_true',
                        help='then start JupyterLab in that folder')


def run(args):
    report = copy_course(args.dir, update=args.update)
    if report['copied'] or report['updated'] or report['kept']:
        print('%s: %d file%s copied, %d updated' % (
            args.dir, len(report['copied']), '' if len(report['copied']) == 1 else 's',
            len(report['updated'])))
        for name, beside in report['kept']:
            print('  kept your edited %s; the new version is beside it as %s' % (name, beside))
    elif report['unchanged'] and not args.update:
        print('%s already holds the course (nothing overwritten); --update brings in new or '
              'changed chapters and keeps the notebooks you edited' % args.dir)
    else:
        print('%s is up to date' % args.dir)
    if args.open:
        try:
            import jupyterlab  # noqa: F401
        except ImportError:
            raise CourseError('JupyterLab is not installed: pip install "gluon-opt[course]", '
                              'then run: jupyter lab %s' % args.dir)
        return subprocess.call([sys.executable, '-m', 'jupyter', 'lab'], cwd=args.dir)
    print('open it with: jupyter lab %s' % args.dir)
    return 0
