"""Lesson 08's explorer: global-norm clipping against the pre-clip gradient norms it cuts.

    g <- g * min(1, max_norm / (||g|| + 1e-6))   before each step

The run without clipping does not depend on the threshold: it is cached per (optimizer, lr,
steps), read-only, so the threshold slider reruns only the clipped run.
"""
from __future__ import annotations

import numpy as np

from ..formatting import readout_number as num
from ..runner import run
from ..validation import check_int, check_positive_real
from .canvas import COLORS, Canvas, add_line, dress, log_limits, plain_log, positive_or_nan, set_curve, set_path
from .shell import (Explorer, dropdown, final_loss, frozen_cache, log_slider, outcome, quiet, run_summary,
                    sgd_or_adamw, steps_taken)

__all__ = ["compute_clipping", "clipping_explorer"]


@frozen_cache(maxsize=64)
def _unclipped_run(optimizer, lr, steps):
    return run(sgd_or_adamw(optimizer, lr), steps)


@quiet
def compute_clipping(max_norm=20.0, lr=0.018, optimizer="sgd", steps=60):
    """Global-norm clipping before each step: g <- g * min(1, max_norm / (||g|| + 1e-6)).

    Reports the fraction of steps that clipped, the pre-clip norms and the path with and
    without clipping.
    """
    max_norm = check_positive_real("max_norm", max_norm, hint="the threshold is a gradient length, e.g. 20")
    lr = check_positive_real("lr", lr)
    steps = check_int("steps", steps, 1)
    clipped = run(sgd_or_adamw(optimizer, lr), steps, max_norm=max_norm)
    plain = _unclipped_run(optimizer, lr, steps)
    taken = steps_taken(clipped, steps)
    n_clipped = int(np.sum(clipped.clipped))
    fraction = n_clipped / taken if taken else 0.0
    norms = clipped.grad_norms
    max_pre = float(np.nanmax(norms)) if np.any(np.isfinite(norms)) else float("nan")
    name = "SGD" if optimizer == "sgd" else "AdamW (wd 0.01)"
    readout = (f"{name}, lr {num(lr)}, threshold {num(max_norm)}: clipped {n_clipped} of {taken} steps "
               f"({fraction:.0%}); largest pre-clip norm {num(max_pre)}\n"
               f"with clipping: {outcome(clipped, steps)}; without: {outcome(plain, steps)}")
    if fraction > 0.9 and taken >= 5:
        if optimizer == "sgd":      # SGD's step is lr * clipped gradient: every step is cut to lr * max_norm
            readout += "\nclipping fires on nearly every step: a symptom (lr or threshold), not a fix"
        else:                       # clipping does not shorten AdamW's step (lesson 08)
            readout += ("\nclipping fires on nearly every step: for AdamW not by itself a symptom, "
                        "since clipping does not shorten its step")
    problems = [f"{lab} diverged at step {t.diverged_at}"
                for lab, t in (("clipped run", clipped), ("unclipped run", plain)) if t.diverged]
    return {
        "max_norm": max_norm, "lr": lr, "optimizer": optimizer, "steps": steps,
        "clipped_steps": n_clipped, "steps_taken": taken, "clipped_fraction": fraction,
        "grad_norms": norms, "clipped": clipped.clipped, "max_pre_clip_norm": max_pre,
        "params": clipped.params, "losses": clipped.losses,
        "final_loss": final_loss(clipped),
        "diverged_at": clipped.diverged_at,
        "unclipped": run_summary(plain),
        "problem": "; ".join(problems) or None, "readout": readout,
    }


def _build(cv):
    ax_n, ax_p, ax_l = cv.axes
    plain_log(ax_n)
    dress(ax_n, "step", "pre-clip gradient norm (log)", "Pre-clip norms vs threshold")
    cv.path_axes(ax_p, "Paths on the loss contours")
    plain_log(ax_l)
    dress(ax_l, "step", "loss L(w) (log scale)", "Loss per step")
    norm = add_line(cv, ax_n, "-", color=COLORS[0], linewidth=1.3, label="pre-clip norm")
    hit = add_line(cv, ax_n, "o", color="crimson", markersize=3.5, label="clipped step")
    thr = cv.dyn(ax_n.axhline(1, color="k", linestyle="--", linewidth=1.2, label="threshold"))
    p1 = add_line(cv, ax_p, "-o", color=COLORS[0], markersize=2, linewidth=1.2, label="with clipping")
    p2 = add_line(cv, ax_p, "--", color=COLORS[1], linewidth=1.0, label="without clipping")
    l1 = add_line(cv, ax_l, "-", color=COLORS[0], linewidth=1.5, label="with clipping")
    l2 = add_line(cv, ax_l, "--", color=COLORS[1], linewidth=1.2, label="without clipping")
    cv.legend(ax_n, [norm, hit, thr], loc="lower left")
    cv.legend(ax_p, [p1, p2], loc="lower left")
    cv.legend(ax_l, [l1, l2], loc="lower left")
    return norm, hit, thr, p1, p2, l1, l2


def draw_clipping(cv, r, params):
    """Pre-clip norms with the threshold and the clipped steps, both paths, both losses."""
    norm, hit, thr, p1, p2, l1, l2 = cv.built(_build)
    ax_n, _, ax_l = cv.axes
    steps = r["steps"]
    k = np.arange(steps)
    set_curve(norm, positive_or_nan(r["grad_norms"]))
    hit.set_data(k[r["clipped"]], r["grad_norms"][r["clipped"]])
    thr.set_ydata([r["max_norm"], r["max_norm"]])
    ax_n.set_xlim(0, steps)
    ax_n.set_ylim(*log_limits(r["grad_norms"], [r["max_norm"]]))
    set_path(p1, r["params"])
    set_path(p2, r["unclipped"]["params"])
    set_curve(l1, positive_or_nan(r["losses"]))
    set_curve(l2, positive_or_nan(r["unclipped"]["losses"]))
    ax_l.set_xlim(0, steps)
    ax_l.set_ylim(*log_limits(r["losses"], r["unclipped"]["losses"], top_at_least=100))
    cv.notice.set_text(r["problem"] or "")


def clipping_explorer(max_norm=20.0, lr=0.018, optimizer="sgd") -> Explorer:
    """Lesson 08: the clipping threshold (and lr, optimizer); clipped fraction, norms, path."""
    controls = {"max_norm": log_slider("threshold", max_norm, -3, 3, step=0.05),
                "lr": log_slider("lr", lr, -4, 0, step=0.025),
                "optimizer": dropdown("optimizer", [("SGD", "sgd"), ("AdamW (wd 0.01)", "adamw")], optimizer)}
    return Explorer("clipping", "Global-norm clipping: threshold vs pre-clip norms (60 steps)",
                    controls, compute_clipping, draw_clipping, Canvas(), fixed={"steps": 60})
