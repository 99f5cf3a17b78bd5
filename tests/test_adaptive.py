"""Tests specific to the adaptive family and the newer Adam-family members, beyond the generic
table-driven ones."""
import numpy as np
import pytest
import mxnet as mx
from mxnet import nd

from helpers import create, random_problem, run_updates


def test_nadam_momentum_schedule_is_per_parameter():
    """Two parameters updated in an interleaved order end exactly where each ends when updated
    alone: the product of the mu's is each parameter's own state (MXNet 1.9.1's ``nadam``
    shares one ``m_schedule`` across parameters, see the next test)."""
    (wa, ga), (wb, gb) = random_problem(21, (5,), 8), random_problem(22, (3, 2), 8)
    opt = create('nadam', learning_rate=0.01)
    a, b = nd.array(wa), nd.array(wb)
    sa, sb = opt.create_state_multi_precision(0, a), opt.create_state_multi_precision(1, b)
    # b starts late and runs ahead; a catches up at the end
    order = [0, 0, 1, 0, 1, 1, 1, 1, 0, 1, 0, 0, 1, 0, 1, 0]
    ia = ib = 0
    for idx in order:
        if idx == 0:
            opt.update_multi_precision(0, a, nd.array(ga[ia]), sa)
            ia += 1
        else:
            opt.update_multi_precision(1, b, nd.array(gb[ib]), sb)
            ib += 1
    alone_a, state_a = run_updates(create('nadam', learning_rate=0.01), wa, ga)
    alone_b, _ = run_updates(create('nadam', learning_rate=0.01), wb, gb)
    np.testing.assert_array_equal(a.asnumpy(), alone_a.asnumpy())
    np.testing.assert_array_equal(b.asnumpy(), alone_b.asnumpy())
    np.testing.assert_array_equal(sa[2].asnumpy(), state_a[2].asnumpy())


def test_mxnet_builtin_nadam_shares_its_schedule():
    """Documents the MXNet 1.9.1 bug the per-parameter state fixes: its shared m_schedule
    makes a parameter's result depend on updates of another."""
    w0, grads = random_problem(23, (5,), 6)
    alone = nd.array(w0)
    opt = mx.optimizer.create('nadam', learning_rate=0.01)
    st = opt.create_state(0, alone)
    for g in grads:
        opt.update(0, alone, nd.array(g), st)
    opt = mx.optimizer.create('nadam', learning_rate=0.01)
    w, other = nd.array(w0), nd.zeros(5)
    st, so = opt.create_state(0, w), opt.create_state(1, other)
    for g in grads:
        opt.update(1, other, nd.array(g), so)
        opt.update(0, w, nd.array(g), st)
    assert not np.allclose(w.asnumpy(), alone.asnumpy(), rtol=1e-4, atol=1e-6)


def test_radam_rectification_switches_on_after_rho_exceeds_five():
    opt = create('radam')
    # beta2 = 0.999: rho_t is 1, 2, ... (about t) early on, so steps 1-5 are unrectified
    assert [opt.rectification(t) is None for t in range(1, 8)] == [True] * 5 + [False] * 2
    assert 0 < opt.rectification(6) < opt.rectification(1000) < 1


@pytest.mark.parametrize('centered,momentum,names', [
    (False, 0.0, ('square_avg',)),
    (True, 0.0, ('square_avg', 'grad_avg')),
    (False, 0.9, ('square_avg', 'momentum')),
    (True, 0.9, ('square_avg', 'grad_avg', 'momentum'))])
def test_rmsprop_states_follow_its_options(centered, momentum, names):
    opt = create('rmsprop', centered=centered, momentum=momentum)
    assert opt.state_names == names
    assert len(opt.create_state(0, nd.zeros(3))) == len(names)


def test_adagrad_accumulator_starts_at_the_initial_value():
    opt = create('adagrad', initial_accumulator_value=0.25)
    history, = opt.create_state(0, nd.zeros((2, 3)))
    np.testing.assert_array_equal(history.asnumpy(), 0.25)


@pytest.mark.parametrize('name,key,value', [
    ('adagrad', 'lr_decay', -0.1), ('adagrad', 'initial_accumulator_value', -1.0),
    ('adagrad', 'epsilon', 0.0), ('rmsprop', 'epsilon', -1e-8), ('adadelta', 'epsilon', 0.0),
    ('adadelta', 'rho', -0.1), ('nadam', 'schedule_decay', -0.004),
    ('adamax', 'epsilon', 0.0), ('adabelief', 'epsilon', -1.0), ('radam', 'beta2', 1.0)])
def test_hyperparameters_are_validated(name, key, value):
    with pytest.raises(ValueError, match=key):
        create(name, **{key: value})


def test_adadelta_accepts_rho_one():
    """rho = 1 is allowed (as in PyTorch): the averages then never move from zero and the
    step is lr * g."""
    w0, grads = random_problem(24, (4,), 3)
    w, _ = run_updates(create('adadelta', learning_rate=0.5, rho=1.0), w0, grads)
    np.testing.assert_allclose(w.asnumpy(), w0 - 0.5 * sum(grads), rtol=1e-5, atol=1e-6)
