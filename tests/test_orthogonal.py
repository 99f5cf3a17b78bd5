"""Muon's own checks: the Newton-Schulz orthogonalisation, the matrix update on a problem it
is made for, and the routing of tensors between Muon and AdamW."""
import pickle
import re

import numpy as np
import pytest
import mxnet as mx
from mxnet import nd, gluon

from gluon_opt.optimizers.contrib.orthogonal import newton_schulz
from helpers import create, classification_data, small_mlp, train_steps


@pytest.mark.parametrize('shape', [(30, 20), (20, 30), (16, 16), (64, 8)])
def test_newton_schulz_gives_singular_values_near_one(shape):
    rng = np.random.RandomState(0)
    g = rng.randn(*shape).astype(np.float32)
    o = newton_schulz(nd.array(g), steps=5).asnumpy()
    assert o.shape == g.shape
    s = np.linalg.svd(o, compute_uv=False)
    # Keller's coefficients map every singular value of the normalised matrix into about
    # [0.68, 1.13] after five steps (they trade exact orthogonality for speed), not onto 1
    assert s.min() > 0.6 and s.max() < 1.2, s
    # ... and keep the singular vectors: o is close to U V^T (the polar factor)
    u, _, vt = np.linalg.svd(g, full_matrices=False)
    polar = u @ vt
    cos = np.sum(o * polar) / (np.linalg.norm(o) * np.linalg.norm(polar))
    assert cos > 0.97, cos


def test_newton_schulz_of_an_orthogonal_matrix_stays_close():
    q, _ = np.linalg.qr(np.random.RandomState(1).randn(12, 12))
    o = newton_schulz(nd.array(q.astype(np.float32))).asnumpy()
    s = np.linalg.svd(o, compute_uv=False)
    assert np.all((s > 0.6) & (s < 1.2)), s


def _least_squares(opt, steps, seed=0):
    """min_W ||W A - B||^2 / n for an (8, 6) W; returns the losses."""
    rng = np.random.RandomState(seed)
    a = rng.randn(6, 64)
    a[0] *= 10.0  # an ill-conditioned input: plain gradient steps crawl along a[5]
    target = rng.randn(8, 6)
    b = target @ a
    w = nd.zeros((8, 6))
    state = opt.create_state_multi_precision(0, w)
    losses = []
    for _ in range(steps):
        r = w.asnumpy() @ a - b
        losses.append(np.mean(r ** 2))
        opt.update_multi_precision(0, w, nd.array(r @ a.T / a.shape[1]), state)
    return losses, np.abs(w.asnumpy() - target).max()


def test_muon_minimises_a_matrix_least_squares_problem():
    sched = mx.lr_scheduler.CosineScheduler(max_update=300, base_lr=0.1, final_lr=1e-4)
    losses, err = _least_squares(create('muon', learning_rate=0.1, lr_scheduler=sched), 300)
    assert losses[-1] < 1e-3 * losses[0], (losses[0], losses[-1])
    assert err < 0.05, err


def test_muon_update_has_the_documented_scale():
    """One step from zero momentum: W moves by lr * s * NS(g (1 + momentum)), whose singular
    values are those of NS, so the step's spectral norm is lr * s * ~1."""
    g = np.random.RandomState(2).randn(12, 3).astype(np.float32)
    for scaling, s in (('keller', 2.0), ('moonshot', 0.2 * np.sqrt(12))):
        opt = create('muon', learning_rate=0.1, scaling=scaling)
        w = nd.zeros((12, 3))
        opt.update_multi_precision(0, w, nd.array(g), opt.create_state_multi_precision(0, w))
        sv = np.linalg.svd(w.asnumpy(), compute_uv=False)
        np.testing.assert_allclose(sv / (0.1 * s), 1.0, atol=0.35)


def test_vectors_and_selected_matrices_take_adamw():
    net = small_mlp()
    params = list(net.collect_params().values())
    first, second = net[0].weight.name, net[1].weight.name  # names depend on creation order
    opt = create('muon', adamw_params=re.escape(second) + '$')
    opt.param_dict = dict(enumerate(params))
    kinds = {p.name: len(opt.create_state(i, p.data())) for i, p in enumerate(params)}
    # one momentum buffer for Muon, two Adam moments for AdamW
    assert kinds == {first: 1, net[0].bias.name: 2, second: 2, net[1].bias.name: 2}, kinds
    opt = create('muon', adamw_params=[first])
    opt.param_dict = dict(enumerate(params))
    assert [len(opt.create_state(i, p.data())) for i, p in enumerate(params)] == [2, 2, 1, 2]
    assert len(create('muon', flatten=False).create_state(0, nd.zeros((2, 3, 4)))) == 2
    assert len(create('muon').create_state(0, nd.zeros((2, 3, 4)))) == 1


def test_adamw_tensors_follow_their_own_rates_and_the_schedule():
    g = np.random.RandomState(3).randn(5).astype(np.float32)
    w0 = np.random.RandomState(4).randn(5).astype(np.float32)
    def one_step(**kw):
        opt = create('muon', **kw)
        w = nd.array(w0)
        opt.update_multi_precision(0, w, nd.array(g), opt.create_state_multi_precision(0, w))
        return w.asnumpy()
    # adamw_lr=0.001 beside learning_rate=0.02 is the same as an AdamW step at 0.001
    ref = create('adamw', learning_rate=0.001, wd=0.0, beta1=0.9, beta2=0.95)
    w = nd.array(w0)
    ref.update(0, w, nd.array(g), ref.create_state(0, w))
    np.testing.assert_allclose(one_step(learning_rate=0.02, adamw_lr=0.001), w.asnumpy(),
                               rtol=1e-6)
    np.testing.assert_allclose(one_step(learning_rate=0.02, adamw_wd=0.5),
                               one_step(learning_rate=0.02) - 0.02 * 0.5 * w0, rtol=1e-5)
    with pytest.raises(ValueError, match='adamw_lr'):
        create('muon', learning_rate=0.0, adamw_lr=0.01)


def test_bad_muon_hyperparameters_name_themselves():
    for key, value in (('ns_steps', 0), ('scaling', 'spectral'), ('adamw_beta2', 1.0),
                       ('adamw_epsilon', 0.0), ('adamw_params', 3), ('adamw_betas', (0.9,))):
        with pytest.raises(ValueError, match=key):
            create('muon', **{key: value})


def test_trainer_with_a_name_selector_saves_and_loads(tmp_path):
    x, y = classification_data()
    net = small_mlp(seed=3)
    trainer = gluon.Trainer(net.collect_params(), 'gluon_opt.muon',
                            {'learning_rate': 0.02, 'adamw_params': r'dense1_',
                             'adamw_lr': 0.005})
    losses = train_steps(net, trainer, x, y, steps=20)
    assert losses[-1] < losses[0]
    trainer.save_states(str(tmp_path / 's'))
    trainer.load_states(str(tmp_path / 's'))
    assert trainer._optimizer.adamw_params == r'dense1_'
    with pytest.raises(Exception):
        pickle.dumps(create('muon', adamw_params=lambda name: True))
