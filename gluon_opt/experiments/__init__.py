"""The experiments: what the ``gluon-opt`` command and the course run on the library.

* ``data``: Fashion-MNIST, split, loaded and batched;
* ``models``: the course MLP (and softmax regression), an autoencoder, a small conv net;
* ``training``: the one training loop (``train``) and its schedules, closures and state sizes;
* ``compare``: optimizers side by side on the MLP (``gluon-opt compare``);
* ``bench``: one optimizer step timed, fused against reference (``gluon-opt bench``);
* ``benchmark``: time to a validation target under a tuning budget, AlgoPerf's method
  (``gluon-opt benchmark``), a package of its own;
* ``plotting``: the figures ``compare`` writes;
* ``distributed``: a parameter-server job on this machine (``gluon-opt launch``);
* ``outputs``: output folders the tool may write and replace;
* ``listing``: every optimizer with its family, paper and defaults (``gluon-opt list``).

Experiments use the library (``gluon_opt.optimizers``, ``gluon_opt.Trainer``) and never the
teaching (``gluon_opt.teaching``). Nothing is imported here: each module loads on first use.
"""
