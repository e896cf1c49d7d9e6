"""Loss surfaces: the course quadratic and any diagonal quadratic.

    L(w) = 0.5 * sum_i c_i * w_i**2        grad L(w) = c * w

The course surface has curvatures c = [100, 1]: L(a, b) = 0.5 * (100 a^2 + b^2).
Every function accepts one parameter vector of shape (d,) or a batch of runs (R, d).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .validation import as_float_array, check_positive


@dataclass(frozen=True)
class Quadratic:
    """A diagonal quadratic bowl L(w) = 0.5 * sum(c * w**2) with its optimum at 0."""

    curvatures: tuple

    def __init__(self, curvatures):
        c = check_positive("curvatures", curvatures)
        if c.ndim != 1:
            raise ValueError(f"curvatures must be a 1-D list such as [100, 1]; got shape {c.shape}")
        object.__setattr__(self, "curvatures", tuple(float(x) for x in c))

    @property
    def c(self) -> np.ndarray:
        """The curvatures as an array (the Hessian's diagonal)."""
        return np.array(self.curvatures)

    @property
    def dim(self) -> int:
        return len(self.curvatures)

    def _check(self, w) -> np.ndarray:
        w = as_float_array("w", w)
        if w.ndim == 0 or w.shape[-1] != self.dim:
            raise ValueError(
                f"w must have {self.dim} coordinates in its last axis (shape ({self.dim},) "
                f"or (runs, {self.dim})); got shape {w.shape}"
            )
        return w

    def loss(self, w) -> np.ndarray:
        """L(w) = 0.5 * sum_i c_i w_i^2 (one value per run)."""
        w = self._check(w)
        return 0.5 * np.sum(self.c * w * w, axis=-1)

    def grad(self, w) -> np.ndarray:
        """grad L(w) = c * w (elementwise)."""
        w = self._check(w)
        return self.c * w

    @property
    def optimum(self) -> np.ndarray:
        """w* = 0: the bottom of the bowl."""
        return np.zeros(self.dim)

    def hessian(self) -> np.ndarray:
        """The Hessian diag(c): constant everywhere on a quadratic."""
        return np.diag(self.c)

    @property
    def condition_number(self) -> float:
        """kappa = largest curvature / smallest curvature."""
        return max(self.curvatures) / min(self.curvatures)

    def grid(self, a_lim=(-1.5, 1.5), b_lim=(-1.5, 1.5), n: int = 201):
        """Loss on an n x n grid of the first two coordinates: (A, B, L) for contour plots."""
        if self.dim != 2:
            raise ValueError("grid() draws two coordinates; this surface has %d" % self.dim)
        a = np.linspace(a_lim[0], a_lim[1], n)
        b = np.linspace(b_lim[0], b_lim[1], n)
        A, B = np.meshgrid(a, b)
        L = 0.5 * (self.curvatures[0] * A**2 + self.curvatures[1] * B**2)
        return A, B, L


COURSE = Quadratic([100.0, 1.0])
"""The course surface L(a, b) = 0.5 * (100 a^2 + b^2): curvatures 100 and 1."""

START = np.array([1.0, 1.0])
START.flags.writeable = False
"""Every run starts at [1, 1] unless a lesson says otherwise. Read-only: `w = START; w -= 0.5`
raises instead of moving every later run; take `START.copy()` to get an array you may change."""


def course_surface() -> Quadratic:
    """The course quadratic (curvatures 100 and 1, condition number 100)."""
    return COURSE
