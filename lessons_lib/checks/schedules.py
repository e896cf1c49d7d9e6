"""Checks for lesson 07: the warmup-cosine schedule and which rate the first update uses."""
from __future__ import annotations

import math

from ..schedules import warmup_cosine
from .framework import Wrong, call_blocked, check, close, diagnose, get, get_callable, scalar
from .parameters import SCHEDULE_06


@check("the warmup-cosine schedule")
def warmup_cosine_schedule(ns):
    """`warmup_cosine_lr(k, peak, final, warmup_steps, total_steps)` -> the lr of the k-th update."""
    fn = get_callable(ns, "warmup_cosine_lr")
    s = SCHEDULE_06
    cases = [
        ("first warmup step (k=0)", s, [0]),
        ("warmup boundary (last warmup step and first cosine step)", dict(peak=1e-3, final=1e-5, warmup_steps=4,
                                                                          total_steps=20), [3, 4]),
        ("last step lands on final", s, [9]),
        ("middle of the cosine", s, [5, 6]),
        ("no warmup (warmup_steps=0)", dict(peak=0.1, final=0.0, warmup_steps=0, total_steps=5), [0, 2, 4]),
        ("a long schedule", dict(peak=6e-4, final=6e-5, warmup_steps=100, total_steps=1000),
         [0, 49, 99, 100, 101, 500, 998, 999]),
    ]
    for case, p, steps in cases:
        lib = warmup_cosine(**p)
        expected = [lib(k) for k in steps]
        got = [scalar(call_blocked(fn, "warmup_cosine_lr", case, ("schedules",), k, p["peak"], p["final"],
                                     p["warmup_steps"], p["total_steps"]), f"warmup_cosine_lr({k}, ...)")
               for k in steps]
        if close(got, expected, rtol=1e-9):
            continue
        k_bad = next(k for k, a, b in zip(steps, got, expected) if not close(a, b, rtol=1e-9))
        a = got[steps.index(k_bad)]
        W, T, peak, final = p["warmup_steps"], p["total_steps"], p["peak"], p["final"]
        if k_bad < W and close(a, peak * k_bad / W):
            raise Wrong(f"case '{case}': step {k_bad} follows k / warmup_steps; the k-th update uses "
                         "(k + 1) / warmup_steps of the peak, so the very first update already moves.")
        prog = (k_bad - W) / max(T - W, 1)
        if k_bad >= W and close(a, final + (peak - final) * 0.5 * (1 + math.cos(math.pi * prog))):
            raise Wrong(f"case '{case}': the cosine progress divides by total_steps - warmup_steps, so the "
                         "last step misses `final`; divide by (total_steps - warmup_steps - 1).")
        prog = (k_bad - W) / max(T - W - 1, 1)
        if k_bad >= W and close(a, peak * 0.5 * (1 + math.cos(math.pi * prog))):
            raise Wrong(f"case '{case}': the cosine decays to 0 instead of to `final`.")
        if k_bad >= W and T - W - 1 > 0 and close(a, final + (peak - final) * 0.5 * (1 - math.cos(math.pi * prog))):
            raise Wrong(f"case '{case}': the cosine part rises instead of falling (check the sign of the cosine).")
        diagnose(a, expected[steps.index(k_bad)], f"warmup_cosine_lr({k_bad}, ...)", rtol=1e-9,
                  prefix=f"case '{case}': ")
    return "Warmup boundary, cosine and the final step all match the library."


@check("which lr the first update uses")
def scheduler_order(ns):
    """`first_lr_scheduler_after` and `first_lr_scheduler_before` for the 10-step schedule."""
    lib = warmup_cosine(**SCHEDULE_06)
    after = scalar(get(ns, "first_lr_scheduler_after"), "first_lr_scheduler_after")
    before = scalar(get(ns, "first_lr_scheduler_before"), "first_lr_scheduler_before")
    if close(after, lib(1)) and close(before, lib(0)):
        raise Wrong("the two answers are swapped: stepping the scheduler first moves it on before the "
                     "optimizer ever uses the first value.")
    diagnose(after, lib(0), "first_lr_scheduler_after", rtol=1e-9)
    diagnose(before, lib(1), "first_lr_scheduler_before", rtol=1e-9, known=[
        (lib(0), "`first_lr_scheduler_before` equals the correct-order value; stepping the scheduler "
                 "before the optimizer skips a value."),
    ])
    return "Stepping the scheduler first skips the schedule's first value."
