"""gluon_opt.teaching.policy: the grader's reading of student code for uses of an existing
implementation. Every honest solution of the course passes; every way of handing the work to
gluon-opt's, MXNet's or another library's implementation that we know of is named."""
import nbformat
import pytest

from gluon_opt.teaching import assignment, policy

# no floating-point result: the instruction set cannot change the outcome
pytestmark = pytest.mark.isa_independent

SETUP = ['import mxnet as mx\nfrom mxnet import nd\nimport numpy as np\nimport gluon_opt\n'
         'from gluon_opt import grading, landscapes, quiz\n'
         'from gluon_opt.optimizers.base import GluonOptOptimizer']


def _student_cells(path):
    nb = nbformat.read(path, as_version=4)
    return [('cell %d' % i, c.source) for i, c in enumerate(nb.cells)
            if c.cell_type == 'code' and c.metadata.get('nbgrader', {}).get('solution')]


@pytest.mark.parametrize('name', sorted(assignment.exercise_notebooks()))
def test_the_instructor_solutions_use_nothing_forbidden(name):
    path = assignment.exercise_notebooks()[name]
    assert policy.violations(_student_cells(path), SETUP) == []


HONEST = [
    'class MyAdam(GluonOptOptimizer):\n    def step(self, weight, grad, state, lr, wd, t):\n'
    '        m, v = state\n        m[:] = self.beta1 * m + (1 - self.beta1) * grad\n'
    '        weight[:] -= lr * m / (nd.sqrt(v) + self.epsilon)\n'
    '        super().__init__()\n',
    '@mx.optimizer.Optimizer.register\nclass A(mx.optimizer.Optimizer):\n    pass',
    'def newton_step(w, g, H):\n    return w - np.linalg.solve(H, g)',
    'import math\nfrom functools import partial\nx = math.sqrt(2)',
    'loss, grad, hess, w = grading.logistic_regression()',
    'run = landscapes.trajectory("mymomentum", landscapes.quadratic(condition=50), [1, 2], 10)',
    'import a_module_that_does_not_exist',  # an error at run time, not a delegation
]

DELEGATING = [
    ('class MyAdam(gluon_opt.optimizers.Adam):\n    pass', 'gluon_opt.optimizers.Adam'),
    ('from gluon_opt.optimizers import Adam', 'gluon_opt.optimizers.Adam'),
    ('from mxnet import optimizer as o\nclass A(o.Adam):\n    pass', 'mxnet.optimizer.Adam'),
    ('class A(GluonOptOptimizer):\n    def step(self, w, g, s, lr, wd, t):\n'
     '        mx.optimizer.create("rmsprop").update(0, w, g, s)', 'mxnet.optimizer.create'),
    ('def f(w, g, m, v):\n    nd.adam_update(w, g, m, v, lr=0.1, out=w)', 'adam_update'),
    ('from gluon_opt.optimizers.base import bias_corrections', 'bias_corrections'),
    ('opt = landscapes.make_optimizer("gluon_opt.adam")', 'make_optimizer'),
    ('t = mx.gluon.Trainer({}, "adam")', 'Trainer'),
    ('import torch', 'torch'),
    ('m = mx.optimizer', 'binds the module'),
    ('A = getattr(gluon_opt, "optim" + "izers").Adam', 'getattr'),
    ('exec("import gluon_opt")', 'exec'),
    ('c = __import__("gluon_opt")', '__import__'),
    ('k = GluonOptOptimizer.__subclasses__()', '__subclasses__'),
    ('r = mx.optimizer.Optimizer.opt_registry["adam"]', 'opt_registry'),
    ('%run something.py', 'get_ipython'),
    ('import importlib', 'importlib'),
    ('grading.check_newton_step = lambda *a: "PASS"', 'assigns to'),
    ('s = mx.lr_scheduler.CosineScheduler(100, base_lr=0.1)', 'CosineScheduler'),
    ('g = mx.gluon.utils.clip_global_norm(arrays, 1.0)', 'clip_global_norm'),
]


@pytest.mark.parametrize('source', HONEST)
def test_honest_code_passes(source):
    assert policy.violations([('cell 1', source)], SETUP) == []


@pytest.mark.parametrize('source,named', DELEGATING)
def test_delegation_is_named_with_its_cell_and_line(source, named):
    found = policy.violations([('cell 3', 'x = 1\n' + source)], SETUP)
    assert found, source
    text = str(found[0])
    assert text.startswith('cell 3, line ') and named in text, text
