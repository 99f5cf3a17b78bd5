"""The teaching: what the course notebooks (``course/``) and the classroom use.

* ``quiz``: the question bank (``quiz/bank``), its checking and widgets (``quiz.engine``) and
  the terminal quiz (``gluon-opt quiz``, ``quiz.cli``);
* ``grading``: the checkers the exercise notebooks' graded cells call, with the catalogue of
  typical mistakes they recognise;
* ``assignment``: release and autograde the exercises with nbgrader (``gluon-opt assignment``);
* ``landscapes``: test functions with exact gradients and optimizer trajectories on them;
* ``checking``: a student's optimizer stepped beside a reference;
* ``inspection``: looking inside a step (minibatch gradient noise, per-element learning rates);
* ``course_plots``: the notebooks' figures.

Teaching uses the library and the experiments (``gluon_opt.experiments``); neither uses it.
Nothing is imported here: each module loads on first use.
"""
