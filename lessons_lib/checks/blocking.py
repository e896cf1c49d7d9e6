"""Switching library pieces off while learner code runs: the one blocking mechanism of the checks.

Each piece an exercise asks a learner to write (an optimizer's step, the schedule formulas,
clipping, the loss-scaler update, the training loop, the state-memory table, the logistic
Hessian) is a list of library functions. Inside ``library_blocked(...)`` each of them has its
code object swapped for one that raises LibraryUsedError, so every way of reaching it is closed:
the class attribute, a reference saved earlier (`step = AdamW.step`), a bound method, and every
module that imported the function by name. Everything is restored on exit.
(This teaches; it does not police. The grader calls learner code in a sandbox whose grading
build of the library has these pieces cut out, from the `# BEGIN GRADED PIECE` markers that
wrap each function's body: course_tools/grading_build.py.)
"""
from __future__ import annotations

import contextlib

from .. import adaptive, clipping, logistic, memory, optimizers, precision, runner, schedules
from .. import lr_schedulers
from .. import lean, quantized


class LibraryUsedError(RuntimeError):
    """Raised when exercise code calls the library piece the exercise asks you to write."""


PIECES = {
    "optimizers": (None, [
        optimizers.SGD.step, optimizers.EMAMomentum.step, optimizers.Adam.step, optimizers.Adam.moments_hat,
        adaptive.Adagrad.step, adaptive.Adagrad.effective_lr, adaptive.RMSprop.step, adaptive.RMSprop.effective_lr]),
    "schedules": ("the library's schedules", [schedules.Schedule.__call__, *schedules.FORMULAS.values()]),
    "clip_by_global_norm": ("the library's clip_by_global_norm", [
        clipping.clip_by_global_norm, clipping.clip_runs_by_norm, clipping.global_norm, clipping.run_norms,
        clipping._sum_of_squares]),
    "loss_scaler": ("the library's DynamicLossScaler.update", [precision.DynamicLossScaler.update]),
    "run": ("the library's run()", [runner.run]),
    "memory": ("the library's memory table", [
        memory.state_buffers, memory.bytes_per_parameter, memory.state_gigabytes, memory.memory_table]),
    "logistic_hessian": ("the library's logistic_hessian", [
        logistic.logistic_hessian, logistic.condition_number, logistic.LogisticSurface.hessian,
        logistic.LogisticSurface.condition_number.fget]),
    "lr_schedulers": ("the library's CosineAnnealingWarmRestarts", [
        lr_schedulers.CosineAnnealingWarmRestarts._rate, lr_schedulers.CosineAnnealingWarmRestarts._cycle,
        lr_schedulers.CosineAnnealingWarmRestarts.step]),
    "lean": (None, [lean.Lion.step, quantized._quantize, quantized.dequantize]),
}
"""piece -> (what the learner is told they called, or None to name each function; the functions)."""

DEFAULT = ("optimizers", "schedules", "clip_by_global_norm", "loss_scaler")


def _raiser(label: str):
    """A function whose code raises LibraryUsedError(label) whatever module globals it runs with."""
    namespace: dict = {}
    exec(f"def blocked(*args, **kwargs):\n"
         f"    raise __import__('lessons_lib.checks.blocking', fromlist=['LibraryUsedError'])"
         f".LibraryUsedError({label!r})\n", namespace)
    return namespace["blocked"].__code__


@contextlib.contextmanager
def library_blocked(*names: str):
    """Switch off the named pieces (see PIECES; DEFAULT when none is given) inside the block."""
    names = names or DEFAULT
    unknown = set(names) - set(PIECES)
    if unknown:
        raise ValueError(f"unknown library piece(s) {sorted(unknown)}; known: {sorted(PIECES)}")
    saved = []
    try:
        for name in names:
            label, functions = PIECES[name]
            for fn in functions:
                saved.append((fn, fn.__code__))
                fn.__code__ = _raiser(label or f"the library's {fn.__qualname__}")
        yield
    finally:
        for fn, original in reversed(saved):
            fn.__code__ = original
