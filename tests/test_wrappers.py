"""Lookahead's delegation to the inner optimizer."""
import pickle

import numpy as np
import pytest
import mxnet as mx
from mxnet import nd, gluon

import gluon_opt
from helpers import create, random_problem, run_updates, classification_data, small_mlp, \
    train_steps


def test_k_equal_one_and_alpha_one_is_the_inner_optimizer():
    w0, grads = random_problem(0, (5, 4), 10)
    wrapped, _ = run_updates(create('lookahead', optimizer='gluon_opt.adam', k=1, alpha=1.0,
                                    learning_rate=0.01, beta1=0.8), w0, grads)
    plain, _ = run_updates(create('adam', learning_rate=0.01, beta1=0.8), w0, grads)
    np.testing.assert_allclose(wrapped.asnumpy(), plain.asnumpy(), rtol=1e-6, atol=1e-7)


def test_hyperparameters_reach_the_inner_optimizer():
    opt = create('lookahead', optimizer='gluon_opt.adamw', beta2=0.95)
    assert opt.inner.beta2 == 0.95
    assert opt.learning_rate == opt.inner.learning_rate == 0.001
    assert opt.wd == 0.01  # AdamW's default weight decay, the wrapper's too
    opt.set_learning_rate(0.5)
    assert opt.inner.learning_rate == 0.5
    with pytest.raises(ValueError, match='bogus'):
        create('lookahead', optimizer='gluon_opt.adam', bogus=1)
    for key, value in (('k', 0), ('alpha', 0.0), ('alpha', 1.5), ('optimizer', 3),
                       ('optimizer', 'sgd')):  # MXNet's own sgd: not a gluon_opt optimizer
        with pytest.raises(ValueError, match=key):
            create('lookahead', **{key: value})


def test_an_optimizer_instance_can_be_wrapped_and_pickled():
    inner = gluon_opt.SGD(learning_rate=0.1, momentum=0.9)
    opt = create('lookahead', optimizer=inner, k=3)
    w0, grads = random_problem(1, (6,), 9)
    w, state = run_updates(opt, w0, grads[:4])
    clone = pickle.loads(pickle.dumps(opt))
    state2 = pickle.loads(pickle.dumps(state))
    w2 = w.copy()
    for g in grads[4:]:
        opt.update(0, w, nd.array(g), state)
        clone.update(0, w2, nd.array(g), state2)
    np.testing.assert_array_equal(w.asnumpy(), w2.asnumpy())
    with pytest.raises(ValueError, match='optimizer'):
        create('lookahead', optimizer=inner, momentum=0.5)


def test_rescale_and_clip_are_applied_once():
    w0, grads = random_problem(2, (7,), 6, scale=3.0)
    opt = create('lookahead', optimizer='gluon_opt.sgd', k=2, learning_rate=0.1,
                 rescale_grad=0.5, clip_gradient=0.4)
    w, _ = run_updates(opt, w0, grads)
    ref = create('lookahead', optimizer='gluon_opt.sgd', k=2, learning_rate=0.1)
    w_ref, _ = run_updates(ref, w0, [np.clip(0.5 * g, -0.4, 0.4) for g in grads])
    np.testing.assert_allclose(w.asnumpy(), w_ref.asnumpy(), rtol=1e-6)


def test_wrapping_muon_keeps_its_routing_and_adamw_rates():
    """Lookahead(Muon) with k larger than the run is Muon itself, names and rates included."""
    x, y = classification_data()
    out = []
    for name, extra in (('gluon_opt.lookahead', {'optimizer': 'gluon_opt.muon', 'k': 100}),
                        ('gluon_opt.muon', {})):
        net = small_mlp(seed=6)
        net[1].weight.wd_mult = 0.0
        kwargs = dict(extra, learning_rate=0.02, adamw_params=[net[1].weight.name],
                      adamw_lr=0.004, adamw_wd=0.3)
        trainer = gluon.Trainer(net.collect_params(), name, kwargs)
        train_steps(net, trainer, x, y, steps=5)
        out.append([p.data().asnumpy() for p in net.collect_params().values()])
    for a, b in zip(*out):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7)
