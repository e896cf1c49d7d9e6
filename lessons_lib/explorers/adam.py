"""Lesson 05's explorer: Adam's bias-corrected moments make the step about lr in every coordinate.

    m_hat = m / (1 - beta1^t),  v_hat = v / (1 - beta2^t),
    step  = w_{t-1} - w_t = lr * m_hat / (sqrt(v_hat) + eps)   (per coordinate)

The run with its recorded states is cached per (lr, beta1, beta2, eps, steps), read-only, so
the step slider only reads it.
"""
from __future__ import annotations

import numpy as np

from ..formatting import readout_vector as vec
from ..optimizers import Adam
from ..runner import run
from ..validation import check_int, check_positive_real, check_real, check_unit_interval
from .canvas import COLORS, Canvas, add_line, dress, log_limits, plain_log, positive_or_nan, set_curve, set_path
from .shell import (Explorer, final_loss, float_slider, frozen_cache, growth_problem, int_slider, log_slider,
                    notice_text, outcome, quiet, steps_taken)

__all__ = ["compute_adam", "adam_explorer"]


@frozen_cache(maxsize=32)
def _adam_run(lr, beta1, beta2, eps, steps):
    return run(Adam(lr, betas=(beta1, beta2), eps=eps), steps, record_states=True)


@quiet
def compute_adam(lr=0.01, beta1=0.9, beta2=0.999, eps=1e-8, at_step=1, steps=100):
    """Adam on the course surface; m_hat, v_hat and the applied step at step `at_step`.

        m_hat = m / (1 - beta1^t),  v_hat = v / (1 - beta2^t),
        step  = w_{t-1} - w_t = lr * m_hat / (sqrt(v_hat) + eps)   (per coordinate)
    """
    lr = check_positive_real("lr", lr, hint="1e-3 is Adam's default; the course uses 0.01")
    beta1 = float(check_unit_interval("beta1", check_real("beta1", beta1)))
    beta2 = float(check_unit_interval("beta2", check_real("beta2", beta2)))
    eps = check_positive_real("eps", eps, hint="1e-8 is the usual value")
    steps = check_int("steps", steps, 1)
    t = check_int("at_step", at_step, 1)
    if t > steps:
        raise ValueError(f"at_step must lie in 1..steps ({steps}); got {t}")
    opt = Adam(lr, betas=(beta1, beta2), eps=eps)
    trace = _adam_run(lr, beta1, beta2, eps, steps)
    usable = steps_taken(trace, steps) - (1 if trace.diverged else 0)
    if t <= usable:
        m_hat, v_hat = opt.moments_hat(trace.states[t - 1])
        step = trace.params[t - 1] - trace.params[t]
        grad = trace.grads[t - 1].copy()
        at = (f"step {t}: gradient {vec(grad)}\n  m_hat {vec(m_hat)}  v_hat {vec(v_hat)}\n"
              f"  step per coordinate {vec(step)}")
    else:
        m_hat = v_hat = step = grad = np.full(2, np.nan)
        at = f"step {t}: no state (the run diverged at step {trace.diverged_at})"
    problem = growth_problem(trace)
    return {
        "lr": lr, "beta1": beta1, "beta2": beta2, "eps": eps, "steps": steps, "at_step": t,
        "params": trace.params, "losses": trace.losses, "step_sizes": np.abs(np.diff(trace.params, axis=0)),
        "grad": np.asarray(grad), "m_hat": np.asarray(m_hat), "v_hat": np.asarray(v_hat),
        "step": np.asarray(step),
        "final_loss": final_loss(trace),
        "diverged_at": trace.diverged_at, "problem": problem,
        "readout": f"{at}\n{outcome(trace, steps)}" + (f" ({problem})" if problem and not trace.diverged else ""),
    }


def _build(cv):
    ax_p, ax_s, ax_l = cv.axes
    cv.path_axes(ax_p, "Adam path on the loss contours")
    for ax, title, ylabel in ((ax_s, "Size of the step per coordinate", "|w_t - w_(t-1)| (log scale)"),
                              (ax_l, "Loss per step", "loss L(w) (log scale)")):
        plain_log(ax)
        dress(ax, "step t", ylabel, title)
    path = add_line(cv, ax_p, "-", color=COLORS[0], linewidth=1.2, label="path")
    here = add_line(cv, ax_p, "o", color="crimson", markersize=7, label="w at the chosen step")
    sa = add_line(cv, ax_s, "-", color=COLORS[1], linewidth=3.0, alpha=0.6, label="a (curvature 100)")
    sb = add_line(cv, ax_s, "--", color=COLORS[2], linewidth=1.4, label="b (curvature 1)")
    loss = add_line(cv, ax_l, "-", color=COLORS[0], linewidth=1.5)
    cur_s = cv.dyn(ax_s.axvline(1, color="crimson", linewidth=1, linestyle="--"))
    cur_l = cv.dyn(ax_l.axvline(1, color="crimson", linewidth=1, linestyle="--"))
    (start,) = ax_p.plot([], [], "s", color="k", markersize=6, linestyle="none", label="start [1, 1]")
    cv.legend(ax_p, [start, path, here], loc="lower left")
    cv.legend(ax_s, [sa, sb], loc="lower left")
    return path, here, sa, sb, loss, cur_s, cur_l


def draw_adam(cv, r, params):
    """Path with the chosen step marked, step size per coordinate, and loss per step."""
    path, here, sa, sb, loss, cur_s, cur_l = cv.built(_build)
    _, ax_s, ax_l = cv.axes
    set_path(path, r["params"])
    t = r["at_step"]
    w = r["params"][t]
    here.set_data([w[0]], [w[1]]) if np.all(np.isfinite(w)) else here.set_data([], [])
    x = np.arange(1, r["steps"] + 1)
    set_curve(sa, positive_or_nan(r["step_sizes"][:, 0]), x)
    set_curve(sb, positive_or_nan(r["step_sizes"][:, 1]), x)
    set_curve(loss, positive_or_nan(r["losses"]))
    for ax in (ax_s, ax_l):
        ax.set_xlim(0, r["steps"])
    cur_s.set_xdata([t, t])
    cur_l.set_xdata([t, t])
    finite = np.asarray(r["step_sizes"])[np.isfinite(r["step_sizes"])]
    top = 3 * float(finite.max()) if finite.size else None     # headroom: a step of lr is not on the frame
    ax_s.set_ylim(*log_limits(r["step_sizes"], top_at_least=top))
    ax_l.set_ylim(*log_limits(r["losses"], top_at_least=100))
    cv.notice.set_text(notice_text(r["problem"], r["params"]))


def adam_explorer(lr=0.01, beta1=0.9, beta2=0.999, eps=1e-8, at_step=1) -> Explorer:
    """Lesson 05: lr, beta1, beta2, eps and a step slider showing m_hat, v_hat and the step."""
    controls = {"lr": log_slider("lr", lr, -4, 1, step=0.025),
                "beta1": float_slider("beta1", beta1, 0.0, 0.999, 0.001),
                "beta2": float_slider("beta2", beta2, 0.5, 0.9999, 0.0001, fmt=".4f"),
                "eps": log_slider("eps", eps, -12, 2, step=0.25, fmt=".0e"),
                "at_step": int_slider("show step t", at_step, 1, 100)}
    return Explorer("adam", "Adam: moments and the step per coordinate (100 steps)",
                    controls, compute_adam, draw_adam, Canvas(), fixed={"steps": 100})
