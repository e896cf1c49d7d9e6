"""Every documented printout, reproduced from lessons_lib alone (no notebook needed).

Each test builds the printed text from the library, exactly as a lesson prints it, and
compares it with the text stored in tests/documented_printouts.json.
"""
from __future__ import annotations

import numpy as np
import pytest

from lessons_lib.clipping import clip_by_global_norm, global_norm
from lessons_lib.formatting import fixed, rounded
from lessons_lib.memory import state_gigabytes
from lessons_lib.optimizers import SGD, Adam, AdamW, EMAMomentum
from lessons_lib.runner import run
from lessons_lib.schedules import cosine, warmup_cosine
from lessons_lib.surfaces import COURSE, START


def curvature_one_step():
    g = COURSE.grad(START)
    opt = SGD(lr=0.018)
    w1, _ = opt.step(START, g, opt.init(START))
    return [
        f"start loss {rounded(COURSE.loss(START), 3)}",
        f"gradient {rounded(g, 3)}",
        f"one SGD step {rounded(w1, 3)}",
        f"next loss {rounded(COURSE.loss(w1), 3)}",
    ]


def sgd_lr_sweep():
    lines = []
    for lr in (0.005, 0.018, 0.021):
        trace = run(SGD(lr=lr), 8)
        lines.append(f"lr={lr} w={rounded(trace.final_params, 3)} loss={trace.final_loss:.3f}")
    return lines


FIXED_GRADIENTS_EMA = [[100.0, 1.0], [-80.0, 0.98], [64.0, 0.96], [-51.2, 0.94]]
FIXED_GRADIENTS_ADAM = [[100.0, 1.0], [-80.0, 0.98], [70.0, 0.96], [-60.0, 0.94]]


def ema_memory():
    opt = EMAMomentum(lr=0.018, beta=0.9)
    w = START.copy()
    state = opt.init(w)
    lines = []
    for k, g in enumerate(FIXED_GRADIENTS_EMA, start=1):
        w, state = opt.step(w, g, state)
        lines.append(f"{k} gradient {rounded(g, 2)} memory {rounded(state.m, 3)}")
    return lines


def sgd_vs_momentum():
    lines = []
    for name, opt in (("sgd", SGD(lr=0.018)), ("momentum", EMAMomentum(lr=0.018, beta=0.9))):
        trace = run(opt, 40)
        lines.append(f"{name} w {rounded(trace.final_params, 4)} loss {rounded(trace.final_loss, 4)}")
    return lines


def adam_first_step():
    opt = Adam(lr=0.01, betas=(0.9, 0.999), eps=1e-8)
    g = COURSE.grad(START)
    w1, state = opt.step(START, g, opt.init(START))
    m_hat, v_hat = opt.moments_hat(state)
    return [
        f"m_hat {rounded(m_hat, 6)}",
        f"v_hat {rounded(v_hat, 6)}",
        f"update {rounded(START - w1, 6)}",
    ]


def adam_history():
    opt = Adam(lr=0.01, betas=(0.9, 0.999), eps=1e-8)
    w = np.zeros(2)
    state = opt.init(w)
    lines = []
    for k, g in enumerate(FIXED_GRADIENTS_ADAM, start=1):
        new_w, state = opt.step(w, g, state)
        m_hat, _ = opt.moments_hat(state)
        lines.append(f"{k} m_hat {rounded(m_hat, 3)} step {rounded(w - new_w, 5)}")
        w = new_w
    return lines


def bias_correction():
    theta = np.zeros(1)
    g = np.array([4.0])
    steps = {}
    for corrected in (False, True):
        opt = Adam(lr=0.01, bias_correction=corrected)
        new, _ = opt.step(theta, g, opt.init(theta))
        steps[corrected] = rounded((theta - new)[0], 5)
    return [f"uncorrected step {steps[False]}", f"corrected step {steps[True]}"]


def adamw_vs_coupled_l2():
    theta = np.array([10.0])
    zero = np.zeros(1)
    adamw = AdamW(lr=0.1, weight_decay=0.01, eps=1e-8)
    decayed, _ = adamw.step(theta, zero, adamw.init(theta))
    adam = Adam(lr=0.1, eps=1e-8)
    l2_grad = 0.01 * theta
    coupled, _ = adam.step(theta, l2_grad, adam.init(theta))
    return [
        f"AdamW with zero data gradient {rounded(decayed[0], 4)}",
        f"Adam plus coupled L2 first step {rounded(coupled[0], 4)}",
    ]


def warmup_cosine_values():
    schedule = warmup_cosine(peak=3e-4, final=3e-5, warmup_steps=2, total_steps=10)
    return [str(fixed(schedule.values(10), 6))]


def global_norm_clipping():
    lines = []
    for name, g in (("ordinary", [3.0, 4.0]), ("outlier", [300.0, 400.0])):
        clipped, before = clip_by_global_norm(g, max_norm=5)
        lines.append(f"{name} before {before} after {rounded(global_norm(clipped), 3)} "
                     f"value {rounded(clipped, 2)}")
    return lines


def capstone_sgd_vs_adamw():
    steps = 80
    sgd = run(SGD(lr=0.018), steps, schedule=cosine(0.018, steps))
    adamw = run(AdamW(lr=0.08, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.01), steps,
                schedule=cosine(0.08, steps))
    return [
        f"SGD loss {rounded(sgd.final_loss, 6)} w {rounded(sgd.final_params, 5)}",
        f"AdamW loss {rounded(adamw.final_loss, 6)} w {rounded(adamw.final_params, 5)}",
    ]


def framework_loop_with_clipping():
    steps = 60
    trace = run(AdamW(lr=0.08, weight_decay=0.01), steps, schedule=cosine(0.08, steps),
                max_norm=20.0, clip_eps=1e-6)
    return [
        f"loss {trace.final_loss:.6f}",
        f"w {rounded(trace.final_params, 5)}",
        f"max pre-clip gradient norm {rounded(np.max(trace.grad_norms), 3)}",
        f"clipped updates {int(np.sum(trace.clipped))}",
    ]


def adamw_state_memory():
    return [f"AdamW moment buffers in GB: {rounded(state_gigabytes('AdamW', 7e9, 4), 3)}"]


REPRODUCTIONS = {
    "curvature-one-step": curvature_one_step,
    "sgd-lr-sweep": sgd_lr_sweep,
    "ema-memory": ema_memory,
    "sgd-vs-momentum": sgd_vs_momentum,
    "adam-first-step": adam_first_step,
    "adam-history": adam_history,
    "bias-correction": bias_correction,
    "adamw-vs-coupled-l2": adamw_vs_coupled_l2,
    "warmup-cosine": warmup_cosine_values,
    "global-norm-clipping": global_norm_clipping,
    "capstone-sgd-vs-adamw": capstone_sgd_vs_adamw,
    "framework-loop-with-clipping": framework_loop_with_clipping,
    "adamw-state-memory": adamw_state_memory,
}


def test_every_documented_printout_has_a_reproduction(printouts):
    assert set(REPRODUCTIONS) == set(printouts)
    assert len(printouts) == 13


@pytest.mark.parametrize("printout_id", sorted(REPRODUCTIONS))
def test_documented_printout(printout_id, printouts):
    expected = printouts[printout_id]["printout"]
    assert "\n".join(REPRODUCTIONS[printout_id]()) == expected


def test_adamw_printout_also_comes_from_adam_weight_decay():
    """The coupled-L2 line is the same whether the L2 gradient is fed by hand or by weight_decay."""
    theta, zero = np.array([10.0]), np.zeros(1)
    opt = Adam(lr=0.1, weight_decay=0.01, eps=1e-8)
    new, _ = opt.step(theta, zero, opt.init(theta))
    assert rounded(new[0], 4) == 9.9


def test_printouts_print_plain_numbers():
    """No numpy scalar repr (np.float64(...)) may leak into a printed line."""
    for build in REPRODUCTIONS.values():
        for line in build():
            assert "np." not in line and "array(" not in line, line
