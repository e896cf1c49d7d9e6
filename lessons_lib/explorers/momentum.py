"""Lesson 03's explorer: momentum's lr and beta, in three conventions, on the lr x beta map.

    ema:        m = beta m + (1 - beta) g (from 0);   w -= lr m       (the course's EMAMomentum)
    dampened:   PyTorch SGD(momentum=beta, dampening=beta): the same EMA but started at g1
    heavy-ball: PyTorch SGD(momentum=beta):  v = beta v + g;  w -= lr v

The map (final loss after `steps` for 64 x 64 settings) is one vectorised batch of 4096 runs,
cached per (convention, steps) and read-only: the only cache of the explorers that a slider
could not do without.
"""
from __future__ import annotations

import matplotlib
import numpy as np

from ..formatting import readout_number as num
from ..optimizers import SGD, EMAMomentum
from ..runner import run
from ..validation import check_int, check_positive_real, check_real, check_unit_interval
from .canvas import COLORS, Canvas, add_line, dress, log_limits, plain_log, positive_or_nan, set_curve, set_path
from .shell import (Explorer, dropdown, final_loss, float_slider, frozen_cache, growth_problem, log_slider,
                    notice_text, outcome, quiet)

__all__ = ["MOMENTUM_CONVENTIONS", "HEATMAP_LR", "HEATMAP_BETA", "momentum_optimizer", "momentum_heatmap",
           "compute_momentum", "momentum_explorer"]

MOMENTUM_CONVENTIONS = {
    "ema": "EMA: m = beta m + (1 - beta) g from 0, w -= lr m",
    "dampened": "framework, dampening = beta: buffer starts at g1",
    "heavy-ball": "heavy-ball: v = beta v + g, w -= lr v",
}
HEATMAP_LR = np.geomspace(1e-4, 1.0, 64)
HEATMAP_LR.flags.writeable = False
HEATMAP_BETA = np.linspace(0.0, 0.99, 64)
HEATMAP_BETA.flags.writeable = False


def momentum_optimizer(lr, beta, convention):
    """The optimizer of one convention (lr and beta may be per-run arrays)."""
    if convention == "ema":
        return EMAMomentum(lr, beta)
    if convention == "dampened":
        return SGD(lr, momentum=beta, dampening=beta)
    if convention == "heavy-ball":
        return SGD(lr, momentum=beta)
    raise ValueError(f"convention must be one of {sorted(MOMENTUM_CONVENTIONS)}; got {convention!r}")


@frozen_cache(maxsize=16)
def _heatmap(convention, steps):
    L, B = np.meshgrid(HEATMAP_LR, HEATMAP_BETA)          # rows: beta, columns: lr
    trace = run(momentum_optimizer(L.ravel(), B.ravel(), convention), steps)
    return np.where(trace.diverged, np.nan, trace.losses[-1]).reshape(L.shape)


def momentum_heatmap(convention="ema", steps=40):
    """Final loss after `steps` for a 64 x 64 grid of lr (log, 1e-4..1) x beta (0..0.99).

    One vectorised batch of 4096 runs, cached per (convention, steps). Returns
    (lrs, betas, final) with final[i, j] for beta i and lr j; nan where the run diverged.
    All three arrays are read-only.
    """
    if convention not in MOMENTUM_CONVENTIONS:
        raise ValueError(f"convention must be one of {sorted(MOMENTUM_CONVENTIONS)}; got {convention!r}")
    steps = check_int("steps", steps, 1)
    return HEATMAP_LR, HEATMAP_BETA, _heatmap(convention, steps)


@quiet
def compute_momentum(lr=0.018, beta=0.9, convention="ema", steps=40):
    """Momentum on the course surface in one of three conventions, plus the lr x beta map.

    ema:        m = beta m + (1 - beta) g (from 0);   w -= lr m       (the course's EMAMomentum)
    dampened:   PyTorch SGD(momentum=beta, dampening=beta): the same EMA but started at g1
    heavy-ball: PyTorch SGD(momentum=beta):  v = beta v + g;  w -= lr v
    """
    lr = check_positive_real("lr", lr, hint="try 0.018")
    beta = float(check_unit_interval("beta", check_real("beta", beta), hint="0.9 is a common choice"))
    steps = check_int("steps", steps, 1)
    trace = run(momentum_optimizer(lr, beta, convention), steps)
    lrs, betas, final = momentum_heatmap(convention, steps)
    if np.all(np.isnan(final)):
        best = None
    else:
        i, j = np.unravel_index(np.nanargmin(final), final.shape)
        best = {"lr": float(lrs[j]), "beta": float(betas[i]), "final_loss": float(final[i, j])}
    problem = growth_problem(trace)
    readout = f"{convention}, lr {num(lr)}, beta {num(beta, 3)}: {outcome(trace, steps)}"
    if problem and not trace.diverged:
        readout += f" ({problem})"
    if best:
        readout += (f"\nbest on this {len(betas)}x{len(lrs)} map: lr {num(best['lr'], 3)}, "
                    f"beta {num(best['beta'], 3)} -> final loss {num(best['final_loss'])}")
    if not lrs[0] <= lr <= lrs[-1]:
        readout += "\n(the chosen lr is outside the map's range 1e-4..1)"
    return {
        "lr": lr, "beta": beta, "convention": convention, "steps": steps,
        "params": trace.params, "losses": trace.losses,
        "final_loss": final_loss(trace),
        "diverged_at": trace.diverged_at,
        "heatmap_lr": lrs, "heatmap_beta": betas, "heatmap_final_loss": final,
        "best": best, "problem": problem, "readout": readout,
    }


def _build(cv):
    ax_p, ax_l, ax_h = cv.axes
    cv.path_axes(ax_p, "Momentum path on the loss contours")
    plain_log(ax_l)
    dress(ax_l, "step", "loss L(w) (log scale)", "Loss per step")
    lx = np.log10(HEATMAP_LR)
    dx = (lx[1] - lx[0]) / 2
    db = (HEATMAP_BETA[1] - HEATMAP_BETA[0]) / 2
    cmap = matplotlib.colormaps["viridis"].with_extremes(bad="0.8")
    img = ax_h.imshow(np.zeros((64, 64)), origin="lower", aspect="auto", cmap=cmap,
                      extent=(lx[0] - dx, lx[-1] + dx, HEATMAP_BETA[0] - db, HEATMAP_BETA[-1] + db),
                      vmin=-8, vmax=3, interpolation="nearest")
    cb = ax_h.figure.colorbar(img, ax=ax_h, fraction=0.08, pad=0.03)
    cb.set_label("log10 final loss (grey: diverged)", fontsize=8)
    ax_h.set_xticks([-4, -3, -2, -1, 0], ["1e-4", "1e-3", "0.01", "0.1", "1"], fontsize=8)
    ax_h.set_xlabel("lr (log scale)", fontsize=9)
    ax_h.set_ylabel("beta", fontsize=9)
    ax_h.set_title("", fontsize=10)
    path = add_line(cv, ax_p, "-o", color=COLORS[0], markersize=2.5, linewidth=1.2, label="path")
    loss = add_line(cv, ax_l, "-", color=COLORS[0], linewidth=1.5)
    chosen = add_line(cv, ax_h, "o", markersize=9, markerfacecolor="none", markeredgecolor="red",
                      markeredgewidth=2, label="chosen setting")
    best = add_line(cv, ax_h, "X", markersize=9, markerfacecolor="white", markeredgecolor="k",
                    markeredgewidth=1, label="best on the map")
    cv.legend(ax_h, [chosen, best], loc="lower left")
    return dict(img=img, path=path, loss=loss, chosen=chosen, best=best, shown_map=None)


def draw_momentum(cv, r, params):
    """Path on the contours, loss per step, and the map with the chosen and the best setting."""
    m = cv.built(_build)
    _, ax_l, ax_h = cv.axes
    if m["shown_map"] != (r["convention"], r["steps"]):
        with np.errstate(all="ignore"):
            m["img"].set_data(np.log10(r["heatmap_final_loss"]))
        ax_h.set_title(f"Final loss after {r['steps']} steps: {r['convention']}", fontsize=10)
        m["shown_map"] = (r["convention"], r["steps"])
        cv.bump(ax_h)
    set_path(m["path"], r["params"])
    set_curve(m["loss"], positive_or_nan(r["losses"]))
    ax_l.set_xlim(0, r["steps"])
    ax_l.set_ylim(*log_limits(r["losses"], top_at_least=100))
    x = float(np.clip(np.log10(r["lr"]), -4, 0))
    m["chosen"].set_data([x], [r["beta"]])
    if r["best"]:
        m["best"].set_data([np.log10(r["best"]["lr"])], [r["best"]["beta"]])
    else:
        m["best"].set_data([], [])
    cv.notice.set_text(notice_text(r["problem"], r["params"]))


def momentum_explorer(lr=0.018, beta=0.9, convention="ema") -> Explorer:
    """Lesson 03: lr, beta and the momentum convention; the setting marked on the lr x beta map."""
    options = [(label, key) for key, label in MOMENTUM_CONVENTIONS.items()]
    controls = {"lr": log_slider("lr", lr, -4, 0, step=0.025),
                "beta": float_slider("beta", beta, 0.0, 0.99, 0.01, fmt=".2f"),
                "convention": dropdown("convention", options, convention)}
    controls["convention"].layout.width = "420px"
    return Explorer("momentum", "Momentum: lr, beta and convention, on the lr x beta map (40 steps)",
                    controls, compute_momentum, draw_momentum,
                    Canvas((3.5, 3.3, 3.9), panel_margins=[{}, {}, {"left": 0.19, "right": 0.9}]), fixed={"steps": 40})
