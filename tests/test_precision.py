"""Unit tests of lessons_lib.precision: float16 facts, casts, loss scaling, bfloat16."""
from __future__ import annotations

import math

import numpy as np
import pytest

from lessons_lib.precision import (
    FP16_EPS,
    FP16_MAX,
    FP16_SMALLEST_NORMAL,
    FP16_SMALLEST_SUBNORMAL,
    DynamicLossScaler,
    ScalerState,
    cast_report,
    fp16_limits,
    scaled_fp16_gradient,
    to_bfloat16,
    to_fp16,
    unscale,
)


def test_fp16_constants():
    assert FP16_MAX == 65504.0 == (2 - 2**-10) * 2**15
    assert FP16_SMALLEST_NORMAL == 2.0**-14
    assert FP16_SMALLEST_SUBNORMAL == 2.0**-24
    assert FP16_EPS == 2.0**-10
    limits = fp16_limits()
    assert limits == {"largest finite": 65504.0, "smallest normal": 2.0**-14,
                      "smallest subnormal": 2.0**-24, "machine epsilon": 2.0**-10}
    assert all(type(v) is float for v in limits.values())


def test_to_fp16_known_values():
    assert float(to_fp16(4e-8)) == pytest.approx(5.96e-8, rel=1e-3)
    assert float(to_fp16(9e-9)) == 0.0
    assert float(to_fp16(65504.0)) == 65504.0
    assert math.isinf(float(to_fp16(70000.0)))
    assert to_fp16([1.0, 2.0]).dtype == np.float16


def test_fp32_master_weight_reason():
    """An fp16 weight of 1.0 does not change when a 1e-4 update is added."""
    assert float(to_fp16(1.0) + to_fp16(1e-4)) == 1.0
    assert float(np.float32(1.0) + np.float32(1e-4)) != 1.0


def test_cast_report_flags():
    rows = cast_report([1.0, 4e-8, 9e-9, 1e-5, 7e4, 0.0, -3.0])
    one, tiny, gone, sub, big, zero, neg = rows
    assert one.stored == 1.0 and one.relative_error == 0.0 and not (one.underflowed or one.subnormal or one.overflowed)
    assert tiny.subnormal and not tiny.underflowed and tiny.relative_error == pytest.approx(0.49, abs=0.01)
    assert gone.underflowed and gone.stored == 0.0 and gone.relative_error == 1.0 and not gone.subnormal
    assert sub.subnormal and not sub.underflowed
    assert big.overflowed and math.isinf(big.stored) and big.relative_error == math.inf
    assert zero.relative_error == 0.0 and not zero.underflowed
    assert neg.stored == -3.0
    for row in rows:
        assert all(type(v) in (float, bool) for v in row)


def test_cast_report_bfloat16_keeps_range_loses_digits():
    rows = cast_report([7e4, 1e-30, 1.0 + 2**-9], fmt="bfloat16")
    assert not rows[0].overflowed and rows[0].relative_error < 2**-8
    assert not rows[1].underflowed and not rows[1].subnormal
    assert rows[2].stored == 1.0


def test_cast_report_rejects_unknown_format():
    with pytest.raises(ValueError, match="fmt must be 'float16' or 'bfloat16'; got 'int8'"):
        cast_report([1.0], fmt="int8")


@pytest.mark.parametrize("value,expected", [
    (1.0, 1.0),
    (3.14159265, 3.140625),
    (1 + 2**-8, 1.0),                    # tie -> even (mantissa 0)
    (1 + 3 * 2**-8, 1 + 2**-6),          # tie -> even (mantissa 2)
    (1 + 2**-8 + 2**-20, 1 + 2**-7),     # above the tie rounds up
    (-2.5, -2.5),
    (65504.0, 65536.0),
    (1e-30, 9.98402083170343e-31),       # bfloat16 keeps float32's range ...
    (3.38e38, 3.3762391092936863e38),
    (3.4e38, math.inf),                  # ... up to 3.39e38; above, rounding carries into inf
    (1e-40, 9.183549615799121e-41),      # float32 subnormals keep 7 bits of their pattern
    (0.0, 0.0),
    (math.inf, math.inf),
    (-math.inf, -math.inf),
])
def test_bfloat16_known_values(value, expected):
    out = to_bfloat16(value)
    assert out.dtype == np.float32
    assert float(out) == expected


def test_bfloat16_overflow_and_nan():
    assert math.isinf(float(to_bfloat16(np.finfo(np.float32).max)))
    assert math.isnan(float(to_bfloat16(math.nan)))
    out = to_bfloat16([[1.0, math.nan], [2.0, 3.0]])
    assert out.shape == (2, 2) and math.isnan(out[0, 1])
    # the low 16 bits of every result are zero
    rng = np.random.default_rng(0)
    x = rng.normal(size=1000).astype(np.float32) * 1e3
    assert np.all(to_bfloat16(x).view(np.uint32) & 0xFFFF == 0)
    assert np.all(np.abs(to_bfloat16(x) - x) <= np.abs(x) * 2**-8)


def test_static_loss_scaling_recovers_small_gradients():
    g = np.array([1e-8, 3e-6, 0.5])
    plain = scaled_fp16_gradient(g, 1.0)
    assert plain[0] == 0.0                                    # underflow without scaling
    scaled = scaled_fp16_gradient(g, 65536.0)                 # every product is a normal fp16
    back, found_inf = unscale(scaled, 65536.0)
    assert not found_inf
    np.testing.assert_allclose(back, g, rtol=2**-11)


def test_too_large_scale_overflows_and_is_flagged():
    g16 = scaled_fp16_gradient([100.0, 1.0], 65536.0)
    assert math.isinf(float(g16[0]))
    g, found_inf = unscale(g16, 65536.0)
    assert found_inf is True
    assert type(found_inf) is bool


def test_unscale_per_run():
    g16 = np.array([[1.0, 2.0], [np.inf, 1.0], [np.nan, 0.0]], dtype=np.float16)
    g, found = unscale(g16, np.array([2.0, 4.0, 8.0]))
    np.testing.assert_array_equal(found, [False, True, True])
    np.testing.assert_array_equal(g[0], [0.5, 1.0])


def test_dynamic_scaler_defaults_and_repr():
    s = DynamicLossScaler()
    assert (s.init_scale, s.growth_factor, s.backoff_factor, s.growth_interval) == (65536.0, 2.0, 0.5, 2000)
    assert s.init() == ScalerState(scale=65536.0, growth_tracker=0)
    assert repr(s) == ("DynamicLossScaler(init_scale=65536.0, growth_factor=2.0, backoff_factor=0.5, "
                       "growth_interval=2000)")


def test_dynamic_scaler_grows_after_interval_and_backs_off_on_inf():
    s = DynamicLossScaler()
    st = s.init()
    for _ in range(1999):
        st = s.update(st, False)
    assert st == ScalerState(65536.0, 1999)
    st = s.update(st, False)
    assert st == ScalerState(131072.0, 0)
    st = s.update(st, False)
    st = s.update(st, True)
    assert st == ScalerState(65536.0, 0)
    assert type(st.scale) is float and type(st.growth_tracker) is int


def test_dynamic_scaler_per_run():
    s = DynamicLossScaler(init_scale=8.0, growth_interval=2)
    st = s.init(3)
    st = s.update(st, np.array([False, True, False]))
    st = s.update(st, np.array([False, False, True]))
    np.testing.assert_array_equal(st.scale, [16.0, 4.0, 4.0])
    np.testing.assert_array_equal(st.growth_tracker, [0, 1, 0])


def test_dynamic_scaler_stops_growing_below_float32_overflow():
    # by hand: 2**126 * 2 = 2**127 fits float32; 2**128 would be inf, so the scale stays 2**127
    s = DynamicLossScaler(init_scale=2.0**126, growth_interval=1)
    st = s.init()
    for _ in range(3):
        st = s.update(st, False)
    assert st.scale == 2.0**127 and st.growth_tracker == 0


def test_dynamic_scaler_keeps_a_float32_scale():
    # 0.3 * 65536 = 19660.8, which float32 stores as 19660.80078125
    s = DynamicLossScaler(backoff_factor=0.3)
    st = s.update(s.init(), True)
    assert st.scale == float(np.float32(19660.8)) == 19660.80078125
    assert s.init(3).scale.dtype == np.float32


def test_dynamic_scaler_refuses_junk_flags_and_array_settings():
    s = DynamicLossScaler()
    with pytest.raises(ValueError, match="found_inf must be True/False"):
        s.update(s.init(), "no")
    with pytest.raises(ValueError, match="init_scale must be one number"):
        DynamicLossScaler(init_scale=np.array([1.0, 2.0]))
    with pytest.raises(ValueError, match="fit in float32"):
        DynamicLossScaler(init_scale=1e39)


@pytest.mark.parametrize("scale", [-1.0, 0.0, math.nan, math.inf])
def test_unscale_refuses_a_scale_that_is_not_positive_and_finite(scale):
    with pytest.raises(ValueError, match="scale must be a finite number > 0"):
        unscale(np.array([1.0, 2.0], dtype=np.float16), scale)


@pytest.mark.parametrize("kwargs,name", [
    (dict(init_scale=0), "init_scale"),
    (dict(growth_factor=1.0), "growth_factor"),
    (dict(growth_factor=-2.0), "growth_factor"),
    (dict(backoff_factor=1.0), "backoff_factor"),
    (dict(backoff_factor=0.0), "backoff_factor"),
    (dict(growth_interval=0), "growth_interval"),
    (dict(growth_interval=2.5), "growth_interval"),
])
def test_dynamic_scaler_validation(kwargs, name):
    with pytest.raises(ValueError, match=name):
        DynamicLossScaler(**kwargs)
