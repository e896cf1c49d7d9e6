"""Conformance of lessons_lib.lr_schedulers with torch.optim.lr_scheduler (float64 rates, CPU).

Each test builds our scheduler and torch's (on an SGD or Adam optimizer with one param group
per run) and steps them side by side for at least 100 scheduler steps, from construction on:
after every step the rates (and OneCycleLR's momentum, read from torch's SGD momentum or Adam
betas[0]) must agree to a relative difference <= 1e-12, and ReduceLROnPlateau's counters exactly.

Which torch form is compared: the chainable one, scheduler.step() without an argument, which
is what torch's documentation uses (and step(epoch) for CosineAnnealingWarmRestarts, whose
documented per-batch use passes a fractional epoch). StepLR, MultiStepLR and ExponentialLR's
chainable step multiplies the current rate by gamma, so after k decays it has rounded k times;
torch's closed form (_get_closed_form_lr, used by the deprecated step(epoch)) computes
lr0 * gamma**n in one power and differs from the chain in the last bits. Ours does the chain's
floating-point operations in the chain's order (elementwise for per-run arrays), so exact
agreement is expected; 1e-12 leaves room for a future torch reordering without accepting a
wrong rule (a wrong decay step is off by a factor gamma). Against the closed form the chain
is within k roundings, k * 1.1e-16 <= 1e-13 over 1000 steps, which
test_closed_form_differs_from_the_chain_only_in_the_last_bits asserts.

These tests skip when torch is not importable; with LESSONS_REQUIRE_TORCH=1 (set by CI) a
skip is a failure (see conftest.py).
"""
from __future__ import annotations

import math

import numpy as np
import pytest

from lessons_lib.lr_plateau import ReduceLROnPlateau
from lessons_lib.lr_schedulers import (
    CosineAnnealingWarmRestarts,
    ExponentialLR,
    MultiStepLR,
    OneCycleLR,
    StepLR,
)
from lessons_lib.optimizers import SGD, Adam
from lessons_lib.surfaces import COURSE

pytestmark = pytest.mark.conformance

TOL = 1e-12
STEPS = 150


def rel_diff(ours, ref):
    """max |a - b| / |b| over runs (a zero reference must be matched exactly)."""
    a, b = np.atleast_1d(np.asarray(ours, dtype=np.float64)), np.asarray(ref, dtype=np.float64)
    a = np.broadcast_to(a, b.shape)
    assert np.all(np.isfinite(a)) and np.all(np.isfinite(b))
    err = np.abs(a - b)
    return float(np.max(np.where(b == 0, np.where(err == 0, 0.0, np.inf), err / np.abs(b))))


def torch_optimizer(torch, lrs, kind="SGD"):
    """One param group per run, each with its own rate (torch's per-group lr is our per-run lr)."""
    groups = [{"params": [torch.nn.Parameter(torch.zeros(1, dtype=torch.float64))], "lr": lr}
              for lr in lrs]
    if kind == "SGD":
        return torch.optim.SGD(groups, lr=lrs[0], momentum=0.9)
    return torch.optim.Adam(groups, lr=lrs[0])


def group_momenta(opt, kind):
    return [g["momentum"] if kind == "SGD" else g["betas"][0] for g in opt.param_groups]


def side_by_side(torch, ours, make_ref, lrs, steps, advance=None, kind="SGD", momentum=False):
    """Step ours and torch's together; the worst relative difference of lr (and momentum).

    opt.step() (no gradients: nothing moves) comes before each scheduler step, torch's order."""
    advance = advance or (lambda sched, k: sched.step())
    opt = torch_optimizer(torch, lrs, kind)
    ref = make_ref(opt)
    worst = {"lr": 0.0, "momentum": 0.0}
    for k in range(steps + 1):
        assert ref.get_last_lr() == [g["lr"] for g in opt.param_groups]
        worst["lr"] = max(worst["lr"], rel_diff(ours.lr, ref.get_last_lr()))
        assert len(ours.get_last_lr()) in (1, len(lrs))
        if momentum:
            worst["momentum"] = max(worst["momentum"], rel_diff(ours.momentum, group_momenta(opt, kind)))
        if k < steps:
            opt.step()
            advance(ours, k)
            advance(ref, k)
    return worst, opt, ref


def log_uniform(rng, lo, hi):
    return float(10.0 ** rng.uniform(np.log10(lo), np.log10(hi)))


def random_lrs(rng, seed):
    """One rate on even seeds, three per-run rates on odd seeds."""
    return [log_uniform(rng, 1e-4, 1.0) for _ in range(3 if seed % 2 else 1)]


def ours_lr(lrs):
    return lrs[0] if len(lrs) == 1 else np.array(lrs)


# ---------------------------------------------------------------- StepLR, MultiStepLR, ExponentialLR

@pytest.mark.parametrize("seed", range(8))
def test_steplr_matches_torch_over_random_settings(torch, seed):
    rng = np.random.default_rng((seed, 1))
    lrs, step_size = random_lrs(rng, seed), int(rng.integers(1, 20))
    gamma = float(rng.uniform(1.01, 1.1)) if seed == 6 else float(rng.uniform(0.05, 0.99))
    worst, _, _ = side_by_side(torch, StepLR(ours_lr(lrs), step_size, gamma),
                               lambda o: torch.optim.lr_scheduler.StepLR(o, step_size, gamma), lrs, STEPS)
    assert worst["lr"] <= TOL, (lrs, step_size, gamma, worst)


@pytest.mark.parametrize("seed", range(8))
def test_multisteplr_matches_torch_over_random_settings(torch, seed):
    """Random strictly increasing milestones; seeds 0 and 4 include milestone 0, which torch
    applies at construction (its constructor takes step 0)."""
    rng = np.random.default_rng((seed, 2))
    lrs, gamma = random_lrs(rng, seed), float(rng.uniform(0.05, 0.99))
    milestones = sorted(rng.choice(np.arange(1, STEPS), size=int(rng.integers(1, 7)), replace=False).tolist())
    if seed % 4 == 0:
        milestones = [0] + milestones
    worst, _, _ = side_by_side(torch, MultiStepLR(ours_lr(lrs), milestones, gamma),
                               lambda o: torch.optim.lr_scheduler.MultiStepLR(o, milestones, gamma), lrs, STEPS)
    assert worst["lr"] <= TOL, (lrs, milestones, gamma, worst)


@pytest.mark.parametrize("seed", range(8))
def test_exponentiallr_matches_torch_over_random_settings(torch, seed):
    rng = np.random.default_rng((seed, 3))
    lrs, gamma = random_lrs(rng, seed), float(rng.uniform(0.9, 0.999))
    worst, _, _ = side_by_side(torch, ExponentialLR(ours_lr(lrs), gamma),
                               lambda o: torch.optim.lr_scheduler.ExponentialLR(o, gamma), lrs, 2 * STEPS)
    assert worst["lr"] <= TOL, (lrs, gamma, worst)


def test_closed_form_differs_from_the_chain_only_in_the_last_bits(torch):
    """torch's step(epoch) uses lr0 * gamma**k (one rounding); the chain rounds once per decay."""
    steps, lr0, gamma = 1000, 0.1, 0.993
    ours = ExponentialLR(lr0, gamma)
    opt = torch_optimizer(torch, [lr0])
    closed = torch.optim.lr_scheduler.ExponentialLR(opt, gamma)
    differ, worst = 0, 0.0
    with pytest.warns(UserWarning):           # torch deprecates step(epoch)
        for k in range(1, steps + 1):
            opt.step()
            ours.step()
            closed.step(k)
            worst = max(worst, rel_diff(ours.lr, closed.get_last_lr()))
            differ += ours.lr != closed.get_last_lr()[0]
    assert differ > 0                                      # the two forms really are different numbers
    assert worst <= 1e-13, worst                           # but only by the chain's k roundings


# ---------------------------------------------------------------- CosineAnnealingWarmRestarts

def random_restarts(seed):
    rng = np.random.default_rng((seed, 4))
    lrs = random_lrs(rng, seed)
    eta_min = 0.0 if seed % 3 == 0 else float(rng.uniform(0.0, 0.5)) * min(lrs)
    return lrs, int(rng.integers(1, 16)), int(rng.integers(1, 4)), eta_min, rng


@pytest.mark.parametrize("seed", range(8))
def test_warm_restarts_match_torch_stepping_by_epoch(torch, seed):
    lrs, t0, t_mult, eta_min, _ = random_restarts(seed)
    worst, _, _ = side_by_side(torch, CosineAnnealingWarmRestarts(ours_lr(lrs), t0, t_mult, eta_min),
                               lambda o: torch.optim.lr_scheduler.CosineAnnealingWarmRestarts(o, t0, t_mult, eta_min),
                               lrs, STEPS)
    assert worst["lr"] <= TOL, (lrs, t0, t_mult, eta_min, worst)


@pytest.mark.parametrize("seed", range(8))
def test_warm_restarts_match_torch_stepping_by_fractional_epoch(torch, seed):
    """torch's per-batch recipe: step(epoch + i / iters) after batch i. Every epoch passed here is
    one where torch's logarithm finds the right cycle (its own T_cur < T_i is asserted); the
    epochs where it does not are test_warm_restarts_step_epoch_at_a_restart_matches_torchs_step_chain."""
    lrs, t0, t_mult, eta_min, rng = random_restarts(seed)
    iters = int(rng.integers(2, 10))
    schedule = [epoch + i / iters for epoch in range(-(-STEPS // iters)) for i in range(iters)]

    def advance(sched, k):
        sched.step(schedule[k])
        if not isinstance(sched, CosineAnnealingWarmRestarts):
            assert sched.T_cur < sched.T_i

    worst, _, _ = side_by_side(torch, CosineAnnealingWarmRestarts(ours_lr(lrs), t0, t_mult, eta_min),
                               lambda o: torch.optim.lr_scheduler.CosineAnnealingWarmRestarts(o, t0, t_mult, eta_min),
                               lrs, len(schedule), advance)
    assert len(schedule) >= 100
    assert worst["lr"] <= TOL, (lrs, t0, t_mult, eta_min, iters, worst)


@pytest.mark.parametrize("t_mult, epoch", [(3, 121), (10, 111)])
def test_warm_restarts_step_epoch_at_a_restart_matches_torchs_step_chain(torch, t_mult, epoch):
    """At a restart epoch (T_0 = 1: 1 + 3 + 9 + 27 + 81 = 121, 1 + 10 + 100 = 111) torch's step(epoch)
    takes int(math.log(x, T_mult)) of an exact power, which rounds down (math.log(243, 3) =
    4.999...), and lands at the end of the previous cycle (eta_min). torch's own step() chain
    restarts there (lr0); ours agrees with that chain both ways."""
    lr0, eta_min = 0.1, 0.001
    opt = torch_optimizer(torch, [lr0])
    chain = torch.optim.lr_scheduler.CosineAnnealingWarmRestarts(opt, 1, t_mult, eta_min)
    for _ in range(epoch):
        opt.step()
        chain.step()
    opt2 = torch_optimizer(torch, [lr0])
    jump = torch.optim.lr_scheduler.CosineAnnealingWarmRestarts(opt2, 1, t_mult, eta_min)
    opt2.step()
    jump.step(epoch)
    assert chain.get_last_lr()[0] == pytest.approx(lr0, rel=1e-15)
    assert jump.get_last_lr()[0] == pytest.approx(eta_min, rel=1e-15)      # torch's rounding, documented
    ours_chain, ours_jump = CosineAnnealingWarmRestarts(lr0, 1, t_mult, eta_min), \
        CosineAnnealingWarmRestarts(lr0, 1, t_mult, eta_min)
    for _ in range(epoch):
        ours_chain.step()
    ours_jump.step(epoch)
    assert ours_chain.lr == ours_jump.lr == chain.get_last_lr()[0]


# ---------------------------------------------------------------- OneCycleLR

def random_onecycle(seed):
    rng = np.random.default_rng((seed, 5))
    lrs = random_lrs(rng, seed)
    base = float(rng.uniform(0.5, 0.9))
    settings = dict(total_steps=int(rng.integers(100, 400)), pct_start=float(rng.uniform(0.05, 0.45)),
                    anneal_strategy="cos" if seed % 4 < 2 else "linear", base_momentum=base,
                    max_momentum=base + float(rng.uniform(0.01, 0.09)), div_factor=log_uniform(rng, 2, 100),
                    final_div_factor=log_uniform(rng, 10, 1e5), three_phase=bool(seed % 8 >= 4))
    return lrs, settings


@pytest.mark.parametrize("seed", range(16))
@pytest.mark.parametrize("kind", ["SGD", "Adam"])
def test_onecycle_lr_and_momentum_match_torch_over_random_settings(torch, seed, kind):
    """Both anneal strategies, two and three phases, SGD momentum and Adam beta1, to the last
    allowed step (the total_steps-th); the next step is refused by both."""
    lrs, settings = random_onecycle(seed)
    ours = OneCycleLR(ours_lr(lrs), **settings)
    worst, opt, ref = side_by_side(
        torch, ours, lambda o: torch.optim.lr_scheduler.OneCycleLR(o, lrs if len(lrs) > 1 else lrs[0], **settings),
        lrs, settings["total_steps"], kind=kind, momentum=True)
    assert max(worst.values()) <= TOL, (lrs, settings, worst)
    with pytest.raises(ValueError, match="total steps"):
        ref.step()
    before = ours.state_dict()
    with pytest.raises(ValueError, match="total_steps"):
        ours.step()
    assert ours.state_dict() == before                      # refused without moving on


def test_onecycle_without_momentum_cycling_leaves_torchs_momentum_alone(torch):
    lrs, settings = random_onecycle(1)
    ours = OneCycleLR(ours_lr(lrs), cycle_momentum=False, **settings)
    worst, opt, _ = side_by_side(torch, ours, lambda o: torch.optim.lr_scheduler.OneCycleLR(
        o, lrs, cycle_momentum=False, **settings), lrs, settings["total_steps"])
    assert worst["lr"] <= TOL
    assert ours.momentum is None and group_momenta(opt, "SGD") == [0.9] * len(lrs)


def test_onecycle_refuses_the_zero_length_phase_torch_divides_by_zero_in(torch):
    """pct_start * total_steps = 0.1 * 10 = 1 exactly: torch's warm-up runs from step 0 to step 0."""
    opt = torch_optimizer(torch, [0.1])
    with pytest.raises(ZeroDivisionError):
        torch.optim.lr_scheduler.OneCycleLR(opt, 0.1, total_steps=10, pct_start=0.1)
    with pytest.raises(ValueError, match="zero length"):
        OneCycleLR(0.1, total_steps=10, pct_start=0.1)


def course_loss_grad(torch, p):
    c = torch.tensor(COURSE.c, dtype=torch.float64)
    return 0.5 * (c * p * p).sum()


@pytest.mark.parametrize("kind", ["SGD", "Adam"])
def test_onecycle_drives_our_optimizers_like_torch(torch, kind):
    """The training loop of the lesson: lr=sched.lr into every update and sched.momentum into the
    optimizer, against torch's loop with its OneCycleLR on the course surface (150 updates)."""
    steps, start = 150, np.array([1.0, -0.7])
    max_lr = 0.03 if kind == "SGD" else 0.02      # SGD: lr * 100 below 2 * (1 + 0.85), so the path contracts
    sched = OneCycleLR(max_lr, steps)
    opt = SGD(max_lr, momentum=0.9) if kind == "SGD" else Adam(max_lr)
    p = torch.nn.Parameter(torch.tensor(start, dtype=torch.float64))
    ref_opt = torch.optim.SGD([p], lr=max_lr, momentum=0.9) if kind == "SGD" else torch.optim.Adam([p], lr=max_lr)
    ref = torch.optim.lr_scheduler.OneCycleLR(ref_opt, max_lr, steps)
    w, state, worst = start.copy(), opt.init(start), 0.0
    for _ in range(steps):
        if kind == "SGD":
            opt.momentum = sched.momentum
        else:
            opt.betas = (sched.momentum, opt.betas[1])
        w, state = opt.step(w, COURSE.grad(w), state, lr=sched.lr)
        sched.step()
        ref_opt.zero_grad()
        course_loss_grad(torch, p).backward()
        ref_opt.step()
        ref.step()
        worst = max(worst, float(np.max(np.abs(w - p.detach().numpy()))))
    assert worst <= TOL, worst


# ---------------------------------------------------------------- ReduceLROnPlateau

NAN, INF = math.nan, math.inf

PLATEAU_SCRIPTS = {
    # a metric equal to the best is not an improvement (strict <), with or without a threshold
    "ties-abs-0": (dict(lr=0.1, patience=2, threshold=0.0, threshold_mode="abs"),
                   [1, 1, 1, 1, 0.9, 0.9, 0.9, 0.9, 0.9, 0.8]),
    "ties-rel": (dict(lr=0.1, patience=1), [1, 1, 0.99995, 0.9999, 0.99989, 0.99989, 0.99989]),
    # nan is never better; as the first metric it leaves best at +inf
    "nan": (dict(lr=0.1, patience=1), [NAN, NAN, 1, NAN, NAN, 0.5, NAN, 0.4, NAN, NAN, NAN]),
    "inf": (dict(lr=0.1, patience=0), [INF, 2, INF, 1, -1]),
    # reduced at 3; an improvement inside the cooldown; counting resumes the epoch after it ends
    "cooldown-edge": (dict(lr=0.1, patience=1, cooldown=2), [1, 2, 2, 0.5, 3, 3, 3, 3, 3, 3]),
    "cooldown-longer-than-patience": (dict(lr=0.1, patience=0, cooldown=3), [1] + [2] * 12),
    "min_lr-floor": (dict(lr=0.1, factor=0.5, patience=0, min_lr=0.03), [1] * 8),
    # 1e-7 * 0.5 lowers lr by 5e-8 <= eps: skipped every time (the cooldown still starts)
    "eps-skips-tiny-reductions": (dict(lr=1e-7, factor=0.5, patience=0, eps=1e-7, cooldown=1), [1] * 8),
    "eps-allows-then-stops": (dict(lr=1e-6, factor=0.5, patience=0, eps=1e-7), [1] * 10),
    "min-abs": (dict(lr=0.1, patience=1, threshold=0.1, threshold_mode="abs"),
                [1, 0.95, 0.91, 0.85, 0.8, 0.79, 0.7, 0.65, 0.64]),
    # rel mode on a negative best: best * (1 - threshold) lies above best, so -0.995 "improves" on -1
    "min-rel-negative": (dict(lr=0.1, patience=1, threshold=0.01), [-1, -0.995, -0.98, -0.98, -0.98, -2, -2]),
    "max-rel": (dict(lr=0.1, mode="max", patience=1, threshold=0.01),
                [0.5, 0.503, 0.51, 0.51, 0.514, 0.52, 0.6, NAN, 0.6, 0.61]),
    "max-abs": (dict(lr=0.1, mode="max", patience=2, threshold=0.02, threshold_mode="abs", cooldown=1),
                [0.5, 0.51, 0.52, 0.53, 0.55, 0.55, 0.56, 0.56, 0.58, 0.58, 0.58, 0.58]),
}


def plateau_side_by_side(torch, settings, metrics):
    """Our ReduceLROnPlateau and torch's on the same metrics; every counter compared each step."""
    ours = ReduceLROnPlateau(**settings)
    torch_settings = {k: v for k, v in settings.items() if k != "lr"}
    opt = torch_optimizer(torch, [settings["lr"]])
    ref = torch.optim.lr_scheduler.ReduceLROnPlateau(opt, **torch_settings)
    worst, lrs = 0.0, []
    for m in metrics:
        opt.step()
        ours.step(m)
        ref.step(m)
        worst = max(worst, rel_diff(ours.lr, ref.get_last_lr()))
        assert (ours.last_epoch, ours.num_bad_epochs, ours.cooldown_counter) == \
            (ref.last_epoch, ref.num_bad_epochs, ref.cooldown_counter), (m, settings)
        assert (ref.best if ours.best is None else ours.best) == ref.best
        assert (ours.best is None) == (ref.best == ref.mode_worse)
        lrs.append(ours.lr)
    return worst, lrs


@pytest.mark.parametrize("name", PLATEAU_SCRIPTS)
def test_reduce_on_plateau_matches_torch_on_scripted_metrics(torch, name):
    settings, metrics = PLATEAU_SCRIPTS[name]
    worst, lrs = plateau_side_by_side(torch, settings, metrics)
    assert worst <= TOL, (name, worst)
    if name.startswith("eps-skips"):
        assert lrs == [settings["lr"]] * len(metrics)
    if name == "min_lr-floor":
        assert lrs[-1] == settings["min_lr"]


@pytest.mark.parametrize("seed", range(12))
def test_reduce_on_plateau_matches_torch_on_random_metric_sequences(torch, seed):
    """150 epochs of a noisy decreasing (or increasing) metric, rounded so that ties occur,
    with a few nans, for random settings of every argument."""
    rng = np.random.default_rng((seed, 6))
    mode = "max" if seed % 2 else "min"
    settings = dict(lr=log_uniform(rng, 1e-3, 1.0), mode=mode, factor=float(rng.uniform(0.1, 0.9)),
                    patience=int(rng.integers(0, 6)), threshold=log_uniform(rng, 1e-4, 0.05),
                    threshold_mode="rel" if seed % 4 < 2 else "abs", cooldown=int(rng.integers(0, 4)),
                    min_lr=log_uniform(rng, 1e-6, 1e-3), eps=log_uniform(rng, 1e-10, 1e-5))
    trend = np.cumsum(rng.normal(-0.01, 0.03, size=STEPS)) * (-1 if mode == "max" else 1)
    metrics = np.round(1.0 + trend, 2)
    metrics[rng.random(STEPS) < 0.05] = np.nan
    worst, lrs = plateau_side_by_side(torch, settings, metrics.tolist())
    assert worst <= TOL, (settings, worst)
    assert len(set(lrs)) > 1            # the sequence did reduce the rate at least once
