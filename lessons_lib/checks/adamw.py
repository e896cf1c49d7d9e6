"""Checks for lesson 06: an AdamW step written from the equations."""
from __future__ import annotations

import numpy as np

from ..optimizers import Adam, AdamState, AdamW
from ..surfaces import COURSE, START
from .framework import Wrong, call_blocked, check, close, diagnose, get_callable, type_name, untouched, vector


def _adamw_reference(w, g, m, v, t, lr, betas, eps, wd):
    opt = AdamW(lr=lr, betas=betas, eps=eps, weight_decay=wd)
    w_new, st = opt.step(w, g, AdamState(step=t - 1, m=m, v=v))
    return w_new, st.m, st.v


def _adamw_cases():
    """Named cases: (name, args, kwargs) for adamw_step."""
    opt = Adam(lr=0.01)
    w, st = START.copy(), opt.init(START)
    for _ in range(5):
        w, st = opt.step(w, COURSE.grad(w), st)
    return [
        ("first step (t=1)", (START.copy(), COURSE.grad(START), np.zeros(2), np.zeros(2), 1, 0.01),
         dict(weight_decay=0.0)),
        ("bias correction at a later step (t=6)", (w, COURSE.grad(w), st.m, st.v, 6, 0.01), dict(weight_decay=0.0)),
        ("decay on the pre-step weights", (np.array([10.0, -4.0]), np.array([0.5, -2.0]), np.array([0.2, -0.1]),
                                           np.array([0.3, 0.5]), 3, 0.1), dict(weight_decay=0.5)),
        ("decay with zero data gradient", (np.array([10.0]), np.array([0.0]), np.zeros(1), np.zeros(1), 1, 0.1),
         dict(weight_decay=0.01)),
        ("non-default betas and eps", (np.array([0.5, 2.0, -1.0]), np.array([1.0, -3.0, 1e-9]),
                                       np.array([0.1, 0.0, 0.0]), np.array([0.01, 0.5, 0.0]), 2, 0.05),
         dict(betas=(0.8, 0.99), eps=1e-3, weight_decay=0.1)),
    ]


def _adamw_variants(w, g, m, v, t, lr, betas, eps, wd):
    """Outputs of common mistakes, each with its message."""
    b1, b2 = betas
    out = []

    def adam_part(w_, g_):
        m_ = b1 * m + (1 - b1) * g_
        v_ = b2 * v + (1 - b2) * g_ * g_
        upd = (m_ / (1 - b1**t)) / (np.sqrt(v_ / (1 - b2**t)) + eps)
        return w_ - lr * upd, m_, v_

    if wd > 0:
        wn, mn, vn = adam_part(w, g)
        out.append(((wn * (1 - lr * wd), mn, vn),
                    "the decay was applied after the Adam update. Decay the pre-step weights: "
                    "w <- w * (1 - lr*weight_decay) first, then subtract the Adam step."))
        out.append((adam_part(w, g + wd * w),
                    "weight_decay went into the gradient (Adam + L2). AdamW decays the weights directly "
                    "and feeds only the data gradient to m and v."))
        wn2, _, _ = adam_part(w * (1 - wd), g)
        out.append(((wn2, mn, vn), "the decay is missing its learning rate: w <- w * (1 - lr*weight_decay)."))
        out.append(((adam_part(w, g)[0], mn, vn), "there is no weight decay in the update."))
    m_ = b1 * m + (1 - b1) * g
    v_ = b2 * v + (1 - b2) * g * g
    wd_w = w * (1 - lr * wd)
    out.append(((wd_w - lr * m_ / (np.sqrt(v_) + eps), m_, v_),
                "there is no bias correction: divide m by (1 - beta1**t) and v by (1 - beta2**t)."))
    out.append(((wd_w - lr * (m_ / (1 - b1**(t + 1))) / (np.sqrt(v_ / (1 - b2**(t + 1))) + eps), m_, v_),
                "bias correction used t + 1; `t` is already the number of this step (1 on the first)."))
    out.append(((wd_w - lr * (m_ / (1 - b1**t)) / np.sqrt(v_ / (1 - b2**t) + eps), m_, v_),
                "eps went inside the square root; add it after: sqrt(v_hat) + eps."))
    out.append(((wd_w - lr * (m_ / (1 - b1**t)) / (np.sqrt(v_ / (1 - b2**t)) + eps),
                 m_ / (1 - b1**t), v_ / (1 - b2**t)),
                "the returned m and v are bias-corrected; return the raw moments (the state) and "
                "bias-correct only inside the step."))
    return out


@check("an AdamW step from the equations")
def adamw_step(ns):
    """`adamw_step(w, g, m, v, t, lr, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.01)` -> (w, m, v)."""
    fn = get_callable(ns, "adamw_step")
    for case, args, kwargs in _adamw_cases():
        w, g, m, v, t, lr = args
        betas, eps, wd = kwargs.get("betas", (0.9, 0.999)), kwargs.get("eps", 1e-8), kwargs["weight_decay"]
        ref = _adamw_reference(w, g, m, v, t, lr, betas, eps, wd)
        call_kwargs = dict(weight_decay=wd)
        if "betas" in kwargs:
            call_kwargs.update(betas=betas, eps=eps)
        kept = [a.copy() for a in (w, g, m, v)]
        out = call_blocked(fn, "adamw_step", case, ("optimizers",), *kept, t, lr, **call_kwargs)
        untouched([w, g, m, v], kept, "adamw_step", case, ("w", "g", "m", "v"))
        if not isinstance(out, (tuple, list)) or len(out) != 3:
            raise Wrong(f"case '{case}': `adamw_step` should return a tuple (w_new, m_new, v_new); "
                         f"it returned a {type_name(out)}" + (f" of length {len(out)}." if isinstance(out, (tuple, list)) else "."))
        got = [vector(o, f"{part} returned by adamw_step", shape=w.shape) for o, part in zip(out, ("w_new", "m_new", "v_new"))]
        if all(close(a, b, rtol=1e-9) for a, b in zip(got, ref)):
            continue
        for variant, message in _adamw_variants(w, g, m, v, t, lr, betas, eps, wd):
            if all(close(a, b, rtol=1e-9) for a, b in zip(got, variant)):
                raise Wrong(f"case '{case}': {message}")
        for part, a, b in zip(("m_new", "v_new", "w_new"), (got[1], got[2], got[0]), (ref[1], ref[2], ref[0])):
            diagnose(a, b, part, rtol=1e-9, prefix=f"case '{case}': ")
    return "First step, bias correction, decoupled decay on the pre-step weights: all match the library."
