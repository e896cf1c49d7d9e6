"""ParamGroups (per-group hyperparameters over one parameter vector) and the ndim weight-decay rule.

Oracles: the plain optimizer (one group covering every coordinate must be the same run, bit for
bit), separate plain optimizers on each group's coordinates, hand-written index lists for the
layout rule, and torch.optim.AdamW / SGD with two param groups (float64, CPU, foreach=False):
- step by step: before each torch step our ParamGroups gets torch's own parameters and state and
  takes the same step; parameters and every buffer must agree to 1e-12 (buffers relative to
  max(1, |value|), as in test_conformance_adaptive.py);
- whole path: our loop against torch's from the same start, also 1e-12; these settings contract
  (small lrs on a quadratic), so a one-step rounding difference cannot grow.
The torch tests skip without torch; with LESSONS_REQUIRE_TORCH=1 (CI) a skip fails (conftest.py).
"""
from __future__ import annotations

import numpy as np
import pytest

from lessons_lib.adaptive import Adagrad, RMSprop
from lessons_lib.lean import Adafactor, Lion, Muon
from lessons_lib.optimizers import SGD, Adam, AdamState, AdamW, EMAMomentum, SGDState
from lessons_lib.param_groups import (
    ParamGroups, ParamGroupsState, decay_split, flatten, layout_of, layout_slices, unflatten, weight_decay_groups,
)
from lessons_lib.runner import run
from lessons_lib.surfaces import COURSE, Quadratic

TOL = 1e-12
STEPS = 150
SURFACE5 = Quadratic([100.0, 1.0, 10.0, 3.0, 0.5])
START5 = np.array([1.0, -1.0, 0.5, 2.0, -0.3])

PLAIN = {
    "SGD-momentum": (SGD, dict(lr=0.005, momentum=0.9, weight_decay=0.01)),
    "EMAMomentum": (EMAMomentum, dict(lr=0.01, beta=0.8)),
    "Adam": (Adam, dict(lr=0.02)),
    "AdamW": (AdamW, dict(lr=0.02, weight_decay=0.1)),
    "Adagrad": (Adagrad, dict(lr=0.3, lr_decay=0.01)),
    "RMSprop-centered-momentum": (RMSprop, dict(lr=0.003, centered=True, momentum=0.5)),
    "Lion": (Lion, dict(lr=0.01, weight_decay=0.1)),
    "Adafactor": (Adafactor, dict(lr=0.05)),
}


def loop(opt, grad, w, steps, lr=None):
    state = opt.init(w)
    path = [w]
    for _ in range(steps):
        w, state = opt.step(w, grad(w), state, lr=lr)
        path.append(w)
    return np.array(path), state


# ---------------------------------------------------------------- against the plain optimizers

@pytest.mark.parametrize("spec", [slice(None), np.ones(5, dtype=bool), np.arange(5)], ids=["slice", "mask", "indices"])
@pytest.mark.parametrize("name", list(PLAIN))
def test_one_group_is_the_plain_optimizer_bit_for_bit(name, spec):
    cls, settings = PLAIN[name]
    ours, s_ours = loop(ParamGroups(cls, [{"params": spec}], **settings), SURFACE5.grad, START5, 100)
    ref, s_ref = loop(cls(**settings), SURFACE5.grad, START5, 100)
    assert np.array_equal(ours, ref)
    assert len(s_ours.groups) == 1 and type(s_ours.groups[0]) is type(s_ref)
    for a, b in zip(s_ours.groups[0], s_ref):
        assert (a is None and b is None) or np.array_equal(a, b)


@pytest.mark.parametrize("name", [n for n in PLAIN if n != "Adafactor"])
def test_one_group_is_the_plain_optimizer_for_a_batch_of_runs(name):
    cls, settings = PLAIN[name]
    starts = np.stack([START5, -START5, 0.5 * START5])
    ours, _ = loop(ParamGroups(cls, [{"params": slice(None)}], **settings), SURFACE5.grad, starts, 60)
    ref, _ = loop(cls(**settings), SURFACE5.grad, starts, 60)
    assert np.array_equal(ours, ref)


@pytest.mark.parametrize("name", list(PLAIN))
def test_two_groups_are_two_plain_optimizers_on_their_own_coordinates(name):
    cls, settings = PLAIN[name]
    a, b = np.array([0, 3]), np.array([1, 2, 4])
    override = {"lr": settings["lr"] * 3, **({"weight_decay": 0.0} if "weight_decay" in settings else {})}
    ours, _ = loop(ParamGroups(cls, [{"params": a}, {"params": b, **override}], **settings), SURFACE5.grad, START5, 80)
    c = SURFACE5.c
    ref_a, _ = loop(cls(**settings), lambda w: c[a] * w, START5[a], 80)
    ref_b, _ = loop(cls(**{**settings, **override}), lambda w: c[b] * w, START5[b], 80)
    assert np.array_equal(ours[:, a], ref_a) and np.array_equal(ours[:, b], ref_b)


def test_a_number_as_lr_sets_every_group_and_a_list_sets_each():
    groups = [{"params": [0], "lr": 0.1}, {"params": [1], "lr": 0.01}]
    opt = ParamGroups(Adam, groups)
    assert opt.group_lrs == (0.1, 0.01) and opt.lr is None
    same, _ = loop(opt, COURSE.grad, np.array([1.0, 1.0]), 30, lr=0.05)
    ref, _ = loop(Adam(lr=0.05), COURSE.grad, np.array([1.0, 1.0]), 30)
    assert np.array_equal(same, ref)
    scaled, _ = loop(opt, COURSE.grad, np.array([1.0, 1.0]), 30, lr=[0.5 * 0.1, 0.5 * 0.01])
    ref0, _ = loop(Adam(lr=0.05), lambda w: 100.0 * w, np.array([1.0]), 30)
    ref1, _ = loop(Adam(lr=0.005), lambda w: w, np.array([1.0]), 30)
    assert np.array_equal(scaled[:, 0], ref0[:, 0]) and np.array_equal(scaled[:, 1], ref1[:, 0])
    assert ParamGroups(Adam, [{"params": [0]}, {"params": [1]}], lr=0.02).lr == 0.02


def test_runner_keeps_each_groups_lr_and_records_nan_when_they_differ():
    opt = ParamGroups(SGD, [{"params": [0], "lr": 0.005}, {"params": [1], "lr": 0.5, "momentum": 0.5}])
    trace = run(opt, 40)
    ref, _ = loop(opt, COURSE.grad, np.array([1.0, 1.0]), 40)
    assert np.array_equal(trace.params, ref) and np.all(np.isnan(trace.lrs))


def test_the_state_prints_one_state_per_group():
    opt = ParamGroups(SGD, [{"params": [0]}, {"params": [1], "momentum": 0.9}], lr=0.1)
    state = opt.init(np.array([1.0, 2.0]))
    assert state == ParamGroupsState(groups=(SGDState(step=0, momentum_buffer=None),
                                             SGDState(step=0, momentum_buffer=np.zeros(1))))
    assert "momentum_buffer=array([0.])" in repr(state)


# ---------------------------------------------------------------- bad input

@pytest.mark.parametrize("make, match", [
    (lambda: ParamGroups(AdamW(), [{"params": [0, 1]}]), "must be an optimizer class"),
    (lambda: ParamGroups(AdamW, []), "non-empty list of dicts"),
    (lambda: ParamGroups(AdamW, {"params": [0, 1]}), "non-empty list of dicts"),
    (lambda: ParamGroups(AdamW, [{"lr": 0.1}]), r'groups\[0\] must be a dict with a "params" entry'),
    (lambda: ParamGroups(AdamW, [{"params": [0, 1], "momentum": 0.9}]),
     r"groups\[0\] has \['momentum'\], which AdamW does not take; its hyperparameters are \['lr', 'betas'"),
    (lambda: ParamGroups(SGD, [{"params": [0, 1]}], lr=0.1, betas=(0.9, 0.99)), r"defaults has \['betas'\]"),
    (lambda: ParamGroups(SGD, [{"params": [0, 1], "lr": -1.0}]), "lr must be a finite number > 0; got -1.0"),
    (lambda: ParamGroups(SGD, [{"params": [0], "lr": np.ones(2)}, {"params": [1], "lr": np.ones(3)}]),
     r"different numbers of runs \[2, 3\]"),
])
def test_bad_groups_are_refused_at_construction(make, match):
    with pytest.raises((ValueError, TypeError), match=match):
        make()


@pytest.mark.parametrize("groups, match", [
    ([{"params": [0, 1, 2]}, {"params": [2, 3]}], r"groups overlap: indices \[2\] are in groups\[1\] and in groups\[0\]"),
    ([{"params": slice(0, 3)}, {"params": [1]}, {"params": [3]}], r"indices \[1\] are in groups\[1\] and in groups\[0\]"),
    ([{"params": [0]}, {"params": [3]}], r"indices \[1, 2\] of params \(d = 4\) are in no group"),
    ([{"params": [0, 1, 2, 4]}], r"indices \[4\] outside 0 .. 3"),
    ([{"params": [-1, 0, 1, 2]}], "negative indices are not accepted"),
    ([{"params": [0, 0, 1, 2, 3]}], r"lists indices \[0\] more than once"),
    ([{"params": np.array([True, False])}], r"boolean mask of shape \(2,\).*needs shape \(4,\)"),
    ([{"params": [0.0, 1.0, 2.0, 3.0]}], "a slice, a boolean mask or a 1-D array of integer indices"),
    ([{"params": slice(0, 4)}, {"params": slice(4, 8)}], r"groups\[1\]\[\"params\"\] selects no coordinates"),
])
def test_groups_that_do_not_partition_the_coordinates_are_refused_naming_the_indices(groups, match):
    with pytest.raises(ValueError, match=match):
        ParamGroups(Adam, groups).init(np.zeros(4))


def test_bad_step_arguments_are_refused():
    opt = ParamGroups(Adam, [{"params": [0]}, {"params": [1]}])
    w = np.array([1.0, 1.0])
    state = opt.init(w)
    with pytest.raises(ValueError, match="lr is a list of 3 values but there are 2 groups"):
        opt.step(w, w, state, lr=[0.1, 0.1, 0.1])
    with pytest.raises(ValueError, match="state must be the ParamGroupsState of 2 groups"):
        opt.step(w, w, AdamState(step=0, m=w, v=w))
    with pytest.raises(ValueError, match="grads has shape"):
        opt.step(w, np.ones(3), state)
    with pytest.raises(ValueError, match="grads contains a non-finite value"):
        opt.step(w, np.array([np.nan, 0.0]), state)
    with pytest.raises(ValueError, match=r"params must have shape \(d,\) or \(runs, d\)"):
        opt.init(np.zeros((2, 2, 2)))
    with pytest.raises(ValueError, match=r"would treat params of shape \(3, 2\) as one matrix, not as 3 runs"):
        ParamGroups(Adafactor, [{"params": [0, 1]}]).init(np.zeros((3, 2)))
    with pytest.raises(ValueError, match="Muon takes one matrix"):
        ParamGroups(Muon, [{"params": [0, 1]}]).init(np.zeros(2))


# ---------------------------------------------------------------- layouts and the ndim rule

LAYOUT = {"embedding": (5, 3), "block.weight": (3, 3), "block.bias": (3,), "norm.scale": (3,), "temperature": ()}


def test_ndim_rule_decays_matrices_and_not_vectors_or_scalars():
    decay, no_decay = decay_split(LAYOUT)
    # by hand: embedding 0..14, block.weight 15..23, block.bias 24..26, norm.scale 27..29, temperature 30
    assert decay.tolist() == list(range(0, 24))
    assert no_decay.tolist() == list(range(24, 31))
    groups = weight_decay_groups(LAYOUT, 0.1)
    assert [(g["params"].tolist(), g["weight_decay"]) for g in groups] == [(list(range(0, 24)), 0.1),
                                                                           (list(range(24, 31)), 0.0)]
    assert layout_slices(LAYOUT)["norm.scale"] == slice(27, 30)


def test_ndim_rule_misfires_on_a_logistic_regressions_weight_vector():
    """A logistic regression's only weights are w (d,): ndim 1, so the rule decays nothing."""
    decay, no_decay = decay_split({"w": (2,)})
    assert decay.size == 0 and no_decay.tolist() == [0, 1]
    groups = weight_decay_groups({"w": (2,)}, 0.1)
    assert len(groups) == 1 and groups[0]["weight_decay"] == 0.0
    decayed = run(ParamGroups(AdamW, groups, lr=0.01, weight_decay=0.1), 50)
    assert np.array_equal(decayed.params, run(AdamW(lr=0.01, weight_decay=0.0), 50).params)


def test_flatten_and_unflatten_round_trip_named_arrays():
    rng = np.random.default_rng(0)
    named = {name: rng.normal(size=shape) for name, shape in LAYOUT.items()}
    layout = layout_of(named)
    assert layout == LAYOUT
    v = flatten(named)
    assert v.shape == (31,) and np.array_equal(v[15:24], named["block.weight"].ravel())
    back = unflatten(v, layout)
    assert list(back) == list(LAYOUT) and all(np.array_equal(back[k], named[k]) for k in LAYOUT)
    batch = unflatten(np.stack([v, 2 * v]), layout)
    assert batch["embedding"].shape == (2, 5, 3) and np.array_equal(batch["embedding"][1], 2 * named["embedding"])
    with pytest.raises(ValueError, match="do not match the layout's names"):
        flatten({"b": np.zeros(2), "a": np.zeros(2)}, {"a": (2,), "b": (2,)})
    with pytest.raises(ValueError, match=r"a has shape \(3,\) but the layout says \(2,\)"):
        flatten({"a": np.zeros(3)}, {"a": (2,)})
    with pytest.raises(ValueError, match=r"vector must have shape \(31,\)"):
        unflatten(np.zeros(30), layout)
    with pytest.raises(ValueError, match="non-empty dict"):
        decay_split({})


# ---------------------------------------------------------------- torch.optim with two param groups

W0 = np.array([[1.0, -0.5], [0.3, 2.0]])
B0 = np.array([0.7, -1.2])
C_W = np.array([[100.0, 3.0], [1.0, 10.0]])
C_B = np.array([2.0, 50.0])
MODEL = {"weight": W0, "bias": B0}
C_FLAT = flatten({"weight": C_W, "bias": C_B})

TORCH_CASES = {
    "AdamW": (AdamW, "AdamW", dict(lr=0.01, betas=(0.9, 0.99), eps=1e-8), dict(weight_decay=0.1),
              dict(weight_decay=0.0, lr=0.03)),
    "SGD-momentum": (SGD, "SGD", dict(lr=0.004, momentum=0.9), dict(weight_decay=0.05),
                     dict(weight_decay=0.0, lr=0.01, momentum=0.8)),
}


def ours_for(case):
    cls, _, defaults, decay, no_decay = TORCH_CASES[case]
    decay_idx, no_decay_idx = decay_split(layout_of(MODEL))
    return ParamGroups(cls, [{"params": decay_idx, **decay}, {"params": no_decay_idx, **no_decay}], **defaults)


def torch_setup(torch, case):
    _, name, defaults, decay, no_decay = TORCH_CASES[case]
    W = torch.nn.Parameter(torch.tensor(W0, dtype=torch.float64))
    b = torch.nn.Parameter(torch.tensor(B0, dtype=torch.float64))
    opt = getattr(torch.optim, name)([{"params": [W], **decay}, {"params": [b], **no_decay}], foreach=False, **defaults)
    cw, cb = torch.tensor(C_W), torch.tensor(C_B)

    def backward():
        opt.zero_grad()
        (0.5 * (cw * W * W).sum() + 0.5 * (cb * b * b).sum()).backward()
    return W, b, opt, backward


def flat(W, b):
    return np.concatenate([W.detach().numpy().ravel(), b.detach().numpy().ravel()])


def state_from_torch(case, opt, W, b, ours, w, k):
    """torch's per-tensor state as our ParamGroupsState (our init before torch has one)."""
    if not opt.state[W]:
        return ours.init(w)
    groups = []
    for p in (W, b):
        s = opt.state[p]
        copy = lambda name: s[name].detach().numpy().ravel().copy()  # noqa: E731
        if case == "AdamW":
            groups.append(AdamState(step=int(s["step"]), m=copy("exp_avg"), v=copy("exp_avg_sq")))
        else:          # torch's SGD keeps no step count; ours only asks whether it is the first step
            groups.append(SGDState(step=k, momentum_buffer=copy("momentum_buffer")))
    return ParamGroupsState(groups=tuple(groups))


def scaled_diff(a, b):
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    assert a.shape == b.shape and np.all(np.isfinite(a)) and np.all(np.isfinite(b))
    return float(np.max(np.abs(a - b) / np.maximum(1.0, np.abs(b))))


@pytest.mark.conformance
@pytest.mark.parametrize("case", list(TORCH_CASES))
def test_two_param_groups_step_from_torch_state_matches_torch(torch, case):
    ours = ours_for(case)
    W, b, opt, backward = torch_setup(torch, case)
    worst_params = worst_state = 0.0
    for k in range(STEPS):
        backward()
        w = flat(W, b)
        g = np.concatenate([W.grad.numpy().ravel(), b.grad.numpy().ravel()])
        new_w, new_state = ours.step(w, g, state_from_torch(case, opt, W, b, ours, w, k))
        opt.step()
        ref = state_from_torch(case, opt, W, b, ours, w, k + 1)
        worst_params = max(worst_params, float(np.max(np.abs(new_w - flat(W, b)))))
        for mine, theirs in zip(new_state.groups, ref.groups):
            assert mine.step == theirs.step
            for a, t in zip(mine[1:], theirs[1:]):
                worst_state = max(worst_state, scaled_diff(a, t))
    assert worst_params <= TOL and worst_state <= TOL, (worst_params, worst_state)


@pytest.mark.conformance
@pytest.mark.parametrize("case", list(TORCH_CASES))
def test_two_param_groups_path_matches_torch(torch, case):
    ours = ours_for(case)
    path, _ = loop(ours, lambda w: C_FLAT * w, flatten(MODEL), STEPS)
    W, b, opt, backward = torch_setup(torch, case)
    ref = [flat(W, b)]
    for _ in range(STEPS):
        backward()
        opt.step()
        ref.append(flat(W, b))
    diff = np.max(np.abs(path - np.array(ref)), axis=1)
    assert np.max(diff) <= TOL, float(np.max(diff))
    assert np.linalg.norm(path[-1]) < 0.5 * np.linalg.norm(path[0])       # the path contracts
    # the groups really differ: the bias coordinates moved with their own lr and no decay
    assert not np.array_equal(path, loop(ours_for(case).optimizer_class(**TORCH_CASES[case][2]),
                                         lambda w: C_FLAT * w, flatten(MODEL), STEPS)[0])
