"""``gluon-opt benchmark``: which optimizer trains small networks fastest, answered with
AlgoPerf's method (Dahl et al., "Benchmarking Neural Network Training Algorithms", 2023;
Kasimbeg et al., "Accelerating neural network training: an analysis of the AlgoPerf training
algorithms competition", ICLR 2025) on workloads small enough for a laptop's CPU.

* ``workloads``: the models, their data (Fashion-MNIST, a fixed validation split carved from
  the training images), metrics, step budgets and held-out variants;
* ``search_spaces``: the optimizers (registry records and the baselines' aliases), the one
  search space of each, the two rulesets;
* ``runner``: a trial, timed as AlgoPerf times it, and the record of finished trials that
  makes a run resumable;
* ``targets``: the validation targets, how they are set (``benchmarks/set_targets.py``) and
  read (``targets.json``, beside this file);
* ``scoring``: time to target per study and over studies, performance profiles, scores;
* ``plots``: the profile and time-to-target figures;
* ``published``: the full runs the docs and the course cite, shipped as their trial records
  (``benchmarks/publish_run.py`` writes them);
* ``command``: the command line.

Nothing is imported here: each module loads on first use. docs/benchmark.md is the guide.
"""
