"""Unit tests of lessons_lib.optimizers: update equations, state, batches of runs."""
from __future__ import annotations

import numpy as np
import pytest

from lessons_lib.adaptive import Adagrad, RMSprop
from lessons_lib.optimizers import SGD, Adam, AdamState, AdamW, EMAMomentum, EMAMomentumState, SGDState
from lessons_lib.runner import run
from lessons_lib.surfaces import COURSE, START

G1 = np.array([100.0, 1.0])
G2 = np.array([-80.0, 0.98])


def steps(opt, grads, w=START):
    """Apply fixed gradients one after another; return positions and states."""
    w = np.asarray(w, dtype=float)
    state = opt.init(w)
    ws, states = [w], [state]
    for g in grads:
        w, state = opt.step(w, g, state)
        ws.append(w)
        states.append(state)
    return ws, states


# ---------------------------------------------------------------- SGD

def test_plain_sgd_step():
    opt = SGD(lr=0.018)
    state = opt.init(START)
    assert state == SGDState(step=0, momentum_buffer=None)
    w, state = opt.step(START, G1, state)
    np.testing.assert_allclose(w, [1 - 1.8, 1 - 0.018], rtol=0, atol=1e-15)
    assert state.step == 1 and state.momentum_buffer is None


def test_sgd_weight_decay_is_added_to_the_gradient():
    opt = SGD(lr=0.1, weight_decay=0.5)
    w, _ = opt.step(np.array([2.0, -4.0]), np.array([1.0, 1.0]), opt.init(np.zeros(2)))
    np.testing.assert_allclose(w, [2.0 - 0.1 * (1 + 1.0), -4.0 - 0.1 * (1 - 2.0)], atol=1e-15)


def test_sgd_momentum_buffer_starts_at_first_gradient_without_dampening():
    opt = SGD(lr=0.01, momentum=0.9, dampening=0.5)
    ws, states = steps(opt, [G1, G2])
    np.testing.assert_array_equal(states[1].momentum_buffer, G1)        # no dampening on step 1
    np.testing.assert_allclose(states[2].momentum_buffer, 0.9 * G1 + 0.5 * G2, atol=1e-13)
    np.testing.assert_allclose(ws[2], ws[1] - 0.01 * states[2].momentum_buffer, atol=1e-15)


def test_sgd_nesterov_uses_gradient_plus_momentum_times_buffer():
    opt = SGD(lr=0.01, momentum=0.9, nesterov=True)
    ws, states = steps(opt, [G1, G2])
    buf2 = 0.9 * G1 + G2
    np.testing.assert_allclose(states[2].momentum_buffer, buf2, atol=1e-13)
    np.testing.assert_allclose(ws[1], START - 0.01 * (G1 + 0.9 * G1), atol=1e-15)
    np.testing.assert_allclose(ws[2], ws[1] - 0.01 * (G2 + 0.9 * buf2), atol=1e-15)


def test_heavy_ball_equals_ema_momentum_with_rescaled_lr():
    """v = mu v + g (torch, buffer = g1) and m = b m + (1-b) g (from 0) give the same path
    when lr_torch = lr_ema * (1 - beta)."""
    beta, lr = 0.9, 0.018
    ema = run(EMAMomentum(lr=lr, beta=beta), 200)
    heavy = run(SGD(lr=lr * (1 - beta), momentum=beta), 200)
    np.testing.assert_allclose(ema.params, heavy.params, rtol=0, atol=1e-12)


def test_sgd_dampening_equal_momentum_differs_from_zero_initialised_ema():
    """torch's EMA form (dampening = momentum) starts from g1, the course's EMA from 0."""
    ws_torch, st_torch = steps(SGD(lr=0.01, momentum=0.9, dampening=0.9), [G1])
    ws_ema, st_ema = steps(EMAMomentum(lr=0.01, beta=0.9), [G1])
    np.testing.assert_array_equal(st_torch[1].momentum_buffer, G1)
    np.testing.assert_allclose(st_ema[1].m, 0.1 * G1, atol=1e-15)
    assert not np.allclose(ws_torch[1], ws_ema[1])


def test_sgd_stability_limit_on_course_surface():
    """SGD converges iff lr * 100 < 2."""
    assert not run(SGD(lr=0.0199), 2000).diverged
    assert run(SGD(lr=0.0199), 2000).final_loss < 1e-6
    assert run(SGD(lr=0.0201), 2000).diverged


def test_heavy_ball_optimal_rate_is_nine_elevenths():
    from lessons_lib.runner import measured_rate
    trace = run(SGD(lr=4 / 121, momentum=81 / 121), 400)
    rate = measured_rate(trace, window=100)
    assert 9 / 11 - 1e-3 < rate < 9 / 11 + 0.01        # critically damped: k * (9/11)^k
    sgd = measured_rate(run(SGD(lr=2 / 101), 400), window=100)
    assert sgd == pytest.approx(99 / 101, abs=1e-9)


# ---------------------------------------------------------------- EMA momentum

def test_ema_momentum_update():
    opt = EMAMomentum(lr=0.5, beta=0.8)
    init = opt.init(START)
    assert isinstance(init, EMAMomentumState) and init.step == 0
    ws, states = steps(opt, [G1, G2])
    np.testing.assert_array_equal(states[0].m, [0.0, 0.0])
    np.testing.assert_allclose(states[1].m, 0.2 * G1, atol=1e-15)
    np.testing.assert_allclose(states[2].m, 0.8 * 0.2 * G1 + 0.2 * G2, atol=1e-13)
    np.testing.assert_allclose(ws[2], ws[1] - 0.5 * states[2].m, atol=1e-13)
    assert states[2].step == 2


# ---------------------------------------------------------------- Adam / AdamW

def test_adam_first_step_moves_every_coordinate_by_lr():
    opt = Adam(lr=0.01)
    w, state = opt.step(START, G1, opt.init(START))
    np.testing.assert_allclose(START - w, [0.01, 0.01], rtol=1e-6)
    assert isinstance(state, AdamState) and state.step == 1
    np.testing.assert_allclose(state.m, 0.1 * G1, atol=1e-13)
    np.testing.assert_allclose(state.v, 0.001 * G1**2, atol=1e-13)
    m_hat, v_hat = opt.moments_hat(state)
    np.testing.assert_allclose(m_hat, G1, rtol=1e-12)
    np.testing.assert_allclose(v_hat, G1**2, rtol=1e-12)


def test_adam_matches_textbook_formula_to_rounding():
    opt = Adam(lr=0.01, betas=(0.9, 0.999), eps=1e-8)
    w = START.copy()
    m = v = np.zeros(2)
    state = opt.init(w)
    for t in range(1, 101):
        g = COURSE.grad(w)
        m = 0.9 * m + 0.1 * g
        v = 0.999 * v + 0.001 * g * g
        expected = w - 0.01 * (m / (1 - 0.9**t)) / (np.sqrt(v / (1 - 0.999**t)) + 1e-8)
        w, state = opt.step(w, g, state)
        np.testing.assert_allclose(w, expected, rtol=0, atol=1e-13)


def test_adam_without_bias_correction():
    opt = Adam(lr=0.01, bias_correction=False)
    w, _ = opt.step(np.zeros(1), np.array([4.0]), opt.init(np.zeros(1)))
    assert -w[0] == pytest.approx(0.01 * 0.4 / (np.sqrt(0.001 * 16) + 1e-8), rel=1e-12)


def test_moments_hat_before_any_step_is_zero():
    opt = Adam()
    m_hat, v_hat = opt.moments_hat(opt.init(START))
    np.testing.assert_array_equal(m_hat, [0, 0])
    np.testing.assert_array_equal(v_hat, [0, 0])


def test_adamw_decays_before_the_moments_and_leaves_them_alone():
    opt = AdamW(lr=0.1, weight_decay=0.01)
    w, state = opt.step(np.array([10.0]), np.zeros(1), opt.init(np.zeros(1)))
    assert w[0] == pytest.approx(9.99, abs=1e-12)
    np.testing.assert_array_equal(state.m, [0.0])
    np.testing.assert_array_equal(state.v, [0.0])


def test_adam_l2_goes_through_the_moments():
    opt = Adam(lr=0.1, weight_decay=0.01)
    w, state = opt.step(np.array([10.0]), np.zeros(1), opt.init(np.zeros(1)))
    assert w[0] == pytest.approx(9.9, abs=1e-6)
    np.testing.assert_allclose(state.m, [0.1 * 0.1], atol=1e-15)


def test_adamw_default_weight_decay():
    assert AdamW().weight_decay == 0.01
    assert Adam().weight_decay == 0.0
    assert Adam().betas == (0.9, 0.999) and Adam().eps == 1e-8 and Adam().lr == 1e-3


def test_sgd_l2_equals_weight_decay_for_plain_sgd():
    """For SGD, an L2 penalty in the loss and weight decay coincide."""
    a = run(SGD(lr=0.01, weight_decay=0.5), 100)
    b = run(SGD(lr=0.01 * 1.0, weight_decay=0.0), 100,
            surface=type(COURSE)([100.5, 1.5]))
    np.testing.assert_allclose(a.params, b.params, atol=1e-13)


# ---------------------------------------------------------------- nothing is mutated, lr override

@pytest.mark.parametrize("opt", [SGD(0.01, momentum=0.9), EMAMomentum(0.01), Adam(0.01), AdamW(0.01)],
                         ids=lambda o: type(o).__name__)
def test_step_does_not_mutate_inputs(opt):
    w = START.copy()
    g = G1.copy()
    state = opt.init(w)
    w1, s1 = opt.step(w, g, state)
    copies = [np.copy(x) if isinstance(x, np.ndarray) else x for x in s1]
    opt.step(w1, g, s1)
    np.testing.assert_array_equal(w, START)
    np.testing.assert_array_equal(g, G1)
    for before, after in zip(copies, s1):
        np.testing.assert_array_equal(before, after)


@pytest.mark.parametrize("opt", [SGD(0.01, momentum=0.9), EMAMomentum(0.01), Adam(0.01), AdamW(0.01)],
                         ids=lambda o: type(o).__name__)
def test_lr_override_equals_constructor_lr(opt):
    other = type(opt)(0.003) if not isinstance(opt, SGD) else SGD(0.003, momentum=0.9)
    state = opt.init(START)
    a, _ = opt.step(START, G1, state, lr=0.003)
    b, _ = other.step(START, G1, other.init(START))
    np.testing.assert_array_equal(a, b)


def test_lr_zero_override_is_allowed_and_does_not_move():
    opt = SGD(0.01)
    w, _ = opt.step(START, G1, opt.init(START), lr=0.0)
    np.testing.assert_array_equal(w, START)


# ---------------------------------------------------------------- batches

@pytest.mark.parametrize("make", [
    lambda lr: SGD(lr, momentum=0.9, nesterov=True),
    lambda lr: EMAMomentum(lr, beta=0.8),
    lambda lr: Adam(lr, weight_decay=0.01),
    lambda lr: AdamW(lr),
], ids=["sgd", "ema", "adam", "adamw"])
def test_batch_of_starts_equals_single_runs(make):
    starts = np.array([[1.0, 1.0], [-0.5, 2.0], [0.2, -0.3]])
    batch = run(make(0.005), 50, start=starts)
    for r in range(3):
        single = run(make(0.005), 50, start=starts[r])
        np.testing.assert_array_equal(batch.params[:, r], single.params)


def test_per_run_hyperparameters_give_a_batch():
    lrs = np.linspace(0.001, 0.019, 64)
    betas = np.linspace(0.0, 0.95, 64)
    opt = EMAMomentum(lr=lrs, beta=betas)
    assert opt.runs == 64
    trace = run(opt, 30)
    assert trace.params.shape == (31, 64, 2)
    for r in (0, 17, 63):
        single = run(EMAMomentum(lr=float(lrs[r]), beta=float(betas[r])), 30)
        np.testing.assert_array_equal(trace.params[:, r], single.params)


def test_sgd_batch_mixing_zero_and_nonzero_momentum_ignores_dampening_without_momentum():
    """torch ignores dampening when momentum is 0; so must a batched run."""
    batch = run(SGD(lr=np.array([0.01, 0.01]), momentum=np.array([0.0, 0.9]), dampening=np.array([0.5, 0.5])), 30)
    plain = run(SGD(lr=0.01, dampening=0.5), 30)
    np.testing.assert_array_equal(batch.params[:, 0], plain.params)


def test_per_run_hyperparameters_must_agree_in_length():
    with pytest.raises(ValueError, match="same length"):
        SGD(lr=np.array([0.1, 0.2]), momentum=np.array([0.1, 0.2, 0.3]))


def test_per_run_hyperparameters_need_matching_params():
    opt = Adam(lr=np.array([0.1, 0.2, 0.3]))
    with pytest.raises(ValueError, match="3 runs"):
        opt.step(np.zeros((2, 2)), np.zeros((2, 2)), opt.init(np.zeros((2, 2))))
    with pytest.raises(ValueError, match="3 runs"):
        opt.step(np.zeros(2), np.zeros(2), opt.init(np.zeros(2)))


def test_two_dimensional_hyperparameter_rejected():
    with pytest.raises(ValueError, match="1-D array"):
        SGD(lr=np.full((2, 2), 0.1))


def test_params_of_wrong_rank_rejected():
    opt = SGD(0.1)
    with pytest.raises(ValueError, match=r"\(d,\) or \(runs, d\)"):
        opt.step(np.zeros((2, 2, 2)), np.zeros((2, 2, 2)), opt.init(np.zeros(2)))


def test_repr_lists_hyperparameters():
    text = repr(AdamW(lr=0.08, weight_decay=0.01))
    assert text.startswith("AdamW(") and "lr=0.08" in text and "weight_decay=0.01" in text
    assert "runs" not in text




def test_batched_bias_correction_powers_are_python_pow_bitwise():
    """A batch with per-run step counts must compute beta ** t exactly as a single run does."""
    from lessons_lib.optimizers import _power
    t = np.arange(1, 2001)
    for beta in (0.9, 0.99, 0.999):
        batch = _power(beta, t)
        assert batch.dtype == np.float64
        assert batch.tolist() == [beta ** int(k) for k in t]


@pytest.mark.parametrize("make", [lambda: SGD(0.01), lambda: SGD(0.01, momentum=0.9),
                                  lambda: EMAMomentum(0.01), lambda: Adam(0.01), lambda: AdamW(0.01),
                                  lambda: Adagrad(0.1, lr_decay=0.01, weight_decay=0.1, initial_accumulator_value=0.1),
                                  lambda: RMSprop(0.01),
                                  lambda: RMSprop(0.01, momentum=0.9, centered=True, weight_decay=0.1)],
                         ids=["sgd", "heavy-ball", "ema", "adam", "adamw",
                              "adagrad", "rmsprop", "rmsprop-centered-momentum"])
def test_float32_params_and_state_stay_float32(make):
    opt = make()
    w = np.ones(3, dtype=np.float32)
    state = opt.init(w)
    for _ in range(3):
        w, state = opt.step(w, np.full(3, 0.5, dtype=np.float32), state)
    assert w.dtype == np.float32
    assert all(b.dtype == np.float32 for b in state if isinstance(b, np.ndarray))


def test_an_lr_array_for_a_single_run_is_refused_not_applied_per_coordinate():
    opt = SGD(0.1)
    w = np.ones(2)
    with pytest.raises(ValueError, match="one per run"):
        opt.step(w, np.ones(2), opt.init(w), lr=np.array([0.1, 0.5]))
    with pytest.raises(ValueError, match="one per run"):   # wrong length for the batch
        opt.step(np.ones((3, 2)), np.ones((3, 2)), opt.init(np.ones((3, 2))), lr=np.array([0.1, 0.5]))
