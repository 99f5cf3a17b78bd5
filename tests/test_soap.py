"""SOAP (gluon_opt/optimizers/contrib/soap.py) against pytorch-optimizer's SOAP, the authors'
algorithm as the paper's code has it, over many steps in float64; and its own properties (the
setup step, the bases, the axes left unpreconditioned, the state sizes)."""
import numpy as np
import pytest
import mxnet as mx
from mxnet import nd

import gluon_opt
from gluon_opt.optimizers.contrib.soap import project

torch = pytest.importorskip('torch', reason='the oracle extra (pip install -e .[oracle])')
soap_oracle = pytest.importorskip(
    'pytorch_optimizer.optimizer.soap',
    reason='pytorch-optimizer (pip install --no-deps pytorch-optimizer==4.1.0)')

STEPS = 45
# A square matrix, a matrix whose long axis exceeds max_precond_dim (identity there) and a 3-D
# tensor (one factor per axis): every factor has full rank from the first gradient on, so its
# eigenbasis is unique up to column signs (which the update does not see). A rank-deficient
# factor (a tall matrix's G G^T, a vector with precondition_1d) has a degenerate eigenspace
# whose basis is the eigensolver's arbitrary choice: no elementwise comparison is meaningful
# there (see the class docstring). The vector takes SOAP's plain-Adam path.
SHAPES = [(6, 6), (4, 30), (3, 4, 5), (6,)]
HYPER = dict(learning_rate=0.01, beta1=0.9, beta2=0.95, shampoo_beta=0.9, wd=0.05,
             max_precond_dim=10, epsilon=1e-8)


def _problem(seed=0):
    rng = np.random.RandomState(seed)
    w0 = [rng.randn(*s) for s in SHAPES]
    grads = [[rng.randn(*s) for s in SHAPES] for _ in range(STEPS)]
    return w0, grads


def _oracle(w0, grads, frequency, **hyper):
    params = [torch.tensor(w.copy(), requires_grad=True) for w in w0]
    opt = soap_oracle.SOAP(params, lr=hyper['learning_rate'],
                           betas=(hyper['beta1'], hyper['beta2']),
                           shampoo_beta=hyper['shampoo_beta'], weight_decay=hyper['wd'],
                           precondition_frequency=frequency,
                           max_precondition_dim=hyper['max_precond_dim'], eps=hyper['epsilon'])
    for step in grads:
        for p, g in zip(params, step):
            p.grad = torch.tensor(g)
        opt.step()
    return params, opt


def _ours(w0, grads, frequency, dtype='float64', **hyper):
    opt = mx.optimizer.create('gluon_opt.soap', precondition_frequency=frequency, **hyper)
    weights = [nd.array(w, dtype=dtype) for w in w0]
    states = [opt.create_state(i, w) for i, w in enumerate(weights)]
    for step in grads:
        for i, (w, g) in enumerate(zip(weights, step)):
            opt.update(i, w, nd.array(g, dtype=dtype), states[i])
    return weights, states, opt


def _rel(a, b):
    return float(np.abs(a - b).max() / np.abs(b).max())


def _compare(frequency, wtol, stol):
    w0, grads = _problem()
    params, oracle = _oracle(w0, grads, frequency, **HYPER)
    weights, states, opt = _ours(w0, grads, frequency, **HYPER)
    errors = {}
    for shape, p, w, s in zip(SHAPES, params, weights, states):
        ref = oracle.state[p]
        mean, var, factors, bases, counter = opt._parts(shape, s)
        assert counter.asscalar() == STEPS
        errors[shape] = {'weight': _rel(w.asnumpy(), p.detach().numpy())}
        # the oracle keeps the first moment in the original basis, we in the eigenbasis
        errors[shape]['exp_avg'] = _rel(project(mean, bases, back=True).asnumpy(),
                                        ref['exp_avg'].numpy())
        errors[shape]['exp_avg_sq'] = _rel(var.asnumpy(), ref['exp_avg_sq'].numpy())
        for i, (factor, basis) in enumerate(zip(factors, bases)):
            if factor is None:
                assert len(ref['GG'][i]) == 0
                continue
            errors[shape]['gg%d' % i] = _rel(factor.asnumpy(), ref['GG'][i].numpy())
            q, q_ref = basis.asnumpy(), ref['Q'][i].numpy()
            signs = np.sign(np.sum(q * q_ref, axis=0))  # columns are defined up to sign
            errors[shape]['q%d' % i] = _rel(q, q_ref * signs)
    print('SOAP vs pytorch_optimizer.SOAP, %d steps, precondition_frequency=%d: max relative '
          'error %s' % (STEPS, frequency, {s: max(e.values()) for s, e in errors.items()}))
    for shape, errs in errors.items():
        assert errs['weight'] < wtol, (shape, errs)
        assert max(errs.values()) < stol, (shape, errs)


def test_matches_oracle_without_refresh():
    """The bases from the first step's eigendecomposition only (the refresh never comes):
    both sides are float64 throughout (eigh, products), so they agree to rounding: 1e-15 per
    operation, grown through 45 steps and eigenvectors whose sensitivity is 1/eigengap (gaps
    of ~0.1 relative here), measured 6e-15; 1e-10 keeps margin and a wrong formula shows at
    1e-3."""
    _compare(frequency=1000, wtol=1e-10, stol=1e-9)


def test_matches_oracle_with_refreshes():
    """Refreshes every 4 steps (11 of them in 45 steps). The oracle runs its QR in float32
    (``power_iter.to(torch.float32)``, to be safe in bfloat16 training), so its bases are
    orthonormal only to ~6e-8 (float32's unit roundoff) and the trajectories part at that
    level: measured ~1e-8 relative in the weights, a few 1e-7 in the states of the smaller
    eigenvalues. 1e-6 for the weights and 1e-5 for the states leave margin; a wrong sort, a
    missing reordering of the second moment or a stale first moment shows at 1e-2."""
    _compare(frequency=4, wtol=1e-6, stol=1e-5)


def test_first_step_only_sets_up():
    opt = mx.optimizer.create('gluon_opt.soap', wd=0.1)
    w = nd.array(np.random.RandomState(1).randn(5, 3))
    before = w.asnumpy()
    state = opt.create_state(0, w)
    opt.update(0, w, nd.array(np.random.RandomState(2).randn(5, 3)), state)
    np.testing.assert_array_equal(w.asnumpy(), before)  # not even the decay
    mean, var, factors, bases, counter = opt._parts(w.shape, state)
    assert counter.asscalar() == 1 and not mean.asnumpy().any() and not var.asnumpy().any()
    for factor, basis in zip(factors, bases):
        q = basis.asnumpy()
        np.testing.assert_allclose(q.T @ q, np.eye(q.shape[0]), atol=1e-5)
        eig = np.diag(q.T @ factor.asnumpy() @ q)
        assert np.all(np.diff(eig) <= 1e-6)  # descending


def test_setup_follows_the_state_not_mxnets_count():
    """begin_num_update starts MXNet's count elsewhere: the setup still comes first."""
    opt = mx.optimizer.create('gluon_opt.soap', begin_num_update=100)
    w = nd.ones((4, 4))
    state = opt.create_state(0, w)
    opt.update(0, w, nd.array(np.random.RandomState(3).randn(4, 4)), state)
    assert (w.asnumpy() == 1).all() and np.abs(opt._parts(w.shape, state)[3][0].asnumpy()).sum()


def test_long_axes_and_vectors_keep_the_identity():
    opt = mx.optimizer.create('gluon_opt.soap', max_precond_dim=8)
    assert opt.state_names_for((4, 30)) == ('exp_avg', 'exp_avg_sq', 'gg0', 'q0', 'step')
    assert opt.state_names_for((30,)) == ('exp_avg', 'exp_avg_sq', 'step')
    assert mx.optimizer.create('gluon_opt.soap', precondition_1d=True).state_names_for(
        (30,)) == ('exp_avg', 'exp_avg_sq', 'gg0', 'q0', 'step')


@pytest.mark.parametrize('shape', [(256, 784), (256,), (10, 256), (64, 3, 7, 7), (20000, 8)])
def test_state_bytes_record_counts_the_states(shape):
    opt = mx.optimizer.create('gluon_opt.soap')
    state = opt.create_state(0, nd.zeros(shape))
    held = sum(4 * s.size for s in state)
    assert gluon_opt.optimizers.info('soap').state_nbytes([shape]) == held


def test_fused_path_runs_its_kernels(monkeypatch):
    """Parity with the reference (tests/test_fused.py) would also hold if the composite path
    silently fell back to the reference: every tensor's step after the setup ends in one
    gopt_adam pass (Adam in the eigenbasis) and one gopt_muon_apply pass (decay and step)."""
    from gluon_opt import kernels
    if not kernels.available():
        pytest.skip('fused kernels unavailable on this machine (no compiler?)')
    called, real = [], kernels._Call.__call__

    def spy(self, *args, **kwargs):
        called.append((self.op, self.n))
        return real(self, *args, **kwargs)
    monkeypatch.setattr(kernels._Call, '__call__', spy)
    shapes = [(7, 5), (3, 4, 2), (9,)]
    rng = np.random.RandomState(4)
    opt = mx.optimizer.create('gluon_opt.soap', use_fused=True, precondition_frequency=2)
    weights = [nd.array(rng.randn(*s)) for s in shapes]
    states = [opt.create_state_multi_precision(i, w) for i, w in enumerate(weights)]
    for step in range(3):
        opt.update_multi_precision(list(range(len(shapes))), weights,
                                   [nd.array(rng.randn(*s)) for s in shapes], states)
        expected = [] if step == 0 else [('gopt_adam', 3), ('gopt_muon_apply', 3)]
        assert called == expected, step
        del called[:]


def test_fused_path_is_opt_in(monkeypatch):
    monkeypatch.delenv('GLUON_OPT_IMPL', raising=False)
    assert not mx.optimizer.create('gluon_opt.soap')._fused_selected()
    monkeypatch.setenv('GLUON_OPT_IMPL', 'reference')
    assert not mx.optimizer.create('gluon_opt.soap', use_fused=None)._fused_selected()
    from gluon_opt import kernels
    if kernels.available():
        assert mx.optimizer.create('gluon_opt.soap', use_fused=True)._fused_selected()
        monkeypatch.setenv('GLUON_OPT_IMPL', 'fused')
        assert mx.optimizer.create('gluon_opt.soap')._fused_selected()
