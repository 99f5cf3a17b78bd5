"""What the benchmark tunes: the optimizers it can run, their search spaces, the two rulesets.

An ``Entry`` is one optimizer as the benchmark names it: a gluon_opt optimizer by its
registry name (``adamw``, ``lion``, ``prodigy``, ...), or one of ``ALIASES``, a registered
optimizer with hyperparameters fixed (AlgoPerf's Nesterov and heavy-ball baselines are
``gluon_opt.sgd`` with momentum, NAdamW is ``gluon_opt.nadam`` with decoupled decay).
Everything else is read from the optimizer's record (``gluon_opt.optimizers.info``).

**External tuning** (``external_points``): each study draws ``n`` points quasirandomly (a
scrambled Halton sequence, ``scipy.stats.qmc``, seeded by the study) from the optimizer's one
search space, the same on every workload:

=====================  ==================================================================
``learning_rate``      log-uniform over two decades, [c/5, 20c], where ``c`` is the constant
                       rate the record tunes for the course MLP (``tuned``), else its
                       default: centred on 2c, the peak of a cosine schedule whose mean
                       rate is c
``one_minus_beta1``    log-uniform in [0.02, 0.5] (beta1 or momentum in [0.5, 0.98]); only
                       where the optimizer has a nonzero ``beta1`` or ``momentum``
``wd``                 log-uniform in [1e-6, 1e-2]; where the optimizer has a weight decay
``warmup_fraction``    uniform in [0, 0.1] of the step budget
=====================  ==================================================================

The rate follows a linear warmup and a cosine decay to zero at the end of the budget
(AlgoPerf's baselines' schedule); the schedule-free optimizers get the warmup alone
(``warmup_steps``), their averaging being their schedule.

**Self-tuning** (``self_tuning_params``): the optimizer's defaults and nothing else, a
constant rate, one trial per study with 1.5 times the step budget (``SELF_TUNING_BUDGET``).
The learning-rate-free (Prodigy, D-Adaptation, DoG) and schedule-free optimizers belong here.
"""
import dataclasses
import typing

from ...optimizers import info

__all__ = ['Entry', 'Dim', 'ALIASES', 'BASELINES', 'SELF_TUNING', 'SELF_TUNING_BUDGET',
           'SEARCH_SEED', 'entry', 'space', 'external_points', 'optimizer_params',
           'self_tuning_params', 'warmup_steps', 'SearchSpaceError']

#: name -> (registered optimizer, display label, fixed hyperparameters, label of the record's
#: tuned rate): AlgoPerf's target-setting baselines that are settings of our optimizers
ALIASES = {
    'nesterov': ('sgd', 'Nesterov', {'momentum': 0.9, 'nesterov': True}, 'Nesterov'),
    'heavy_ball': ('sgd', 'Heavy ball', {'momentum': 0.9}, 'Momentum'),
    'nadamw': ('nadam', 'NAdamW', {'decoupled_wd': True}, None),
}
#: AlgoPerf's target-setting algorithms: the targets are the best these reach
BASELINES = ('adamw', 'nadamw', 'nesterov', 'heavy_ball')
#: the families the self-tuning ruleset is for (no learning rate to tune, or no schedule)
SELF_TUNING = ('parameter_free', 'schedule_free')
#: self-tuning trials get this many times the step budget (AlgoPerf: one trial, no tuning,
#: a longer budget)
SELF_TUNING_BUDGET = 1.5
#: the seed of study 0's quasirandom sequence (study s uses SEARCH_SEED + s)
SEARCH_SEED = 1234

#: the learning rate's range as multiples of the record's constant rate c: two decades
#: centred on 2c (a cosine schedule's mean rate is half its peak)
LR_RANGE = (0.2, 20.0)
ONE_MINUS_BETA1 = (0.02, 0.5)
WEIGHT_DECAY = (1e-6, 1e-2)
WARMUP_FRACTION = (0.0, 0.1)


class SearchSpaceError(ValueError):
    """An optimizer the benchmark cannot run; the message names it and what to use instead."""


@dataclasses.dataclass(frozen=True)
class Dim(object):
    """One hyperparameter of a search space: its ``name``, range and scale."""
    name: str
    low: float
    high: float
    log: bool

    def value(self, u):
        """The point at ``u`` in [0, 1), rounded to 3 significant digits (records read
        better; the grid this leaves is far finer than any trial budget samples)."""
        if self.log:
            v = self.low * (self.high / self.low) ** u
        else:
            v = self.low + u * (self.high - self.low)
        return float('%.3g' % v)


@dataclasses.dataclass(frozen=True)
class Entry(object):
    """One optimizer of the benchmark: its ``name`` (command line), display ``label``, the
    ``record`` of the registered optimizer, ``fixed`` hyperparameters, and ``lr_centre``, the
    constant rate its learning-rate range is built around (``LR_RANGE``)."""
    name: str
    label: str
    record: typing.Any
    fixed: typing.Tuple
    lr_centre: float

    @property
    def key(self):
        return self.record.key

    @property
    def schedule_free(self):
        return self.record.family == 'schedule_free'

    def defaults(self):
        """The class defaults overridden by the fixed hyperparameters."""
        out = dict(self.record.defaults)
        out.update(dict(self.fixed))
        return out


def entry(name):
    """The ``Entry`` for ``name``: an alias (``nesterov``, ``heavy_ball``, ``nadamw``) or a
    gluon_opt optimizer's name; ``SearchSpaceError`` naming close matches otherwise."""
    key = str(name).strip().lower()
    base, label, fixed, tuned_label = ALIASES.get(key, (key, None, {}, None))
    try:
        record = info(base)
    except ValueError as err:
        raise SearchSpaceError('%s (or one of the baselines %s).'
                               % (str(err).rstrip('.?'), ', '.join(ALIASES))) from None
    label = label or record.label
    tuned = record.tuned.get(tuned_label or label, {})
    centre = tuned.get('learning_rate', record.defaults.get('learning_rate'))
    if centre is None:  # SAM: the rate is its base optimizer's
        raise SearchSpaceError('optimizer %r has no learning rate of its own to tune (it wraps '
                               'another); benchmark the optimizer it wraps.' % name)
    return Entry(key, label, record, tuple(sorted(fixed.items())), float(centre))


def _momentum_name(e):
    defaults = e.defaults()
    for name in ('beta1', 'momentum'):
        value = defaults.get(name)
        if isinstance(value, float) and value > 0:
            return name
    return None


def space(e):
    """The search space of entry ``e``: a list of ``Dim`` (see the module docstring)."""
    dims = [Dim('learning_rate', e.lr_centre * LR_RANGE[0], e.lr_centre * LR_RANGE[1], True)]
    if _momentum_name(e):
        dims.append(Dim('one_minus_beta1', ONE_MINUS_BETA1[0], ONE_MINUS_BETA1[1], True))
    if isinstance(e.defaults().get('wd'), float):
        dims.append(Dim('wd', WEIGHT_DECAY[0], WEIGHT_DECAY[1], True))
    dims.append(Dim('warmup_fraction', WARMUP_FRACTION[0], WARMUP_FRACTION[1], False))
    return dims


def external_points(e, n, study):
    """The ``n`` points study ``study`` tries for entry ``e``: ``[{dim name: value}]`` from
    a scrambled Halton sequence seeded by ``SEARCH_SEED + study`` (the same points on every
    workload, and for every optimizer with the same dimensions)."""
    from scipy.stats import qmc
    dims = space(e)
    u = qmc.Halton(d=len(dims), scramble=True, seed=SEARCH_SEED + int(study)).random(int(n))
    return [{d.name: d.value(x) for d, x in zip(dims, row)} for row in u]


def optimizer_params(e, point):
    """The optimizer's hyperparameters at search-space ``point`` (fixed ones included; the
    warmup is the runner's, see ``warmup_steps``)."""
    params = dict(e.fixed)
    params['learning_rate'] = point['learning_rate']
    if 'one_minus_beta1' in point:
        params[_momentum_name(e)] = float('%.6g' % (1.0 - point['one_minus_beta1']))
    if 'wd' in point:
        params['wd'] = point['wd']
    return params


def warmup_steps(point, max_steps):
    """The warmup of ``point`` in steps of a ``max_steps`` budget (0 for self-tuning)."""
    return int(round((point or {}).get('warmup_fraction', 0.0) * max_steps))


def self_tuning_params(e):
    """The self-tuning ruleset's hyperparameters: the fixed ones, the default rate."""
    params = dict(e.fixed)
    params['learning_rate'] = e.record.defaults['learning_rate']
    return params
