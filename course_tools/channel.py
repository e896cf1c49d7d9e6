"""The narrow channel between the trusted grader and a sandboxed submission: data in, data out.

The untrusted side (sandbox_runner.py) describes values as tagged JSON. ``decode`` turns such
a description into plain Python and numpy values, and refuses anything else: a type it does
not know, a dtype outside bool/int/uint/float, a shape that does not match its numbers, too
many numbers, too deep a nesting. Nothing it returns is code, and nothing is ever unpickled.
A function on the other side arrives as a ``RemoteFunction``: calling it sends the inputs and
receives the outputs, again as data.
"""
from __future__ import annotations

import builtins
import math
import re

import numpy as np

MAX_DEPTH = 8
MAX_ITEMS = 2_000_000
MAX_STR = 2_000
DTYPES = {"bool", "int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64",
          "float16", "float32", "float64"}
_NAME = re.compile(r"[^A-Za-z0-9_ ().,-]")


class ChannelError(ValueError):
    """The other side sent something that is not a value of the channel's vocabulary."""


class SandboxGone(BaseException):
    """The submission's process can no longer answer (time limit, output limit, crash, broken
    channel). A BaseException, so that no check catches it as a wrong answer: grading of this
    notebook stops and the rest of its exercises get the reason."""


def safe_name(text, limit: int = 60) -> str:
    return _NAME.sub("?", str(text))[:limit] or "?"


def _opaque_type(name: str):
    """A stand-in whose type carries the other side's type name (for "it is a str"-like messages)."""
    return type(safe_name(name).replace(" ", "_").replace("(", "").replace(")", "") or "object",
                (Opaque,), {})


class Opaque:
    """A value the channel does not carry (an object, a too-large array): only its type is known."""

    def __init__(self, type_name: str):
        self.type_name = safe_name(type_name)

    def __repr__(self):
        return f"<{self.type_name} from the submission>"


def _number(v, kind: str):
    if isinstance(v, str):
        if v not in ("nan", "inf", "-inf") or kind != "f":
            raise ChannelError(f"not a number: {v[:20]!r}")
        return float(v)
    if isinstance(v, bool):
        if kind != "b":
            raise ChannelError("a boolean where a number was expected")
        return v
    if isinstance(v, int):
        return v
    if isinstance(v, float) and kind == "f":
        return v
    raise ChannelError(f"not a number of kind {kind}: {type(v).__name__}")


class _Count:
    def __init__(self):
        self.items = 0

    def add(self, n):
        self.items += n
        if self.items > MAX_ITEMS:
            raise ChannelError("too many numbers in one answer")


def decode(d, rpc=None, name: str = "value", count=None, depth: int = 0):
    """A plain value from a tagged description; ChannelError for anything outside the vocabulary.

    rpc: a callable(name, args, kwargs) used to build RemoteFunctions for "callable" entries.
    """
    count = count or _Count()
    if depth > MAX_DEPTH:
        raise ChannelError("nested too deeply")
    if not isinstance(d, dict) or not isinstance(d.get("t"), str):
        raise ChannelError("not a tagged value")
    t, v = d["t"], d.get("v")
    if t == "none":
        return None
    if t == "bool":
        if not isinstance(v, bool):
            raise ChannelError("bad bool")
        return v
    if t == "int":
        if isinstance(v, bool) or not isinstance(v, int) or abs(v) >= 2**63:
            raise ChannelError("bad int")
        return v
    if t == "float":
        return float(_number(v, "f"))
    if t == "str":
        if not isinstance(v, str):
            raise ChannelError("bad str")
        return v[:MAX_STR]
    if t in ("npscalar", "ndarray"):
        dtype = d.get("dtype")
        if dtype not in DTYPES:
            raise ChannelError(f"dtype {safe_name(dtype)} is not carried")
        kind = np.dtype(dtype).kind
        if t == "npscalar":
            return np.dtype(dtype).type(_number(v, "f" if kind == "f" else ("b" if kind == "b" else "i")))
        shape = d.get("shape")
        if not isinstance(shape, list) or len(shape) > 8 or not all(
                isinstance(s, int) and not isinstance(s, bool) and 0 <= s for s in shape):
            raise ChannelError("bad shape")
        if not isinstance(v, list) or len(v) != math.prod(shape):
            raise ChannelError("shape and numbers disagree")
        count.add(len(v))
        want = "f" if kind == "f" else ("b" if kind == "b" else "i")
        values = [_number(x, want) for x in v]
        with np.errstate(over="ignore", invalid="ignore"):
            try:
                return np.array(values, dtype=dtype).reshape(shape)
            except (OverflowError, ValueError) as exc:
                raise ChannelError(f"numbers out of range for {dtype}") from exc
    if t in ("list", "tuple"):
        if not isinstance(v, list):
            raise ChannelError("bad sequence")
        count.add(len(v))
        items = [decode(item, rpc, f"{name}[{i}]", count, depth + 1) for i, item in enumerate(v)]
        return tuple(items) if t == "tuple" else items
    if t == "callable":
        if rpc is None:
            return _opaque_type("function")(d.get("type", "function"))
        return RemoteFunction(name, rpc)
    if t == "opaque":
        type_name = d.get("type", "object")
        return _opaque_type(type_name)(type_name)
    raise ChannelError(f"unknown tag {safe_name(t)}")


def encode(x):
    """Inputs for a student function: the same tagged vocabulary, built from trusted values."""
    if x is None:
        return {"t": "none"}
    if isinstance(x, np.generic):
        return {"t": "npscalar", "dtype": x.dtype.name, "v": _json_number(x.item())}
    if isinstance(x, bool):
        return {"t": "bool", "v": x}
    if isinstance(x, int):
        return {"t": "int", "v": int(x)}
    if isinstance(x, float):
        return {"t": "float", "v": _json_number(x)}
    if isinstance(x, str):
        return {"t": "str", "v": x}
    if isinstance(x, np.ndarray):
        return {"t": "ndarray", "dtype": x.dtype.name, "shape": list(x.shape),
                "v": [_json_number(v) for v in x.ravel().tolist()]}
    if isinstance(x, (list, tuple)):
        return {"t": "tuple" if isinstance(x, tuple) else "list", "v": [encode(item) for item in x]}
    raise TypeError(f"the channel does not carry {type(x).__name__}")


def _json_number(v):
    if isinstance(v, float) and not math.isfinite(v):
        return "nan" if v != v else ("inf" if v > 0 else "-inf")
    return v


def remote_exception(ename, evalue) -> Exception:
    """The student's exception as a local one of the same name (a builtin class when it is one),
    so tests that expect, say, ValueError still see a ValueError."""
    ename, evalue = safe_name(ename, 80).replace(" ", "_"), str(evalue)[:500]
    base = getattr(builtins, ename, None)
    if isinstance(base, type) and issubclass(base, Exception) and base.__init__ is not OSError.__init__:
        try:
            return base(evalue)
        except Exception:
            pass
    return type(ename or "Error", (Exception,), {})(evalue)


class RemoteFunction:
    """A function defined in the submission: calling it runs it there on the inputs given.

    Input arrays the function changed in place are changed here too, so a test can tell.
    """

    runs_elsewhere = True    # lessons_lib.checks: the library pieces are absent over there

    def __init__(self, name: str, rpc):
        self.__name__ = self.__qualname__ = name
        self._rpc = rpc

    def __call__(self, *args, **kwargs):
        return self._rpc(self.__name__, args, kwargs)

    def __repr__(self):
        return f"<function {self.__name__} in the submission>"


def write_back(local, remote) -> None:
    """Copy in-place changes the student made to an input back into the local input."""
    if isinstance(local, np.ndarray) and isinstance(remote, np.ndarray):
        if local.flags.writeable and local.shape == remote.shape:
            with np.errstate(all="ignore"):
                np.copyto(local, remote, casting="unsafe")
    elif isinstance(local, list) and isinstance(remote, list) and len(local) == len(remote):
        for a, b in zip(local, remote):
            write_back(a, b)
