"""pytest/nbval configuration for the course notebooks.

nbval starts each notebook's kernel in ``course/``, so a relative ``PYTHONPATH=.`` would point
there instead of the repository root. Make every entry absolute and put the root first, so the
notebooks import this checkout's ``gluon_opt`` whether or not it is pip-installed.

Each notebook's kernel starts in the numeric environment the outputs were recorded in
(``reproducible.pinned``: numpy, oneDNN, OpenBLAS and our kernels at AVX2), so that they
reproduce on any x86-64 CPU; this process's own environment is left as it was.
"""
import glob
import os

import pytest

import reproducible

_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
_paths = [os.path.abspath(p) for p in os.environ.get('PYTHONPATH', '').split(os.pathsep) if p]
os.environ['PYTHONPATH'] = os.pathsep.join([_ROOT] + [p for p in _paths if p != _ROOT])
os.environ.setdefault('OMP_NUM_THREADS', '2')

# The learner versions of the exercise notebooks (course/NNx_*.ipynb) are released stubs
# without outputs: nbval checks their instructor versions (course/instructor/), and
# tests/test_assignment.py checks that each learner version is what `release` makes of it.
collect_ignore = [os.path.basename(p) for p in glob.glob(
    os.path.join(os.path.dirname(os.path.abspath(__file__)), '[0-9][0-9]x_*.ipynb'))]


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_setup(item):
    # nbval starts a notebook's kernel in the setup of its first cell
    with reproducible.pinned():
        yield
