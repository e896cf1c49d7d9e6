"""Unit tests of lessons_lib.lr_schedulers: argument checks, state_dict round trips, per-run
rates, and rates computed by hand (the torch comparisons are in test_lr_schedulers_torch.py)."""
from __future__ import annotations

import json
import math

import numpy as np
import pytest

from lessons_lib.lr_plateau import ReduceLROnPlateau
from lessons_lib.lr_schedulers import (
    STATE_VERSION,
    CosineAnnealingWarmRestarts,
    ExponentialLR,
    MultiStepLR,
    OneCycleLR,
    StepLR,
)
from lessons_lib.optimizers import SGD
from lessons_lib.surfaces import COURSE


def raises_naming(call, name: str, value: str, accepted: str, error=ValueError):
    with pytest.raises(error) as info:
        call()
    message = str(info.value)
    assert name in message, message
    assert value in message, message
    assert accepted in message, message
    return message


# ---------------------------------------------------------------- argument checks

BAD_ARGUMENTS = {
    "lr=0": (lambda: StepLR(0, 3), "lr", "0.0", "> 0"),
    "lr=-0.1": (lambda: ExponentialLR(-0.1, 0.9), "lr", "-0.1", "> 0"),
    "lr=nan": (lambda: MultiStepLR(math.nan, [3]), "lr", "nan", "> 0"),
    "lr 2-D": (lambda: StepLR(np.ones((2, 2)), 3), "lr", "(2, 2)", "1-D array"),
    "step_size=0": (lambda: StepLR(0.1, 0), "step_size", "0", ">= 1"),
    "step_size=-3": (lambda: StepLR(0.1, -3), "step_size", "-3", ">= 1"),
    "step_size=2.5": (lambda: StepLR(0.1, 2.5), "step_size", "2.5", "integer"),
    "StepLR gamma=0": (lambda: StepLR(0.1, 3, gamma=0), "gamma", "0", "> 0"),
    "StepLR gamma=-0.5": (lambda: StepLR(0.1, 3, gamma=-0.5), "gamma", "-0.5", "> 0"),
    "MultiStepLR gamma=0": (lambda: MultiStepLR(0.1, [3], gamma=0.0), "gamma", "0.0", "> 0"),
    "ExponentialLR gamma=0": (lambda: ExponentialLR(0.1, 0), "gamma", "0", "> 0"),
    "ExponentialLR gamma=text": (lambda: ExponentialLR(0.1, "0.9x"), "gamma", "'0.9x'", "number"),
    "milestones unsorted": (lambda: MultiStepLR(0.1, [30, 10]), "milestones", "[30, 10]", "strictly increasing"),
    "milestones repeated": (lambda: MultiStepLR(0.1, [10, 10]), "milestones", "[10, 10]", "strictly increasing"),
    "milestone negative": (lambda: MultiStepLR(0.1, [-1, 5]), "milestones[0]", "-1", ">= 0"),
    "milestone fractional": (lambda: MultiStepLR(0.1, [2.5]), "milestones[0]", "2.5", "integer"),
    "milestones text": (lambda: MultiStepLR(0.1, "30"), "milestones", "'30'", "list"),
    "T_0=0": (lambda: CosineAnnealingWarmRestarts(0.1, 0), "T_0", "0", ">= 1"),
    "T_mult=0": (lambda: CosineAnnealingWarmRestarts(0.1, 5, T_mult=0), "T_mult", "0", ">= 1"),
    "T_mult=1.5": (lambda: CosineAnnealingWarmRestarts(0.1, 5, T_mult=1.5), "T_mult", "1.5", "integer"),
    "eta_min<0": (lambda: CosineAnnealingWarmRestarts(0.1, 5, eta_min=-0.01), "eta_min", "-0.01", ">= 0"),
    "eta_min>lr": (lambda: CosineAnnealingWarmRestarts(0.1, 5, eta_min=0.2), "eta_min", "0.2", "must not exceed lr"),
    "epoch<0": (lambda: CosineAnnealingWarmRestarts(0.1, 5).step(-1), "epoch", "-1", ">= 0"),
    "pct_start=0": (lambda: OneCycleLR(0.1, 100, pct_start=0.0), "pct_start", "0.0", "(0, 1)"),
    "pct_start=1": (lambda: OneCycleLR(0.1, 100, pct_start=1.0), "pct_start", "1.0", "(0, 1)"),
    "pct_start=1.2": (lambda: OneCycleLR(0.1, 100, pct_start=1.2), "pct_start", "1.2", "(0, 1)"),
    "total_steps=1": (lambda: OneCycleLR(0.1, 1), "total_steps", "1", ">= 2"),
    "total_steps=None": (lambda: OneCycleLR(0.1, None), "total_steps", "None", ">= 2"),
    "anneal_strategy": (lambda: OneCycleLR(0.1, 100, anneal_strategy="cosine"), "anneal_strategy", "'cosine'",
                        "'cos', 'linear'"),
    "base_momentum=1": (lambda: OneCycleLR(0.1, 100, base_momentum=1.0), "base_momentum", "1.0", "[0, 1)"),
    "max_momentum<0": (lambda: OneCycleLR(0.1, 100, max_momentum=-0.1), "max_momentum", "-0.1", "[0, 1)"),
    "div_factor=0": (lambda: OneCycleLR(0.1, 100, div_factor=0), "div_factor", "0", "> 0"),
    "final_div_factor<0": (lambda: OneCycleLR(0.1, 100, final_div_factor=-1), "final_div_factor", "-1", "> 0"),
    "cycle_momentum text": (lambda: OneCycleLR(0.1, 100, cycle_momentum="yes"), "cycle_momentum", "'yes'",
                            "True or False"),
    "zero-length warm-up": (lambda: OneCycleLR(0.1, 10, pct_start=0.1), "pct_start=0.1", "total_steps=10",
                            "zero length"),
    "three_phase no third phase": (lambda: OneCycleLR(0.1, 10, pct_start=0.7, three_phase=True), "pct_start=0.7",
                                   "total_steps=10", "pct_start < 0.5"),
    "per-run lengths": (lambda: OneCycleLR(np.array([0.1, 0.2]), 100, base_momentum=np.array([0.8, 0.8, 0.8])),
                        "max_lr", "base_momentum", "same length"),
    "mode": (lambda: ReduceLROnPlateau(0.1, mode="minimum"), "mode", "'minimum'", "'min', 'max'"),
    "threshold_mode": (lambda: ReduceLROnPlateau(0.1, threshold_mode="relative"), "threshold_mode", "'relative'",
                       "'rel', 'abs'"),
    "factor=1": (lambda: ReduceLROnPlateau(0.1, factor=1.0), "factor", "1.0", "(0, 1)"),
    "factor=0": (lambda: ReduceLROnPlateau(0.1, factor=0), "factor", "0", "(0, 1)"),
    "patience<0": (lambda: ReduceLROnPlateau(0.1, patience=-1), "patience", "-1", ">= 0"),
    "cooldown<0": (lambda: ReduceLROnPlateau(0.1, cooldown=-2), "cooldown", "-2", ">= 0"),
    "threshold<0": (lambda: ReduceLROnPlateau(0.1, threshold=-1e-4), "threshold", "-0.0001", ">= 0"),
    "threshold=1 min rel": (lambda: ReduceLROnPlateau(0.1, threshold=1.0), "threshold", "1.0", "[0, 1)"),
    "min_lr>lr": (lambda: ReduceLROnPlateau(0.1, min_lr=0.5), "min_lr", "0.5", "must not exceed lr"),
    "eps<0": (lambda: ReduceLROnPlateau(0.1, eps=-1e-8), "eps", "-1e-08", ">= 0"),
    "plateau per-run lr": (lambda: ReduceLROnPlateau(np.array([0.1, 0.2])), "lr", "(2,)", "one number"),
}


@pytest.mark.parametrize("case", BAD_ARGUMENTS)
def test_invalid_arguments_raise_a_value_error_naming_them(case):
    call, name, value, accepted = BAD_ARGUMENTS[case]
    raises_naming(call, name, value, accepted)


@pytest.mark.parametrize("metric", ["0.5", None, True, [1.0, 2.0]])
def test_reduce_on_plateau_refuses_a_metric_that_is_not_one_number(metric):
    sched = ReduceLROnPlateau(0.1)
    raises_naming(lambda: sched.step(metric), "metrics", repr(metric), "one number", error=TypeError)
    assert sched.last_epoch == 0


def test_onecycle_refuses_to_step_past_total_steps_and_stays_put():
    sched = OneCycleLR(0.1, total_steps=5)
    for _ in range(5):
        sched.step()                     # 5 updates use k = 0..4; the 5th step() gives k = 5, as in torch
    before = sched.state_dict()
    raises_naming(sched.step, "total_steps", "5", "total_steps = the number of optimizer updates")
    assert sched.state_dict() == before


# ---------------------------------------------------------------- rates by hand

def rates(sched, n, advance=None):
    """The rate after construction and after each of n steps."""
    out = [sched.lr]
    for k in range(n):
        (advance or (lambda s, k: s.step()))(sched, k)
        out.append(sched.lr)
    return out


def test_step_multistep_and_exponential_rates_by_hand():
    np.testing.assert_allclose(rates(StepLR(0.1, 3, 0.1), 7), [0.1] * 3 + [0.01] * 3 + [0.001] * 2, rtol=1e-15)
    assert rates(MultiStepLR(1.0, [2, 5], 0.5), 6) == [1, 1, 0.5, 0.5, 0.5, 0.25, 0.25]
    assert rates(MultiStepLR(1.0, [0, 2], 0.5), 2) == [0.5, 0.5, 0.25]        # milestone 0: at construction
    assert rates(ExponentialLR(1.0, 0.5), 5) == [1, 0.5, 0.25, 0.125, 0.0625, 0.03125]


def test_warm_restarts_rates_by_hand():
    """T_0 = 4, T_mult = 2: cycles [0, 4), [4, 12), [12, 28); lr = (1 + cos(pi T_cur / T_i)) / 2."""
    half = lambda t_cur, t_i: (1 + math.cos(math.pi * t_cur / t_i)) / 2    # noqa: E731
    expected = [half(t, 4) for t in range(4)] + [half(t, 8) for t in range(8)] + [half(t, 16) for t in range(4)]
    np.testing.assert_allclose(rates(CosineAnnealingWarmRestarts(1.0, 4, 2), 15), expected, rtol=1e-15, atol=1e-16)
    sched = CosineAnnealingWarmRestarts(1.0, 4, 2, eta_min=0.2)
    for epoch, lr in [(2.0, 0.6), (6.0, 0.2 + 0.8 * half(2, 8)), (8.0, 0.6), (12.0, 1.0), (20.0, 0.6), (0.0, 1.0)]:
        sched.step(epoch)
        assert sched.lr == pytest.approx(lr, rel=1e-15), epoch
    assert (sched.T_cur, sched.T_i, sched.last_epoch) == (0.0, 4, 0)


def test_onecycle_rates_and_momenta_by_hand():
    """max_lr 1, div_factor 25, final_div_factor 1e4: start 0.04, end 4e-6; the warm-up of 100 * 0.25
    steps peaks at step 24; momentum runs 0.95 -> 0.85 -> 0.95."""
    for strategy in ("cos", "linear"):
        sched = OneCycleLR(1.0, 100, pct_start=0.25, anneal_strategy=strategy)
        lr, mom = [sched.lr], [sched.momentum]
        for _ in range(99):
            sched.step()
            lr.append(sched.lr)
            mom.append(sched.momentum)
        for k, want_lr, want_mom in [(0, 0.04, 0.95), (24, 1.0, 0.85), (99, 4e-6, 0.95)]:
            assert lr[k] == pytest.approx(want_lr, rel=1e-12) and mom[k] == pytest.approx(want_mom, rel=1e-12)
        assert np.all(np.diff(lr[:25]) > 0) and np.all(np.diff(lr[24:]) < 0)
    assert lr[12] == pytest.approx(0.04 + 0.96 * 0.5, rel=1e-12)              # linear: halfway up at step 12
    three = rates(OneCycleLR(1.0, 100, pct_start=0.25, three_phase=True), 99)
    assert three[24] == pytest.approx(1.0) and three[48] == pytest.approx(0.04) and three[99] == pytest.approx(4e-6)


def test_reduce_on_plateau_cooldown_by_hand():
    """patience 1, cooldown 2: two bad epochs reduce (epoch 3); the cooldown epochs 4 and 5 count as good
    (an improvement at 4 still sets best); counting resumes at 6, so 6 and 7 reduce again at 7."""
    sched = ReduceLROnPlateau(0.1, patience=1, cooldown=2)
    got = []
    for metric in [1, 2, 2, 0.5, 3, 3, 3]:
        sched.step(metric)
        got.append((sched.lr, sched.num_bad_epochs, sched.cooldown_counter))
    want = [(0.1, 0, 0), (0.1, 1, 0), (0.01, 0, 2), (0.01, 0, 1), (0.01, 0, 0), (0.01, 1, 0), (0.001, 0, 2)]
    assert [g[1:] for g in got] == [w[1:] for w in want]
    np.testing.assert_allclose([g[0] for g in got], [w[0] for w in want], rtol=1e-15)
    assert sched.best == 0.5


# ---------------------------------------------------------------- state_dict

def plateau_metrics(k):
    return [1.0, 0.9, 0.9, 0.9, 0.95, 0.8, math.nan, 0.8, 0.8, 0.8][k % 10] + 0.001 * (k // 10)


SCHEDULERS = {
    "StepLR": (lambda: StepLR(np.array([0.1, 0.3]), 4, 0.5), lambda: StepLR(1.0, 1)),
    "MultiStepLR": (lambda: MultiStepLR(0.1, [0, 10, 25, 40], 0.3), lambda: MultiStepLR(1.0, [])),
    "ExponentialLR": (lambda: ExponentialLR(np.array([0.1, 0.2, 0.4]), 0.95), lambda: ExponentialLR(1.0, 0.5)),
    "CosineAnnealingWarmRestarts": (lambda: CosineAnnealingWarmRestarts(0.1, 3, 2, 1e-3),
                                    lambda: CosineAnnealingWarmRestarts(1.0, 1)),
    "OneCycleLR": (lambda: OneCycleLR(np.array([0.1, 0.5]), 60, 0.2, "linear", three_phase=True,
                                      base_momentum=np.array([0.8, 0.85])), lambda: OneCycleLR(1.0, 2)),
    "ReduceLROnPlateau": (lambda: ReduceLROnPlateau(0.1, factor=0.5, patience=1, cooldown=1, min_lr=0.01),
                          lambda: ReduceLROnPlateau(1.0, mode="max")),
}


def advance_for(name, fractional=False):
    if name == "ReduceLROnPlateau":
        return lambda s, k: s.step(plateau_metrics(k))
    if fractional:
        return lambda s, k: s.step(k / 7 + 0.01)
    return lambda s, k: s.step()


def trace(sched, start, stop, advance):
    out = []
    for k in range(start, stop):
        advance(sched, k)
        out.append((np.array(sched.get_last_lr()), getattr(sched, "momentum", None)))
    return out


@pytest.mark.parametrize("name", list(SCHEDULERS) + ["CosineAnnealingWarmRestarts-fractional"])
def test_state_dict_through_json_continues_exactly_like_the_uninterrupted_run(name):
    kind = name.split("-")[0]
    make, make_other = SCHEDULERS[kind]
    advance = advance_for(kind, fractional=name.endswith("fractional"))
    steps, cut = 60, 23
    whole = make()
    expected = trace(whole, 0, steps, advance)
    first = make()
    trace(first, 0, cut, advance)
    saved = json.loads(json.dumps(first.state_dict(), allow_nan=False))     # plain JSON, no NaN or Infinity
    assert saved["type"] == kind and saved["version"] == STATE_VERSION
    resumed = make_other()                          # another config: the dict brings its own
    resumed.load_state_dict(saved)
    assert resumed.state_dict() == first.state_dict()
    got = trace(resumed, cut, steps, advance)
    for (lr_a, m_a), (lr_b, m_b) in zip(got, expected[cut:]):
        np.testing.assert_array_equal(lr_a, lr_b)
        np.testing.assert_array_equal(np.asarray(m_a, dtype=float), np.asarray(m_b, dtype=float))
    assert resumed.state_dict() == whole.state_dict()


def test_reduce_on_plateau_state_before_any_metric_is_plain_json():
    d = ReduceLROnPlateau(0.1).state_dict()
    assert d["state"]["best"] is None
    restored = ReduceLROnPlateau(1.0, mode="max")
    restored.load_state_dict(json.loads(json.dumps(d, allow_nan=False)))
    assert restored.best is None and restored.mode == "min"
    restored.step(5.0)
    assert restored.best == 5.0


def saved_steplr():
    sched = StepLR(0.1, 3)
    for _ in range(4):
        sched.step()
    return json.loads(json.dumps(sched.state_dict()))


def edit(d, path, value=KeyError):
    *parents, key = path
    target = d
    for p in parents:
        target = target[p]
    if value is KeyError:
        del target[key]
    else:
        target[key] = value
    return d


BAD_STATES = {
    "another type": (lambda d: d, "saved by a 'StepLR'", "not a 'ExponentialLR'"),
    "another version": (lambda d: edit(d, ["version"], STATE_VERSION + 1), f"version {STATE_VERSION + 1}",
                        f"version {STATE_VERSION} only"),
    "no type": (lambda d: edit(d, ["type"]), "missing keys ['type']", "nothing was loaded"),
    "config key missing": (lambda d: edit(d, ["config", "gamma"]), "missing keys ['gamma']", "state_dict['config']"),
    "state key missing": (lambda d: edit(d, ["state", "last_epoch"]), "missing keys ['last_epoch']",
                          "state_dict['state']"),
    "unknown key": (lambda d: edit(d, ["state", "T_cur"], 3), "unexpected keys ['T_cur']", "state_dict['state']"),
    "bad config value": (lambda d: edit(d, ["config", "gamma"], -1), "gamma", "> 0"),
    "negative counter": (lambda d: edit(d, ["state", "last_epoch"], -4), "last_epoch", ">= 0"),
    "lr of another shape": (lambda d: edit(d, ["state", "lr"], [0.1, 0.1]), "state_dict['state']['lr']", "shape ()"),
    "not a dict": (lambda d: [d], "state_dict must be a dict", "list"),
}


@pytest.mark.parametrize("case", BAD_STATES)
def test_load_state_dict_refuses_a_wrong_dict_and_loads_nothing(case):
    corrupt, *expected = BAD_STATES[case]
    sched = ExponentialLR(0.5, 0.9) if case == "another type" else StepLR(0.2, 5, 0.5)
    sched.step()
    before = sched.state_dict()
    d = corrupt(saved_steplr())
    with pytest.raises(ValueError) as info:
        sched.load_state_dict(d)
    for text in expected:
        assert text in str(info.value), str(info.value)
    assert sched.state_dict() == before


def test_load_state_dict_refuses_states_no_run_reaches():
    sched = CosineAnnealingWarmRestarts(0.1, 4)
    d = sched.state_dict()
    with pytest.raises(ValueError, match=r"T_cur=5(\.0)? >= T_i=4"):
        sched.load_state_dict(edit(d, ["state", "T_cur"], 5))
    one = OneCycleLR(0.1, 10)
    with pytest.raises(ValueError, match="momentum"):
        one.load_state_dict(edit(one.state_dict(), ["state", "momentum"], None))
    with pytest.raises(ValueError, match="best"):
        ReduceLROnPlateau(0.1).load_state_dict(edit(ReduceLROnPlateau(0.1).state_dict(), ["state", "best"], "low"))


# ---------------------------------------------------------------- per-run rates

PER_RUN = {
    "StepLR": (lambda lr, i: StepLR(lr, 7, 0.5), None),
    "MultiStepLR": (lambda lr, i: MultiStepLR(lr, [0, 13, 50, 51], 0.7), None),
    "ExponentialLR": (lambda lr, i: ExponentialLR(lr, 0.97), None),
    "CosineAnnealingWarmRestarts": (lambda lr, i: CosineAnnealingWarmRestarts(lr, 5, 2, 1e-4), None),
    "CosineAnnealingWarmRestarts-fractional": (lambda lr, i: CosineAnnealingWarmRestarts(lr, 5, 3, 1e-4),
                                               lambda s, k: s.step(k / 9)),
    "OneCycleLR": (lambda lr, i: OneCycleLR(lr, 100, 0.3, base_momentum=[0.8, 0.85, 0.9][i] if i is not None
                                            else np.array([0.8, 0.85, 0.9])), None),
    "OneCycleLR-linear-3": (lambda lr, i: OneCycleLR(lr, 100, 0.2, "linear", three_phase=True), None),
}


@pytest.mark.parametrize("name", PER_RUN)
def test_per_run_rates_equal_the_runs_done_one_by_one(name):
    make, advance = PER_RUN[name]
    lrs = np.array([0.1, 0.037, 1.3])
    batch = make(lrs, None)
    singles = [make(float(lr), i) for i, lr in enumerate(lrs)]
    for k in range(100):
        assert batch.lr.shape == (3,) and batch.get_last_lr() == [s.lr for s in singles]
        if isinstance(batch, OneCycleLR):
            np.testing.assert_array_equal(np.broadcast_to(batch.momentum, 3), [s.momentum for s in singles])
        for s in (batch, *singles):
            (advance or (lambda s, k: s.step()))(s, k)


def test_rates_are_plain_floats_and_copies():
    sched = StepLR(np.array([0.1, 0.2]), 2)
    assert all(type(x) is float for x in sched.get_last_lr()) and type(StepLR(0.1, 2).lr) is float
    sched.lr[0] = 99.0                        # changing the array we were handed changes nothing
    assert sched.get_last_lr() == [0.1, 0.2]


def test_per_run_rates_drive_a_batch_of_sgd_runs():
    """The loop of the lesson: one scheduler, three rates, one (3, d) SGD batch; each run equals its own."""
    lrs = np.array([0.001, 0.005, 0.01])
    starts = np.array([[1.0, 1.0], [-0.7, 2.5], [0.03, -1.9]])
    sched, opt = StepLR(lrs, 10, 0.5), SGD(0.01, momentum=0.9)
    w, state = starts.copy(), opt.init(starts)
    for _ in range(40):
        w, state = opt.step(w, COURSE.grad(w), state, lr=sched.lr)
        sched.step()
    for i in range(3):
        one, one_opt = StepLR(float(lrs[i]), 10, 0.5), SGD(0.01, momentum=0.9)
        v, s = starts[i].copy(), one_opt.init(starts[i])
        for _ in range(40):
            v, s = one_opt.step(v, COURSE.grad(v), s, lr=one.lr)
            one.step()
        np.testing.assert_array_equal(w[i], v)


def test_repr_shows_the_settings():
    assert repr(StepLR(0.1, 30)) == "StepLR(lr=0.1, step_size=30, gamma=0.1)"
