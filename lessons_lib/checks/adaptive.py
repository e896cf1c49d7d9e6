"""Checks for lesson 04: AdaGrad's effective learning rate by hand, an RMSprop step from the equations."""
from __future__ import annotations

import math

import numpy as np

from ..adaptive import Adagrad, RMSprop, RMSpropState
from .framework import (
    Wrong, call_blocked, check, close, diagnose, get, get_callable, returned_arrays, scalar, untouched,
)
from .parameters import ADAGRAD_GRAD, ADAGRAD_LR, ADAGRAD_STEPS


@check("AdaGrad's effective learning rate after k equal gradients")
def adagrad_effective_lr(ns):
    """`effective_lr_k`: lr / (sqrt(sum) + eps) after k gradients g; `step_size_k`: the size of step k."""
    lr, g, k = ADAGRAD_LR, ADAGRAD_GRAD, ADAGRAD_STEPS
    opt = Adagrad(lr=lr)                      # eps = 1e-10, torch's default: negligible here
    w, state = np.zeros(1), opt.init(np.zeros(1))
    for _ in range(k):
        before = w
        w, state = opt.step(w, np.array([g]), state)
    expected_lr = float(opt.effective_lr(state)[0])
    expected_step = abs(float(w[0] - before[0]))

    eff = scalar(get(ns, "effective_lr_k"), "effective_lr_k")
    off_by_one = "off by one: after k gradients the sum holds k squares, the k-th included."
    diagnose(eff, expected_lr, "effective_lr_k", rtol=1e-6, known=[
        (lr, "`effective_lr_k` is lr itself; AdaGrad divides lr by the root of the sum of squared gradients."),
        (lr / (k * g * g), "`effective_lr_k` divides lr by the sum of squares; AdaGrad divides by its square root."),
        (lr / abs(g), "`effective_lr_k` counts one squared gradient (or their average); AdaGrad's sum "
                      "holds all k of them."),
        (lr / math.sqrt(k), "`effective_lr_k` is the size of the step; the effective learning rate is what "
                            "multiplies the gradient, so the gradient's size is still in it."),
        (lr / (math.sqrt(k) * g * g), "`effective_lr_k`: the square root applies to the whole sum, "
                                      "the squared gradients included."),
        (lr / math.sqrt((k - 1) * g * g), "`effective_lr_k` is " + off_by_one),
        (lr / math.sqrt((k + 1) * g * g), "`effective_lr_k` is " + off_by_one),
        (lr * math.sqrt(k * g * g), "`effective_lr_k` multiplies lr by the root of the sum; AdaGrad divides."),
    ])
    size = scalar(get(ns, "step_size_k"), "step_size_k")
    diagnose(size, expected_step, "step_size_k", rtol=1e-6, known=[
        (-expected_step, "`step_size_k` is negative: a step's size is how far w moves, a positive number."),
        (expected_lr, "`step_size_k` is the effective learning rate; the step is that multiplier times g."),
        (lr, "`step_size_k` is the size of the first step (k = 1); this asks for step k."),
        (lr * abs(g), "`step_size_k` is a plain SGD step (lr * g); AdaGrad divides by the root of the sum."),
        (lr * abs(g) / (k * g * g), "`step_size_k` divides by the sum of squares; AdaGrad divides by its "
                                    "square root."),
        (lr / k, "`step_size_k` divides by k; AdaGrad divides by the root of the sum of squares."),
        (lr / math.sqrt(k - 1), "`step_size_k` is " + off_by_one),
        (lr / math.sqrt(k + 1), "`step_size_k` is " + off_by_one),
    ])
    return "The multiplier shrinks as the sum grows; the step's size does not depend on the size of g."


def _rmsprop_cases():
    """Named cases: (name, w, g, square_avg, lr, alpha, eps). Hyperparameters are Python floats,
    so a float32 answer stays float32 (numpy's rule for Python scalars)."""
    f32 = np.float32
    return [
        ("first step (square_avg = 0)", np.array([1.0, 1.0]), np.array([100.0, 1.0]), np.zeros(2),
         0.01, 0.99, 1e-8),
        ("a later step (square_avg carries over)", np.array([0.3, 0.95]), np.array([30.0, 0.95]),
         np.array([60.0, 0.02]), 0.01, 0.99, 1e-8),
        ("eps = 0.1, small and zero gradients", np.array([0.5, -2.0, 3.0]), np.array([0.3, -0.02, 0.0]),
         np.array([0.04, 1e-4, 0.0]), 0.05, 0.9, 0.1),
        ("a batch of 3 runs, shape (3, 2)", np.array([[1.0, 1.0], [0.5, -0.2], [-2.0, 4.0]]),
         np.array([[100.0, 1.0], [50.0, -0.2], [-200.0, 4.0]]),
         np.array([[0.0, 0.0], [5.0, 0.1], [300.0, 2.0]]), 0.02, 0.9, 1e-8),
        ("float32 parameters stay float32", np.array([0.25, -1.5], dtype=f32), np.array([2.0, -0.3], dtype=f32),
         np.array([1.0, 0.05], dtype=f32), 0.01, 0.99, 1e-8),
    ]


def _rmsprop_reference(w, g, square_avg, lr, alpha, eps):
    opt = RMSprop(lr=lr, alpha=alpha, eps=eps)
    w_new, state = opt.step(w, g, RMSpropState(step=0, square_avg=square_avg, grad_avg=None, momentum_buffer=None))
    return w_new, state.square_avg


def _rmsprop_variants(w, g, s, lr, alpha, eps):
    """Outputs of the common mistakes, each with its message (computed in float64)."""
    w, g, s = (np.asarray(a, dtype=np.float64) for a in (w, g, s))
    avg = alpha * s + (1 - alpha) * g * g
    with np.errstate(all="ignore"):
        wrong_avgs = [
            (alpha * s + (1 - alpha) * g, "`square_avg` averages the gradient itself; it should average the "
                                           "squared gradient."),
            (s + g * g, "`square_avg` keeps the old value whole and adds each new g**2 in full: that is "
                        "AdaGrad's ever-growing sum, not RMSprop's exponential average."),
            ((1 - alpha) * s + alpha * g * g, "alpha and 1 - alpha are swapped: alpha weighs the old average "
                                              "(the memory), 1 - alpha the new g**2."),
        ]
        out = [((w - lr * g / (np.sqrt(a) + eps), a), message) for a, message in wrong_avgs]
        out += [
            ((w - lr * g / np.sqrt(avg + eps), avg), "eps went inside the square root; torch adds it to the "
                                                    "root, outside it."),
            ((w - lr * g / np.sqrt(avg), avg), "eps is missing from the denominator (it keeps the step finite "
                                               "where square_avg is 0)."),
            ((w - lr * g / (avg + eps), avg), "the step divides by square_avg itself; RMSprop divides by its "
                                              "square root."),
            ((w - lr * g / (np.sqrt(s) + eps), avg), "the step divides by the previous square_avg; update "
                                                     "square_avg with this gradient first, then divide."),
            ((w + lr * g / (np.sqrt(avg) + eps), avg), "w moved uphill: the step goes against the gradient."),
            ((avg, w - lr * g / (np.sqrt(avg) + eps)), "the two results are in the wrong order: return the new "
                                                       "weights first, then the new square_avg."),
        ]
    return out


@check("an RMSprop step from the equations")
def rmsprop_step(ns):
    """`rmsprop_step(w, g, square_avg, lr, alpha, eps)` -> (w_new, square_avg_new), torch's RMSprop
    (uncentered, no momentum)."""
    fn = get_callable(ns, "rmsprop_step")
    for case, w, g, s, lr, alpha, eps in _rmsprop_cases():
        ref = [np.asarray(a, dtype=np.float64) for a in _rmsprop_reference(w, g, s, lr, alpha, eps)]
        kept = [a.copy() for a in (w, g, s)]
        out = call_blocked(fn, "rmsprop_step", case, ("optimizers",), *kept, lr=lr, alpha=alpha, eps=eps)
        untouched([w, g, s], kept, "rmsprop_step", case, ("w", "g", "square_avg"),
                  hint="Build new arrays (w_new = w - ..., square_avg_new = ...) instead.")
        got = returned_arrays(out, case, "rmsprop_step", ("w_new", "square_avg_new"), w)
        rtol = 1e-5 if w.dtype == np.float32 else 1e-9
        if all(close(a, b, rtol=rtol) for a, b in zip(got, ref)):
            continue
        for variant, message in _rmsprop_variants(w, g, s, lr, alpha, eps):
            if all(a.shape == b.shape and np.allclose(a, b, rtol=rtol, atol=1e-12, equal_nan=True)
                   for a, b in zip(got, variant)):
                raise Wrong(f"case '{case}': {message}")
        for part, a in zip(("w_new", "square_avg_new"), got):
            if not np.all(np.isfinite(a)):
                raise Wrong(f"case '{case}': `{part}` contains nan or inf. A square root of a negative number, "
                            "or a division by zero where the gradient is 0?")
        for part, a, b in zip(("square_avg_new", "w_new"), (got[1], got[0]), (ref[1], ref[0])):
            diagnose(a, b, part, rtol=rtol, prefix=f"case '{case}': ")
    return "First and later steps, eps outside the root, a batch of runs and float32: all match the library's RMSprop."
