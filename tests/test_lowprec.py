"""Optimizer states in bfloat16 and 8 bits (``state_dtype``, gluon_opt/optimizers/lowprec.py).

* The quantiser against an independent transcription of the paper's (blockwise_transcription.py,
  float64, sharing no code with gluon_opt): the dynamic map (values, order, ranges), the codes,
  the error per block within half the local map spacing, round trips, blocks of zeros and of
  non-finite values; the NumPy reference (``lowprec``) and the kernel (``gopt_blockwise_*``)
  give the same codes, bit for bit. bfloat16 rounding against a transcription without bit
  tricks (and torch's, where importable), stochastic rounding's noise against a pure-Python
  transcription of its hash, and its mean.
* Every optimizer that takes ``state_dtype``, on the reference and the fused path, against a
  float32 run whose states the transcription rounds after every step (the definition of the
  8-bit optimizer: the float32 rule, with the stored states rounded), tightly; the optimizer
  table's tolerances against the exact float64 runs fail for a wrong map or a skipped store.
* Memory, thresholds, refusals, states files converted between storages.

The generic tests (test_optimizers.py, test_fused.py) run the table's low-precision entries
too (``optimizer_table.lowprec_entry``): conformance, multi-precision, several contexts with and
without update_on_kvstore, save/load, pickling, fused against reference over 25 steps.
"""
import os
import sys

import numpy as np
import pytest
import mxnet as mx
from mxnet import nd, gluon

import gluon_opt
from gluon_opt import kernels
from gluon_opt.optimizers import lowprec

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import blockwise_transcription as bt  # noqa: E402
from helpers import create, random_problem, classification_data, small_mlp, train_steps  # noqa
from optimizer_table import TABLE, by_id, storage_of, STEPS  # noqa: E402
from references import REFERENCES  # noqa: E402

SIGNS = [pytest.param(True, id='signed'), pytest.param(False, id='unsigned')]


@pytest.fixture(scope='module')
def ops():
    if not kernels.available():
        pytest.skip('fused kernels unavailable on this machine (no compiler?)')
    return kernels.op


def wide_range(seed, n, signed):
    """Values over 9 decades (the dynamic map's range and beyond), signed or not."""
    rng = np.random.RandomState(seed)
    x = (rng.randn(n) * 10.0 ** -rng.uniform(0, 9, n)).astype(np.float32)
    return x if signed else np.abs(x)


def kernel_quantize(ops, x, signed, block):
    codes, scales = ops('gopt_blockwise_quantize')(nd.array(x), signed=int(signed), block=block)
    return codes.asnumpy(), scales.asnumpy()


# ---------------------------------------------------------------------------------------------
# The dynamic map

@pytest.mark.parametrize('signed', SIGNS)
def test_dynamic_map_is_the_papers(signed):
    ours = lowprec.dynamic_map(signed)
    theirs = bt.create_dynamic_map(signed)
    assert ours.dtype == np.float32 and ours.shape == (256,)
    assert np.all(np.diff(ours) > 0)  # sorted, no value twice
    assert ours[-1] == 1.0 and 0.0 in ours
    if signed:  # 127 negative values, 0, 127 positive ones and 1 (no -1)
        assert (ours < 0).sum() == 127 and ours[0] == np.float32(-(0.1 + 0.9 * 63.5 / 64))
    else:
        assert ours[0] == 0.0 and (ours > 0).sum() == 255
    # the smallest magnitude is the first mean of the 1e-6 decade
    assert np.abs(ours[ours != 0]).min() == np.float32(1e-6 * (0.1 + 0.9 * 0.5 / (1 + (not signed))))
    # each entry the transcription's float64 value rounded to float32, or its neighbour
    np.testing.assert_array_max_ulp(ours, theirs.astype(np.float32), maxulp=1)


@pytest.mark.parametrize('signed', SIGNS)
def test_dynamic_map_matches_bitsandbytes_float32_construction(signed):
    """bitsandbytes builds its map with torch's float32 linspace: the same values to an ulp."""
    torch = pytest.importorskip('torch')
    data = []
    for i in range(7):
        items = 2 ** i + 1 if signed else 2 ** (i + 1) + 1
        boundaries = torch.linspace(0.1, 1, items)
        means = (boundaries[:-1] + boundaries[1:]) / 2.0
        data += ((10 ** (-6 + i)) * means).tolist()
        if signed:
            data += (-(10 ** (-6 + i)) * means).tolist()
    theirs = torch.tensor(sorted(data + [0.0, 1.0])).numpy()
    np.testing.assert_array_max_ulp(lowprec.dynamic_map(signed), theirs, maxulp=2)


# ---------------------------------------------------------------------------------------------
# The quantiser

@pytest.mark.parametrize('block', [64, 256, 2048])
@pytest.mark.parametrize('signed', SIGNS)
def test_codes_are_the_nearest_map_values(ops, signed, block):
    """Our codes (reference and kernel) are the transcription's argmin, except where two map
    values are equally near within float rounding (float32 here, float64 there)."""
    x = wide_range(1, 3 * block + 37, signed)  # a partial last block
    x[block:2 * block] *= 1e-3  # a block of small values (its own absmax)
    qmap = bt.create_dynamic_map(signed)
    theirs, absmax = bt.quantize_blockwise(x, qmap, block)
    tie = bt.nearest_tie(x, qmap, block)
    assert tie.sum() <= 2
    ours, scales = lowprec.quantize(x, signed, block)
    np.testing.assert_array_equal(ours[~tie], theirs[~tie])
    np.testing.assert_array_equal(scales, absmax.astype(np.float32))
    k_codes, k_scales = kernel_quantize(ops, x, signed, block)
    np.testing.assert_array_equal(k_codes, ours)
    np.testing.assert_array_equal(k_scales, scales)


@pytest.mark.parametrize('signed', SIGNS)
def test_kernel_and_reference_agree_at_every_tie(ops, signed):
    """At every mid between two map values and the floats next to it, the code is the same
    (ties go to the larger value), whichever side of zero: the kernel's grid lookup and the
    reference's binary search count the same mids. Each block of 64 starts with a 1, so that
    its absmax is 1 and y = x."""
    mids = lowprec.midpoints(signed)
    x = np.concatenate([mids, np.nextafter(mids, np.float32(2)), np.nextafter(mids, np.float32(-2)),
                        -mids, [0.0, -0.0, 2 ** -23, 2 ** -24, -2 ** -23, 1e-30]])
    x = x.astype(np.float32) if signed else np.abs(x).astype(np.float32)
    blocks = np.ones((-(-len(x) // 63), 64), np.float32)
    blocks[:, 1:].flat[:len(x)] = x
    ours, scales = lowprec.quantize(blocks, signed, 64)
    assert np.all(scales == 1)
    np.testing.assert_array_equal(ours[:, 1:].ravel()[:255], np.arange(1, 256))  # ties upward
    np.testing.assert_array_equal(kernel_quantize(ops, blocks, signed, 64)[0], ours)


@pytest.mark.parametrize('signed', SIGNS)
def test_error_per_block_is_within_half_the_local_spacing(ops, signed):
    x = wide_range(2, 4096, signed)
    codes, scales = lowprec.quantize(x, signed, 256)
    back = lowprec.dequantize(codes, scales, signed, 256)
    qmap = lowprec.dynamic_map(signed).astype(np.float64)
    spacing = np.diff(qmap)
    local = np.maximum(spacing[np.clip(codes.astype(int) - 1, 0, 254)],
                       spacing[np.clip(codes.astype(int), 0, 254)])
    per_element = np.repeat(scales, 256).astype(np.float64)
    # half a spacing of the normalised value, scaled back; plus float32 rounding of x / absmax
    # and of the product (a few ulps of the absmax)
    bound = 0.5 * local * per_element + 4e-7 * per_element
    assert np.all(np.abs(back - x) <= bound)
    # the dynamic map keeps the digits of elements far below their block's absmax, which a
    # linear 8-bit map (steps of 1/127 or 1/255 of the absmax) rounds to zero or one step
    small = (np.abs(x) > 1e-4 * per_element) & (np.abs(x) < 1e-2 * per_element)
    rel = np.abs(back - x)[small] / np.abs(x[small])
    linear = np.linspace(-1 if signed else 0, 1, 256)
    y = x[small] / per_element[small]
    rel_linear = np.abs(linear[np.abs(y[:, None] - linear).argmin(axis=1)] - y) / np.abs(y)
    assert small.sum() > 500 and np.median(rel) < 0.15 < 0.9 < np.median(rel_linear)
    k = ops('gopt_blockwise_dequantize')(nd.array(codes, dtype=np.uint8), nd.array(scales),
                                        signed=int(signed), block=256).asnumpy()
    np.testing.assert_array_equal(k, back)
    # the transcription's dequantisation agrees (float64 there, float32 here)
    theirs = bt.dequantize_blockwise(codes, scales.astype(np.float64),
                                     bt.create_dynamic_map(signed), 256)
    np.testing.assert_allclose(back, theirs, rtol=3e-7, atol=0)


@pytest.mark.parametrize('signed', SIGNS)
def test_round_trips(signed):
    """Quantising dequantised values gives the same codes and scales back (a stored state
    read and stored again without an update does not drift), where a block's largest
    magnitude is positive. The signed map has 1 but not -1 (as bitsandbytes' has): a block
    whose largest magnitude is negative stores it as -0.993 of itself."""
    x = wide_range(3, 1024, signed).reshape(4, 256)
    x[:, 0] = np.abs(x).max(axis=1) * 1.5  # a positive absmax
    codes, scales = lowprec.quantize(x, signed, 256)
    back = lowprec.dequantize(codes, scales, signed, 256)
    codes2, scales2 = lowprec.quantize(back, signed, 256)
    np.testing.assert_array_equal(codes2, codes)
    np.testing.assert_array_equal(scales2, scales)
    if signed:
        x[:, 0] *= -1
        codes, scales = lowprec.quantize(x, signed, 256)
        back = lowprec.dequantize(codes, scales, signed, 256)
        np.testing.assert_allclose(back[:, 0], x[:, 0] * lowprec.dynamic_map(True)[0] * -1,
                                   rtol=1e-7)
        assert np.all(codes[:, 0] == 0)


def test_blocks_of_zeros_and_of_non_finite_values(ops):
    x = np.ones(4 * 64, np.float32)
    x[:64] = 0.0                     # zeros: scale 0, reads back zeros
    x[64:128] = 1e-40                # subnormal absmax: a block of zeros too
    x[130] = np.nan                  # a NaN: the whole block reads back NaN
    x[200] = -np.inf                 # an infinity likewise
    for signed in (True, False):
        codes, scales = lowprec.quantize(x, signed, 64)
        np.testing.assert_array_equal(scales[:2], 0.0)
        assert np.isnan(scales[2]) and np.isnan(scales[3])
        back = lowprec.dequantize(codes, scales, signed, 64)
        np.testing.assert_array_equal(back[:128], 0.0)
        assert np.isnan(back[128:]).all()
        k_codes, k_scales = kernel_quantize(ops, x, signed, 64)
        np.testing.assert_array_equal(k_codes, codes)
        np.testing.assert_array_equal(k_scales, scales)


# ---------------------------------------------------------------------------------------------
# bfloat16

def ties_and_randoms(seed=4):
    rng = np.random.RandomState(seed)
    x = (rng.randn(2000) * 10.0 ** rng.uniform(-20, 20, 2000)).astype(np.float32)
    # exact ties: a bfloat16 value plus half its last bit, odd and even last bits
    base = (np.arange(1, 201, dtype=np.uint32) << np.uint32(16)) | np.uint32(0x3f000000)
    tie = (base | np.uint32(0x8000)).view(np.float32)
    return np.concatenate([x, tie, -tie, [0.0, -0.0, np.inf, -np.inf]]).astype(np.float32)


def test_bfloat16_rounds_to_nearest_even(ops):
    x = ties_and_randoms()
    ours = lowprec.round_bfloat16(x)
    np.testing.assert_array_equal(lowprec.bfloat16_values(ours), bt.round_to_bfloat16(x))
    bits = ops('gopt_bfloat16_round')(nd.array(x)).asnumpy().view(np.uint16)[..., 0]
    np.testing.assert_array_equal(bits, ours)
    nan = lowprec.round_bfloat16(np.array([np.nan, -np.nan], np.float32))
    assert np.isnan(lowprec.bfloat16_values(nan)).all()


@pytest.mark.parametrize('fused', [False, True], ids=['reference', 'fused'])
def test_bfloat16_states_are_rounded_as_the_rounding_op(ops, fused):
    """SGD's momentum buffer after its first step is the gradient itself, so the stored state
    is the gradient rounded to bfloat16: ties to even, infinities kept, NaN a quiet NaN, the
    bits of ``gopt_bfloat16_round``, on both paths (the fused one rounds inside the rule's own
    loop, lowprec.h's Bf16States)."""
    g = np.concatenate([ties_and_randoms(), [np.nan, -np.nan]]).astype(np.float32)
    opt = create('sgd', use_fused=fused, learning_rate=0.1, momentum=0.9,
                 state_dtype='bfloat16')
    w = nd.zeros(g.shape)
    state = opt.create_state_multi_precision(0, w)
    opt.update_multi_precision(0, w, nd.array(g), state)
    stored = state[0].asnumpy().view(np.uint16)[..., 0]
    rounded = ops('gopt_bfloat16_round')(nd.array(g)).asnumpy().view(np.uint16)[..., 0]
    np.testing.assert_array_equal(stored, rounded)
    values = lowprec.bfloat16_values(stored)
    finite = np.isfinite(g)
    np.testing.assert_array_equal(values[finite], bt.round_to_bfloat16(g[finite]))
    np.testing.assert_array_equal(values[np.isinf(g)], g[np.isinf(g)])
    assert np.isnan(values[np.isnan(g)]).all()


def test_bfloat16_matches_torch():
    torch = pytest.importorskip('torch')
    x = ties_and_randoms(5)
    theirs = torch.from_numpy(x).to(torch.bfloat16).to(torch.float32).numpy()
    np.testing.assert_array_equal(lowprec.bfloat16_values(lowprec.round_bfloat16(x)), theirs)


def _hash32(x):
    """Wellons' lowbias32, in Python integers (the spec the kernel and lowprec implement)."""
    x ^= x >> 16
    x = (x * 0x7feb352d) & 0xffffffff
    x ^= x >> 15
    x = (x * 0x846ca68b) & 0xffffffff
    return x ^ (x >> 16)


def test_stochastic_rounding_noise_is_the_specified_hash(ops):
    seed, key, step, state = 7, 3, 11, 1
    base = _hash32(_hash32(_hash32(_hash32(seed) ^ key) ^ step) ^ state)
    expected = [_hash32((base + i * 0x9e3779b9) & 0xffffffff) & 0xffff for i in range(100)]
    noise = lowprec.rounding_noise(seed, key, step, state, 100)
    np.testing.assert_array_equal(noise, expected)
    x = np.random.RandomState(6).randn(100).astype(np.float32)
    bits = x.view(np.uint32)
    want = ((bits + np.array(expected, np.uint32)) >> 16).astype(np.uint16)
    np.testing.assert_array_equal(lowprec.round_bfloat16(x, noise), want)
    got = ops('gopt_bfloat16_round')(nd.array(x), stochastic=1, seed=seed, key=key, step=step,
                                     state=state).asnumpy().view(np.uint16)[..., 0]
    np.testing.assert_array_equal(got, want)
    other = lowprec.rounding_noise(seed, key, step + 1, state, 100)
    assert (other != noise).mean() > 0.9


def test_stochastic_rounding_is_unbiased():
    """x = 1 + 2^-9 lies a quarter of the way from 1 to the next bfloat16, 1 + 2^-7: rounded
    with independent noise, the mean of 2^16 roundings is x, within 4 standard errors."""
    n = 1 << 16
    x = np.full(n, 1 + 2 ** -9, np.float32)
    values = lowprec.bfloat16_values(lowprec.round_bfloat16(
        x, lowprec.rounding_noise(0, 0, 1, 0, n))).astype(np.float64)
    assert set(np.unique(values)) == {1.0, 1 + 2 ** -7}
    se = 2 ** -7 * np.sqrt(0.25 * 0.75 / n)
    assert abs(values.mean() - (1 + 2 ** -9)) < 4 * se
    # nearest rounding would return 1 for every element: biased by 2^-9
    assert lowprec.bfloat16_values(lowprec.round_bfloat16(x[:1]))[0] == 1.0


# ---------------------------------------------------------------------------------------------
# The optimizers: float32 rule, rounded states

#: one configuration per optimizer that takes state_dtype (their table entries' settings)
CONFIGS = [('adam', dict(learning_rate=0.01, amsgrad=True, beta2=0.99)),
           ('adamw', dict(learning_rate=0.01, wd=0.1)),
           ('lion', dict(learning_rate=3e-3, wd=0.1)),
           ('sgd', dict(learning_rate=0.05, momentum=0.9, nesterov=True)),
           ('adabelief', dict(learning_rate=0.01, wd=0.01)),
           ('rmsprop', dict(learning_rate=0.01, momentum=0.9, wd=0.01)),
           ('laprop', dict(learning_rate=0.01)),
           ('ademamix', dict(learning_rate=0.01, t_alpha_beta3=5, alpha=5.0, beta3=0.99))]
STORAGES = [pytest.param(dict(state_dtype='int8', state_block_size=64), id='int8'),
            pytest.param(dict(state_dtype='bfloat16'), id='bf16'),
            pytest.param(dict(state_dtype='bfloat16', state_rounding='stochastic',
                              state_seed=5), id='bf16-sr')]
SHAPES = [(150,), (12, 25)]  # 3 and 5 blocks of 64 (partial last ones)


def transcribed_rounding(storage, name, value, signed, index, t, k):
    """What the transcription stores of a float32 state ``value``, read back as float32."""
    if name not in storage['moments']:
        return value
    if storage['state_dtype'] == 'int8':
        block = storage['state_block_size']
        qmap = bt.create_dynamic_map(signed)
        codes, absmax = bt.quantize_blockwise(value, qmap, block)
        # stored as bitsandbytes stores them: the map and the absmax in float32, multiplied
        # in float32
        map32, absmax32 = qmap.astype(np.float32), absmax.astype(np.float32)
        return map32[codes] * np.repeat(absmax32, block)[:value.size].reshape(value.shape)
    if storage.get('state_rounding') == 'stochastic':
        base = _hash32(_hash32(_hash32(_hash32(storage['state_seed']) ^ index) ^ t) ^ k)
        bits = value.ravel().view(np.uint32).astype(np.uint64)
        noise = np.array([_hash32((base + i * 0x9e3779b9) & 0xffffffff) & 0xffff
                          for i in range(value.size)], np.uint64)
        return (((bits + noise) >> 16) << 16).astype(np.uint32).view(np.float32).reshape(
            value.shape)
    return bt.round_to_bfloat16(value).astype(np.float32)


@pytest.mark.parametrize('fused', [False, True], ids=['reference', 'fused'])
@pytest.mark.parametrize('storage', STORAGES)
@pytest.mark.parametrize('name,hp', CONFIGS, ids=[c[0] for c in CONFIGS])
def test_steps_are_the_float32_rule_with_rounded_states(ops, name, hp, storage, fused):
    """Our run with ``state_dtype`` against a float32 run of the same optimizer whose states
    the transcription rounds after every step: the same float32 arithmetic on the same
    values, so they agree to float32 rounding of the few stored values that a float64 and a
    float32 quantiser round apart (none in these runs: compared to 1e-6)."""
    steps = 8
    opt = create(name, use_fused=fused, state_min_size=0, **dict(hp, **storage))
    plain = create(name, use_fused=False, **hp)
    names = plain.state_names_for(SHAPES[0])
    moments = type(plain).low_precision_states
    spec = dict(storage, moments=moments, state_block_size=storage.get('state_block_size'))
    for index, shape in enumerate(SHAPES, 3):  # its own index: its own step count
        w0, grads = random_problem(8, shape, steps)
        w, w_plain = nd.array(w0), nd.array(w0)
        state = opt.create_state_multi_precision(index, w)
        s_plain = plain.create_state_multi_precision(index, w_plain)
        for t, g in enumerate(grads, 1):
            opt.update_multi_precision(index, w, nd.array(g), state)
            plain.update_multi_precision(index, w_plain, nd.array(g), s_plain)
            for k, (n, s) in enumerate(zip(names, s_plain)):
                s[:] = transcribed_rounding(spec, n, s.asnumpy(), moments.get(n) == 'signed',
                                            index, t, k)
        np.testing.assert_allclose(w.asnumpy(), w_plain.asnumpy(), rtol=1e-6, atol=1e-7)
        for n, a, b in zip(names, lowprec.float_states(opt, state, shape), s_plain):
            np.testing.assert_allclose(a, b.asnumpy(), rtol=1e-6, atol=1e-9, err_msg=n)
        assert [kernels.state_kind(s) for s in state] == list(
            lowprec.storage_kinds(opt, shape))


def _conformance_error(entry):
    """max |w - w_ref| / (the largest distance w_ref moved), as test_optimizers.py's
    conformance test measures it for the table's entry ``entry``."""
    kwargs = dict(entry.kwargs)
    lr = kwargs.pop('learning_rate')
    wd = kwargs.pop('wd', 0.0)
    w0, grads = random_problem(1, (6, 5), STEPS)
    opt = create(entry.name, learning_rate=lr, wd=wd, **kwargs)
    w = nd.array(w0)
    state = opt.create_state_multi_precision(0, w)
    for g in grads:
        opt.update_multi_precision(0, w, nd.array(g), state)
    w_ref, _ = REFERENCES[entry.reference](w0, [g.astype(np.float64) for g in grads], lr, wd,
                                           **storage_of(kwargs)[0])
    return np.abs(w.asnumpy() - w_ref).max() / np.abs(w_ref - w0).max()


@pytest.mark.parametrize('mutant', ['states not stored', 'first moment unsigned',
                                    'scales not stored'])
def test_the_table_tolerance_catches_a_wrong_storage(monkeypatch, mutant):
    """The low-precision entries' conformance bound (optimizer_table.TOL_INT8) is met by the
    storage as specified and missed by one that does not store the states back, that stores the
    first moment with the unsigned map (its negative values become 0), or that loses the
    blocks' scales. (A linear 8-bit map instead of the dynamic one is not caught there:
    random N(0, 1) gradients give moments of similar sizes within a block, where a linear map
    does almost as well; the map tests above check the map itself.)"""
    entry = by_id('adam-int8')
    assert _conformance_error(entry) < entry.displacement_tol
    monkeypatch.setenv('GLUON_OPT_IMPL', 'reference')
    if mutant == 'states not stored':
        monkeypatch.setattr(lowprec, 'store', lambda *args: None)
    elif mutant == 'first moment unsigned':
        monkeypatch.setattr(lowprec, '_signed', lambda opt, shape: [False] * 2)
    else:
        quantize = lowprec.quantize
        monkeypatch.setattr(lowprec, 'quantize', lambda x, signed, block: (
            quantize(x, signed, block)[0], np.ones_like(quantize(x, signed, block)[1])))
    assert _conformance_error(entry) > 2 * entry.displacement_tol


# ---------------------------------------------------------------------------------------------
# Memory, sizes, refusals

def test_state_memory_is_a_half_and_a_quarter():
    w = nd.zeros((1000, 1000))
    sizes = {}
    for dtype in lowprec.STATE_DTYPES:
        opt = create('adam', state_dtype=dtype)
        sizes[dtype] = opt.state_memory(opt.create_state_multi_precision(0, w))
    assert sizes['float32'] == 8 * 10 ** 6
    assert sizes['bfloat16'] == 4 * 10 ** 6
    blocks = -(-10 ** 6 // 256)
    assert sizes['int8'] == 2 * 10 ** 6 + 2 * 4 * blocks  # codes + one float32 per block
    assert sizes['float32'] / sizes['int8'] > 3.9


def test_small_tensors_keep_float32_states_with_int8():
    opt = create('adam', state_dtype='int8')
    small = opt.create_state_multi_precision(0, nd.zeros((4095,)))
    large = opt.create_state_multi_precision(1, nd.zeros((64, 64)))
    assert [kernels.state_kind(s) for s in small] == ['f', 'f']
    assert [kernels.state_kind(s) for s in large] == ['q', 'q']
    bf16 = create('adam', state_dtype='bfloat16').create_state_multi_precision(0, nd.zeros(3))
    assert [kernels.state_kind(s) for s in bf16] == ['b', 'b']
    laprop = create('laprop', state_dtype='int8').create_state_multi_precision(
        0, nd.zeros((100, 100)))
    assert [kernels.state_kind(s) for s in laprop] == ['q', 'q', 'f']  # lr_avg: one element


def test_float16_weights_without_master_weights_keep_float16_states():
    """``state_dtype`` stores float32 states (float32 weights, or float32 master weights):
    float16 weights updated in float16 keep their float16 states, on both paths."""
    import warnings
    for fused in (False, True):
        opt = create('adam', state_dtype='int8', state_min_size=0, use_fused=fused)
        w = nd.ones((300,), dtype='float16')
        with warnings.catch_warnings():
            warnings.simplefilter('ignore')  # float16 without master weights, on purpose
            state = opt.create_state_multi_precision(0, w)
        assert all(s.dtype == np.float16 for s in state)
        opt.update_multi_precision(0, w, nd.ones((300,), dtype='float16'), state)
        assert np.all(w.asnumpy() < 1)


SUPPORTED = sorted(name for name, cls in gluon_opt.REGISTRY.items()
                   if cls.low_precision_states is not None)


def test_the_supported_optimizers():
    assert SUPPORTED == ['adabelief', 'adam', 'adamw', 'ademamix', 'laprop', 'lion', 'rmsprop',
                         'sgd']


@pytest.mark.parametrize('name', sorted(set(gluon_opt.REGISTRY) - set(SUPPORTED)))
def test_other_optimizers_refuse_low_precision_states(name):
    cls = gluon_opt.REGISTRY[name]
    entry = [e for e in TABLE if e.name == name][0]
    for dtype in ('int8', 'bfloat16'):
        with pytest.raises(ValueError) as info:
            mx.optimizer.create('gluon_opt.' + name, state_dtype=dtype, **entry.kwargs)
        message = str(info.value)
        for part in (cls.__name__, "state_dtype=%r is not supported by" % dtype,
                     'supported: ' + ', '.join(SUPPORTED)):
            assert part in message, message


@pytest.mark.parametrize('name,kwargs,phrase', [
    ('adam', dict(cautious=True), 'with cautious=True'),
    ('lion', dict(cautious=True), 'with cautious=True'),
    ('laprop', dict(cautious=True), 'with cautious=True'),
    ('ademamix', dict(cautious=True), 'with cautious=True'),
    ('rmsprop', dict(centered=True), 'with centered=True')])
def test_unsupported_options_are_refused(name, kwargs, phrase):
    with pytest.raises(ValueError, match=phrase):
        create(name, state_dtype='int8', **kwargs)
    create(name, **kwargs)  # float32 states: fine


@pytest.mark.parametrize('kwargs,param', [
    (dict(state_dtype='float16'), 'state_dtype'),
    (dict(state_dtype='int4'), 'state_dtype'),
    (dict(state_rounding='up'), 'state_rounding'),
    (dict(state_dtype='int8', state_rounding='stochastic'), 'state_rounding'),
    (dict(state_block_size=100), 'state_block_size'),
    (dict(state_block_size=8192), 'state_block_size'),
    (dict(state_min_size=-1), 'state_min_size'),
    (dict(state_seed=2 ** 32), 'state_seed')])
def test_bad_storage_options(kwargs, param):
    with pytest.raises(ValueError, match="Adam: %s=" % param):
        create('adam', **kwargs)


# ---------------------------------------------------------------------------------------------
# States files: the same storage resumes exactly, another is converted

def _trainer(storage, seed=7):
    net = small_mlp(seed=seed)
    hp = dict(learning_rate=0.01, state_min_size=0, **storage)
    return net, gluon_opt.Trainer(net.collect_params(), 'gluon_opt.adam', hp)


def _values(trainer):
    opt = trainer._optimizer
    return {i: lowprec.float_states(opt, s, p.shape) for (i, s), p in
            zip(sorted(trainer._updaters[0].states.items()), trainer._params)}


@pytest.mark.parametrize('saved,loaded', [
    ('int8', 'int8'), ('int8', 'float32'), ('float32', 'int8'), ('bfloat16', 'int8'),
    ('int8', 'bfloat16')])
def test_states_files_convert_between_storages(tmp_path, saved, loaded):
    x, y = classification_data()
    net, trainer = _trainer(dict(state_dtype=saved))
    train_steps(net, trainer, x, y, steps=4)
    path = str(tmp_path / 't.states')
    trainer.save_states(path)
    net2, trainer2 = _trainer(dict(state_dtype=loaded), seed=99)
    for p, q in zip(net2.collect_params().values(), net.collect_params().values()):
        p.set_data(q.data())
    trainer2.load_states(path)
    assert trainer2._optimizer.state_dtype == loaded
    ours, theirs = _values(trainer2), _values(trainer)
    kinds = {'float32': 'f', 'bfloat16': 'b', 'int8': 'q'}[loaded]
    opt2 = trainer2._optimizer
    for i, states in trainer2._updaters[0].states.items():
        assert [kernels.state_kind(s) for s in states] == [kinds, kinds]
        if saved == loaded or loaded == 'float32':  # the stored values themselves
            want = theirs[i]
        else:  # stored again in the new storage: its rounding of the saved values
            shape = trainer2._params[i].shape
            want = lowprec.float_states(opt2, lowprec.compress(
                opt2, [nd.array(b) for b in theirs[i]], shape), shape)
        for a, b in zip(ours[i], want):
            np.testing.assert_array_equal(a, b)
    if saved == loaded:  # and training resumes exactly
        train_steps(net, trainer, x, y, steps=3, start=4)
        train_steps(net2, trainer2, x, y, steps=3, start=4)
        for p, q in zip(net2.collect_params().values(), net.collect_params().values()):
            np.testing.assert_array_equal(p.data().asnumpy(), q.data().asnumpy())
