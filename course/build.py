"""Re-execute the course notebooks and save them with their outputs (what nbval compares).

    python course/build.py                 # every notebook, in order
    python course/build.py 03 10           # only those whose name starts with 03 or 10

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


def notebooks(prefixes=()):
    paths = sorted(glob.glob(os.path.join(HERE, '[0-9][0-9]*_*.ipynb')))
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
    client = NotebookClient(nb, timeout=timeout, kernel_name='python3',
                            resources={'metadata': {'path': HERE}}, record_timing=False,
                            store_widget_state=True)
    start = time.time()
    client.execute()
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
    return 0


if __name__ == '__main__':
    sys.exit(main())
