"""ReduceLROnPlateau: divide the learning rate when a validation metric stops improving.

    improvement: metric beats best by the threshold (rel: best * (1 -/+ threshold), abs: best -/+ threshold)
    after more than `patience` epochs without one: lr <- max(lr * factor, min_lr), then `cooldown` epochs

torch.optim.lr_scheduler.ReduceLROnPlateau's names and rules, with the state_dict protocol of
lr_schedulers.py (whose _Scheduler it extends); compared with torch in
tests/test_lr_schedulers_torch.py.
"""
from __future__ import annotations

import math

import numpy as np

from .lr_schedulers import _choice, _count, _integer, _real_at_least_zero, _Scheduler
from .validation import check_positive_real, check_real

__all__ = ["ReduceLROnPlateau"]


def _best(name, value):
    if value is None:
        return None
    if isinstance(value, (bool, str)) or not isinstance(value, (int, float, np.number)) or math.isnan(value):
        raise ValueError(f"{name} must be a number, or None before the first metric; got {value!r}")
    return float(value)


class ReduceLROnPlateau(_Scheduler):
    """Divide the rate when a metric stops improving (torch.optim.lr_scheduler.ReduceLROnPlateau).

        improvement:  metric < best * (1 - threshold)  (mode 'min', 'rel'),  metric < best - threshold  ('abs');
                      'max' mode: metric > best * (1 + threshold),  metric > best + threshold
        more than `patience` epochs in a row without one: lr <- max(lr * factor, min_lr),
        unless that lowers lr by eps or less; then `cooldown` epochs in which no epoch counts as bad.

    Scalar only: it follows one metric, so lr is one number (build one scheduler per run for a
    sweep). Call step(val_loss) once per epoch after validating; a nan metric is never an
    improvement (as in torch). 'rel' assumes a positive metric: for a negative best, best * (1 -
    threshold) lies above best, so a slightly worse metric counts as better (torch's rule; use
    'abs'). Stricter than torch: 0 < factor < 1, min_lr <= lr, threshold >= 0 (and < 1 in 'min'
    'rel' mode, where 1 would demand a metric below 0 * best).
    """

    _counters = {"last_epoch": _count, "best": _best, "num_bad_epochs": _count, "cooldown_counter": _count}

    def __init__(self, lr, mode="min", factor=0.1, patience=10, threshold=1e-4, threshold_mode="rel",
                 cooldown=0, min_lr=0.0, eps=1e-8):
        if np.ndim(lr) > 0:
            raise ValueError(f"ReduceLROnPlateau follows one metric, so lr must be one number; got an array of "
                             f"shape {np.shape(lr)}. Build one scheduler per run")
        self.base_lr = check_positive_real("lr", lr, hint="try a value such as 0.1")
        self.mode = _choice("mode", mode, ("min", "max"))
        self.threshold_mode = _choice("threshold_mode", threshold_mode, ("rel", "abs"))
        self.factor = check_real("factor", factor)
        if not 0 < self.factor < 1:
            raise ValueError(f"factor must lie in (0, 1): the new rate is lr * factor; got {factor!r}. Try 0.1")
        self.patience = _integer("patience", patience, 0, "it counts epochs without improvement, e.g. 10")
        self.cooldown = _integer("cooldown", cooldown, 0, "0 (no cooldown) is the default")
        self.threshold = _real_at_least_zero("threshold", threshold)
        if self.mode == "min" and self.threshold_mode == "rel" and self.threshold >= 1:
            raise ValueError(f"threshold must lie in [0, 1) for mode='min', threshold_mode='rel' (an improvement "
                             f"is below best * (1 - threshold)); got {threshold!r}. 1e-4 is torch's default")
        self.min_lr = _real_at_least_zero("min_lr", min_lr)
        if self.min_lr > self.base_lr:
            raise ValueError(f"min_lr ({self.min_lr}) must not exceed lr ({self.base_lr}): it is the floor of the "
                             "reductions; try min_lr=0")
        self.eps = _real_at_least_zero("eps", eps)
        self._config = dict(lr=self.base_lr, mode=self.mode, factor=self.factor, patience=self.patience,
                            threshold=self.threshold, threshold_mode=self.threshold_mode,
                            cooldown=self.cooldown, min_lr=self.min_lr, eps=self.eps)
        self._lr = self.base_lr
        self.last_epoch = self.num_bad_epochs = self.cooldown_counter = 0
        self.best = None

    @property
    def best(self):
        """The best metric so far (None before the first step)."""
        return None if math.isinf(self._best) and (self._best > 0) == (self.mode == "min") else self._best

    @best.setter
    def best(self, value):
        self._best = (math.inf if self.mode == "min" else -math.inf) if value is None else float(value)

    def _is_better(self, a):
        best, th = self._best, self.threshold
        if self.mode == "min":
            return a < best * (1.0 - th) if self.threshold_mode == "rel" else a < best - th
        return a > best * (th + 1.0) if self.threshold_mode == "rel" else a > best + th

    def step(self, metrics) -> None:
        """One epoch's metric: count it good or bad, and reduce lr after more than `patience` bad ones."""
        if metrics is None or isinstance(metrics, (str, bytes, bool, np.bool_)):
            raise TypeError(f"metrics must be one number (a validation loss, say); got {metrics!r}")
        try:
            current = float(metrics)
        except (TypeError, ValueError):
            raise TypeError(f"metrics must be one number (a validation loss, say); got {metrics!r}") from None
        self.last_epoch += 1
        if self._is_better(current):
            self._best, self.num_bad_epochs = current, 0
        else:
            self.num_bad_epochs += 1
        if self.cooldown_counter > 0:
            self.cooldown_counter -= 1
            self.num_bad_epochs = 0                 # no epoch in a cooldown counts as bad
        if self.num_bad_epochs > self.patience:
            new = max(self._lr * self.factor, self.min_lr)
            if self._lr - new > self.eps:
                self._lr = new
            self.cooldown_counter, self.num_bad_epochs = self.cooldown, 0
