"""The optimizers, one module per family. Importing this package registers them all with
MXNet as ``gluon_opt.<name>`` (and ``<name>`` where MXNet has no optimizer of that name)."""
from .base import GluonOptOptimizer, REGISTRY, register
from .sgd import SGD
from .adam import Adam, AdamW
from .second_order import Newton, LBFGS, HessianFree, Sophia
from .sam import SAM

__all__ = ['GluonOptOptimizer', 'REGISTRY', 'register', 'SGD', 'Adam', 'AdamW',
           'Newton', 'LBFGS', 'HessianFree', 'Sophia', 'SAM']
