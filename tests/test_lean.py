"""Lion, Adafactor and Muon without torch: hand-computed steps, properties, shapes and checks."""
from __future__ import annotations

import numpy as np
import pytest

from lessons_lib.lean import (
    NS_COEFFICIENTS,
    Adafactor,
    AdafactorState,
    Lion,
    LionState,
    Muon,
    MuonState,
    newton_schulz,
    polar_factor,
    state_nbytes,
)
from lessons_lib.optimizers import Adam

RNG = np.random.default_rng(15)


# ---------------------------------------------------------------- Lion

def lion_by_hand(w, m, g, lr, beta1, beta2, wd):
    """The published Lion step written out coordinate by coordinate, with Python floats."""
    new_w, new_m = [], []
    for wi, mi, gi in zip(w, m, g):
        c = beta1 * mi + (1 - beta1) * gi
        sign = 1.0 if c > 0 else (-1.0 if c < 0 else 0.0)
        new_w.append(wi - lr * (sign + wd * wi))
        new_m.append(beta2 * mi + (1 - beta2) * gi)
    return new_w, new_m


def test_lion_first_two_steps_match_numbers_computed_by_hand():
    opt = Lion(lr=0.1, betas=(0.9, 0.99), weight_decay=0.5)
    w = np.array([1.0, -2.0])
    state = opt.init(w)
    w1, state = opt.step(w, np.array([0.4, 0.0]), state)
    # c = 0.1*g = (0.04, 0): w - 0.1*(sign(c) + 0.5*w) = (1 - 0.1*1.5, -2 - 0.1*(0 - 1)) = (0.85, -1.9)
    # m = 0.01*g = (0.004, 0)
    np.testing.assert_allclose(w1, [0.85, -1.9], rtol=0, atol=1e-15)
    np.testing.assert_allclose(state.exp_avg, [0.004, 0.0], rtol=0, atol=1e-15)   # 1 - 0.99 is 0.01 to 1 ulp
    # second step, g = (-0.1, 3): c = (0.9*0.004 - 0.01, 0.3) = (-0.0064, 0.3): signs (-1, +1)
    w2, state = opt.step(w1, np.array([-0.1, 3.0]), state)
    # w2 = (0.85 - 0.1*(-1 + 0.425), -1.9 - 0.1*(1 - 0.95)) = (0.9075, -1.905); m = (0.00296, 0.03)
    np.testing.assert_allclose(w2, [0.9075, -1.905], rtol=0, atol=1e-15)
    np.testing.assert_allclose(state.exp_avg, [0.00296, 0.03], rtol=0, atol=1e-15)
    assert state.step == 2


@pytest.mark.parametrize("wd", [0.0, 0.1])
def test_lion_matches_the_algorithm_written_out_for_50_random_steps(wd):
    opt = Lion(lr=3e-3, betas=(0.8, 0.95), weight_decay=wd)
    w = RNG.normal(size=6)
    state = opt.init(w)
    hw, hm = list(w), [0.0] * 6
    for _ in range(50):
        g = RNG.normal(size=6)
        w, state = opt.step(w, g, state)
        hw, hm = lion_by_hand(hw, hm, g, 3e-3, 0.8, 0.95, wd)
        np.testing.assert_allclose(w, hw, rtol=0, atol=1e-15)
        np.testing.assert_allclose(state.exp_avg, hm, rtol=0, atol=1e-15)


def test_lion_moves_every_coordinate_by_exactly_lr_without_decay():
    opt = Lion(lr=1e-3)
    w = RNG.normal(size=(4, 7)) * np.array([1e-3, 1.0, 1e3, 1e6])[:, None]
    state = opt.init(w)
    for _ in range(5):
        g = RNG.normal(size=w.shape) * 10.0 ** RNG.integers(-6, 6, size=w.shape)
        new, state = opt.step(w, g, state)
        # exact up to rounding of w - lr (a few ulps of w: 2e-10 where |w| is 1e6), whatever |g| is
        np.testing.assert_array_less(np.abs(np.abs(new - w) - 1e-3), 2 * np.spacing(np.abs(w)) + 1e-19)
        w = new


def test_lion_keeps_one_buffer_and_zero_direction_means_no_move():
    opt = Lion(lr=0.1)
    state = opt.init(np.zeros(3))
    assert isinstance(state, LionState) and state._fields == ("step", "exp_avg")
    w, state = opt.step(np.ones(3), np.zeros(3), state)
    np.testing.assert_array_equal(w, np.ones(3))       # c = 0: sign 0, no decay
    assert state_nbytes(state) == 3 * 8


def test_lion_batch_with_per_run_lr_is_the_runs_one_by_one():
    lrs = np.array([1e-3, 1e-2, 0.1])
    batch = Lion(lr=lrs, betas=(0.9, np.array([0.9, 0.99, 0.999])), weight_decay=0.1)
    W = RNG.normal(size=(3, 2))
    G = [RNG.normal(size=(3, 2)) for _ in range(5)]
    state = batch.init(W)
    Wb = W
    for g in G:
        Wb, state = batch.step(Wb, g, state)
    for r in range(3):
        one = Lion(lr=lrs[r], betas=(0.9, [0.9, 0.99, 0.999][r]), weight_decay=0.1)
        w, s = W[r], one.init(W[r])
        for g in G:
            w, s = one.step(w, g[r], s)
        np.testing.assert_array_equal(w, Wb[r])


def test_lion_keeps_float32_and_does_not_mutate_inputs():
    opt = Lion(lr=0.01, weight_decay=0.1)
    w = np.ones(3, dtype=np.float32)
    g = np.array([1.0, -1.0, 0.5], dtype=np.float32)
    state = opt.init(w)
    before = (w.copy(), g.copy(), state.exp_avg.copy())
    new, s = opt.step(w, g, state)
    assert new.dtype == np.float32 and s.exp_avg.dtype == np.float32
    for a, b in zip((w, g, state.exp_avg), before):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("kwargs, match", [
    ({"lr": -1e-4}, r"lr must be a finite number > 0; got -0.0001"),
    ({"betas": (0.9,)}, r"betas must be a pair"),
    ({"betas": (1.0, 0.99)}, r"betas\[0\] \(beta1\) must lie in \[0, 1\); got 1.0"),
    ({"weight_decay": -0.1}, r"weight_decay must be a finite number >= 0"),
])
def test_lion_refuses_bad_hyperparameters_with_the_value(kwargs, match):
    with pytest.raises(ValueError, match=match):
        Lion(**kwargs)


# ---------------------------------------------------------------- Adafactor

def test_adafactor_keeps_r_plus_c_values_for_a_matrix_and_d_for_a_vector():
    opt = Adafactor()
    s = opt.init(np.zeros((300, 200)))
    assert s.row_var.shape == (300, 1) and s.col_var.shape == (1, 200) and s.variance is None
    assert state_nbytes(s) == (300 + 200) * 8
    v = opt.init(np.zeros(7, dtype=np.float32))
    assert v.variance.shape == (7,) and v.row_var is None and state_nbytes(v) == 7 * 4
    assert state_nbytes(Adam().init(np.zeros((300, 200)))) == 2 * 300 * 200 * 8


def test_adafactor_first_step_by_hand_on_a_matrix():
    # t = 1: beta2_t = 0, so row_var and col_var are this step's means of g^2; rho = min(lr, 1) = lr
    opt = Adafactor(lr=0.01)
    w = np.array([[1.0, 2.0], [3.0, 4.0]])
    g = np.array([[1.0, 2.0], [2.0, 4.0]])
    new, s = opt.step(w, g, opt.init(w))
    row, col = np.array([[2.5], [10.0]]), np.array([[2.5, 10.0]])
    np.testing.assert_allclose(s.row_var, row)
    np.testing.assert_allclose(s.col_var, col)
    v_est = row @ col / 6.25                      # the rank-one estimate: here exactly g^2
    np.testing.assert_allclose(v_est, g * g)
    np.testing.assert_allclose(opt.variance_estimate(s), g * g)
    u = g / np.sqrt(v_est)                        # all ones: RMS(u) = 1 = d, no clipping
    alpha = np.sqrt(np.mean(w * w)) * 0.01
    np.testing.assert_allclose(new, w - alpha * u, rtol=1e-15)


def test_adafactor_clips_the_update_rms_to_d():
    opt = Adafactor(lr=0.5, d=1.0)
    w = np.ones(4)
    s = opt.init(w)
    w1, s = opt.step(w, np.ones(4), s)
    w2, s = opt.step(w1, np.array([1e3, 1e3, 1e3, 1e3]), s)   # a gradient 1000x larger than v remembers
    rho = min(0.5, 1 / np.sqrt(2))
    step = np.sqrt(np.mean(w1 * w1)) * rho                     # RMS(u) clipped back to 1
    np.testing.assert_allclose(w1 - w2, step, rtol=1e-12)


@pytest.mark.parametrize("shape", [(3,), (2, 3)])
def test_adafactor_keeps_float32_and_does_not_mutate(shape):
    opt = Adafactor(weight_decay=0.1)
    w = RNG.normal(size=shape).astype(np.float32)
    g = RNG.normal(size=shape).astype(np.float32)
    s = opt.init(w)
    w_before, g_before = w.copy(), g.copy()
    new, s2 = opt.step(w, g, s)
    assert new.dtype == np.float32 and all(a.dtype == np.float32 for a in s2 if isinstance(a, np.ndarray))
    np.testing.assert_array_equal(w, w_before)
    np.testing.assert_array_equal(g, g_before)
    assert s.step == 0 and not any(np.any(a) for a in s if isinstance(a, np.ndarray))


@pytest.mark.parametrize("shape", [(), (2, 3, 4)])
def test_adafactor_takes_one_vector_or_one_matrix(shape):
    with pytest.raises(ValueError, match=r"one vector \(d,\) or one matrix \(r, c\).*not batched over runs"):
        Adafactor().init(np.zeros(shape))


def test_adafactor_refuses_a_state_of_another_shape():
    opt = Adafactor()
    with pytest.raises(ValueError, match="state does not fit params"):
        opt.step(np.zeros(4), np.zeros(4), opt.init(np.zeros((2, 2))))


@pytest.mark.parametrize("kwargs, match", [
    ({"lr": 0.0}, r"lr must be a finite number > 0; got 0.0"),
    ({"beta2_decay": 0.5}, r"beta2_decay must be <= 0; got 0.5"),
    ({"eps": 1e-3}, r"eps must be a pair \(eps1, eps2\)"),
    ({"eps": (-1.0, 1e-3)}, r"eps\[0\] \(eps1\) must be a finite number >= 0; got -1.0"),
    ({"d": 0.5}, r"d \(the clipping threshold\) must be >= 1; got 0.5"),
    ({"weight_decay": -1}, r"weight_decay must be a finite number >= 0"),
    ({"maximize": "yes"}, r"maximize must be True or False"),
])
def test_adafactor_refuses_bad_hyperparameters(kwargs, match):
    with pytest.raises(ValueError, match=match):
        Adafactor(**kwargs)


# ---------------------------------------------------------------- Muon and Newton-Schulz

def badly_conditioned(r, c, spread=1e3):
    U, _ = np.linalg.qr(RNG.normal(size=(r, r)))
    V, _ = np.linalg.qr(RNG.normal(size=(c, c)))
    k = min(r, c)
    S = np.zeros((r, c))
    S[:k, :k] = np.diag(np.geomspace(1.0, 1.0 / spread, k))
    return U @ S @ V.T


@pytest.mark.parametrize("shape", [(6, 4), (4, 6), (5, 5)])
def test_newton_schulz_with_the_cubic_coefficients_converges_to_the_polar_factor(shape):
    G = badly_conditioned(*shape, spread=100)
    X = newton_schulz(G, ns_coefficients=(1.5, -0.5, 0.0), ns_steps=60)
    np.testing.assert_allclose(X, polar_factor(G), rtol=0, atol=1e-12)


def test_torch_coefficients_leave_singular_values_near_one_not_at_one():
    G = badly_conditioned(8, 5, spread=30)
    s = np.linalg.svd(newton_schulz(G), compute_uv=False)
    assert np.all((s > 0.6) & (s < 1.25)), s
    assert np.max(np.abs(s - 1)) > 1e-3          # the quintic trades exactness for speed
    assert np.allclose(np.linalg.svd(polar_factor(G), compute_uv=False), 1.0)


def test_muon_first_step_by_hand():
    opt = Muon(lr=0.1, weight_decay=0.2, momentum=0.9, nesterov=False)
    w = RNG.normal(size=(6, 3))
    g = RNG.normal(size=(6, 3))
    new, s = opt.step(w, g, opt.init(w))
    np.testing.assert_allclose(s.momentum_buffer, 0.1 * g, rtol=1e-15)
    expected = w * (1 - 0.1 * 0.2) - 0.1 * np.sqrt(6 / 3) * newton_schulz(0.1 * g)
    np.testing.assert_allclose(new, expected, rtol=0, atol=1e-15)
    assert isinstance(s, MuonState) and s.step == 1


def test_muon_adjusted_lr_for_both_rules():
    assert Muon(lr=0.02).adjusted_lr(0.02, (8, 2)) == pytest.approx(0.04)
    assert Muon(lr=0.02).adjusted_lr(0.02, (2, 8)) == pytest.approx(0.02)
    assert Muon(adjust_lr_fn="match_rms_adamw").adjusted_lr(0.02, (2, 16)) == pytest.approx(0.02 * 0.8)


@pytest.mark.parametrize("shape", [(4,), (2, 3, 4)])
def test_muon_takes_one_matrix(shape):
    with pytest.raises(ValueError, match=r"Muon takes one matrix \(r, c\); got params of shape"):
        Muon().init(np.zeros(shape))


def test_muon_keeps_float32_and_does_not_mutate():
    opt = Muon()
    w = RNG.normal(size=(3, 4)).astype(np.float32)
    g = RNG.normal(size=(3, 4)).astype(np.float32)
    s = opt.init(w)
    w0 = w.copy()
    new, s2 = opt.step(w, g, s)
    assert new.dtype == np.float32 and s2.momentum_buffer.dtype == np.float32
    np.testing.assert_array_equal(w, w0)
    assert not np.any(s.momentum_buffer)


@pytest.mark.parametrize("kwargs, match", [
    ({"momentum": 1.0}, r"momentum must lie in \[0, 1\); got 1.0"),
    ({"ns_coefficients": (1.0, 2.0)}, r"ns_coefficients must be three numbers"),
    ({"ns_steps": 100}, r"ns_steps must be < 100"),
    ({"ns_steps": 2.5}, r"ns_steps must be an integer >= 0; got 2.5"),
    ({"adjust_lr_fn": "spectral"}, r"adjust_lr_fn must be one of \[None, 'original', 'match_rms_adamw'\]"),
    ({"eps": 0}, r"eps must be a finite number > 0"),
    ({"nesterov": 1}, r"nesterov must be True or False"),
])
def test_muon_refuses_bad_hyperparameters(kwargs, match):
    with pytest.raises(ValueError, match=match):
        Muon(**kwargs)


def test_default_coefficients_are_torchs():
    assert NS_COEFFICIENTS == (3.4445, -4.7750, 2.0315)


def test_state_nbytes_refuses_something_that_is_not_a_state():
    with pytest.raises(ValueError, match="state must be an optimizer state"):
        state_nbytes(np.zeros(3))
    assert state_nbytes(AdafactorState(step=3, row_var=None, col_var=None, variance=np.zeros(2))) == 16
