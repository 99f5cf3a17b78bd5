"""The course quizzes: ``quiz.ask('ch03-ravine')`` in a notebook, ``gluon-opt quiz 3`` in a
terminal, ``grading.check_quiz`` in a learner's own test, all checked by the same ``check``
(self-checks: the bank ships in the package, so graded answers live in hidden tests).

* ``engine``: the bank (``bank/chNN.json``, its format documented there), ``check``, ``ask``;
* ``cli``: the terminal quiz.

The engine's functions are importable from here (``from gluon_opt.teaching import quiz``).
"""
from .engine import *  # noqa: F401,F403
from .engine import __all__  # noqa: F401
