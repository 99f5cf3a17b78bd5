r"""Optimizer states in bfloat16 or in 8 bits: the storage formats and their readable reference.

An optimizer whose states are moving averages (Adam's ``m`` and ``v``, Lion's and SGD's
momentum, ...) can keep them in less memory than float32, as bitsandbytes' 8-bit optimizers
do on CUDA (Dettmers, Lewis, Shleifer & Zettlemoyer, "8-bit Optimizers via Block-wise
Quantization", ICLR 2022). Every update reads a tensor's stored states back into float32,
runs the optimizer's own float32 rule, and stores the new states again: the arithmetic of the
update is the float32 one; only what is *kept* between steps is rounded.

``state_dtype`` (an option of the optimizers that declare ``low_precision_states``):

``'float32'`` (default)
    float32 states, as before.
``'bfloat16'``
    each state element keeps the top 16 bits of its float32 value (8 exponent bits, 7 stored
    mantissa bits: about 2-3 significant digits, float32's range): half the memory. Rounded to
    nearest even, or with ``state_rounding='stochastic'`` up with the probability of the
    dropped fraction (an unbiased rounding: small updates to a large average then add up on
    average instead of being rounded away), from a counter-based hash of ``(state_seed,
    parameter index, step, state, element)``, so runs repeat exactly and every context draws
    the same bits. Stored as a uint8 NDArray of the weight's shape plus a last axis of 2 (the
    two bytes of each element's bits): MXNet 1.9.1 has a bfloat16 NDArray dtype, but its
    external-operator interface refuses it (``Invalid dtype flag: 12``), and it has no 16-bit
    integer dtype.
``'int8'``
    blockwise dynamic quantisation (the paper's): each block of ``state_block_size`` elements
    (default 256) is divided by its largest magnitude (``absmax``, kept in float32) and each
    element stored as the 8-bit index of the nearest value of a fixed map of 256 values: signed
    for first moments, unsigned (all in [0, 1]) for second moments. Stored as a pair of
    NDArrays per state, the codes (uint8, the weight's shape) and the scales (float32, one per
    block): a quarter of the memory, plus 4 bytes per block (1.6% at 256). Tensors of fewer than
    ``state_min_size`` elements (default 4096, bitsandbytes' ``min_8bit_size``) keep float32
    states: biases and norms are a small part of the memory and the most sensitive part.

The dynamic map (``dynamic_map``)
---------------------------------
Its positive values are, for the decades ``i = 0 .. 6``, the midpoints of ``2^(i+u)`` equal
intervals of [0.1, 1] times ``10^(i-6)`` (``u = 0`` signed, ``u = 1`` unsigned): the further from
the block's absmax, the finer the steps in absolute terms, with 1 to 3 significant digits at
every scale (the paper's "dynamic tree" quantisation, built as bitsandbytes' ``create_dynamic_map``
builds it). The signed map has their negatives too; both have 0 and 1. Our entries are that
formula computed in double precision and rounded to float32 (bitsandbytes computes them with
torch's float32 ``linspace``: the same values to an ulp or two).

Quantising ``y = x * (1 / absmax)`` gives the code ``#{k : mid[k] <= y}`` with ``mid[k] = (M[k] +
M[k+1]) / 2`` in float32: the index of the nearest map value, ties to the larger one (a binary
search of the sorted mids). A block holding an infinity or a NaN stores the scale NaN (it reads
back NaN: a diverged run stays visible); a block whose absmax is zero or subnormal stores the
scale 0 (all zeros).

Conventions that differ from bitsandbytes: the block size defaults to 256 (its CPU and paged
default; its CUDA 8-bit optimizers use 2048 for ``blockwise=True``), and any of 64, ..., 4096
may be chosen; stochastic rounding applies to bfloat16 only (bitsandbytes rounds its 8-bit
states to nearest); bitsandbytes' map entries come from torch's float32 ``linspace`` (each within
an ulp or two of ours); it has no float32 threshold for bfloat16.

References: Dettmers et al., ICLR 2022 (blockwise dynamic quantisation, Algorithm 1);
Dettmers, "8-Bit Approximations for Parallelism in Deep Learning", ICLR 2016 (the dynamic tree
data type); Kalamkar et al., "A Study of BFLOAT16 for Deep Learning Training", 2019 (bfloat16);
Gupta et al., "Deep Learning with Limited Numerical Precision", ICML 2015 (stochastic rounding).
"""
import contextlib

import numpy as np
import mxnet as mx
from mxnet import nd

from ..kernels import state_kind, rounding_key

__all__ = ['STATE_DTYPES', 'ROUNDINGS', 'BLOCK_SIZES', 'DEFAULT_BLOCK_SIZE',
           'DEFAULT_MIN_SIZE', 'dynamic_map', 'midpoints', 'quantize',
           'dequantize', 'round_bfloat16', 'bfloat16_values', 'rounding_noise', 'state_kind',
           'storage_kinds', 'compress', 'expand', 'store', 'float_states', 'state_nbytes',
           'settings', 'use_settings', 'convert']

STATE_DTYPES = ('float32', 'bfloat16', 'int8')
ROUNDINGS = ('nearest', 'stochastic')
#: block sizes the kernels take (bitsandbytes' too)
BLOCK_SIZES = (64, 128, 256, 512, 1024, 2048, 4096)
DEFAULT_BLOCK_SIZE = 256
#: tensors of fewer elements keep float32 states with ``state_dtype='int8'`` (bitsandbytes'
#: ``min_8bit_size``)
DEFAULT_MIN_SIZE = 4096

_DECADES = 7
_F32 = np.float32


# ---------------------------------------------------------------------------------------------
# The dynamic map

_MAPS = {}


def dynamic_map(signed):
    """The 256 sorted float32 values of the signed (first moments) or unsigned (second
    moments) dynamic map."""
    signed = bool(signed)
    if signed not in _MAPS:
        u = 0 if signed else 1
        means = []
        for i in range(_DECADES):  # in double, in kernels/blockwise.h's order
            n = 2 ** (i + u)
            means.extend(10.0 ** (i - 6) * (0.1 + 0.9 * ((np.arange(n) + 0.5) / n)))
        means = np.array(means, dtype=np.float32)
        values = np.concatenate([-means[::-1] if signed else [], [0.0], means, [1.0]])
        _MAPS[signed] = values.astype(np.float32)
        _MAPS[signed].setflags(write=False)
    return _MAPS[signed]


def midpoints(signed):
    """``(M[k] + M[k+1]) / 2`` in float32, k = 0 .. 254: the code of ``y`` is how many of them
    are <= y."""
    m = dynamic_map(signed)
    return (m[:-1] + m[1:]) * _F32(0.5)


def _zero_code(signed):
    return 127 if signed else 0


# ---------------------------------------------------------------------------------------------
# Blockwise quantisation (NumPy; the readable reference of kernels/blockwise.h)

def quantize(x, signed, block=DEFAULT_BLOCK_SIZE):
    """``(codes, scales)`` of the float32 array ``x``: uint8 codes of ``x``'s shape, float32
    scales (the absmax of each block of ``block`` elements of ``x`` flattened)."""
    flat = np.ascontiguousarray(x, dtype=np.float32).ravel()
    n = flat.size
    nblocks = -(-n // block)
    blocks = np.zeros(nblocks * block, np.float32)
    blocks[:n] = flat
    blocks = blocks.reshape(nblocks, block)
    absmax = np.abs(blocks).max(axis=1)
    finite = np.isfinite(absmax)
    live = finite & (absmax >= np.finfo(np.float32).tiny)  # zero or subnormal: a zero block
    inv = np.zeros(nblocks, np.float32)
    inv[live] = _F32(1.0) / absmax[live]
    with np.errstate(invalid='ignore'):
        y = blocks * inv[:, None]
    codes = np.searchsorted(midpoints(signed), y, side='right')
    codes[~live] = _zero_code(signed)
    scales = np.where(live, absmax, np.where(finite, _F32(0.0), _F32(np.nan)))
    return (codes.ravel()[:n].reshape(np.shape(x)).astype(np.uint8),
            scales.astype(np.float32))


def dequantize(codes, scales, signed, block=DEFAULT_BLOCK_SIZE):
    """The float32 values of ``codes`` (uint8) with their blocks' ``scales``."""
    flat = np.asarray(codes).ravel()
    per_element = np.repeat(np.asarray(scales, np.float32), block)[:flat.size]
    return (dynamic_map(signed)[flat] * per_element).reshape(np.shape(codes))


# ---------------------------------------------------------------------------------------------
# bfloat16

_GOLDEN = 0x9e3779b9


def _hash32(x):
    """Wellons' lowbias32 on uint32 arrays (wrapping arithmetic)."""
    x = np.asarray(x, dtype=np.uint32)
    x = x ^ (x >> np.uint32(16))
    x = x * np.uint32(0x7feb352d)
    x = x ^ (x >> np.uint32(15))
    x = x * np.uint32(0x846ca68b)
    return x ^ (x >> np.uint32(16))


def rounding_noise(seed, key, step, state, n):
    """The 16 random bits that stochastic rounding adds to each of ``n`` elements (uint32 in
    [0, 65536)): element ``i`` of state ``state`` of the parameter ``key`` at step ``step``
    draws ``hash(base + i * 0x9e3779b9)``, ``base = hash(hash(hash(hash(seed) ^ key) ^ step) ^
    state)`` (kernels/blockwise.h draws the same)."""
    base = _hash32(np.array([seed], dtype=np.uint32))
    for part in (key, step, state):
        base = _hash32(base ^ np.uint32(part & 0xffffffff))
    i = np.arange(n, dtype=np.uint32)
    return _hash32(base + i * np.uint32(_GOLDEN)) & np.uint32(0xffff)


def round_bfloat16(x, noise=None):
    """The bfloat16 bits (uint16) of float32 ``x``: rounded to nearest even, or up with the
    probability of the dropped fraction where ``noise`` (16 random bits per element) is given.
    NaN stays NaN."""
    bits = np.ascontiguousarray(x, dtype=np.float32).view(np.uint32)
    if noise is None:
        add = np.uint32(0x7fff) + ((bits >> np.uint32(16)) & np.uint32(1))
    else:
        add = np.asarray(noise, dtype=np.uint32).reshape(bits.shape)
    out = (bits + add) >> np.uint32(16)
    nan = (bits & np.uint32(0x7fffffff)) > np.uint32(0x7f800000)
    out[nan] = (bits[nan] | np.uint32(0x00400000)) >> np.uint32(16)
    return out.astype(np.uint16)


def _bytes(bits):
    """bfloat16 ``bits`` (uint16) as stored: their two bytes along a last axis."""
    return np.ascontiguousarray(bits).view(np.uint8).reshape(np.shape(bits) + (2,))


def bfloat16_values(bits):
    """The float32 values of bfloat16 ``bits`` (uint16): exact."""
    return (np.asarray(bits, dtype=np.uint16).astype(np.uint32) << np.uint32(16)).view(
        np.float32)


# ---------------------------------------------------------------------------------------------
# An optimizer's states in storage

def settings(opt):
    """The storage settings of optimizer ``opt`` (what a states file records):
    ``{'state_dtype', 'state_block_size', 'state_min_size'}``."""
    return {'state_dtype': getattr(opt, 'state_dtype', 'float32'),
            'state_block_size': getattr(opt, 'state_block_size', DEFAULT_BLOCK_SIZE),
            'state_min_size': getattr(opt, 'state_min_size', DEFAULT_MIN_SIZE)}


@contextlib.contextmanager
def use_settings(opt, values):
    """Within the block, ``opt`` creates and reads states with the storage ``values`` (from
    ``settings``): how a states file written with other settings is read."""
    old = settings(opt)
    opt.__dict__.update(values)
    try:
        yield opt
    finally:
        opt.__dict__.update(old)


def storage_kinds(opt, shape):
    """The kind (``state_kind``) each state of a weight of ``shape`` has under ``opt``'s
    settings, in ``state_names_for(shape)`` order."""
    names = opt.state_names_for(shape)
    dtype = opt.state_dtype
    moments = opt.low_precision_states or {}
    if dtype == 'int8' and int(np.prod(shape)) < opt.state_min_size:
        dtype = 'float32'
    kind = {'float32': 'f', 'bfloat16': 'b', 'int8': 'q'}[dtype]
    return tuple(kind if name in moments else 'f' for name in names)


def _signed(opt, shape):
    names = opt.state_names_for(shape)
    moments = opt.low_precision_states or {}
    return [moments.get(name) == 'signed' for name in names]


def compress(opt, floats, shape):
    """The states ``floats`` (float32 NDArrays, ``init_state``'s) in ``opt``'s storage."""
    kinds = storage_kinds(opt, shape)
    out = []
    for kind, signed, value in zip(kinds, _signed(opt, shape), floats):
        if kind == 'b':
            value = nd.array(_bytes(round_bfloat16(value.asnumpy())), ctx=value.context,
                             dtype=np.uint8)
        elif kind == 'q':
            codes, scales = quantize(value.asnumpy(), signed, opt.state_block_size)
            value = (nd.array(codes, ctx=value.context, dtype=np.uint8),
                     nd.array(scales, ctx=value.context, dtype=np.float32))
        out.append(value)
    return tuple(out)


def _float_value(state, signed, block):
    kind = state_kind(state)
    if kind == 'q':
        return dequantize(state[0].asnumpy(), state[1].asnumpy(), signed, block)
    if kind == 'b':
        return bfloat16_values(state.asnumpy().view(np.uint16)[..., 0])
    return state.asnumpy()


def expand(opt, state, shape):
    """The float32 NDArrays an update reads and writes: the float32 states themselves (so
    that they are updated in place), new arrays holding the values of the others."""
    out = []
    for signed, s in zip(_signed(opt, shape), state):
        if state_kind(s) in ('b', 'q'):
            context = (s[0] if isinstance(s, tuple) else s).context
            s = nd.array(_float_value(s, signed, opt.state_block_size), ctx=context,
                         dtype=np.float32)
        out.append(s)
    return out


def store(opt, floats, state, shape, index, t):
    """Write the updated float32 ``floats`` (``expand``'s) back into ``state``'s storage, in
    place; ``index`` and the step ``t`` key stochastic rounding's noise."""
    for k, (signed, value, s) in enumerate(zip(_signed(opt, shape), floats, state)):
        kind = state_kind(s)
        if kind == 'b':
            x = value.asnumpy()
            noise = None
            if opt.state_rounding == 'stochastic':
                noise = rounding_noise(opt.state_seed, rounding_key(index), t, k, x.size)
            s[:] = _bytes(round_bfloat16(x, noise))
        elif kind == 'q':
            codes, scales = quantize(value.asnumpy(), signed, opt.state_block_size)
            s[0][:] = codes
            s[1][:] = scales


def float_states(opt, state, shape):
    """The values of one weight's states (``state``, without a master weight) as float32
    NumPy arrays, in ``state_names_for(shape)`` order, whatever their storage."""
    return [_float_value(s, signed, opt.state_block_size)
            for signed, s in zip(_signed(opt, shape), state)]


def state_nbytes(state):
    """Bytes of the NDArrays in ``state`` (any nesting: a master weight counts too)."""
    if isinstance(state, nd.NDArray):
        return int(np.prod(state.shape)) * np.dtype(state.dtype).itemsize
    if isinstance(state, (tuple, list)):
        return sum(state_nbytes(s) for s in state)
    return 0


def convert(opt, source, source_settings, target, shape):
    """Copy the values of one weight's states ``source``, stored as ``source_settings`` (a
    ``settings`` dict) say, into ``target``, the same states in ``opt``'s own storage (in
    place, rounded to nearest: a conversion is not a step)."""
    with use_settings(opt, source_settings):
        values = float_states(opt, source, shape)
    floats = []
    for value, t in zip(values, target):
        context = (t[0] if isinstance(t, tuple) else t).context
        floats.append(nd.array(value, ctx=context, dtype=np.float32))
        if state_kind(t) == 'f':
            t[:] = floats[-1]
    rounding, opt.state_rounding = opt.state_rounding, 'nearest'
    try:
        store(opt, floats, target, shape, 0, 0)
    finally:
        opt.state_rounding = rounding
