"""Logistic regression, vectorised over runs, and surfaces that `runner.run` can drive.

Lesson 11 writes these pieces inline first; its sweeps then reuse the versions here.
For weights w (d,) and data X (n, d), y (n,) in {0, 1}, with z_i = w . x_i:

    p_i     = sigmoid(z_i) = 1 / (1 + exp(-z_i))
    L(w)    = (1/n) sum_i [ log(1 + exp(z_i)) - y_i z_i ]      (mean binary cross-entropy)
    grad(w) = (1/n) X^T (p - y)
    H(w)    = (1/n) X^T diag(p (1 - p)) X

Every function accepts one weight vector (d,) or a batch of independent runs (R, d) and
returns one value (or vector, or matrix) per run, like `surfaces.Quadratic`.

Surfaces (objects with .loss(w) and .grad(w), which is all `runner.run` calls):
- `LogisticSurface(X, y)`: full batch; deterministic.
- `MinibatchLogistic(X, y, batch_size, seed)`: .loss is the full training loss (what you
  log), .grad is the gradient of the next minibatch. It is STATEFUL: every .grad call
  consumes the next minibatch of its own seeded sampler, so call .reset() before each run
  you want to reproduce. state_dict() / load_state_dict(d) save and restore the stream's
  position (the sampler's too), so a run resumed from a checkpoint sees the same minibatches.
"""
from __future__ import annotations

import hashlib

import numpy as np

from .validation import as_float_array, check_int, check_positive

__all__ = [
    "sigmoid", "logistic_loss", "logistic_grad", "logistic_hessian", "accuracy",
    "condition_number", "fit_newton", "EpochSampler", "LogisticSurface", "MinibatchLogistic",
]


def sigmoid(z):
    """sigmoid(z) = 1 / (1 + exp(-z)), computed as 0.5 (1 + tanh(z / 2)) so it never overflows."""
    z = as_float_array("z", z)
    return 0.5 * (1.0 + np.tanh(0.5 * z))


def _check_data(X, y):
    X = as_float_array("X", X)
    y = as_float_array("y", y)
    if X.ndim != 2 or X.shape[0] == 0:
        raise ValueError(f"X must be a 2-D array (rows, features) with at least one row; got shape {X.shape}")
    if y.shape != (X.shape[0],):
        raise ValueError(f"y must hold one label per row of X, shape ({X.shape[0]},); got shape {y.shape}")
    if not np.all((y == 0) | (y == 1)):
        raise ValueError("y must contain only the labels 0 and 1")
    if not np.all(np.isfinite(X)):
        raise ValueError("X contains inf or nan; clean the features first")
    return X, y


def _frozen(a):
    """A read-only copy, so a surface's data can't change under its cached values."""
    a = np.array(a, dtype=np.float64)
    a.flags.writeable = False
    return a


def _check_keys(what: str, d, expected: set) -> None:
    """A saved state must have exactly the expected keys (never a silent partial load)."""
    if not isinstance(d, dict):
        raise ValueError(f"{what} must be a dict from state_dict(); got {type(d).__name__}")
    missing, extra = sorted(expected - set(d)), sorted(set(d) - expected)
    if missing or extra:
        raise ValueError(f"{what} does not fit: missing keys {missing}, unexpected keys {extra}")


def _describe(a) -> str:
    return f"shape {np.shape(a)}, dtype {np.asarray(a).dtype}"


def _check_w(w, d: int):
    w = as_float_array("w", w)
    if w.ndim not in (1, 2) or w.shape[-1] != d:
        raise ValueError(f"w must have shape ({d},) or (runs, {d}) to match X's {d} features; got shape {w.shape}")
    return w


def _logits(w, X):
    """z = X w for one run (n,), or (R, n) for a batch."""
    return w @ X.T


def _bce(z, y):
    """Mean over the last axis of log(1 + exp(z)) - y z, written so exp never overflows."""
    return np.mean(np.maximum(z, 0.0) + np.log1p(np.exp(-np.abs(z))) - y * z, axis=-1)


def logistic_loss(w, X, y):
    """L(w) = mean_i [log(1 + exp(z_i)) - y_i z_i], z = X w (one value per run)."""
    X, y = _check_data(X, y)
    w = _check_w(w, X.shape[1])
    out = _bce(_logits(w, X), y)
    return float(out) if np.ndim(out) == 0 else out


def logistic_grad(w, X, y):
    """grad L(w) = X^T (sigmoid(X w) - y) / n (shape of w)."""
    X, y = _check_data(X, y)
    w = _check_w(w, X.shape[1])
    return (sigmoid(_logits(w, X)) - y) @ X / X.shape[0]


def logistic_hessian(w, X, y=None):
    """H(w) = X^T diag(p (1 - p)) X / n, (d, d) or (R, d, d). The labels do not enter it."""
    # BEGIN GRADED PIECE logistic_hessian: logistic_hessian
    X = as_float_array("X", X)
    if y is not None:
        X, _ = _check_data(X, y)
    w = _check_w(w, X.shape[1])
    p = sigmoid(_logits(w, X))
    weights = p * (1.0 - p)
    return np.einsum("...n,ni,nj->...ij", weights, X, X) / X.shape[0]
    # END GRADED PIECE


def accuracy(w, X, y):
    """Fraction of rows where the prediction (z > 0) equals the label (one value per run)."""
    X, y = _check_data(X, y)
    w = _check_w(w, X.shape[1])
    pred = _logits(w, X) > 0
    out = np.mean(pred == (y == 1), axis=-1)
    return float(out) if np.ndim(out) == 0 else out


def condition_number(H) -> float:
    """kappa = largest / smallest eigenvalue of a symmetric positive definite matrix."""
    # BEGIN GRADED PIECE logistic_hessian: condition_number
    H = as_float_array("H", H)
    if H.ndim != 2 or H.shape[0] != H.shape[1]:
        raise ValueError(f"H must be a square matrix; got shape {H.shape}")
    eig = np.linalg.eigvalsh(H)
    if eig[0] <= 0:
        raise ValueError(f"H must be positive definite; its smallest eigenvalue is {float(eig[0]):g}")
    return float(eig[-1] / eig[0])
    # END GRADED PIECE


def fit_newton(X, y, w0=None, tol: float = 1e-12, max_iter: int = 50):
    """The optimum w* of L by Newton's method: w <- w - t H(w)^-1 grad(w), until |grad| < tol.

    t = 1, halved while the step would raise the loss (damped Newton). L is convex and, for
    data that are not linearly separable, has a unique minimum. Used to measure the Hessian
    at the optimum, not as a training method of the course. Separable data raise ValueError.
    """
    X, y = _check_data(X, y)
    check_positive("tol", tol)
    max_iter = check_int("max_iter", max_iter, 1)
    w = np.zeros(X.shape[1]) if w0 is None else _check_w(w0, X.shape[1]).astype(float).copy()
    if w.ndim != 1:
        raise ValueError("fit_newton fits one weight vector; w0 must have shape (d,)")
    separable = ValueError(
        "the classes are linearly separable, so the loss has no finite optimum (it keeps falling "
        "as the weights grow); add label noise or more rows"
    )
    signs = 2.0 * y - 1.0
    for _ in range(max_iter):
        if np.all(signs * (X @ w) > 0):
            raise separable             # w classifies every row: scaling w up lowers the loss
        g = logistic_grad(w, X, y)
        if np.linalg.norm(g) < tol:
            return w
        # the Hessian written out, not logistic_hessian(w, X): fit_newton (lesson 11's setup)
        # must keep working in the grading build, where the exercise's logistic_hessian is absent
        p = sigmoid(_logits(w, X))
        H = np.einsum("...n,ni,nj->...ij", p * (1.0 - p), X, X) / X.shape[0]
        try:
            step = np.linalg.solve(H, g)
        except np.linalg.LinAlgError:
            raise ValueError("the Hessian is singular (a feature is constant zero or two features are "
                             "identical); remove the redundant feature") from None
        t, current = 1.0, logistic_loss(w, X, y)
        while logistic_loss(w - t * step, X, y) > current and t > 1e-6:
            t *= 0.5                    # damped Newton: never let the loss go up
        w = w - t * step
    if np.all(signs * (X @ w) > 0):
        raise separable
    raise ValueError(f"Newton's method did not reach |grad| < {tol:g} in {max_iter} iterations")


class EpochSampler:
    """Minibatch row indices, shuffled once per epoch (DataLoader shuffle=True, drop_last=True).

    One run draws from default_rng(seed): each epoch is rng.permutation(n) cut into
    n // batch_size consecutive batches (the leftover rows are skipped that epoch).
    With runs=R, run r draws from default_rng(seed + r), so a batch of R runs reproduces the
    single runs with seeds seed, ..., seed + R - 1. next() returns (batch_size,) or
    (R, batch_size) indices and advances the stream.
    """

    def __init__(self, n: int, batch_size: int, seed: int = 0, runs: int | None = None):
        self.n = check_int("n", n, 1)
        self.batch_size = check_int("batch_size", batch_size, 1)
        if self.batch_size > self.n:
            raise ValueError(f"batch_size ({batch_size}) must not exceed the number of rows ({n})")
        self.seed = check_int("seed", seed, 0)
        self.runs = None if runs is None else check_int("runs", runs, 1)
        self.reset()

    @property
    def batches_per_epoch(self) -> int:
        return self.n // self.batch_size

    def reset(self) -> None:
        """Back to the first minibatch of the first epoch."""
        count = 1 if self.runs is None else self.runs
        self._rngs = [np.random.default_rng(self.seed + r) for r in range(count)]
        self._perms = None
        self._cursor = 0
        self.draws = 0

    def next(self) -> np.ndarray:
        if self._perms is None or self._cursor + self.batch_size > self.n:
            self._perms = np.stack([rng.permutation(self.n) for rng in self._rngs])
            self._cursor = 0
        idx = self._perms[:, self._cursor:self._cursor + self.batch_size]
        self._cursor += self.batch_size
        self.draws += 1
        return idx[0] if self.runs is None else idx

    def state_dict(self) -> dict:
        """The stream's position as plain values: settings, each run's generator state, the epoch's
        permutations (None before the first draw), the cursor into them and the draws so far."""
        return {"n": self.n, "batch_size": self.batch_size, "seed": self.seed, "runs": self.runs,
                "rng_states": [rng.bit_generator.state for rng in self._rngs],
                "perms": None if self._perms is None else self._perms.copy(),
                "cursor": self._cursor, "draws": self.draws}

    def load_state_dict(self, d: dict) -> None:
        """Continue exactly where state_dict() was taken; the settings (n, batch_size, seed, runs) must match."""
        _check_keys("EpochSampler state", d, {"n", "batch_size", "seed", "runs", "rng_states", "perms",
                                              "cursor", "draws"})
        differ = [f"{k} (saved {d[k]!r}, this sampler {getattr(self, k)!r})"
                  for k in ("n", "batch_size", "seed", "runs") if d[k] != getattr(self, k)]
        if differ:
            raise ValueError("the saved sampler state is for a different sampler: " + "; ".join(differ)
                             + ". Make the sampler with the saved settings")
        count = 1 if self.runs is None else self.runs
        states = d["rng_states"]
        if not isinstance(states, (list, tuple)) or len(states) != count:
            raise ValueError(f"rng_states must hold one generator state per run ({count}); got {states!r}")
        rngs = [np.random.default_rng() for _ in range(count)]
        for rng, st in zip(rngs, states):
            try:
                rng.bit_generator.state = st
            except (TypeError, ValueError, KeyError) as err:
                raise ValueError(f"rng_states holds an invalid generator state ({err}); the saved state is "
                                 "damaged") from None
        perms = d["perms"]
        if perms is not None:
            perms = np.asarray(perms)
            if perms.shape != (count, self.n) or perms.dtype.kind not in "iu" or not np.all(
                    np.sort(perms, axis=1) == np.arange(self.n)):
                raise ValueError(f"perms must be None or {count} permutations of 0 .. {self.n - 1}, shape "
                                 f"({count}, {self.n}); got {_describe(perms)}")
            perms = perms.astype(np.int64, copy=True)
        cursor, draws = d["cursor"], d["draws"]
        for name, value in (("cursor", cursor), ("draws", draws)):
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 0:
                raise ValueError(f"{name} must be an integer >= 0; got {value!r}")
        if cursor > self.n or (perms is None and cursor != 0):
            raise ValueError(f"cursor must lie in 0 .. {self.n} (0 before the first draw); got {cursor!r}")
        self._rngs, self._perms, self._cursor, self.draws = rngs, perms, int(cursor), int(draws)


class LogisticSurface:
    """Full-batch logistic regression on (X, y) as a surface: .loss(w), .grad(w), .hessian(w).

    w may be (d,) or a batch of runs (R, d), like the course's Quadratic.
    """

    def __init__(self, X, y):
        X, y = _check_data(X, y)
        self.X, self.y = _frozen(X), _frozen(y)
        self._optimum = None
        self._last = None             # (w, loss) of the latest loss call

    @property
    def dim(self) -> int:
        return int(self.X.shape[1])

    @property
    def n(self) -> int:
        return int(self.X.shape[0])

    def loss(self, w):
        """Mean binary cross-entropy over all rows (one value per run)."""
        w = _check_w(w, self.dim)
        if self._last is not None and self._last[0].shape == w.shape and np.array_equal(self._last[0], w):
            out = self._last[1]       # runner.run asks twice per step for the same weights
        else:
            out = _bce(_logits(w, self.X), self.y)
            self._last = (w.copy(), out)
        return float(out) if np.ndim(out) == 0 else out.copy()

    def grad(self, w):
        """X^T (sigmoid(X w) - y) / n over all rows."""
        w = _check_w(w, self.dim)
        return (sigmoid(_logits(w, self.X)) - self.y) @ self.X / self.n

    def hessian(self, w=None):
        """X^T diag(p (1 - p)) X / n at w (at the optimum when w is None)."""
        # BEGIN GRADED PIECE logistic_hessian: LogisticSurface.hessian
        return logistic_hessian(self.optimum if w is None else w, self.X)
        # END GRADED PIECE

    def accuracy(self, w):
        return accuracy(w, self.X, self.y)

    @property
    def optimum(self) -> np.ndarray:
        """w* (Newton's method, computed once)."""
        if self._optimum is None:
            self._optimum = fit_newton(self.X, self.y)
        return self._optimum.copy()

    @property
    def optimal_loss(self) -> float:
        return self.loss(self.optimum)

    @property
    def condition_number(self) -> float:
        """kappa of the Hessian at the optimum."""
        # BEGIN GRADED PIECE logistic_hessian: LogisticSurface.condition_number
        return condition_number(self.hessian())
        # END GRADED PIECE

    def grid(self, w1_lim, w2_lim, n: int = 121):
        """Loss on an n x n grid of (w1, w2) for contour plots: (W1, W2, L). Two features only."""
        if self.dim != 2:
            raise ValueError(f"grid() draws two weights; this model has {self.dim}")
        n = check_int("n", n, 2)
        W1, W2 = np.meshgrid(np.linspace(*w1_lim, n), np.linspace(*w2_lim, n))
        rows = [_bce(_logits(np.stack([a, b], axis=1), self.X), self.y) for a, b in zip(W1, W2)]
        return W1, W2, np.array(rows)          # one grid row at a time keeps memory small


class MinibatchLogistic(LogisticSurface):
    """Logistic regression with minibatch gradients, for `runner.run`.

    .loss(w) is the FULL training loss (deterministic: what a training log shows);
    .grad(w) is the mean gradient over the next minibatch of an EpochSampler(n, batch_size,
    seed): STATEFUL, each call consumes one minibatch. The first .grad call fixes the number
    of runs (one for w of shape (d,), R for (R, d)); run r of a batch sees the minibatches a
    single run with seed + r would see. Call .reset() to start the stream again (before every
    run you want to reproduce, and before switching to a different number of runs).
    """

    def __init__(self, X, y, batch_size: int, seed: int = 0):
        super().__init__(X, y)
        self.batch_size = check_int("batch_size", batch_size, 1)
        if self.batch_size > self.n:
            raise ValueError(f"batch_size ({batch_size}) must not exceed the number of rows ({self.n})")
        self.seed = check_int("seed", seed, 0)
        self.sampler = None

    def reset(self) -> None:
        """Forget the minibatch stream: the next .grad call starts from the first minibatch."""
        self.sampler = None

    def _fingerprint(self) -> str:
        return hashlib.sha256(self.X.tobytes() + self.y.tobytes()).hexdigest()

    def state_dict(self) -> dict:
        """The minibatch stream's position: batch_size, seed, a fingerprint of the data, and the
        sampler's state_dict (None before the first .grad call)."""
        return {"batch_size": self.batch_size, "seed": self.seed, "data_sha256": self._fingerprint(),
                "sampler": None if self.sampler is None else self.sampler.state_dict()}

    def load_state_dict(self, d: dict) -> None:
        """Continue the minibatch stream where state_dict() was taken (same data, batch_size and seed)."""
        _check_keys("MinibatchLogistic state", d, {"batch_size", "seed", "data_sha256", "sampler"})
        differ = [f"{k} (saved {d[k]!r}, this surface {getattr(self, k)!r})"
                  for k in ("batch_size", "seed") if d[k] != getattr(self, k)]
        if d["data_sha256"] != self._fingerprint():
            differ.append("the data X, y (their fingerprints differ)")
        if differ:
            raise ValueError("the saved minibatch stream is for a different surface: " + "; ".join(differ))
        if d["sampler"] is None:
            self.sampler = None
            return
        runs = d["sampler"].get("runs") if isinstance(d["sampler"], dict) else None
        sampler = EpochSampler(self.n, self.batch_size, self.seed, runs)
        sampler.load_state_dict(d["sampler"])
        self.sampler = sampler

    @property
    def draws(self) -> int:
        """Minibatches drawn since the last reset."""
        return 0 if self.sampler is None else self.sampler.draws

    def grad(self, w):
        """Mean gradient over the next minibatch (one independent minibatch per run)."""
        w = _check_w(w, self.dim)
        runs = None if w.ndim == 1 else w.shape[0]
        if self.sampler is None:
            self.sampler = EpochSampler(self.n, self.batch_size, self.seed, runs)
        elif self.sampler.runs != runs:
            have = "one run" if self.sampler.runs is None else f"{self.sampler.runs} runs"
            want = "one run" if runs is None else f"{runs} runs"
            raise ValueError(f"this minibatch stream is drawing for {have} but w is for {want}; "
                             "call reset() before a run with a different number of runs")
        idx = self.sampler.next()
        Xb, yb = self.X[idx], self.y[idx]              # (B, d), (B,) or (R, B, d), (R, B)
        if runs is None:
            return (sigmoid(Xb @ w) - yb) @ Xb / self.batch_size
        z = np.einsum("rbd,rd->rb", Xb, w)
        return np.einsum("rb,rbd->rd", sigmoid(z) - yb, Xb) / self.batch_size
