"""pytest/nbval configuration for the course notebooks.

nbval starts each notebook's kernel in ``course/``, so a relative ``PYTHONPATH=.`` would point
there instead of the repository root. Make every entry absolute and put the root first, so the
notebooks import this checkout's ``gluon_opt`` whether or not it is pip-installed.
"""
import os

_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
_paths = [os.path.abspath(p) for p in os.environ.get('PYTHONPATH', '').split(os.pathsep) if p]
os.environ['PYTHONPATH'] = os.pathsep.join([_ROOT] + [p for p in _paths if p != _ROOT])
os.environ.setdefault('OMP_NUM_THREADS', '2')
