"""A small synthetic data set for lesson 11: "ticket triage", a binary classification.

Each row is a support ticket; the label says whether it was escalated (1) or handled as
routine (0). Two features, both centred on zero:

    signal   x1 = signal_scale * z1                     z1 ~ N(0, 1)      (every ticket)
    contrast x2 = a * contrast_scale * z2               z2 ~ N(0, 1),  a ~ Bernoulli(rare_rate)
    label    y  ~ Bernoulli(sigmoid(w1 * x1 + w2 * x2))  with (w1, w2) = true_weights,
             then each label is flipped with probability label_noise (mislabelled tickets)

The signal is present on every ticket with a large scale (a score computed from the text);
the contrast is zero on most tickets and small when present (a rarely filled-in field),
but its true weight is large: it matters, it is just rarely seen. The data are symmetric
under (x, y) -> (-x, 1 - y), so the classes are balanced and a model without intercept
loses nothing. For logistic regression the Hessian of the mean loss is

    H(w) = (1/n) * sum_i p_i (1 - p_i) x_i x_i^T,     p_i = sigmoid(w . x_i)

whose diagonal holds a weighted mean of x1^2 (large) and of x2^2 (tiny, because x2 is
mostly 0 and small): with the defaults its condition number at the optimum is in the
tens to hundreds, the role the factor 100 plays on the course surface.

Everything is drawn from numpy.random.default_rng(seed): the same seed gives the same rows.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .validation import as_float_array, check_finite, check_int, check_positive

__all__ = ["TicketData", "ticket_triage", "train_val_split", "FEATURE_NAMES"]

FEATURE_NAMES = ("signal", "contrast")
"""Column names of the feature matrix: x1 (frequent, large) and x2 (rare, small)."""


@dataclass(frozen=True)
class TicketData:
    """A train / validation split of the ticket-triage data.

    X_train (n_train, 2), y_train (n_train,) in {0., 1.}, X_val (n_val, 2), y_val (n_val,);
    true_weights: the (w1, w2) the labels were drawn with; seed: the generator seed.
    """

    X_train: np.ndarray
    y_train: np.ndarray
    X_val: np.ndarray
    y_val: np.ndarray
    true_weights: tuple
    seed: int

    @property
    def feature_names(self) -> tuple:
        return FEATURE_NAMES

    @property
    def n_train(self) -> int:
        return int(self.y_train.shape[0])

    @property
    def n_val(self) -> int:
        return int(self.y_val.shape[0])


def _check_seed(seed) -> int:
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"seed must be an integer >= 0 (the same seed gives the same data); got {seed!r}")
    return int(seed)


def _check_in_range(name: str, value, low: float, high: float, *, low_closed: bool,
                   high_closed: bool) -> float:
    """A finite number in the interval (or closed interval, per side) from low to high."""
    arr = check_finite(name, value)
    v = float(arr) if arr.ndim == 0 else float("nan")
    ok_low = v >= low if low_closed else v > low
    ok_high = v <= high if high_closed else v < high
    if not (ok_low and ok_high):
        interval = f"{'[' if low_closed else '('}{low:g}, {high:g}{']' if high_closed else ')'}"
        raise ValueError(f"{name} must be a number in {interval}; got {value!r}")
    return v


def train_val_split(X, y, val_fraction: float = 0.25, seed: int = 0):
    """Shuffle the rows with default_rng(seed) and split them: (X_train, y_train, X_val, y_val).

    The validation part has round(val_fraction * n) rows (at least 1, and at least 1 row is
    left for training).
    """
    X = as_float_array("X", X)
    y = as_float_array("y", y)
    if X.ndim != 2:
        raise ValueError(f"X must be a 2-D array (rows, features); got shape {X.shape}")
    if y.ndim != 1 or y.shape[0] != X.shape[0]:
        raise ValueError(f"y must be a 1-D array with one label per row of X ({X.shape[0]}); got shape {y.shape}")
    n = X.shape[0]
    if n < 2:
        raise ValueError(f"need at least 2 rows to split into train and validation; got {n}")
    val_fraction = _check_in_range("val_fraction", val_fraction, 0, 1, low_closed=False, high_closed=False)
    seed = _check_seed(seed)
    n_val = min(max(int(round(val_fraction * n)), 1), n - 1)
    order = np.random.default_rng(seed).permutation(n)
    val, train = order[:n_val], order[n_val:]
    return X[train], y[train], X[val], y[val]


def ticket_triage(n: int = 3000, seed: int = 0, *, signal_scale: float = 2.0,
                  contrast_scale: float = 0.4, rare_rate: float = 0.15,
                  true_weights=(1.0, 4.0), label_noise: float = 0.05,
                  val_fraction: float = 0.25) -> TicketData:
    """The ticket-triage data set: n rows drawn with default_rng(seed), split train / validation.

        x1 = signal_scale * z1,   x2 = Bernoulli(rare_rate) * contrast_scale * z2,
        y ~ Bernoulli(sigmoid(w1 x1 + w2 x2)), flipped with probability label_noise

    The split shuffles with a generator derived from the same seed; val_fraction of the
    rows (rounded) go to validation.
    """
    n = check_int("n", n, 10)
    seed = _check_seed(seed)
    signal_scale = float(check_positive("signal_scale", signal_scale, hint="The default is 2.0"))
    contrast_scale = float(check_positive("contrast_scale", contrast_scale, hint="The default is 0.4"))
    rare_rate = _check_in_range("rare_rate", rare_rate, 0, 1, low_closed=False, high_closed=True)
    label_noise = _check_in_range("label_noise", label_noise, 0, 0.5, low_closed=True, high_closed=False)
    w = as_float_array("true_weights", true_weights)
    if w.shape != (2,) or not np.all(np.isfinite(w)):
        raise ValueError(f"true_weights must be two finite numbers (w1, w2); got {true_weights!r}")

    rng = np.random.default_rng(seed)
    x1 = signal_scale * rng.standard_normal(n)
    active = rng.random(n) < rare_rate
    x2 = np.where(active, contrast_scale * rng.standard_normal(n), 0.0)
    X = np.stack([x1, x2], axis=1)
    p = 0.5 * (1.0 + np.tanh(0.5 * (X @ w)))          # sigmoid, without overflow
    y = (rng.random(n) < p).astype(np.float64)
    flip = rng.random(n) < label_noise
    y = np.where(flip, 1.0 - y, y)
    split_seed = int(rng.integers(0, 2**31 - 1))
    X_train, y_train, X_val, y_val = train_val_split(X, y, val_fraction, split_seed)
    return TicketData(X_train=X_train, y_train=y_train, X_val=X_val, y_val=y_val,
                      true_weights=tuple(float(v) for v in w), seed=seed)
