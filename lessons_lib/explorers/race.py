"""Lesson 10's explorer: SGD, momentum, Adam and AdamW race from [1, 1] with their tuned settings.

Each racer's run is cached per its own settings, read-only: the step slider and the play
button only move the racers along runs already computed, and editing one racer's box reruns
that racer alone. benchmarks/tune_race.py re-derives RACE_DEFAULTS.
"""
from __future__ import annotations

import math

import ipywidgets as widgets
import numpy as np

from ..formatting import readout_number as num
from ..optimizers import SGD, Adam, AdamW
from ..runner import run
from ..validation import check_int, check_real
from .canvas import COLORS, Canvas, add_line, dress, log_limits, plain_log, positive_or_nan, set_curve, set_path
from .shell import Explorer, frozen_cache, int_slider, quiet

__all__ = ["RACE_STEPS", "RACE_WINDOW", "RACE_DEFAULTS", "RACERS", "RACER_LABELS", "compute_race",
           "race_explorer"]

RACE_STEPS = 80
RACE_WINDOW = 10
RACE_DEFAULTS = {
    "sgd_lr": 0.0185,
    "momentum_lr": 0.0316,
    "momentum_beta": 0.67,
    "adam_lr": 0.0369,
    "adamw_lr": 0.0369,
    "adamw_weight_decay": 0.01,
}
"""Each racer's best setting on a grid sweep (benchmarks/tune_race.py re-derives these): the
lowest "worst loss over the last 10 of 80 steps" (one lucky final step does not count). lr on
3-significant-digit values of a log grid 1e-4..1 (121 points); momentum's beta on 0..0.99
in steps of 0.01; Adam and AdamW keep betas (0.9, 0.999) and eps 1e-8; AdamW's
weight_decay stays at 0.01 (tuning it would reward decay toward 0, which helps here only
because the optimum happens to be at 0)."""

RACERS = {
    "SGD": lambda p: SGD(p["sgd_lr"]),
    "momentum": lambda p: SGD(p["momentum_lr"], momentum=p["momentum_beta"]),
    "Adam": lambda p: Adam(p["adam_lr"]),
    "AdamW": lambda p: AdamW(p["adamw_lr"], weight_decay=p["adamw_weight_decay"]),
}
"""racer -> its optimizer built from the race settings (the keys starting with its name)."""
RACER_LABELS = {"SGD": "SGD", "momentum": "momentum (heavy-ball)", "Adam": "Adam", "AdamW": "AdamW"}


@frozen_cache(maxsize=64)
def _race_run(name, values, steps):
    return run(RACERS[name](dict(values)), steps)


@quiet
def compute_race(sgd_lr=RACE_DEFAULTS["sgd_lr"], momentum_lr=RACE_DEFAULTS["momentum_lr"],
                 momentum_beta=RACE_DEFAULTS["momentum_beta"], adam_lr=RACE_DEFAULTS["adam_lr"],
                 adamw_lr=RACE_DEFAULTS["adamw_lr"], adamw_weight_decay=RACE_DEFAULTS["adamw_weight_decay"],
                 at_step=None, steps=RACE_STEPS):
    """SGD, heavy-ball momentum, Adam and AdamW racing from [1, 1] for `steps` steps.

    An invalid setting (e.g. lr <= 0 typed into a box) disqualifies only that racer, with
    the reason in the readout. at_step (0..steps, default steps) picks the step whose losses
    are listed; the standings after the last step are always listed.
    """
    steps = check_int("steps", steps, 1)
    k = steps if at_step is None else check_int("at_step", at_step, 0)
    if k > steps:
        raise ValueError(f"at_step must lie in 0..steps ({steps}); got {k}")
    p = {"sgd_lr": sgd_lr, "momentum_lr": momentum_lr, "momentum_beta": momentum_beta,
         "adam_lr": adam_lr, "adamw_lr": adamw_lr, "adamw_weight_decay": adamw_weight_decay}
    racers, lines_now, finals = {}, [], []
    for name in RACERS:
        mine = {key: val for key, val in p.items() if key.startswith(name.lower() + "_")}
        try:
            clean = tuple((key, check_real(key, val)) for key, val in mine.items())
            RACERS[name](dict(clean))                      # validates the hyperparameters
            tr = _race_run(name, clean, steps)
        except ValueError as exc:
            racers[name] = {"error": str(exc), "params": None, "losses": None, "diverged_at": None,
                            "final_loss": float("nan")}
            finals.append((math.inf, 2, name, f"{RACER_LABELS[name]}: invalid setting ({exc})"))
            lines_now.append(f"{RACER_LABELS[name]} -")
            continue
        final = float(tr.final_loss) if not tr.diverged else float("nan")
        racers[name] = {"error": None, "params": tr.params, "losses": tr.losses,
                        "diverged_at": tr.diverged_at, "final_loss": final}
        setting = ", ".join(f"{key.split('_', 1)[1]} {num(v)}" for key, v in clean)
        if tr.diverged:
            finals.append((math.inf, 1, name, f"{RACER_LABELS[name]} ({setting}): diverged at step {tr.diverged_at}"))
        else:
            finals.append((final, 0, name, f"{RACER_LABELS[name]} ({setting}): {num(final)}"))
        lines_now.append(f"{RACER_LABELS[name]} {num(tr.losses[k])}")
    finals.sort(key=lambda t: (t[1], t[0]))
    ranking = [f[2] for f in finals]
    readout = (f"loss at step {k}: " + ", ".join(lines_now) + f"\nafter {steps} steps, lowest first:\n"
               + "\n".join(f"  {i}. {f[3]}" for i, f in enumerate(finals, start=1)))
    problems = [f"{RACER_LABELS[n]}: " + ("invalid setting" if racers[n]["error"] else
                                          f"diverged at step {racers[n]['diverged_at']}")
                for n in RACERS if racers[n]["error"] or racers[n]["diverged_at"] is not None]
    return {"steps": steps, "at_step": k, "racers": racers, "ranking": ranking,
            "settings": dict(p), "problem": "; ".join(problems) or None,
            "readout": readout}


def _build(cv):
    ax_p, ax_l = cv.axes
    cv.path_axes(ax_p, "The race on the loss contours")
    plain_log(ax_l)
    dress(ax_l, "step", "loss L(w) (log scale)", "Loss per step")
    lines = {}
    for i, name in enumerate(RACERS):
        c = COLORS[i]
        lines[name] = (add_line(cv, ax_p, "-", color=c, linewidth=1.1, alpha=0.8, label=RACER_LABELS[name]),
                       add_line(cv, ax_p, "o", color=c, markersize=8, markeredgecolor="k"),
                       add_line(cv, ax_l, "-", color=c, linewidth=1.5, label=RACER_LABELS[name]))
    cursor = cv.dyn(ax_l.axvline(0, color="k", linewidth=1, linestyle=":"))
    cv.legend(ax_p, [v[0] for v in lines.values()], loc="lower left")
    cv.legend(ax_l, [v[2] for v in lines.values()], loc="lower left")
    return lines, cursor


def draw_race(cv, r, params):
    """The racers' paths up to the chosen step (a dot where each is), and their losses."""
    lines, cursor = cv.built(_build)
    ax_l = cv.axes[1]
    k = r["at_step"]
    all_losses = []
    for name, (path, dot, loss) in lines.items():
        d = r["racers"][name]
        if d["params"] is None:
            for ln in (path, dot, loss):
                ln.set_data([], [])
            continue
        upto = d["params"][: k + 1]
        set_path(path, upto)
        finite = upto[np.all(np.isfinite(upto), axis=-1)]
        dot.set_data(finite[-1:, 0], finite[-1:, 1])
        set_curve(loss, positive_or_nan(d["losses"]))
        all_losses.append(d["losses"])
    cursor.set_xdata([k, k])
    ax_l.set_xlim(0, r["steps"])
    ax_l.set_ylim(*log_limits(*all_losses, top_at_least=100) if all_losses else (1e-3, 1e2))
    cv.notice.set_text(r["problem"] or "")


def race_explorer(steps=RACE_STEPS, **settings) -> Explorer:
    """Lesson 10: SGD, momentum, Adam and AdamW with tuned (editable) settings; a step slider
    and a play button move the racers along their paths."""
    w = widgets
    values = dict(RACE_DEFAULTS)
    values.update(settings)
    boxes = {}
    for key, label in (("sgd_lr", "SGD lr"), ("momentum_lr", "momentum lr"), ("momentum_beta", "momentum beta"),
                       ("adam_lr", "Adam lr"), ("adamw_lr", "AdamW lr"), ("adamw_weight_decay", "AdamW decay")):
        boxes[key] = w.FloatText(value=values[key], description=label, step=None, continuous_update=False,
                                 style={"description_width": "120px"}, layout=w.Layout(width="250px"))
    step = int_slider("step", steps, 0, steps)
    play = w.Play(value=steps, min=0, max=steps, step=1, interval=120, description="run the race")
    w.jslink((play, "value"), (step, "value"))
    controls = dict(boxes)
    controls["at_step"] = step
    rows = [list(boxes.values())[:3], list(boxes.values())[3:], [play, step]]
    return Explorer("race", f"The optimizer race: tuned settings, {steps} steps (edit a box, press play)",
                    controls, compute_race, draw_race, Canvas((4.0, 4.8), height=3.7),
                    fixed={"steps": steps}, layout_rows=rows)
