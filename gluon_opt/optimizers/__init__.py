"""The optimizers, one module per family. Importing this package registers them all with
MXNet as ``gluon_opt.<name>`` (and ``<name>`` where MXNet has no optimizer of that name)."""
from .base import GluonOptOptimizer, REGISTRY, register
from .sgd import SGD
from .adam import Adam, AdamW
from .sign import Lion
from .layerwise import LAMB, LARS
from .factored import Adafactor

__all__ = ['GluonOptOptimizer', 'REGISTRY', 'register', 'SGD', 'Adam', 'AdamW',
           'Lion', 'LAMB', 'LARS', 'Adafactor']
