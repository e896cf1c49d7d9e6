"""Unit tests of lessons_lib.surfaces."""
from __future__ import annotations

import numpy as np
import pytest

from lessons_lib.surfaces import COURSE, START, Quadratic, course_surface


def test_course_surface_facts():
    assert COURSE.curvatures == (100.0, 1.0)
    assert course_surface() is COURSE
    np.testing.assert_array_equal(START, [1.0, 1.0])
    assert COURSE.loss(START) == 50.5
    np.testing.assert_array_equal(COURSE.grad(START), [100.0, 1.0])
    assert COURSE.loss([0.0, 0.0]) == 0.0
    assert COURSE.condition_number == 100.0
    np.testing.assert_array_equal(COURSE.hessian(), [[100.0, 0.0], [0.0, 1.0]])
    assert COURSE.dim == 2


def test_batch_of_points():
    w = np.array([[1.0, 1.0], [0.0, 2.0], [-0.1, 0.0]])
    np.testing.assert_allclose(COURSE.loss(w), [50.5, 2.0, 0.5], atol=1e-15)
    np.testing.assert_allclose(COURSE.grad(w), [[100.0, 1.0], [0.0, 2.0], [-10.0, 0.0]], atol=1e-15)


def test_gradient_matches_finite_differences():
    surface = Quadratic([3.0, 0.5, 7.0])
    w = np.array([0.3, -1.2, 0.7])
    h = 1e-6
    fd = [(surface.loss(w + h * e) - surface.loss(w - h * e)) / (2 * h) for e in np.eye(3)]
    np.testing.assert_allclose(surface.grad(w), fd, rtol=1e-7)
    np.testing.assert_array_equal(np.diag(surface.hessian()), [3.0, 0.5, 7.0])
    assert surface.condition_number == 14.0


def test_grid():
    A, B, L = COURSE.grid((-1, 1), (-2, 2), n=5)
    assert A.shape == B.shape == L.shape == (5, 5)
    np.testing.assert_allclose(L, 0.5 * (100 * A**2 + B**2))
    assert L[2, 2] == 0.0 and A[0, 0] == -1 and B[-1, 0] == 2


def test_grid_needs_two_dimensions():
    with pytest.raises(ValueError, match="two coordinates"):
        Quadratic([1.0, 2.0, 3.0]).grid()


@pytest.mark.parametrize("bad", [[100.0, 0.0], [1.0, -1.0], [1.0, float("inf")]])
def test_curvatures_must_be_positive(bad):
    with pytest.raises(ValueError, match="curvatures must be a finite number > 0"):
        Quadratic(bad)


def test_curvatures_must_be_one_dimensional():
    with pytest.raises(ValueError, match="1-D"):
        Quadratic([[1.0, 2.0]])


@pytest.mark.parametrize("w", [[1.0, 2.0, 3.0], 1.0, [[1.0], [2.0]]])
def test_wrong_dimension_rejected(w):
    with pytest.raises(ValueError, match=r"w must have 2 coordinates .* got shape"):
        COURSE.loss(w)
    with pytest.raises(ValueError, match="w must have 2 coordinates"):
        COURSE.grad(w)


def test_surface_is_immutable_and_hashable():
    with pytest.raises(Exception):
        COURSE.curvatures = (1.0, 1.0)
    assert Quadratic([100, 1]) == COURSE
    assert hash(Quadratic([100, 1])) == hash(COURSE)


def test_start_is_read_only_so_no_run_can_move_it():
    w = START
    with pytest.raises(ValueError, match="read-only"):
        w -= 0.5
    assert START.tolist() == [1.0, 1.0]
    own = START.copy()
    own -= 0.5
    assert own.tolist() == [0.5, 0.5] and START.tolist() == [1.0, 1.0]
