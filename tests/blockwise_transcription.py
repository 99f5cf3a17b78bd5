"""An independent NumPy transcription of the 8-bit optimizers' blockwise quantiser and of
bfloat16 rounding: the oracle ``tests/test_lowprec.py`` checks gluon_opt's quantiser against.

Written from the paper and from the algorithm of bitsandbytes' ``create_dynamic_map``
(bitsandbytes does not install beside MXNet here), in float64, deliberately sharing no code with
``gluon_opt``:

* Dettmers, Lewis, Shleifer & Zettlemoyer, "8-bit Optimizers via Block-wise Quantization",
  ICLR 2022, section 2: a tensor is cut into blocks of B elements; each block is normalised by
  its absolute maximum ``N_b = max |T_b|`` into [-1, 1], and each normalised value is mapped to
  the index of the closest of the 2^8 values of the quantisation map (``argmin_j |Q_j - T/N|``);
  dequantisation is ``Q[index] * N_b``. Section 2.2: the dynamic (tree) data type, whose
  exponent bits are the leading zeros and whose remaining bits after an indicator bit are a
  linear fraction; "dynamic" for the signed first state, an unsigned variant (the sign bit as
  one more fraction bit) for the second.
* ``create_dynamic_map(signed, max_exponent_bits=7, total_bits=8)`` as bitsandbytes builds it:
  for each exponent i of ``max_exponent_bits``, the means of the intervals of
  ``linspace(0.1, 1, 2^(i + 7 - max_exponent_bits) + 1)`` (one more bit for the unsigned map),
  scaled by ``10^(i - max_exponent_bits + 1)``, with their negatives for the signed map, plus 0
  and 1.0, sorted.
"""
import numpy as np


def create_dynamic_map(signed=True, max_exponent_bits=7, total_bits=8):
    """The 2^total_bits sorted values of the dynamic map, float64."""
    data = []
    non_sign_bits = total_bits - 1
    additional_items = 2 ** (non_sign_bits - max_exponent_bits) - 1
    for i in range(max_exponent_bits):
        fraction_items = (2 ** (i + non_sign_bits - max_exponent_bits) + 1 if signed
                          else 2 ** (i + non_sign_bits - max_exponent_bits + 1) + 1)
        boundaries = np.linspace(0.1, 1, fraction_items)
        means = (boundaries[:-1] + boundaries[1:]) / 2.0
        scale = 10.0 ** (-(max_exponent_bits - 1) + i)
        data += list(scale * means)
        if signed:
            data += list(-scale * means)
    if additional_items > 0:
        boundaries = np.linspace(0.1, 1, additional_items + 1)
        means = (boundaries[:-1] + boundaries[1:]) / 2.0
        scale = 10.0 ** (-(max_exponent_bits - 1) + max_exponent_bits - 1)
        data += list(scale * means)
        if signed:
            data += list(-scale * means)
    data += [0.0, 1.0]
    data += [0.0] * (2 ** total_bits - len(data))
    return np.array(sorted(data), dtype=np.float64)


def quantize_blockwise(x, qmap, blocksize):
    """``(indices, absmax)``: each block of ``blocksize`` elements of ``x`` (flattened) divided
    by its absolute maximum, each value replaced by the index of the closest map value (the
    first of two equally close ones: ``argmin``)."""
    flat = np.asarray(x, dtype=np.float64).ravel()
    indices = np.empty(flat.size, dtype=np.int64)
    absmax = []
    for start in range(0, flat.size, blocksize):
        block = flat[start:start + blocksize]
        n = np.max(np.abs(block))
        absmax.append(n)
        normalised = block / n if n > 0 else np.zeros_like(block)
        indices[start:start + blocksize] = np.argmin(
            np.abs(normalised[:, None] - qmap[None, :]), axis=1)
    return indices.reshape(np.shape(x)), np.array(absmax)


def dequantize_blockwise(indices, absmax, qmap, blocksize):
    flat = np.asarray(indices).ravel()
    out = qmap[flat] * np.repeat(absmax, blocksize)[:flat.size]
    return out.reshape(np.shape(indices))


def nearest_tie(x, qmap, blocksize, rtol=1e-6):
    """A boolean array: where an element of ``x`` lies (relatively within ``rtol``) as close to
    two map values: the codes of a float32 quantiser may differ from this float64 one there."""
    flat = np.asarray(x, dtype=np.float64).ravel()
    out = np.zeros(flat.size, dtype=bool)
    for start in range(0, flat.size, blocksize):
        block = flat[start:start + blocksize]
        n = np.max(np.abs(block))
        normalised = block / n if n > 0 else np.zeros_like(block)
        d = np.sort(np.abs(normalised[:, None] - qmap[None, :]), axis=1)
        out[start:start + blocksize] = d[:, 1] - d[:, 0] <= rtol * np.maximum(
            np.abs(normalised), 1e-30)
    return out.reshape(np.shape(x))


def round_to_bfloat16(x):
    """The bfloat16 value nearest to each float32 of ``x`` (ties to an even last bit), as
    float64: from the two bfloat16 neighbours of x (8-bit significands), without bit tricks."""
    x = np.asarray(x, dtype=np.float64)
    out = np.empty_like(x)
    for i, v in np.ndenumerate(x):
        if not np.isfinite(v) or v == 0:
            out[i] = v
            continue
        mantissa, exponent = np.frexp(abs(v))           # v = m 2^e, 0.5 <= m < 1
        scaled = mantissa * 256.0                         # 8 significant bits
        low = np.floor(scaled)
        frac = scaled - low
        if frac > 0.5 or (frac == 0.5 and int(low) % 2 == 1):
            low += 1
        out[i] = np.copysign(np.ldexp(low / 256.0, exponent), v)
    return out
