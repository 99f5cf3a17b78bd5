"""gluon-opt: optimizers for Apache MXNet Gluon, and a course that teaches them.

``import gluon_opt`` registers every optimizer with MXNet, so that::

    trainer = gluon.Trainer(net.collect_params(), 'gluon_opt.adamw', {'learning_rate': 1e-3})

works. ``gluon_opt.REGISTRY`` maps each short name to its class.

On an MXNet kvstore server (``DMLC_ROLE=server``) gluon_opt is imported while ``import mxnet``
is still running (the server loop starts inside it, and unpickles our optimizer); the two
calls below make that work and make a server that cannot build the optimizer exit instead of
training on without one (see ``gluon_opt._compat`` and README, "Distributed training").
"""
from . import _compat, _legacy

_legacy.install()  # the old paths gluon_opt.compare, gluon_opt.quiz, ... (see _legacy)
_compat.fail_loudly_on_server()
_compat.finish_partial_mxnet()
# imported before mxnet on a server or scheduler: keep mxnet from starting the loop inside our
# import (our optimizers would not be defined yet); we start it at the end of this file.
_deferred_server = _compat.import_mxnet_deferring_server()

from .optimizers import *  # noqa: F401,F403,E402  (registers the optimizers)
from .optimizers import REGISTRY, GluonOptOptimizer  # noqa: E402
from .optimizers import schedule_free  # noqa: E402  (gluon_opt.schedule_free.evaluation)
from . import hvp  # noqa: E402
from . import schedules  # noqa: E402  (gluon_opt.schedules.WSDScheduler, ...)


def __getattr__(name):
    # gluon_opt.Trainer subclasses gluon.Trainer, and importing mxnet.gluon fails inside a
    # kvstore server's half-initialised mxnet (see above): it is imported on first use.
    if name in ('Trainer', 'NonFiniteGradient', 'StatesFileError'):
        from . import trainer
        return getattr(trainer, name)
    if name == 'averaging':  # imports mxnet.gluon too (``from . import`` would recurse here)
        import importlib
        return importlib.import_module(__name__ + '.averaging')
    raise AttributeError('module %r has no attribute %r' % (__name__, name))


__version__ = '0.1.0'

if _deferred_server:
    _compat.run_deferred_server()  # does not return: serves until the job ends, then exits
