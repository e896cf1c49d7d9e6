"""Unit tests of lessons_lib.clipping."""
from __future__ import annotations

import math

import numpy as np
import pytest

from lessons_lib.clipping import (angle_degrees, clip_by_global_norm, clip_by_value, clip_runs_by_norm,
                                  global_norm, run_norms)


def test_global_norm():
    assert global_norm([3.0, 4.0]) == 5.0
    assert type(global_norm([3.0, 4.0])) is float
    # one norm over every entry of every array, as torch's total norm
    assert global_norm([[3.0, 4.0], [0.0, 0.0], [5.0, 12.0]]) == math.sqrt(9 + 16 + 25 + 144)
    np.testing.assert_array_equal(run_norms([[3.0, 4.0], [0.0, 0.0], [5.0, 12.0]]), [5.0, 0.0, 13.0])


def test_a_list_of_gradients_is_clipped_jointly_by_one_coefficient():
    # by hand: |[3]|^2 + |[[4, 0]]|^2 = 25, norm 5, coef = 1 / (5 + 1e-6) for max_norm 1
    grads = [np.array([3.0]), np.array([[4.0, 0.0]])]
    clipped, norm = clip_by_global_norm(grads, 1.0)
    coef = 1.0 / (5.0 + 1e-6)
    assert norm == 5.0 and isinstance(clipped, list) and len(clipped) == 2
    np.testing.assert_array_equal(clipped[0], [3.0 * coef])
    np.testing.assert_array_equal(clipped[1], [[4.0 * coef, 0.0]])
    assert clipped[1].shape == (1, 2)


def test_a_matrix_gradient_is_one_gradient_not_a_batch():
    clipped, norm = clip_by_global_norm(np.array([[3.0, 0.0], [0.0, 4.0]]), 1.0)
    assert norm == 5.0
    assert global_norm(clipped) == pytest.approx(1.0, abs=1e-6)


def test_clipping_keeps_float32():
    clipped, _ = clip_by_global_norm([np.ones(3, dtype=np.float32), np.ones(2, dtype=np.float32)], 1.0)
    assert all(c.dtype == np.float32 for c in clipped)
    assert clip_by_global_norm(np.ones(4, dtype=np.float32), 1.0)[0].dtype == np.float32


def test_none_or_an_empty_list_is_refused_with_a_clear_message():
    with pytest.raises(ValueError, match=r"grads\[1\] is None"):
        clip_by_global_norm([np.ones(2), None], 1.0)
    with pytest.raises(ValueError, match="empty list"):
        clip_by_global_norm([], 1.0)


def test_clip_uses_pytorch_coefficient():
    clipped, norm = clip_by_global_norm([300.0, 400.0], 5.0)
    assert norm == 500.0
    coef = 5.0 / (500.0 + 1e-6)
    np.testing.assert_array_equal(clipped, [300.0 * coef, 400.0 * coef])


def test_small_gradient_is_still_multiplied_by_coefficient_below_one():
    """coef = min(1, max_norm/(norm+eps)) is < 1 even at norm == max_norm (as in torch)."""
    clipped, norm = clip_by_global_norm([3.0, 4.0], 5.0)
    assert norm == 5.0
    assert global_norm(clipped) < 5.0
    clipped, _ = clip_by_global_norm([0.3, 0.4], 5.0)
    np.testing.assert_array_equal(clipped, [0.3, 0.4])     # coef clamped to 1


def test_eps_variant():
    clipped, _ = clip_by_global_norm([300.0, 400.0], 5.0, eps=1e-12)
    assert global_norm(clipped) == pytest.approx(5.0, abs=1e-12)
    a, _ = clip_by_global_norm([3.0, 4.0], 5.0, eps=1e-6)
    b, _ = clip_by_global_norm([3.0, 4.0], 5.0, eps=1e-12)
    assert global_norm(b) == pytest.approx(5.0, abs=1e-11) and global_norm(a) < global_norm(b)


def test_batch_clips_each_run_by_its_own_norm():
    g = np.array([[3.0, 4.0], [30.0, 40.0], [0.0, 0.0]])
    clipped, norms = clip_runs_by_norm(g, 10.0)
    np.testing.assert_array_equal(norms, [5.0, 50.0, 0.0])
    np.testing.assert_array_equal(clipped[0], g[0])
    assert global_norm(clipped[1]) == pytest.approx(10.0, abs=1e-6)
    np.testing.assert_array_equal(clipped[2], [0.0, 0.0])


@pytest.mark.parametrize("bad", [[math.inf, 1.0], [math.nan, 1.0], [[1.0, 1.0], [1.0, -math.inf]]])
def test_nonfinite_norm_raises_by_default(bad):
    with pytest.raises(ValueError, match=r"grads has a non-finite norm \((inf|nan)\); it must be finite"):
        clip_by_global_norm(bad, 1.0)


def test_nonfinite_without_error_follows_pytorch():
    clipped, norm = clip_by_global_norm([math.inf, 3.0], 1.0, error_if_nonfinite=False)
    assert norm == math.inf
    assert math.isnan(clipped[0]) and clipped[1] == 0.0
    clipped, norm = clip_by_global_norm([math.nan, 3.0], 1.0, error_if_nonfinite=False)
    assert math.isnan(norm) and np.all(np.isnan(clipped))
    # in a batch only the bad run is affected
    clipped, norms = clip_runs_by_norm([[math.inf, 1.0], [3.0, 4.0]], 10.0, error_if_nonfinite=False)
    np.testing.assert_array_equal(clipped[1], [3.0, 4.0])
    assert norms[0] == math.inf


def test_value_clipping_bends_direction_global_keeps_it():
    g = np.array([100.0, 1.0])
    by_value = clip_by_value(g, 5.0)
    np.testing.assert_array_equal(by_value, [5.0, 1.0])
    by_norm, _ = clip_by_global_norm(g, 5.0)
    assert angle_degrees(by_norm, g) == pytest.approx(0.0, abs=1e-6)
    assert angle_degrees(by_value, g) > 10.0


def test_angle_degrees():
    assert angle_degrees([1, 0], [0, 1]) == pytest.approx(90.0)
    assert angle_degrees([1, 0], [-2, 0]) == pytest.approx(180.0)
    assert angle_degrees([1, 1], [3, 3]) == pytest.approx(0.0, abs=1e-6)
    assert type(angle_degrees([1, 0], [0, 1])) is float


def test_clipping_does_not_mutate_input():
    g = np.array([300.0, 400.0])
    clip_by_global_norm(g, 5.0)
    clip_by_value(g, 5.0)
    np.testing.assert_array_equal(g, [300.0, 400.0])
