"""Low precision: float16 limits, casting with accounting, loss scaling, bfloat16 emulation.

float16 (IEEE binary16): largest finite 65504, smallest normal 2^-14, smallest subnormal
2^-24, machine epsilon 2^-10. A gradient below the smallest subnormal becomes 0
(underflow); one between the two keeps only a few significant bits (subnormal).
"""
from __future__ import annotations

from typing import NamedTuple

import numpy as np

from .validation import as_float_array, check_int, check_positive

_F16 = np.finfo(np.float16)

FP16_MAX = float(_F16.max)                       # 65504.0
FP16_SMALLEST_NORMAL = float(_F16.smallest_normal)  # 2**-14 ~ 6.1e-05
FP16_SMALLEST_SUBNORMAL = float(_F16.smallest_subnormal)  # 2**-24 ~ 6.0e-08
FP16_EPS = float(_F16.eps)                       # 2**-10 ~ 9.8e-04


def fp16_limits() -> dict:
    """The four numbers that describe float16, read from numpy."""
    return {
        "largest finite": FP16_MAX,
        "smallest normal": FP16_SMALLEST_NORMAL,
        "smallest subnormal": FP16_SMALLEST_SUBNORMAL,
        "machine epsilon": FP16_EPS,
    }


def to_fp16(x) -> np.ndarray:
    """Round to float16 (values above 65504 become inf, as on hardware)."""
    with np.errstate(over="ignore"):
        return np.asarray(as_float_array("x", x), dtype=np.float16)


def to_bfloat16(x) -> np.ndarray:
    """Emulate bfloat16: keep the top 16 bits of the float32 pattern, round to nearest even.

    bfloat16 has float32's 8 exponent bits (range up to ~3.4e38) but only 8 significant bits
    (epsilon 2^-7). Returned as float32 values that bfloat16 can represent exactly.
    """
    x32 = np.asarray(as_float_array("x", x), dtype=np.float32)
    bits = x32.reshape(-1).view(np.uint32).astype(np.uint64)   # 1-D, so scalars work too
    rounding = ((bits >> 16) & 1) + 0x7FFF
    rounded = ((bits + rounding) & 0xFFFF0000).astype(np.uint32)
    out = rounded.view(np.float32).copy()
    nan = np.isnan(x32.reshape(-1))
    out[nan] = np.float32("nan")
    return out.reshape(x32.shape)


class CastRow(NamedTuple):
    """What happened to one value cast to a low-precision format."""
    value: float
    stored: float
    relative_error: float
    underflowed: bool
    subnormal: bool
    overflowed: bool


def cast_report(values, fmt: str = "float16") -> list[CastRow]:
    """Cast each value to float16 or bfloat16 and account for what was lost.

    relative_error = |stored - value| / |value|; underflowed: non-zero became 0;
    subnormal: stored below the format's smallest normal; overflowed: became inf.
    """
    vals = np.ravel(as_float_array("values", values))
    if fmt == "float16":
        stored = to_fp16(vals).astype(np.float64)
        smallest_normal = FP16_SMALLEST_NORMAL
    elif fmt == "bfloat16":
        stored = to_bfloat16(vals).astype(np.float64)
        smallest_normal = float(np.finfo(np.float32).smallest_normal)
    else:
        raise ValueError(f"fmt must be 'float16' or 'bfloat16'; got {fmt!r}")
    rows = []
    for v, s in zip(vals.tolist(), stored.tolist()):
        with np.errstate(invalid="ignore"):
            rel = abs(s - v) / abs(v) if v != 0 and np.isfinite(s) else (0.0 if s == v else float("inf"))
        rows.append(CastRow(
            value=v, stored=s, relative_error=rel,
            underflowed=(v != 0 and s == 0),
            subnormal=(s != 0 and abs(s) < smallest_normal),
            overflowed=bool(np.isinf(s) and np.isfinite(v)),
        ))
    return rows


def scaled_fp16_gradient(grads, scale) -> np.ndarray:
    """Static loss scaling: the fp16 gradient of (scale * loss), i.e. fp16(scale * g)."""
    scale = check_positive("scale", scale)
    with np.errstate(over="ignore"):
        return to_fp16(as_float_array("grads", grads) * scale)


def _check_scale(scale):
    """A loss scale: finite and > 0 (one number, or one per run)."""
    arr = np.asarray(scale, dtype=np.float64) if not isinstance(scale, str) else None
    if arr is None or arr.size == 0 or not np.all(np.isfinite(arr)) or np.any(arr <= 0):
        raise ValueError(
            f"scale must be a finite number > 0 (the loss scale the gradients were multiplied by); "
            f"got {scale!r}. A scale of 0 or inf means every step overflowed or underflowed: "
            "lower the learning rate or the scaler's init_scale")
    return arr


def unscale(grads16, scale):
    """Back to float32 and divide by the scale: (g, found_inf) with found_inf per run.

        g = float32(g16) / scale;   found_inf = any(not isfinite(g))
    """
    scale = _check_scale(scale)
    g = np.asarray(grads16, dtype=np.float32).astype(np.float64)
    with np.errstate(invalid="ignore", over="ignore"):
        g = g / (scale[..., None] if (scale.ndim and g.ndim > 1) else scale)
    found_inf = ~np.all(np.isfinite(g), axis=-1)
    return g, (bool(found_inf) if np.ndim(found_inf) == 0 else found_inf)


class ScalerState(NamedTuple):
    """scale: the current loss scale (a float32 value); growth_tracker: clean steps since the last change."""
    scale: float | np.ndarray
    growth_tracker: int | np.ndarray


def _found_flags(found_inf) -> np.ndarray:
    """found_inf as booleans; text, None or numbers other than 0/1 are refused."""
    arr = np.asarray(found_inf)
    if arr.dtype == bool:
        return arr
    if arr.dtype.kind in "iu" and np.all((arr == 0) | (arr == 1)):
        return arr.astype(bool)
    raise ValueError(f"found_inf must be True/False (one flag per run for a batch): whether the "
                     f"unscaled gradient had an inf or nan; got {found_inf!r}")


class DynamicLossScaler:
    """A dynamic loss scaler with PyTorch GradScaler semantics, scale kept in float32 like torch.

        inf/nan found:  skip the step, scale <- float32(scale * backoff_factor), tracker <- 0
        clean step:     tracker <- tracker + 1; if tracker == growth_interval:
                        scale <- float32(scale * growth_factor) if that is finite, tracker <- 0

    As in torch, the scale stops growing at the largest float32 power of two below overflow
    (2^127 with the default factor) and can back off all the way to 0 after many overflows.
    """

    def __init__(self, init_scale=65536.0, growth_factor=2.0, backoff_factor=0.5,
                 growth_interval=2000):
        for name, value in (("init_scale", init_scale), ("growth_factor", growth_factor),
                            ("backoff_factor", backoff_factor)):
            if np.ndim(value) != 0:
                raise ValueError(f"{name} must be one number; got an array of shape {np.shape(value)} "
                                 "(for a batch, call init(runs): every run gets its own scale)")
        self.init_scale = float(check_positive("init_scale", init_scale))
        if self.init_scale > float(np.finfo(np.float32).max):
            raise ValueError(f"init_scale must fit in float32 (at most about 3.4e38); got {init_scale!r}")
        self.init_scale = float(np.float32(self.init_scale))
        self.growth_factor = float(check_positive("growth_factor", growth_factor))
        if self.growth_factor <= 1:
            raise ValueError(f"growth_factor must be > 1; got {growth_factor!r}")
        self.backoff_factor = float(check_positive("backoff_factor", backoff_factor))
        if self.backoff_factor >= 1:
            raise ValueError(f"backoff_factor must lie in (0, 1); got {backoff_factor!r}")
        self.growth_interval = check_int("growth_interval", growth_interval, 1)

    def init(self, runs: int | None = None) -> ScalerState:
        """Fresh state: init_scale and no clean steps (one per run when runs is given)."""
        if runs is None:
            return ScalerState(scale=self.init_scale, growth_tracker=0)
        runs = check_int("runs", runs, 1)
        return ScalerState(scale=np.full(runs, self.init_scale, dtype=np.float32),
                           growth_tracker=np.zeros(runs, dtype=int))

    def update(self, state: ScalerState, found_inf) -> ScalerState:
        """The scale after one step (found_inf may be one flag per run)."""
        # BEGIN GRADED PIECE loss_scaler: DynamicLossScaler.update
        found = _found_flags(found_inf)
        scale32 = np.asarray(state.scale, dtype=np.float32)
        tracker = np.where(found, 0, np.asarray(state.growth_tracker) + 1)
        grow = tracker >= self.growth_interval
        with np.errstate(over="ignore"):
            # torch multiplies the float32 scale by a double factor and stores the float32 result
            backed = (scale32.astype(np.float64) * self.backoff_factor).astype(np.float32)
            grown = (scale32.astype(np.float64) * self.growth_factor).astype(np.float32)
        grown = np.where(np.isfinite(grown), grown, scale32)     # an inf growth is not taken
        scale = np.where(found, backed, np.where(grow, grown, scale32)).astype(np.float32)
        tracker = np.where(grow, 0, tracker)
        if found.ndim == 0 and np.ndim(state.scale) == 0:
            return ScalerState(scale=float(scale), growth_tracker=int(tracker))
        return ScalerState(scale=scale, growth_tracker=tracker)
        # END GRADED PIECE

    def __repr__(self):
        return (f"DynamicLossScaler(init_scale={self.init_scale!r}, growth_factor={self.growth_factor!r}, "
                f"backoff_factor={self.backoff_factor!r}, growth_interval={self.growth_interval!r})")
