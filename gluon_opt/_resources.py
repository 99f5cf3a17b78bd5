"""Where the product's files are, in a checkout and in an installed wheel.

A checkout keeps them at the top (``data/``, ``course/``, ``course/instructor/``); the wheel's
build copies the data and the learner's course into the package (``gluon_opt/_data``,
``gluon_opt/_course``, see ``setup.py``). The instructor notebooks (solutions and hidden
tests) are not in that wheel, which every student installs: they ship in the classroom
distribution, ``gluon-opt-classroom`` (package ``gluon_opt_classroom``, built from
``classroom/``), which instructors install beside it.
"""
import os

__all__ = ['checkout', 'data_file', 'course_dir', 'instructor_dir', 'DATA_ENV']

DATA_ENV = 'GLUON_OPT_DATA'
PACKAGE = os.path.dirname(os.path.abspath(__file__))
_ROOT = os.path.dirname(PACKAGE)


def checkout():
    """The repository root when this package runs from a checkout, else None."""
    if os.path.isfile(os.path.join(_ROOT, 'setup.cfg')) and \
            os.path.isdir(os.path.join(_ROOT, 'course')):
        return _ROOT
    return None


def data_file():
    """Fashion-MNIST: ``$GLUON_OPT_DATA``, else the checkout's ``data/``, else the wheel's."""
    env = os.environ.get(DATA_ENV)
    if env:
        return env
    root = checkout()
    if root is not None:
        return os.path.join(root, 'data', 'fashion_mnist.npz')
    return os.path.join(PACKAGE, '_data', 'fashion_mnist.npz')


def course_dir():
    """The learner's course: chapters ``NN_*.ipynb`` and exercises ``NNx_*.ipynb``."""
    root = checkout()
    return os.path.join(root, 'course') if root is not None else \
        os.path.join(PACKAGE, '_course')


def instructor_dir():
    """The instructor versions of the exercise notebooks: the checkout's
    ``course/instructor/``, else the installed classroom distribution's, else None."""
    root = checkout()
    if root is not None:
        return os.path.join(root, 'course', 'instructor')
    try:
        import gluon_opt_classroom
    except ImportError:
        return None
    return gluon_opt_classroom.INSTRUCTOR_DIR
