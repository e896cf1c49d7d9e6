"""Checks for lesson 03: three steps by hand of SGD and framework momentum."""
from __future__ import annotations

import numpy as np

from ..optimizers import EMAMomentum, SGD
from .framework import check, compare_path, get, learner_surface, path_of
from .parameters import BY_HAND_LR, BY_HAND_MOMENTUM


@check("three steps by hand: SGD and framework momentum")
def three_steps_sgd_momentum(ns):
    """`my_curvatures`, `my_start`; `sgd_path` and `momentum_path`, each (3, d)."""
    surface, start = learner_surface(ns, "my_curvatures", "my_start")
    lr, mu = BY_HAND_LR, BY_HAND_MOMENTUM
    sgd = path_of(SGD(lr), surface, start)
    uphill = [start * (1 + lr * surface.c) ** k for k in (1, 2, 3)]
    repeated = [start - k * lr * surface.grad(start) for k in (1, 2, 3)]
    compare_path(get(ns, "sgd_path"), sgd, "sgd_path", start, known=[
        (np.array(uphill), "`sgd_path` goes uphill: subtract lr * gradient."),
        (np.array(repeated), "`sgd_path` reuses the first gradient: recompute the gradient at the new "
                             "position on every step."),
    ])
    heavy = path_of(SGD(lr, momentum=mu), surface, start)
    compare_path(get(ns, "momentum_path"), heavy, "momentum_path", start, known=[
        (path_of(EMAMomentum(lr, beta=mu), surface, start),
         "`momentum_path` follows the EMA convention m = mu*m + (1 - mu)*g. The framework convention "
         "adds the whole gradient: v = mu*v + g, then w <- w - lr*v."),
        (path_of(SGD(lr, momentum=mu, nesterov=True), surface, start),
         "`momentum_path` is Nesterov momentum; this exercise asks for plain (heavy-ball) momentum."),
        (sgd, "`momentum_path` equals plain SGD: the velocity must carry over from one step to the next."),
        (path_of(SGD(lr, momentum=mu, dampening=mu), surface, start),
         "`momentum_path` dampens the gradient by (1 - mu); the framework default has no dampening."),
    ])
    return "Your numbers agree with the library's SGD and SGD(momentum=0.9) on your surface."
