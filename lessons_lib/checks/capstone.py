"""Checks for lesson 10: optimizer-state memory and the framework-style training loop."""
from __future__ import annotations

from ..memory import STATE_BUFFERS, state_gigabytes
from ..optimizers import AdamW
from ..runner import run
from ..schedules import cosine
from .framework import Wrong, call_blocked, check, close, diagnose, get_callable, scalar, type_name, vector


@check("optimizer-state memory")
def optimizer_state_memory(ns):
    """`optimizer_state_gb(optimizer, n_params, bytes_per_value=4)` for "SGD", "SGD + momentum", "Adam", "AdamW"."""
    fn = get_callable(ns, "optimizer_state_gb")
    for opt in ("SGD", "SGD + momentum", "Adam", "AdamW"):
        for n, b in ((7e9, 4), (1.3e9, 4), (1.3e9, 2)):
            case = f"{opt}, {n:g} parameters, {b} bytes per value"
            got = scalar(call_blocked(fn, "optimizer_state_gb", case, ("memory",), opt, n, b),
                         f"optimizer_state_gb({opt!r}, ...)")
            expected = state_gigabytes(opt, n, b)
            if close(got, expected, rtol=1e-9, atol=1e-12):
                continue
            buffers = STATE_BUFFERS[opt]
            if close(got, n * (buffers + 2) * b / 1e9):
                raise Wrong(f"case '{case}': this counts the weights and gradients too; the question asks for "
                             "the optimizer's state buffers only.")
            if close(got, n * buffers * b / 2**30):
                raise Wrong(f"case '{case}': that is GiB (2**30 bytes); the course uses GB = 1e9 bytes.")
            if expected > 0 and close(got, n * b / 1e9):
                raise Wrong(f"case '{case}': one buffer's worth; count every buffer the optimizer keeps.")
            diagnose(got, expected, f"optimizer_state_gb({opt!r}, {n:g}, {b})", prefix=f"case '{case}': ")
    return "No state for SGD, one buffer for momentum, two (m and v) for Adam and AdamW."


@check("the framework-style training loop")
def training_loop(ns):
    """`train(steps, peak_lr=0.08, max_norm=20.0, weight_decay=0.01)` -> (final_w, clipped_steps)."""
    fn = get_callable(ns, "train")
    cases = [("60 steps, the lesson's settings", 60, {}),
             ("25 steps, clipping at 50", 25, dict(max_norm=50.0)),
             ("40 steps, lr 0.02, no clipping needed", 40, dict(peak_lr=0.02, max_norm=1000.0))]
    for case, steps, kw in cases:
        peak, max_norm, wd = kw.get("peak_lr", 0.08), kw.get("max_norm", 20.0), kw.get("weight_decay", 0.01)
        ref = run(AdamW(lr=peak, weight_decay=wd), steps, schedule=cosine(peak, steps), max_norm=max_norm)
        out = call_blocked(fn, "train", case, ("run",), steps, **kw)
        if not isinstance(out, (tuple, list)) or len(out) != 2:
            raise Wrong(f"case '{case}': `train` should return (final_w, clipped_steps); it returned a {type_name(out)}.")
        w = vector(out[0], "final_w", size=2)
        n_clipped = scalar(out[1], "clipped_steps")
        if close(w, ref.final_params, rtol=1e-9) and n_clipped == int(ref.clipped.sum()):
            continue
        if close(w, ref.final_params, rtol=1e-9):
            raise Wrong(f"case '{case}': the weights are right but the number of clipped steps is not; count "
                         "the steps whose pre-clip norm exceeded max_norm.")
        cos = cosine(peak, steps)
        def ahead(k):
            return cos(k + 1)
        alt = run(AdamW(lr=peak, weight_decay=wd), steps, schedule=ahead, max_norm=max_norm)
        if close(w, alt.final_params, rtol=1e-9):
            raise Wrong(f"case '{case}': the lr runs one step ahead of the schedule (the scheduler was stepped "
                         "before the optimizer): step k should use lr(k), starting from lr(0).")
        alt = run(AdamW(lr=peak, weight_decay=wd), steps, schedule=cosine(peak, steps))
        if max_norm < 1000 and close(w, alt.final_params, rtol=1e-9):
            raise Wrong(f"case '{case}': the gradients were not clipped before the optimizer step.")
        alt = run(AdamW(lr=peak, weight_decay=wd), steps, max_norm=max_norm)
        if close(w, alt.final_params, rtol=1e-9):
            raise Wrong(f"case '{case}': the lr stays at its peak; set it from the cosine schedule each step.")
        diagnose(w, ref.final_params, "final_w", labels=("a", "b"), rtol=1e-9, prefix=f"case '{case}': ")
    return "Your loop reproduces the library's run with clipping and the cosine schedule."
