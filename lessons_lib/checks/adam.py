"""Checks for lesson 05: Adam's first bias-corrected step, v for a constant gradient, three steps."""
from __future__ import annotations

import numpy as np

from ..optimizers import Adam, SGD
from .framework import Wrong, check, close, compare_path, diagnose, get, learner_surface, path_of, scalar, vector
from .parameters import ADAM_BY_HAND_LR, ADAM_FIRST_GRAD, ADAM_FIRST_LR, CONSTANT_GRAD, CONSTANT_STEPS


@check("Adam's first bias-corrected step")
def adam_first_step(ns):
    """`first_step`: the amount Adam subtracts from w on step 1 for g = [20, 0.2], lr 0.001."""
    g, lr = ADAM_FIRST_GRAD, ADAM_FIRST_LR
    w0 = np.zeros(2)
    opt = Adam(lr=lr)
    expected = w0 - opt.step(w0, g, opt.init(w0))[0]
    b1, b2, eps = 0.9, 0.999, 1e-8
    m, v = (1 - b1) * g, (1 - b2) * g * g
    given = vector(get(ns, "first_step"), "first_step", size=2)
    diagnose(given, expected, "first_step", labels=("coordinate 0 (g=20)", "coordinate 1 (g=0.2)"), rtol=1e-5, known=[
        (-expected, "`first_step` has the wrong sign: it is the amount subtracted (w_new = w - first_step), "
                    "so it points the way the gradient does."),
        (lr * m / (np.sqrt(v) + eps), "`first_step` is the step without bias correction. "
                                      "Divide m by (1 - beta1**t) and v by (1 - beta2**t)."),
        (lr * (m / (1 - b1)) / (np.sqrt(v) + eps), "only m is bias-corrected; v needs its correction (1 - beta2**t) too."),
        (lr * m / (np.sqrt(v / (1 - b2)) + eps), "only v is bias-corrected; m needs its correction (1 - beta1**t) too."),
        (lr * (m / (1 - b1)) / (v / (1 - b2) + eps), "the denominator is v_hat; it should be its square root."),
        (lr * g, "that is an SGD step (lr * g); Adam divides m_hat by sqrt(v_hat)."),
    ])
    return "One observation of each gradient: both coordinates move by one learning rate."


@check("v for a constant gradient")
def v_constant_gradient(ns):
    """`v_hat_constant`: bias-corrected v after 5 gradients of 3.0; `variance_constant`: their variance."""
    b2, t, g = 0.999, CONSTANT_STEPS, CONSTANT_GRAD
    v = 0.0
    for _ in range(t):
        v = b2 * v + (1 - b2) * g * g
    expected = v / (1 - b2**t)
    vh = scalar(get(ns, "v_hat_constant"), "v_hat_constant")
    diagnose(vh, expected, "v_hat_constant", known=[
        (0.0, "`v_hat_constant` is 0, the variance of a constant. v is not centred: it averages g**2, "
              "not (g - mean)**2."),
        (g, "`v_hat_constant` looks like an average of g; v averages the squared gradient."),
        (v, "`v_hat_constant` is v without bias correction: divide by 1 - beta2**t."),
        ((1 - b2) * g * g / (1 - b2**t), "`v_hat_constant` used only the last gradient; v accumulates "
                                          "every step: v <- beta2*v + (1 - beta2)*g**2."),
        (np.sqrt(expected), "`v_hat_constant` is a root mean square; v itself is the mean of g**2 (no root)."),
    ])
    var = scalar(get(ns, "variance_constant"), "variance_constant")
    if not close(var, 0.0, atol=1e-12):
        raise Wrong("`variance_constant` is not the variance of five equal gradients (np.var subtracts the "
                     "mean before squaring).")
    return "Same gradient every step: v_hat equals g**2 while the variance is zero."


@check("three steps by hand: Adam")
def adam_three_steps(ns):
    """`adam_curvatures`, `adam_start`; `adam_path` (3, d) with Adam(lr=0.1) defaults."""
    surface, start = learner_surface(ns, "adam_curvatures", "adam_start")
    lr = ADAM_BY_HAND_LR
    expected = path_of(Adam(lr=lr), surface, start)
    compare_path(get(ns, "adam_path"), expected, "adam_path", start, known=[
        (path_of(Adam(lr=lr, bias_correction=False), surface, start),
         "`adam_path` leaves out bias correction: m_hat = m / (1 - beta1**t), v_hat = v / (1 - beta2**t), "
         "with t counting from 1."),
        (path_of(SGD(lr), surface, start), "`adam_path` is plain SGD; Adam steps by lr * m_hat / (sqrt(v_hat) + eps)."),
    ])
    return "Your numbers agree with the library's Adam on your surface."
