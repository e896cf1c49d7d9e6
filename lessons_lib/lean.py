"""Optimizers that keep less state: Lion's one sign buffer, Adafactor's factored second moment, Muon's orthogonalised momentum.

    Lion:      c = beta1*m + (1 - beta1)*g;  w <- w - lr*(sign(c) + weight_decay*w);  m <- beta2*m + (1 - beta2)*g
    Adafactor: v of a matrix (r, c) kept as row averages (r values) and column averages (c values)
    Muon:      w <- w - lr * NS(momentum), NS = Newton-Schulz iterations towards the nearest orthogonal matrix

Same init/step interface, checks and printable NamedTuple state as optimizers.py, with
PyTorch's argument and state names (torch.optim.Adafactor, torch.optim.Muon; Lion has no
torch version). Shapes differ by optimizer, because two of them treat a matrix as a matrix:

- Lion is per coordinate, like Adam: params (d,) or a batch of runs (runs, d), per-run
  hyperparameter arrays allowed.
- Adafactor takes ONE parameter: a vector (d,) (full second moment, torch's `variance`) or a
  matrix (r, c) (factored: `row_var` (r, 1), `col_var` (1, c)). Its step size uses the norm of the
  whole parameter, so the rows of a 2-D array are not independent runs: do not pass the
  course's (runs, d) batches (runner.run with several starts); run one start at a time.
- Muon takes ONE matrix (r, c) (torch refuses other shapes too). Vectors, biases and embeddings
  are left to AdamW in practice.

state_nbytes(state) measures the bytes of any optimizer's state (this module's or Adam's).
"""
from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np

from .optimizers import _float_params, _keep_dtype, _Optimizer, _per_run, _scalar_or_array
from .validation import (
    check_finite,
    check_int,
    check_nonnegative,
    check_positive,
    check_real,
    check_same_shape,
    check_unit_interval,
)

__all__ = [
    "Lion", "Adafactor", "Muon", "LionState", "AdafactorState", "MuonState",
    "newton_schulz", "polar_factor", "state_nbytes",
    "NS_COEFFICIENTS", "NS_STEPS", "NS_EPS",
]

# torch.optim.Muon's defaults (from Keller Jordan's Muon post)
NS_COEFFICIENTS = (3.4445, -4.7750, 2.0315)
NS_STEPS = 5
NS_EPS = 1e-7


class LionState(NamedTuple):
    """step: updates taken so far; exp_avg: m, the one buffer (an average of gradients with beta2)."""
    step: int
    exp_avg: np.ndarray


class AdafactorState(NamedTuple):
    """step; for a matrix (r, c): row_var (r, 1) and col_var (1, c), averages of g^2 over each row and
    column (variance is None); for a vector: variance (d,), the full average of g^2 (row_var, col_var None)."""
    step: int
    row_var: np.ndarray | None
    col_var: np.ndarray | None
    variance: np.ndarray | None


class MuonState(NamedTuple):
    """step: updates taken so far (torch keeps no count); momentum_buffer: B, an average of gradients."""
    step: int
    momentum_buffer: np.ndarray


def state_nbytes(state) -> int:
    """Bytes of an optimizer state: the sum of .nbytes of its arrays (step counts and None are not counted)."""
    if not isinstance(state, tuple) or not hasattr(state, "_fields"):
        raise ValueError(f"state must be an optimizer state (a NamedTuple from init or step); got {type(state).__name__}")
    return int(sum(v.nbytes for v in state if isinstance(v, np.ndarray) and v.ndim > 0))


def _check_bool(name, value):
    if not isinstance(value, (bool, np.bool_)):
        raise ValueError(f"{name} must be True or False; got {value!r}")
    return bool(value)


def _check_betas(betas, default="(0.9, 0.99)"):
    if not isinstance(betas, (tuple, list)) or len(betas) != 2:
        raise ValueError(f"betas must be a pair (beta1, beta2) such as {default}; got {betas!r}")
    return (_scalar_or_array(check_unit_interval("betas[0] (beta1)", betas[0])),
            _scalar_or_array(check_unit_interval("betas[1] (beta2)", betas[1])))


class Lion(_Optimizer):
    """Lion (evolved sign momentum): every coordinate moves by exactly lr (plus decay), in the sign of c.

        c = beta1 * m + (1 - beta1) * g               (the direction: sign of a blend of m and g)
        w <- w - lr * (sign(c) + weight_decay * w)    (decoupled decay on the pre-step weights)
        m <- beta2 * m + (1 - beta2) * g              (m starts at 0; the only buffer, torch-style name exp_avg)

    Where c = 0 the sign is 0 and only the decay moves w. Paper defaults: betas (0.9, 0.99);
    lr is typically 3-10x smaller than AdamW's and weight_decay 3-10x larger.
    """

    def __init__(self, lr=1e-4, betas=(0.9, 0.99), weight_decay=0.0):
        self.lr = _scalar_or_array(check_positive("lr", lr, hint="1e-4 is Lion's default (smaller than AdamW's)"))
        self.betas = _check_betas(betas)
        self.weight_decay = _scalar_or_array(check_nonnegative("weight_decay", weight_decay))
        self._hyper(lr=self.lr, beta1=self.betas[0], beta2=self.betas[1], weight_decay=self.weight_decay)

    def init(self, params) -> LionState:
        """m = 0, in the parameters' float dtype."""
        params = _float_params(params)
        self._check_runs(params)
        return LionState(step=0, exp_avg=np.zeros_like(params))

    def step(self, params, grads, state: LionState, lr=None):
        # BEGIN GRADED PIECE lean: Lion.step
        params, g, lr = self._check_inputs(params, grads, lr)
        b1 = _per_run(self.betas[0], params)
        b2 = _per_run(self.betas[1], params)
        wd = _per_run(self.weight_decay, params)
        c = b1 * state.exp_avg + (1 - b1) * g
        new = params - lr * (np.sign(c) + wd * params)
        m = b2 * state.exp_avg + (1 - b2) * g
        new, m = _keep_dtype(params.dtype, new, m)
        return new, LionState(step=state.step + 1, exp_avg=m)
        # END GRADED PIECE


def _matrix_inputs(name, params, grads, allowed_ndim, what):
    """One parameter of an allowed rank and its finite gradient of the same shape and dtype."""
    if grads is None:
        raise ValueError("grads is None; pass the gradient array of the same shape as params")
    params = _float_params(params)
    if params.ndim not in allowed_ndim:
        raise ValueError(f"{name} takes {what}; got params of shape {params.shape}. It is not batched over "
                         "runs: for several runs, keep one optimizer state per run")
    g = check_finite("grads", grads, hint="skip the step or lower the learning rate").astype(params.dtype, copy=False)
    check_same_shape("params", params, "grads", g)
    return params, g


def _step_lr(lr, default):
    if lr is None:
        return default
    return float(check_nonnegative("lr", check_real("lr", lr), hint="a schedule must not go below 0"))


class Adafactor(_Optimizer):
    """Adafactor as in torch.optim.Adafactor: a second moment of r + c values for an r x c matrix.

        t <- t + 1;  beta2_t = 1 - t^beta2_decay      (t^-0.8: no memory at t = 1, then ever longer)
        rho = min(lr, 1/sqrt(t));  alpha = max(eps2, RMS(w)) * rho   (a step relative to w's size)
        w <- w * (1 - lr * weight_decay)                              (decoupled; alpha uses w before it)
        matrix:  row_var <- lerp(row_var, mean of g^2 over each row, 1 - beta2_t)      (r, 1)
                 col_var <- lerp(col_var, mean of g^2 over each column, 1 - beta2_t)   (1, c)
                 v_est = row_var @ col_var / max(mean(row_var), eps1)                   (rank one, r x c)
        vector:  variance <- lerp(variance, g^2, 1 - beta2_t);  v_est = variance
        u = g / sqrt(max(v_est, eps1^2));  w <- w - alpha / max(1, RMS(u)/d) * u     (update clipping)

    eps = (eps1, eps2); eps1 None means the dtype's machine epsilon (torch's choice). lr is a cap
    on the relative step rho, not a step size. foreach is accepted for torch's signature and has
    no effect (numpy has one code path). Stricter than torch: lr must be > 0.
    """

    def __init__(self, lr=1e-2, beta2_decay=-0.8, eps=(None, 1e-3), d=1.0, weight_decay=0.0, *,
                 foreach=None, maximize=False):
        self.lr = float(check_positive("lr", check_real("lr", lr), hint="1e-2 is Adafactor's default"))
        self.beta2_decay = check_real("beta2_decay", beta2_decay)
        if self.beta2_decay > 0:
            raise ValueError(f"beta2_decay must be <= 0; got {beta2_decay!r}. beta2_t = 1 - t^beta2_decay, "
                             "-0.8 is the default")
        if not isinstance(eps, (tuple, list)) or len(eps) != 2:
            raise ValueError(f"eps must be a pair (eps1, eps2) such as (None, 1e-3); got {eps!r}")
        eps1 = None if eps[0] is None else float(check_nonnegative("eps[0] (eps1)", check_real("eps[0]", eps[0])))
        self.eps = (eps1, float(check_nonnegative("eps[1] (eps2)", check_real("eps[1]", eps[1]))))
        self.d = check_real("d", d)
        if self.d < 1:
            raise ValueError(f"d (the clipping threshold) must be >= 1; got {d!r}. 1.0 is the default")
        self.weight_decay = float(check_nonnegative("weight_decay", check_real("weight_decay", weight_decay)))
        if foreach is not None:
            _check_bool("foreach", foreach)
        self.foreach = foreach
        self.maximize = _check_bool("maximize", maximize)
        self.runs = None

    def init(self, params) -> AdafactorState:
        """Zeros: row_var (r, 1) and col_var (1, c) for a matrix, variance (d,) for a vector."""
        params, _ = _matrix_inputs("Adafactor", params, np.zeros(np.shape(params)), (1, 2),
                                   "one vector (d,) or one matrix (r, c)")
        if params.ndim == 1:
            return AdafactorState(step=0, row_var=None, col_var=None, variance=np.zeros_like(params))
        r, c = params.shape
        return AdafactorState(step=0, row_var=np.zeros((r, 1), params.dtype),
                              col_var=np.zeros((1, c), params.dtype), variance=None)

    def step(self, params, grads, state: AdafactorState, lr=None):
        params, g = _matrix_inputs("Adafactor", params, grads, (1, 2), "one vector (d,) or one matrix (r, c)")
        if (params.ndim == 2) != (state.row_var is not None):
            raise ValueError("state does not fit params: make the state with init(params) for this parameter")
        lr = _step_lr(lr, self.lr)
        g = -g if self.maximize else g
        eps1 = np.finfo(params.dtype).eps if self.eps[0] is None else self.eps[0]
        t = state.step + 1
        weight = float(t) ** self.beta2_decay                       # 1 - beta2_t
        rho = min(lr, 1 / math.sqrt(t))
        alpha = max(self.eps[1], float(np.linalg.norm(params)) / math.sqrt(params.size)) * rho
        if self.weight_decay != 0:
            params = params * (1 - lr * self.weight_decay)
        row_var, col_var, variance = state.row_var, state.col_var, state.variance
        g2 = g * g
        if params.ndim == 2:
            row_var = row_var + weight * (g2.mean(axis=1, keepdims=True) - row_var)
            col_var = col_var + weight * (g2.mean(axis=0, keepdims=True) - col_var)
            v_est = (row_var @ col_var) / max(float(row_var.mean()), eps1)
        else:
            variance = variance + weight * (g2 - variance)
            v_est = variance
        u = g / np.sqrt(np.maximum(v_est, eps1 * eps1))
        denom = max(1.0, float(np.linalg.norm(u)) / (math.sqrt(u.size) * self.d))
        new, row_var, col_var, variance = _keep_dtype(params.dtype, params - (alpha / denom) * u,
                                                      row_var, col_var, variance)
        return new, AdafactorState(step=t, row_var=row_var, col_var=col_var, variance=variance)

    def variance_estimate(self, state: AdafactorState):
        """The second moment Adafactor uses (v_est above): rank one for a matrix, for comparing with Adam's v."""
        if state.variance is not None:
            return state.variance
        eps1 = np.finfo(state.row_var.dtype).eps if self.eps[0] is None else self.eps[0]
        return (state.row_var @ state.col_var) / max(float(state.row_var.mean()), eps1)


def newton_schulz(G, ns_coefficients=NS_COEFFICIENTS, ns_steps=NS_STEPS, eps=NS_EPS):
    """torch's Newton-Schulz iteration towards the orthogonal factor U V^T of G = U S V^T, in G's dtype.

        X = G / max(||G||_F, eps)                     (transposed first when G has more rows than columns)
        repeat ns_steps times:  A = X X^T;  X <- a X + (b A + c A A) X

    Each iteration maps every singular value s of X to a s + b s^3 + c s^5; torch's (a, b, c) push
    small values up fast and leave them between about 0.7 and 1.2 rather than at exactly 1.
    torch runs this in bfloat16; here it runs in float32 or float64 (compare polar_factor).
    """
    G = _float_params(G)
    if G.ndim != 2:
        raise ValueError(f"newton_schulz takes a matrix (r, c); got shape {G.shape}")
    a, b, c = _check_coefficients(ns_coefficients)
    ns_steps = check_int("ns_steps", ns_steps)
    X = G.T if G.shape[0] > G.shape[1] else G
    X = X / max(float(np.linalg.norm(X)), eps)
    for _ in range(ns_steps):
        A = X @ X.T
        X = a * X + (b * A + c * (A @ A)) @ X
    X = X.T if G.shape[0] > G.shape[1] else X
    return X.astype(G.dtype, copy=False)


def polar_factor(G):
    """The exact orthogonal factor U V^T of G = U S V^T (from an SVD): what newton_schulz approximates."""
    G = _float_params(G)
    if G.ndim != 2:
        raise ValueError(f"polar_factor takes a matrix (r, c); got shape {G.shape}")
    U, _, Vt = np.linalg.svd(G, full_matrices=False)
    return U @ Vt


def _check_coefficients(coefficients):
    if not isinstance(coefficients, (tuple, list)) or len(coefficients) != 3:
        raise ValueError(f"ns_coefficients must be three numbers (a, b, c) such as {NS_COEFFICIENTS}; "
                         f"got {coefficients!r}")
    return tuple(check_real(f"ns_coefficients[{i}]", x) for i, x in enumerate(coefficients))


_ADJUST = (None, "original", "match_rms_adamw")


class Muon(_Optimizer):
    """Muon as in torch.optim.Muon: the step of a matrix is its orthogonalised momentum.

        B <- lerp(B, g, 1 - momentum) = momentum*B + (1 - momentum)*g         (B starts at 0)
        M = lerp(g, B, momentum) (nesterov)   or   M = B
        O = newton_schulz(M)                  (about U V^T: every singular value near 1)
        w <- w * (1 - lr * weight_decay)      (decoupled, with the unadjusted lr)
        w <- w - lr_adj * O,   lr_adj = lr * sqrt(max(1, r/c))  ("original", the default)
                                      or lr * 0.2 * sqrt(max(r, c))  ("match_rms_adamw")

    torch's docstring writes B <- momentum*B + g; its code (and this one) averages with
    (1 - momentum); only eps can tell the two apart, since NS divides by the norm.
    params: one matrix (r, c). Stricter than torch: lr > 0 and momentum in [0, 1).
    """

    def __init__(self, lr=1e-3, weight_decay=0.1, momentum=0.95, nesterov=True,
                 ns_coefficients=NS_COEFFICIENTS, eps=NS_EPS, ns_steps=NS_STEPS, adjust_lr_fn=None):
        self.lr = float(check_positive("lr", check_real("lr", lr), hint="1e-3 is Muon's default (0.02 is common)"))
        self.weight_decay = float(check_nonnegative("weight_decay", check_real("weight_decay", weight_decay)))
        self.momentum = float(check_unit_interval("momentum", check_real("momentum", momentum),
                                                  hint="0.95 is the default"))
        self.nesterov = _check_bool("nesterov", nesterov)
        self.ns_coefficients = _check_coefficients(ns_coefficients)
        self.eps = float(check_positive("eps", check_real("eps", eps), hint="1e-7 is the default"))
        self.ns_steps = check_int("ns_steps", ns_steps)
        if self.ns_steps >= 100:
            raise ValueError(f"ns_steps must be < 100 (as in torch); got {ns_steps!r}. 5 is the default")
        if adjust_lr_fn not in _ADJUST:
            raise ValueError(f"adjust_lr_fn must be one of {list(_ADJUST)}; got {adjust_lr_fn!r}")
        self.adjust_lr_fn = adjust_lr_fn
        self.runs = None

    def adjusted_lr(self, lr, shape) -> float:
        """lr scaled for the matrix's shape (r, c), as torch's _adjust_lr."""
        r, c = shape[:2]
        if self.adjust_lr_fn == "match_rms_adamw":
            return lr * 0.2 * math.sqrt(max(r, c))
        return lr * math.sqrt(max(1, r / c))

    def init(self, params) -> MuonState:
        """momentum_buffer = 0, the matrix's shape and dtype."""
        params, _ = _matrix_inputs("Muon", params, np.zeros(np.shape(params)), (2,), "one matrix (r, c)")
        return MuonState(step=0, momentum_buffer=np.zeros_like(params))

    def step(self, params, grads, state: MuonState, lr=None):
        params, g = _matrix_inputs("Muon", params, grads, (2,), "one matrix (r, c)")
        lr = _step_lr(lr, self.lr)
        mu = self.momentum
        buf = state.momentum_buffer + (1 - mu) * (g - state.momentum_buffer)
        m = g + mu * (buf - g) if self.nesterov else buf
        O = newton_schulz(m, self.ns_coefficients, self.ns_steps, self.eps)
        new = params * (1 - lr * self.weight_decay) - self.adjusted_lr(lr, params.shape) * O
        new, buf = _keep_dtype(params.dtype, new, buf)
        return new, MuonState(step=state.step + 1, momentum_buffer=buf)
