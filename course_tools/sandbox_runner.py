"""The untrusted side of grading: runs one submission's cells and answers the grader in plain data.

This file runs inside the sandbox, next to the student's code, so it holds nothing worth
stealing: no expected value, no hidden input, no test. It is started as a script (it imports
nothing from course_tools) and talks to the trusted grader over two pipes, one JSON object a
line:

    stdin  (requests)   {"id": 3, "op": "run", "source": "..."}            run one code cell
                        {"id": 4, "op": "get", "names": ["w_next", ...]}   values, as data
                        {"id": 5, "op": "call", "name": "f", "args": [...], "kwargs": {...}}
    stdout (replies)    {"id": 3, "ok": true} or {"id": 3, "ok": false, "ename": ..., "evalue": ...}

Values travel as tagged JSON (numbers, strings, lists, tuples, numpy arrays of numbers); a
function is only named ("callable"), never sent; anything else is described by its type name.
Whatever the student's code does to this process (patching this module, writing to the
pipes) can only change the data the grader receives, and the grader decides on data alone.
Printed output goes to stderr, which the grader reads and caps.
"""
import json
import math
import os
import resource
import shutil
import sys

MAX_DEPTH = 6
MAX_ITEMS = 1_000_000      # numbers in one reply
MAX_LIST = 10_000          # entries of one list or tuple
MAX_STR = 2_000            # characters of one string
MAX_LINE = 64 * 1024 * 1024


def _limits(spec: dict) -> None:
    """Apply the rlimits the grader asked for, before any student code runs."""
    names = {"memory": resource.RLIMIT_AS, "cpu": resource.RLIMIT_CPU, "processes": resource.RLIMIT_NPROC,
             "file_size": resource.RLIMIT_FSIZE, "open_files": resource.RLIMIT_NOFILE}
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    for key, which in names.items():
        if spec.get(key):
            value = int(spec[key])
            resource.setrlimit(which, (value, value))


def _float(x: float):
    return x if math.isfinite(x) else ("nan" if x != x else ("inf" if x > 0 else "-inf"))


class _Budget:
    def __init__(self):
        self.left = MAX_ITEMS

    def take(self, n: int) -> bool:
        self.left -= n
        return self.left >= 0


def encode(x, budget=None, depth=0):
    """A tagged, JSON-ready description of x: data only."""
    import numpy as np

    budget = budget or _Budget()
    if depth > MAX_DEPTH:
        return {"t": "opaque", "type": "too deeply nested"}
    if x is None:
        return {"t": "none"}
    if isinstance(x, bool):
        return {"t": "bool", "v": bool(x)}
    if isinstance(x, int):
        x = int(x)
        return {"t": "int", "v": x} if abs(x) < 2**63 else {"t": "opaque", "type": "int (too large)"}
    if isinstance(x, float):
        return {"t": "float", "v": _float(float(x))}
    if isinstance(x, str):
        return {"t": "str", "v": str(x)[:MAX_STR]}
    if isinstance(x, np.generic) and x.dtype.kind in "biuf":
        v = x.item()
        v = _float(float(v)) if x.dtype.kind == "f" else (bool(v) if x.dtype.kind == "b" else int(v))
        return {"t": "npscalar", "dtype": x.dtype.name, "v": v}
    if isinstance(x, np.ndarray):
        arr = x.view(np.ndarray)
        if arr.dtype.kind not in "biuf" or arr.dtype.byteorder not in "=|<":
            return {"t": "opaque", "type": f"numpy array of dtype {arr.dtype.name}"}
        if not budget.take(arr.size):
            return {"t": "opaque", "type": "numpy array (too large to send)"}
        flat = arr.ravel().tolist()
        if arr.dtype.kind == "f" and not np.all(np.isfinite(arr)):
            flat = [_float(v) for v in flat]
        return {"t": "ndarray", "dtype": arr.dtype.name, "shape": list(arr.shape), "v": flat}
    if isinstance(x, (list, tuple)):
        if len(x) > MAX_LIST or not budget.take(len(x)):
            return {"t": "opaque", "type": f"{type(x).__name__} (too long to send)"}
        return {"t": "tuple" if isinstance(x, tuple) else "list",
                "v": [encode(item, budget, depth + 1) for item in x]}
    if callable(x):
        return {"t": "callable", "type": type(x).__name__[:60]}
    return {"t": "opaque", "type": type(x).__name__[:60]}


def decode(d, depth=0):
    """Inputs from the grader (trusted, but decoded with the same small vocabulary)."""
    import numpy as np

    t = d["t"]
    if t == "none":
        return None
    if t in ("bool", "int", "str"):
        return d["v"]
    if t == "float":
        return float(d["v"])
    if t == "npscalar":
        return np.dtype(d["dtype"]).type(float(d["v"]) if isinstance(d["v"], str) else d["v"])
    if t == "ndarray":
        values = [float(v) if isinstance(v, str) else v for v in d["v"]]
        return np.array(values, dtype=d["dtype"]).reshape(d["shape"])
    if t in ("list", "tuple"):
        items = [decode(item, depth + 1) for item in d["v"]]
        return tuple(items) if t == "tuple" else items
    raise ValueError(f"cannot decode {t!r}")


def _error(exc: BaseException) -> dict:
    text = str(exc)
    return {"ok": False, "ename": type(exc).__name__[:80], "evalue": text[:500]}


def main() -> int:
    spec = json.loads(sys.argv[1]) if len(sys.argv) > 1 else {}
    # the channel: private copies of stdin/stdout; the cells read /dev/null and print to stderr
    requests = os.fdopen(os.dup(0), "rb")
    replies = os.fdopen(os.dup(1), "wb")
    null = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null, 0)
    os.dup2(2, 1)
    os.close(null)

    def reply(obj: dict) -> None:
        replies.write(json.dumps(obj, allow_nan=False).encode() + b"\n")
        replies.flush()

    try:
        if spec.get("copy_from") and os.path.isdir(spec["copy_from"]):
            shutil.copytree(spec["copy_from"], ".", dirs_exist_ok=True)
        _limits(spec.get("limits", {}))
        from IPython.core.interactiveshell import InteractiveShell
        from traitlets.config import Config

        config = Config()
        config.HistoryManager.enabled = False
        config.InteractiveShell.colors = "NoColor"
        shell = InteractiveShell.instance(config=config)
    except BaseException as exc:   # the grader reports why the sandbox did not start
        reply({"id": 0, **_error(exc)})
        return 1
    reply({"id": 0, "ok": True, "ready": True})

    while True:
        line = requests.readline(MAX_LINE)
        if not line:
            return 0
        try:
            req = json.loads(line)
            rid, op = req["id"], req["op"]
        except Exception as exc:
            reply({"id": -1, **_error(exc)})
            continue
        try:
            if op == "run":
                result = shell.run_cell(req["source"], store_history=False)
                err = result.error_before_exec or result.error_in_exec
                out = _error(err) if err is not None else {"ok": True}
            elif op == "get":
                values = {}
                for name in req["names"]:
                    if name in shell.user_ns:
                        values[name] = encode(shell.user_ns[name])
                out = {"ok": True, "values": values}
            elif op == "call":
                fn = shell.user_ns.get(req["name"])
                if not callable(fn):
                    out = {"ok": False, "ename": "NameError", "evalue": f"{req['name']} is not a function here"}
                else:
                    args = [decode(a) for a in req["args"]]
                    kwargs = {k: decode(v) for k, v in req["kwargs"].items()}
                    try:
                        value = fn(*args, **kwargs)
                    except BaseException as exc:
                        out = _error(exc)
                    else:
                        out = {"ok": True, "value": encode(value), "args_after": [encode(a) for a in args]}
            elif op == "exit":
                reply({"id": rid, "ok": True})
                return 0
            else:
                out = {"ok": False, "ename": "ValueError", "evalue": f"unknown op {op!r}"}
        except BaseException as exc:
            out = _error(exc)
        try:
            reply({"id": rid, **out})
        except (ValueError, TypeError) as exc:   # a value json could not write
            reply({"id": rid, **_error(exc)})


if __name__ == "__main__":
    sys.exit(main())
