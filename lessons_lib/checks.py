"""Learner-facing checks for the exercises: immediate feedback that never gives the answer away.

Each exercise in exercises/ is followed by a check cell such as

    checks.one_sgd_step()

The check looks up the names the exercise asks for (here ``w_next`` and ``loss_next``) in the
notebook's namespace, so the check cell runs even before the answer exists, and prints one of

    Correct: ...                     the answer matches the library on every case
    Not yet (...): what is wrong     type, shape, sign, which coordinate, off by what factor,
                                     or which case of an implementation fails
    Not attempted yet (...): ...     the name is missing, None, or still raises NotImplementedError

It returns a CheckResult (true only when correct) and never raises on a wrong answer, so a
notebook keeps running. Graded test cells call the same checks with ``strict=True``, which
raises AssertionError with the same message instead of printing it.

Implementation exercises (Adam/AdamW step, warmup-cosine, global-norm clipping, the dynamic
loss-scaler update, the training loop) are run on several named cases against the library,
with the library's own version of that piece switched off while the learner's code runs.
"""
from __future__ import annotations

import contextlib
import functools
import inspect
import math
from typing import Callable

import numpy as np

from .clipping import clip_by_global_norm as _lib_clip
from .datasets import ticket_triage
from .logistic import fit_newton, logistic_hessian as _lib_logistic_hessian, sigmoid as _sigmoid
from .memory import state_gigabytes as _lib_state_gb
from .optimizers import SGD, Adam, AdamState, AdamW, EMAMomentum
from .precision import FP16_SMALLEST_NORMAL, DynamicLossScaler, ScalerState, to_fp16
from .runner import run as _lib_run
from .schedules import Schedule, cosine, warmup_cosine
from .surfaces import COURSE, START, Quadratic

__all__ = [
    "CheckResult", "library_blocked",
    "one_sgd_step", "stability_limit", "stability_run", "three_steps_sgd_momentum",
    "adam_first_step", "v_constant_gradient", "adam_three_steps", "adamw_step",
    "warmup_cosine_schedule", "scheduler_order", "clip_factor", "global_norm_clipping",
    "fp16_underflow", "loss_scaler_update", "optimizer_state_memory", "training_loop",
    "logistic_hessian", "hessian_condition_numbers",
]

# Hyperparameters fixed by the exercise texts (the notebooks quote the same numbers).
BY_HAND_LR = 0.05          # lesson 03: SGD and framework momentum, three steps by hand
BY_HAND_MOMENTUM = 0.9
ADAM_BY_HAND_LR = 0.1      # lesson 04: Adam, three steps by hand
ADAM_FIRST_GRAD = np.array([20.0, 0.2])
ADAM_FIRST_LR = 0.001
CONSTANT_GRAD, CONSTANT_STEPS = 3.0, 5
CLIP_GRAD, CLIP_MAX_NORM = np.array([30.0, 40.0]), 5.0
FP16_GRADS = [1e-3, 1e-5, 1e-7, 1e-8, 1e-9]
SCHEDULE_06 = dict(peak=3e-4, final=3e-5, warmup_steps=2, total_steps=10)
TICKETS_10 = dict(n=3000, seed=0)   # lesson 10: ticket_triage(**TICKETS_10), training rows

_RTOL, _ATOL = 1e-6, 1e-12


# --------------------------------------------------------------------------------------
# Results and plumbing


class CheckResult:
    """The outcome of one check: ``status`` is "correct", "wrong" or "not attempted".

    True only when correct. The message has already been printed, so displaying the
    result (as the last line of a cell) shows nothing more.
    """

    def __init__(self, exercise: str, status: str, message: str):
        self.exercise = exercise
        self.status = status
        self.message = message

    def __bool__(self) -> bool:
        return self.status == "correct"

    @property
    def passed(self) -> bool:
        return bool(self)

    def _ipython_display_(self):  # the message was printed when the check ran
        pass

    def __repr__(self):
        return f"CheckResult({self.exercise!r}, {self.status!r})"


class _NotAttempted(Exception):
    pass


class _Wrong(Exception):
    pass


class LibraryUsedError(RuntimeError):
    """Raised when exercise code calls the library piece the exercise asks you to write."""


_MISSING = object()


def _caller_namespace() -> dict:
    """The globals of the first frame outside this module (the notebook's namespace)."""
    frame = inspect.currentframe()
    while frame is not None and frame.f_globals.get("__name__") == __name__:
        frame = frame.f_back
    return frame.f_globals if frame is not None else {}


def _check(title: str):
    """Decorator: turn a check body into a learner-facing check (print, return CheckResult)."""

    def wrap(body: Callable[[dict], str]):
        @functools.wraps(body)
        def check(namespace: dict | None = None, *, strict: bool = False, quiet: bool = False):
            ns = _caller_namespace() if namespace is None else namespace
            try:
                detail = body(ns)
                result = CheckResult(title, "correct", f"Correct: {title}." + (f" {detail}" if detail else ""))
            except _NotAttempted as exc:
                result = CheckResult(title, "not attempted", f"Not attempted yet ({title}): {exc}")
            except _Wrong as exc:
                result = CheckResult(title, "wrong", f"Not yet ({title}): {exc}")
            except Exception as exc:   # an answer so unexpected the check can't read it
                result = CheckResult(title, "wrong", f"Not yet ({title}): your answer could not be checked "
                                                     f"({type(exc).__name__}: {exc}).")
            if strict:
                if not result:
                    raise AssertionError(result.message)
                return result
            if not quiet:
                print(result.message)
            return result

        check.__doc__ = (body.__doc__ or "") + (
            "\n\n    Looks the names up in the calling notebook's namespace (or `namespace`). Prints"
            "\n    its verdict and returns a CheckResult; strict=True raises AssertionError instead.")
        return check

    return wrap


def _get(ns: dict, name: str):
    """The learner's value of `name`, or _NotAttempted if it isn't there yet."""
    value = ns.get(name, _MISSING)
    if value is _MISSING:
        raise _NotAttempted(f"`{name}` is not defined. Write your answer in the cell above and run it.")
    if value is None or value is Ellipsis:
        raise _NotAttempted(f"`{name}` is still {value!r}. Replace it with your answer and run the cell.")
    return value


def _callable(ns: dict, name: str):
    fn = _get(ns, name)
    if not callable(fn):
        raise _Wrong(f"`{name}` should be a function; it is a {type(fn).__name__}.")
    return fn


def _call(fn, name: str, case: str, *args, **kwargs):
    """Call the learner's function; NotImplementedError means not attempted, errors are reported."""
    try:
        return fn(*args, **kwargs)
    except NotImplementedError:
        raise _NotAttempted(f"`{name}` still raises NotImplementedError: replace the "
                            "`raise NotImplementedError()` line with your code.") from None
    except LibraryUsedError as exc:
        raise _Wrong(f"case '{case}': `{name}` calls {exc}; the exercise asks you to write "
                     "that part yourself.") from None
    except (_Wrong, _NotAttempted):
        raise
    except Exception as exc:  # the learner's code raised: report it, don't crash the check
        raise _Wrong(f"case '{case}': calling `{name}` raised {type(exc).__name__}: {exc}") from None


def _type_name(value) -> str:
    if isinstance(value, np.ndarray):
        return f"numpy array of shape {value.shape}"
    return type(value).__name__


def _vector(value, name: str, size: int | None = None, shape: tuple | None = None) -> np.ndarray:
    """A float array from a list/tuple/array of numbers, or _Wrong naming what was given."""
    if isinstance(value, (str, bytes, dict, set)) or callable(value):
        raise _Wrong(f"`{name}` should be a list or numpy array of numbers; it is a {_type_name(value)}.")
    try:
        arr = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):
        raise _Wrong(f"`{name}` should be a list or numpy array of numbers; it is a "
                     f"{_type_name(value)} that numpy can't turn into numbers.") from None
    if shape is not None and arr.shape != tuple(shape):
        raise _Wrong(f"`{name}` has shape {arr.shape}; it should have shape {tuple(shape)}.")
    if size is not None and (arr.ndim != 1 or arr.size != size):
        raise _Wrong(f"`{name}` has shape {arr.shape}; it should hold {size} numbers, shape ({size},).")
    if not np.all(np.isfinite(arr)):
        raise _Wrong(f"`{name}` contains inf or nan.")
    return arr


def _scalar(value, name: str) -> float:
    """A plain float from a number (Python, numpy scalar or one-element array)."""
    if isinstance(value, bool) or isinstance(value, (str, bytes)) or callable(value):
        raise _Wrong(f"`{name}` should be a number; it is a {_type_name(value)}.")
    try:
        arr = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):
        raise _Wrong(f"`{name}` should be a number; it is a {_type_name(value)}.") from None
    if arr.size != 1:
        raise _Wrong(f"`{name}` should be one number; it is an array of shape {arr.shape}.")
    x = float(arr.reshape(()))
    if not math.isfinite(x):
        raise _Wrong(f"`{name}` is {x}; it should be a finite number.")
    return x


def _close(a, b, rtol=_RTOL, atol=_ATOL) -> bool:
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    return a.shape == b.shape and bool(np.all(np.isclose(a, b, rtol=rtol, atol=atol)))


def _factor_text(ratio: float) -> str:
    if ratio < 0:
        return f"has the wrong sign (and is off by a factor of {abs(ratio):.3g})" if not np.isclose(ratio, -1) \
            else "has the wrong sign"
    if ratio > 1:
        return f"is too large by a factor of {ratio:.3g}"
    return f"is too small by a factor of {1 / ratio:.3g}"


def _diagnose(given, expected, name: str, labels=None, known=(), rtol=_RTOL, atol=_ATOL, prefix="") -> None:
    """Raise _Wrong describing how `given` differs from `expected`, without showing `expected`.

    known: (candidate, message) pairs for recognised mistakes, tried first.
    """
    given = np.asarray(given, dtype=np.float64)
    expected = np.asarray(expected, dtype=np.float64)
    if _close(given, expected, rtol, atol):
        return
    for candidate, message in known:
        if _close(given, candidate, rtol, atol):
            raise _Wrong(prefix + message)
    if given.shape != expected.shape:
        raise _Wrong(f"{prefix}`{name}` has shape {given.shape}; it should have shape {expected.shape}.")
    if given.ndim == 0:
        if expected != 0 and given != 0:
            raise _Wrong(f"{prefix}`{name}` {_factor_text(float(given / expected))}.")
        raise _Wrong(f"{prefix}`{name}` is {'0 but should not be' if given == 0 else 'too large in size'}.")
    flat_g, flat_e = given.ravel(), expected.ravel()
    if labels is None:
        labels = [f"entry {i}" for i in range(flat_e.size)] if given.ndim == 1 else \
            [f"entry {[int(j) for j in np.unravel_index(i, given.shape)]}" for i in range(flat_e.size)]
    wrong = [i for i in range(flat_e.size) if not np.isclose(flat_g[i], flat_e[i], rtol=rtol, atol=atol)]
    right = [str(labels[i]) for i in range(flat_e.size) if i not in wrong]
    tail = f" ({_join(right)} {'is' if len(right) == 1 else 'are'} right)" if right else ""
    where = "every coordinate" if not right else _join([str(labels[i]) for i in wrong])
    nonzero = [i for i in wrong if flat_e[i] != 0 and flat_g[i] != 0]
    if nonzero and len(nonzero) == len(wrong):
        ratios = flat_g[nonzero] / flat_e[nonzero]
        if np.allclose(ratios, ratios[0], rtol=1e-6):
            raise _Wrong(f"{prefix}`{name}` {_factor_text(float(ratios[0]))} in {where}{tail}.")
    groups: dict[str, list[str]] = {}
    for i in wrong:
        if flat_e[i] == 0:
            desc = "too large in size"
        elif flat_g[i] == 0:
            desc = "0 but should not be"
        elif np.sign(flat_g[i]) != np.sign(flat_e[i]):
            desc = "of the wrong sign"
        else:
            desc = f"too {'large' if abs(flat_g[i]) > abs(flat_e[i]) else 'small'}"
        groups.setdefault(desc, []).append(str(labels[i]))
    parts = [f"{_join(names)} {'is' if len(names) == 1 else 'are'} {desc}" for desc, names in groups.items()]
    raise _Wrong(f"{prefix}`{name}`: {'; '.join(parts)}{tail}.")


def _join(items) -> str:
    items = list(items)
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


def _untouched(before: list, after: list, fn_name: str, case: str, names,
               hint="Did you keep the pre-step weights? Build new arrays (w = w - ...) instead.") -> None:
    """Complain when the learner's function changed its input arrays in place."""
    for b, a, name in zip(before, after, names):
        if not np.array_equal(b, a, equal_nan=True):
            raise _Wrong(f"case '{case}': `{fn_name}` changed the `{name}` passed to it in place (an update "
                         f"such as `x -= ...` or `x *= ...`). {hint}")


# --------------------------------------------------------------------------------------
# Switching library pieces off while learner code runs


def _blocked_clip(*args, **kwargs):
    # runs with clipping.py's globals: reach the exception class through the import system
    raise __import__("lessons_lib.checks", fromlist=["LibraryUsedError"]).LibraryUsedError(
        "the library's clip_by_global_norm")


def _blocked_run(*args, **kwargs):
    raise __import__("lessons_lib.checks", fromlist=["LibraryUsedError"]).LibraryUsedError(
        "the library's run()")


@contextlib.contextmanager
def library_blocked(*names: str):
    """Switch off the library pieces an exercise asks you to write yourself.

    names: any of "optimizers", "schedules", "clip_by_global_norm", "loss_scaler", "run"
    (all but "run" when none is given). Inside the block, calling one raises LibraryUsedError;
    everything is restored on exit.
    """
    names = set(names or ("optimizers", "schedules", "clip_by_global_norm", "loss_scaler"))
    saved_attrs, saved_code = [], []

    def block_method(cls, attr, label):
        saved_attrs.append((cls, attr, cls.__dict__[attr]))

        def blocked(*args, **kwargs):
            raise LibraryUsedError(label)

        setattr(cls, attr, blocked)

    def block_code(fn, replacement):
        # swapping the code object reaches every name the function was imported under
        saved_code.append((fn, fn.__code__))
        fn.__code__ = replacement.__code__

    try:
        if "optimizers" in names:
            for cls in (SGD, EMAMomentum, Adam):
                block_method(cls, "step", f"the library's {cls.__name__}.step")
        if "schedules" in names:
            block_method(Schedule, "__call__", "the library's schedules")
        if "loss_scaler" in names:
            block_method(DynamicLossScaler, "update", "the library's DynamicLossScaler.update")
        if "clip_by_global_norm" in names:
            block_code(_lib_clip, _blocked_clip)
        if "run" in names:
            block_code(_lib_run, _blocked_run)
        yield
    finally:
        for cls, attr, value in reversed(saved_attrs):
            setattr(cls, attr, value)
        for fn, code in reversed(saved_code):
            fn.__code__ = code


def _call_blocked(fn, name, case, blocked, *args, **kwargs):
    """Call the learner's function with the named library pieces switched off."""
    with library_blocked(*blocked):
        return _call(fn, name, case, *args, **kwargs)


# --------------------------------------------------------------------------------------
# Lesson 01


@_check("one SGD step at lr 0.01")
def one_sgd_step(ns):
    """`w_next`: [a, b] after one SGD step at lr 0.01 from [1, 1]; `loss_next`: the loss there."""
    g = COURSE.grad(START)
    expected = START - 0.01 * g
    w = _vector(_get(ns, "w_next"), "w_next", size=2)
    _diagnose(w, expected, "w_next", labels=("a", "b"), known=[
        (START + 0.01 * g, "`w_next` moved uphill: an SGD step subtracts lr * gradient."),
        (0.01 * g, "`w_next` holds the step lr * gradient; it should be the position after the step."),
        (-0.01 * g, "`w_next` holds minus the step; it should be the position after the step, w - lr * gradient."),
        (START - 0.018 * g, "that is the step at lr 0.018 from the lesson; this exercise uses lr 0.01."),
        (START - g, "the learning rate is missing: the gradient must be multiplied by lr = 0.01."),
        (START - 0.01 * START, "the step used w instead of the gradient [100 a, b]."),
    ])
    loss = _scalar(_get(ns, "loss_next"), "loss_next")
    if not _close(loss, COURSE.loss(expected)):
        if _close(loss, COURSE.loss(START)):
            raise _Wrong("`loss_next` is the loss at the start; evaluate L at `w_next`.")
        if _close(loss, 0.5 * float(np.sum(expected**2))):
            raise _Wrong("`loss_next` leaves out the curvatures: L(a, b) = 0.5 * (100 a^2 + b^2).")
        if _close(loss, float(np.sum(COURSE.c * expected**2))):
            raise _Wrong("`loss_next` is off by a factor of 2: L has a 0.5 in front.")
        _diagnose(loss, COURSE.loss(expected), "loss_next")
    return "Nothing overshoots at this rate; notice how little b moved."


# --------------------------------------------------------------------------------------
# Lesson 02


@_check("the stability limit of SGD")
def stability_limit(ns):
    """`lr_limit`: the largest stable lr; `steep_factor_at_limit`: 1 - lr*c of the steep coordinate there."""
    c_max, c_min = max(COURSE.curvatures), min(COURSE.curvatures)
    expected = 2.0 / c_max
    lr = _scalar(_get(ns, "lr_limit"), "lr_limit")
    _diagnose(lr, expected, "lr_limit", known=[
        (1.0 / c_max, "at that rate the steep coordinate's multiplier 1 - lr*100 is 0 (it lands on the "
                      "optimum in one step), yet somewhat larger rates still converge. Where does the multiplier "
                      "leave the stable range?"),
        (2.0 / c_min, "that limit comes from the shallow curvature. Every coordinate must stay stable, so the "
                      "steepest curvature sets the limit."),
        (1.0 / c_min, "that comes from the shallow curvature, and from a multiplier of 0 rather than -1."),
        (2.0 / (c_max + c_min), "that is the best fixed rate, which balances the two coordinates; the question "
                                "asks for the rate beyond which SGD stops converging."),
    ])
    factor = _scalar(_get(ns, "steep_factor_at_limit"), "steep_factor_at_limit")
    _diagnose(factor, 1 - expected * c_max, "steep_factor_at_limit", known=[
        (-(1 - expected * c_max), "`steep_factor_at_limit` has the wrong sign: it is 1 - lr * 100 at lr_limit."),
        (1 - expected * c_min, "`steep_factor_at_limit` used the shallow curvature; use the steep one (100)."),
    ])
    return "Just below this rate the steep coordinate still flips sign every step but shrinks."


@_check("the stability limit confirmed by a run")
def stability_run(ns):
    """`sgd_final_loss(lr, steps)` (your own loop), then `loss_below` and `loss_above`."""
    fn = _callable(ns, "sgd_final_loss")
    cases = [("zero steps (the start loss)", 0.01, 0), ("one step at lr 0.01", 0.01, 1),
             ("8 steps at lr 0.018", 0.018, 8), ("8 steps at lr 0.021 (diverging)", 0.021, 8)]
    for case, lr, steps in cases:
        expected = float(_lib_run(SGD(lr), steps).final_loss)
        got = _call_blocked(fn, "sgd_final_loss", case, ("optimizers", "run"), lr, steps)
        got = _scalar(got, f"sgd_final_loss({lr}, {steps})")
        if _close(got, expected, rtol=1e-9):
            continue
        hints = []
        for off, text in ((1, "one step too many"), (-1, "one step too few")):
            if steps + off >= 0 and _close(got, _lib_run(SGD(lr), steps + off).final_loss, rtol=1e-9):
                hints.append(f"your loop takes {text}")
        if steps > 0:
            w_up = START.copy()
            for _ in range(steps):
                w_up = w_up + lr * COURSE.grad(w_up)
            if _close(got, COURSE.loss(w_up), rtol=1e-9):
                hints.append("the steps go uphill: subtract lr * gradient")
        msg = f"case '{case}': `sgd_final_loss` returned a different loss"
        raise _Wrong(msg + (f" ({'; '.join(hints)})." if hints else "; start from [1, 1], take `steps` "
                                                                    "steps w <- w - lr * grad, return L(w)."))
    start = COURSE.loss(START)
    below = _scalar(_get(ns, "loss_below"), "loss_below")
    above = _get(ns, "loss_above")
    try:
        above = float(np.asarray(above, dtype=np.float64).reshape(()))   # inf is a fair answer here
    except (TypeError, ValueError):
        above = _scalar(above, "loss_above")
    if not below < start:
        raise _Wrong("`loss_below` is not below the start loss: just under the limit SGD should still converge. "
                     "Is `lr_limit` right?")
    if not above > start:
        raise _Wrong("`loss_above` did not grow: just above the limit SGD should diverge. Is `lr_limit` the limit?")
    return "Below the limit the loss shrinks; just above it, it grows without bound."


# --------------------------------------------------------------------------------------
# Lesson 03


def _learner_surface(ns, curv_name, start_name):
    curv = _vector(_get(ns, curv_name), curv_name)
    if curv.ndim != 1 or curv.size < 2:
        raise _Wrong(f"`{curv_name}` should be a list of 2 or more curvatures, such as [c1, c2]; "
                     f"it has shape {curv.shape}.")
    if np.any(curv <= 0):
        raise _Wrong(f"`{curv_name}` should hold positive curvatures (a bowl with its minimum at 0).")
    if curv.size == 2 and np.allclose(sorted(curv), sorted(COURSE.curvatures)):
        raise _Wrong(f"`{curv_name}` is the course surface; choose a second surface of your own.")
    start = _vector(_get(ns, start_name), start_name)
    if start.shape != curv.shape:
        raise _Wrong(f"`{start_name}` has shape {start.shape}; it needs one coordinate per curvature, "
                     f"shape {curv.shape}.")
    if np.all(start == 0):
        raise _Wrong(f"`{start_name}` is the optimum, so nothing would move; start somewhere else.")
    return Quadratic(curv), start


def _path(optimizer, surface, start, steps=3):
    w, state, out = start.copy(), optimizer.init(start), []
    with np.errstate(over="ignore", invalid="ignore"):
        for _ in range(steps):
            w, state = optimizer.step(w, surface.grad(w), state)
            out.append(w)
    return np.array(out)


def _compare_path(given, expected, name, start, known=()):
    """Compare a (3, d) path step by step, naming the first wrong step."""
    d = expected.shape[1]
    arr = _vector(given, name)
    if arr.shape == (expected.shape[0] + 1, d) and np.allclose(arr[0], start):
        raise _Wrong(f"`{name}` has {arr.shape[0]} rows starting with the start; keep only the positions "
                     "after steps 1, 2 and 3.")
    if arr.shape != expected.shape:
        raise _Wrong(f"`{name}` has shape {arr.shape}; it should have shape {expected.shape}: one row per step "
                     "(after steps 1, 2, 3), one column per coordinate.")
    if _close(arr, expected):
        return
    for candidate, message in known:
        if candidate.shape == arr.shape and np.all(np.isfinite(candidate)) and _close(arr, candidate):
            raise _Wrong(message)
    for k in range(expected.shape[0]):
        if not _close(arr[k], expected[k]):
            ok = "" if k == 0 else f"step{'s' if k > 1 else ''} {', '.join(str(i + 1) for i in range(k))} "\
                                   f"{'are' if k > 1 else 'is'} right, "
            _diagnose(arr[k], expected[k], f"{name}[{k}]", labels=[f"coordinate {i}" for i in range(d)],
                      prefix=f"`{name}`: {ok}step {k + 1} is wrong. ")


@_check("three steps by hand: SGD and framework momentum")
def three_steps_sgd_momentum(ns):
    """`my_curvatures`, `my_start`; `sgd_path` and `momentum_path`, each (3, d)."""
    surface, start = _learner_surface(ns, "my_curvatures", "my_start")
    lr, mu = BY_HAND_LR, BY_HAND_MOMENTUM
    sgd = _path(SGD(lr), surface, start)
    uphill = [start * (1 + lr * surface.c) ** k for k in (1, 2, 3)]
    repeated = [start - k * lr * surface.grad(start) for k in (1, 2, 3)]
    _compare_path(_get(ns, "sgd_path"), sgd, "sgd_path", start, known=[
        (np.array(uphill), "`sgd_path` goes uphill: subtract lr * gradient."),
        (np.array(repeated), "`sgd_path` reuses the first gradient: recompute the gradient at the new "
                             "position on every step."),
    ])
    heavy = _path(SGD(lr, momentum=mu), surface, start)
    _compare_path(_get(ns, "momentum_path"), heavy, "momentum_path", start, known=[
        (_path(EMAMomentum(lr, beta=mu), surface, start),
         "`momentum_path` follows the EMA convention m = mu*m + (1 - mu)*g. The framework convention "
         "adds the whole gradient: v = mu*v + g, then w <- w - lr*v."),
        (_path(SGD(lr, momentum=mu, nesterov=True), surface, start),
         "`momentum_path` is Nesterov momentum; this exercise asks for plain (heavy-ball) momentum."),
        (sgd, "`momentum_path` equals plain SGD: the velocity must carry over from one step to the next."),
        (_path(SGD(lr, momentum=mu, dampening=mu), surface, start),
         "`momentum_path` dampens the gradient by (1 - mu); the framework default has no dampening."),
    ])
    return "Your numbers agree with the library's SGD and SGD(momentum=0.9) on your surface."


# --------------------------------------------------------------------------------------
# Lesson 04


@_check("Adam's first bias-corrected step")
def adam_first_step(ns):
    """`first_step`: the amount Adam subtracts from w on step 1 for g = [20, 0.2], lr 0.001."""
    g, lr = ADAM_FIRST_GRAD, ADAM_FIRST_LR
    w0 = np.zeros(2)
    opt = Adam(lr=lr)
    expected = w0 - opt.step(w0, g, opt.init(w0))[0]
    b1, b2, eps = 0.9, 0.999, 1e-8
    m, v = (1 - b1) * g, (1 - b2) * g * g
    given = _vector(_get(ns, "first_step"), "first_step", size=2)
    _diagnose(given, expected, "first_step", labels=("coordinate 0 (g=20)", "coordinate 1 (g=0.2)"), rtol=1e-5, known=[
        (-expected, "`first_step` has the wrong sign: it is the amount subtracted (w_new = w - first_step), "
                    "so it points the way the gradient does."),
        (lr * m / (np.sqrt(v) + eps), "`first_step` is off by a factor of about 3.16: that is the step "
                                      "without bias correction. Divide m by (1 - beta1**t) and v by (1 - beta2**t)."),
        (lr * (m / (1 - b1)) / (np.sqrt(v) + eps), "only m is bias-corrected; v needs its correction (1 - beta2**t) too."),
        (lr * m / (np.sqrt(v / (1 - b2)) + eps), "only v is bias-corrected; m needs its correction (1 - beta1**t) too."),
        (lr * (m / (1 - b1)) / (v / (1 - b2) + eps), "the denominator is v_hat; it should be its square root."),
        (lr * g, "that is an SGD step (lr * g); Adam divides m_hat by sqrt(v_hat)."),
    ])
    return "One observation of each gradient: both coordinates move by one learning rate."


@_check("v for a constant gradient")
def v_constant_gradient(ns):
    """`v_hat_constant`: bias-corrected v after 5 gradients of 3.0; `variance_constant`: their variance."""
    b2, t, g = 0.999, CONSTANT_STEPS, CONSTANT_GRAD
    v = 0.0
    for _ in range(t):
        v = b2 * v + (1 - b2) * g * g
    expected = v / (1 - b2**t)
    vh = _scalar(_get(ns, "v_hat_constant"), "v_hat_constant")
    _diagnose(vh, expected, "v_hat_constant", known=[
        (0.0, "`v_hat_constant` is 0, the variance of a constant. v is not centred: it averages g**2, "
              "not (g - mean)**2."),
        (g, "`v_hat_constant` looks like an average of g; v averages the squared gradient."),
        (v, "`v_hat_constant` is v without bias correction: divide by 1 - beta2**t."),
        ((1 - b2) * g * g / (1 - b2**t), "`v_hat_constant` used only the last gradient; v accumulates "
                                          "every step: v <- beta2*v + (1 - beta2)*g**2."),
        (np.sqrt(expected), "`v_hat_constant` is a root mean square; v itself is the mean of g**2 (no root)."),
    ])
    var = _scalar(_get(ns, "variance_constant"), "variance_constant")
    if not _close(var, 0.0, atol=1e-12):
        raise _Wrong("`variance_constant` is not the variance of five equal gradients (np.var subtracts the "
                     "mean before squaring).")
    return "Same gradient every step: v_hat equals g**2 while the variance is zero."


@_check("three steps by hand: Adam")
def adam_three_steps(ns):
    """`adam_curvatures`, `adam_start`; `adam_path` (3, d) with Adam(lr=0.1) defaults."""
    surface, start = _learner_surface(ns, "adam_curvatures", "adam_start")
    lr = ADAM_BY_HAND_LR
    expected = _path(Adam(lr=lr), surface, start)
    _compare_path(_get(ns, "adam_path"), expected, "adam_path", start, known=[
        (_path(Adam(lr=lr, bias_correction=False), surface, start),
         "`adam_path` leaves out bias correction: m_hat = m / (1 - beta1**t), v_hat = v / (1 - beta2**t), "
         "with t counting from 1."),
        (_path(SGD(lr), surface, start), "`adam_path` is plain SGD; Adam steps by lr * m_hat / (sqrt(v_hat) + eps)."),
    ])
    return "Your numbers agree with the library's Adam on your surface."


# --------------------------------------------------------------------------------------
# Lesson 05


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


@_check("an AdamW step from the equations")
def adamw_step(ns):
    """`adamw_step(w, g, m, v, t, lr, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.01)` -> (w, m, v)."""
    fn = _callable(ns, "adamw_step")
    for case, args, kwargs in _adamw_cases():
        w, g, m, v, t, lr = args
        betas, eps, wd = kwargs.get("betas", (0.9, 0.999)), kwargs.get("eps", 1e-8), kwargs["weight_decay"]
        ref = _adamw_reference(w, g, m, v, t, lr, betas, eps, wd)
        call_kwargs = dict(weight_decay=wd)
        if "betas" in kwargs:
            call_kwargs.update(betas=betas, eps=eps)
        kept = [a.copy() for a in (w, g, m, v)]
        out = _call_blocked(fn, "adamw_step", case, ("optimizers",), *kept, t, lr, **call_kwargs)
        _untouched([w, g, m, v], kept, "adamw_step", case, ("w", "g", "m", "v"))
        if not isinstance(out, (tuple, list)) or len(out) != 3:
            raise _Wrong(f"case '{case}': `adamw_step` should return a tuple (w_new, m_new, v_new); "
                         f"it returned a {_type_name(out)}" + (f" of length {len(out)}." if isinstance(out, (tuple, list)) else "."))
        got = [_vector(o, f"{part} returned by adamw_step", shape=w.shape) for o, part in zip(out, ("w_new", "m_new", "v_new"))]
        if all(_close(a, b, rtol=1e-9) for a, b in zip(got, ref)):
            continue
        for variant, message in _adamw_variants(w, g, m, v, t, lr, betas, eps, wd):
            if all(_close(a, b, rtol=1e-9) for a, b in zip(got, variant)):
                raise _Wrong(f"case '{case}': {message}")
        for part, a, b in zip(("m_new", "v_new", "w_new"), (got[1], got[2], got[0]), (ref[1], ref[2], ref[0])):
            _diagnose(a, b, part, rtol=1e-9, prefix=f"case '{case}': ")
    return "First step, bias correction, decoupled decay on the pre-step weights: all match the library."


# --------------------------------------------------------------------------------------
# Lesson 06


@_check("the warmup-cosine schedule")
def warmup_cosine_schedule(ns):
    """`warmup_cosine_lr(k, peak, final, warmup_steps, total_steps)` -> the lr of the k-th update."""
    fn = _callable(ns, "warmup_cosine_lr")
    s = SCHEDULE_06
    cases = [
        ("first warmup step (k=0)", s, [0]),
        ("warmup boundary (last warmup step and first cosine step)", dict(peak=1e-3, final=1e-5, warmup_steps=4,
                                                                          total_steps=20), [3, 4]),
        ("last step lands on final", s, [9]),
        ("middle of the cosine", s, [5, 6]),
        ("no warmup (warmup_steps=0)", dict(peak=0.1, final=0.0, warmup_steps=0, total_steps=5), [0, 2, 4]),
        ("a long schedule", dict(peak=6e-4, final=6e-5, warmup_steps=100, total_steps=1000),
         [0, 49, 99, 100, 101, 500, 998, 999]),
    ]
    for case, p, steps in cases:
        lib = warmup_cosine(**p)
        expected = [lib(k) for k in steps]
        got = [_scalar(_call_blocked(fn, "warmup_cosine_lr", case, ("schedules",), k, p["peak"], p["final"],
                                     p["warmup_steps"], p["total_steps"]), f"warmup_cosine_lr({k}, ...)")
               for k in steps]
        if _close(got, expected, rtol=1e-9):
            continue
        k_bad = next(k for k, a, b in zip(steps, got, expected) if not _close(a, b, rtol=1e-9))
        a = got[steps.index(k_bad)]
        W, T, peak, final = p["warmup_steps"], p["total_steps"], p["peak"], p["final"]
        if k_bad < W and _close(a, peak * k_bad / W):
            raise _Wrong(f"case '{case}': step {k_bad} follows k / warmup_steps; the k-th update uses "
                         "(k + 1) / warmup_steps of the peak, so the very first update already moves.")
        prog = (k_bad - W) / max(T - W, 1)
        if k_bad >= W and _close(a, final + (peak - final) * 0.5 * (1 + math.cos(math.pi * prog))):
            raise _Wrong(f"case '{case}': the cosine progress divides by total_steps - warmup_steps, so the "
                         "last step misses `final`; divide by (total_steps - warmup_steps - 1).")
        prog = (k_bad - W) / max(T - W - 1, 1)
        if k_bad >= W and _close(a, peak * 0.5 * (1 + math.cos(math.pi * prog))):
            raise _Wrong(f"case '{case}': the cosine decays to 0 instead of to `final`.")
        if k_bad >= W and T - W - 1 > 0 and _close(a, final + (peak - final) * 0.5 * (1 - math.cos(math.pi * prog))):
            raise _Wrong(f"case '{case}': the cosine part rises instead of falling (check the sign of the cosine).")
        _diagnose(a, expected[steps.index(k_bad)], f"warmup_cosine_lr({k_bad}, ...)", rtol=1e-9,
                  prefix=f"case '{case}': ")
    return "Warmup boundary, cosine and the final step all match the library."


@_check("which lr the first update uses")
def scheduler_order(ns):
    """`first_lr_scheduler_after` and `first_lr_scheduler_before` for the 10-step schedule."""
    lib = warmup_cosine(**SCHEDULE_06)
    after = _scalar(_get(ns, "first_lr_scheduler_after"), "first_lr_scheduler_after")
    before = _scalar(_get(ns, "first_lr_scheduler_before"), "first_lr_scheduler_before")
    if _close(after, lib(1)) and _close(before, lib(0)):
        raise _Wrong("the two answers are swapped: stepping the scheduler first moves it on before the "
                     "optimizer ever uses the first value.")
    _diagnose(after, lib(0), "first_lr_scheduler_after", rtol=1e-9)
    _diagnose(before, lib(1), "first_lr_scheduler_before", rtol=1e-9, known=[
        (lib(0), "`first_lr_scheduler_before` equals the correct-order value; stepping the scheduler "
                 "before the optimizer skips a value."),
    ])
    return "Stepping the scheduler first skips the schedule's first value."


# --------------------------------------------------------------------------------------
# Lesson 07


@_check("the clipping factor")
def clip_factor(ns):
    """`clip_factor` for norm 50 at max_norm 5; `g_clipped` for g = [30, 40]; `angle_change` in degrees."""
    g, max_norm = CLIP_GRAD, CLIP_MAX_NORM
    norm = float(np.linalg.norm(g))
    expected = max_norm / norm
    f = _scalar(_get(ns, "clip_factor"), "clip_factor")
    _diagnose(f, expected, "clip_factor", rtol=1e-6, known=[
        (norm / max_norm, "`clip_factor` is inverted: clipping multiplies by threshold / norm, a number below 1."),
        (1 - expected, "`clip_factor` is 1 minus the factor; clipping multiplies the gradient by threshold / norm."),
        (norm - max_norm, "clipping multiplies the gradient by a factor; it doesn't subtract."),
    ])
    gc = _vector(_get(ns, "g_clipped"), "g_clipped", size=2)
    _diagnose(gc, expected * g, "g_clipped", labels=("first", "second"), rtol=1e-6, known=[
        (np.clip(g, -max_norm, max_norm), "`g_clipped` clamps each coordinate (value clipping); global-norm "
                                          "clipping scales the whole vector by one factor."),
        (g / norm, "`g_clipped` is the unit vector; scale so the norm equals max_norm instead."),
    ])
    angle = _scalar(_get(ns, "angle_change"), "angle_change")
    if abs(angle) > 1e-4:
        raise _Wrong("`angle_change` is not what a single positive scale factor does to a direction; "
                     "compute the angle between g and g_clipped (lessons_lib.clipping.angle_degrees).")
    return "One factor below 1 for every coordinate: the length shrinks, the direction stays."


def _as_list_of_arrays(value, name, like):
    if not isinstance(value, (list, tuple)):
        raise _Wrong(f"the first thing `{name}` returns should be a list of arrays (one per input array); "
                     f"it is a {_type_name(value)}.")
    if len(value) != len(like):
        raise _Wrong(f"`{name}` returned {len(value)} arrays for {len(like)} inputs.")
    return [_vector(v, f"clipped array {i}", shape=l.shape) for i, (v, l) in enumerate(zip(value, like))]


@_check("global-norm clipping")
def global_norm_clipping(ns):
    """`clip_global_norm(grads, max_norm, eps=1e-6)` -> (list of clipped arrays, total norm before clipping)."""
    fn = _callable(ns, "clip_global_norm")
    cases = [
        ("below the threshold: unchanged", [np.array([0.3, 0.4])], 5.0),
        ("above the threshold: scaled to max_norm", [np.array([30.0, 40.0])], 5.0),
        ("one norm over all the arrays", [np.array([3.0, 0.0]), np.array([[0.0, 4.0], [0.0, 0.0]]), np.array([12.0])], 6.5),
        ("a tiny gradient: eps in the coefficient", [np.array([1e-3, -2e-3]), np.array([5e-4])], 1e-4),
    ]
    for case, grads, max_norm in cases:
        flat = np.concatenate([g.ravel() for g in grads])
        _, norm = _lib_clip(flat, max_norm)
        coef = min(1.0, max_norm / (norm + 1e-6))
        expected = [g * coef for g in grads]
        kept = [g.copy() for g in grads]
        out = _call_blocked(fn, "clip_global_norm", case, ("clip_by_global_norm",), kept, max_norm)
        _untouched(grads, kept, "clip_global_norm", case, [f"grads[{i}]" for i in range(len(grads))],
                   hint="Return new arrays (g * coef) and leave the caller's gradients as they were.")
        if not isinstance(out, (tuple, list)) or len(out) != 2:
            raise _Wrong(f"case '{case}': `clip_global_norm` should return (clipped_list, total_norm); "
                         f"it returned a {_type_name(out)}.")
        clipped = _as_list_of_arrays(out[0], "clip_global_norm", grads)
        total = _scalar(out[1], "the total norm returned by clip_global_norm")
        if all(_close(a, b, rtol=1e-6) for a, b in zip(clipped, expected)):
            if not _close(total, norm, rtol=1e-9):
                if _close(total, float(np.sqrt(sum(np.sum(c * c) for c in expected)))):
                    raise _Wrong(f"case '{case}': the returned norm is the norm after clipping; return the "
                                 "norm before clipping (the number worth logging).")
                _diagnose(total, norm, "total norm", prefix=f"case '{case}': ")
            continue
        per_array = [g * min(1.0, max_norm / (np.linalg.norm(g) + 1e-6)) for g in grads]
        if len(grads) > 1 and all(_close(a, b, rtol=1e-6) for a, b in zip(clipped, per_array)):
            raise _Wrong(f"case '{case}': each array was clipped by its own norm; global-norm clipping takes "
                         "one norm over all arrays together and scales every array by the same factor.")
        unclamped = [g * (max_norm / (norm + 1e-6)) for g in grads]
        if coef == 1.0 and all(_close(a, b, rtol=1e-6) for a, b in zip(clipped, unclamped)):
            raise _Wrong(f"case '{case}': a gradient already below max_norm was scaled up; the factor is "
                         "capped at 1.")
        no_eps = [g * min(1.0, max_norm / norm) for g in grads]
        if all(_close(a, b, rtol=1e-6) for a, b in zip(clipped, no_eps)):
            raise _Wrong(f"case '{case}': the factor leaves out eps; use max_norm / (norm + eps), capped at 1, "
                         "which also keeps a zero gradient from dividing by zero.")
        if all(_close(a, np.clip(g, -max_norm, max_norm)) for a, g in zip(clipped, grads)):
            raise _Wrong(f"case '{case}': the arrays were clamped coordinate by coordinate; scale them instead.")
        for i, (a, b) in enumerate(zip(clipped, expected)):
            _diagnose(a, b, f"clipped array {i}", rtol=1e-6, prefix=f"case '{case}': ")
    case = "an inf gradient must raise"
    try:
        with library_blocked("clip_by_global_norm"), np.errstate(invalid="ignore", over="ignore"):
            fn([np.array([1.0, np.inf]), np.array([2.0])], 1.0)
    except NotImplementedError:
        raise _NotAttempted("`clip_global_norm` still raises NotImplementedError.") from None
    except LibraryUsedError as exc:
        raise _Wrong(f"case '{case}': `clip_global_norm` calls {exc}; write it yourself.") from None
    except Exception:
        pass   # any error stops the step, which is what matters
    else:
        raise _Wrong(f"case '{case}': a gradient containing inf went through without an error. A non-finite "
                     "norm must raise (for example ValueError), not pass into the optimizer's state.")
    return "Below/above the threshold, one norm across arrays, and the inf case all behave."


# --------------------------------------------------------------------------------------
# Lesson 08


@_check("which gradients underflow in fp16, and the scale that saves them")
def fp16_underflow(ns):
    """`underflows`: 5 booleans for FP16_GRADS; `scale_needed`: the smallest power of two for 1e-9."""
    expected = [bool(to_fp16(x) == 0) for x in FP16_GRADS]
    flags = _get(ns, "underflows")
    if isinstance(flags, np.ndarray):
        flags = flags.tolist()
    if not isinstance(flags, (list, tuple)) or len(flags) != len(FP16_GRADS):
        raise _Wrong(f"`underflows` should be a list of {len(FP16_GRADS)} True/False values, one per gradient.")
    if not all(isinstance(f, (bool, np.bool_)) for f in flags):
        raise _Wrong("`underflows` should hold True/False values.")
    wrong = [x for x, f, e in zip(FP16_GRADS, flags, expected) if bool(f) != e]
    if wrong:
        notes = []
        for x in wrong:
            stored = float(to_fp16(x))
            notes.append(f"{x:g}" + (" (float16 keeps it as a subnormal: few digits, but not zero)"
                                     if stored != 0 and stored < FP16_SMALLEST_NORMAL else ""))
        raise _Wrong(f"`underflows` is wrong for {', '.join(notes)}.")
    scale = _scalar(_get(ns, "scale_needed"), "scale_needed")
    target = FP16_GRADS[-1]
    k = math.ceil(math.log2(FP16_SMALLEST_NORMAL / target))
    best = 2.0**k
    if scale <= 0 or not float(np.log2(scale)).is_integer():
        raise _Wrong("`scale_needed` should be a power of two (scaling by a power of two is exact in floating point).")
    if scale < best:
        raise _Wrong(f"`scale_needed` is too small: {target:g} times it is still below float16's smallest normal "
                     "number, so it is stored as a subnormal with few digits (or as zero).")
    if scale > best:
        raise _Wrong("`scale_needed` works but is not the smallest power of two that does; a larger scale "
                     "brings large gradients closer to overflow (65504).")
    return "The smallest power of two that lifts 1e-9 into float16's normal range."


@_check("the dynamic loss-scaler update")
def loss_scaler_update(ns):
    """`scaler_update(scale, growth_tracker, found_inf, growth_factor=2.0, backoff_factor=0.5,
    growth_interval=2000)` -> (new_scale, new_growth_tracker)."""
    fn = _callable(ns, "scaler_update")
    single = [
        ("inf step: back off and reset the counter", (65536.0, 5, True), {}),
        ("clean step: count it, keep the scale", (65536.0, 5, False), {}),
        ("clean step that reaches growth_interval: grow and reset", (1024.0, 1999, False), {}),
        ("clean step one before growth_interval", (1024.0, 1998, False), {}),
        ("inf step at growth_interval - 1", (1024.0, 1999, True), {}),
        ("other factors and interval", (8.0, 2, False), dict(growth_factor=4.0, backoff_factor=0.25, growth_interval=3)),
        ("other factors, inf step", (8.0, 2, True), dict(growth_factor=4.0, backoff_factor=0.25, growth_interval=3)),
    ]
    for case, (scale, tracker, found), kw in single:
        lib = DynamicLossScaler(init_scale=scale, **kw)
        ref = lib.update(ScalerState(scale=scale, growth_tracker=tracker), found)
        out = _call_blocked(fn, "scaler_update", case, ("loss_scaler",), scale, tracker, found, **kw)
        _check_scaler_out(out, ref, case, scale, tracker, found, kw)
    case = "a run of 12 steps with an inf at step 5 (growth_interval 3)"
    lib = DynamicLossScaler(init_scale=256.0, growth_interval=3)
    st_ref = lib.init()
    scale, tracker = 256.0, 0
    for step in range(12):
        found = step == 5
        st_ref_next = lib.update(st_ref, found)
        out = _call_blocked(fn, "scaler_update", case, ("loss_scaler",), scale, tracker, found, growth_interval=3)
        _check_scaler_out(out, st_ref_next, f"{case}, step {step}", scale, tracker, found, dict(growth_interval=3))
        scale, tracker = float(out[0]), int(out[1])
        st_ref = st_ref_next
    return "Back-off on inf, counting clean steps, growth at the interval: all match GradScaler's rule."


def _check_scaler_out(out, ref, case, scale, tracker, found, kw):
    if not isinstance(out, (tuple, list)) or len(out) != 2:
        raise _Wrong(f"case '{case}': `scaler_update` should return (new_scale, new_growth_tracker); "
                     f"it returned a {_type_name(out)}.")
    new_scale = _scalar(out[0], "new_scale")
    new_tracker = _scalar(out[1], "new_growth_tracker")
    interval = kw.get("growth_interval", 2000)
    gf, bf = kw.get("growth_factor", 2.0), kw.get("backoff_factor", 0.5)
    if _close(new_scale, ref.scale) and new_tracker == ref.growth_tracker:
        return
    if found:
        if _close(new_scale, scale * bf) and new_tracker != 0:
            raise _Wrong(f"case '{case}': the scale backed off but the clean-step counter was not reset to 0.")
        if _close(new_scale, scale):
            raise _Wrong(f"case '{case}': an inf/nan step must shrink the scale by backoff_factor.")
        if _close(new_scale, scale / bf):
            raise _Wrong(f"case '{case}': the scale was divided by backoff_factor; multiply by it (it is below 1).")
    else:
        if tracker + 1 >= interval:
            if _close(new_scale, scale * gf) and new_tracker != 0:
                raise _Wrong(f"case '{case}': the scale grew but the counter was not reset to 0 afterwards.")
            if _close(new_scale, scale):
                raise _Wrong(f"case '{case}': this clean step brings the counter to growth_interval, so the scale "
                             "should grow by growth_factor.")
        else:
            if not _close(new_scale, scale) and tracker + 2 >= interval:
                raise _Wrong(f"case '{case}': the scale grew one step early; it grows when the counter reaches "
                             "growth_interval after counting this step.")
            if not _close(new_scale, scale):
                raise _Wrong(f"case '{case}': a clean step below the interval should leave the scale unchanged.")
            if new_tracker == tracker:
                raise _Wrong(f"case '{case}': a clean step should add one to the counter.")
    if not _close(new_scale, ref.scale):
        _diagnose(new_scale, ref.scale, "new_scale", prefix=f"case '{case}': ")
    raise _Wrong(f"case '{case}': the new growth_tracker is wrong.")


# --------------------------------------------------------------------------------------
# Lesson 09


@_check("optimizer-state memory")
def optimizer_state_memory(ns):
    """`optimizer_state_gb(optimizer, n_params, bytes_per_value=4)` for "SGD", "SGD + momentum", "Adam", "AdamW"."""
    fn = _callable(ns, "optimizer_state_gb")
    for opt in ("SGD", "SGD + momentum", "Adam", "AdamW"):
        for n, b in ((7e9, 4), (1.3e9, 4), (1.3e9, 2)):
            case = f"{opt}, {n:g} parameters, {b} bytes per value"
            got = _scalar(_call(fn, "optimizer_state_gb", case, opt, n, b), f"optimizer_state_gb({opt!r}, ...)")
            expected = _lib_state_gb(opt, n, b)
            if _close(got, expected, rtol=1e-9, atol=1e-12):
                continue
            buffers = {"SGD": 0, "SGD + momentum": 1, "Adam": 2, "AdamW": 2}[opt]
            if _close(got, n * (buffers + 2) * b / 1e9):
                raise _Wrong(f"case '{case}': this counts the weights and gradients too; the question asks for "
                             "the optimizer's state buffers only.")
            if _close(got, n * buffers * b / 2**30):
                raise _Wrong(f"case '{case}': that is GiB (2**30 bytes); the course uses GB = 1e9 bytes.")
            if expected > 0 and _close(got, n * b / 1e9):
                raise _Wrong(f"case '{case}': one buffer's worth; count every buffer the optimizer keeps.")
            _diagnose(got, expected, f"optimizer_state_gb({opt!r}, {n:g}, {b})", prefix=f"case '{case}': ")
    return "No state for SGD, one buffer for momentum, two (m and v) for Adam and AdamW."


@_check("the framework-style training loop")
def training_loop(ns):
    """`train(steps, peak_lr=0.08, max_norm=20.0, weight_decay=0.01)` -> (final_w, clipped_steps)."""
    fn = _callable(ns, "train")
    cases = [("60 steps, the lesson's settings", 60, {}),
             ("25 steps, clipping at 50", 25, dict(max_norm=50.0)),
             ("40 steps, lr 0.02, no clipping needed", 40, dict(peak_lr=0.02, max_norm=1000.0))]
    for case, steps, kw in cases:
        peak, max_norm, wd = kw.get("peak_lr", 0.08), kw.get("max_norm", 20.0), kw.get("weight_decay", 0.01)
        ref = _lib_run(AdamW(lr=peak, weight_decay=wd), steps, schedule=cosine(peak, steps), max_norm=max_norm)
        out = _call_blocked(fn, "train", case, ("run",), steps, **kw)
        if not isinstance(out, (tuple, list)) or len(out) != 2:
            raise _Wrong(f"case '{case}': `train` should return (final_w, clipped_steps); it returned a {_type_name(out)}.")
        w = _vector(out[0], "final_w", size=2)
        n_clipped = _scalar(out[1], "clipped_steps")
        if _close(w, ref.final_params, rtol=1e-9) and n_clipped == int(ref.clipped.sum()):
            continue
        if _close(w, ref.final_params, rtol=1e-9):
            raise _Wrong(f"case '{case}': the weights are right but the number of clipped steps is not; count "
                         "the steps whose pre-clip norm exceeded max_norm.")
        ahead = Schedule("ahead", lambda k: cosine(peak, steps)(k + 1))
        alt = _lib_run(AdamW(lr=peak, weight_decay=wd), steps, schedule=ahead, max_norm=max_norm)
        if _close(w, alt.final_params, rtol=1e-9):
            raise _Wrong(f"case '{case}': the lr runs one step ahead of the schedule (the scheduler was stepped "
                         "before the optimizer): step k should use lr(k), starting from lr(0).")
        alt = _lib_run(AdamW(lr=peak, weight_decay=wd), steps, schedule=cosine(peak, steps))
        if max_norm < 1000 and _close(w, alt.final_params, rtol=1e-9):
            raise _Wrong(f"case '{case}': the gradients were not clipped before the optimizer step.")
        alt = _lib_run(AdamW(lr=peak, weight_decay=wd), steps, max_norm=max_norm)
        if _close(w, alt.final_params, rtol=1e-9):
            raise _Wrong(f"case '{case}': the lr stays at its peak; set it from the cosine schedule each step.")
        _diagnose(w, ref.final_params, "final_w", labels=("a", "b"), rtol=1e-9, prefix=f"case '{case}': ")
    return "Your loop reproduces the library's run with clipping and the cosine schedule."


# --------------------------------------------------------------------------------------
# Lesson 10


def _blocked_logistic_hessian(*args, **kwargs):
    raise __import__("lessons_lib.checks", fromlist=["LibraryUsedError"]).LibraryUsedError(
        "the library's logistic_hessian")


@contextlib.contextmanager
def _logistic_hessian_blocked():
    """Switch off lessons_lib.logistic.logistic_hessian (and with it LogisticSurface.hessian)."""
    saved = _lib_logistic_hessian.__code__
    _lib_logistic_hessian.__code__ = _blocked_logistic_hessian.__code__
    try:
        yield
    finally:
        _lib_logistic_hessian.__code__ = saved


def _read_only(a):
    a = np.array(a, dtype=np.float64)
    a.flags.writeable = False
    return a


@functools.lru_cache(maxsize=1)
def _tickets_10():
    """Lesson 10's training rows, labels and optimum: (X, y, w_star), read-only, computed once."""
    data = ticket_triage(**TICKETS_10)
    return _read_only(data.X_train), _read_only(data.y_train), _read_only(fit_newton(data.X_train, data.y_train))


def _hessian_cases():
    """Named cases (name, w, X) for logistic_hessian."""
    X_lesson, _, w_lesson = _tickets_10()
    five = np.array([[1.0, 2.0], [-0.5, 1.0], [3.0, -1.0], [0.0, -2.0], [1.5, 0.5]])
    three = np.random.default_rng(10).normal(0.0, 1.5, size=(40, 3))
    return [
        ("w = 0, where every p(1 - p) is 1/4", np.zeros(2), five),
        ("five rows, away from the optimum", np.array([0.8, -0.6]), five),
        ("the lesson's training rows at w_star", np.array(w_lesson), np.array(X_lesson)),
        ("three features", np.array([0.5, -1.0, 2.0]), three),
    ]


def _hessian_variants(w, X):
    """Outputs of common mistakes for one case, each with its message."""
    n = X.shape[0]
    p = _sigmoid(X @ w)
    weights = p * (1 - p)
    plain = X.T @ X
    weighted = (X * weights[:, None]).T @ X
    out = [
        (plain / n, "this is X^T X / n: the weights are missing. Each row's outer product x_i x_i^T is "
                    "weighted by p_i (1 - p_i), the slope of the sigmoid at z_i = w . x_i."),
        (plain, "this is X^T X: both the weights p_i (1 - p_i) and the division by n are missing."),
        ((X * p[:, None]).T @ X / n, "the rows are weighted by p_i; the slope of the sigmoid, and so the "
                                     "weight, is p_i (1 - p_i)."),
        ((X * weights[:, None]).T @ (X * weights[:, None]) / n,
         "the weights p_i (1 - p_i) multiply both factors, so they end up squared; weight each outer "
         "product x_i x_i^T once."),
        (float(np.mean(weights)) * plain / n, "every row got the same, average weight; each row needs its own "
                                              "weight p_i (1 - p_i)."),
        (-weighted / n, "the Hessian has the wrong sign: the mean logistic loss is convex, so its diagonal "
                        "entries are positive."),
    ]
    if n > 1:
        out.append((weighted, f"it is not divided by n: the loss is a mean over the rows, so its Hessian is a "
                              f"mean too (yours is the sum, {n} times too large for these {n} rows)."))
    return out


def _entry_labels(d: int) -> list:
    return [f"entry [{j}, {k}]" for j in range(d) for k in range(d)]


@_check("the Hessian of logistic regression")
def logistic_hessian(ns):
    """`hessian(w, X)` -> the (d, d) Hessian of the mean logistic loss at w, for X of shape (n, d)."""
    fn = _callable(ns, "hessian")
    for case, w, X in _hessian_cases():
        n, d = X.shape
        expected = _lib_logistic_hessian(w, X)
        kept = [w.copy(), X.copy()]
        with _logistic_hessian_blocked():
            out = _call(fn, "hessian", case, *kept)
        _untouched([w, X], kept, "hessian", case, ("w", "X"),
                   hint="Leave the data and the weights as they were; build new arrays instead.")
        prefix = f"case '{case}': "
        if out is None:
            raise _Wrong(f"{prefix}`hessian` returned None: is the `return` line missing?")
        H = _vector(out, "hessian(w, X)")
        if H.shape == (n, n) and n != d:
            raise _Wrong(f"{prefix}`hessian(w, X)` is {n} x {n}, one entry per pair of rows ({n} rows). The Hessian "
                         f"has one row and one column per weight: {d} x {d}, from X^T (...) X, not X (...) X^T.")
        if H.shape != (d, d):
            raise _Wrong(f"{prefix}`hessian(w, X)` has shape {H.shape}; for {d} weights it should be ({d}, {d}).")
        scale = float(np.max(np.abs(expected)))
        asym = [(j, k) for j in range(d) for k in range(j + 1, d)
                if not np.isclose(H[j, k], H[k, j], rtol=1e-9, atol=1e-12 * scale)]
        if asym:
            j, k = asym[0]
            raise _Wrong(f"{prefix}`hessian(w, X)` is not symmetric: entry [{j}, {k}] differs from entry [{k}, {j}]. "
                         "Second derivatives don't depend on their order: H[j, k] = (1/n) sum_i p_i (1 - p_i) "
                         "x_ij x_ik reads the same with j and k swapped.")
        if _close(H, expected, rtol=1e-8, atol=1e-12 * scale):
            continue
        for candidate, message in _hessian_variants(w, X):
            if _close(H, candidate, rtol=1e-8, atol=1e-12 * scale):
                raise _Wrong(prefix + message)
        _diagnose(H, expected, "hessian(w, X)", labels=_entry_labels(d), rtol=1e-8, atol=1e-12 * scale,
                  prefix=prefix)
    return "Symmetric, weighted by p(1 - p), a mean over the rows: it matches the library on every case."


def _kappa(H) -> float:
    eig = np.linalg.eigvalsh(H)
    return float(eig[-1] / eig[0])


def _diagonal_ratio(H) -> float:
    diag = np.diag(H)
    return float(diag.max() / diag.min())


@functools.lru_cache(maxsize=1)
def _kappas_10():
    """(kappa_raw, kappa_std, known mistakes for each) on lesson 10's training rows."""
    X, y, w = (np.array(a) for a in _tickets_10())
    n = X.shape[0]
    s = X.std(axis=0)
    Xs = X / s
    H, Hs = _lib_logistic_hessian(w, X), _lib_logistic_hessian(w * s, Xs)
    kappa_raw, kappa_std = _kappa(H), _kappa(Hs)
    Xc = (X - X.mean(axis=0)) / s
    unweighted = ("the condition number of X^T X / n, the Hessian without its weights p(1 - p) (or the Hessian "
                  "at w = 0, where every weight is 1/4)")
    raw_known = [
        (_kappa(X.T @ X / n), f"`kappa_raw` is {unweighted}. Does exercise 1's check pass, and is your "
                              "`hessian` evaluated at `w_star`?"),
        (_kappa((X * _sigmoid(X @ w)[:, None]).T @ X / n),
         "`kappa_raw` comes from a Hessian whose rows are weighted by p instead of p(1 - p); does exercise 1's "
         "check pass?"),
        (1.0 / kappa_raw, "`kappa_raw` is the smallest eigenvalue over the largest; the condition number is the "
                          "largest over the smallest (so it is at least 1)."),
        (_diagonal_ratio(H), "`kappa_raw` is the ratio of the Hessian's diagonal entries. The condition number is "
                             "the ratio of its eigenvalues, which the off-diagonal entries move too."),
        (float(np.linalg.cond(X)), "`kappa_raw` is the condition number of the data matrix X; the question asks "
                                   "for the Hessian's, at `w_star`."),
    ]
    std_known = [
        (_kappa(_lib_logistic_hessian(w, Xs)),
         "`kappa_std` is evaluated at `w_star`, the optimum in raw units. In standardised units the same model "
         "has other weights: which w keeps every w . x unchanged once feature j is divided by s_j?"),
        (_kappa(_lib_logistic_hessian(w / s, Xs)),
         "`kappa_std` is evaluated at w_star / s: the weights moved the wrong way. Dividing feature j by s_j has "
         "to be undone by weight j so that every w . x stays the same."),
        (_kappa(Xs.T @ Xs / n), "`kappa_std` is the condition number at w = 0 (or without the weights p(1 - p)); "
                                "evaluate the Hessian at the optimum of the standardised model."),
        (_kappa(_lib_logistic_hessian(w / s, X * s)),
         "the features were multiplied by their standard deviations; standardising divides each one by its s_j."),
        (_kappa(_lib_logistic_hessian(w * s, Xc)),
         "the features were centred (mean subtracted) before dividing by s. The lesson only divides by s: the "
         "model has no intercept, and centring changes the data and moves the optimum."),
        (_kappa(_lib_logistic_hessian(fit_newton(Xc, y), Xc)),
         "the features were centred (mean subtracted) before dividing by s. The lesson only divides by s: the "
         "model has no intercept, and centring changes the data and moves the optimum."),
        (kappa_raw, "`kappa_std` equals the raw condition number: compute the Hessian on the standardised inputs "
                    "(each column of X divided by its standard deviation)."),
        (1.0 / kappa_std, "`kappa_std` is the smallest eigenvalue over the largest; the condition number is the "
                          "largest over the smallest (so it is at least 1)."),
        (_diagonal_ratio(Hs), "`kappa_std` is the ratio of the Hessian's diagonal entries. The condition number is "
                              "the ratio of its eigenvalues, which the off-diagonal entries move too."),
        (float(np.linalg.cond(Xs)), "`kappa_std` is the condition number of the standardised data matrix; the "
                                    "question asks for the Hessian's."),
    ]
    return kappa_raw, kappa_std, raw_known, std_known


def _check_kappa(value, expected, name, known):
    if _close(value, expected, rtol=1e-6):
        return
    for candidate, message in known:
        if _close(value, candidate, rtol=1e-6):
            raise _Wrong(message)
    if value < 1:
        raise _Wrong(f"`{name}` is below 1. A condition number is the largest eigenvalue over the smallest, so "
                     "it is at least 1.")
    _diagnose(value, expected, name, rtol=1e-6)


@_check("the condition number before and after standardising")
def hessian_condition_numbers(ns):
    """`kappa_raw`, `kappa_std`: the Hessian's condition number at the optimum, raw and standardised inputs."""
    kappa_raw, kappa_std, raw_known, std_known = _kappas_10()
    raw = _scalar(_get(ns, "kappa_raw"), "kappa_raw")
    if not _close(raw, kappa_raw, rtol=1e-6) and _close(raw, kappa_std, rtol=1e-6):
        other = ns.get("kappa_std", _MISSING)
        try:
            swapped = other is not _MISSING and _close(_scalar(other, "kappa_std"), kappa_raw, rtol=1e-6)
        except _Wrong:
            swapped = False
        if swapped:
            raise _Wrong("`kappa_raw` and `kappa_std` are swapped: `kappa_raw` belongs to the raw inputs X.")
        raise _Wrong("`kappa_raw` is the condition number for the standardised inputs; it should be the one for "
                     "the raw inputs X.")
    _check_kappa(raw, kappa_raw, "kappa_raw", raw_known)
    std = _scalar(_get(ns, "kappa_std"), "kappa_std")
    _check_kappa(std, kappa_std, "kappa_std", std_known)
    return "Same model, same optimum, new units: the conditioning went from bad to nearly round."
