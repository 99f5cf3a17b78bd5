"""The optimizers, one module per algorithm or family; ``contrib/`` holds the young ones.
Importing this package registers them all with MXNet as ``gluon_opt.<name>`` (and ``<name>``
where MXNet has no optimizer of that name); ``info(name)`` is the record each declares, and
``resolve(name)`` the registry key of any optimizer name."""
from .base import GluonOptOptimizer
from .registry import REGISTRY, register, info, infos, resolve, OptimizerInfo
from .sgd import SGD
from .adam import Adam, AdamW, Adamax, NAdam, RAdam, AdaBelief
from .adaptive import AdaGrad, RMSprop, AdaDelta
from .sign import Lion
from .layerwise import LAMB, LARS
from .factored import Adafactor
from .contrib.orthogonal import Muon
from .contrib.schedule_free import ScheduleFreeAdamW
from .wrappers import Lookahead
from .newton import Newton
from .lbfgs import LBFGS
from .hessian_free import HessianFree
from .contrib.sophia import Sophia
from .contrib.sam import SAM
from .contrib import schedule_free
from .contrib.schedule_free import ScheduleFreeSGD, ScheduleFree
from .contrib.ademamix import AdEMAMix
from .contrib.mars import MARS
from .contrib.adopt import ADOPT
from .contrib.laprop import LaProp
from .contrib.parameter_free import Prodigy, DAdaptAdam, DoG
from .contrib.soap import SOAP

__all__ = ['GluonOptOptimizer', 'REGISTRY', 'register', 'SGD', 'Adam', 'AdamW',
           'Adamax', 'NAdam', 'RAdam', 'AdaBelief', 'AdaGrad', 'RMSprop', 'AdaDelta',
           'Lion', 'LAMB', 'LARS', 'Adafactor', 'Muon', 'ScheduleFreeAdamW', 'Lookahead',
           'Newton', 'LBFGS', 'HessianFree', 'Sophia', 'SAM', 'schedule_free',
           'ScheduleFreeSGD', 'ScheduleFree', 'AdEMAMix', 'MARS', 'ADOPT', 'LaProp',
           'Prodigy', 'DAdaptAdam', 'DoG', 'SOAP']
