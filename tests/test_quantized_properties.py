"""Property tests (hypothesis) of lessons_lib.quantized's block-wise 8-bit codes.

Every bound is checked against an absmax computed here, block by block, from the input:
- "linear" (int8): |x - x_hat| <= s/254 and "linear_unsigned" (uint8): |x - x_hat| <= s/510,
  s the absmax of x's block (half a level), plus float rounding: TOL_S * s + 2^-1074;
- "log" (uint8): x_hat >= x * 2^(-1/16) for every x > 0 (v is never read back smaller by more
  than half a level), and x_hat <= max(x * 2^(1/16), s * 2^(-254/8)) (within half a level, or the
  smallest level for values below the code's 31.75 octaves), each to a relative 1e-12 and 2^-1074;
- for all codes: 0 stays exactly 0, no value changes sign, the block's absmax comes back exactly,
  nothing becomes inf or nan for any finite input (0, subnormals, +-1e300, +-1.8e308), all-zero
  blocks store scale 0, the last block may be short, rows of a batch never share a block.
Examples per property come from the profile in conftest.py.
"""
from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from lessons_lib.quantized import CODES, LOG_LEVELS_PER_OCTAVE, QuantizedArray, dequantize, n_blocks, quantize

TINY = 5e-324                      # 2^-1074, the smallest subnormal: rounding of a subnormal result
TOL_S = 1e-15                      # float rounding, relative to the block's absmax (about 4.5 ulps)
REL = 1e-12                        # float rounding of log2 / exp2 in the log code, relative
HALF_LEVEL = 2.0 ** (1 / (2 * LOG_LEVELS_PER_OCTAVE))
SMALLEST_LOG_LEVEL = 2.0 ** (-254 / LOG_LEVELS_PER_OCTAVE)

SPECIAL = [0.0, TINY, 1e-310, 2.2250738585072014e-308, 1e-300, 1e-8, 1.0, 1e300, 1.7976931348623157e308]
magnitudes = st.one_of(
    st.floats(min_value=0.0, max_value=1e6),
    st.floats(min_value=0.0, allow_nan=False, allow_infinity=False),          # the whole float range
    st.sampled_from(SPECIAL),
)
signed = st.tuples(magnitudes, st.booleans()).map(lambda t: -t[0] if t[1] else t[0])
block_sizes = st.integers(min_value=1, max_value=9)


def arrays(values, max_rows=3, max_cols=30):
    """(n,) or (rows, n) arrays of the given values."""
    def build(rows, n):
        shape = (n,) if rows == 0 else (rows, n)
        return st.lists(values, min_size=math.prod(shape), max_size=math.prod(shape)).map(
            lambda v: np.array(v, dtype=np.float64).reshape(shape))
    return st.tuples(st.integers(0, max_rows), st.integers(1, max_cols)).flatmap(lambda rn: build(*rn))


def block_absmax(x, block_size):
    """The absmax of each value's own block, computed row by row with Python's max (same shape as x)."""
    rows = np.atleast_2d(x)
    out = np.empty_like(rows)
    for r, row in enumerate(rows):
        for start in range(0, row.size, block_size):
            out[r, start:start + block_size] = max(abs(float(v)) for v in row[start:start + block_size])
    return out.reshape(x.shape)


def round_trip(x, block_size, code):
    q = quantize(x, block_size, code)
    return q, dequantize(q)


# ---------------------------------------------------------------- error bounds per block

@given(x=arrays(signed), block_size=block_sizes)
def test_linear_int8_error_is_at_most_half_a_level_of_the_block_absmax(x, block_size):
    q, back = round_trip(x, block_size, "linear")
    s = block_absmax(x, block_size)
    assert q.codes.dtype == np.int8 and np.all(np.abs(q.codes.astype(int)) <= 127)
    assert np.all(np.abs(back - x) <= s / 254 + TOL_S * s + TINY)


@given(x=arrays(magnitudes), block_size=block_sizes)
def test_linear_uint8_error_is_at_most_half_a_level_of_the_block_absmax(x, block_size):
    q, back = round_trip(x, block_size, "linear_unsigned")
    s = block_absmax(x, block_size)
    assert q.codes.dtype == np.uint8
    assert np.all(np.abs(back - x) <= s / 510 + TOL_S * s + TINY)


@given(x=arrays(magnitudes), block_size=block_sizes)
def test_log_code_never_reads_v_back_smaller_than_half_a_level_and_bounds_it_above(x, block_size):
    q, back = round_trip(x, block_size, "log")
    s = block_absmax(x, block_size)
    pos = x > 0
    assert q.codes.dtype == np.uint8
    assert np.all(back[pos] >= x[pos] / HALF_LEVEL * (1 - REL) - TINY)
    with np.errstate(over="ignore"):            # x * 2^(1/16) is inf near 1.8e308: no bound there, and
        above = np.maximum(x * HALF_LEVEL, s * SMALLEST_LOG_LEVEL)   # back <= s is asserted elsewhere
    assert np.all(back <= above * (1 + REL) + TINY)


@given(x=arrays(st.floats(min_value=1e-300, max_value=1e300)), block_size=block_sizes)
def test_log_code_is_within_half_a_level_for_values_inside_its_range(x, block_size):
    """Values at least 2^(-254.5/8) (about 2.6e-10) of their block's absmax: x_hat/x in [2^-1/16, 2^1/16]."""
    back = dequantize(quantize(x, block_size, "log"))
    s = block_absmax(x, block_size)
    inside = x >= s * 2.0 ** (-254.4 / LOG_LEVELS_PER_OCTAVE)
    ratio = back[inside] / x[inside]
    assert np.all(ratio >= (1 - REL) / HALF_LEVEL) and np.all(ratio <= HALF_LEVEL * (1 + REL))


# ---------------------------------------------------------------- zeros, signs, finiteness

@given(x=arrays(signed), block_size=block_sizes, code=st.sampled_from(CODES))
def test_zeros_stay_zero_signs_are_kept_and_nothing_becomes_non_finite(x, block_size, code):
    if code != "linear":
        x = np.abs(x)
    q, back = round_trip(x, block_size, code)
    assert np.all(np.isfinite(back)) and np.all(np.isfinite(q.scales))
    assert np.all(back[x == 0] == 0.0)
    assert np.all(back[x > 0] >= 0.0) and np.all(back[x < 0] <= 0.0)
    assert np.all(np.abs(back) <= block_absmax(x, block_size))        # never beyond the block's absmax
    assert back.dtype == np.float64 and back.shape == x.shape


@given(x=arrays(signed), block_size=block_sizes, code=st.sampled_from(CODES))
def test_the_absmax_of_every_block_comes_back_exactly(x, block_size, code):
    if code != "linear":
        x = np.abs(x)
    back = dequantize(quantize(x, block_size, code))
    top = np.abs(x) == block_absmax(x, block_size)
    np.testing.assert_array_equal(back[top], x[top])


@given(x=arrays(magnitudes), block_size=block_sizes, code=st.sampled_from(CODES))
def test_quantization_keeps_the_order_of_values(x, block_size, code):
    """Within a block a larger value never reads back smaller (every code is monotone)."""
    rows = np.atleast_2d(x)
    back = np.atleast_2d(dequantize(quantize(x, block_size, code)))
    for r in range(rows.shape[0]):
        for start in range(0, rows.shape[1], block_size):
            a, b = rows[r, start:start + block_size], back[r, start:start + block_size]
            order = np.argsort(a, kind="stable")
            assert np.all(np.diff(b[order]) >= 0)


def test_extreme_finite_values_round_trip_without_inf_or_nan():
    x = np.array([1.7976931348623157e308, -1e300, 1e-300, TINY, -TINY, 0.0, 1.0, -1.7976931348623157e308])
    for block_size in (1, 2, 3, 8):
        back = dequantize(quantize(x, block_size, "linear"))
        assert np.all(np.isfinite(back))
        v = np.abs(x)
        for code in ("log", "linear_unsigned"):
            assert np.all(np.isfinite(dequantize(quantize(v, block_size, code))))
    # a block of subnormals keeps its absmax (a float32 scale would have flushed it to 0)
    q = quantize(np.array([TINY, 3 * TINY, 0.0]), 8, "log")
    assert q.scales[0] == 3 * TINY and dequantize(q)[1] == 3 * TINY


# ---------------------------------------------------------------- layout: zero blocks, short blocks, runs

@pytest.mark.parametrize("code", CODES)
def test_an_all_zero_block_stores_scale_zero_and_codes_zero(code):
    x = np.array([0.0, 0.0, 0.0, 0.0, 2.0, 0.5, 0.0])
    q = quantize(x, 4, code)
    assert q.scales[0] == 0.0 and np.all(q.codes[:4] == 0)
    np.testing.assert_array_equal(dequantize(q)[:4], 0.0)
    assert np.all(dequantize(quantize(np.zeros((2, 5)), 3, code)) == 0.0)


@given(n=st.integers(1, 40), block_size=st.integers(1, 50), rows=st.integers(0, 3))
def test_the_last_block_may_be_short_and_bytes_count_codes_and_scales(n, block_size, rows):
    shape = (n,) if rows == 0 else (rows, n)
    x = np.arange(1, math.prod(shape) + 1, dtype=np.float64).reshape(shape) % 7 - 3.0
    q = quantize(x, block_size, "linear")
    blocks = -(-n // block_size)
    assert n_blocks(n, block_size) == blocks
    assert q.codes.shape == shape and q.scales.shape == shape[:-1] + (blocks,)
    assert q.nbytes == math.prod(shape) * 1 + math.prod(q.scales.shape) * 8
    tail = np.atleast_2d(x)[:, (blocks - 1) * block_size:]
    np.testing.assert_array_equal(np.atleast_2d(q.scales)[:, -1], np.abs(tail).max(axis=1))


@given(x=arrays(signed, max_rows=4), block_size=block_sizes, code=st.sampled_from(CODES))
def test_rows_of_a_batch_are_quantized_as_if_alone(x, block_size, code):
    x = np.atleast_2d(x if code == "linear" else np.abs(x))
    q = quantize(x, block_size, code)
    for r in range(x.shape[0]):
        alone = quantize(x[r], block_size, code)
        np.testing.assert_array_equal(q.codes[r], alone.codes)
        np.testing.assert_array_equal(q.scales[r], alone.scales)


def test_a_huge_block_size_gives_one_block_per_row_without_padding_memory():
    q = quantize(np.ones((3, 5)), 10**12, "linear")
    assert q.scales.shape == (3, 1) and q.nbytes == 15 + 3 * 8
    np.testing.assert_array_equal(dequantize(q), np.ones((3, 5)))


# ---------------------------------------------------------------- clear errors

@pytest.mark.parametrize("bad", [0, -3, 2.5, 256.0, True, "256", None])
def test_block_size_must_be_a_positive_integer_with_a_clear_message(bad):
    with pytest.raises(ValueError, match=r"block_size must be an integer >= 1.*got .*Try 256"):
        quantize(np.ones(4), bad, "linear")


def test_bad_codes_negative_values_and_non_finite_input_are_refused_by_name():
    with pytest.raises(ValueError, match=r"code must be one of \['linear', 'linear_unsigned', 'log'\]; got 'int4'"):
        quantize(np.ones(3), 4, "int4")
    for code in ("log", "linear_unsigned"):
        with pytest.raises(ValueError, match=r"x has a negative value \(-2\).*use code='linear'"):
            quantize(np.array([1.0, -2.0]), 4, code)
    with pytest.raises(ValueError, match=r"x contains a non-finite value \(inf\) at index \[1\]"):
        quantize(np.array([1.0, np.inf]), 4, "linear")
    with pytest.raises(ValueError, match=r"at least one value along its last axis.*\(\)"):
        quantize(3.0, 4, "linear")
    with pytest.raises(ValueError, match=r"must be a number or an array of numbers"):
        quantize(["a", "b"], 4, "linear")


def test_dequantize_refuses_codes_and_scales_that_do_not_fit():
    q = quantize(np.arange(10.0), 4, "log")
    with pytest.raises(ValueError, match=r"scales has shape \(3,\).*need \(4,\).*another block_size"):
        dequantize(q._replace(block_size=3))
    with pytest.raises(ValueError, match=r"codes must be a int8 array"):
        dequantize(q._replace(code="linear"))
    with pytest.raises(ValueError, match=r"takes a QuantizedArray"):
        dequantize(np.arange(3))
    assert isinstance(q, QuantizedArray) and "code='log'" in repr(q)
