"""Parameter groups: one optimizer per group of coordinates, each with its own hyperparameters.

Frameworks keep a model's parameters as named arrays and let hyperparameters differ per group
(torch: ``AdamW([{"params": weights}, {"params": biases, "weight_decay": 0.0}], lr=1e-3)``).
The course's optimizers take ONE vector w (d,) (or a batch of runs (R, d)), so a group here is
a set of coordinates of w, given over the last axis:

    groups G_1 .. G_K partition {0, .., d-1}            (every coordinate in exactly one group)
    w[..., G_k], s_k <- opt_k.step(w[..., G_k], g[..., G_k], s_k, lr_k)     for each group k
    opt_k = optimizer_class(**{**defaults, **overrides_k})

Every optimizer here is per coordinate except Adafactor (its step uses RMS(w) of the whole
parameter), so a group's coordinates behave as that group's own parameter, as in torch.

The weight-decay rule by shape, nanoGPT's (timm adds a ".bias" name check and a per-model exclusion list;
Hugging Face's Trainer decides by name and module type instead: no decay for "bias" and LayerNorm):

    decay   every tensor with ndim >= 2  (weight matrices, embedding tables, conv kernels)
    no decay every tensor with ndim <= 1 (biases, LayerNorm/BatchNorm scales and shifts)

decay_split(layout) applies it to a layout {name: shape} of named arrays flattened in order
(layout_of, flatten, unflatten build and undo that vector). The rule looks at shapes only,
not at what a tensor means, and misfires where the two disagree:

- a hand-written logistic regression's own weight vector w (d,) is ndim 1, so the
  rule leaves the model's only weights undecayed: weight decay does nothing at all;
- an embedding table (vocab, dim) is 2-D and gets decayed, although some recipes exclude it;
- a weight stored flattened (a (d_in * d_out,) vector) escapes decay, and a batch of biases
  stored as one (layers, width) matrix gets it.
Give such tensors a group of their own (their slice from layout_slices) instead.
"""
from __future__ import annotations

import inspect
from typing import NamedTuple

import numpy as np

from .lean import Adafactor, Muon
from .optimizers import _float_params
from .validation import check_finite, check_same_shape

__all__ = [
    "ParamGroups", "ParamGroupsState", "layout_of", "layout_slices", "flatten", "unflatten",
    "decay_split", "weight_decay_groups",
]

_UNBATCHED = (Adafactor, Muon)   # treat a 2-D array as one matrix, not as a batch of runs


class ParamGroupsState(NamedTuple):
    """groups: one optimizer state per group, in the order the groups were given (print groups[k])."""
    groups: tuple


def _show_indices(idx) -> str:
    idx = [int(i) for i in idx]
    return str(idx) if len(idx) <= 12 else f"{idx[:12][:-1]} ... ({len(idx)} indices)"


def _resolve(k: int, spec, d: int) -> np.ndarray:
    """Group k's coordinates as sorted int indices into the last axis of a vector of length d."""
    where = f'groups[{k}]["params"]'
    if isinstance(spec, slice):
        return np.arange(d)[spec]
    arr = np.asarray(spec)
    if arr.dtype == bool:
        if arr.shape != (d,):
            raise ValueError(f"{where} is a boolean mask of shape {arr.shape} but params have {d} coordinates "
                             f"in their last axis; a mask needs shape ({d},)")
        return np.flatnonzero(arr)
    if arr.ndim != 1 or (arr.size and arr.dtype.kind not in "iu"):
        raise ValueError(f"{where} must be a slice, a boolean mask or a 1-D array of integer indices; got "
                         f"{spec!r}")
    arr = arr.astype(np.int64)
    bad = arr[(arr < 0) | (arr >= d)]
    if bad.size:
        raise ValueError(f"{where} has indices {_show_indices(bad)} outside 0 .. {d - 1} (params have {d} "
                         "coordinates); negative indices are not accepted, write d - 1 for the last")
    uniq, counts = np.unique(arr, return_counts=True)
    if np.any(counts > 1):
        raise ValueError(f"{where} lists indices {_show_indices(uniq[counts > 1])} more than once; "
                         "list each coordinate once")
    return arr


def _accepted_names(optimizer_class) -> list[str]:
    return [n for n in inspect.signature(optimizer_class.__init__).parameters if n != "self"]


class ParamGroups:
    """Parameter groups: a separate optimizer_class(**defaults, **overrides) on each group's coordinates.

        w[..., G_k], s_k <- opt_k.step(w[..., G_k], g[..., G_k], s_k, lr_k)   for k = 0 .. K-1

    groups: a list of dicts, each with "params" (a slice, a boolean mask or integer indices over
    the last axis of w) and any hyperparameters that override defaults for that group, e.g.
    ParamGroups(AdamW, [{"params": slice(0, 4)}, {"params": [4], "weight_decay": 0.0}], lr=1e-2).
    The groups must cover every coordinate exactly once; init(params) checks that, since a slice
    or mask only has indices once d is known.

    step(..., lr=None) uses each group's own lr; a number (or a per-run array, for a batch) sets
    the lr of EVERY group, as writing group["lr"] = lr in each of torch's groups does, so groups
    with different lrs end up equal; to scale them all (a scheduler's factor f), pass a list with
    one lr per group: lr=[f * lr for lr in opt.group_lrs].
    .lr is the groups' common lr, or None when they differ (runner.run then records lr as nan and
    every group keeps its own; a schedule passed to runner.run sets one lr for every group).
    With a batch of runs and a loss scaler, runner.run cannot hold back the group states of the
    runs whose step it skipped (it selects top-level state arrays only): run those one at a time.
    """

    def __init__(self, optimizer_class, groups, **defaults):
        if not isinstance(optimizer_class, type):
            raise TypeError(f"optimizer_class must be an optimizer class such as AdamW (not an instance); "
                            f"got {optimizer_class!r}")
        if isinstance(optimizer_class, type) and issubclass(optimizer_class, ParamGroups):
            raise ValueError("optimizer_class must be a plain optimizer such as AdamW, not ParamGroups")
        if not isinstance(groups, (list, tuple)) or len(groups) == 0:
            raise ValueError(f"groups must be a non-empty list of dicts such as [{{'params': slice(0, 2)}}, "
                             f"{{'params': [2], 'weight_decay': 0.0}}]; got {groups!r}")
        accepted = _accepted_names(optimizer_class)
        self.optimizer_class = optimizer_class
        self.defaults = dict(defaults)
        self._check_names("defaults", self.defaults, accepted)
        self.group_specs = []
        self.optimizers = []
        for k, group in enumerate(groups):
            if not isinstance(group, dict) or "params" not in group:
                raise ValueError(f'groups[{k}] must be a dict with a "params" entry (a slice, a boolean mask '
                                 f"or integer indices); got {group!r}")
            overrides = {n: v for n, v in group.items() if n != "params"}
            self._check_names(f"groups[{k}]", overrides, accepted)
            self.group_specs.append(group["params"])
            self.optimizers.append(optimizer_class(**{**self.defaults, **overrides}))
        self.overrides = [{n: v for n, v in g.items() if n != "params"} for g in groups]
        self._indices = {}
        runs = {opt.runs for opt in self.optimizers} - {None}
        if len(runs) > 1:
            raise ValueError(f"the groups have per-run hyperparameters for different numbers of runs {sorted(runs)}; "
                             "give every per-run array the same length")
        self.runs = next(iter(runs), None)

    def _check_names(self, where, values, accepted):
        unknown = sorted(set(values) - set(accepted))
        if unknown:
            raise ValueError(f"{where} has {unknown}, which {self.optimizer_class.__name__} does not take; "
                             f"its hyperparameters are {accepted}")

    @property
    def group_lrs(self) -> tuple:
        """Each group's own lr, in group order."""
        return tuple(opt.lr for opt in self.optimizers)

    @property
    def lr(self):
        """The lr every group shares, or None when the groups' lrs differ."""
        first = self.optimizers[0].lr
        same = all(np.shape(o.lr) == np.shape(first) and np.all(o.lr == first) for o in self.optimizers)
        return first if same else None

    def indices(self, d: int) -> list[np.ndarray]:
        """Each group's coordinates (int indices) for params with d coordinates; checks they partition 0..d-1."""
        if d in self._indices:
            return self._indices[d]
        idx = [_resolve(k, spec, d) for k, spec in enumerate(self.group_specs)]
        for k, ix in enumerate(idx):
            if ix.size == 0:
                raise ValueError(f'groups[{k}]["params"] selects no coordinates of params with {d}; '
                                 "remove the empty group")
        owner = np.full(d, -1)
        for k, ix in enumerate(idx):
            clash = ix[owner[ix] >= 0]
            if clash.size:
                others = sorted({int(owner[i]) for i in clash})
                raise ValueError(f"groups overlap: indices {_show_indices(clash)} are in groups[{k}] and in "
                                 f"groups{others}; every coordinate must belong to exactly one group")
            owner[ix] = k
        missing = np.flatnonzero(owner < 0)
        if missing.size:
            raise ValueError(f"indices {_show_indices(missing)} of params (d = {d}) are in no group; every "
                             "coordinate must belong to exactly one group (add a group for them, e.g. "
                             f'{{"params": {missing.tolist()[:4]}}})')
        self._indices[d] = idx
        return idx

    def _check_params(self, params) -> np.ndarray:
        params = _float_params(params)
        if params.ndim not in (1, 2):
            raise ValueError(f"params must have shape (d,) or (runs, d); got {params.shape}")
        if params.ndim == 2 and issubclass(self.optimizer_class, _UNBATCHED):
            raise ValueError(f"{self.optimizer_class.__name__} in parameter groups takes one vector (d,): it would "
                             f"treat params of shape {params.shape} as one matrix, not as {params.shape[0]} runs; "
                             "run one start at a time")
        return params

    def init(self, params) -> ParamGroupsState:
        """Each group's optimizer init on its coordinates."""
        params = self._check_params(params)
        idx = self.indices(params.shape[-1])
        return ParamGroupsState(groups=tuple(opt.init(params[..., ix]) for opt, ix in zip(self.optimizers, idx)))

    def _group_lrs(self, lr):
        if lr is None:
            return [None] * len(self.optimizers)
        if isinstance(lr, (list, tuple)):
            if len(lr) != len(self.optimizers):
                raise ValueError(f"lr is a list of {len(lr)} values but there are {len(self.optimizers)} groups; "
                                 "give one lr per group (or one number for every group)")
            return list(lr)
        return [lr] * len(self.optimizers)

    def step(self, params, grads, state: ParamGroupsState, lr=None):
        """One step of every group's optimizer on its coordinates: (new params, new ParamGroupsState)."""
        params = self._check_params(params)
        if grads is None:
            raise ValueError("grads is None; pass the gradient array (the same shape as params)")
        grads = check_finite("grads", grads).astype(params.dtype, copy=False)
        check_same_shape("params", params, "grads", grads)
        if not isinstance(state, ParamGroupsState) or len(state.groups) != len(self.optimizers):
            n = len(state.groups) if isinstance(state, ParamGroupsState) else None
            raise ValueError(f"state must be the ParamGroupsState of {len(self.optimizers)} groups from this "
                             f"object's init or step; got {type(state).__name__}"
                             + (f" with {n} groups" if n is not None else ""))
        idx = self.indices(params.shape[-1])
        out = np.empty_like(params)
        states = []
        for opt, ix, s, lr_k in zip(self.optimizers, idx, state.groups, self._group_lrs(lr)):
            new, s = opt.step(params[..., ix], grads[..., ix], s, lr=lr_k)
            out[..., ix] = new
            states.append(s)
        return out, ParamGroupsState(groups=tuple(states))

    def __repr__(self):
        groups = ", ".join(f"{{'params': {spec!r}{''.join(f', {n!r}: {v!r}' for n, v in o.items())}}}"
                           for spec, o in zip(self.group_specs, self.overrides))
        extra = "".join(f", {n}={v!r}" for n, v in self.defaults.items())
        return f"ParamGroups({self.optimizer_class.__name__}, [{groups}]{extra})"


# ---------------------------------------------------------------- named arrays as one vector

def _check_layout(layout) -> dict:
    if not isinstance(layout, dict) or not layout:
        raise ValueError(f"layout must be a non-empty dict {{name: shape}} such as {{'weight': (3, 2), "
                         f"'bias': (3,)}}; got {layout!r}")
    out = {}
    for name, shape in layout.items():
        if not isinstance(name, str):
            raise TypeError(f"layout names must be strings; got {name!r}")
        try:
            shape = tuple(int(s) for s in shape)
        except TypeError:
            raise ValueError(f"layout[{name!r}] must be a shape (a tuple of sizes) such as (3,); got {shape!r}") from None
        if any(s < 0 for s in shape):
            raise ValueError(f"layout[{name!r}] has a negative size: {shape}")
        out[name] = shape
    return out


def layout_of(named: dict) -> dict:
    """The layout {name: shape} of named arrays, in their order: what flatten and decay_split read."""
    if not isinstance(named, dict) or not named:
        raise ValueError(f"named must be a non-empty dict {{name: array}}; got {named!r}")
    return {name: np.shape(a) for name, a in named.items()}


def layout_slices(layout) -> dict:
    """Where each named array sits in the flat vector: {name: slice(start, start + size)}."""
    layout = _check_layout(layout)
    out, start = {}, 0
    for name, shape in layout.items():
        size = int(np.prod(shape, dtype=np.int64))
        out[name] = slice(start, start + size)
        start += size
    return out


def flatten(named: dict, layout=None) -> np.ndarray:
    """One vector (d,): every named array raveled (C order) and concatenated in the layout's order."""
    layout = _check_layout(layout_of(named) if layout is None else layout)
    if list(named) != list(layout):
        raise ValueError(f"named arrays {list(named)} do not match the layout's names {list(layout)} "
                         "(same names in the same order)")
    parts = []
    for name, shape in layout.items():
        a = _float_params(named[name])
        if a.shape != shape:
            raise ValueError(f"{name} has shape {a.shape} but the layout says {shape}")
        parts.append(a.reshape(-1))
    return np.concatenate(parts)


def unflatten(vector, layout) -> dict:
    """The named arrays back from a flat vector (d,) (or a batch (R, d): each array gets a leading R)."""
    slices = layout_slices(layout)
    layout = _check_layout(layout)
    vector = _float_params(vector)
    d = sum(s.stop - s.start for s in slices.values())
    if vector.ndim not in (1, 2) or vector.shape[-1] != d:
        raise ValueError(f"vector must have shape ({d},) or (runs, {d}) for this layout; got {vector.shape}")
    lead = vector.shape[:-1]
    return {name: vector[..., sl].reshape(lead + layout[name]) for name, sl in slices.items()}


def decay_split(layout):
    """The ndim rule: (decay, no_decay) int indices; arrays with ndim >= 2 are decayed, ndim <= 1 not.

    Misfires for a 1-D weight vector (a logistic regression's w: no decay at all) and decays
    embedding tables (2-D); see the module docstring.
    """
    layout = _check_layout(layout)
    slices = layout_slices(layout)
    decay, no_decay = [], []
    for name, sl in slices.items():
        (decay if len(layout[name]) >= 2 else no_decay).append(np.arange(sl.start, sl.stop))
    join = lambda parts: np.concatenate(parts) if parts else np.zeros(0, dtype=np.int64)  # noqa: E731
    return join(decay), join(no_decay)


def weight_decay_groups(layout, weight_decay) -> list[dict]:
    """Groups for ParamGroups by the ndim rule: [{"params": decay, "weight_decay": wd}, {"params": no_decay,
    "weight_decay": 0.0}], an empty group left out."""
    decay, no_decay = decay_split(layout)
    groups = []
    if decay.size:
        groups.append({"params": decay, "weight_decay": weight_decay})
    if no_decay.size:
        groups.append({"params": no_decay, "weight_decay": 0.0})
    return groups
