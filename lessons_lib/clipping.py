"""Gradient clipping: one scale for the whole gradient (global norm) or per coordinate.

Global-norm clipping (PyTorch's clip_grad_norm_):
    norm = ||g||_2,  coef = min(1, max_norm / (norm + eps)),  g <- coef * g
It shrinks the length and keeps the direction. Value clipping clamps each coordinate to
[-max_value, max_value], which bends the direction.
For a batch of runs (R, d), each run is clipped by its own norm.
"""
from __future__ import annotations

import numpy as np

from .validation import as_float_array, check_positive


def global_norm(grads) -> np.ndarray | float:
    """||g||_2 over the last axis (one norm per run)."""
    g = as_float_array("grads", grads)
    with np.errstate(over="ignore", invalid="ignore"):
        n = np.sqrt(np.sum(g * g, axis=-1))
    return float(n) if np.ndim(n) == 0 else n


def clip_by_global_norm(grads, max_norm, eps=1e-6, error_if_nonfinite=True):
    """Scale g so its 2-norm is at most max_norm; return (clipped grads, pre-clip norm).

        coef = min(1, max_norm / (norm + eps));  g <- coef * g

    eps=1e-6 is PyTorch's; pass eps=1e-12 for the variant some libraries use.
    A non-finite norm raises ValueError unless error_if_nonfinite=False, in which case the
    result is PyTorch's: coef = 0 for an inf norm (finite entries become 0, inf entries nan),
    nan for a nan norm (every entry nan); the norm is reported as it is (inf or nan).
    """
    g = as_float_array("grads", grads)
    max_norm = check_positive("max_norm", max_norm, hint="the threshold is a length, e.g. 1.0")
    check_positive("eps", eps)
    norm = np.asarray(global_norm(g))
    finite = np.isfinite(norm)
    if not np.all(finite):
        if error_if_nonfinite:
            raise ValueError(
                f"grads has a non-finite norm ({float(np.ravel(norm)[~np.ravel(finite)][0])}); it must "
                "be finite, but the gradient contains inf or nan (or overflows when squared). "
                "Clipping cannot repair it; find where it overflowed "
                "(lower the lr, use a loss scaler that skips such steps) instead of stepping"
            )
    with np.errstate(invalid="ignore"):
        coef = np.minimum(1.0, max_norm / (norm + eps))
        clipped = g * (coef[..., None] if g.ndim > 1 else coef)
    return clipped, (float(norm) if norm.ndim == 0 else norm)


def clip_by_value(grads, max_value):
    """Clamp each coordinate to [-max_value, max_value] (bends the direction)."""
    g = as_float_array("grads", grads)
    max_value = check_positive("max_value", max_value)
    return np.clip(g, -max_value, max_value)


def angle_degrees(u, v) -> float:
    """Angle between two vectors in degrees (0 means same direction)."""
    u = as_float_array("u", u)
    v = as_float_array("v", v)
    cos = np.dot(u, v) / (np.linalg.norm(u) * np.linalg.norm(v))
    return float(np.degrees(np.arccos(np.clip(cos, -1.0, 1.0))))
