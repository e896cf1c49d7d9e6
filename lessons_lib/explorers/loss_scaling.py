"""Lesson 09's explorer: a dynamic loss scale keeps tiny fp16 gradients from underflowing.

The run trains on the course surface times 1e-8 (gradients of 1e-6 a and 1e-8 b, as small as a
real network's). Each step: g16 = fp16(scale * g); an inf/nan skips the step and halves the
scale; after growth_interval clean steps the scale doubles. The float64 reference run depends
only on (lr, steps) and the fp16 run on all four settings: both are cached per what they depend
on, read-only, so moving one slider never reruns the reference.
"""
from __future__ import annotations

import math

import numpy as np

from ..formatting import readout_number as num
from ..optimizers import SGD
from ..precision import FP16_SMALLEST_NORMAL, DynamicLossScaler
from ..runner import run
from ..surfaces import COURSE, Quadratic
from ..validation import check_int, check_positive_real, check_real
from .canvas import COLORS, Canvas, add_line, dress, log_limits, plain_log, positive_or_nan, set_curve
from .shell import Explorer, frozen_cache, int_slider, quiet, steps_taken

__all__ = ["LOSS_FACTOR", "TINY", "compute_loss_scaling", "loss_scaling_explorer"]

LOSS_FACTOR = 1e-8
"""The loss-scaling explorer trains on the course surface times 1e-8: gradients of
1e-6 * a and 1e-8 * b, as small as a real network's, so fp16 underflow shows up."""
TINY = Quadratic([100.0 * LOSS_FACTOR, 1.0 * LOSS_FACTOR])


@frozen_cache(maxsize=8)
def _float64_reference(lr, steps):
    return run(SGD(lr / LOSS_FACTOR), steps, surface=TINY)


@frozen_cache(maxsize=256)
def _fp16_run(log2_scale, growth_interval, steps, lr):
    scaler = DynamicLossScaler(init_scale=2.0 ** log2_scale, growth_interval=growth_interval)
    return run(SGD(lr / LOSS_FACTOR), steps, surface=TINY, scaler=scaler)


@quiet
def compute_loss_scaling(log2_scale=16, growth_interval=50, steps=200, lr=0.018):
    """SGD with fp16 gradients and a dynamic loss scaler on the course surface times 1e-8.

    Each step: g16 = fp16(scale * g); an inf/nan skips the step and halves the scale; after
    growth_interval clean steps the scale doubles. SGD uses lr / 1e-8, so the float64 run
    follows exactly the course path at `lr`; losses are reported in course units.
    Underflow: a coordinate whose true gradient is non-zero but arrives as exactly 0.
    """
    log2_scale = check_real("log2_scale", log2_scale)
    if not -60 <= log2_scale <= 127:
        raise ValueError(f"log2_scale must lie in [-60, 127] (the scale is a float32, as in torch: "
                         f"2^127 is the largest power of two it holds); got {log2_scale!r}")
    gi = check_int("growth_interval", growth_interval, 1)
    steps = check_int("steps", steps, 1)
    lr = check_positive_real("lr", lr)
    mixed = _fp16_run(log2_scale, gi, steps, lr)
    exact = _float64_reference(lr, steps)
    taken = steps_taken(mixed, steps)
    true_g = TINY.grad(mixed.params[:-1])
    valid = np.isfinite(mixed.params[:-1]).all(axis=-1) & ~mixed.skipped
    underflow = valid[:, None] & (true_g != 0) & (mixed.grads == 0)
    stored = np.abs(true_g * mixed.scales[:, None])
    subnormal = valid[:, None] & (mixed.grads != 0) & (stored < FP16_SMALLEST_NORMAL)
    skipped = int(np.sum(mixed.skipped))
    losses = COURSE.loss(mixed.params)
    exact_losses = COURSE.loss(exact.params)
    scales = mixed.scales
    last_scale = float(scales[taken - 1]) if taken else float(2.0 ** log2_scale)
    final = float(losses[-1])
    readout = (f"initial scale 2^{num(log2_scale)}, growth every {gi} clean steps, {steps} steps\n"
               f"underflowed gradient values: a {int(underflow[:, 0].sum())}, b {int(underflow[:, 1].sum())}; "
               f"subnormal (digits lost): {int(subnormal.sum())}; skipped steps (inf): {skipped}\n"
               f"scale at the last step 2^{num(math.log2(last_scale), 3)}; "
               f"final loss {num(final)} (float64 gradients: {num(float(exact_losses[-1]))})")
    problem = None
    if mixed.diverged:
        problem = f"diverged at step {mixed.diverged_at}"
    elif skipped == taken:
        problem = "every step was skipped: the scale never got small enough"
    elif not final <= 1.1 * float(exact_losses[-1]):
        problem = "fp16 gradients cost accuracy: the final loss is more than 10% above float64's"
    if problem:
        readout += f"\n{problem}"
    return {
        "log2_scale": log2_scale, "growth_interval": gi, "steps": steps, "lr": lr,
        "scales": scales, "skipped": mixed.skipped, "skipped_steps": skipped,
        "underflow": underflow, "underflow_counts": underflow.sum(axis=0).tolist(),
        "subnormal_count": int(subnormal.sum()),
        "params": mixed.params, "losses": losses, "reference_losses": exact_losses,
        "final_loss": final, "reference_final_loss": float(exact_losses[-1]),
        "diverged_at": mixed.diverged_at, "problem": problem, "readout": readout,
    }


def _build(cv):
    ax_s, ax_u, ax_l = cv.axes
    dress(ax_s, "step", "log2(loss scale)", "Loss scale over time")
    dress(ax_u, "step", "underflowed values so far", "Gradients lost to fp16 underflow")
    plain_log(ax_l)
    dress(ax_l, "step", "course loss (log scale)", "Loss per step")
    scale = add_line(cv, ax_s, "-", color=COLORS[0], linewidth=1.5, label="scale used")
    skip = add_line(cv, ax_s, "x", color="crimson", markersize=6, markeredgewidth=1.5, label="skipped step (inf)")
    ua = add_line(cv, ax_u, "-", color=COLORS[1], linewidth=1.5, label="a (gradient 1e-6 a)")
    ub = add_line(cv, ax_u, "-", color=COLORS[2], linewidth=1.5, label="b (gradient 1e-8 b)")
    l1 = add_line(cv, ax_l, "-", color=COLORS[0], linewidth=1.5, label="fp16 + dynamic scaler")
    l2 = add_line(cv, ax_l, "--", color="0.3", linewidth=1.2, label="float64 gradients")
    cv.legend(ax_s, [scale, skip], loc="lower right")
    cv.legend(ax_u, [ua, ub], loc="upper left")
    cv.legend(ax_l, [l1, l2], loc="lower left")
    return scale, skip, ua, ub, l1, l2


def draw_loss_scaling(cv, r, params):
    """log2 of the scale with the skipped steps, underflowed values so far, both losses."""
    scale, skip, ua, ub, l1, l2 = cv.built(_build)
    ax_s, ax_u, ax_l = cv.axes
    steps = r["steps"]
    k = np.arange(steps)
    with np.errstate(all="ignore"):
        ls = np.log2(r["scales"])
    set_curve(scale, ls)
    skip.set_data(k[r["skipped"]], ls[r["skipped"]])
    fin = ls[np.isfinite(ls)]
    lo = min(-4, 16 * math.floor((fin.min() - 2) / 16)) if fin.size else -4
    hi = max(52, 16 * math.ceil((fin.max() + 2) / 16)) if fin.size else 52
    ax_s.set_ylim(lo, hi)
    cum = np.cumsum(r["underflow"], axis=0)
    set_curve(ua, cum[:, 0])
    set_curve(ub, cum[:, 1])
    ax_u.set_ylim(-0.02 * steps, 1.02 * steps)
    set_curve(l1, positive_or_nan(r["losses"]))
    set_curve(l2, positive_or_nan(r["reference_losses"]))
    ax_l.set_ylim(*log_limits(r["losses"], r["reference_losses"], top_at_least=100))
    for ax in cv.axes:
        ax.set_xlim(0, steps)
    cv.notice.set_text(r["problem"] or "")


def loss_scaling_explorer(log2_scale=16, growth_interval=50) -> Explorer:
    """Lesson 09: log2 of the initial loss scale and the growth interval."""
    controls = {"log2_scale": int_slider("log2 init scale", log2_scale, 0, 40),
                "growth_interval": int_slider("growth interval", growth_interval, 1, 200)}
    return Explorer("loss_scaling",
                    "Dynamic loss scaling with fp16 gradients (surface x 1e-8, SGD, 200 steps)",
                    controls, compute_loss_scaling, draw_loss_scaling, Canvas(), fixed={"steps": 200})
