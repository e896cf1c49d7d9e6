"""Optimizers with explicit state you can print at any step.

Each optimizer is a small object holding hyperparameters (PyTorch argument names) with
two methods, in the style of optax's init/update pairs:

    state = opt.init(params)                       # step count and buffers, all zeros
    params, state = opt.step(params, grads, state) # one update; nothing is mutated

State is a NamedTuple: print ``state.m`` or ``state.v`` whenever you like.
Every optimizer works on one parameter vector (d,) or a batch of independent runs (R, d);
for a batch, any hyperparameter may be an array of R values (one per run), so a sweep
over thousands of settings is a single vectorised run.
"""
from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np

from .validation import (
    as_float_array,
    check_finite,
    check_nonnegative,
    check_positive,
    check_same_shape,
    check_unit_interval,
)

__all__ = [
    "SGD", "EMAMomentum", "Adam", "AdamW",
    "SGDState", "EMAMomentumState", "AdamState",
]


class SGDState(NamedTuple):
    """step: updates taken so far; momentum_buffer: PyTorch's buffer (None without momentum)."""
    step: int
    momentum_buffer: np.ndarray | None


class EMAMomentumState(NamedTuple):
    """step: updates taken so far; m: the exponential moving average of gradients."""
    step: int
    m: np.ndarray


class AdamState(NamedTuple):
    """step: t; m: first moment (torch exp_avg); v: uncentered second moment (exp_avg_sq)."""
    step: int
    m: np.ndarray
    v: np.ndarray


def _per_run(x, params: np.ndarray):
    """Turn a per-run array of shape (R,) into (R, 1) so it broadcasts over (R, d)."""
    if np.ndim(x) == 1 and params.ndim == 2:
        return np.asarray(x)[:, None]
    return x


_PY_POW = np.frompyfunc(pow, 2, 1)


def _power(base, t):
    """base ** t with Python's pow for every run, as torch computes beta ** step.

    numpy's vectorised power differs from the scalar pow in the last bit for about 5% of
    steps (np.power(0.999, np.array([7]))[0] != 0.999 ** 7 on numpy 2.4), and per-run step
    counts appear as soon as a loss scaler skips a step in one run: without this a batch
    would not reproduce the same runs done one by one (tests/test_optimizers.py).
    """
    if np.ndim(base) == 0 and np.ndim(t) == 0:
        return float(base) ** int(t)
    return _PY_POW(base, t).astype(np.float64)


def _sqrt(x):
    """sqrt that stays a Python float for a scalar (a numpy float64 would upcast float32 params)."""
    return math.sqrt(x) if np.ndim(x) == 0 else np.sqrt(x)


def _scalar_or_array(x: np.ndarray):
    return float(x) if x.ndim == 0 else x


def _float_params(params) -> np.ndarray:
    """params as a float array; a float32 (or float16) array keeps its dtype, like a torch tensor."""
    if isinstance(params, np.ndarray) and params.dtype.kind == "f":
        return params
    return as_float_array("params", params)


class _Optimizer:
    """Shared plumbing: hyperparameter bookkeeping and input checks."""

    def _hyper(self, **values):
        sizes = {name: np.size(v) for name, v in values.items() if np.ndim(v) > 0}
        for name, v in values.items():
            if np.ndim(v) > 1:
                raise ValueError(f"{name} must be a number or a 1-D array of per-run values; got shape {np.shape(v)}")
        if len(set(sizes.values())) > 1:
            raise ValueError(f"per-run hyperparameters must all have the same length; got {sizes}")
        self.runs = next(iter(sizes.values()), None)

    def _check_runs(self, params: np.ndarray) -> None:
        if params.ndim not in (1, 2):
            raise ValueError(f"params must have shape (d,) or (runs, d); got {params.shape}")
        if self.runs is not None and (params.ndim != 2 or params.shape[0] != self.runs):
            raise ValueError(
                f"this optimizer has per-run hyperparameters for {self.runs} runs, so params "
                f"must have shape ({self.runs}, d); got {params.shape}"
            )

    def _check_inputs(self, params, grads, lr):
        if grads is None:
            raise ValueError("grads is None; pass the gradient array (compute it with surface.grad(w) "
                             "before calling step)")
        params = _float_params(params)
        grads = check_finite(
            "grads", grads,
            hint="a non-finite gradient would poison the optimizer state (clipping cannot repair it); skip the "
                 "step (as a loss scaler does) or lower the learning rate",
        ).astype(params.dtype, copy=False)
        check_same_shape("params", params, "grads", grads)
        self._check_runs(params)
        if lr is None:
            lr = self.lr
        else:
            # a schedule may reach exactly 0 at its last step, so only negatives are refused here
            lr = _scalar_or_array(check_nonnegative("lr", lr, hint="a schedule must not go below 0"))
            if np.ndim(lr) > 0 and (params.ndim != 2 or np.shape(lr) != (params.shape[0],)):
                raise ValueError(
                    f"lr has shape {np.shape(lr)} but params has shape {params.shape}: an array of "
                    "learning rates means one per run, so params must have shape (runs, d) with "
                    f"runs = {np.size(lr)}. A learning rate per coordinate is not supported; give one "
                    "number for a single run")
        return params, grads, _per_run(lr, params)

    def __repr__(self):
        fields = ", ".join(f"{k}={v!r}" for k, v in self.__dict__.items() if k != "runs")
        return f"{type(self).__name__}({fields})"


def _keep_dtype(dtype, *arrays):
    """Cast results back to the parameters' dtype (per-run float64 hyperparameters upcast them)."""
    return tuple(None if a is None else np.asarray(a).astype(dtype, copy=False) for a in arrays)


class SGD(_Optimizer):
    """Stochastic gradient descent with PyTorch's momentum, dampening and Nesterov.

        g <- g + weight_decay * w                         (coupled L2, added to the gradient)
        buf <- g  on the first step,  else  buf <- momentum*buf + (1 - dampening)*g
        g <- g + momentum*buf  (nesterov)   or   g <- buf
        w <- w - lr * g

    momentum=0 is plain SGD: w <- w - lr * g. dampening=0 is heavy-ball (v = mu v + g).
    """

    def __init__(self, lr, momentum=0.0, dampening=0.0, weight_decay=0.0, nesterov=False):
        self.lr = _scalar_or_array(check_positive("lr", lr, hint="try a value such as 0.01"))
        self.momentum = _scalar_or_array(check_unit_interval("momentum", momentum))
        self.dampening = _scalar_or_array(check_unit_interval("dampening", dampening, closed_right=True))
        self.weight_decay = _scalar_or_array(check_nonnegative("weight_decay", weight_decay))
        self.nesterov = bool(nesterov)
        if self.nesterov and (np.any(np.asarray(self.momentum) <= 0) or np.any(np.asarray(self.dampening) != 0)):
            raise ValueError("nesterov=True needs momentum > 0 and dampening = 0 (as in PyTorch)")
        self._hyper(lr=self.lr, momentum=self.momentum, dampening=self.dampening,
                    weight_decay=self.weight_decay)

    @property
    def uses_momentum(self) -> bool:
        return bool(np.any(np.asarray(self.momentum) != 0))

    def init(self, params) -> SGDState:
        params = _float_params(params)
        return SGDState(step=0, momentum_buffer=np.zeros_like(params) if self.uses_momentum else None)

    def step(self, params, grads, state: SGDState, lr=None):
        # BEGIN GRADED PIECE optimizers: SGD.step
        params, g, lr = self._check_inputs(params, grads, lr)
        wd = _per_run(self.weight_decay, params)
        if np.any(np.asarray(wd) != 0):
            g = g + wd * params
        buf = state.momentum_buffer
        if self.uses_momentum:
            mu = _per_run(self.momentum, params)
            # torch ignores dampening without momentum (a batch may mix mu = 0 and mu > 0)
            damp = np.where(mu == 0, 0.0, _per_run(self.dampening, params))
            if np.ndim(state.step) == 0:
                buf = g.copy() if state.step == 0 else mu * buf + (1 - damp) * g
            else:  # per-run step counts (runs whose steps a loss scaler skipped)
                first = _per_run(np.asarray(state.step) == 0, params)
                buf = np.where(first, g, mu * buf + (1 - damp) * g)
            g = g + mu * buf if self.nesterov else buf
        new, buf = _keep_dtype(params.dtype, params - lr * g, buf)
        return new, SGDState(step=state.step + 1, momentum_buffer=buf)
        # END GRADED PIECE


class EMAMomentum(_Optimizer):
    """The course's momentum: an exponential moving average of gradients, started at zero.

        m <- beta * m + (1 - beta) * g        (m starts at 0)
        w <- w - lr * m

    Exactly the path of heavy-ball SGD(lr * (1 - beta), momentum=beta) (both memories start
    empty); PyTorch's dampened buffer SGD(lr, momentum=beta, dampening=beta) differs in the
    first steps because it starts at the first gradient instead of zero.
    """

    def __init__(self, lr, beta=0.9):
        self.lr = _scalar_or_array(check_positive("lr", lr, hint="try a value such as 0.01"))
        self.beta = _scalar_or_array(check_unit_interval("beta", beta, hint="0.9 is a common choice"))
        self._hyper(lr=self.lr, beta=self.beta)

    def init(self, params) -> EMAMomentumState:
        return EMAMomentumState(step=0, m=np.zeros_like(_float_params(params)))

    def step(self, params, grads, state: EMAMomentumState, lr=None):
        # BEGIN GRADED PIECE optimizers: EMAMomentum.step
        params, g, lr = self._check_inputs(params, grads, lr)
        beta = _per_run(self.beta, params)
        m = beta * state.m + (1 - beta) * g
        new, m = _keep_dtype(params.dtype, params - lr * m, m)
        return new, EMAMomentumState(step=state.step + 1, m=m)
        # END GRADED PIECE


class Adam(_Optimizer):
    """Adam, in PyTorch's order of operations; weight_decay here is coupled L2.

        g <- g + weight_decay * w                     (L2 goes through the normalisation)
        m <- beta1 * m + (1 - beta1) * g
        v <- beta2 * v + (1 - beta2) * g^2            (uncentered second moment)
        m_hat = m / (1 - beta1^t),  v_hat = v / (1 - beta2^t)
        w <- w - lr * m_hat / (sqrt(v_hat) + eps)

    bias_correction=False drops the two divisions (to see why they exist).
    """

    decoupled = False

    def __init__(self, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0,
                 bias_correction=True):
        self.lr = _scalar_or_array(check_positive("lr", lr, hint="1e-3 is Adam's default"))
        if not isinstance(betas, (tuple, list)) or len(betas) != 2:
            raise ValueError(f"betas must be a pair (beta1, beta2) such as (0.9, 0.999); got {betas!r}")
        self.betas = (
            _scalar_or_array(check_unit_interval("betas[0] (beta1)", betas[0])),
            _scalar_or_array(check_unit_interval("betas[1] (beta2)", betas[1])),
        )
        self.eps = _scalar_or_array(check_positive("eps", eps, hint="1e-8 is the usual value"))
        self.weight_decay = _scalar_or_array(check_nonnegative("weight_decay", weight_decay))
        self.bias_correction = bool(bias_correction)
        self._hyper(lr=self.lr, beta1=self.betas[0], beta2=self.betas[1], eps=self.eps,
                    weight_decay=self.weight_decay)

    def init(self, params) -> AdamState:
        """m = v = 0, in the parameters' float dtype (float32 stays float32, as in torch)."""
        params = _float_params(params)
        return AdamState(step=0, m=np.zeros_like(params), v=np.zeros_like(params))

    def step(self, params, grads, state: AdamState, lr=None):
        # BEGIN GRADED PIECE optimizers: Adam.step
        params, g, lr = self._check_inputs(params, grads, lr)
        b1 = _per_run(self.betas[0], params)
        b2 = _per_run(self.betas[1], params)
        eps = _per_run(self.eps, params)
        wd = _per_run(self.weight_decay, params)
        t = _per_run(state.step + 1, params)
        if np.any(np.asarray(wd) != 0):
            if self.decoupled:
                params = params * (1 - lr * wd)       # AdamW: decay the pre-step weights
            else:
                g = g + wd * params                   # Adam: L2 enters the gradient
        m = state.m + (1 - b1) * (g - state.m)
        v = b2 * state.v + (1 - b2) * g * g
        if self.bias_correction:
            step_size = lr / (1 - _power(b1, t))
            denom = np.sqrt(v) / _sqrt(1 - _power(b2, t)) + eps
        else:
            step_size = lr
            denom = np.sqrt(v) + eps
        new, m, v = _keep_dtype(params.dtype, params - step_size * (m / denom), m, v)
        return new, AdamState(step=state.step + 1, m=m, v=v)
        # END GRADED PIECE

    def moments_hat(self, state: AdamState):
        """Bias-corrected moments (m_hat, v_hat) of a state, for printing."""
        # BEGIN GRADED PIECE optimizers: Adam.moments_hat
        t = _per_run(np.maximum(state.step, 1), state.m)
        b1 = _per_run(self.betas[0], state.m)
        b2 = _per_run(self.betas[1], state.m)
        return state.m / (1 - _power(b1, t)), state.v / (1 - _power(b2, t))
        # END GRADED PIECE


class AdamW(Adam):
    """AdamW: Adam with decoupled weight decay, in PyTorch's order.

        w <- w * (1 - lr * weight_decay)     (decay first, on the pre-step weights)
        then the Adam update of the data gradient alone (no L2 term in m or v).
    """

    decoupled = True

    def __init__(self, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=1e-2,
                 bias_correction=True):
        super().__init__(lr=lr, betas=betas, eps=eps, weight_decay=weight_decay,
                         bias_correction=bias_correction)
