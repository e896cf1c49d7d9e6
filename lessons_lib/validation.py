"""Argument checks shared by every module.

Each check raises ValueError naming the argument, the value given and the accepted range,
so a learner who passes lr=-0.1 reads what to change instead of a traceback from numpy.
"""
from __future__ import annotations

import math

import numpy as np


def _show(value) -> str:
    arr = np.asarray(value)
    if arr.ndim == 0:
        return repr(float(arr)) if arr.dtype.kind in "fiu" else repr(value)
    if arr.size == 0 or np.all(np.isnan(arr)):
        return f"array of shape {arr.shape} ({'empty' if arr.size == 0 else 'all nan'})"
    return f"array of shape {arr.shape} (min {np.nanmin(arr):g}, max {np.nanmax(arr):g})"


def _sentence(hint: str) -> str:
    """A hint appended to a message as its own sentence: ". Try 0.01" (empty when no hint)."""
    return f". {hint[:1].upper()}{hint[1:]}" if hint else ""


def as_float_array(name: str, value) -> np.ndarray:
    """Convert to a float64 array, with a clear message for text, None and ragged lists."""
    try:
        arr = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a number or an array of numbers; got {value!r}") from None
    return arr


def check_real(name: str, value) -> float:
    """One finite number as a Python float; text, None, inf and nan are refused.

    For settings typed into a box or passed to an explorer (lr=0.01, not an array of runs).
    """
    try:
        x = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a number; got {value!r}") from None
    if not math.isfinite(x):
        raise ValueError(f"{name} must be a finite number; got {value!r}")
    return x


def check_positive_real(name: str, value, hint: str = "") -> float:
    """One finite number > 0 as a Python float (check_real, then check_positive)."""
    return float(check_positive(name, check_real(name, value), hint=hint))


def check_finite(name: str, value, hint: str = "") -> np.ndarray:
    """Reject inf and nan: they would silently poison optimizer state."""
    arr = as_float_array(name, value)
    if not np.all(np.isfinite(arr)):
        bad = np.argwhere(~np.isfinite(arr))
        where = bad[0].tolist() if arr.ndim else []
        value = float(arr[tuple(bad[0])]) if arr.ndim else float(arr)
        msg = (f"{name} contains a non-finite value ({value}) at index {where}; "
               "every entry must be finite (no inf or nan)")
        raise ValueError(msg + (f"; {hint}" if hint else ""))
    return arr


def check_positive(name: str, value, hint: str = "") -> np.ndarray:
    """value > 0 and finite (scalars or arrays of per-run values)."""
    arr = as_float_array(name, value)
    if arr.size == 0 or not np.all(np.isfinite(arr)) or np.any(arr <= 0):
        msg = f"{name} must be a finite number > 0; got {_show(value)}"
        raise ValueError(msg + _sentence(hint))
    return arr


def check_nonnegative(name: str, value, hint: str = "") -> np.ndarray:
    """value >= 0 and finite."""
    arr = as_float_array(name, value)
    if arr.size == 0 or not np.all(np.isfinite(arr)) or np.any(arr < 0):
        msg = f"{name} must be a finite number >= 0; got {_show(value)}"
        raise ValueError(msg + _sentence(hint))
    return arr


def check_unit_interval(name: str, value, *, closed_right: bool = False, hint: str = "") -> np.ndarray:
    """0 <= value < 1 (or <= 1 when closed_right), e.g. betas, momentum, dampening."""
    arr = as_float_array(name, value)
    upper_ok = arr <= 1 if closed_right else arr < 1
    if arr.size == 0 or not np.all(np.isfinite(arr)) or np.any(arr < 0) or not np.all(upper_ok):
        rng = "[0, 1]" if closed_right else "[0, 1)"
        msg = f"{name} must lie in {rng}; got {_show(value)}"
        raise ValueError(msg + _sentence(hint))
    return arr


def check_int(name: str, value, minimum: int = 0) -> int:
    """An integer >= minimum (bools are rejected)."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}; got {value!r}")
    return int(value)


def check_same_shape(name_a: str, a: np.ndarray, name_b: str, b: np.ndarray) -> None:
    """Two arrays that must line up element by element."""
    if np.shape(a) != np.shape(b):
        raise ValueError(
            f"{name_a} has shape {np.shape(a)} but {name_b} has shape {np.shape(b)}; "
            "they must match (one entry per parameter)"
        )


def check_keys(what: str, d, expected, hint: str = "") -> None:
    """A dict with exactly the expected keys (a saved state), or a ValueError listing what is missing and extra."""
    if not isinstance(d, dict):
        raise ValueError(f"{what} must be a dict; got {type(d).__name__}" + (f". {hint}" if hint else ""))
    missing, extra = sorted(set(expected) - set(d)), sorted(set(d) - set(expected))
    if missing or extra:
        raise ValueError(f"{what} does not fit: missing keys {missing}, unexpected keys {extra} (expected "
                         f"{sorted(expected)}); nothing was loaded" + (f". {hint}" if hint else ""))
