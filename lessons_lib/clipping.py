"""Gradient clipping: one scale for the whole gradient (global norm) or a clamp per coordinate.

Global-norm clipping, as PyTorch's clip_grad_norm_ and optax's clip_by_global_norm:
    norm = sqrt(sum of g_i^2 over EVERY entry of EVERY array),
    coef = min(1, max_norm / (norm + eps)),  every array <- coef * array
It shrinks the length of the whole gradient and keeps its direction. Value clipping clamps
each coordinate to [-max_value, max_value], which bends the direction.
For a batch of independent runs (R, d), `clip_runs_by_norm` clips each run by its own norm.
"""
from __future__ import annotations

import numpy as np

from .validation import as_float_array, check_positive

__all__ = ["global_norm", "clip_by_global_norm", "run_norms", "clip_runs_by_norm",
           "clip_by_value", "angle_degrees"]


def _arrays(name: str, grads) -> tuple[list[np.ndarray], bool]:
    """(list of float arrays, was it a list); dtypes of floating arrays are kept."""
    # a list of arrays is several gradients (torch's list of parameters); a list of plain
    # numbers is one gradient vector
    if isinstance(grads, (list, tuple)) and len(grads) == 0:
        raise ValueError(f"{name} is an empty list; give at least one gradient array")
    is_list = isinstance(grads, (list, tuple)) and any(
        isinstance(g, (list, tuple, np.ndarray)) and np.ndim(g) > 0 for g in grads)
    items = list(grads) if is_list else [grads]
    out = []
    for i, g in enumerate(items):
        label = f"{name}[{i}]" if is_list else name
        if g is None:
            raise ValueError(f"{label} is None; pass the gradient array (a parameter without a "
                             "gradient has nothing to clip: leave it out of the list)")
        arr = np.asarray(g) if isinstance(g, np.ndarray) and g.dtype.kind == "f" else as_float_array(label, g)
        out.append(arr)
    return out, is_list


def _sum_of_squares(arrays) -> float:
    # BEGIN GRADED PIECE clip_by_global_norm: _sum_of_squares
    with np.errstate(over="ignore", invalid="ignore"):
        return float(sum(np.sum(np.square(a, dtype=np.float64)) for a in arrays))
    # END GRADED PIECE


def global_norm(grads) -> float:
    """||g||_2 over every entry: one array of any shape, or a list of arrays (the total norm)."""
    # BEGIN GRADED PIECE clip_by_global_norm: global_norm
    arrays, _ = _arrays("grads", grads)
    return float(np.sqrt(_sum_of_squares(arrays)))
    # END GRADED PIECE


def _nonfinite_error(name: str, norm: float) -> ValueError:
    return ValueError(
        f"{name} has a non-finite norm ({norm}); it must be finite, but the gradient contains inf "
        "or nan (or overflows when squared). Clipping cannot repair it; find where it overflowed "
        "(lower the lr, use a loss scaler that skips such steps) instead of stepping")


def clip_by_global_norm(grads, max_norm, eps=1e-6, error_if_nonfinite=True):
    """Scale all gradients by ONE factor so their joint 2-norm is at most max_norm.

        norm = sqrt(sum over all arrays of sum(g^2)),  coef = min(1, max_norm / (norm + eps))

    `grads` is one array (any shape) or a list of arrays (any shapes), as in
    torch.nn.utils.clip_grad_norm_; returns (clipped, norm before clipping) with `clipped` in
    the same form (a list for a list) and each array's float dtype kept. eps=1e-6 is PyTorch's.
    A non-finite norm raises ValueError unless error_if_nonfinite=False; then the result is
    PyTorch's: coef = 0 for an inf norm (finite entries become 0, inf entries nan), nan for a
    nan norm. For a batch of independent runs use clip_runs_by_norm.
    """
    # BEGIN GRADED PIECE clip_by_global_norm: clip_by_global_norm
    arrays, is_list = _arrays("grads", grads)
    max_norm = float(check_positive("max_norm", max_norm, hint="the threshold is a length, e.g. 1.0"))
    eps = float(check_positive("eps", eps))
    norm = float(np.sqrt(_sum_of_squares(arrays)))
    if not np.isfinite(norm) and error_if_nonfinite:
        raise _nonfinite_error("grads", norm)
    with np.errstate(invalid="ignore"):
        coef = min(1.0, max_norm / (norm + eps)) if np.isfinite(norm) else (0.0 if norm == np.inf else np.nan)
        clipped = [(a * a.dtype.type(coef)).astype(a.dtype, copy=False) for a in arrays]
    return (clipped if is_list else clipped[0]), norm
    # END GRADED PIECE


def run_norms(grads) -> np.ndarray | float:
    """One 2-norm per run: over the last axis of (d,) -> float or (R, d) -> (R,)."""
    # BEGIN GRADED PIECE clip_by_global_norm: run_norms
    g = as_float_array("grads", grads)
    with np.errstate(over="ignore", invalid="ignore"):
        n = np.sqrt(np.sum(g * g, axis=-1))
    return float(n) if np.ndim(n) == 0 else n
    # END GRADED PIECE


def clip_runs_by_norm(grads, max_norm, eps=1e-6, error_if_nonfinite=True):
    """Clip each run of a batch (R, d) by its own norm: g_r <- min(1, max_norm / (||g_r|| + eps)) g_r.

    Returns (clipped, per-run norms). Same rule as clip_by_global_norm, applied run by run (the
    runs are separate experiments, not parts of one model). A (d,) input is one run.
    """
    # BEGIN GRADED PIECE clip_by_global_norm: clip_runs_by_norm
    g = as_float_array("grads", grads)
    max_norm = check_positive("max_norm", max_norm, hint="the threshold is a length, e.g. 1.0")
    check_positive("eps", eps)
    norm = np.asarray(run_norms(g))
    finite = np.isfinite(norm)
    if not np.all(finite) and error_if_nonfinite:
        raise _nonfinite_error("grads", float(np.ravel(norm)[~np.ravel(finite)][0]))
    with np.errstate(invalid="ignore"):
        coef = np.minimum(1.0, max_norm / (norm + eps))
        clipped = g * (coef[..., None] if g.ndim > 1 else coef)
    return clipped, (float(norm) if norm.ndim == 0 else norm)
    # END GRADED PIECE


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
