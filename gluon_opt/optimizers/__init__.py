"""The optimizers, one module per family. Importing this package registers them all with
MXNet as ``gluon_opt.<name>`` (and ``<name>`` where MXNet has no optimizer of that name)."""
from .base import GluonOptOptimizer, REGISTRY, register
from .sgd import SGD
from .adam import Adam, AdamW, Adamax, NAdam, RAdam, AdaBelief
from .adaptive import AdaGrad, RMSprop, AdaDelta
from .sign import Lion
from .layerwise import LAMB, LARS
from .factored import Adafactor
from .orthogonal import Muon
from .schedule_free import ScheduleFreeAdamW
from .wrappers import Lookahead
from .second_order import Newton, LBFGS, HessianFree, Sophia
from .sam import SAM
from . import schedule_free

__all__ = ['GluonOptOptimizer', 'REGISTRY', 'register', 'SGD', 'Adam', 'AdamW',
           'Adamax', 'NAdam', 'RAdam', 'AdaBelief', 'AdaGrad', 'RMSprop', 'AdaDelta',
           'Lion', 'LAMB', 'LARS', 'Adafactor', 'Muon', 'ScheduleFreeAdamW', 'Lookahead',
           'Newton', 'LBFGS', 'HessianFree', 'Sophia', 'SAM', 'schedule_free']
