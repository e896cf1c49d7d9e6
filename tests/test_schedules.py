"""Unit tests of lessons_lib.schedules."""
from __future__ import annotations


import numpy as np
import pytest

from lessons_lib.schedules import Schedule, constant, cosine, inverse_sqrt_warmup, linear_warmup, warmup_cosine


def test_constant():
    s = constant(0.02)
    assert s(0) == 0.02 and s(1000) == 0.02
    np.testing.assert_array_equal(s.values(5), [0.02] * 5)


def test_cosine_endpoints_and_midpoint():
    s = cosine(0.08, 61, final=0.008)
    assert s(0) == pytest.approx(0.08, abs=1e-16)   # final + (peak - final): exact up to rounding
    assert s(60) == 0.008                       # exactly the final rate at the last step
    assert s(30) == pytest.approx((0.08 + 0.008) / 2, abs=1e-16)
    v = s.values(61)
    assert np.all(np.diff(v) < 0)


def test_cosine_known_values():
    # by hand, 5 steps: progress 0, 1/4, 1/2, 3/4, 1 -> 0.5 (1 + cos(pi p)) = 1, (2+sqrt2)/4, 1/2, (2-sqrt2)/4, 0
    expected = 0.018 * np.array([1.0, (2 + 2**0.5) / 4, 0.5, (2 - 2**0.5) / 4, 0.0])
    np.testing.assert_allclose(cosine(0.018, 5).values(5), expected, rtol=1e-15, atol=1e-18)
    assert cosine(0.018, 5)(4) == 0.0


def test_cosine_and_warmup_cosine_both_hold_final_past_the_last_step():
    assert cosine(0.1, 10, final=0.01)(9) == cosine(0.1, 10, final=0.01)(25) == 0.01
    assert warmup_cosine(0.1, 0.01, 2, 10)(9) == warmup_cosine(0.1, 0.01, 2, 10)(25) == 0.01


def test_fractional_steps_are_refused():
    for schedule in (cosine(0.1, 10), warmup_cosine(0.1, 0.0, 2, 10), constant(0.1)):
        with pytest.raises(ValueError, match="non-negative integer"):
            schedule(2.5)


def test_per_run_peaks_give_one_rate_per_run():
    peaks = np.array([0.1, 0.2, 0.4])
    s = cosine(peaks, 5)
    assert s.runs == 3
    np.testing.assert_allclose(s(2), peaks / 2, rtol=1e-15)
    assert s.values(5).shape == (5, 3)
    np.testing.assert_allclose(warmup_cosine(peaks, 0.0, 2, 10)(0), peaks / 2, rtol=1e-15)
    with pytest.raises(ValueError, match="same length"):
        cosine(peaks, 5, final=np.array([0.0, 0.0]))


def test_linear_warmup():
    s = linear_warmup(0.1, 4)
    np.testing.assert_allclose(s.values(7), [0.025, 0.05, 0.075, 0.1, 0.1, 0.1, 0.1], atol=1e-17)
    assert s(3) == 0.1


def test_warmup_cosine_shape():
    peak, final, W, T = 3e-4, 3e-5, 2, 10
    v = warmup_cosine(peak, final, W, T).values(T)
    assert v[0] == pytest.approx(peak / 2, abs=1e-18)
    assert v[1] == pytest.approx(peak, abs=1e-18)
    assert v[2] == pytest.approx(peak, abs=1e-18)   # the cosine starts at the peak
    assert v[-1] == final
    assert np.all(np.diff(v[W:]) < 0)


def test_warmup_cosine_without_warmup_is_cosine():
    np.testing.assert_allclose(warmup_cosine(0.1, 0.01, 0, 50).values(50), cosine(0.1, 50, 0.01).values(50),
                               rtol=0, atol=1e-16)


def test_warmup_cosine_stays_at_final_after_the_end():
    s = warmup_cosine(0.1, 0.01, 3, 20)
    np.testing.assert_array_equal(s(np.arange(19, 40)), np.full(21, 0.01))


def test_inverse_sqrt_warmup_peaks_at_warmup():
    d, W = 512, 4000
    s = inverse_sqrt_warmup(d, W)
    v = s.values(3 * W)
    assert int(np.argmax(v)) == W - 1
    assert v[W - 1] == pytest.approx(d**-0.5 * W**-0.5, rel=1e-12)
    assert s(0) == pytest.approx(d**-0.5 * W**-1.5, rel=1e-12)
    assert s(4 * W - 1) == pytest.approx(d**-0.5 * (4 * W) ** -0.5, rel=1e-12)
    assert inverse_sqrt_warmup(d, W, scale=2.0)(10) == pytest.approx(2 * s(10), rel=1e-15)


def test_schedules_are_vectorised_and_return_plain_floats():
    s = warmup_cosine(0.1, 0.0, 5, 50)
    assert type(s(3)) is float
    assert type(s(np.int64(3))) is float
    steps = np.arange(50)
    np.testing.assert_array_equal(s(steps), [s(int(k)) for k in steps])
    assert s(np.array([[0, 1], [2, 3]])).shape == (2, 2)


def test_values_length_and_dtype():
    v = cosine(1.0, 10).values(25)
    assert v.shape == (25,) and v.dtype == np.float64


@pytest.mark.parametrize("bad", [-1, np.array([0, -2]), "3", True])
def test_negative_or_non_numeric_step_rejected(bad):
    with pytest.raises(ValueError, match="step must be a non-negative integer"):
        constant(0.1)(bad)


def test_repr_names_schedule_and_parameters():
    assert repr(warmup_cosine(3e-4, 3e-5, 2, 10)) == \
        "warmup_cosine(peak=0.0003, final=3e-05, warmup_steps=2, total_steps=10)"
    assert isinstance(constant(0.1), Schedule) and constant(0.1).name == "constant"


def test_warmup_cosine_known_values():
    """By hand: W = 1, T = 4 leaves a cosine of 3 steps: p = 0, 1/2, 1 -> peak, the midpoint, final."""
    peak, final = 0.3, 0.1
    values = warmup_cosine(peak, final, 1, 4).values(4)
    assert values[0] == peak                        # warmup step 0: peak * (0 + 1) / 1
    assert values[1] == peak and values[3] == final
    assert values[2] == pytest.approx((peak + final) / 2, rel=1e-15)
    assert warmup_cosine(3e-4, 3e-5, 2, 10).values(10)[:3].tolist() == [1.5e-4, 3e-4, 3e-4]
