"""Lesson 02's explorer: SGD's learning rate decides each coordinate's multiplier 1 - lr * curvature.

Per coordinate the error is multiplied by (1 - lr * curvature) each step; |multiplier| > 1
means that coordinate grows, so the steep coordinate a (curvature 100) sets the largest
stable lr (0.02).
"""
from __future__ import annotations

import numpy as np

from ..formatting import readout_number as num
from ..optimizers import SGD
from ..runner import run
from ..surfaces import COURSE
from ..validation import check_int, check_positive_real
from .canvas import (COLORS, Canvas, add_line, dress, log_limits, plain_log, positive_or_nan,
                     set_curve, set_path, step_limit)
from .shell import START_LOSS, Explorer, final_loss, int_slider, log_slider, notice_text, outcome, quiet

__all__ = ["compute_sgd", "sgd_explorer"]


@quiet
def compute_sgd(lr=0.018, steps=40):
    """Plain SGD on the course surface: w <- w - lr * grad L(w).

    Per coordinate the error is multiplied by (1 - lr * curvature) each step; |multiplier| > 1
    means that coordinate grows.
    """
    lr = check_positive_real("lr", lr, hint="try 0.018")
    steps = check_int("steps", steps, 1)
    trace = run(SGD(lr), steps)
    multipliers = 1.0 - lr * COURSE.c
    unstable = [name for name, m in zip("ab", multipliers) if abs(m) > 1]
    head = f"lr {num(lr)}: multipliers a {num(multipliers[0])}, b {num(multipliers[1])}"
    if trace.diverged:
        problem = f"diverged at step {trace.diverged_at}"
        body = f"{problem} (|multiplier| > 1 in {', '.join(unstable)})"
    elif unstable:
        problem = f"unstable: |multiplier| > 1 in {', '.join(unstable)}, the loss grows"
        body = f"{problem}; loss {num(trace.final_loss)} after {steps} steps (start {num(START_LOSS)})"
    else:
        problem = None
        body = outcome(trace, steps)
    return {
        "lr": lr, "steps": steps,
        "params": trace.params, "losses": trace.losses,
        "multipliers": multipliers.tolist(),
        "final_loss": final_loss(trace),
        "diverged_at": trace.diverged_at,
        "problem": problem,
        "readout": f"{head}; {body}",
    }


def _build(cv):
    ax_p, ax_l, ax_m = cv.axes
    cv.path_axes(ax_p, "SGD path on the loss contours")
    plain_log(ax_l)
    dress(ax_l, "step", "loss L(w) (log scale)", "Loss per step")
    ax_m.axhspan(-1, 1, color="tab:green", alpha=0.12)
    ax_m.text(0.5, 1.6, "green band: stable, |multiplier| < 1", ha="center", va="center", fontsize=7.5)
    ax_m.axhline(0, color="0.5", linewidth=0.8)
    ax_m.set_xlim(-0.6, 1.6)
    ax_m.set_ylim(-2.5, 1.85)
    ax_m.set_xticks([0, 1], ["a (curv. 100)", "b (curv. 1)"], fontsize=8)
    ax_m.set_ylabel("1 - lr * curvature", fontsize=9)
    ax_m.set_title("Per-step multiplier of the error", fontsize=10)
    path = add_line(cv, ax_p, "-o", color=COLORS[0], markersize=3, linewidth=1.3, label="path w_0 .. w_k")
    end = add_line(cv, ax_p, "o", color=COLORS[3], markersize=6, label="last finite point")
    loss = add_line(cv, ax_l, "-", color=COLORS[0], linewidth=1.5)
    bars = [cv.dyn(b) for b in ax_m.bar([0, 1], [0, 0], width=0.55, color=[COLORS[1], COLORS[2]])]
    labels = [cv.dyn(ax_m.text(i, 0, "", ha="center", va="bottom", fontsize=8)) for i in range(2)]
    cv.legend(ax_p, [path, end], loc="lower left")
    return path, end, loss, bars, labels


def draw_sgd(cv, r, params):
    """Path on the contours, loss per step (log), and the two multipliers as bars."""
    path, end, loss, bars, labels = cv.built(_build)
    ax_l = cv.axes[1]
    set_path(path, r["params"])
    finite = r["params"][np.all(np.isfinite(r["params"]), axis=-1)]
    end.set_data(finite[-1:, 0], finite[-1:, 1])
    set_curve(loss, positive_or_nan(r["losses"]))
    ax_l.set_xlim(0, step_limit(r["steps"]))
    ax_l.set_ylim(*log_limits(r["losses"], top_at_least=100))
    for bar, lab, m, x in zip(bars, labels, r["multipliers"], (0, 1)):
        shown = float(np.clip(m, -2.5, 1.85))
        bar.set_height(shown)
        bar.set_color("crimson" if abs(m) > 1 else ("tab:orange" if x == 0 else "tab:green"))
        lab.set_text(num(m, 3))
        lab.set_position((x, shown + 0.05 if shown >= 0 else 0.05))
    cv.notice.set_text(notice_text(r["problem"], r["params"]))


def sgd_explorer(lr=0.018, steps=40) -> Explorer:
    """Lesson 02: SGD's learning rate (log slider) and number of steps."""
    controls = {"lr": log_slider("lr", lr, -4, 1, step=0.025),
                "steps": int_slider("steps", steps, 1, 200)}
    return Explorer("sgd", "SGD on L(a, b) = 0.5 (100 a² + b²): learning rate and steps",
                    controls, compute_sgd, draw_sgd, Canvas((3.5, 3.6, 2.9)))
