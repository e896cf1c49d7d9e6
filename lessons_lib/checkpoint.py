"""Checkpoints: save a run's params, optimizer state, scheduler, loss scale and data position; resume exactly.

    d = state_dict(optimizer, state)           # plain dict: format, version, class, hyperparameters, state
    state = load_state_dict(optimizer, d, params)   # every field checked against optimizer.init(params)
    save_checkpoint(path, params=w, optimizer=d, scheduler=sched, scaler=sc, step=k, sampler=surface)
    parts = load_checkpoint(path)              # the same parts back, arrays bit for bit

A resumed run equals the uninterrupted one only if EVERYTHING that decides the next step is
restored: the weights, every optimizer buffer and step count (Adam's bias correction reads t),
the schedule's position, the loss scale and its clean-step counter, and the minibatch stream
(which rows come next). Leave one out and the run continues, just not the same run.

The file is one .npz (numpy's zip of arrays, read without pickle): a JSON header (entry
"__header__") describing the parts, with each array stored as its own entry and a SHA-256 of
its bytes in the header, so a truncated or corrupted file is refused instead of half-loaded.
A part may be: an array, a number, None, a string, a list or dict of these, a ScalerState
(it comes back as a ScalerState), or any object with state_dict() (a scheduler, a sampler,
a MinibatchLogistic): its state_dict() is saved, and you call obj.load_state_dict(parts[name]).
Tuples come back as lists; numpy scalars keep their dtype.

load_state_dict refuses, naming what is wrong: another format or version, another optimizer
class, missing or extra keys, a buffer whose shape or dtype does not fit params, a buffer the
optimizer does not keep (or lacks), non-finite buffers, and hyperparameters that differ from the
optimizer's. The last is an error by default (a resumed run with another lr is a different run)
and allowed with allow_new_hyperparameters=True, for deliberate changes such as fine-tuning at a
lower lr: the optimizer object's hyperparameters are then used (torch's load_state_dict instead
overwrites them with the saved ones). Group layout and the optimizer class inside ParamGroups
can never change.
"""
from __future__ import annotations

import hashlib
import io
import json
import math
import os
import zipfile

import numpy as np

from .param_groups import _UNBATCHED, ParamGroups, ParamGroupsState
from .precision import ScalerState
from .validation import check_keys

__all__ = ["state_dict", "load_state_dict", "hyperparameters", "save_checkpoint", "load_checkpoint",
           "FORMAT", "VERSION", "CHECKPOINT_FORMAT", "CHECKPOINT_VERSION"]

FORMAT = "lessons_lib.optimizer_state"
VERSION = 1
CHECKPOINT_FORMAT = "lessons_lib.checkpoint"
CHECKPOINT_VERSION = 1
_KEYS = {"format", "version", "optimizer", "hyperparameters", "state"}
_STRUCTURAL = ("optimizer_class", "params")      # ParamGroups entries no flag may change


def _plain(value, where):
    """A hyperparameter as JSON-like Python values (tuples and arrays become lists)."""
    if value is None or isinstance(value, (bool, str, int, float)):
        return value
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, (list, tuple)):
        return [_plain(v, f"{where}[{i}]") for i, v in enumerate(value)]
    if isinstance(value, slice):
        return ["slice", value.start, value.stop, value.step]
    raise ValueError(f"hyperparameter {where} = {value!r} cannot be saved (only numbers, strings, None, "
                     "lists and arrays)")


def _spec(spec):
    """A group's "params" as a plain value: ["slice", start, stop, step], ["mask", [...]] or ["indices", [...]]."""
    if isinstance(spec, slice):
        return _plain(spec, "params")
    arr = np.asarray(spec)
    return ["mask" if arr.dtype == bool else "indices", arr.tolist()]


def _own_hyperparameters(optimizer) -> dict:
    return {k: _plain(v, k) for k, v in vars(optimizer).items() if k != "runs" and not k.startswith("_")}


def hyperparameters(optimizer) -> dict:
    """The optimizer's hyperparameters as plain values; for ParamGroups its class and each group's settings."""
    if isinstance(optimizer, ParamGroups):
        return {"optimizer_class": optimizer.optimizer_class.__name__,
                "groups": [{"params": _spec(spec), **_own_hyperparameters(opt)}
                           for spec, opt in zip(optimizer.group_specs, optimizer.optimizers)]}
    if not (hasattr(optimizer, "init") and hasattr(optimizer, "step")):
        raise TypeError(f"optimizer must be an optimizer object (with init and step); got {type(optimizer).__name__}")
    return _own_hyperparameters(optimizer)


def _check_state_type(optimizer, state):
    if not (isinstance(state, tuple) and hasattr(state, "_fields")):
        raise ValueError(f"state must be the optimizer state (a NamedTuple from init or step); got "
                         f"{type(state).__name__}")
    expected = getattr(type(optimizer).init, "__annotations__", {}).get("return")
    name = expected if isinstance(expected, str) else getattr(expected, "__name__", None)
    if name is not None and type(state).__name__ != name:
        raise ValueError(f"state is a {type(state).__name__}, but the state of {type(optimizer).__name__} is a "
                         f"{name}: pass the state this optimizer's init or step returned")


def _fields_of(state) -> dict:
    out = {}
    for name, value in zip(state._fields, state):
        if value is None or isinstance(value, np.ndarray):
            out[name] = None if value is None else value.copy()
        elif isinstance(value, (int, np.integer)) and not isinstance(value, bool):
            out[name] = int(value)
        else:
            raise ValueError(f"state field {name} = {value!r} is neither an array, an int nor None")
    return out


def state_dict(optimizer, state) -> dict:
    """The optimizer and its state as a plain dict: format, version, class name, hyperparameters, state fields."""
    hyper = hyperparameters(optimizer)
    _check_state_type(optimizer, state)
    if isinstance(optimizer, ParamGroups):
        if len(state.groups) != len(optimizer.optimizers):
            raise ValueError(f"state has {len(state.groups)} groups but the optimizer has {len(optimizer.optimizers)}")
        for opt, s in zip(optimizer.optimizers, state.groups):
            _check_state_type(opt, s)
        fields = {"groups": [_fields_of(s) for s in state.groups]}
    else:
        fields = _fields_of(state)
    return {"format": FORMAT, "version": VERSION, "optimizer": type(optimizer).__name__,
            "hyperparameters": hyper, "state": fields}


def _check_keys(what, d, expected):
    check_keys(what, d, expected)


def _hyper_differences(saved, current, where=""):
    """(structural, other): lists of 'name: saved X, this optimizer Y' where the two differ."""
    structural, other = [], []
    _check_keys(f"hyperparameters{where}", saved, current)
    for name, value in current.items():
        if name == "groups" and where == "":
            if not isinstance(saved["groups"], list) or len(saved["groups"]) != len(value):
                have = len(saved["groups"]) if isinstance(saved["groups"], list) else repr(saved["groups"])
                structural.append(f"groups: saved {have} groups, this optimizer {len(value)}")
                continue
            for k, (s, c) in enumerate(zip(saved["groups"], value)):
                st, ot = _hyper_differences(s, c, f"groups[{k}]")
                structural += st
                other += ot
        elif saved[name] != value:
            line = f"{where + '.' if where else ''}{name}: saved {saved[name]!r}, this optimizer {value!r}"
            (structural if name in _STRUCTURAL else other).append(line)
    return structural, other


def _load_fields(where, saved, template, runs):
    """template's NamedTuple type filled from saved, every field checked against the template's.

    runs: the number of runs of a batch (a step count may then be one int per run), else None."""
    _check_keys(f"state{where}", saved, template._fields)
    fields = {}
    for name, t in zip(template._fields, template):
        v = saved[name]
        label = f"state{where}.{name}"
        if name == "step":
            arr = np.asarray(v) if isinstance(v, np.ndarray) else None
            ok_int = isinstance(v, (int, np.integer)) and not isinstance(v, bool) and v >= 0
            ok_arr = (arr is not None and arr.dtype.kind in "iu" and runs is not None and arr.shape == (runs,)
                      and np.all(arr >= 0))
            if not (ok_int or ok_arr):
                raise ValueError(f"{label} must be an int >= 0 (or one per run for a batch); got {v!r}")
            fields[name] = int(v) if ok_int else arr.astype(int, copy=True)
        elif t is None:
            if v is not None:
                raise ValueError(f"{label} holds an array, but this optimizer keeps no {name} (with these "
                                 "hyperparameters, e.g. momentum = 0 or centered = False); the checkpoint "
                                 "was made with other settings")
            fields[name] = None
        else:
            if not isinstance(v, np.ndarray):
                raise ValueError(f"{label} is {v!r}, but this optimizer needs an array of shape {t.shape} there; "
                                 "the checkpoint was made with other settings (e.g. momentum = 0)")
            if v.shape != t.shape:
                raise ValueError(f"{label} has shape {v.shape} but these params need {t.shape}; load it with "
                                 "the params the checkpoint was saved with")
            if v.dtype != t.dtype:
                raise ValueError(f"{label} has dtype {v.dtype} but these params are {t.dtype}; load with params "
                                 f"of dtype {v.dtype}")
            if not np.all(np.isfinite(v)):
                bad = np.argwhere(~np.isfinite(v))[0].tolist()
                raise ValueError(f"{label} has a non-finite value ({v[tuple(bad)]}) at index {bad}; a buffer with "
                                 "inf or nan would poison every later step. Use an earlier checkpoint")
            fields[name] = v.copy()
    return type(template)(**fields)


def load_state_dict(optimizer, d, params, *, allow_new_hyperparameters: bool = False):
    """The optimizer state saved in d, checked against optimizer.init(params); ValueError on any mismatch.

        state = load_state_dict(optimizer, d, params)    # then optimizer.step(params, grads, state)
    """
    _check_keys("the saved optimizer state", d, _KEYS)
    if d["format"] != FORMAT:
        raise ValueError(f"format is {d['format']!r}, not {FORMAT!r}: this is not an optimizer state from "
                         "checkpoint.state_dict")
    if d["version"] != VERSION:
        raise ValueError(f"version is {d['version']!r} but this library reads version {VERSION}; re-save the "
                         "checkpoint with this version of lessons_lib")
    if d["optimizer"] != type(optimizer).__name__:
        raise ValueError(f"the checkpoint holds the state of {d['optimizer']}, but the optimizer is "
                         f"{type(optimizer).__name__}; make a {d['optimizer']} with the saved hyperparameters")
    template = optimizer.init(params)
    shape = np.shape(params)
    inner = optimizer.optimizer_class if isinstance(optimizer, ParamGroups) else type(optimizer)
    runs = shape[0] if len(shape) == 2 and not issubclass(inner, _UNBATCHED) else None
    structural, changed = _hyper_differences(d["hyperparameters"], hyperparameters(optimizer))
    if structural:
        raise ValueError("the parameter groups differ from the checkpoint's: " + "; ".join(structural))
    if changed and not allow_new_hyperparameters:
        raise ValueError("hyperparameters differ from the checkpoint's: " + "; ".join(changed)
                         + ". Make the optimizer with the saved values to resume exactly, or pass "
                           "allow_new_hyperparameters=True to continue with the new ones on purpose")
    if isinstance(optimizer, ParamGroups):
        _check_keys("state", d["state"], {"groups"})
        groups = d["state"]["groups"]
        if not isinstance(groups, list) or len(groups) != len(template.groups):
            raise ValueError(f"state.groups must hold {len(template.groups)} group states; got {groups!r}")
        return ParamGroupsState(groups=tuple(_load_fields(f".groups[{k}]", s, t, runs)
                                             for k, (s, t) in enumerate(zip(groups, template.groups))))
    return _load_fields("", d["state"], template, runs)


# ---------------------------------------------------------------- one .npz file with a JSON header

def _encode(value, arrays, where):
    if value is None or isinstance(value, (bool, str, int)):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else {"__float__": repr(value)}
    if isinstance(value, (np.ndarray, np.generic)):
        arr = np.asarray(value)
        if arr.dtype.kind not in "biuf":
            raise ValueError(f"{where} is an array of dtype {arr.dtype}; only bool, int and float arrays are saved")
        key = f"a{len(arrays)}"
        arrays[key] = arr
        return {"__array__" if isinstance(value, np.ndarray) else "__scalar__": key}
    if isinstance(value, ScalerState):
        return {"__ScalerState__": {"scale": _encode(value.scale, arrays, f"{where}.scale"),
                                    "growth_tracker": _encode(value.growth_tracker, arrays, f"{where}.growth_tracker")}}
    if isinstance(value, tuple) and hasattr(value, "_fields"):
        raise ValueError(f"{where} is a {type(value).__name__}; save an optimizer state as "
                         "state_dict(optimizer, state), which records the optimizer too")
    if isinstance(value, dict):
        out = {}
        for k, v in value.items():
            if not isinstance(k, str) or (k.startswith("__") and k.endswith("__")):
                raise ValueError(f"{where} has the key {k!r}; keys must be strings not of the form __name__")
            out[k] = _encode(v, arrays, f"{where}[{k!r}]")
        return out
    if isinstance(value, (list, tuple)):
        return [_encode(v, arrays, f"{where}[{i}]") for i, v in enumerate(value)]
    if callable(getattr(value, "state_dict", None)):
        return _encode(value.state_dict(), arrays, f"{where}.state_dict()")
    raise ValueError(f"{where} is a {type(value).__name__}, which a checkpoint cannot hold: give arrays, numbers, "
                     "strings, None, lists, dicts, a ScalerState or an object with state_dict()")


def _scaler_state(d, where):
    _check_keys(where, d, {"scale", "growth_tracker"})
    scale, tracker = np.asarray(d["scale"]), np.asarray(d["growth_tracker"])
    if scale.dtype.kind != "f" or not np.all(np.isfinite(scale)) or np.any(scale < 0):
        raise ValueError(f"{where}.scale must be a finite loss scale >= 0; got {d['scale']!r}")
    if tracker.dtype.kind not in "iu" or np.any(tracker < 0) or tracker.shape != scale.shape:
        raise ValueError(f"{where}.growth_tracker must be an int >= 0 (one per run, like scale); got "
                         f"{d['growth_tracker']!r}")
    return ScalerState(scale=d["scale"], growth_tracker=d["growth_tracker"])


def _decode(value, arrays, where):
    if isinstance(value, list):
        return [_decode(v, arrays, f"{where}[{i}]") for i, v in enumerate(value)]
    if not isinstance(value, dict):
        return value
    if set(value) == {"__array__"}:
        return arrays[value["__array__"]].copy()
    if set(value) == {"__scalar__"}:
        return arrays[value["__scalar__"]][()]
    if set(value) == {"__float__"}:
        return float(value["__float__"])
    if set(value) == {"__ScalerState__"}:
        return _scaler_state(_decode(value["__ScalerState__"], arrays, where), where)
    return {k: _decode(v, arrays, f"{where}[{k!r}]") for k, v in value.items()}


def _digest(arr: np.ndarray) -> str:
    return hashlib.sha256(f"{arr.dtype.str}{arr.shape}".encode() + arr.tobytes()).hexdigest()


def save_checkpoint(path, **parts) -> str:
    """Write the parts to one .npz file (written to a temporary file, then renamed: a crash never leaves half a file)."""
    if not parts:
        raise ValueError("save_checkpoint needs at least one part, e.g. save_checkpoint(path, params=w, "
                         "optimizer=state_dict(opt, state), step=k)")
    arrays = {}
    encoded = {name: _encode(value, arrays, f"parts[{name!r}]") for name, value in parts.items()}
    header = {"format": CHECKPOINT_FORMAT, "version": CHECKPOINT_VERSION, "parts": encoded,
              "sha256": {key: _digest(a) for key, a in arrays.items()}}
    blob = np.frombuffer(json.dumps(header).encode("utf-8"), dtype=np.uint8)
    path = os.fspath(path)
    tmp = f"{path}.tmp-{os.getpid()}"
    try:
        with open(tmp, "wb") as f:
            np.savez(f, __header__=blob, **arrays)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
    return path


def load_checkpoint(path) -> dict:
    """The parts saved by save_checkpoint, as {name: value}; ValueError for a truncated or corrupt file."""
    path = os.fspath(path)
    if not os.path.exists(path):
        raise FileNotFoundError(f"no checkpoint at {path!r}")
    with open(path, "rb") as f:
        raw = f.read()

    def corrupt(reason):
        return ValueError(f"{path!r} is not a readable lessons_lib checkpoint: {reason}. The file is truncated or "
                          "corrupt (or not a checkpoint); save it again or load an earlier one")

    try:
        with np.load(io.BytesIO(raw), allow_pickle=False) as npz:
            arrays = {key: npz[key] for key in npz.files}
        header = json.loads(arrays.pop("__header__").tobytes().decode("utf-8"))
    except KeyError:
        raise corrupt("it has no header") from None
    except (zipfile.BadZipFile, OSError, EOFError, ValueError, UnicodeDecodeError) as err:
        raise corrupt(f"{type(err).__name__}: {err}") from None
    if not isinstance(header, dict) or header.get("format") != CHECKPOINT_FORMAT:
        raise corrupt("its header does not name the lessons_lib checkpoint format")
    if header.get("version") != CHECKPOINT_VERSION:
        raise ValueError(f"{path!r} is a checkpoint of version {header.get('version')!r}; this library reads "
                         f"version {CHECKPOINT_VERSION}")
    sums = header.get("sha256")
    if not isinstance(sums, dict) or set(sums) != set(arrays):
        raise corrupt(f"its arrays {sorted(arrays)} do not match the header's list")
    bad = sorted(key for key, a in arrays.items() if _digest(a) != sums[key])
    if bad:
        raise corrupt(f"the arrays {bad} do not match their SHA-256 checksums")
    try:
        return _decode(header["parts"], arrays, "parts")
    except KeyError as err:
        raise corrupt(f"its header refers to a missing array {err}") from None
