"""The one record per optimizer (``gluon_opt.optimizers.info``) and the one name resolver
(``resolve``): every registered optimizer declares a complete, consistent record, and names
resolve as users type them, with clear errors otherwise."""
import ast
import doctest
import glob
import importlib.util
import os
import re

import numpy as np
import pytest
import mxnet as mx

import gluon_opt
from gluon_opt import kernels
from gluon_opt.optimizers import GluonOptOptimizer, info, infos, resolve, registry
from gluon_opt.optimizers.registry import MXNET_BUILTIN_NAMES

# ours, not the classes tests register on the fly (test_dist, the course's MySignSGD)
NAMES = [name for name, cls in gluon_opt.REGISTRY.items()
         if cls.__module__.startswith('gluon_opt.optimizers')]
# a vector, a matrix, a convolution kernel, a 1 x 1 convolution: shapes whose states differ
SHAPES = [(7,), (5, 3), (4, 3, 3, 3), (6, 2, 1, 1)]


def test_every_optimizer_is_listed():
    assert [i.name for i in infos()] == list(gluon_opt.REGISTRY)
    assert {'sgd', 'adam', 'muon', 'schedulefree_adamw', 'lbfgs', 'sophia', 'sam'} <= set(NAMES)


@pytest.mark.parametrize('name', NAMES)
def test_record_is_complete(name):
    cls = gluon_opt.REGISTRY[name]
    rec = info(name)
    assert rec == info('gluon_opt.' + name) == info(' GLUON_OPT.%s ' % name.upper())
    assert rec.key == 'gluon_opt.' + name and rec.cls is cls
    for field in ('family', 'paper'):
        value = getattr(cls, field)
        assert isinstance(value, str) and value.strip(), (name, field)
    for field in ('label', 'oracle'):  # declared, or the class name and torch's class
        value = getattr(rec, field)
        assert isinstance(value, str) and value.strip(), (name, field)
    assert re.search(r'\b(19|20)\d\d\b', rec.paper), 'paper without a year: %r' % rec.paper
    assert rec.defaults == cls.hyperparameters() and 'learning_rate' in rec.defaults
    assert rec.state_bytes is not None
    if rec.needs_closure:
        assert rec.bench_hyperparameters is None and rec.step_bytes is None
    else:  # every first-order optimizer is benchmarked, and has a fused path
        assert rec.bench_hyperparameters is not None and rec.step_bytes is not None
        assert rec.fused_op is not None
        assert rec.step_nbytes(SHAPES) > 0


@pytest.mark.parametrize('name', NAMES)
def test_declared_settings_are_accepted(name):
    """The tuned and bench settings create the optimizer (so a renamed hyperparameter fails
    here, not in a comparison or a benchmark run)."""
    rec = info(name)
    settings = list(rec.tuned.values())
    if rec.bench_hyperparameters is not None:
        settings.append(rec.bench_hyperparameters)
    for hyper in settings:
        mx.optimizer.create(rec.key, **hyper)
    assert all(isinstance(label, str) and label for label in rec.tuned)
    # the bench's other configurations: accepted, a fused op of their own that the kernel
    # library has, and more bytes than the plain step (they add a pass)
    for variant, (hyper, nbytes) in rec.bench_variants.items():
        opt = mx.optimizer.create(rec.key, **dict(rec.bench_hyperparameters, **hyper))
        assert opt.fused_op is not None and kernels.has_op(opt.fused_op), variant
        assert nbytes > rec.step_bytes, variant


def test_the_course_line_up():
    line_up = [(label, i.key) for i in infos() for label in i.tuned]
    assert ('SGD', 'gluon_opt.sgd') in line_up and ('Nesterov', 'gluon_opt.sgd') in line_up
    assert len({label for label, _ in line_up}) == len(line_up)  # labels tell runs apart
    assert info('sgd').tuned['Nesterov'] == {'learning_rate': 0.05, 'momentum': 0.9,
                                             'nesterov': True}


def _state_arrays(state):
    if state is None:
        return []
    if isinstance(state, mx.nd.NDArray):
        return [state]
    return [a for s in state for a in _state_arrays(s)]


@pytest.mark.parametrize('name', [n for n in NAMES if not info(n).needs_closure])
def test_state_bytes_are_the_states_created(name):
    opt = mx.optimizer.create('gluon_opt.' + name)
    held = sum(a.size * np.dtype(a.dtype).itemsize for i, s in enumerate(SHAPES)
               for a in _state_arrays(opt.create_state(i, mx.nd.ones(s))))
    assert info(name).state_nbytes(SHAPES) == held


def test_counterparts_exist():
    for rec in infos():
        if rec.mxnet_builtin is not None:
            assert rec.mxnet_builtin in MXNET_BUILTIN_NAMES
            assert rec.mxnet_builtin in mx.optimizer.Optimizer.opt_registry
    if importlib.util.find_spec('torch') is None:
        pytest.skip('torch is not installed')
    import torch
    for rec in infos():
        if rec.torch_class is not None:
            assert issubclass(getattr(torch.optim, rec.torch_class), torch.optim.Optimizer)


def test_a_users_class_gets_a_record_from_what_it_declares():
    class Plain(GluonOptOptimizer):
        name, family, paper = 'plain_for_registry_test', 'course', 'nobody, 2024'

        def step(self, weight, grad, state, lr, wd, t):
            weight[:] -= lr * grad
    registry.register(Plain)
    try:
        rec = info('plain_for_registry_test')
        assert (rec.label, rec.tuned, rec.fused_op) == ('Plain', {}, None)
    finally:
        del gluon_opt.REGISTRY['plain_for_registry_test']


@pytest.mark.parametrize('typed,key', [
    ('adam', 'gluon_opt.adam'), ('gluon_opt.adam', 'gluon_opt.adam'),
    (' AdamW ', 'gluon_opt.adamw'), ('LBFGS', 'gluon_opt.lbfgs'), ('nag', 'nag'),
    ('signum', 'signum'), ('gluon_opt.schedulefree_adamw', 'gluon_opt.schedulefree_adamw')])
def test_resolve(typed, key):
    assert resolve(typed) == key
    mx.optimizer.create(key)


@pytest.mark.parametrize('typed,message', [
    ('adamm', r"unknown optimizer 'adamm'; did you mean adam, "),
    ('gluon_opt.lbfgz', r"unknown optimizer 'gluon_opt.lbfgz'; did you mean lbfgs, "),
    ('zzz', r"unknown optimizer 'zzz'; run `gluon-opt list`"),
    ('test', r"unknown optimizer 'test'"),
    ('', r"unknown optimizer ''"),
    (None, r"expected an optimizer name"),
    (3, r"expected an optimizer name")])
def test_resolve_refuses_unknown_names(typed, message):
    with pytest.raises(ValueError, match=message):
        resolve(typed)


def test_info_refuses_what_gluon_opt_does_not_register():
    with pytest.raises(ValueError, match="'nag' is one of MXNet's own optimizers"):
        info('nag')
    with pytest.raises(ValueError, match=r"unknown gluon_opt optimizer 'lbfgz'; did you mean "
                                         r"lbfgs\?"):
        info('lbfgz')


def test_docstring_examples_hold():
    result = doctest.testmod(registry, extraglobs={'mx': mx})
    assert result.attempted >= 8 and not result.failed


def test_kernels_know_no_optimizer():
    """The runtime imports nothing of gluon_opt outside ``kernels/`` (the optimizers import
    it): no import cycle."""
    folder = os.path.dirname(gluon_opt.kernels.__file__)
    for path in glob.glob(os.path.join(folder, '*.py')):
        for node in ast.walk(ast.parse(open(path).read())):
            if isinstance(node, ast.ImportFrom):
                assert node.level <= 1 and not (node.module or '').startswith('gluon_opt'), \
                    (path, node.lineno)
            elif isinstance(node, ast.Import):
                assert not any(a.name.startswith('gluon_opt') for a in node.names), \
                    (path, node.lineno)
