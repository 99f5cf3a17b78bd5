"""The instructor versions of the gluon-opt course's exercise notebooks (solutions, hidden
tests): ``INSTRUCTOR_DIR``. Installed by instructors only; see course/ASSIGNMENTS.md."""
import os

INSTRUCTOR_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'instructor')
