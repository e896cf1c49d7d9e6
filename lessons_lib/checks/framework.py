"""The check framework: a verdict (Correct / Not yet / Not attempted) and how a mistake is described.

A check looks up the names an exercise asks for in the notebook's namespace, compares them with
the library's answer on named cases, and raises Wrong with a message that says what is wrong
(type, shape, sign, which coordinate, too large or too small, a known mistake) without giving
the answer away: never the expected value, never a precise factor.
"""
from __future__ import annotations

from typing import Callable
import contextlib
import functools
import inspect
import math

import numpy as np

from ..surfaces import COURSE, Quadratic
from .blocking import LibraryUsedError, library_blocked

RTOL, ATOL = 1e-6, 1e-12


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


class NotAttempted(Exception):
    pass


class Wrong(Exception):
    pass


MISSING = object()


def caller_namespace() -> dict:
    """The globals of the first frame outside this package (the notebook's namespace)."""
    frame = inspect.currentframe()
    while frame is not None and str(frame.f_globals.get("__name__", "")).startswith(__package__):
        frame = frame.f_back
    return frame.f_globals if frame is not None else {}


def check(title: str):
    """Decorator: turn a check body into a learner-facing check (print, return CheckResult)."""

    def wrap(body: Callable[[dict], str]):
        @functools.wraps(body)
        def check(namespace: dict | None = None, *, strict: bool = False, quiet: bool = False):
            ns = caller_namespace() if namespace is None else namespace
            try:
                detail = body(ns)
                result = CheckResult(title, "correct", f"Correct: {title}." + (f" {detail}" if detail else ""))
            except NotAttempted as exc:
                result = CheckResult(title, "not attempted", f"Not attempted yet ({title}): {exc}")
            except Wrong as exc:
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


def get(ns: dict, name: str):
    """The learner's value of `name`, or NotAttempted if it isn't there yet."""
    value = ns.get(name, MISSING)
    if value is MISSING:
        raise NotAttempted(f"`{name}` is not defined. Write your answer in the cell above and run it.")
    if value is None or value is Ellipsis:
        raise NotAttempted(f"`{name}` is still {value!r}. Replace it with your answer and run the cell.")
    return value


def get_callable(ns: dict, name: str):
    fn = get(ns, name)
    if not callable(fn):
        raise Wrong(f"`{name}` should be a function; it is a {type(fn).__name__}.")
    return fn


def call(fn, name: str, case: str, *args, **kwargs):
    """Call the learner's function; NotImplementedError means not attempted, errors are reported."""
    try:
        return fn(*args, **kwargs)
    except NotImplementedError:
        raise NotAttempted(f"`{name}` still raises NotImplementedError: replace the "
                            "`raise NotImplementedError()` line with your code.") from None
    except LibraryUsedError as exc:
        raise Wrong(f"case '{case}': `{name}` calls {exc}; the exercise asks you to write "
                     "that part yourself.") from None
    except (Wrong, NotAttempted):
        raise
    except Exception as exc:  # the learner's code raised: report it, don't crash the check
        raise Wrong(f"case '{case}': calling `{name}` raised {type(exc).__name__}: {exc}") from None


def type_name(value) -> str:
    if isinstance(value, np.ndarray):
        return f"numpy array of shape {value.shape}"
    return type(value).__name__


def vector(value, name: str, size: int | None = None, shape: tuple | None = None) -> np.ndarray:
    """A float array from a list/tuple/array of numbers, or Wrong naming what was given."""
    if isinstance(value, (str, bytes, dict, set)) or callable(value):
        raise Wrong(f"`{name}` should be a list or numpy array of numbers; it is a {type_name(value)}.")
    try:
        arr = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):
        raise Wrong(f"`{name}` should be a list or numpy array of numbers; it is a "
                     f"{type_name(value)} that numpy can't turn into numbers.") from None
    if shape is not None and arr.shape != tuple(shape):
        raise Wrong(f"`{name}` has shape {arr.shape}; it should have shape {tuple(shape)}.")
    if size is not None and (arr.ndim != 1 or arr.size != size):
        raise Wrong(f"`{name}` has shape {arr.shape}; it should hold {size} numbers, shape ({size},).")
    if not np.all(np.isfinite(arr)):
        raise Wrong(f"`{name}` contains inf or nan.")
    return arr


def scalar(value, name: str) -> float:
    """A plain float from a number (Python, numpy scalar or one-element array)."""
    if isinstance(value, bool) or isinstance(value, (str, bytes)) or callable(value):
        raise Wrong(f"`{name}` should be a number; it is a {type_name(value)}.")
    try:
        arr = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):
        raise Wrong(f"`{name}` should be a number; it is a {type_name(value)}.") from None
    if arr.size != 1:
        raise Wrong(f"`{name}` should be one number; it is an array of shape {arr.shape}.")
    x = float(arr.reshape(()))
    if not math.isfinite(x):
        raise Wrong(f"`{name}` is {x}; it should be a finite number.")
    return x


def close(a, b, rtol=RTOL, atol=ATOL) -> bool:
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    return a.shape == b.shape and bool(np.all(np.isclose(a, b, rtol=rtol, atol=atol)))


def direction_text(given: float, expected: float) -> str:
    """Which way a number is off: the sign, or too large / too small in size. Never by how much:
    a precise factor would give the answer away (guess / factor)."""
    if np.sign(given) != np.sign(expected):
        return "has the wrong sign" + ("" if np.isclose(abs(given), abs(expected)) else
                                       f" (and is too {'large' if abs(given) > abs(expected) else 'small'} in size)")
    return f"is too {'large' if abs(given) > abs(expected) else 'small'}"


def diagnose(given, expected, name: str, labels=None, known=(), rtol=RTOL, atol=ATOL, prefix="") -> None:
    """Raise Wrong describing how `given` differs from `expected`, without showing `expected`.

    known: (candidate, message) pairs for recognised mistakes, tried first.
    """
    given = np.asarray(given, dtype=np.float64)
    expected = np.asarray(expected, dtype=np.float64)
    if close(given, expected, rtol, atol):
        return
    for candidate, message in known:
        if close(given, candidate, rtol, atol):
            raise Wrong(prefix + message)
    if given.shape != expected.shape:
        raise Wrong(f"{prefix}`{name}` has shape {given.shape}; it should have shape {expected.shape}.")
    if given.ndim == 0:
        if expected != 0 and given != 0:
            raise Wrong(f"{prefix}`{name}` {direction_text(float(given), float(expected))}.")
        raise Wrong(f"{prefix}`{name}` is {'0 but should not be' if given == 0 else 'too large in size'}.")
    flat_g, flat_e = given.ravel(), expected.ravel()
    if labels is None:
        labels = [f"entry {i}" for i in range(flat_e.size)] if given.ndim == 1 else \
            [f"entry {[int(j) for j in np.unravel_index(i, given.shape)]}" for i in range(flat_e.size)]
    wrong = [i for i in range(flat_e.size) if not np.isclose(flat_g[i], flat_e[i], rtol=rtol, atol=atol)]
    right = [str(labels[i]) for i in range(flat_e.size) if i not in wrong]
    tail = f" ({join(right)} {'is' if len(right) == 1 else 'are'} right)" if right else ""
    where = "every coordinate" if not right else join([str(labels[i]) for i in wrong])
    nonzero = [i for i in wrong if flat_e[i] != 0 and flat_g[i] != 0]
    if nonzero and len(nonzero) == len(wrong):
        ratios = flat_g[nonzero] / flat_e[nonzero]
        if len(nonzero) > 1 and np.allclose(ratios, ratios[0], rtol=1e-6):
            way = direction_text(float(ratios[0]), 1.0)
            raise Wrong(f"{prefix}`{name}` {way} in {where}, all by the same factor (a constant factor missing "
                         f"or extra?){tail}.")
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
    parts = [f"{join(names)} {'is' if len(names) == 1 else 'are'} {desc}" for desc, names in groups.items()]
    raise Wrong(f"{prefix}`{name}`: {'; '.join(parts)}{tail}.")


def join(items) -> str:
    items = list(items)
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


def untouched(before: list, after: list, fn_name: str, case: str, names,
               hint="Did you keep the pre-step weights? Build new arrays (w = w - ...) instead.") -> None:
    """Complain when the learner's function changed its input arrays in place."""
    for b, a, name in zip(before, after, names):
        if not np.array_equal(b, a, equal_nan=True):
            raise Wrong(f"case '{case}': `{fn_name}` changed the `{name}` passed to it in place (an update "
                         f"such as `x -= ...` or `x *= ...`). {hint}")


def learner_surface(ns, curv_name, start_name):
    curv = vector(get(ns, curv_name), curv_name)
    if curv.ndim != 1 or curv.size < 2:
        raise Wrong(f"`{curv_name}` should be a list of 2 or more curvatures, such as [c1, c2]; "
                     f"it has shape {curv.shape}.")
    if np.any(curv <= 0):
        raise Wrong(f"`{curv_name}` should hold positive curvatures (a bowl with its minimum at 0).")
    if curv.size == 2 and np.allclose(sorted(curv), sorted(COURSE.curvatures)):
        raise Wrong(f"`{curv_name}` is the course surface; choose a second surface of your own.")
    start = vector(get(ns, start_name), start_name)
    if start.shape != curv.shape:
        raise Wrong(f"`{start_name}` has shape {start.shape}; it needs one coordinate per curvature, "
                     f"shape {curv.shape}.")
    if np.all(start == 0):
        raise Wrong(f"`{start_name}` is the optimum, so nothing would move; start somewhere else.")
    return Quadratic(curv), start


def path_of(optimizer, surface, start, steps=3):
    w, state, out = start.copy(), optimizer.init(start), []
    with np.errstate(over="ignore", invalid="ignore"):
        for _ in range(steps):
            w, state = optimizer.step(w, surface.grad(w), state)
            out.append(w)
    return np.array(out)


def compare_path(given, expected, name, start, known=()):
    """Compare a (3, d) path step by step, naming the first wrong step."""
    d = expected.shape[1]
    arr = vector(given, name)
    if arr.shape == (expected.shape[0] + 1, d) and np.allclose(arr[0], start):
        raise Wrong(f"`{name}` has {arr.shape[0]} rows starting with the start; keep only the positions "
                     "after steps 1, 2 and 3.")
    if arr.shape != expected.shape:
        raise Wrong(f"`{name}` has shape {arr.shape}; it should have shape {expected.shape}: one row per step "
                     "(after steps 1, 2, 3), one column per coordinate.")
    if close(arr, expected):
        return
    for candidate, message in known:
        if candidate.shape == arr.shape and np.all(np.isfinite(candidate)) and close(arr, candidate):
            raise Wrong(message)
    for k in range(expected.shape[0]):
        if not close(arr[k], expected[k]):
            ok = "" if k == 0 else f"step{'s' if k > 1 else ''} {', '.join(str(i + 1) for i in range(k))} "\
                                   f"{'are' if k > 1 else 'is'} right, "
            diagnose(arr[k], expected[k], f"{name}[{k}]", labels=[f"coordinate {i}" for i in range(d)],
                      prefix=f"`{name}`: {ok}step {k + 1} is wrong. ")


def blocked_while_calling(fn, *blocked):
    """The library pieces switched off while `fn` runs; nothing to switch off for a function that
    runs in another process (the grader's sandbox, whose library build has no such pieces)."""
    if getattr(fn, "runs_elsewhere", False):
        return contextlib.nullcontext()
    return library_blocked(*blocked)


def call_blocked(fn, name, case, blocked, *args, **kwargs):
    """Call the learner's function with the named library pieces switched off."""
    with blocked_while_calling(fn, *blocked):
        return call(fn, name, case, *args, **kwargs)


def returned_array(value, part: str, case: str, like: np.ndarray, what: str = "the shape of w") -> np.ndarray:
    """A learner's returned array as float64: numbers, the shape of `like`, and float32 kept for float32 inputs.

    nan is allowed here: a named mistake may explain it, so the caller diagnoses values itself.
    """
    if isinstance(value, (str, bytes, dict, set)) or callable(value) or value is None:
        raise Wrong(f"case '{case}': `{part}` should be a numpy array of numbers; it is a {type_name(value)}.")
    try:
        arr = np.asarray(value)
        as_float = arr.astype(np.float64)
    except (TypeError, ValueError):
        raise Wrong(f"case '{case}': `{part}` should be a numpy array of numbers; it is a "
                    f"{type_name(value)} that numpy can't turn into numbers.") from None
    if as_float.shape != like.shape:
        raise Wrong(f"case '{case}': `{part}` has shape {as_float.shape}; it should have {what}, "
                    f"{like.shape} (one value per entry).")
    if like.dtype == np.float32 and arr.dtype != np.float32:
        raise Wrong(f"case '{case}': `{part}` is {arr.dtype} for float32 inputs; keep the parameters' dtype, "
                    "as torch does (numpy keeps float32 when float32 arrays meet plain Python numbers).")
    return as_float


def returned_arrays(out, case: str, fn_name: str, parts: tuple, like: np.ndarray) -> list:
    """A learner's returned tuple of arrays (one per name in `parts`), each checked by returned_array."""
    if not isinstance(out, (tuple, list)) or len(out) != len(parts):
        raise Wrong(f"case '{case}': `{fn_name}` should return a tuple ({', '.join(parts)}); it returned a "
                    f"{type_name(out)}" + (f" of length {len(out)}." if isinstance(out, (tuple, list)) else "."))
    return [returned_array(o, part, case, like) for o, part in zip(out, parts)]
