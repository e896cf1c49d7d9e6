"""Checks for lessons 01-02: one SGD step, and the stability limit derived and run."""
from __future__ import annotations

import numpy as np

from ..optimizers import SGD
from ..runner import run
from ..surfaces import COURSE, START
from .framework import Wrong, call_blocked, check, close, diagnose, get, get_callable, scalar, vector


@check("one SGD step at lr 0.01")
def one_sgd_step(ns):
    """`w_next`: [a, b] after one SGD step at lr 0.01 from [1, 1]; `loss_next`: the loss there."""
    g = COURSE.grad(START)
    expected = START - 0.01 * g
    w = vector(get(ns, "w_next"), "w_next", size=2)
    diagnose(w, expected, "w_next", labels=("a", "b"), known=[
        (START + 0.01 * g, "`w_next` moved uphill: an SGD step subtracts lr * gradient."),
        (0.01 * g, "`w_next` holds the step lr * gradient; it should be the position after the step."),
        (-0.01 * g, "`w_next` holds minus the step; it should be the position after the step, w - lr * gradient."),
        (START - 0.018 * g, "that is the step at lr 0.018 from the lesson; this exercise uses lr 0.01."),
        (START - g, "the learning rate is missing: the gradient must be multiplied by lr = 0.01."),
        (START - 0.01 * START, "the step used w instead of the gradient [100 a, b]."),
    ])
    loss = scalar(get(ns, "loss_next"), "loss_next")
    if not close(loss, COURSE.loss(expected)):
        if close(loss, COURSE.loss(START)):
            raise Wrong("`loss_next` is the loss at the start; evaluate L at `w_next`.")
        if close(loss, 0.5 * float(np.sum(expected**2))):
            raise Wrong("`loss_next` leaves out the curvatures: L(a, b) = 0.5 * (100 a^2 + b^2).")
        if close(loss, float(np.sum(COURSE.c * expected**2))):
            raise Wrong("`loss_next` leaves out the 0.5 in front of L.")
        diagnose(loss, COURSE.loss(expected), "loss_next")
    return "Nothing overshoots at this rate; notice how little b moved."


@check("the stability limit of SGD")
def stability_limit(ns):
    """`lr_limit`: the largest stable lr; `steep_factor_at_limit`: 1 - lr*c of the steep coordinate there."""
    c_max, c_min = max(COURSE.curvatures), min(COURSE.curvatures)
    expected = 2.0 / c_max
    lr = scalar(get(ns, "lr_limit"), "lr_limit")
    diagnose(lr, expected, "lr_limit", known=[
        (1.0 / c_max, "at that rate the steep coordinate's multiplier 1 - lr*100 is 0 (it lands on the "
                      "optimum in one step), yet somewhat larger rates still converge. Where does the multiplier "
                      "leave the stable range?"),
        (2.0 / c_min, "that limit comes from the shallow curvature. Every coordinate must stay stable, so the "
                      "steepest curvature sets the limit."),
        (1.0 / c_min, "that comes from the shallow curvature, and from a multiplier of 0 rather than -1."),
        (2.0 / (c_max + c_min), "that is the best fixed rate, which balances the two coordinates; the question "
                                "asks for the rate beyond which SGD stops converging."),
    ])
    factor = scalar(get(ns, "steep_factor_at_limit"), "steep_factor_at_limit")
    diagnose(factor, 1 - expected * c_max, "steep_factor_at_limit", known=[
        (-(1 - expected * c_max), "`steep_factor_at_limit` has the wrong sign: it is 1 - lr * 100 at lr_limit."),
        (1 - expected * c_min, "`steep_factor_at_limit` used the shallow curvature; use the steep one (100)."),
    ])
    return "Just below this rate the steep coordinate still flips sign every step but shrinks."


@check("the stability limit confirmed by a run")
def stability_run(ns):
    """`sgd_final_loss(lr, steps)` (your own loop), then `loss_below` and `loss_above`."""
    fn = get_callable(ns, "sgd_final_loss")
    cases = [("zero steps (the start loss)", 0.01, 0), ("one step at lr 0.01", 0.01, 1),
             ("8 steps at lr 0.018", 0.018, 8), ("8 steps at lr 0.021 (diverging)", 0.021, 8)]
    for case, lr, steps in cases:
        expected = float(run(SGD(lr), steps).final_loss)
        got = call_blocked(fn, "sgd_final_loss", case, ("optimizers", "run"), lr, steps)
        got = scalar(got, f"sgd_final_loss({lr}, {steps})")
        if close(got, expected, rtol=1e-9):
            continue
        hints = []
        for off, text in ((1, "one step too many"), (-1, "one step too few")):
            if steps + off >= 0 and close(got, run(SGD(lr), steps + off).final_loss, rtol=1e-9):
                hints.append(f"your loop takes {text}")
        if steps > 0:
            w_up = START.copy()
            for _ in range(steps):
                w_up = w_up + lr * COURSE.grad(w_up)
            if close(got, COURSE.loss(w_up), rtol=1e-9):
                hints.append("the steps go uphill: subtract lr * gradient")
        msg = f"case '{case}': `sgd_final_loss` returned a different loss"
        raise Wrong(msg + (f" ({'; '.join(hints)})." if hints else "; start from [1, 1], take `steps` "
                                                                    "steps w <- w - lr * grad, return L(w)."))
    start = COURSE.loss(START)
    below = scalar(get(ns, "loss_below"), "loss_below")
    above = get(ns, "loss_above")
    try:
        above = float(np.asarray(above, dtype=np.float64).reshape(()))   # inf is a fair answer here
    except (TypeError, ValueError):
        above = scalar(above, "loss_above")
    if not below < start:
        raise Wrong("`loss_below` is not below the start loss: just under the limit SGD should still converge. "
                     "Is `lr_limit` right?")
    if not above > start:
        raise Wrong("`loss_above` did not grow: just above the limit SGD should diverge. Is `lr_limit` the limit?")
    return "Below the limit the loss shrinks; just above it, it grows without bound."
