"""gluon-opt: optimizers for Apache MXNet Gluon, and a course that teaches them.

``import gluon_opt`` registers every optimizer with MXNet, so that::

    trainer = gluon.Trainer(net.collect_params(), 'gluon_opt.adamw', {'learning_rate': 1e-3})

works. ``gluon_opt.REGISTRY`` maps each short name to its class.
"""
from .optimizers import *  # noqa: F401,F403  (registers the optimizers)
from .optimizers import REGISTRY, GluonOptOptimizer
from .trainer import Trainer
from . import hvp

__version__ = '0.1.0'
