"""Checks for lesson 08: the clipping factor, and global-norm clipping written out."""
from __future__ import annotations

import numpy as np

from ..clipping import clip_by_global_norm
from .blocking import LibraryUsedError
from .framework import NotAttempted, Wrong, blocked_while_calling, call_blocked, check, close, diagnose, get, get_callable, scalar, type_name, untouched, vector
from .parameters import CLIP_GRAD, CLIP_MAX_NORM


@check("the clipping factor")
def clip_factor(ns):
    """`clip_factor` for norm 50 at max_norm 5; `g_clipped` for g = [30, 40]; `angle_change` in degrees."""
    g, max_norm = CLIP_GRAD, CLIP_MAX_NORM
    norm = float(np.linalg.norm(g))
    expected = max_norm / norm
    f = scalar(get(ns, "clip_factor"), "clip_factor")
    diagnose(f, expected, "clip_factor", rtol=1e-6, known=[
        (norm / max_norm, "`clip_factor` is inverted: clipping multiplies by threshold / norm, a number below 1."),
        (1 - expected, "`clip_factor` is 1 minus the factor; clipping multiplies the gradient by threshold / norm."),
        (norm - max_norm, "clipping multiplies the gradient by a factor; it doesn't subtract."),
    ])
    gc = vector(get(ns, "g_clipped"), "g_clipped", size=2)
    diagnose(gc, expected * g, "g_clipped", labels=("first", "second"), rtol=1e-6, known=[
        (np.clip(g, -max_norm, max_norm), "`g_clipped` clamps each coordinate (value clipping); global-norm "
                                          "clipping scales the whole vector by one factor."),
        (g / norm, "`g_clipped` is the unit vector; scale so the norm equals max_norm instead."),
    ])
    angle = scalar(get(ns, "angle_change"), "angle_change")
    if abs(angle) > 1e-4:
        raise Wrong("`angle_change` is not what a single positive scale factor does to a direction; "
                     "compute the angle between g and g_clipped (lessons_lib.clipping.angle_degrees).")
    return "One factor below 1 for every coordinate: the length shrinks, the direction stays."


def _as_list_of_arrays(value, name, like):
    if not isinstance(value, (list, tuple)):
        raise Wrong(f"the first thing `{name}` returns should be a list of arrays (one per input array); "
                     f"it is a {type_name(value)}.")
    if len(value) != len(like):
        raise Wrong(f"`{name}` returned {len(value)} arrays for {len(like)} inputs.")
    return [vector(v, f"clipped array {i}", shape=l.shape) for i, (v, l) in enumerate(zip(value, like))]


@check("global-norm clipping")
def global_norm_clipping(ns):
    """`clip_global_norm(grads, max_norm, eps=1e-6)` -> (list of clipped arrays, total norm before clipping)."""
    fn = get_callable(ns, "clip_global_norm")
    cases = [
        ("below the threshold: unchanged", [np.array([0.3, 0.4])], 5.0),
        ("above the threshold: scaled to max_norm", [np.array([30.0, 40.0])], 5.0),
        ("one norm over all the arrays", [np.array([3.0, 0.0]), np.array([[0.0, 4.0], [0.0, 0.0]]), np.array([12.0])], 6.5),
        ("a tiny gradient: eps in the coefficient", [np.array([1e-3, -2e-3]), np.array([5e-4])], 1e-4),
    ]
    for case, grads, max_norm in cases:
        flat = np.concatenate([g.ravel() for g in grads])
        _, norm = clip_by_global_norm(flat, max_norm)
        coef = min(1.0, max_norm / (norm + 1e-6))
        expected = [g * coef for g in grads]
        kept = [g.copy() for g in grads]
        out = call_blocked(fn, "clip_global_norm", case, ("clip_by_global_norm",), kept, max_norm)
        untouched(grads, kept, "clip_global_norm", case, [f"grads[{i}]" for i in range(len(grads))],
                   hint="Return new arrays (g * coef) and leave the caller's gradients as they were.")
        if not isinstance(out, (tuple, list)) or len(out) != 2:
            raise Wrong(f"case '{case}': `clip_global_norm` should return (clipped_list, total_norm); "
                         f"it returned a {type_name(out)}.")
        clipped = _as_list_of_arrays(out[0], "clip_global_norm", grads)
        total = scalar(out[1], "the total norm returned by clip_global_norm")
        if all(close(a, b, rtol=1e-6) for a, b in zip(clipped, expected)):
            if not close(total, norm, rtol=1e-9):
                if close(total, float(np.sqrt(sum(np.sum(c * c) for c in expected)))):
                    raise Wrong(f"case '{case}': the returned norm is the norm after clipping; return the "
                                 "norm before clipping (the number worth logging).")
                diagnose(total, norm, "total norm", prefix=f"case '{case}': ")
            continue
        per_array = [g * min(1.0, max_norm / (np.linalg.norm(g) + 1e-6)) for g in grads]
        if len(grads) > 1 and all(close(a, b, rtol=1e-6) for a, b in zip(clipped, per_array)):
            raise Wrong(f"case '{case}': each array was clipped by its own norm; global-norm clipping takes "
                         "one norm over all arrays together and scales every array by the same factor.")
        unclamped = [g * (max_norm / (norm + 1e-6)) for g in grads]
        if coef == 1.0 and all(close(a, b, rtol=1e-6) for a, b in zip(clipped, unclamped)):
            raise Wrong(f"case '{case}': a gradient already below max_norm was scaled up; the factor is "
                         "capped at 1.")
        no_eps = [g * min(1.0, max_norm / norm) for g in grads]
        if all(close(a, b, rtol=1e-6) for a, b in zip(clipped, no_eps)):
            raise Wrong(f"case '{case}': the factor leaves out eps; use max_norm / (norm + eps), capped at 1, "
                         "which also keeps a zero gradient from dividing by zero.")
        if all(close(a, np.clip(g, -max_norm, max_norm)) for a, g in zip(clipped, grads)):
            raise Wrong(f"case '{case}': the arrays were clamped coordinate by coordinate; scale them instead.")
        for i, (a, b) in enumerate(zip(clipped, expected)):
            diagnose(a, b, f"clipped array {i}", rtol=1e-6, prefix=f"case '{case}': ")
    case = "an inf gradient must raise"
    try:
        with blocked_while_calling(fn, "clip_by_global_norm"), np.errstate(invalid="ignore", over="ignore"):
            fn([np.array([1.0, np.inf]), np.array([2.0])], 1.0)
    except NotImplementedError:
        raise NotAttempted("`clip_global_norm` still raises NotImplementedError.") from None
    except LibraryUsedError as exc:
        raise Wrong(f"case '{case}': `clip_global_norm` calls {exc}; write it yourself.") from None
    except Exception:
        pass   # any error stops the step, which is what matters
    else:
        raise Wrong(f"case '{case}': a gradient containing inf went through without an error. A non-finite "
                     "norm must raise (for example ValueError), not pass into the optimizer's state.")
    return "Below/above the threshold, one norm across arrays, and the inf case all behave."
