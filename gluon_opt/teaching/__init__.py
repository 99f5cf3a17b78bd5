"""The teaching: what the course notebooks (``course/``) and the classroom use.

* ``quiz``: the question bank (``quiz/bank``), its checking and widgets (``quiz.engine``) and
  the terminal quiz (``gluon-opt quiz``, ``quiz.cli``);
* ``grading``: the checkers the exercise notebooks' graded cells call, with the catalogue of
  typical mistakes they recognise;
* ``assignment``: release the exercises with nbgrader and grade submissions
  (``gluon-opt assignment``): ``autograde`` grades one notebook (test cells read, verdicts
  outside the student's code), ``sandbox`` runs it under bubblewrap, ``runner`` is what runs
  inside, ``policy`` reads the student's code for delegation to existing implementations;
* ``course_copy``: the learner's copy of the course (``gluon-opt course``);
* ``landscapes``: test functions with exact gradients and optimizer trajectories on them;
* ``checking``: a student's optimizer stepped beside a reference;
* ``inspection``: looking inside a step (minibatch gradient noise, per-element learning rates);
* ``course_plots``: the notebooks' figures;
* the chapters' harnesses, so that no notebook cell is a page of code: ``momentum_lab``
  (ch03), ``theory_lab`` (saddles, noise floor, sparse features, Reddi et al.),
  ``generalisation_lab`` (t-intervals, tuned-on-validation runs), ``diagnostics``
  (update/weight ratios, search grids), ``tricks_lab`` (ch08).

Teaching uses the library and the experiments (``gluon_opt.experiments``); neither uses it.
Nothing is imported here: each module loads on first use.
"""
