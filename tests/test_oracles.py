"""Every table entry against every independent implementation that can express it: MXNet's
fused ops, ONNX's reference training operators, torch.optim (skipped when torch is missing)."""
import importlib.util

import numpy as np
import pytest

from optimizer_table import TABLE, STEPS
from oracles import MXNET_OPS, ONNX_OPS, TORCH, Unsupported
from helpers import create, random_problem, flat_states, run_updates

HAVE_TORCH = importlib.util.find_spec('torch') is not None

CASES = []
for e in TABLE:
    if 'state_dtype' in e.kwargs:  # the oracles keep float32 states (tests/test_lowprec.py)
        continue
    for source, table in (('mxnet', MXNET_OPS), ('onnx', ONNX_OPS), ('torch', TORCH)):
        if e.name in table:
            marks = [] if source != 'torch' or HAVE_TORCH else [
                pytest.mark.skip(reason='torch is not installed (pip install -e .[oracle])')]
            CASES.append(pytest.param(e, source, table[e.name], id='%s-%s' % (e.id, source),
                                      marks=marks))


def test_the_oracles_cover_the_classics():
    named = {e.name for e in TABLE}
    for name in ('sgd', 'adam', 'adamw'):
        assert name in named and name in TORCH
    assert {'sgd', 'adam'} <= set(MXNET_OPS) and {'sgd', 'adam'} <= set(ONNX_OPS)


def test_every_declared_oracle_is_the_one_the_tests_run():
    # the records (gluon_opt.optimizers.info) name the torch.optim class that checks each
    # optimizer: the conformance tests must run exactly those
    from gluon_opt.optimizers import infos
    table = {e.name for e in TABLE if not e.closure}  # L-BFGS: test_second_order.py
    declared = {i.name for i in infos() if 'torch.optim.' in i.oracle and i.name in table}
    assert declared == set(TORCH)
    mxnet = {i.name for i in infos() if "MXNet's" in i.oracle}
    assert mxnet <= set(MXNET_OPS)


@pytest.mark.parametrize('e,source,oracle', CASES)
def test_matches_independent_implementation(e, source, oracle):
    kwargs = dict(e.kwargs)
    lr = kwargs.pop('learning_rate')
    wd = kwargs.pop('wd', 0.0 if e.name != 'adamw' else 0.01)
    w0, grads = random_problem(11, (6, 5), STEPS)
    try:
        w_ref, states_ref = oracle(w0, grads, lr, wd, **kwargs)
    except Unsupported as exc:
        pytest.skip('%s cannot express this configuration: %s' % (source, exc))
    opt = create(e.name, learning_rate=lr, wd=wd, **kwargs)
    w, state = run_updates(opt, w0, grads)
    # Both sides are float32 implementations of the same arithmetic in a different order:
    # differences are rounding, a few ulps per step, accumulated over STEPS steps.
    np.testing.assert_allclose(w.asnumpy(), w_ref, rtol=1e-4, atol=1e-5)
    if states_ref is not None:
        names = opt.state_names_for(w0.shape)
        assert len(names) == len(states_ref)
        for name, a, b in zip(names, flat_states(state), states_ref):
            np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5, err_msg=name)
