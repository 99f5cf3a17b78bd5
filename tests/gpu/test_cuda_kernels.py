"""The CUDA driver of the rule ops against their CPU driver, without MXNet.

Two backends. ``cuda``: on a GPU machine (skipped where there is no nvcc, CuPy or CUDA GPU, as
in CI). ``emulated``: the same driver compiled by the C++ compiler over ``emulate/``, a CPU
stand-in for the CUDA runtime, so that its logic is tested everywhere, CI included (not nvcc's
code generation: only a GPU checks that). On a GPU machine, from the repository root
(``--noconftest``: the suite's conftest imports MXNet)::

    GLUON_OPT_MXNET_DIR=<folder with include/mxnet/lib_api.h and src/lib_api.cc> \\
        python -m pytest tests/gpu --noconftest -o addopts= -q

Every call in ``cases.json`` (captured from gluon_opt's real fused path: the optimizer table's
fused entries and the extra cases, float32 and float16 with master weights, rescaled and clipped
gradients, several tensors per call, tensors over several CUDA blocks) runs three times on the
CPU and on the GPU from the same random arrays, through the same entry MXNet calls; after each
call every array (weights, float16 copies, states, the small per-tensor states) must agree.
The rules are one code for both drivers and nvcc builds without FMA contraction and with IEEE
division and square root, so the agreement is bitwise; LAMB's and LARS's norms are double sums
in another order (per CUDA block against per OpenMP block), which may move a norm by an ulp:
for those two the bound is 1e-6 of the array's largest magnitude.
"""
import numpy as np
import pytest

import harness as h

CASES = h.load_cases()
GPU_OPS = set(CASES['gpu_ops'])
GPU_CALLS = [c for c in CASES['calls'] if c['op'] in GPU_OPS]
REPEATS = 3
NORM_OPS = {'gopt_lamb', 'gopt_lars',
            # -- ademamix, mars (issue 20) --: MARS clips c by its norm (a double sum)
            'gopt_mars', 'gopt_mars_moments'}


class Backend(object):
    """A built harness and how to put arrays on its device."""

    def __init__(self, harness, copy):
        self.harness, self.copy = harness, copy

    def to_device(self, inputs, outputs):
        return h.to_device(inputs, outputs, self.copy)


@pytest.fixture(scope='module', params=['cuda', 'emulated'])
def backend(request, tmp_path_factory):
    """``cuda``: a real GPU (nvcc, CuPy, a CUDA device; skipped elsewhere). ``emulated``: the
    same driver built by the C++ compiler over ``emulate/``'s CPU stand-in for the CUDA runtime
    (runs in CI: checks the driver's logic, not nvcc's code)."""
    if h.mxnet_dir() is None:
        pytest.skip('no MXNet lib_api sources (set %s)' % h.MXNET_DIR_ENV)
    workdir = str(tmp_path_factory.mktemp(request.param))
    if request.param == 'emulated':
        return Backend(h.Harness(workdir, emulate=True), lambda a: np.array(a, copy=True))
    cp = pytest.importorskip('cupy')
    if h.build_module()._find_nvcc() is None:
        pytest.skip('no nvcc')
    try:
        if cp.cuda.runtime.getDeviceCount() < 1:
            pytest.skip('no CUDA device')
    except cp.cuda.runtime.CUDARuntimeError:
        pytest.skip('no CUDA device')
    return Backend(h.Harness(workdir), None)


def test_cases_cover_every_gpu_op():
    assert GPU_OPS == {c['op'] for c in GPU_CALLS}


def test_gpu_registrations_match_gpu_ops(backend):
    """The library registers a CUDA forward for exactly the ops Python sends to a GPU."""
    harness = backend.harness
    for op in sorted({c['op'] for c in CASES['calls']} | GPU_OPS | {'gopt_copy',
                                                                      'gopt_lookahead_sync'}):
        assert harness.has_forward(op, 'cpu') == 1, op
        assert harness.has_forward(op, 'gpu') == int(op in GPU_OPS), op


def _compare(op, host, dev, what):
    got = dev.get() if hasattr(dev, 'get') else dev
    if op in NORM_OPS:
        bound = 1e-6 * float(np.nanmax(np.abs(host.astype(np.float64)))) if host.size else 0
        np.testing.assert_allclose(got, host, rtol=0, atol=bound, err_msg=what)
    else:
        np.testing.assert_array_equal(got, host, err_msg=what)


@pytest.mark.parametrize('op', sorted(GPU_OPS))
def test_gpu_matches_cpu(backend, op):
    harness = backend.harness
    calls = [(i, c) for i, c in enumerate(GPU_CALLS) if c['op'] == op]
    for index, call in calls:
        inputs, outputs = h.host_arrays(call, seed=index)
        dev_in, dev_out = backend.to_device(inputs, outputs)
        run_cpu = harness.prepare(op, call['attrs'], inputs, outputs, 'cpu')
        run_gpu = harness.prepare(op, call['attrs'], dev_in, dev_out, 'gpu')
        for repeat in range(REPEATS):
            run_cpu()
            run_gpu()
            harness.sync()
            where = '%s, call %d' % (call['case'], repeat + 1)
            for k, (a, b) in enumerate(zip(inputs, dev_in)):
                _compare(op, a, b, '%s, input %d' % (where, k))
            for k, (a, b) in enumerate(zip(outputs, dev_out)):
                _compare(op, a, b, '%s, output %d' % (where, k))


def test_gpu_reports_bad_calls(backend):
    """A malformed call fails with the driver's message, and leaves the arrays untouched."""
    harness = backend.harness
    call = next(c for c in GPU_CALLS if c['op'] == 'gopt_adam')
    inputs, outputs = h.host_arrays(call, seed=0)
    dev_in, dev_out = backend.to_device(inputs, outputs)
    attrs = dict(call['attrs'], sc='0.1')
    with pytest.raises(RuntimeError, match='per-tensor scalars'):
        harness.prepare('gopt_adam', attrs, dev_in, dev_out, 'gpu')()
    harness.sync()
    for a, b in zip(inputs, dev_in):
        np.testing.assert_array_equal(b.get() if hasattr(b, 'get') else b, a)


def test_gpu_takes_many_tensors_in_one_call(backend):
    """200 tensors of mixed sizes (some empty, some over many CUDA blocks) in one Adam call."""
    harness = backend.harness
    template = next(c for c in GPU_CALLS if c['op'] == 'gopt_adam' and c['attrs']['ns'] == '2'
                    and c['attrs']['mp'] == '0')
    n0 = int(template['attrs']['n'])
    scalars = template['attrs']['sc'].split(',')
    per_tensor = scalars[:len(scalars) // n0]
    rng = np.random.RandomState(7)
    sizes = [0, 1, 16 * 1024, 16 * 1024 + 1, 100003] + list(rng.randint(1, 3000, size=195))
    call = {'attrs': dict(template['attrs'], n=str(len(sizes)), sc=','.join(per_tensor *
                                                                         len(sizes))),
            'inputs': [[[s], 'float32'] for s in sizes for _ in range(4)],
            'outputs': [[[s], 'float32'] for s in sizes],
            'alias': [4 * i for i in range(len(sizes))]}
    inputs, outputs = h.host_arrays(call, seed=1)
    dev_in, dev_out = backend.to_device(inputs, outputs)
    harness.prepare('gopt_adam', call['attrs'], inputs, outputs, 'cpu')()
    harness.prepare('gopt_adam', call['attrs'], dev_in, dev_out, 'gpu')()
    harness.sync()
    for k, (a, b) in enumerate(zip(inputs, dev_in)):
        _compare('gopt_adam', a, b, 'input %d' % k)
