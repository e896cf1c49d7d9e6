"""Interactive explorers for lessons 02-10: move a control, see the run change at once.

Every explorer comes in two halves that never mix: ``compute_<name>(**params) -> dict`` runs
the library's `run` loop and returns numbers, arrays and a short text "readout" (tests and
nbval call it without any widget); ``<name>_explorer() -> Explorer`` is the ipywidgets front
end. The modules:

    canvas        the drawing engine (Agg panels, blitting, one PNG)
    shell         the Explorer widget shell, slider factories, shared compute helpers
    sgd, momentum, adaptive, adam, adamw, schedules, clipping, loss_scaling, race
                  one lesson's explorer each (lessons 02-10)

Arrays in a result are fresh or read-only: writing into one never changes a later call.
"""
from __future__ import annotations

from .adam import adam_explorer, compute_adam
from .adaptive import ADAPTIVE_OPTIMIZERS, adaptive_explorer, compute_adaptive
from .adamw import UNTOUCHED, adamw_explorer, compute_adamw
from .clipping import clipping_explorer, compute_clipping
from .lean import LEAN_OPTIMIZERS, compute_lean, lean_explorer
from .loss_scaling import LOSS_FACTOR, TINY, compute_loss_scaling, loss_scaling_explorer
from .momentum import (HEATMAP_BETA, HEATMAP_LR, MOMENTUM_CONVENTIONS, compute_momentum, momentum_explorer,
                       momentum_heatmap)
from .race import RACE_DEFAULTS, RACE_STEPS, RACE_WINDOW, RACER_LABELS, RACERS, compute_race, race_explorer
from .schedules import compute_schedule, schedule_explorer
from .schedulers import compute_schedulers, schedulers_explorer
from .sgd import compute_sgd, sgd_explorer
from .shell import Explorer, clear_caches

__all__ = [
    "compute_sgd", "sgd_explorer",
    "compute_momentum", "momentum_heatmap", "momentum_explorer",
    "compute_adaptive", "adaptive_explorer",
    "compute_adam", "adam_explorer",
    "compute_adamw", "adamw_explorer",
    "compute_schedule", "schedule_explorer",
    "compute_schedulers", "schedulers_explorer",
    "compute_clipping", "clipping_explorer",
    "compute_loss_scaling", "loss_scaling_explorer",
    "compute_race", "race_explorer", "RACE_DEFAULTS",
    "compute_lean", "lean_explorer", "LEAN_OPTIMIZERS",
    "Explorer", "EXPLORERS", "clear_caches",
    "MOMENTUM_CONVENTIONS", "ADAPTIVE_OPTIMIZERS", "HEATMAP_LR", "HEATMAP_BETA", "UNTOUCHED", "LOSS_FACTOR", "TINY",
    "RACE_STEPS", "RACE_WINDOW", "RACERS", "RACER_LABELS",
]

EXPLORERS = {
    "02": ("sgd", sgd_explorer, compute_sgd),
    "03": ("momentum", momentum_explorer, compute_momentum),
    "04": ("adaptive", adaptive_explorer, compute_adaptive),
    "05": ("adam", adam_explorer, compute_adam),
    "06": ("adamw", adamw_explorer, compute_adamw),
    "07": ("schedule", schedule_explorer, compute_schedule),
    "08": ("clipping", clipping_explorer, compute_clipping),
    "09": ("loss_scaling", loss_scaling_explorer, compute_loss_scaling),
    "10": ("race", race_explorer, compute_race),
    "12": ("schedulers", schedulers_explorer, compute_schedulers),
    "13": ("lean", lean_explorer, compute_lean),
}
"""lesson -> (name, widget builder, compute function)."""
