"""Lesson 13's explorer: optimizers that keep less state, on the course surface.

    SGD + momentum 0.9   one buffer          step = lr * momentum-averaged gradient
    AdamW                two buffers (m, v)  step = lr * m_hat / (sqrt(v_hat) + eps), about lr per coordinate
    Lion                 one buffer          step = lr * sign(beta1 m + (1 - beta1) g): exactly lr per coordinate
    Adafactor (vector)   one buffer (d,)     a relative step: max(eps2, RMS(w)) * min(lr, 1/sqrt(t)) per unit update
    AdamW 8-bit          m, v in one byte    AdamW's step on the dequantized moments (both coordinates share a block)

weight_decay is 0 for every optimizer, so the step shows the update rule alone. The run is cached
per (optimizer, lr, schedule, steps), read-only. The readout gives the bytes of the state the run
ends with (lean.state_nbytes on the real arrays) and each coordinate's step size.
"""
from __future__ import annotations

import numpy as np

from ..formatting import readout_number as num
from ..formatting import readout_vector as vec
from ..lean import Adafactor, Lion, state_nbytes
from ..optimizers import SGD, AdamW
from ..quantized import AdamW8bit
from ..runner import run
from ..schedules import cosine
from ..validation import check_int, check_positive_real
from .canvas import COLORS, Canvas, add_line, log_limits, path_middle_loss, positive_or_nan, set_curve, set_path
from .shell import (Explorer, dropdown, final_loss, frozen_cache, growth_problem, log_slider, notice_text, outcome,
                    quiet, steps_taken)

__all__ = ["LEAN_OPTIMIZERS", "LEAN_SCHEDULES", "lean_optimizer", "compute_lean", "lean_explorer"]

LEAN_OPTIMIZERS = {"momentum": "SGD + momentum 0.9", "adamw": "AdamW", "lion": "Lion",
                   "adafactor": "Adafactor (vector)", "adamw8bit": "AdamW 8-bit"}
"""optimizer key -> the name the readout and the dropdown show."""

LEAN_SCHEDULES = {"constant": "constant lr", "cosine": "cosine from lr to 0"}

WINDOW = 10
"""The readout's step sizes are means over the last WINDOW steps."""


def _key(value, options, what):
    key = value.lower() if isinstance(value, str) else value
    if key not in options:
        raise ValueError(f"{what} must be one of {list(options)}; got {value!r}")
    return key


def lean_optimizer(optimizer: str, lr):
    """The explorer's optimizer for a key of LEAN_OPTIMIZERS (no weight decay)."""
    key = _key(optimizer, LEAN_OPTIMIZERS, "optimizer")
    if key == "momentum":
        return SGD(lr, momentum=0.9)
    if key == "adamw":
        return AdamW(lr, weight_decay=0.0)
    if key == "lion":
        return Lion(lr)
    if key == "adafactor":
        return Adafactor(lr)
    return AdamW8bit(lr, weight_decay=0.0, block_size=256)


@frozen_cache(maxsize=64)
def _lean_run(optimizer, lr, schedule, steps):
    opt = lean_optimizer(optimizer, lr)
    trace = run(opt, steps, schedule=cosine(lr, steps, 0.0) if schedule == "cosine" else None, record_states=True)
    state = trace.states[-1] if trace.states else opt.init(np.ones(2))
    return trace, state_nbytes(state), [f for f, v in zip(state._fields, state) if isinstance(v, np.ndarray)]


@quiet
def compute_lean(optimizer="lion", lr=0.01, schedule="constant", steps=200):
    """One optimizer of lesson 13 on the course surface: path, loss, each coordinate's step size, state bytes.

        step size of coordinate i at step t: |w_t[i] - w_(t-1)[i]|   (Lion: lr, exactly, while c[i] != 0)
    """
    key = _key(optimizer, LEAN_OPTIMIZERS, "optimizer")
    lr = check_positive_real("lr", lr, hint="1e-2 is a good start on this surface")
    sched = _key(schedule, LEAN_SCHEDULES, "schedule")
    steps = check_int("steps", steps, 1)
    trace, nbytes, buffers = _lean_run(key, lr, sched, steps)
    taken = steps_taken(trace, steps)
    sizes = np.abs(np.diff(trace.params, axis=0))          # (steps, 2); nan after a divergence
    problem = growth_problem(trace)

    lines = [f"{LEAN_OPTIMIZERS[key]}, lr {num(lr)}, {LEAN_SCHEDULES[sched]}: {outcome(trace, steps)}"
             + (f" ({problem})" if problem and not trace.diverged else "")]
    usable = taken - (1 if trace.diverged else 0)
    w = trace.params[usable].copy()
    lines.append(f"final w {vec(w)}" if usable == steps else f"last w before it diverged (step {usable}) {vec(w)}")
    lines.append(f"state: {', '.join(buffers) or 'none'}: {nbytes} bytes for 2 parameters "
                 f"({num(nbytes / 2)} per parameter)")
    recent = None
    if usable >= 1:
        window = sizes[max(0, usable - WINDOW):usable]
        recent = window.mean(axis=0)
        first = sizes[0]
        lines.append(f"step size at step 1: a {num(first[0])}, b {num(first[1])} (lr {num(lr)})")
        ratio = f" (b / a {num(recent[1] / recent[0])})" if recent[0] > 0 else ""
        lines.append(f"step size, mean of steps {max(1, usable - WINDOW + 1)}-{usable}: a {num(recent[0])}, "
                     f"b {num(recent[1])}{ratio}")
    else:
        lines.append(f"step sizes: none (the run diverged at step {trace.diverged_at})")
    return {
        "optimizer": key, "lr": lr, "schedule": sched, "steps": steps,
        "params": trace.params, "losses": trace.losses, "step_sizes": sizes,
        "final_w": w, "state_bytes": nbytes, "state_buffers": list(buffers),
        "recent_step_sizes": recent,
        "final_loss": final_loss(trace), "diverged_at": trace.diverged_at, "problem": problem,
        "readout": "\n".join(lines),
    }


def _build(cv):
    ax_p, ax_s, ax_l = cv.axes
    path = path_middle_loss(cv, "|w_t - w_(t-1)| per coordinate (log)", "Step size per coordinate")
    # lr drawn wide and pale underneath: where a step is exactly lr (Lion) the three lines stay visible
    lr_line = add_line(cv, ax_s, "-", color="0.6", linewidth=5, alpha=0.45, label="lr (wide, pale)")
    sa = add_line(cv, ax_s, "-", color=COLORS[1], linewidth=1.8, label="a (curvature 100)")
    sb = add_line(cv, ax_s, "--", color=COLORS[2], linewidth=1.6, label="b (curvature 1, dashed)")
    loss = add_line(cv, ax_l, "-", color=COLORS[0], linewidth=1.5)
    (start,) = ax_p.plot([], [], "s", color="k", markersize=6, linestyle="none", label="start [1, 1]")
    cv.legend(ax_p, [start, path], loc="lower left")
    cv.legend(ax_s, [sa, sb, lr_line], loc="upper right")   # the top decades stay empty (top fixed at 10)
    return dict(path=path, sa=sa, sb=sb, lr=lr_line, loss=loss)


def draw_lean(cv, r, params):
    """Path on the contours, each coordinate's step size per step (log) with lr, and loss per step."""
    m = cv.built(_build)
    ax_p, ax_s, ax_l = cv.axes
    title = f"{LEAN_OPTIMIZERS[r['optimizer']]} path"
    cv.retitle(ax_p, title)
    set_path(m["path"], r["params"])
    x = np.arange(1, r["steps"] + 1)
    set_curve(m["sa"], positive_or_nan(r["step_sizes"][:, 0]), x)
    set_curve(m["sb"], positive_or_nan(r["step_sizes"][:, 1]), x)
    rates = r["lr"] * (cosine(1.0, r["steps"], 0.0).values(r["steps"]) if r["schedule"] == "cosine" else np.ones(r["steps"]))
    set_curve(m["lr"], positive_or_nan(rates), x)
    set_curve(m["loss"], positive_or_nan(r["losses"]))
    for ax in (ax_s, ax_l):
        ax.set_xlim(0, r["steps"])
    ax_s.set_ylim(*log_limits(r["step_sizes"], [r["lr"]], top_at_least=10.0))   # top fixed: the lr slider ends at 1
    ax_l.set_ylim(*log_limits(r["losses"], top_at_least=100))
    cv.notice.set_text(notice_text(r["problem"], r["params"]))


def lean_explorer(optimizer="lion", lr=0.01, schedule="constant") -> Explorer:
    """Lesson 13: SGD + momentum, AdamW, Lion, Adafactor or 8-bit AdamW; lr and schedule; step sizes and state bytes."""
    controls = {"optimizer": dropdown("optimizer", [(label, key) for key, label in LEAN_OPTIMIZERS.items()],
                                      _key(optimizer, LEAN_OPTIMIZERS, "optimizer")),
                "lr": log_slider("lr", lr, -4, 0, step=0.025),
                "schedule": dropdown("schedule", [(label, key) for key, label in LEAN_SCHEDULES.items()],
                                     _key(schedule, LEAN_SCHEDULES, "schedule"))}
    rows = [[controls["optimizer"], controls["schedule"]], [controls["lr"]]]
    return Explorer("lean", "Lean optimizer state: step size per coordinate and bytes of state (200 steps)",
                    controls, compute_lean, draw_lean, Canvas(), fixed={"steps": 200}, layout_rows=rows)
