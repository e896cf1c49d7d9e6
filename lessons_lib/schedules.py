"""Learning-rate schedules: functions of the 0-based step k, vectorised over arrays of steps.

Each factory returns a Schedule: call it with a step (or an array of steps) to get the lr.
Step k is the rate used by the k-th optimizer update (k = 0, 1, ...).
"""
from __future__ import annotations

import numpy as np

from .validation import check_int, check_nonnegative, check_positive


class Schedule:
    """A named learning-rate schedule lr(k); ``values(n)`` gives the first n rates."""

    def __init__(self, name: str, fn, **params):
        self.name = name
        self._fn = fn
        self.params = params

    def __call__(self, step):
        k = np.asarray(step)
        if k.dtype.kind not in "iuf" or np.any(k < 0):
            raise ValueError(f"step must be a non-negative integer (or array of them); got {step!r}")
        out = self._fn(k.astype(np.float64))
        return float(out) if np.ndim(out) == 0 else out

    def values(self, n: int) -> np.ndarray:
        """lr(0), ..., lr(n-1)."""
        return np.asarray(self(np.arange(check_int("n", n, 1))), dtype=np.float64)

    def __repr__(self):
        args = ", ".join(f"{k}={v!r}" for k, v in self.params.items())
        return f"{self.name}({args})"


def constant(lr) -> Schedule:
    """lr(k) = lr."""
    lr = float(check_positive("lr", lr))
    return Schedule("constant", lambda k: np.full_like(k, lr), lr=lr)


def cosine(peak, total_steps, final=0.0) -> Schedule:
    """Cosine decay that lands exactly on `final` at the last step.

        lr(k) = final + (peak - final) * 0.5 * (1 + cos(pi * k / (total_steps - 1)))

    (PyTorch's CosineAnnealingLR with T_max = total_steps - 1.)
    """
    peak = float(check_positive("peak", peak))
    final = float(check_nonnegative("final", final))
    total = check_int("total_steps", total_steps, 2)

    def fn(k):
        return final + (peak - final) * 0.5 * (1 + np.cos(np.pi * k / (total - 1)))

    return Schedule("cosine", fn, peak=peak, total_steps=total, final=final)


def linear_warmup(peak, warmup_steps) -> Schedule:
    """Linear warmup then constant: lr(k) = peak * min(1, (k + 1) / warmup_steps)."""
    peak = float(check_positive("peak", peak))
    warmup = check_int("warmup_steps", warmup_steps, 1)
    return Schedule("linear_warmup", lambda k: peak * np.minimum(1.0, (k + 1) / warmup),
                    peak=peak, warmup_steps=warmup)


def warmup_cosine(peak, final, warmup_steps, total_steps) -> Schedule:
    """Linear warmup to `peak`, then cosine down to exactly `final` at the last step.

        k <  W:  lr(k) = peak * (k + 1) / W
        k >= W:  p = (k - W) / (T - W - 1),  lr(k) = final + (peak - final) * 0.5 * (1 + cos(pi * p))
    """
    peak = float(check_positive("peak", peak))
    final = float(check_nonnegative("final", final))
    warmup = check_int("warmup_steps", warmup_steps, 0)
    total = check_int("total_steps", total_steps, 1)
    if total - warmup < 2:
        raise ValueError(
            f"total_steps ({total}) must exceed warmup_steps ({warmup}) by at least 2 so the "
            "cosine part has a first and a last step"
        )
    if final > peak:
        raise ValueError(f"final ({final}) must not exceed peak ({peak})")

    def fn(k):
        warm = peak * (k + 1) / max(warmup, 1)
        p = np.clip((k - warmup) / (total - warmup - 1), 0.0, 1.0)
        cos = final + (peak - final) * 0.5 * (1 + np.cos(np.pi * p))
        return np.where(k < warmup, warm, cos)

    return Schedule("warmup_cosine", fn, peak=peak, final=final, warmup_steps=warmup,
                    total_steps=total)


def inverse_sqrt_warmup(d_model, warmup_steps, scale=1.0) -> Schedule:
    """The original Transformer recipe: linear warmup, then decay as 1/sqrt(step).

        s = k + 1,   lr(k) = scale * d_model^-0.5 * min(s^-0.5, s * warmup_steps^-1.5)
    """
    d_model = float(check_positive("d_model", d_model))
    warmup = check_int("warmup_steps", warmup_steps, 1)
    scale = float(check_positive("scale", scale))

    def fn(k):
        s = k + 1
        return scale * d_model**-0.5 * np.minimum(s**-0.5, s * warmup**-1.5)

    return Schedule("inverse_sqrt_warmup", fn, d_model=d_model, warmup_steps=warmup, scale=scale)
