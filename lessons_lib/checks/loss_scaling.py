"""Checks for lesson 09: which gradients underflow in fp16, and the dynamic loss-scaler update."""
from __future__ import annotations

import math

import numpy as np

from ..precision import DynamicLossScaler, FP16_SMALLEST_NORMAL, ScalerState, to_fp16
from .framework import Wrong, call_blocked, check, close, diagnose, get, get_callable, scalar, type_name
from .parameters import FP16_GRADS


@check("which gradients underflow in fp16, and the scale that saves them")
def fp16_underflow(ns):
    """`underflows`: 5 booleans for FP16_GRADS; `scale_needed`: the smallest power of two for 1e-9."""
    expected = [bool(to_fp16(x) == 0) for x in FP16_GRADS]
    flags = get(ns, "underflows")
    if isinstance(flags, np.ndarray):
        flags = flags.tolist()
    if not isinstance(flags, (list, tuple)) or len(flags) != len(FP16_GRADS):
        raise Wrong(f"`underflows` should be a list of {len(FP16_GRADS)} True/False values, one per gradient.")
    if not all(isinstance(f, (bool, np.bool_)) for f in flags):
        raise Wrong("`underflows` should hold True/False values.")
    wrong = [x for x, f, e in zip(FP16_GRADS, flags, expected) if bool(f) != e]
    if wrong:
        notes = []
        for x in wrong:
            stored = float(to_fp16(x))
            notes.append(f"{x:g}" + (" (float16 keeps it as a subnormal: few digits, but not zero)"
                                     if stored != 0 and stored < FP16_SMALLEST_NORMAL else ""))
        raise Wrong(f"`underflows` is wrong for {', '.join(notes)}.")
    scale = scalar(get(ns, "scale_needed"), "scale_needed")
    target = FP16_GRADS[-1]
    k = math.ceil(math.log2(FP16_SMALLEST_NORMAL / target))
    best = 2.0**k
    if scale <= 0 or not float(np.log2(scale)).is_integer():
        raise Wrong("`scale_needed` should be a power of two (scaling by a power of two is exact in floating point).")
    if scale < best:
        raise Wrong(f"`scale_needed` is too small: {target:g} times it is still below float16's smallest normal "
                     "number, so it is stored as a subnormal with few digits (or as zero).")
    if scale > best:
        raise Wrong("`scale_needed` works but is not the smallest power of two that does; a larger scale "
                     "brings large gradients closer to overflow (65504).")
    return "The smallest power of two that lifts 1e-9 into float16's normal range."


@check("the dynamic loss-scaler update")
def loss_scaler_update(ns):
    """`scaler_update(scale, growth_tracker, found_inf, growth_factor=2.0, backoff_factor=0.5,
    growth_interval=2000)` -> (new_scale, new_growth_tracker)."""
    fn = get_callable(ns, "scaler_update")
    single = [
        ("inf step: back off and reset the counter", (65536.0, 5, True), {}),
        ("clean step: count it, keep the scale", (65536.0, 5, False), {}),
        ("clean step that reaches growth_interval: grow and reset", (1024.0, 1999, False), {}),
        ("clean step one before growth_interval", (1024.0, 1998, False), {}),
        ("inf step at growth_interval - 1", (1024.0, 1999, True), {}),
        ("other factors and interval", (8.0, 2, False), dict(growth_factor=4.0, backoff_factor=0.25, growth_interval=3)),
        ("other factors, inf step", (8.0, 2, True), dict(growth_factor=4.0, backoff_factor=0.25, growth_interval=3)),
    ]
    for case, (scale, tracker, found), kw in single:
        lib = DynamicLossScaler(init_scale=scale, **kw)
        ref = lib.update(ScalerState(scale=scale, growth_tracker=tracker), found)
        out = call_blocked(fn, "scaler_update", case, ("loss_scaler",), scale, tracker, found, **kw)
        _check_scaler_out(out, ref, case, scale, tracker, found, kw)
    case = "a run of 12 steps with an inf at step 5 (growth_interval 3)"
    lib = DynamicLossScaler(init_scale=256.0, growth_interval=3)
    st_ref = lib.init()
    scale, tracker = 256.0, 0
    for step in range(12):
        found = step == 5
        st_ref_next = lib.update(st_ref, found)
        out = call_blocked(fn, "scaler_update", case, ("loss_scaler",), scale, tracker, found, growth_interval=3)
        _check_scaler_out(out, st_ref_next, f"{case}, step {step}", scale, tracker, found, dict(growth_interval=3))
        scale, tracker = float(out[0]), int(out[1])
        st_ref = st_ref_next
    return "Back-off on inf, counting clean steps, growth at the interval: all match GradScaler's rule."


def _check_scaler_out(out, ref, case, scale, tracker, found, kw):
    if not isinstance(out, (tuple, list)) or len(out) != 2:
        raise Wrong(f"case '{case}': `scaler_update` should return (new_scale, new_growth_tracker); "
                     f"it returned a {type_name(out)}.")
    new_scale = scalar(out[0], "new_scale")
    new_tracker = scalar(out[1], "new_growth_tracker")
    interval = kw.get("growth_interval", 2000)
    gf, bf = kw.get("growth_factor", 2.0), kw.get("backoff_factor", 0.5)
    if close(new_scale, ref.scale) and new_tracker == ref.growth_tracker:
        return
    if found:
        if close(new_scale, scale * bf) and new_tracker != 0:
            raise Wrong(f"case '{case}': the scale backed off but the clean-step counter was not reset to 0.")
        if close(new_scale, scale):
            raise Wrong(f"case '{case}': an inf/nan step must shrink the scale by backoff_factor.")
        if close(new_scale, scale / bf):
            raise Wrong(f"case '{case}': the scale was divided by backoff_factor; multiply by it (it is below 1).")
    else:
        if tracker + 1 >= interval:
            if close(new_scale, scale * gf) and new_tracker != 0:
                raise Wrong(f"case '{case}': the scale grew but the counter was not reset to 0 afterwards.")
            if close(new_scale, scale):
                raise Wrong(f"case '{case}': this clean step brings the counter to growth_interval, so the scale "
                             "should grow by growth_factor.")
        else:
            if not close(new_scale, scale) and tracker + 2 >= interval:
                raise Wrong(f"case '{case}': the scale grew one step early; it grows when the counter reaches "
                             "growth_interval after counting this step.")
            if not close(new_scale, scale):
                raise Wrong(f"case '{case}': a clean step below the interval should leave the scale unchanged.")
            if new_tracker == tracker:
                raise Wrong(f"case '{case}': a clean step should add one to the counter.")
    if not close(new_scale, ref.scale):
        diagnose(new_scale, ref.scale, "new_scale", prefix=f"case '{case}': ")
    raise Wrong(f"case '{case}': the new growth_tracker is wrong.")
