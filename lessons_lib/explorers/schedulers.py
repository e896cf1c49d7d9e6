"""Lesson 12's explorer: torch-style schedulers driving a short training on the ticket-triage model.

    StepLR:        lr = lr0 * gamma^floor(epoch / step_size)                       (stepped per epoch)
    ExponentialLR: lr = lr0 * gamma^epoch                                          (per epoch)
    OneCycleLR:    lr0 / 25 -> lr0 over pct_start of the updates -> lr0 / 25e4;
                   momentum 0.95 -> 0.85 -> 0.95                                   (per update)
    CosineAnnealingWarmRestarts: cosine from lr0 to 0 over T_0, T_0 T_mult, ... epochs (per update)
    ReduceLROnPlateau: lr <- lr * factor after more than `patience` validations without
                   improvement (validation 4 times per epoch)
    constant:      lr0 throughout (the baseline drawn beside every schedule)

The model is lesson 12's: lesson 11's tickets (seed 0), standardised with the training statistics,
plus a bias column; SGD with momentum 0.9 (OneCycleLR cycles it) on minibatches of 32 (70 per
epoch, minibatch seed 0), from w = 0. Each run is cached per the settings it depends on,
read-only; the constant baseline per (lr, epochs) only, so the other sliders never rerun it.
"""
from __future__ import annotations

import functools
import math

import numpy as np

from ..datasets import ticket_triage
from ..formatting import readout_number as num
from ..logistic import EpochSampler
from ..lr_plateau import ReduceLROnPlateau
from ..lr_schedulers import CosineAnnealingWarmRestarts, ExponentialLR, OneCycleLR, StepLR
from ..validation import check_int, check_positive_real, check_real
from .canvas import COLORS, Canvas, add_line, dress, log_limits, nice_top, plain_log, positive_or_nan, round_down, set_curve
from .shell import Explorer, dropdown, float_slider, frozen_cache, int_slider, log_slider, quiet

__all__ = ["SCHEDULERS", "BATCH", "MOMENTUM", "VALIDATIONS_PER_EPOCH", "ticket_model", "compute_schedulers",
           "schedulers_explorer"]

SCHEDULERS = {"step": "StepLR", "exponential": "ExponentialLR", "onecycle": "OneCycleLR",
              "sgdr": "CosineAnnealingWarmRestarts", "plateau": "ReduceLROnPlateau", "constant": "constant lr"}
"""scheduler key -> the name the readout and the dropdown show."""

BATCH = 32
MOMENTUM = 0.9
VALIDATIONS_PER_EPOCH = 4
PER_UPDATE = {"onecycle", "sgdr"}


@functools.lru_cache(maxsize=1)
def ticket_model():
    """(X, y, X_val, y_val): lesson 11's tickets (seed 0), standardised with the training mean and std,
    with a column of ones appended for the bias. Read-only arrays."""
    data = ticket_triage(n=3000, seed=0)
    mean, std = data.X_train.mean(axis=0), data.X_train.std(axis=0)
    arrays = []
    for X_raw, y in ((data.X_train, data.y_train), (data.X_val, data.y_val)):
        X = np.column_stack([(X_raw - mean) / std, np.ones(len(X_raw))])
        for a in (X, y):
            a.flags.writeable = False
        arrays += [X, y]
    return tuple(arrays)


def _key(scheduler) -> str:
    key = scheduler.lower() if isinstance(scheduler, str) else scheduler
    if key not in SCHEDULERS:
        raise ValueError(f"scheduler must be one of {', '.join(map(repr, SCHEDULERS))}; got {scheduler!r}")
    return key


def _make(key, lr, gamma, step_size, pct_start, T_0, T_mult, patience, total):
    if key == "step":
        return StepLR(lr, step_size=step_size, gamma=gamma)
    if key == "exponential":
        return ExponentialLR(lr, gamma=gamma)
    if key == "onecycle":
        return OneCycleLR(lr, total_steps=total, pct_start=pct_start)
    if key == "sgdr":
        return CosineAnnealingWarmRestarts(lr, T_0=T_0, T_mult=T_mult)
    if key == "plateau":
        return ReduceLROnPlateau(lr, factor=gamma, patience=patience)
    return None


@frozen_cache(maxsize=128)
def _training(key, lr, gamma, step_size, pct_start, T_0, T_mult, patience, epochs):
    """One run: lr and momentum per update, validation loss 4 times per epoch, diverged update or -1.

    The update is torch's SGD with momentum written out (buf <- g on the first update, then
    buf <- momentum * buf + g; w <- w - lr * buf) on the minibatches of EpochSampler(seed 0): the
    library's SGD and MinibatchLogistic give the same numbers (tests/test_explorers.py), about 10x slower.
    """
    X, y, Xv, yv = ticket_model()
    batches = len(y) // BATCH
    total = epochs * batches
    sampler = EpochSampler(len(y), BATCH, seed=0)
    sched = _make(key, lr, gamma, step_size, pct_start, T_0, T_mult, patience, total)
    w, buf = np.zeros(X.shape[1]), None
    lrs, momenta = np.full(total, np.nan), np.full(total, np.nan)
    val_losses = np.full(epochs * VALIDATIONS_PER_EPOCH, np.nan)
    every = batches // VALIDATIONS_PER_EPOCH
    diverged, k = -1, 0
    for epoch in range(epochs):
        for i in range(batches):
            lrs[k] = rate = sched.lr if sched is not None else lr
            momenta[k] = mu = sched.momentum if key == "onecycle" else MOMENTUM
            rows = sampler.next()
            Xb = X[rows]
            g = (0.5 * (1.0 + np.tanh(0.5 * (Xb @ w))) - y[rows]) @ Xb / BATCH
            if not np.all(np.isfinite(g)):
                diverged = k
                break
            buf = g.copy() if buf is None else mu * buf + g
            w = w - rate * buf
            k += 1
            if key in PER_UPDATE:
                sched.step(epoch + (i + 1) / batches) if key == "sgdr" else sched.step()
            if (i + 1) % every == 0 and (i + 1) // every <= VALIDATIONS_PER_EPOCH:
                z = Xv @ w
                v = float(np.mean(np.maximum(z, 0.0) + np.log1p(np.exp(-np.abs(z))) - yv * z))
                val_losses[epoch * VALIDATIONS_PER_EPOCH + (i + 1) // every - 1] = v
                if not math.isfinite(v) or v > 1e6:
                    diverged = k
                    break
                if key == "plateau":
                    sched.step(v)
        if diverged >= 0:
            break
        if key in ("step", "exponential"):
            sched.step()
    val_steps = (np.arange(epochs * VALIDATIONS_PER_EPOCH) + 1) * every + np.repeat(
        np.arange(epochs) * (batches - VALIDATIONS_PER_EPOCH * every), VALIDATIONS_PER_EPOCH)
    return lrs, momenta, val_steps, val_losses, diverged


def _summary(lrs, momenta, val_steps, val_losses, diverged):
    return {"lrs": lrs, "momenta": momenta, "val_steps": val_steps, "val_losses": val_losses,
            "diverged_at": None if diverged < 0 else int(diverged),
            "final_val_loss": float("nan") if diverged >= 0 else float(val_losses[-1])}


@quiet
def compute_schedulers(scheduler="onecycle", lr=0.2, gamma=0.3, step_size=1, pct_start=0.3, T_0=1, T_mult=2,
                       patience=1, epochs=3):
    """A scheduler family on lesson 12's ticket model: lr (and momentum) per update, validation loss
    4 times per epoch, against the constant lr0. SGD momentum 0.9, batches of 32 (70 per epoch)."""
    key = _key(scheduler)
    lr = check_positive_real("lr", lr, hint="0.2 is a good OneCycleLR max_lr here")
    epochs = check_int("epochs", epochs, 1)
    gamma = float(check_real("gamma", gamma))
    if not 0 < gamma < 1:
        raise ValueError(f"gamma must lie in (0, 1): the factor applied at each decay; got {gamma!r}")
    step_size = check_int("step_size", step_size, 1)
    pct_start = float(check_real("pct_start", pct_start))
    T_0, T_mult, patience = check_int("T_0", T_0, 1), check_int("T_mult", T_mult, 1), check_int("patience", patience, 0)
    # the settings a family does not read are normalised, so moving them reuses the cached run
    settings = {"step": (gamma, step_size, 0.3, 1, 1, 0), "exponential": (gamma, 1, 0.3, 1, 1, 0),
                "onecycle": (0.5, 1, pct_start, 1, 1, 0), "sgdr": (0.5, 1, 0.3, T_0, T_mult, 0),
                "plateau": (gamma, 1, 0.3, 1, 1, patience), "constant": (0.5, 1, 0.3, 1, 1, 0)}[key]
    _make(key, lr, *settings, epochs * (len(ticket_model()[1]) // BATCH))   # refuses a bad setting before any run
    run_s = _summary(*_training(key, lr, *settings, epochs))
    base = _summary(*_training("constant", lr, *settings_of_constant(), epochs))
    batches = len(ticket_model()[1]) // BATCH
    name = SCHEDULERS[key]
    detail = {"step": f"gamma {num(gamma)} every {step_size} epoch{'s' if step_size > 1 else ''}",
              "exponential": f"gamma {num(gamma)} per epoch", "onecycle": f"pct_start {num(pct_start)}",
              "sgdr": f"T_0 {T_0}, T_mult {T_mult}", "plateau": f"factor {num(gamma)}, patience {patience}",
              "constant": "no schedule"}[key]
    lines = [f"{name} ({detail}), lr {num(lr)}, {epochs} epoch{'s' if epochs > 1 else ''} of {batches} updates, "
             f"SGD momentum {MOMENTUM}"]
    problems = []
    for label, r in ((name, run_s), (f"constant lr {num(lr)}", base)):
        if r["diverged_at"] is not None:
            problems.append(f"{label} diverged at update {r['diverged_at']}")
        elif r["final_val_loss"] > math.log(2):
            problems.append(f"unstable: {label} ends above ln 2 = 0.6931, worse than w = 0")
    taken = run_s["lrs"][np.isfinite(run_s["lrs"])]
    lines.append(f"lr: first {num(taken[0])}, highest {num(taken.max())}, last {num(taken[-1])}"
                 + (f"; momentum {num(np.nanmax(run_s['momenta']))} -> {num(np.nanmin(run_s['momenta']))}"
                    f" -> {num(run_s['momenta'][np.isfinite(run_s['momenta'])][-1])}" if key == "onecycle" else ""))
    for label, r in ((name, run_s), (f"constant lr {num(lr)}", base)):
        lines.append(f"{label}: " + (f"diverged at update {r['diverged_at']}" if r["diverged_at"] is not None else
                                     f"final validation loss {num(r['final_val_loss'])}, lowest "
                                     f"{num(np.nanmin(r['val_losses']))}"))
    lines += problems
    return {"scheduler": key, "lr": lr, "gamma": gamma, "step_size": step_size, "pct_start": pct_start, "T_0": T_0,
            "T_mult": T_mult, "patience": patience, "epochs": epochs, "batches_per_epoch": batches,
            "scheduled": run_s, "constant": base, "problem": "; ".join(problems) or None,
            "readout": "\n".join(lines)}


def settings_of_constant():
    """The normalised settings the constant baseline is cached under."""
    return (0.5, 1, 0.3, 1, 1, 0)


def _build(cv):
    ax_lr, ax_m, ax_v = cv.axes
    plain_log(ax_lr)
    dress(ax_lr, "update", "learning rate (log scale)", "The learning rate")
    dress(ax_m, "update", "momentum", "Momentum per update")
    dress(ax_v, "update", "validation loss", "Validation loss, 4 times per epoch")
    lr_s = add_line(cv, ax_lr, "-", color=COLORS[0], linewidth=1.6, label="schedule")
    lr_c = add_line(cv, ax_lr, "--", color=COLORS[1], linewidth=1.2, label="constant lr")
    mom = add_line(cv, ax_m, "-", color=COLORS[0], linewidth=1.6)
    v_s = add_line(cv, ax_v, "-o", color=COLORS[0], markersize=3, linewidth=1.4, label="schedule")
    v_c = add_line(cv, ax_v, "--o", color=COLORS[1], markersize=3, linewidth=1.1, label="constant lr")
    cv.legend(ax_lr, [lr_s, lr_c], loc="lower left")
    cv.legend(ax_v, [v_s, v_c], loc="upper right")
    return lr_s, lr_c, mom, v_s, v_c


def draw_schedulers(cv, r, params):
    """lr per update (log), momentum per update, validation losses of the schedule and the constant lr."""
    lr_s, lr_c, mom, v_s, v_c = cv.built(_build)
    ax_lr, ax_m, ax_v = cv.axes
    total = r["epochs"] * r["batches_per_epoch"]
    s, c = r["scheduled"], r["constant"]
    set_curve(lr_s, positive_or_nan(s["lrs"]))
    set_curve(lr_c, np.full(total, r["lr"]))
    set_curve(mom, s["momenta"])
    set_curve(v_s, s["val_losses"], s["val_steps"])
    set_curve(v_c, c["val_losses"], c["val_steps"])
    for ax in cv.axes:
        ax.set_xlim(0, total)
    ax_lr.set_ylim(*log_limits(s["lrs"], [r["lr"]]))          # whole decades: the axis rarely moves
    ax_m.set_ylim(0.8, 1.0)
    vals = np.concatenate([s["val_losses"], c["val_losses"]])
    vals = vals[np.isfinite(vals)]
    # a fixed window unless a curve leaves it, then coarse steps: the axis rarely moves while a slider does
    lo = 0.45 if not vals.size or vals.min() >= 0.45 else round_down(vals.min(), 0.1)
    hi = 0.75 if not vals.size or vals.max() <= 0.75 else min(nice_top(vals.max()), 1000.0)
    ax_v.set_ylim(lo, hi)
    cv.notice.set_text(r["problem"] or "")


def schedulers_explorer(scheduler="onecycle", lr=0.2, gamma=0.3, step_size=1, pct_start=0.3, T_0=1, T_mult=2,
                        patience=1, epochs=3) -> Explorer:
    """Lesson 12: a scheduler family, its main settings and the number of epochs, on the ticket model."""
    controls = {"scheduler": dropdown("scheduler", [(label, key) for key, label in SCHEDULERS.items()], _key(scheduler)),
                "lr": log_slider("lr (max_lr)", lr, -3, 1, step=0.05),
                "epochs": int_slider("epochs", epochs, 1, 6),
                "gamma": float_slider("gamma / factor", gamma, 0.05, 0.95, 0.05, fmt=".2f"),
                "step_size": int_slider("step_size (StepLR)", step_size, 1, 3),
                "pct_start": float_slider("pct_start (1cycle)", pct_start, 0.1, 0.9, 0.05, fmt=".2f"),
                "T_0": int_slider("T_0 (SGDR)", T_0, 1, 3),
                "T_mult": int_slider("T_mult (SGDR)", T_mult, 1, 3),
                "patience": int_slider("patience (plateau)", patience, 0, 4)}
    uses = {"step": {"gamma", "step_size"}, "exponential": {"gamma"}, "onecycle": {"pct_start"},
            "sgdr": {"T_0", "T_mult"}, "plateau": {"gamma", "patience"}, "constant": set()}

    def only_what_it_reads(change):
        for name in ("gamma", "step_size", "pct_start", "T_0", "T_mult", "patience"):
            controls[name].disabled = name not in uses[change["new"]]

    only_what_it_reads({"new": controls["scheduler"].value})
    controls["scheduler"].observe(only_what_it_reads, names="value")   # registered before the redraw
    rows = [[controls["scheduler"], controls["lr"], controls["epochs"]],
            [controls["gamma"], controls["step_size"], controls["pct_start"]],
            [controls["T_0"], controls["T_mult"], controls["patience"]]]
    return Explorer("schedulers", "Schedulers on the ticket model: lr, momentum and validation loss",
                    controls, compute_schedulers, draw_schedulers, Canvas(), layout_rows=rows)
