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


def unscale(grads16, scale):
    """Back to float32 and divide by the scale: (g, found_inf) with found_inf per run.

        g = float32(g16) / scale;   found_inf = any(not isfinite(g))
    """
    g = np.asarray(grads16, dtype=np.float32).astype(np.float64)
    scale = np.asarray(scale, dtype=np.float64)
    with np.errstate(invalid="ignore", over="ignore"):
        g = g / (scale[..., None] if (scale.ndim and g.ndim > 1) else scale)
    found_inf = ~np.all(np.isfinite(g), axis=-1)
    return g, (bool(found_inf) if np.ndim(found_inf) == 0 else found_inf)


class ScalerState(NamedTuple):
    """scale: the current loss scale; growth_tracker: clean steps since the last change."""
    scale: float | np.ndarray
    growth_tracker: int | np.ndarray


class DynamicLossScaler:
    """A dynamic loss scaler with PyTorch GradScaler semantics.

        inf/nan found:  skip the step, scale <- scale * backoff_factor, tracker <- 0
        clean step:     tracker <- tracker + 1; if tracker == growth_interval:
                        scale <- scale * growth_factor, tracker <- 0
    """

    def __init__(self, init_scale=65536.0, growth_factor=2.0, backoff_factor=0.5,
                 growth_interval=2000):
        self.init_scale = float(check_positive("init_scale", init_scale))
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
        return ScalerState(scale=np.full(runs, self.init_scale), growth_tracker=np.zeros(runs, dtype=int))

    def update(self, state: ScalerState, found_inf) -> ScalerState:
        """The scale after one step (found_inf may be one flag per run)."""
        found = np.asarray(found_inf, dtype=bool)
        tracker = np.where(found, 0, np.asarray(state.growth_tracker) + 1)
        grow = tracker >= self.growth_interval
        with np.errstate(over="ignore"):   # a grown scale past float64's range is capped below
            scale = np.where(found, np.asarray(state.scale) * self.backoff_factor,
                             np.where(grow, np.asarray(state.scale) * self.growth_factor, state.scale))
        scale = np.minimum(scale, np.finfo(np.float64).max)  # never inf
        tracker = np.where(grow, 0, tracker)
        if found.ndim == 0:
            return ScalerState(scale=float(scale), growth_tracker=int(tracker))
        return ScalerState(scale=scale, growth_tracker=tracker)

    def __repr__(self):
        return (f"DynamicLossScaler(init_scale={self.init_scale!r}, growth_factor={self.growth_factor!r}, "
                f"backoff_factor={self.backoff_factor!r}, growth_interval={self.growth_interval!r})")
