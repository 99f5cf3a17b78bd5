"""The registry of gluon_opt's optimizers and the one record each of them declares.

``@register`` adds an optimizer class to MXNet's registry as ``gluon_opt.<name>`` (and as
``<name>`` where MXNet has no optimizer of that name) and to ``REGISTRY``. What there is to know
about an optimizer besides its update is declared once, as class attributes beside ``step``
(``label``, ``family``, ``paper``, ``tuned``, ``bench_hyperparameters``, ``step_bytes``,
``state_bytes``, ``mxnet_builtin``, ``torch_class``, ``oracle``: see ``GluonOptOptimizer``),
and read through ``info(name)``, as timm's ``OptimInfo`` records and torch's ``OptimizerInfo``
are: the comparison, the benchmark, the course helpers, the grader and the tests read these
records instead of keeping tables of their own. ``resolve(name)`` turns whatever name a user
types into the registry key MXNet creates the optimizer from.
"""
import dataclasses
import difflib
import typing

import numpy as np
import mxnet as mx

__all__ = ['REGISTRY', 'register', 'MXNET_BUILTIN_NAMES', 'OptimizerInfo', 'info', 'infos',
           'resolve', 'PREFIX']

#: the prefix of our MXNet registry keys
PREFIX = 'gluon_opt.'

# MXNet 1.9.1's own registry keys. Registering one of these names again silently replaces the
# built-in (Optimizer.register keys on the lower-cased class name), so we never do.
MXNET_BUILTIN_NAMES = frozenset([
    'adadelta', 'adagrad', 'adam', 'adamax', 'ccsgd', 'dcasgd', 'ftml', 'ftrl',
    'groupadagrad', 'lamb', 'lars', 'lbsgd', 'nadam', 'nag', 'rmsprop', 'sgd', 'sgld',
    'signum', 'test'])

#: short name -> optimizer class, in registration order. ``gluon-opt list`` and the tests read it.
REGISTRY = {}


def register(cls):
    """Register ``cls`` as ``gluon_opt.<cls.name>``, and as ``<cls.name>`` too when MXNet has
    no optimizer of that name. Used as a class decorator::

        @register
        class SignSGD(GluonOptOptimizer):
            name, family, paper = 'signsgd', 'sign', 'Bernstein et al., ICML 2018'
            ...

        mx.optimizer.create('gluon_opt.signsgd', learning_rate=0.01)
    """
    name = cls.name
    if not name or name != name.lower():
        raise ValueError('optimizer %s needs a lower-case `name`' % cls.__name__)
    registry = mx.optimizer.Optimizer.opt_registry
    registry[PREFIX + name] = cls
    if name not in MXNET_BUILTIN_NAMES and (name not in registry
                                            or registry[name].__module__.startswith('gluon_opt')):
        registry[name] = cls
    REGISTRY[name] = cls
    return cls


def _short(name):
    key = name.strip().lower()
    return key[len(PREFIX):] if key.startswith(PREFIX) else key


def _unknown(name, what, candidates):
    """The ValueError for an unknown name, suggesting the close ones."""
    close = difflib.get_close_matches(_short(name), sorted(candidates), n=4, cutoff=0.6)
    hint = ('did you mean %s?' % ', '.join(close)) if close else \
        'run `gluon-opt list` for the available optimizers.'
    return ValueError('unknown %s %r; %s' % (what, name, hint))


def _check_name(name):
    if not isinstance(name, str):
        raise ValueError('expected an optimizer name such as %r, got %r' % ('adam', name))


def resolve(name):
    """The MXNet registry key of the optimizer a user names: ``gluon_opt.<name>`` where gluon_opt
    has one, else MXNet's own ``<name>``. Case and surrounding spaces do not matter.

    Raises ``ValueError`` naming the close matches for an unknown name (MXNet's internal
    ``test`` optimizer counts as unknown). Example::

        >>> resolve('adam'), resolve(' gluon_opt.AdamW '), resolve('nag')
        ('gluon_opt.adam', 'gluon_opt.adamw', 'nag')
        >>> resolve('adamm')
        Traceback (most recent call last):
        ...
        ValueError: unknown optimizer 'adamm'; did you mean adam, radam, nadam, adamw?
        >>> mx.optimizer.create(resolve('lion'), learning_rate=3e-4)  # doctest: +ELLIPSIS
        Lion(learning_rate=0.0003, ...)
    """
    _check_name(name)
    key = name.strip().lower()
    registry = mx.optimizer.Optimizer.opt_registry
    for candidate in (PREFIX + _short(key), key):
        if candidate in registry and candidate != 'test':
            return candidate
    raise _unknown(name, 'optimizer', {_short(k) for k in registry if k != 'test'})


def _nbytes(per_element, shapes):
    if callable(per_element):
        return sum(per_element(tuple(s)) for s in shapes)
    return per_element * sum(int(np.prod(s)) for s in shapes)


@dataclasses.dataclass(frozen=True)
class OptimizerInfo(object):
    """Everything gluon_opt knows about one optimizer besides its update, read from the
    attributes its class declares (``info(name)`` assembles it).

    name, key, cls : ``'adam'``, MXNet's registry key ``'gluon_opt.adam'``, the class
    label : display name (the class name unless the class declares another)
    family, paper : the family ``gluon-opt list`` shows; the paper, with its year
    defaults : ``{hyperparameter: default}`` (``cls.hyperparameters()``)
    needs_closure : True where ``step`` needs a closure (``gluon_opt.Trainer``)
    fused_op : the C++ op of the fused path, or None
    tuned : ``{label: hyperparameters}``, the course MLP's tuned settings (empty: not tuned)
    bench_hyperparameters : what ``gluon-opt bench`` times (None: closure-based, not timed)
    step_bytes, state_bytes : float32 bytes one step moves (bench settings) and the state
        holds (defaults) per weight element: a number, or a function of one tensor's shape
        giving that tensor's bytes (``step_nbytes``/``state_nbytes`` sum them over shapes)
    mxnet_builtin : MXNet's optimizer for the same algorithm, or None
    torch_class : the ``torch.optim`` class with the same conventions, or None
    oracle : the independent implementation the tests check it against
        (``torch.optim.<torch_class>`` unless the class declares another)
    low_precision_states : ``{state: 'signed' or 'unsigned'}``, the states ``state_dtype`` may
        keep in bfloat16 or 8 bits (``gluon_opt.optimizers.lowprec``), or None where it keeps
        float32 states only
    """
    name: str
    key: str
    cls: type
    label: str
    family: str
    paper: str
    defaults: dict
    needs_closure: bool
    fused_op: typing.Optional[str]
    tuned: dict
    bench_hyperparameters: typing.Optional[dict]
    step_bytes: typing.Any
    bench_variants: dict
    state_bytes: typing.Any
    mxnet_builtin: typing.Optional[str]
    torch_class: typing.Optional[str]
    oracle: str
    low_precision_states: typing.Optional[dict] = None

    def step_nbytes(self, shapes):
        """The bytes one step must move over tensors of ``shapes`` (read the weight, gradient
        and states once, write the weight and states once), with the bench settings.

        >>> info('adam').step_nbytes([(256, 784), (256,)])  # 7 float32 arrays per element
        5626880
        """
        return _nbytes(self.step_bytes, shapes)

    def state_nbytes(self, shapes):
        """The bytes of state held for tensors of ``shapes``, with the default hyperparameters.

        >>> info('adam').state_nbytes([(10, 10)]), info('adafactor').state_nbytes([(10, 10)])
        (800, 80)
        """
        return _nbytes(self.state_bytes, shapes)


def info(name):
    """The record of the gluon_opt optimizer ``name`` (``'adam'`` or ``'gluon_opt.adam'``).

    Raises ``ValueError`` for a name gluon_opt does not register (with close matches), MXNet's
    own optimizers included. Example::

        >>> adam = info('gluon_opt.adam')
        >>> adam.label, adam.family, adam.mxnet_builtin, adam.torch_class
        ('Adam', 'adam', 'adam', 'Adam')
        >>> adam.defaults['learning_rate'], adam.tuned
        (0.001, {'Adam': {'learning_rate': 0.001}})
        >>> [label for label in info('sgd').tuned]
        ['SGD', 'Momentum', 'Nesterov']
    """
    _check_name(name)
    short = _short(name)
    if short not in REGISTRY:
        if short in mx.optimizer.Optimizer.opt_registry:
            raise ValueError('%r is one of MXNet\'s own optimizers, not a gluon_opt one; '
                             'gluon_opt keeps no record of it' % (name,))
        raise _unknown(name, 'gluon_opt optimizer', REGISTRY)
    cls = REGISTRY[short]
    return OptimizerInfo(
        name=short, key=PREFIX + short, cls=cls, label=cls.label or cls.__name__,
        family=cls.family, paper=cls.paper, defaults=cls.hyperparameters(),
        needs_closure=bool(cls.needs_closure), fused_op=cls.fused_op,
        tuned={label: dict(hp) for label, hp in (cls.tuned or {}).items()},
        bench_hyperparameters=None if cls.needs_closure else dict(
            cls.bench_hyperparameters or {'learning_rate': cls.default_learning_rate}),
        step_bytes=cls.step_bytes, state_bytes=cls.state_bytes,
        bench_variants={v: (dict(hp), nbytes) for v, (hp, nbytes) in
                        (cls.bench_variants or {}).items()},
        mxnet_builtin=cls.mxnet_builtin, torch_class=cls.torch_class,
        oracle=cls.oracle or (cls.torch_class and 'torch.optim.' + cls.torch_class),
        low_precision_states=(None if cls.low_precision_states is None
                              else dict(cls.low_precision_states)))


def infos():
    """Every registered gluon_opt optimizer's record, in registration order:

        >>> [i.name for i in infos()][:4]
        ['sgd', 'adam', 'adamw', 'adamax']
        >>> [(label, i.key) for i in infos() for label in i.tuned][:2]
        [('SGD', 'gluon_opt.sgd'), ('Momentum', 'gluon_opt.sgd')]
    """
    return [info(name) for name in REGISTRY]
