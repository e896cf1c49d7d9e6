"""Adaptive optimizers: per-coordinate step sizes from past squared gradients.

    Adagrad:  sum <- sum + g^2                        (every gradient ever seen)
    RMSprop:  square_avg <- alpha*square_avg + (1 - alpha)*g^2   (an exponential average)
    both:     w <- w - lr * g / (sqrt(denominator) + eps)          (eps outside the root)

Adagrad's sum only grows, so its step keeps shrinking (like 1/sqrt(t) for gradients of one
size); RMSprop forgets old squares (memory about 1/(1 - alpha) steps), so its step settles.
Adam (optimizers.py) is RMSprop's denominator with a momentum numerator and bias correction.

Same init/step interface, batching and checks as optimizers.py, with PyTorch's argument
names, order of operations and state names (torch.optim.Adagrad, torch.optim.RMSprop).
Stricter than torch in three places: lr and eps must be > 0 (torch accepts 0, and eps = 0
divides 0 by 0 on a zero gradient), alpha must lie in [0, 1) (torch accepts any alpha >= 0;
alpha = 1 never updates the average) and momentum in [0, 1) (momentum >= 1 diverges).
"""
from __future__ import annotations

from typing import NamedTuple

import numpy as np

from .optimizers import _float_params, _keep_dtype, _Optimizer, _per_run, _scalar_or_array
from .validation import check_nonnegative, check_positive, check_unit_interval

__all__ = ["Adagrad", "RMSprop", "AdagradState", "RMSpropState"]

_EPS_ZERO = " (0 would divide 0 by 0 where every gradient so far was 0)"


class AdagradState(NamedTuple):
    """step: updates taken so far; sum: running sum of squared gradients (torch's name, G in the lesson)."""
    step: int
    sum: np.ndarray


class RMSpropState(NamedTuple):
    """step; square_avg: average of g^2 (torch's name); grad_avg: average of g (centered only);
    momentum_buffer: the momentum buffer (momentum > 0 only). Unused buffers are None."""
    step: int
    square_avg: np.ndarray
    grad_avg: np.ndarray | None
    momentum_buffer: np.ndarray | None


class Adagrad(_Optimizer):
    """Adagrad: each coordinate's step divided by the root of the sum of all its squared gradients.

        g <- g + weight_decay * w                     (coupled L2, added to the gradient)
        lr_t = lr / (1 + (t - 1) * lr_decay)          (t = 1, 2, ...: torch's "clr")
        sum <- sum + g^2                              (sum starts at initial_accumulator_value)
        w <- w - lr_t * g / (sqrt(sum) + eps)

    After k equal gradients g (sum starting at 0): w moves by lr * g / (sqrt(k) * |g| + eps),
    about lr / sqrt(k) per step, whether or not the surface still needs small steps.
    """

    def __init__(self, lr=1e-2, lr_decay=0.0, weight_decay=0.0, initial_accumulator_value=0.0, eps=1e-10):
        self.lr = _scalar_or_array(check_positive("lr", lr, hint="1e-2 is Adagrad's default"))
        self.lr_decay = _scalar_or_array(check_nonnegative("lr_decay", lr_decay, hint="0 (no decay) is the default"))
        self.weight_decay = _scalar_or_array(check_nonnegative("weight_decay", weight_decay))
        self.initial_accumulator_value = _scalar_or_array(check_nonnegative(
            "initial_accumulator_value", initial_accumulator_value,
            hint="it starts the sum of squares; 0 is the default"))
        self.eps = _scalar_or_array(check_positive("eps", eps, hint="1e-10 is Adagrad's default" + _EPS_ZERO))
        self._hyper(lr=self.lr, lr_decay=self.lr_decay, weight_decay=self.weight_decay,
                    initial_accumulator_value=self.initial_accumulator_value, eps=self.eps)

    def init(self, params) -> AdagradState:
        """sum = initial_accumulator_value everywhere, in the parameters' float dtype."""
        params = _float_params(params)
        self._check_runs(params)
        start = np.zeros_like(params) + _per_run(self.initial_accumulator_value, params)
        return AdagradState(step=0, sum=start.astype(params.dtype, copy=False))

    def _lr_t(self, lr, t, params):
        return lr / (1 + (t - 1) * _per_run(self.lr_decay, params))

    def step(self, params, grads, state: AdagradState, lr=None):
        # BEGIN GRADED PIECE optimizers: Adagrad.step
        params, g, lr = self._check_inputs(params, grads, lr)
        wd = _per_run(self.weight_decay, params)
        if np.any(np.asarray(wd) != 0):
            g = g + wd * params
        lr_t = self._lr_t(lr, _per_run(state.step + 1, params), params)
        total = state.sum + g * g
        std = np.sqrt(total) + _per_run(self.eps, params)
        new, total = _keep_dtype(params.dtype, params - (lr_t * g) / std, total)
        return new, AdagradState(step=state.step + 1, sum=total)
        # END GRADED PIECE

    def effective_lr(self, state: AdagradState, lr=None):
        """lr_t / (sqrt(sum) + eps): what the last step (step t of the state) multiplied its gradient by."""
        # BEGIN GRADED PIECE optimizers: Adagrad.effective_lr
        lr = self.lr if lr is None else lr
        t = max(int(state.step), 1) if np.ndim(state.step) == 0 else np.maximum(state.step, 1)
        lr_t = self._lr_t(_per_run(lr, state.sum), _per_run(t, state.sum), state.sum)
        return lr_t / (np.sqrt(state.sum) + _per_run(self.eps, state.sum))
        # END GRADED PIECE


class RMSprop(_Optimizer):
    """RMSprop: each coordinate's step divided by the root of an exponential average of g^2.

        g <- g + weight_decay * w                             (coupled L2)
        square_avg <- alpha * square_avg + (1 - alpha) * g^2  (starts at 0)
        centered:  grad_avg <- alpha * grad_avg + (1 - alpha) * g,
                   denom = sqrt(square_avg - grad_avg^2) + eps  (a variance estimate)
        else:      denom = sqrt(square_avg) + eps
        momentum > 0:  buf <- momentum * buf + g / denom (buf starts at 0),  w <- w - lr * buf
        else:          w <- w - lr * g / denom

    The average remembers about 1/(1 - alpha) steps (100 for the default 0.99). Adam with
    beta1 = 0 and no bias correction has this (uncentered) denominator.
    """

    def __init__(self, lr=1e-2, alpha=0.99, eps=1e-8, weight_decay=0.0, momentum=0.0, centered=False):
        self.lr = _scalar_or_array(check_positive("lr", lr, hint="1e-2 is RMSprop's default"))
        self.alpha = _scalar_or_array(check_unit_interval(
            "alpha", alpha, hint="the average of g^2 remembers about 1/(1 - alpha) steps (alpha = 1 would "
                                 "never update it); 0.99 is the default"))
        self.eps = _scalar_or_array(check_positive("eps", eps, hint="1e-8 is RMSprop's default" + _EPS_ZERO))
        self.weight_decay = _scalar_or_array(check_nonnegative("weight_decay", weight_decay))
        self.momentum = _scalar_or_array(check_unit_interval(
            "momentum", momentum, hint="0 means no momentum (the default); 0.9 is a common choice"))
        if not isinstance(centered, (bool, np.bool_)):
            raise ValueError(f"centered must be True or False; got {centered!r}")
        self.centered = bool(centered)
        self._hyper(lr=self.lr, alpha=self.alpha, eps=self.eps, weight_decay=self.weight_decay,
                    momentum=self.momentum)

    @property
    def uses_momentum(self) -> bool:
        return bool(np.any(np.asarray(self.momentum) > 0))

    def init(self, params) -> RMSpropState:
        """square_avg = 0; grad_avg = 0 when centered; momentum_buffer = 0 when momentum > 0 (else None)."""
        params = _float_params(params)
        return RMSpropState(step=0, square_avg=np.zeros_like(params),
                            grad_avg=np.zeros_like(params) if self.centered else None,
                            momentum_buffer=np.zeros_like(params) if self.uses_momentum else None)

    def _denominator(self, square_avg, grad_avg, eps):
        if self.centered:
            return np.sqrt(square_avg - grad_avg * grad_avg) + eps
        return np.sqrt(square_avg) + eps

    def step(self, params, grads, state: RMSpropState, lr=None):
        # BEGIN GRADED PIECE optimizers: RMSprop.step
        params, g, lr = self._check_inputs(params, grads, lr)
        wd = _per_run(self.weight_decay, params)
        if np.any(np.asarray(wd) != 0):
            g = g + wd * params
        alpha = _per_run(self.alpha, params)
        square_avg = alpha * state.square_avg + (1 - alpha) * g * g
        grad_avg = state.grad_avg
        if self.centered:
            grad_avg = grad_avg + (1 - alpha) * (g - grad_avg)     # torch: grad_avg.lerp_(g, 1 - alpha)
        denom = self._denominator(square_avg, grad_avg, _per_run(self.eps, params))
        buf = state.momentum_buffer
        if self.uses_momentum:
            mu = _per_run(self.momentum, params)
            buf = mu * buf + g / denom
            # a run of a batch with momentum 0 takes torch's plain step (and keeps a zero buffer)
            new = np.where(mu > 0, params - lr * buf, params - (lr * g) / denom)
            buf = np.where(mu > 0, buf, 0.0)
        else:
            new = params - (lr * g) / denom
        new, square_avg, grad_avg, buf = _keep_dtype(params.dtype, new, square_avg, grad_avg, buf)
        return new, RMSpropState(step=state.step + 1, square_avg=square_avg, grad_avg=grad_avg,
                                 momentum_buffer=buf)
        # END GRADED PIECE

    def effective_lr(self, state: RMSpropState, lr=None):
        """lr / denom of the state: without momentum, what the last step multiplied its gradient by."""
        # BEGIN GRADED PIECE optimizers: RMSprop.effective_lr
        lr = _per_run(self.lr if lr is None else lr, state.square_avg)
        return lr / self._denominator(state.square_avg, state.grad_avg, _per_run(self.eps, state.square_avg))
        # END GRADED PIECE
