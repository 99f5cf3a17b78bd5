"""Chapter 5's harness (gluon_opt.teaching.second_order_lab): the counting, remembering
closure; training to a budget of gradient evaluations; the cost of one step."""
import numpy as np
import mxnet as mx
import pytest
from mxnet import gluon

import gluon_opt  # noqa: F401  (registers the optimizers)
from gluon_opt.experiments import models
from gluon_opt.teaching import second_order_lab as lab


@pytest.fixture(scope='module')
def problem():
    return lab.logistic_problem()


def _toy(seed=0):
    mx.random.seed(seed)
    rng = np.random.RandomState(seed)
    x = mx.nd.array(rng.randn(40, 5).astype(np.float32))
    y = mx.nd.array((rng.rand(40) > 0.5).astype(np.float32))
    net = gluon.nn.Dense(2, in_units=5)
    net.initialize(mx.init.Xavier())
    return net, x, y


def test_logistic_problem_is_the_chapters():
    features, labels = lab.logistic_problem()
    assert features.shape == (613, 16) and labels.shape == (613,)
    assert set(np.unique(labels.asnumpy())) == {0.0, 1.0}


def test_closure_counts_and_does_not_recompute_at_the_same_point():
    net, x, y = _toy()
    closure = lab.CountingClosure(net, x, y)
    first = closure()
    grad = net.weight.grad().asnumpy().copy()
    again = closure()                     # same weights: remembered, not counted
    assert closure.calls == 1 and again is first
    np.testing.assert_array_equal(net.weight.grad().asnumpy(), grad)
    net.weight.set_data(net.weight.data() + 0.1)
    closure()
    assert closure.calls == 2
    assert not np.array_equal(net.weight.grad().asnumpy(), grad)
    before = closure.calls
    loss = closure.loss()                 # monitoring: a forward pass only, not counted
    assert closure.calls == before
    assert loss == pytest.approx(float(closure().mean().asscalar()))


def test_first_order_budget_is_one_evaluation_per_step(problem):
    run = lab.fit_with_budget('gluon_opt.sgd', {'learning_rate': 1.0}, 20, *problem)
    assert run.steps == 20 and run.evals.tolist() == list(range(21))
    assert run.losses[-1] < run.losses[0]
    evals, losses = run.within(10)
    assert evals.tolist() == list(range(11)) and run.best_within(10) == losses.min()


def test_lbfgs_needs_line_search_trials(problem):
    stalled = lab.fit_with_budget('gluon_opt.lbfgs', {'max_iter': 1, 'history_size': 10,
                                                      'line_search_fn': 'strong_wolfe'},
                                  60, *problem)
    working = lab.fit_with_budget('gluon_opt.lbfgs', {'max_iter': 1, 'max_eval': 11,
                                                      'history_size': 10,
                                                      'line_search_fn': 'strong_wolfe'},
                                  60, *problem)
    f0 = working.losses[0]
    assert stalled.losses[0] == f0
    # with room for its line search L-BFGS goes far lower within the same evaluations
    assert working.best_within(60) < stalled.best_within(60) - 0.01
    # and evaluations are not spent twice on the point where the line search stopped
    assert working.evals[-1] < 2 * working.steps


def test_first_within(problem):
    run = lab.BudgetRun([0, 3, 7, 12], [1.0, 0.5, 0.1, 0.05], 3)
    assert lab.first_within(run, 0.0, 0.2) == (2, 7)
    assert lab.first_within(run, 0.0, 0.2, budget=5) == (float('inf'), float('inf'))
    assert lab.first_within(run, 0.0, 0.01) == (float('inf'), float('inf'))


def test_newton_stops_when_the_budget_is_spent(problem):
    run = lab.fit_with_budget('gluon_opt.newton', {}, 100, *problem)
    # each step costs 2n + 1 = 69 evaluations or more: two steps, the second past the budget
    assert run.steps == 2 and run.evals[1] >= 69 and run.evals[-1] > 100
    assert run.within(100)[0].tolist() == [0, run.evals[1]]


def test_step_costs_counts_evaluations_and_state():
    x = mx.nd.array(np.random.RandomState(0).rand(32, 784).astype(np.float32))
    y = mx.nd.array(np.arange(32) % 10)
    cost = lab.step_costs({'SGD': ('gluon_opt.sgd', {'learning_rate': 0.1}),
                           'Adam': ('gluon_opt.adam', {}),
                           'HF': ('gluon_opt.hessian_free', {'max_cg_iter': 3})},
                          x, y, lambda: models.mlp(hidden=(8,)), steps=2)
    n = 784 * 8 + 8 + 8 * 10 + 10
    assert all(c['params'] == n and c['seconds'] > 0 for c in cost.values())
    assert cost['SGD']['evals'] == cost['Adam']['evals'] == 1
    assert cost['SGD']['state_bytes'] == 0 and cost['Adam']['state_bytes'] == 2 * 4 * n
    assert cost['HF']['evals'] > cost['Adam']['evals']
