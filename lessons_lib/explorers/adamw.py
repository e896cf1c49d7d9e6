"""Lesson 06's explorer: AdamW shrinks a weight the data never touches by (1 - lr wd) per step; Adam + L2 moves it about one lr per step whatever wd is.

    AdamW:     w <- w (1 - lr wd), then Adam on the data gradient  -> c shrinks by (1 - lr wd)
    Adam + L2: g <- g + wd w goes through m / sqrt(v)             -> c moves about lr per step

Both runs are cached per (weight_decay, lr, steps), read-only: dragging a slider back over
values it has shown costs no run.
"""
from __future__ import annotations

import numpy as np

from ..formatting import readout_number as num
from ..optimizers import Adam, AdamW
from ..runner import run
from ..validation import check_int, check_nonnegative, check_positive_real, check_real
from .canvas import (COLORS, Canvas, add_line, dress, log_limits, plain_log, positive_or_nan, round_down,
                     round_up, set_curve, set_path)
from .shell import Explorer, final_loss, frozen_cache, log_slider, quiet

__all__ = ["UNTOUCHED", "compute_adamw", "adamw_explorer"]

START_3D = (1.0, 1.0, 1.0)


class _WithUntouchedCoordinate:
    """The course surface plus a third weight with zero curvature (no data gradient ever).

        L(a, b, c) = 0.5 * (100 a^2 + b^2 + 0 * c^2),   grad = [100 a, b, 0]

    (Quadratic refuses a zero curvature, so this tiny stand-in provides loss and grad.)
    """

    c = np.array([100.0, 1.0, 0.0])
    c.flags.writeable = False

    def loss(self, w):
        w = np.asarray(w, dtype=float)
        return 0.5 * np.sum(self.c * w * w, axis=-1)

    def grad(self, w):
        return self.c * np.asarray(w, dtype=float)


UNTOUCHED = _WithUntouchedCoordinate()


@frozen_cache(maxsize=256)
def _runs(weight_decay, lr, steps):
    """(AdamW run, Adam + L2 run) from [1, 1, 1] with the same lr and decay."""
    return (run(AdamW(lr, weight_decay=weight_decay), steps, surface=UNTOUCHED, start=START_3D),
            run(Adam(lr, weight_decay=weight_decay), steps, surface=UNTOUCHED, start=START_3D))


@quiet
def compute_adamw(weight_decay=0.1, lr=0.05, steps=100):
    """AdamW vs Adam + L2 with the same decay on a surface with an untouched third weight.

    AdamW:     w <- w (1 - lr wd), then Adam on the data gradient  -> c shrinks by (1 - lr wd)
    Adam + L2: g <- g + wd w goes through m / sqrt(v)             -> c moves about lr per step
    """
    wd = float(check_nonnegative("weight_decay", check_real("weight_decay", weight_decay)))
    lr = check_positive_real("lr", lr)
    steps = check_int("steps", steps, 1)
    decoupled, coupled = _runs(wd, lr, steps)
    parts, problems, out = [], [], {}
    for key, name, tr in (("adamw", "AdamW", decoupled), ("adam_l2", "Adam + L2", coupled)):
        out[key] = {"params": tr.params, "losses": tr.losses, "untouched": tr.params[:, 2],
                    "final_loss": final_loss(tr), "diverged_at": tr.diverged_at}
        if tr.diverged:
            problems.append(f"{name} diverged at step {tr.diverged_at}")
            parts.append(f"{name}: diverged at step {tr.diverged_at}")
        else:
            parts.append(f"{name}: untouched weight {num(tr.params[-1, 2])}, loss {num(tr.final_loss)}")
    readout = (f"weight_decay {num(wd)}, lr {num(lr)}, after {steps} steps (untouched weight starts at 1)\n"
               + "\n".join(parts))
    if not decoupled.diverged:
        readout += f"\nAdamW's factor per step (1 - lr * weight_decay) = {num(1 - lr * wd)}"
    return {"weight_decay": wd, "lr": lr, "steps": steps, **out,
            "problem": "; ".join(problems) or None, "readout": readout}


def _build(cv):
    ax_p, ax_u, ax_l = cv.axes
    cv.path_axes(ax_p, "Paths in (a, b)")
    ax_u.set_xlabel("step", fontsize=9)
    ax_u.set_ylabel("untouched weight u", fontsize=9)
    ax_u.set_title("The weight with no data gradient", fontsize=10)
    ax_u.axhline(0, color="0.5", linewidth=0.8)
    ax_u.grid(True, alpha=0.3)
    plain_log(ax_l)
    dress(ax_l, "step", "loss L(w) (log scale)", "Loss per step")
    lines = {}
    # the lesson's colours: AdamW green, Adam + L2 orange (plain Adam is blue there)
    for key, label, color in (("adamw", "AdamW (decoupled)", COLORS[2]),
                              ("adam_l2", "Adam + L2 (coupled)", COLORS[1])):
        lines[key] = (add_line(cv, ax_p, "-", color=color, linewidth=1.3, label=label),
                      add_line(cv, ax_u, "-", color=color, linewidth=1.5, label=label),
                      add_line(cv, ax_l, "-", color=color, linewidth=1.5, label=label))
    cv.legend(ax_u, [lines["adamw"][1], lines["adam_l2"][1]], loc="upper right")
    cv.legend(ax_l, [lines["adamw"][2], lines["adam_l2"][2]], loc="upper right")
    cv.legend(ax_p, [lines["adamw"][0], lines["adam_l2"][0]], loc="lower left")
    return lines


def draw_adamw(cv, r, params):
    """Both paths in (a, b), the untouched weight u per step, and both losses."""
    artists = cv.built(_build)
    _, ax_u, ax_l = cv.axes
    lo, hi = 0.0, 1.0
    for key, (lp, lu, ll) in artists.items():
        d = r[key]
        set_path(lp, d["params"])
        set_curve(lu, d["untouched"])
        set_curve(ll, positive_or_nan(d["losses"]))
        u = d["untouched"][np.isfinite(d["untouched"])]
        if u.size:
            lo, hi = min(lo, float(u.min())), max(hi, float(u.max()))
    pad = 0.05 * (hi - lo)
    # room above the curves for the legend (every curve starts at 1 and may stay near it)
    ax_u.set_ylim(round_down(lo - pad), round_up(hi + 0.4 * (hi - lo)))
    for ax in (ax_u, ax_l):
        ax.set_xlim(0, r["steps"])
    ax_l.set_ylim(*log_limits(r["adamw"]["losses"], r["adam_l2"]["losses"], top_at_least=1e4))
    cv.notice.set_text(r["problem"] or "")


def adamw_explorer(weight_decay=0.1, lr=0.05) -> Explorer:
    """Lesson 06: decay strength; AdamW vs Adam + L2 paths and the untouched weight."""
    controls = {"weight_decay": log_slider("weight_decay", weight_decay, -4, 1, step=0.05),
                "lr": log_slider("lr", lr, -4, 0, step=0.025)}
    return Explorer("adamw", "AdamW vs Adam + L2: the same decay strength, decoupled or not (100 steps)",
                    controls, compute_adamw, draw_adamw, Canvas(), fixed={"steps": 100})
