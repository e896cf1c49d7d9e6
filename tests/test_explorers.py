"""The explorers: compute functions headless, widget builders through the widget API."""
from __future__ import annotations

import asyncio
import copy
import math
import re

import numpy as np
import pytest

from lessons_lib import explorers as E
from lessons_lib.adaptive import RMSprop
from lessons_lib.formatting import fixed
from lessons_lib.optimizers import SGD, Adam, AdamW, EMAMomentum
from lessons_lib.precision import DynamicLossScaler
from lessons_lib.runner import run
from lessons_lib.schedules import warmup_cosine
from lessons_lib.surfaces import COURSE, Quadratic

COMPUTES = {name: compute for name, _, compute in E.EXPLORERS.values()}
BUILDERS = {name: build for name, build, _ in E.EXPLORERS.values()}


def _no_numpy_scalar_repr(text: str):
    assert "np.float" not in text and "np.int" not in text and "array(" not in text, text


def number_after(text: str, label: str) -> float:
    """The number printed right after `label` in a readout ('nan' and 'inf' included)."""
    m = re.search(re.escape(label) + r"\s*(-?(?:nan|inf|[0-9][0-9.]*(?:e[-+]?[0-9]+)?))", text)
    assert m, f"{label!r} not followed by a number in:\n{text}"
    return float(m.group(1))


def shows(text: str, label: str, expected: float):
    """The readout prints `expected` (4 significant digits) right after `label`."""
    assert math.isfinite(expected)
    assert number_after(text, label) == pytest.approx(expected, rel=5e-4), text


def states_its_problems(r):
    """nan or inf values appear only beside a stated problem, and a problem is in the readout."""
    values = re.findall(r"(?<![(\w])-?(?:nan|inf)(?![)\w])", r["readout"])
    assert not values or r["problem"], f"nan/inf without a problem:\n{r['readout']}"
    if r["problem"]:
        assert any(w in r["readout"] for w in ("diverged at step", "unstable", "invalid setting", r["problem"])), \
            f"problem {r['problem']!r} not in the readout:\n{r['readout']}"


# ----------------------------------------------------------------------------- every compute function

def _untouched_runs():
    start = [1.0, 1.0, 1.0]
    return (run(AdamW(0.05, weight_decay=0.1), 100, surface=E.UNTOUCHED, start=start),
            run(Adam(0.05, weight_decay=0.1), 100, surface=E.UNTOUCHED, start=start))


def test_the_defaults_report_what_the_runner_computes():
    # every number checked against the runner called directly (or a hand computation)
    text = E.compute_sgd()["readout"]
    assert text.startswith("lr 0.018: multipliers a -0.8, b 0.982; ")           # 1 - 0.018 * (100, 1)
    shows(text, "final loss", run(SGD(0.018), 40).final_loss)

    r = E.compute_momentum()
    shows(r["readout"], "final loss", run(EMAMomentum(0.018, 0.9), 40).final_loss)
    best = r["best"]
    shows(r["readout"], "-> final loss", run(EMAMomentum(best["lr"], best["beta"]), 40).final_loss)
    assert best["final_loss"] < r["final_loss"]

    text = E.compute_adaptive()["readout"]
    shows(text, "final loss", run(RMSprop(0.01, alpha=0.99, eps=1e-8), 100).final_loss)

    text = E.compute_adam()["readout"]
    shows(text, "final loss", run(Adam(0.01), 100).final_loss)

    text = E.compute_adamw()["readout"]
    decoupled, coupled = _untouched_runs()
    shows(text, "AdamW: untouched weight", 0.995 ** 100)                       # (1 - lr wd)^100
    shows(text, "AdamW: untouched weight 0.6058, loss", decoupled.final_loss)
    shows(text, "Adam + L2: untouched weight", coupled.params[-1, 2])
    shows(text, "Adam + L2: untouched weight -0.004211, loss", coupled.final_loss)

    text = E.compute_schedule()["readout"]
    shows(text, "warmup-cosine: final loss",
          run(AdamW(0.08, weight_decay=0.01), 80, schedule=warmup_cosine(0.08, 0.008, 10, 80)).final_loss)
    shows(text, "constant lr 0.08: final loss", run(AdamW(0.08, weight_decay=0.01), 80).final_loss)

    text = E.compute_clipping()["readout"]
    shows(text, "with clipping: final loss", run(SGD(0.018), 60, max_norm=20).final_loss)
    shows(text, "without: final loss", run(SGD(0.018), 60).final_loss)

    text = E.compute_loss_scaling()["readout"]
    tiny = Quadratic([1e-6, 1e-8])
    mixed = run(SGD(0.018 / 1e-8), 200, surface=tiny, scaler=DynamicLossScaler(2.0 ** 16, growth_interval=50))
    shows(text, "; final loss", float(COURSE.loss(mixed.params[-1])))
    shows(text, "(float64 gradients:", run(SGD(0.018), 200).final_loss)     # the course path itself

    text = E.compute_race()["readout"]
    d = E.RACE_DEFAULTS
    for label, opt in (("SGD (lr 0.0185):", SGD(d["sgd_lr"])),
                       ("(lr 0.0316, beta 0.67):", SGD(d["momentum_lr"], momentum=d["momentum_beta"])),
                       ("Adam (lr 0.0369):", Adam(d["adam_lr"])),
                       ("(lr 0.0369, weight_decay 0.01):", AdamW(d["adamw_lr"], weight_decay=0.01))):
        shows(text, label, run(opt, 80).final_loss)


@pytest.mark.parametrize("name", sorted(COMPUTES))
def test_the_defaults_are_healthy_and_plain(name):
    r = COMPUTES[name]()
    assert r["problem"] is None
    assert not re.search(r"\bnan\b", r["readout"]), r["readout"]
    _no_numpy_scalar_repr(r["readout"])


EXTREMES = {
    "sgd": [dict(lr=1e3), dict(lr=1e-12, steps=1), dict(lr=0.0200001, steps=200), dict(lr=1.0)],
    "momentum": [dict(lr=1e3, beta=0.99), dict(lr=1e-9, beta=0.0), dict(lr=0.5, beta=0.99, convention="heavy-ball"),
                 dict(lr=1e3, beta=0.5, convention="dampened")],
    "adaptive": [dict(lr=1e3), dict(optimizer="adagrad", lr=1e3), dict(lr=10.0, alpha=0.5, centered=True),
                 dict(alpha=0.0, centered=True), dict(eps=1e-300), dict(eps=1e100),
                 dict(optimizer="adagrad", eps=1e100), dict(optimizer="adagrad", lr=1e-12),
                 dict(lr=1e-12, alpha=0.999, centered=True), dict(lr=1e3, steps=1)],
    "adam": [dict(lr=1e3), dict(lr=1e3, at_step=100), dict(eps=1e-300), dict(eps=1e100), dict(beta1=0.0, beta2=0.0),
             dict(beta1=0.999999, beta2=0.999999, at_step=100), dict(lr=1e-12, at_step=100)],
    "adamw": [dict(lr=1e3), dict(weight_decay=1e6), dict(weight_decay=0.0), dict(lr=1e3, weight_decay=1e3)],
    "schedule": [dict(peak=1e3), dict(peak=1e3, optimizer="sgd"), dict(warmup_steps=0, total_steps=3),
                 dict(final=0.0, peak=1e-12), dict(warmup_steps=298, total_steps=300)],
    "clipping": [dict(lr=1e3), dict(max_norm=1e-12), dict(max_norm=1e12, lr=1e3), dict(lr=1e3, optimizer="adamw")],
    "loss_scaling": [dict(log2_scale=0), dict(log2_scale=127), dict(log2_scale=-60), dict(growth_interval=1),
                     dict(lr=1e3), dict(log2_scale=127, growth_interval=1)],
    "race": [dict(sgd_lr=1e3, momentum_lr=1e3, adam_lr=1e3, adamw_lr=1e3), dict(momentum_beta=0.999999),
             dict(adamw_weight_decay=1e6), dict(at_step=0), dict(sgd_lr=float("nan"), adam_lr=-1.0)],
    "lean": [dict(lr=1e3), dict(optimizer="momentum", lr=1.0), dict(optimizer="adamw8bit", lr=1e3),
             dict(optimizer="adafactor", lr=1e-12), dict(optimizer="adamw", lr=1e-12, schedule="cosine"), dict(lr=1e3, steps=1)],
    "schedulers": [dict(lr=1e3), dict(lr=1e3, scheduler="onecycle", epochs=6), dict(lr=1e-9, scheduler="plateau"),
                   dict(scheduler="step", gamma=0.05, step_size=1, epochs=6), dict(scheduler="sgdr", T_0=3, T_mult=3),
                   dict(scheduler="onecycle", pct_start=0.9, epochs=1), dict(scheduler="constant", lr=30.0)],
}


@pytest.mark.parametrize("name,params", [(n, p) for n, ps in EXTREMES.items() for p in ps],
                         ids=lambda v: v if isinstance(v, str) else ",".join(f"{k}={v[k]}" for k in v))
def test_extreme_settings_never_raise_and_say_what_went_wrong(name, params):
    r = COMPUTES[name](**params)
    assert r["readout"].strip()
    states_its_problems(r)
    _no_numpy_scalar_repr(r["readout"])


def test_a_silent_nan_fails_the_problem_check():
    with pytest.raises(AssertionError, match="nan/inf without a problem"):
        states_its_problems({"readout": "final loss nan after 40 steps", "problem": None})
    with pytest.raises(AssertionError, match="not in the readout"):
        states_its_problems({"readout": "final loss 3.2", "problem": "fp16 gradients cost accuracy"})
    states_its_problems({"readout": "skipped steps (inf): 0; final loss 0.1", "problem": None})


@pytest.mark.parametrize("name,params", [
    ("sgd", dict(lr=1e3)), ("momentum", dict(lr=1e3, beta=0.99)), ("adaptive", dict(lr=1e3)),
    ("adaptive", dict(alpha=0.0, centered=True)), ("adam", dict(lr=1e3)),
    ("adamw", dict(lr=1e3)), ("clipping", dict(lr=1e3)), ("schedule", dict(peak=1e3, optimizer="sgd")),
])
def test_divergence_is_a_message(name, params):
    r = COMPUTES[name](**params)
    assert "diverged at step" in r["readout"] or "unstable: the loss grew" in r["readout"]
    assert r["problem"]


@pytest.mark.parametrize("name,params,fragment", [
    ("sgd", dict(lr=0.0), "lr must be a finite number > 0"),
    ("sgd", dict(lr=float("nan")), "lr must be a finite number"),
    ("sgd", dict(lr="fast"), "lr must be a number"),
    ("momentum", dict(beta=1.0), "beta must lie in [0, 1)"),
    ("momentum", dict(convention="nesterov"), "convention must be one of"),
    ("adaptive", dict(optimizer="adam"), "optimizer must be 'adagrad' or 'rmsprop'"),
    ("adaptive", dict(alpha=1.0), "alpha must lie in [0, 1)"),
    ("adaptive", dict(alpha="slow"), "alpha must be a number"),
    ("adaptive", dict(eps=0.0), "eps must be a finite number > 0"),
    ("adaptive", dict(lr=-0.01, optimizer="adagrad"), "lr must be a finite number > 0"),
    ("adaptive", dict(centered="yes"), "centered must be True or False"),
    ("adam", dict(at_step=101), "at_step must lie in 1..steps"),
    ("schedule", dict(warmup_steps=79, total_steps=80), "must exceed warmup_steps"),
    ("clipping", dict(max_norm=-1), "max_norm must be a finite number > 0"),
    ("loss_scaling", dict(log2_scale=1000), "log2_scale must lie in"),
    ("loss_scaling", dict(log2_scale=128), "log2_scale must lie in [-60, 127]"),
])
def test_settings_outside_the_domain_raise_a_clear_value_error(name, params, fragment):
    with pytest.raises(ValueError) as info:
        COMPUTES[name](**params)
    assert fragment in str(info.value)


# ----------------------------------------------------------------------------- readouts are right

def test_sgd_readout_matches_the_lr_sweep():
    # documented printout: lr=0.005 loss=0.462, lr=0.018 loss=1.781, lr=0.021 loss=230.105 (8 steps)
    for lr, loss in ((0.005, 0.462), (0.018, 1.781), (0.021, 230.105)):
        r = E.compute_sgd(lr=lr, steps=8)
        assert round(float(r["losses"][-1]), 3) == loss
    r = E.compute_sgd(lr=0.021, steps=8)
    assert r["multipliers"] == pytest.approx([-1.1, 0.979])
    assert r["readout"] == ("lr 0.021: multipliers a -1.1, b 0.979; unstable: |multiplier| > 1 in a, the loss "
                            "grows; loss 230.1 after 8 steps (start 50.5)")
    assert E.compute_sgd(lr=0.005, steps=8)["readout"].endswith("final loss 0.4622 after 8 steps")


def test_sgd_divergence_step_is_reported():
    r = E.compute_sgd(lr=1.0, steps=40)
    assert r["diverged_at"] == 2            # a: 1 -> -99 -> 9801, loss 4.8e9 > 1e6 * 50.5
    assert "diverged at step 2" in r["readout"]
    assert math.isnan(r["final_loss"])


def test_momentum_readout_matches_documented_run():
    r = E.compute_momentum(lr=0.018, beta=0.9, convention="ema", steps=40)
    assert r["readout"].startswith("ema, lr 0.018, beta 0.9: final loss 0.1889 after 40 steps")
    assert round(r["final_loss"], 4) == 0.1889


@pytest.mark.parametrize("convention,make", [
    ("ema", lambda lr, beta: EMAMomentum(lr, beta)),
    ("dampened", lambda lr, beta: SGD(lr, momentum=beta, dampening=beta)),
    ("heavy-ball", lambda lr, beta: SGD(lr, momentum=beta)),
])
def test_the_momentum_map_holds_single_runs(convention, make):
    lrs, betas, final = E.momentum_heatmap(convention, 40)
    assert final.shape == (64, 64) and lrs[0] == 1e-4 and lrs[-1] == 1.0 and betas[-1] == 0.99
    for i, j in ((0, 0), (10, 30), (40, 45), (63, 20), (63, 63), (0, 63)):
        one = run(make(float(lrs[j]), float(betas[i])), 40)
        if one.diverged:
            assert np.isnan(final[i, j])
        else:
            assert final[i, j] == pytest.approx(one.final_loss, rel=1e-12)
    # heavy-ball diverges for lr * 100 > 2 + 2 beta: at beta 0, every lr above 0.02
    if convention == "heavy-ball":
        assert np.all(np.isnan(final[0, lrs > 0.0201])) and not np.any(np.isnan(final[0, lrs < 0.0199]))


def test_adagrad_effective_lr_decays_like_one_over_sqrt_t_on_a_constant_gradient():
    # lr 1e-8: w stays at [1, 1] to 1e-6, so the gradient is [100, 1] on every step and by
    # hand the sum after k steps is k * g^2: effective lr = lr / (sqrt(k) |g| + eps)
    lr, eps = 1e-8, 1e-8
    r = E.compute_adaptive(optimizer="adagrad", lr=lr, eps=eps)
    for k in (1, 4, 25, 100):
        by_hand = [lr / (math.sqrt(k) * 100 + eps), lr / (math.sqrt(k) * 1 + eps)]
        assert r["effective_lr"][k - 1].tolist() == pytest.approx(by_hand, rel=1e-5)
    assert r["ratio_steps"] == (100, 25)
    assert r["ratio"].tolist() == pytest.approx([0.5, 0.5], rel=1e-5)        # sqrt(25 / 100)
    shows(r["readout"], "effective lr at step 100 / step 25: a", 0.5)
    shows(r["readout"], "effective lr at step 100, lr / (sqrt(denominator) + eps): a", lr / (10 * 100 + eps))
    assert r["memory"] is None


def test_adagrad_first_two_steps_by_hand():
    lr, eps = 0.1, 1e-8
    r = E.compute_adaptive(optimizer="adagrad", lr=lr, eps=eps)
    # step 1: g = [100, 1], sum = [10000, 1]; each coordinate moves by lr * g / (|g| + eps) ~ 0.1
    assert r["effective_lr"][0].tolist() == pytest.approx([lr / (100 + eps), lr / (1 + eps)], rel=1e-12)
    w1 = [1 - lr * 100 / (100 + eps), 1 - lr * 1 / (1 + eps)]
    assert r["params"][1].tolist() == pytest.approx(w1, rel=1e-12)
    # step 2: g = [100 w1a, w1b] = [90, 0.9], sum = [10000 + 8100, 1 + 0.81]
    g2 = [100 * w1[0], w1[1]]
    sums = [100.0 ** 2 + g2[0] ** 2, 1.0 + g2[1] ** 2]
    assert sums == pytest.approx([18100.0, 1.81], rel=1e-6)
    assert r["effective_lr"][1].tolist() == pytest.approx([lr / (math.sqrt(s) + eps) for s in sums], rel=1e-12)
    # the gradient shrinks with w, so the decay from step 25 to 100 is far weaker than 0.5
    assert np.all(r["ratio"] > 0.9)


def test_rmsprop_effective_lr_by_hand():
    lr, alpha, eps = 1e-8, 0.99, 1e-8
    r = E.compute_adaptive(optimizer="rmsprop", lr=lr, alpha=alpha, eps=eps)
    # a constant gradient g: square_avg after k steps is (1 - alpha^k) g^2
    for k in (1, 10, 100):
        root = math.sqrt(1 - alpha ** k)
        assert r["effective_lr"][k - 1].tolist() == pytest.approx([lr / (root * 100 + eps), lr / (root + eps)],
                                                                   rel=1e-5)
    assert r["memory"] == pytest.approx(100) and r["ratio"] is None
    assert r["readout"].endswith("memory of the average of g^2: 1/(1 - alpha) = 100 steps")
    # no bias correction: the first step moves each coordinate by lr / sqrt(1 - alpha) = 10 lr
    first = E.compute_adaptive(optimizer="rmsprop", lr=0.01, alpha=0.99, eps=eps)
    assert first["params"][1].tolist() == pytest.approx([0.9, 0.9], rel=1e-6)
    # centered, step 1: square_avg - grad_avg^2 = (1 - alpha) g^2 - (1 - alpha)^2 g^2 = alpha (1 - alpha) g^2
    c = E.compute_adaptive(lr=0.01, alpha=0.9, centered=True, eps=eps)
    root = math.sqrt(0.9 * 0.1)
    assert c["effective_lr"][0].tolist() == pytest.approx([0.01 / (root * 100 + eps), 0.01 / (root + eps)],
                                                          rel=1e-12)
    assert c["readout"].startswith("RMSprop (centered), lr 0.01, alpha 0.9, eps 1e-08: ")
    assert "1/(1 - alpha) = 10 steps" in c["readout"]
    assert "1/(1 - alpha) = 1 step" in E.compute_adaptive(alpha=0.0)["readout"]


def test_adagrad_ignores_alpha_and_centered():
    base = E.compute_adaptive(optimizer="adagrad")
    other = E.compute_adaptive(optimizer="AdaGrad", alpha=0.5, centered=True)
    assert other["readout"] == base["readout"] and other["alpha"] is None and other["centered"] is False
    assert base["readout"].startswith("AdaGrad, lr 0.01, eps 1e-08: final loss ")
    assert "alpha" not in base["readout"]


def test_adaptive_divergence_keeps_the_steps_before_it():
    r = E.compute_adaptive(lr=1e3)        # step 1 moves w by lr / sqrt(1 - alpha) = 1e4: loss 5e9 > 1e6 * 50.5
    assert r["diverged_at"] == 1 and math.isnan(r["final_loss"])
    assert np.all(np.isnan(r["effective_lr"]))
    assert "effective lr: none (the run diverged at step 1)" in r["readout"]
    z = E.compute_adaptive(alpha=0.0, centered=True)   # variance 0: lr / eps = 1e6 on the first step
    assert z["diverged_at"] == 1 and "diverged at step 1" in z["readout"]


def test_adam_first_step_moves_both_coordinates_by_lr():
    r = E.compute_adam(lr=0.01, at_step=1)
    assert r["m_hat"].tolist() == pytest.approx([100.0, 1.0])
    assert r["v_hat"].tolist() == pytest.approx([10000.0, 1.0])
    assert r["step"].tolist() == pytest.approx([0.01, 0.01], rel=1e-6)
    assert r["readout"].splitlines()[:3] == ["step 1: gradient [100, 1]", "  m_hat [100, 1]  v_hat [10000, 1]",
                                             "  step per coordinate [0.01, 0.01]"]


def test_adam_step_slider_reads_the_recorded_state():
    a = E.compute_adam(at_step=5)
    b = E.compute_adam(at_step=6)
    assert not np.allclose(a["m_hat"], b["m_hat"])
    assert a["step"] == pytest.approx(a["params"][4] - a["params"][5])
    late = E.compute_adam(lr=1e5, at_step=50)     # Adam's steps are about lr: it takes a huge lr
    assert "no state (the run diverged at step" in late["readout"]


def test_adamw_untouched_weight_decays_geometrically_and_l2_does_not():
    r = E.compute_adamw(weight_decay=0.1, lr=0.05, steps=100)
    assert r["adamw"]["untouched"][-1] == pytest.approx(0.995 ** 100, rel=1e-12)
    # Adam + L2: the penalty gradient wd*c is normalised away, the first move is a full lr
    assert r["adam_l2"]["untouched"][1] == pytest.approx(1 - 0.05, rel=1e-6)
    assert "AdamW: untouched weight 0.6058" in r["readout"]
    none = E.compute_adamw(weight_decay=0.0)
    assert np.all(none["adamw"]["untouched"] == 1.0) and np.all(none["adam_l2"]["untouched"] == 1.0)


def test_schedule_values_match_the_documented_printout():
    r = E.compute_schedule(warmup_steps=2, peak=3e-4, final=3e-5, total_steps=10, optimizer="sgd")
    assert fixed(r["lrs"]) == ['0.000150', '0.000300', '0.000300', '0.000287', '0.000249', '0.000195',
                               '0.000135', '0.000081', '0.000043', '0.000030']
    r = E.compute_schedule()
    assert np.array_equal(r["lrs"], warmup_cosine(0.08, 0.008, 10, 80).values(80))
    assert "warmup-cosine: final loss" in r["readout"] and "constant lr 0.08: final loss" in r["readout"]


def test_clipping_counts_and_norms():
    r = E.compute_clipping(max_norm=20, lr=0.018, optimizer="sgd", steps=60)
    # by hand: a clipped step moves a by lr * 20 = 0.36 (b barely counts): a = 1 -> 0.64 -> 0.28
    # -> -0.08, norms 100, 64, 28 clipped, then 8 and below: 3 clipped steps
    assert r["clipped_steps"] == 3 and r["clipped"][:4].tolist() == [True, True, True, False]
    assert r["grad_norms"][:4] == pytest.approx([math.hypot(100, 1), 64.0, 28.0, 8.0], rel=1e-2)
    assert r["clipped_fraction"] == 3 / 60
    assert r["max_pre_clip_norm"] == pytest.approx(math.sqrt(100**2 + 1))
    assert r["readout"].startswith("SGD, lr 0.018, threshold 20: clipped 3 of 60 steps (5%)")
    never = E.compute_clipping(max_norm=1e6)
    assert never["clipped_steps"] == 0
    assert np.array_equal(never["params"], never["unclipped"]["params"])
    always = E.compute_clipping(max_norm=1e-3)
    assert always["clipped_fraction"] == 1.0
    assert "a symptom (lr or threshold)" in always["readout"]


def test_clipping_symptom_warning_is_for_sgd_and_adamw_gets_its_own_wording():
    # lesson 08: AdamW at lr 0.018, max_norm 1 clips on 59 of 60 steps, but clipping does not shorten its step
    sgd = E.compute_clipping(max_norm=1, lr=0.018, optimizer="sgd")
    adamw = E.compute_clipping(max_norm=1, lr=0.018, optimizer="adamw")
    assert sgd["clipped_steps"] == 56 and adamw["clipped_steps"] == 59
    assert "a symptom (lr or threshold), not a fix" in sgd["readout"]
    assert "a symptom (lr or threshold)" not in adamw["readout"]
    assert "for AdamW not by itself a symptom" in adamw["readout"]
    assert "nearly every step" not in E.compute_clipping(max_norm=20, lr=0.018, optimizer="adamw")["readout"]


def test_loss_scaling_underflow_overflow_and_scaler_rule():
    low = E.compute_loss_scaling(log2_scale=0)
    assert low["underflow_counts"][1] > 100          # b's 1e-8 gradients vanish at scale 1
    assert low["final_loss"] > 10 * low["reference_final_loss"]
    ok = E.compute_loss_scaling(log2_scale=16, growth_interval=50)
    assert ok["skipped_steps"] == 0 and ok["underflow_counts"][1] == 0
    assert ok["final_loss"] == pytest.approx(ok["reference_final_loss"], rel=0.01)
    assert ok["problem"] is None
    high = E.compute_loss_scaling(log2_scale=40, growth_interval=50)
    assert high["skipped_steps"] > 0
    s, k = high["scales"], high["skipped"]
    for i in range(len(s) - 1):                    # a skipped step halves the scale
        if k[i]:
            assert s[i + 1] == s[i] / 2
    assert f"skipped steps (inf): {high['skipped_steps']}" in high["readout"]
    assert low["readout"].endswith("\nfp16 gradients cost accuracy: the final loss is more than 10% above "
                                   "float64's")             # not only on the figure
    assert E.compute_loss_scaling(lr=1e3)["readout"].endswith("final loss nan (float64 gradients: nan)\n"
                                                             "diverged at step 1")


def test_race_ranking_and_a_disqualified_racer():
    r = E.compute_race()
    finals = {n: r["racers"][n]["final_loss"] for n in r["ranking"]}
    assert list(finals.values()) == sorted(finals.values())
    bad = E.compute_race(sgd_lr=-1.0)
    assert bad["racers"]["SGD"]["error"] and "invalid setting" in bad["readout"]
    assert bad["ranking"][-1] == "SGD"
    assert bad["racers"]["Adam"]["final_loss"] == r["racers"]["Adam"]["final_loss"]
    assert E.compute_race(at_step=0)["readout"].startswith("loss at step 0: SGD 50.5,")


# ----------------------------------------------------------------------------- widgets

MAIN_CONTROL = {"sgd": ("lr", 0.005), "momentum": ("lr", 0.05), "adaptive": ("lr", 0.05), "adam": ("at_step", 7),
                "adamw": ("weight_decay", 1.0), "schedule": ("warmup_steps", 30), "clipping": ("max_norm", 2.0),
                "loss_scaling": ("log2_scale", 2), "race": ("at_step", 10), "lean": ("lr", 0.05), "schedulers": ("lr", 0.5)}


@pytest.mark.parametrize("name", sorted(BUILDERS))
def test_widget_update_changes_readout_and_picture(name):
    ex = BUILDERS[name]()
    assert ex.image.value[:8] == b"\x89PNG\r\n\x1a\n"
    before_text, before_png = ex.readout_text, ex.image.value
    key, value = MAIN_CONTROL[name]
    ex.controls[key].value = value
    assert ex.readout_text != before_text
    assert ex.image.value != before_png
    assert ex.error is None and ex.result is not None
    params = ex.params()
    if name == "schedule":                     # the widget sets final as a fraction of peak
        params["final"] = params.pop("final_fraction") * params["peak"]
    assert ex.readout_text == COMPUTES[name](**params)["readout"]
    assert html_text(ex.readout.value) == ex.readout_text
    assert "interactive" in repr(ex)


def html_text(value: str) -> str:
    import html as h
    import re
    return h.unescape(re.sub(r"<[^>]+>", "", value))


def test_widget_shows_invalid_input_instead_of_raising():
    ex = E.race_explorer()
    ex.controls["sgd_lr"].value = -1.0
    assert ex.error is None                     # one racer disqualified, the race goes on
    assert "SGD: invalid setting" in ex.readout_text
    sgd = E.sgd_explorer()
    sgd._compute = lambda **p: E.compute_sgd(lr=0.0)     # a compute that refuses its input
    sgd.update()
    assert isinstance(sgd.error, ValueError)
    assert sgd.readout_text.startswith("invalid setting: lr must be a finite number > 0")
    assert "crimson" in sgd.readout.value


def test_widget_extreme_slider_values_show_a_message():
    ex = E.sgd_explorer()
    ex.set(lr=10.0, steps=200)
    assert "diverged at step" in ex.readout_text
    assert ex.canvas.notice.get_text().startswith("diverged at step")
    ex = E.adam_explorer()
    ex.set(lr=10.0, eps=100.0, beta1=0.0, beta2=0.5, at_step=100)     # every slider at an end
    assert ex.error is None and ex.readout_text.startswith("step 100:")
    ex = E.loss_scaling_explorer()
    ex.set(log2_scale=40, growth_interval=1)
    assert ex.error is None and "skipped steps (inf): 97" in ex.readout_text


def test_adaptive_widget_disables_what_adagrad_does_not_have():
    ex = E.adaptive_explorer()
    alpha, centered = ex.controls["alpha"], ex.controls["centered"]
    assert not alpha.disabled and not centered.disabled
    before = ex.image.value
    ex.controls["optimizer"].value = "adagrad"
    assert alpha.disabled and centered.disabled
    assert ex.readout_text.startswith("AdaGrad, lr 0.01") and ex.image.value != before
    assert ex.readout_text == E.compute_adaptive(**ex.params())["readout"]
    text = ex.readout_text
    ex.controls["alpha"].value = 0.5              # ignored by AdaGrad
    assert ex.readout_text == text
    ex.controls["optimizer"].value = "rmsprop"
    assert not alpha.disabled and not centered.disabled
    assert "alpha 0.5" in ex.readout_text
    ex.set(lr=10.0, eps=1.0, alpha=0.999, centered=True)     # sliders at an end
    assert ex.error is None and ex.readout_text.startswith("RMSprop (centered), lr 10, alpha 0.999")
    assert E.adaptive_explorer(optimizer="adagrad").controls["alpha"].disabled


def test_schedule_widget_keeps_warmup_below_total():
    ex = E.schedule_explorer()
    ex.controls["warmup_steps"].value = 60
    ex.controls["total_steps"].value = 20
    assert ex.controls["warmup_steps"].value <= 18
    assert ex.error is None and ex.result["total_steps"] == 20


def test_blitted_picture_matches_a_full_redraw():
    ex = E.sgd_explorer()
    for lr in (0.01, 0.012, 0.015):
        ex.controls["lr"].value = lr
    blitted = ex.canvas.png()
    ex.canvas.invalidate()
    full = ex.canvas.png()
    from io import BytesIO

    from PIL import Image
    a = np.asarray(Image.open(BytesIO(blitted)), dtype=int)
    b = np.asarray(Image.open(BytesIO(full)), dtype=int)
    assert a.shape == b.shape
    assert np.mean(np.any(a != b, axis=-1)) < 0.001


@pytest.mark.parametrize("optimizer,lr", [("sgd", 0.018), ("sgd", 1.0), ("adamw", 0.08)])
def test_the_constant_run_is_the_runners_run_for_any_total(optimizer, lr):
    make = {"sgd": lambda: SGD(lr), "adamw": lambda: AdamW(lr, weight_decay=0.01)}[optimizer]
    for total in (3, 8, 300, 301):           # cut from a longer cached run up to 300 steps
        r = E.compute_schedule(warmup_steps=0, peak=lr, final=0.0, total_steps=total, optimizer=optimizer)
        fresh = run(make(), total)
        assert np.array_equal(r["constant"]["params"], fresh.params, equal_nan=True)
        assert np.array_equal(r["constant"]["losses"], fresh.losses, equal_nan=True)
        assert r["constant"]["diverged_at"] == fresh.diverged_at
    clip = E.compute_clipping(max_norm=20, lr=lr, optimizer=optimizer, steps=60)
    assert np.array_equal(clip["unclipped"]["params"], run(make(), 60).params, equal_nan=True)


# ----------------------------------------------------------------------------- results are not shared

def _arrays(value):
    """Every numpy array inside a result (nested dicts, lists and tuples)."""
    if isinstance(value, np.ndarray):
        yield value
    elif isinstance(value, dict):
        for v in value.values():
            yield from _arrays(v)
    elif isinstance(value, (list, tuple)):
        for v in value:
            yield from _arrays(v)


def _same(a, b) -> bool:
    if isinstance(a, dict):
        return isinstance(b, dict) and a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    if isinstance(a, np.ndarray):
        return np.array_equal(a, b, equal_nan=a.dtype.kind == "f")
    if isinstance(a, float) and math.isnan(a):
        return isinstance(b, float) and math.isnan(b)
    return a == b


def _scribble(arrays):
    """Write into every array a learner could write into; a read-only one refuses (fine)."""
    for arr in arrays:
        try:
            arr[...] = 7
        except ValueError:
            pass


@pytest.mark.parametrize("name", sorted(COMPUTES))
def test_writing_into_a_result_never_changes_the_next_call(name):
    first = COMPUTES[name]()
    kept = copy.deepcopy(first)
    _scribble(_arrays(first))
    assert _same(COMPUTES[name](), kept)


def test_the_clipping_explorer_never_changes_the_schedule_explorers_runs():
    expected = run(AdamW(0.08, weight_decay=0.01), 60)
    clip = E.compute_clipping(lr=0.08, optimizer="adamw", steps=60)
    _scribble(_arrays(clip["unclipped"]))
    sched = E.compute_schedule(peak=0.08, total_steps=60, optimizer="adamw")
    assert np.array_equal(sched["constant"]["params"], expected.params)
    assert np.array_equal(sched["constant"]["losses"], expected.losses)


# ----------------------------------------------------------------------------- coalesced browser updates

def _from_browser(control, value):
    """Deliver a value the way the frontend does: Widget.set_state with the JSON state."""
    control.set_state({"value": value})


async def _until_drawn(ex, timeout=10.0):
    loop = asyncio.get_running_loop()
    end = loop.time() + timeout
    while ex.update_pending and loop.time() < end:
        await asyncio.sleep(0.001)
    assert not ex.update_pending


def test_a_browser_drag_is_drawn_once_at_its_last_value():
    ex = E.sgd_explorer()
    before_text, before_updates = ex.readout_text, len(ex.update_seconds)
    values = [0.005, 0.007, 0.01, 0.012, 0.015]

    async def drag():
        for v in values:
            _from_browser(ex.controls["lr"], v)
        assert ex.update_pending and ex.readout_text == before_text   # waits for the latest value
        await _until_drawn(ex)

    asyncio.run(drag())
    assert len(ex.update_seconds) == before_updates + 1
    assert ex.readout_text == E.compute_sgd(lr=0.015)["readout"]
    assert ex.readout_text.startswith("lr 0.015: multipliers a -0.5, b 0.985; final loss ")


def test_changes_from_python_update_at_once_even_while_an_event_loop_runs():
    ex = E.sgd_explorer()

    async def cell():
        _from_browser(ex.controls["lr"], 0.01)                  # a browser change waits ...
        assert ex.update_pending
        ex.controls["lr"].value = 0.005                         # ... a cell's change does not
        assert not ex.update_pending                            # and covers the pending one
        assert ex.readout_text == E.compute_sgd(lr=0.005)["readout"]
        ex.set(lr=0.012, steps=8)
        assert ex.readout_text == E.compute_sgd(lr=0.012, steps=8)["readout"]
        await asyncio.sleep(0.05)

    n = len(ex.update_seconds)
    asyncio.run(cell())
    assert len(ex.update_seconds) == n + 2


def test_a_browser_change_without_an_event_loop_updates_at_once():
    ex = E.sgd_explorer()
    _from_browser(ex.controls["lr"], 0.005)
    assert not ex.update_pending
    assert ex.readout_text == E.compute_sgd(lr=0.005)["readout"]


def test_a_browser_change_that_moves_another_control_is_one_update():
    ex = E.schedule_explorer()
    ex.controls["warmup_steps"].value = 60
    n = len(ex.update_seconds)

    async def drag():
        _from_browser(ex.controls["total_steps"], 20)           # clamps warmup to 18 on the way
        await _until_drawn(ex)

    asyncio.run(drag())
    assert len(ex.update_seconds) == n + 1
    assert ex.controls["warmup_steps"].value == 18
    assert ex.result["total_steps"] == 20 and ex.result["warmup_steps"] == 18


# ----------------------------------------------------------------------------- lesson 12: schedulers on the ticket model

def _ticket_run_by_library(make_sched, lr, epochs, per_update, momentum_from=None, sgdr=False):
    """The explorer's run through the library: SGD, MinibatchLogistic and the scheduler objects."""
    from lessons_lib.logistic import LogisticSurface, MinibatchLogistic
    X, y, Xv, yv = E.schedulers.ticket_model()
    batches = len(y) // 32
    surface, val = MinibatchLogistic(X, y, batch_size=32, seed=0), LogisticSurface(Xv, yv)
    sched = make_sched(lr, epochs * batches)
    opt = SGD(lr=lr, momentum=0.9)
    w = np.zeros(3)
    state = opt.init(w)
    lrs, vals = [], []
    for epoch in range(epochs):
        for i in range(batches):
            lrs.append(sched.lr)
            if momentum_from:
                opt.momentum = sched.momentum
            w, state = opt.step(w, surface.grad(w), state, lr=sched.lr)
            if per_update:
                sched.step(epoch + (i + 1) / batches) if sgdr else sched.step()
            if (i + 1) % (batches // 4) == 0 and (i + 1) // (batches // 4) <= 4:
                vals.append(float(val.loss(w)))
        if not per_update:
            sched.step()
    return np.array(lrs), np.array(vals)


def test_schedulers_step_rates_by_hand_and_validation_losses_by_the_library():
    from lessons_lib.lr_schedulers import CosineAnnealingWarmRestarts, StepLR
    r = E.compute_schedulers(scheduler="step", lr=0.2, gamma=0.3, step_size=2, epochs=5)
    epoch = np.arange(5 * 70) // 70
    assert np.allclose(r["scheduled"]["lrs"], 0.2 * 0.3 ** (epoch // 2), rtol=1e-12, atol=0)   # lr0 gamma^floor(e/s)
    lrs, vals = _ticket_run_by_library(lambda lr, total: StepLR(lr, step_size=2, gamma=0.3), 0.2, 5, per_update=False)
    assert np.array_equal(lrs, r["scheduled"]["lrs"])
    assert np.allclose(vals, r["scheduled"]["val_losses"], rtol=0, atol=1e-12)
    shows(r["readout"], "StepLR: final validation loss", vals[-1])
    # SGDR stepped with fractional epochs: cos from lr0 to 0 over T_0 = 1 epoch, then over 2, by hand
    r = E.compute_schedulers(scheduler="sgdr", lr=0.5, T_0=1, T_mult=2, epochs=3)
    t = np.arange(3 * 70) / 70                                   # the epoch (fraction) each update's lr was set at
    cur, length = np.where(t < 1, t, t - 1), np.where(t < 1, 1.0, 2.0)
    assert np.allclose(r["scheduled"]["lrs"], 0.5 * (1 + np.cos(np.pi * cur / length)) / 2, rtol=0, atol=1e-12)
    lrs, vals = _ticket_run_by_library(lambda lr, total: CosineAnnealingWarmRestarts(lr, T_0=1, T_mult=2), 0.5, 3,
                                       per_update=True, sgdr=True)
    assert np.allclose(vals, r["scheduled"]["val_losses"], rtol=0, atol=1e-12)


def test_schedulers_one_cycle_endpoints_and_cycled_momentum():
    from lessons_lib.lr_schedulers import OneCycleLR
    r = E.compute_schedulers(scheduler="onecycle", lr=0.2, pct_start=0.3, epochs=3)
    lrs, mom = r["scheduled"]["lrs"], r["scheduled"]["momenta"]
    peak = int(np.argmax(lrs))
    assert lrs[0] == pytest.approx(0.2 / 25, rel=1e-12) and lrs[peak] == pytest.approx(0.2, rel=1e-12)
    assert peak == round(0.3 * 210) - 1                              # torch's end of the warmup: pct_start * total - 1
    assert mom[0] == pytest.approx(0.95) and mom[peak] == pytest.approx(0.85) and np.argmin(mom) == peak
    assert lrs[-1] == pytest.approx(0.2 / 25 / 1e4, rel=1e-3)       # the last update's rate, near the minimum
    _, vals = _ticket_run_by_library(lambda lr, total: OneCycleLR(lr, total_steps=total), 0.2, 3, per_update=True,
                                     momentum_from=True)
    assert np.allclose(vals, r["scheduled"]["val_losses"], rtol=0, atol=1e-12)
    assert "momentum 0.95 -> 0.85 -> 0.95" in r["readout"]


def test_schedulers_plateau_reduces_only_after_patience_bad_validations():
    r = E.compute_schedulers(scheduler="plateau", lr=0.2, gamma=0.3, patience=1, epochs=3)
    vals, lrs = r["scheduled"]["val_losses"], r["scheduled"]["lrs"]
    # the rule by hand: a validation is good when it beats the best by the relative threshold 1e-4
    best, bad, lr, expected = math.inf, 0, 0.2, []
    for v in vals:
        expected.append(lr)
        if v < best * (1 - 1e-4):
            best, bad = v, 0
        else:
            bad += 1
        if bad > 1:
            lr, bad = lr * 0.3, 0
    used_after = lrs[r["scheduled"]["val_steps"][:-1]]             # the rate of the update after each validation
    assert np.allclose(used_after, expected[1:], rtol=1e-12)


def test_schedulers_constant_baseline_is_shared_and_divergence_is_a_message():
    a = E.compute_schedulers(scheduler="step", lr=0.3)
    b = E.compute_schedulers(scheduler="sgdr", lr=0.3, T_mult=1)
    assert a["constant"]["val_losses"] is b["constant"]["val_losses"]          # one cached baseline per (lr, epochs)
    r = E.compute_schedulers(scheduler="constant", lr=1e3)
    assert r["problem"] and ("diverged at update" in r["readout"] or "ends above ln 2" in r["problem"])
    with pytest.raises(ValueError, match="scheduler must be one of"):
        E.compute_schedulers(scheduler="cosine")
    with pytest.raises(ValueError, match="gamma must lie in"):
        E.compute_schedulers(gamma=1.0)


# ----------------------------------------------------------------------------- lesson 13: lean optimizer state

def test_lean_lion_moves_every_coordinate_by_exactly_lr_and_its_state_is_one_buffer():
    from lessons_lib.lean import Lion
    r = E.compute_lean(optimizer="lion", lr=0.01)
    assert np.allclose(r["step_sizes"], 0.01, rtol=1e-12, atol=0)        # sign steps: lr in a and in b, every step
    assert r["state_bytes"] == 2 * 8 and r["state_buffers"] == ["exp_avg"]    # one float64 buffer of 2 values
    shows(r["readout"], "final loss", run(Lion(0.01), 200).final_loss)
    shows(r["readout"], "step size at step 1: a", 0.01)
    assert "(8 per parameter)" in r["readout"]


def test_lean_state_bytes_by_hand_for_every_optimizer():
    # float64 on 2 parameters: momentum 1 buffer, AdamW 2, Adafactor's vector variance 1; the 8-bit state
    # 1 byte per value of m and v (2 x 2) plus one float64 scale per moment for the one shared block (2 x 8)
    expected = {"momentum": 16, "adamw": 32, "lion": 16, "adafactor": 16, "adamw8bit": 2 * 2 + 2 * 8}
    for key, nbytes in expected.items():
        assert E.compute_lean(optimizer=key, lr=0.01)["state_bytes"] == nbytes, key


def test_lean_first_steps_by_hand():
    # AdamW's first step is lr * g / |g| = lr per coordinate; momentum's is lr * g = (1, 0.01) at lr 0.01
    assert np.allclose(E.compute_lean(optimizer="adamw", lr=0.01)["step_sizes"][0], [0.01, 0.01], rtol=1e-6)
    assert np.allclose(E.compute_lean(optimizer="momentum", lr=0.01)["step_sizes"][0], [1.0, 0.01], rtol=1e-12)
    # Adafactor at step 1: alpha = max(1e-3, RMS(w) = 1) * min(lr, 1) and |u| = 1 per coordinate
    assert np.allclose(E.compute_lean(optimizer="adafactor", lr=0.1)["step_sizes"][0], [0.1, 0.1], rtol=1e-12)


def test_lean_cosine_schedule_shrinks_lions_steps_to_the_schedules_rate():
    from lessons_lib.schedules import cosine
    r = E.compute_lean(optimizer="lion", lr=0.01, schedule="cosine")
    rates = cosine(0.01, 200, 0.0).values(200)
    moving = rates > 0
    assert np.allclose(r["step_sizes"][moving], rates[moving, None], rtol=1e-9, atol=1e-15)
    assert r["final_loss"] < E.compute_lean(optimizer="lion", lr=0.01)["final_loss"]


def test_lean_settings_outside_the_domain():
    with pytest.raises(ValueError, match="optimizer must be one of"):
        E.compute_lean(optimizer="muon")
    with pytest.raises(ValueError, match="schedule must be one of"):
        E.compute_lean(schedule="linear")
    with pytest.raises(ValueError, match="lr must be a finite number > 0"):
        E.compute_lean(lr=0.0)
