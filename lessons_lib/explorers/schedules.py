"""Lesson 07's explorer: a warmup-cosine schedule against a constant lr at its peak.

    k <  W: lr = peak (k + 1) / W;   k >= W: lr = final + (peak - final)(1 + cos(pi p)) / 2

Each run is cached per the settings it depends on, read-only: the scheduled run per (optimizer,
peak, final, warmup, total steps), the constant run per (optimizer, peak) only, computed once
for at least 300 steps and cut to the total (a constant-lr run's first n steps do not depend on
how long it goes on), so the warmup, final and total-steps sliders never rerun it.
"""
from __future__ import annotations

import numpy as np

from ..formatting import readout_number as num
from ..runner import Trace, run
from ..schedules import warmup_cosine
from ..validation import check_int, check_nonnegative, check_positive_real, check_real
from .canvas import (COLORS, Canvas, add_line, dress, log_limits, nice_top, plain_log, positive_or_nan,
                     set_curve, set_path, step_limit)
from .shell import (Explorer, dropdown, float_slider, frozen_cache, int_slider, log_slider, outcome, quiet,
                    run_summary, sgd_or_adamw)

__all__ = ["constant_run", "compute_schedule", "schedule_explorer"]

CONSTANT_RUN_STEPS = 300


@frozen_cache(maxsize=32)
def _long_constant_run(optimizer, lr, steps):
    return run(sgd_or_adamw(optimizer, lr), steps)


def constant_run(optimizer: str, lr: float, steps: int) -> Trace:
    """The constant-lr run ('sgd' or 'adamw') for `steps` steps, without clipping; read-only.

    Cut from one cached run of max(steps, 300) steps, so dragging a steps slider costs nothing.
    """
    full = _long_constant_run(optimizer, lr, max(steps, CONSTANT_RUN_STEPS))
    div = full.diverged_at if full.diverged_at is not None and full.diverged_at <= steps else None
    return Trace(params=full.params[:steps + 1], losses=full.losses[:steps + 1], grads=full.grads[:steps],
                 lrs=full.lrs[:steps], grad_norms=full.grad_norms[:steps], clipped=full.clipped[:steps],
                 skipped=full.skipped[:steps], scales=full.scales[:steps], diverged_at=div,
                 surface=full.surface)


@frozen_cache(maxsize=256)
def _scheduled_run(optimizer, peak, final, warmup, total):
    return run(sgd_or_adamw(optimizer, peak), total, schedule=warmup_cosine(peak, final, warmup, total))


@quiet
def compute_schedule(warmup_steps=10, peak=0.08, final=0.008, total_steps=80, optimizer="adamw"):
    """Warmup-cosine schedule (linear warmup to peak, cosine down to final) vs a constant peak lr.

        k <  W: lr = peak (k + 1) / W;   k >= W: lr = final + (peak - final)(1 + cos(pi p)) / 2
    """
    peak = check_positive_real("peak", peak)
    final = float(check_nonnegative("final", check_real("final", final)))
    total = check_int("total_steps", total_steps, 3)
    warmup = check_int("warmup_steps", warmup_steps, 0)
    sched = warmup_cosine(peak, final, warmup, total)     # refuses a bad setting before any run
    sgd_or_adamw(optimizer, peak)
    scheduled = _scheduled_run(optimizer, peak, final, warmup, total)
    constant = constant_run(optimizer, peak, total)
    name = "SGD" if optimizer == "sgd" else "AdamW (weight_decay 0.01)"
    readout = (f"{name}, {total} steps: warmup {warmup}, peak {num(peak)}, final {num(final)}\n"
               f"warmup-cosine: {outcome(scheduled, total)}\n"
               f"constant lr {num(peak)}: {outcome(constant, total)}")
    problems = [f"{lab} diverged at step {t.diverged_at}"
                for lab, t in (("scheduled run", scheduled), ("constant run", constant)) if t.diverged]
    return {
        "warmup_steps": warmup, "peak": peak, "final": final, "total_steps": total, "optimizer": optimizer,
        "lrs": sched.values(total),
        "scheduled": run_summary(scheduled),
        "constant": run_summary(constant),
        "problem": "; ".join(problems) or None, "readout": readout,
    }


def _build(cv):
    ax_s, ax_l, ax_p = cv.axes
    dress(ax_s, "step k", "learning rate", "The schedule")
    plain_log(ax_l)
    dress(ax_l, "step", "loss L(w) (log scale)", "Its effect on the loss")
    cv.path_axes(ax_p, "Paths on the loss contours")
    s1 = add_line(cv, ax_s, "-", color=COLORS[0], linewidth=1.6, label="warmup-cosine")
    s2 = add_line(cv, ax_s, "--", color=COLORS[1], linewidth=1.3, label="constant at peak")
    l1 = add_line(cv, ax_l, "-", color=COLORS[0], linewidth=1.5, label="warmup-cosine")
    l2 = add_line(cv, ax_l, "--", color=COLORS[1], linewidth=1.3, label="constant at peak")
    p1 = add_line(cv, ax_p, "-", color=COLORS[0], linewidth=1.2, label="warmup-cosine")
    p2 = add_line(cv, ax_p, "--", color=COLORS[1], linewidth=1.0, label="constant at peak")
    cv.legend(ax_s, [s1, s2], loc="lower center")
    cv.legend(ax_l, [l1, l2], loc="lower left")
    return s1, s2, l1, l2, p1, p2


def draw_schedule(cv, r, params):
    """The two lr curves, their losses per step, and their paths on the contours."""
    s1, s2, l1, l2, p1, p2 = cv.built(_build)
    ax_s, ax_l, _ = cv.axes
    total = r["total_steps"]
    set_curve(s1, r["lrs"])
    set_curve(s2, np.full(total, r["peak"]))
    ax_s.set_xlim(0, step_limit(total))
    ax_s.set_ylim(0, nice_top(r["peak"] * 1.15))
    set_curve(l1, positive_or_nan(r["scheduled"]["losses"]))
    set_curve(l2, positive_or_nan(r["constant"]["losses"]))
    ax_l.set_xlim(0, step_limit(total))
    ax_l.set_ylim(*log_limits(r["scheduled"]["losses"], r["constant"]["losses"], top_at_least=100))
    set_path(p1, r["scheduled"]["params"])
    set_path(p2, r["constant"]["params"])
    cv.notice.set_text(r["problem"] or "")


def schedule_explorer(warmup_steps=10, peak=0.08, final_fraction=0.1, total_steps=80,
                      optimizer="adamw") -> Explorer:
    """Lesson 07: warmup, peak, final (as a fraction of peak) and total steps."""
    controls = {"warmup_steps": int_slider("warmup steps", warmup_steps, 0, total_steps - 2),
                "peak": log_slider("peak lr", peak, -4, 1, step=0.025),
                "final_fraction": float_slider("final / peak", final_fraction, 0.0, 1.0, 0.01, fmt=".2f"),
                "total_steps": int_slider("total steps", total_steps, 10, 300),
                "optimizer": dropdown("optimizer", [("AdamW (wd 0.01)", "adamw"), ("SGD", "sgd")], optimizer)}

    def keep_warmup_valid(change):
        controls["warmup_steps"].max = max(change["new"] - 2, 0)

    controls["total_steps"].observe(keep_warmup_valid, names="value")  # registered before the redraw

    def compute(warmup_steps, peak, final_fraction, total_steps, optimizer):
        return compute_schedule(warmup_steps=min(warmup_steps, total_steps - 2), peak=peak,
                                final=final_fraction * peak, total_steps=total_steps, optimizer=optimizer)

    return Explorer("schedule", "Warmup + cosine schedule and its effect on the loss",
                    controls, compute, draw_schedule, Canvas())
