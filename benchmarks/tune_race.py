"""Re-derive the race explorer's RACE_DEFAULTS by a grid sweep (python -m benchmarks.tune_race).

Per racer, the grid setting with the lowest "worst loss over the last RACE_WINDOW of RACE_STEPS
steps" (one lucky final step does not count); diverged runs never win. lr on 3-significant-
digit values of a log grid 1e-4..1 (121 points); momentum's beta on 0..0.99 in steps of 0.01;
Adam and AdamW keep betas (0.9, 0.999) and eps 1e-8; AdamW's weight_decay stays at 0.01.
Vectorised: each racer's whole grid is one batch of runs.
"""
from __future__ import annotations

import numpy as np

from lessons_lib.explorers.race import RACE_STEPS, RACE_WINDOW
from lessons_lib.optimizers import SGD, Adam, AdamW
from lessons_lib.runner import run
from lessons_lib.validation import check_int


def race_lr_grid() -> np.ndarray:
    """121 log-spaced lrs from 1e-4 to 1, rounded to 3 significant digits."""
    return np.unique([float(f"{v:.3g}") for v in np.geomspace(1e-4, 1.0, 121)])


def tune_race(steps=RACE_STEPS) -> dict:
    """The settings RACE_DEFAULTS should hold: per racer, the grid setting with the best score."""
    steps = check_int("steps", steps, 1)
    lrs = race_lr_grid()
    betas = np.round(np.arange(0, 1.0, 0.01), 2)

    def best(opt, grid):
        with np.errstate(all="ignore"):
            tr = run(opt, steps)
        worst_late = np.max(tr.losses[-min(RACE_WINDOW, steps):], axis=0)   # nan if diverged
        score = np.where(tr.diverged | ~np.isfinite(worst_late), np.inf, worst_late)
        return grid[int(np.argmin(score))]

    out = {"sgd_lr": float(best(SGD(lrs), lrs))}
    L, B = np.meshgrid(lrs, betas)
    i = best(SGD(L.ravel(), momentum=B.ravel()), np.arange(L.size))
    out["momentum_lr"], out["momentum_beta"] = float(L.ravel()[i]), float(B.ravel()[i])
    out["adam_lr"] = float(best(Adam(lrs), lrs))
    out["adamw_lr"] = float(best(AdamW(lrs, weight_decay=np.full(lrs.size, 0.01)), lrs))
    out["adamw_weight_decay"] = 0.01
    return out


if __name__ == "__main__":
    from lessons_lib.explorers import RACE_DEFAULTS

    tuned = tune_race()
    for key, value in tuned.items():
        print(f"{key:<20} {value:<8g} {'(as RACE_DEFAULTS)' if RACE_DEFAULTS[key] == value else f'(RACE_DEFAULTS: {RACE_DEFAULTS[key]})'}")
