"""What the generic tests cannot see for Lion, LAMB, LARS and Adafactor: fixed-size sign
steps, the zero-norm rule of the trust ratios, Adafactor's shape-dependent factored states
(including tensors of more than two dimensions) and its learning-rate options."""
import numpy as np
import pytest
from mxnet import nd

from references import REFERENCES
from oracles import MXNET_OPS
from helpers import create, random_problem, flat_states, run_updates


def test_lion_moves_every_coordinate_by_exactly_lr():
    w0, grads = random_problem(20, (5, 4), 3)
    opt = create('lion', learning_rate=0.01)
    w, _ = run_updates(opt, w0, grads[:1])
    # first step: m = 0, so c = (1 - beta1) g and every coordinate moves by lr
    np.testing.assert_allclose(np.abs(w.asnumpy() - w0), 0.01, rtol=1e-5)
    np.testing.assert_array_equal(np.sign(w0 - w.asnumpy()), np.sign(grads[0]))


def test_lion_decay_is_scaled_by_the_learning_rate():
    w0 = np.full((3,), 2.0, np.float32)
    opt = create('lion', learning_rate=0.1, wd=0.5)
    w, _ = run_updates(opt, w0, [np.zeros(3, np.float32)])  # sign(0) = 0: decay only
    np.testing.assert_allclose(w.asnumpy(), 2.0 * (1 - 0.1 * 0.5), rtol=1e-6)


@pytest.mark.parametrize('name,kwargs', [
    ('lamb', dict(learning_rate=0.01, wd=0.1)),
    ('lamb', dict(learning_rate=0.01, lower_bound=0.5)),
    ('lars', dict(learning_rate=0.1, momentum=0.9, eta=0.01, wd=0.1)),
])
def test_trust_ratio_of_a_zero_weight(name, kwargs):
    """A zero weight (a freshly zeroed bias) has ||w|| = 0: the ratio is 1 (or, for LAMB
    with a lower bound, lower_bound / ||r||), never nan."""
    _, grads = random_problem(21, (6,), 5)
    w0 = np.zeros(6, np.float32)
    kw = dict(kwargs)
    lr, wd = kw.pop('learning_rate'), kw.pop('wd', 0.0)
    w, state = run_updates(create(name, learning_rate=lr, wd=wd, **kw), w0, grads)
    w_ref, states_ref = REFERENCES[name](w0, [g.astype(np.float64) for g in grads], lr, wd,
                                         **kw)
    assert np.isfinite(w.asnumpy()).all()
    np.testing.assert_allclose(w.asnumpy(), w_ref, rtol=1e-4, atol=1e-6)
    for a, b in zip(flat_states(state), states_ref):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6)
    # MXNet's own LAMB/LARS take the same convention (float32 against float32: rounding only)
    w_mx, _ = MXNET_OPS[name](w0, grads, lr, wd, **kw)
    np.testing.assert_allclose(w.asnumpy(), w_mx, rtol=1e-4, atol=1e-6)


def test_lars_zero_gradient_leaves_only_weight_decay():
    """||g|| = 0: local rate 1, so the step is lr * wd * w (not eta-scaled)."""
    w0 = np.array([3.0, 4.0], np.float32)
    opt = create('lars', learning_rate=0.1, eta=0.001, wd=0.5)
    w, _ = run_updates(opt, w0, [np.zeros(2, np.float32)])
    np.testing.assert_allclose(w.asnumpy(), w0 * (1 - 0.1 * 0.5), rtol=1e-6)


@pytest.mark.parametrize('beta1', [None, 0.9])
def test_adafactor_factors_the_last_two_axes(beta1):
    w0, grads = random_problem(22, (3, 4, 5), 20)
    opt = create('adafactor', beta1=beta1)
    w, state = run_updates(opt, w0, grads)
    names = opt.state_names_for(w0.shape)
    shapes = [s.shape for s in state]
    assert names[:2] == ('exp_avg_sq_row', 'exp_avg_sq_col')
    assert shapes[:2] == [(3, 4), (3, 5)]  # n + m numbers per matrix instead of n * m
    assert len(state) == len(names) == (3 if beta1 else 2)
    w_ref, states_ref = REFERENCES['adafactor'](w0, [g.astype(np.float64) for g in grads],
                                                1.0, 0.0, beta1=beta1)
    np.testing.assert_allclose(w.asnumpy(), w_ref, rtol=1e-4, atol=1e-6)
    for name, a, b in zip(names, flat_states(state), states_ref):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6, err_msg=name)


def test_adafactor_vectors_keep_a_full_second_moment():
    opt = create('adafactor', beta1=0.5)
    assert opt.state_names_for((7,)) == ('exp_avg_sq', 'exp_avg')
    assert [s.shape for s in opt.create_state(0, nd.zeros(7))] == [(7,), (7,)]


def test_adafactor_relative_step_follows_huggingface():
    opt = create('adafactor')
    assert opt.relative_step_size(1) == pytest.approx(1e-2)
    assert opt.relative_step_size(10 ** 6) == pytest.approx(1e-3)
    warm = create('adafactor', warmup_init=True)
    assert warm.relative_step_size(100) == pytest.approx(1e-4)
    assert create('adafactor', relative_step=False, learning_rate=0.1) \
        .relative_step_size(5) == 1.0


def test_adafactor_update_is_clipped_by_its_rms():
    """First step with a fixed learning rate: v = g^2 + eps1, so u = g/|g| = sign(g) with
    RMS 1; a clip_threshold of 0.25 scales it to RMS 0.25."""
    w0 = np.zeros(4, np.float32)
    g = np.array([1.0, -2.0, 3.0, -4.0], np.float32)
    opt = create('adafactor', learning_rate=0.1, relative_step=False, scale_parameter=False,
                 clip_threshold=0.25)
    w, _ = run_updates(opt, w0, [g])
    np.testing.assert_allclose(w.asnumpy(), -0.1 * 0.25 * np.sign(g), rtol=1e-5)


@pytest.mark.parametrize('kwargs,match', [
    (dict(relative_step=False), 'learning_rate'),
    (dict(warmup_init=True, relative_step=False, learning_rate=0.1), 'warmup_init'),
    (dict(decay_rate=0.5), 'decay_rate'),
    (dict(clip_threshold=0.0), 'clip_threshold'),
    (dict(epsilon1=0.0), 'epsilon1'),
    (dict(beta1=1.0), 'beta1'),
])
def test_adafactor_rejects_bad_options(kwargs, match):
    with pytest.raises(ValueError, match=match):
        create('adafactor', **kwargs)


@pytest.mark.parametrize('name,kwargs,match', [
    ('lamb', dict(lower_bound=0.0), 'lower_bound'),
    ('lamb', dict(lower_bound=2.0, upper_bound=1.0), 'lower_bound'),
    ('lamb', dict(epsilon=0.0), 'epsilon'),
    ('lars', dict(eta=0.0), 'eta'),
    ('lars', dict(epsilon=-1.0), 'epsilon'),
])
def test_layerwise_rejects_bad_options(name, kwargs, match):
    with pytest.raises(ValueError, match=match):
        create(name, **kwargs)
