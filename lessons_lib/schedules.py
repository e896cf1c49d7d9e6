"""Learning-rate schedules: functions of the 0-based step k, vectorised over arrays of steps.

Each factory returns a Schedule: call it with a step (or an array of steps) to get the lr.
Step k is the rate used by the k-th optimizer update (k = 0, 1, ...). Steps are integers;
past the last step a decaying schedule holds its final value (as optax's decays do).
A peak (or lr, final) may be an array of per-run values: lr(k) is then one rate per run,
shape (R,) for one step and (n, R) for n steps, ready for an optimizer with R runs.
"""
from __future__ import annotations

import numpy as np

from .validation import check_int, check_nonnegative, check_positive


def _constant_rate(k, lr):
    # BEGIN GRADED PIECE schedules: _constant_rate
    return lr + 0.0 * k
    # END GRADED PIECE


def _cosine_rate(k, peak, total_steps, final):
    # BEGIN GRADED PIECE schedules: _cosine_rate
    k = np.minimum(k, total_steps - 1)        # past the last step: hold `final`
    return final + (peak - final) * 0.5 * (1 + np.cos(np.pi * k / (total_steps - 1)))
    # END GRADED PIECE


def _linear_warmup_rate(k, peak, warmup_steps):
    # BEGIN GRADED PIECE schedules: _linear_warmup_rate
    return peak * np.minimum(1.0, (k + 1) / warmup_steps)
    # END GRADED PIECE


def _warmup_cosine_rate(k, peak, final, warmup_steps, total_steps):
    # BEGIN GRADED PIECE schedules: _warmup_cosine_rate
    warm = peak * (k + 1) / max(warmup_steps, 1)
    p = np.clip((k - warmup_steps) / (total_steps - warmup_steps - 1), 0.0, 1.0)
    cos = final + (peak - final) * 0.5 * (1 + np.cos(np.pi * p))
    return np.where(k < warmup_steps, warm, cos)
    # END GRADED PIECE


def _inverse_sqrt_rate(k, d_model, warmup_steps, scale):
    # BEGIN GRADED PIECE schedules: _inverse_sqrt_rate
    s = k + 1
    return scale * d_model**-0.5 * np.minimum(s**-0.5, s * warmup_steps**-1.5)
    # END GRADED PIECE


FORMULAS = {"constant": _constant_rate, "cosine": _cosine_rate, "linear_warmup": _linear_warmup_rate,
            "warmup_cosine": _warmup_cosine_rate, "inverse_sqrt_warmup": _inverse_sqrt_rate}
"""Each schedule's formula lr(k, **params): a Schedule is a name and its parameters, nothing else."""


class Schedule:
    """A named learning-rate schedule lr(k); ``values(n)`` gives the first n rates."""

    def __init__(self, name: str, **params):
        if name not in FORMULAS:
            raise ValueError(f"unknown schedule {name!r}; known: {sorted(FORMULAS)}")
        self.name = name
        self.params = params

    def __call__(self, step):
        # BEGIN GRADED PIECE schedules: Schedule.__call__
        k = np.asarray(step)
        if k.dtype.kind not in "iuf" or np.any(k < 0) or np.any(k != np.floor(k)):
            raise ValueError(f"step must be a non-negative integer (or array of them): the index of "
                             f"the optimizer update; got {step!r}")
        k = k.astype(np.float64)
        if self.runs is not None:
            k = k[..., None]                       # one column per run
        out = FORMULAS[self.name](k, **self.params)
        return float(out) if np.ndim(out) == 0 else out
        # END GRADED PIECE

    @property
    def runs(self) -> int | None:
        """Number of per-run values the schedule was given (None: one rate for every run)."""
        sizes = {np.size(v) for v in self.params.values() if np.ndim(v) > 0}
        return sizes.pop() if sizes else None

    def values(self, n: int) -> np.ndarray:
        """lr(0), ..., lr(n-1)."""
        return np.asarray(self(np.arange(check_int("n", n, 1))), dtype=np.float64)

    def __repr__(self):
        args = ", ".join(f"{k}={v!r}" for k, v in self.params.items())
        return f"{self.name}({args})"


def _value(name, value, check):
    """A schedule setting: a float, or a 1-D array of per-run values."""
    arr = check(name, value)
    if arr.ndim > 1:
        raise ValueError(f"{name} must be a number or a 1-D array of per-run values; got shape {arr.shape}")
    return float(arr) if arr.ndim == 0 else arr


def _same_runs(**values):
    sizes = {name: np.size(v) for name, v in values.items() if np.ndim(v) > 0}
    if len(set(sizes.values())) > 1:
        raise ValueError(f"per-run schedule settings must all have the same length; got {sizes}")


def constant(lr) -> Schedule:
    """lr(k) = lr."""
    lr = _value("lr", lr, check_positive)
    return Schedule("constant", lr=lr)


def cosine(peak, total_steps, final=0.0) -> Schedule:
    """Cosine decay that lands exactly on `final` at the last step.

        lr(k) = final + (peak - final) * 0.5 * (1 + cos(pi * k / (total_steps - 1)))

    (PyTorch's CosineAnnealingLR with T_max = total_steps - 1, up to the last step; past it
    this schedule holds `final`, where torch's would climb back up.)
    """
    peak = _value("peak", peak, check_positive)
    final = _value("final", final, check_nonnegative)
    _same_runs(peak=peak, final=final)
    total = check_int("total_steps", total_steps, 2)
    return Schedule("cosine", peak=peak, total_steps=total, final=final)


def linear_warmup(peak, warmup_steps) -> Schedule:
    """Linear warmup then constant: lr(k) = peak * min(1, (k + 1) / warmup_steps)."""
    peak = _value("peak", peak, check_positive)
    warmup = check_int("warmup_steps", warmup_steps, 1)
    return Schedule("linear_warmup", peak=peak, warmup_steps=warmup)


def warmup_cosine(peak, final, warmup_steps, total_steps) -> Schedule:
    """Linear warmup to `peak`, then cosine down to exactly `final` at the last step.

        k <  W:  lr(k) = peak * (k + 1) / W
        k >= W:  p = (k - W) / (T - W - 1),  lr(k) = final + (peak - final) * 0.5 * (1 + cos(pi * p))
    """
    peak = _value("peak", peak, check_positive)
    final = _value("final", final, check_nonnegative)
    _same_runs(peak=peak, final=final)
    warmup = check_int("warmup_steps", warmup_steps, 0)
    total = check_int("total_steps", total_steps, 1)
    if total - warmup < 2:
        raise ValueError(
            f"total_steps ({total}) must exceed warmup_steps ({warmup}) by at least 2 so the "
            "cosine part has a first and a last step"
        )
    if np.any(np.asarray(final) > np.asarray(peak)):
        raise ValueError(f"final ({final}) must not exceed peak ({peak})")
    return Schedule("warmup_cosine", peak=peak, final=final, warmup_steps=warmup, total_steps=total)


def inverse_sqrt_warmup(d_model, warmup_steps, scale=1.0) -> Schedule:
    """The original Transformer recipe: linear warmup, then decay as 1/sqrt(step).

        s = k + 1,   lr(k) = scale * d_model^-0.5 * min(s^-0.5, s * warmup_steps^-1.5)
    """
    d_model = float(check_positive("d_model", d_model))
    warmup = check_int("warmup_steps", warmup_steps, 1)
    scale = float(check_positive("scale", scale))
    return Schedule("inverse_sqrt_warmup", d_model=d_model, warmup_steps=warmup, scale=scale)
