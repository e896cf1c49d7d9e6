"""Learner-facing checks for the exercises: immediate feedback that never gives the answer away.

Each exercise in exercises/ is followed by a check cell such as

    checks.one_sgd_step()

The check looks up the names the exercise asks for (here ``w_next`` and ``loss_next``) in the
notebook's namespace, so the check cell runs even before the answer exists, and prints one of

    Correct: ...                     the answer matches the library on every case
    Not yet (...): what is wrong     type, shape, sign, which coordinate, a known mistake,
                                     or which case of an implementation fails
    Not attempted yet (...): ...     the name is missing, None, or still raises NotImplementedError

It returns a CheckResult (true only when correct) and never raises on a wrong answer, so a
notebook keeps running. ``strict=True`` raises AssertionError with the same message instead.

framework    verdicts and mistake descriptions     blocking      library pieces switched off
parameters   the numbers the exercises fix         sgd ... real_model   the checks, by lesson topic
"""
from __future__ import annotations

from .adam import adam_first_step, adam_three_steps, v_constant_gradient
from .adaptive import adagrad_effective_lr, rmsprop_step
from .adamw import adamw_step
from .blocking import LibraryUsedError, library_blocked
from .capstone import optimizer_state_memory, training_loop
from .clipping import clip_factor, global_norm_clipping
from .framework import CheckResult
from .loss_scaling import fp16_underflow, loss_scaler_update
from .momentum import three_steps_sgd_momentum
from .real_model import hessian_condition_numbers, logistic_hessian
from .schedules import scheduler_order, warmup_cosine_schedule
from .sgd import one_sgd_step, stability_limit, stability_run
from .training import gradient_accumulation, initial_loss, warm_restarts
from .lean import int8_block, lean_state_bytes, lion_step

__all__ = [
    "CheckResult", "LibraryUsedError", "library_blocked",
    "one_sgd_step", "stability_limit", "stability_run", "three_steps_sgd_momentum",
    "adagrad_effective_lr", "rmsprop_step",
    "adam_first_step", "v_constant_gradient", "adam_three_steps", "adamw_step",
    "warmup_cosine_schedule", "scheduler_order", "clip_factor", "global_norm_clipping",
    "fp16_underflow", "loss_scaler_update", "optimizer_state_memory", "training_loop",
    "logistic_hessian", "hessian_condition_numbers",
    "initial_loss", "warm_restarts", "gradient_accumulation",
    "lean_state_bytes", "lion_step", "int8_block",
]
