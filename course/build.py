"""Re-execute the course notebooks and save them with their outputs (what nbval compares).

    python course/build.py                 # every notebook, in order
    python course/build.py 03 10           # only those whose name starts with 03 or 10

The chapters are ``course/NN_*.ipynb``; the exercise notebooks are executed in their instructor
version, ``course/instructor/NNx_*.ipynb`` (solutions, hidden tests), after which their learner
version ``course/NNx_*.ipynb`` (no solutions, no hidden tests, no outputs: what
``gluon-opt assignment release`` hands out) is regenerated from it.

Each notebook runs top to bottom in a fresh kernel, with the working directory ``course/``
and the repository root on ``PYTHONPATH`` (so an uninstalled checkout works). Execution
timestamps are not recorded, so re-running an unchanged notebook changes nothing but the
figures' bytes (which nbval does not compare) and the widgets' random model ids. The kernels
run in the pinned numeric environment that nbval checks them in (``reproducible.pin``).
"""
import glob
import os
import sys
import time

import reproducible

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)


INSTRUCTOR = os.path.join(HERE, 'instructor')
WIDGET_VIEW = 'application/vnd.jupyter.widget-view+json'


def notebooks(prefixes=()):
    """The chapters and the instructor exercise notebooks, in course order."""
    paths = sorted(glob.glob(os.path.join(HERE, '[0-9][0-9]_*.ipynb'))
                   + glob.glob(os.path.join(INSTRUCTOR, '[0-9][0-9]x_*.ipynb')),
                   key=os.path.basename)
    if prefixes:
        paths = [p for p in paths if os.path.basename(p).startswith(tuple(prefixes))]
    return paths


def execute(path, timeout=300):
    import nbformat
    from nbclient import NotebookClient
    nb = nbformat.read(path, as_version=4)
    for cell in nb.cells:  # start clean: no stale outputs or counters
        if cell.cell_type == 'code':
            cell.outputs, cell.execution_count = [], None
            cell.metadata.pop('execution', None)
    # What JupyterLab writes, so that opening a notebook does not mark it changed
    nb.metadata['kernelspec'] = {'display_name': 'Python 3 (ipykernel)', 'language': 'python',
                                 'name': 'python3'}
    client = NotebookClient(nb, timeout=timeout, kernel_name='python3',
                            resources={'metadata': {'path': os.path.dirname(path)}},
                            record_timing=False, store_widget_state=False)
    start = time.time()
    client.execute()
    # No saved widgets: a saved view without its live kernel shows as a dead widget (a broken
    # link, a Check that does nothing); the quiz's text and HTML fallbacks say how to run it
    for cell in nb.cells:
        for out in cell.get('outputs', []):
            out.get('data', {}).pop(WIDGET_VIEW, None)
    nb.metadata.pop('widgets', None)
    nbformat.write(nb, path)
    return time.time() - start


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    os.environ['PYTHONPATH'] = os.pathsep.join(
        [ROOT] + [p for p in os.environ.get('PYTHONPATH', '').split(os.pathsep) if p])
    os.environ.setdefault('OMP_NUM_THREADS', '2')
    reproducible.pin()
    paths = notebooks(argv)
    if not paths:
        print('no notebook matches %s' % ' '.join(argv))
        return 1
    for path in paths:
        seconds = execute(path)
        print('%-45s %5.1f s' % (os.path.basename(path), seconds))
    exercises = [os.path.splitext(os.path.basename(p))[0] for p in paths
                 if os.path.dirname(p) == INSTRUCTOR]
    if exercises:
        write_learner_versions(exercises)
    return 0


def write_learner_versions(assignments):
    """``course/NNx_*.ipynb`` from the instructor versions, as ``release`` builds them."""
    import shutil
    import tempfile
    sys.path.insert(0, ROOT)
    from gluon_opt.teaching import assignment
    tmp = tempfile.mkdtemp(prefix='gluon_opt_learner_')
    try:
        out = assignment.release(os.path.join(tmp, 'release'), source_dir=INSTRUCTOR,
                                 assignments=assignments)
        for name, released in out.items():
            for path in released:
                shutil.copy(path, os.path.join(HERE, os.path.basename(path)))
                print('%-45s learner version' % os.path.basename(path))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == '__main__':
    sys.exit(main())
