"""Lesson 04's explorer: AdaGrad and RMSprop give each coordinate its own learning rate.

    effective lr = lr / (sqrt(denominator) + eps),   w <- w - effective lr * g   (per coordinate)
    AdaGrad:  denominator = sum of every g^2 so far     (only grows: ~ 1/sqrt(t) for one size of g)
    RMSprop:  denominator = alpha-average of g^2        (memory about 1/(1 - alpha) steps;
              centered: minus the squared alpha-average of g)

The run and its effective lr per step are cached per (optimizer, lr, alpha, centered, eps,
steps), read-only; AdaGrad ignores alpha and centered, so moving them costs it nothing.
"""
from __future__ import annotations

import ipywidgets as widgets
import numpy as np

from ..adaptive import Adagrad, RMSprop
from ..formatting import readout_number as num
from ..formatting import readout_vector as vec
from ..runner import run
from ..validation import check_int, check_positive_real, check_real, check_unit_interval
from .canvas import COLORS, Canvas, add_line, log_limits, path_middle_loss, positive_or_nan, set_curve, set_path
from .shell import (Explorer, dropdown, final_loss, float_slider, frozen_cache, growth_problem, log_slider,
                    notice_text, outcome, quiet, steps_taken)

__all__ = ["ADAPTIVE_OPTIMIZERS", "A_LIMIT", "adaptive_optimizer", "compute_adaptive", "adaptive_explorer"]

ADAPTIVE_OPTIMIZERS = {"adagrad": "AdaGrad", "rmsprop": "RMSprop"}
"""optimizer key -> the name the readout and the dropdown show."""

A_LIMIT = 2 / 100
"""SGD's stability limit for the steep coordinate a (curvature 100): an effective lr above it
multiplies a by 1 - 100 * lr_eff < -1, so |a| grows on that step."""


def _optimizer_key(optimizer) -> str:
    key = optimizer.lower() if isinstance(optimizer, str) else optimizer
    if key not in ADAPTIVE_OPTIMIZERS:
        raise ValueError(f"optimizer must be 'adagrad' or 'rmsprop'; got {optimizer!r}")
    return key


def adaptive_optimizer(optimizer: str, lr, alpha=0.99, centered=False, eps=1e-8):
    """Adagrad(lr, eps=eps) for 'adagrad' (alpha and centered ignored), or RMSprop(lr, alpha, eps, centered)."""
    if _optimizer_key(optimizer) == "adagrad":
        return Adagrad(lr, eps=eps)
    return RMSprop(lr, alpha=alpha, eps=eps, centered=centered)


@frozen_cache(maxsize=64)
def _adaptive_run(optimizer, lr, alpha, centered, eps, steps):
    opt = adaptive_optimizer(optimizer, lr, alpha, centered, eps)
    trace = run(opt, steps, record_states=True)
    # the state after step t holds the denominator step t used; a diverged step keeps the old
    # state (the runner records it again), so only the steps before it have an effective lr
    usable = steps_taken(trace, steps) - (1 if trace.diverged else 0)
    eff = np.full((steps, 2), np.nan)
    for t in range(usable):
        eff[t] = opt.effective_lr(trace.states[t])
    return trace, eff


@quiet
def compute_adaptive(optimizer="rmsprop", lr=0.01, alpha=0.99, centered=False, eps=1e-8, steps=100):
    """AdaGrad or RMSprop on the course surface, with each coordinate's effective lr per step.

        effective lr = lr / (sqrt(denominator) + eps),   w <- w - effective lr * g
        AdaGrad: denominator = sum of g^2;   RMSprop: alpha * avg + (1 - alpha) * g^2
    """
    key = _optimizer_key(optimizer)
    lr = check_positive_real("lr", lr, hint="1e-2 is the default of both optimizers")
    eps = check_positive_real("eps", eps, hint="1e-8 is RMSprop's default, 1e-10 AdaGrad's")
    steps = check_int("steps", steps, 1)
    if key == "rmsprop":
        alpha = float(check_unit_interval("alpha", check_real("alpha", alpha),
                                          hint="0.99 is the default (a memory of about 100 steps)"))
        if not isinstance(centered, (bool, np.bool_)):
            raise ValueError(f"centered must be True or False; got {centered!r}")
        centered = bool(centered)
    else:                       # AdaGrad has neither: a sum of squares, no average to centre
        alpha, centered = None, False
    trace, eff = _adaptive_run(key, lr, alpha, centered, eps, steps)
    usable = steps_taken(trace, steps) - (1 if trace.diverged else 0)
    problem = growth_problem(trace)

    name = ADAPTIVE_OPTIMIZERS[key] + (" (centered)" if centered else "")
    setting = f"lr {num(lr)}" + (f", alpha {num(alpha)}" if key == "rmsprop" else "") + f", eps {num(eps)}"
    lines = [f"{name}, {setting}: {outcome(trace, steps)}"
             + (f" ({problem})" if problem and not trace.diverged else "")]
    w = trace.params[usable].copy()
    lines.append(f"final w {vec(w)}" if usable == steps else f"last w before it diverged (step {usable}) {vec(w)}")
    if usable:
        last = eff[usable - 1].copy()
        lines.append(f"effective lr at step {usable}, lr / (sqrt(denominator) + eps): "
                     f"a {num(last[0])}, b {num(last[1])}")
    else:
        last = np.full(2, np.nan)
        lines.append(f"effective lr: none (the run diverged at step {trace.diverged_at})")
    ratio = memory = None
    if key == "adagrad":
        early = max(steps // 4, 1)
        if usable == steps:
            ratio = eff[steps - 1] / eff[early - 1]
            lines.append(f"effective lr at step {steps} / step {early}: a {num(ratio[0])}, b {num(ratio[1])} "
                         f"(1/sqrt(t) gives {num((early / steps) ** 0.5)} while the gradient keeps its size)")
        else:
            lines.append(f"effective lr at step {steps} / step {early}: no step {steps} "
                         f"(the run diverged at step {trace.diverged_at})")
    else:
        memory = 1 / (1 - alpha)
        lines.append(f"memory of the average of g^2: 1/(1 - alpha) = {num(memory)} step{'' if memory == 1 else 's'}")
    return {
        "optimizer": key, "lr": lr, "alpha": alpha, "centered": centered, "eps": eps, "steps": steps,
        "params": trace.params, "losses": trace.losses, "effective_lr": eff,
        "final_w": w, "last_effective_lr": last,
        "ratio": ratio, "ratio_steps": (steps, max(steps // 4, 1)) if key == "adagrad" else None,
        "memory": memory,
        "final_loss": final_loss(trace),
        "diverged_at": trace.diverged_at, "problem": problem,
        "readout": "\n".join(lines),
    }


def _build(cv):
    ax_p, ax_e, ax_l = cv.axes
    path = path_middle_loss(cv, "lr / (sqrt(denominator) + eps) (log)", "Effective lr per coordinate")
    limit = ax_e.axhline(A_LIMIT, color="0.35", linestyle=":", linewidth=1.2, label="2/100 (above it a overshoots)")
    ea = add_line(cv, ax_e, "-", color=COLORS[1], linewidth=1.6, label="a (curvature 100)")
    eb = add_line(cv, ax_e, "--", color=COLORS[2], linewidth=1.6, label="b (curvature 1)")
    loss = add_line(cv, ax_l, "-", color=COLORS[0], linewidth=1.5)
    (start,) = ax_p.plot([], [], "s", color="k", markersize=6, linestyle="none", label="start [1, 1]")
    cv.legend(ax_p, [start, path], loc="lower left")
    cv.legend(ax_e, [ea, eb, limit], loc="lower left")
    return dict(path=path, ea=ea, eb=eb, loss=loss)


def draw_adaptive(cv, r, params):
    """Path on the contours, each coordinate's effective lr per step (log), and loss per step."""
    m = cv.built(_build)
    ax_p, ax_e, ax_l = cv.axes
    title = f"{ADAPTIVE_OPTIMIZERS[r['optimizer']]}{' (centered)' if r['centered'] else ''} path"
    cv.retitle(ax_p, title)
    set_path(m["path"], r["params"])
    x = np.arange(1, r["steps"] + 1)
    set_curve(m["ea"], positive_or_nan(r["effective_lr"][:, 0]), x)
    set_curve(m["eb"], positive_or_nan(r["effective_lr"][:, 1]), x)
    set_curve(m["loss"], positive_or_nan(r["losses"]))
    for ax in (ax_e, ax_l):
        ax.set_xlim(0, r["steps"])
    eff = positive_or_nan(r["effective_lr"])
    # headroom (a curve at 0.1 is not on the frame), still rounded to whole decades by log_limits
    top = [3 * np.nanmax(eff)] if np.any(np.isfinite(eff)) else []
    ax_e.set_ylim(*log_limits(eff, [A_LIMIT], top))
    ax_l.set_ylim(*log_limits(r["losses"], top_at_least=100))
    cv.notice.set_text(notice_text(r["problem"], r["params"]))


def adaptive_explorer(optimizer="rmsprop", lr=0.01, alpha=0.99, centered=False, eps=1e-8) -> Explorer:
    """Lesson 04: AdaGrad or RMSprop, lr, alpha and centered (RMSprop only), eps; the effective lr per coordinate."""
    controls = {"optimizer": dropdown("optimizer", [(label, key) for key, label in ADAPTIVE_OPTIMIZERS.items()],
                                      _optimizer_key(optimizer)),
                "lr": log_slider("lr", lr, -4, 1, step=0.025),
                "alpha": float_slider("alpha (RMSprop)", alpha, 0.5, 0.999, 0.001),
                "centered": widgets.Checkbox(value=centered, description="centered (RMSprop)", indent=False,
                                             layout=widgets.Layout(width="200px")),
                "eps": log_slider("eps", eps, -10, 0, step=0.25, fmt=".0e")}

    def only_for_rmsprop(change):
        for name in ("alpha", "centered"):
            controls[name].disabled = change["new"] != "rmsprop"

    only_for_rmsprop({"new": controls["optimizer"].value})
    controls["optimizer"].observe(only_for_rmsprop, names="value")  # registered before the redraw
    rows = [[controls["optimizer"], controls["centered"]], [controls["lr"], controls["alpha"], controls["eps"]]]
    return Explorer("adaptive", "AdaGrad and RMSprop: each coordinate's effective learning rate (100 steps)",
                    controls, compute_adaptive, draw_adaptive, Canvas(), fixed={"steps": 100},
                    layout_rows=rows)
