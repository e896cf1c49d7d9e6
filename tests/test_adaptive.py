"""Unit tests of lessons_lib.adaptive: hand-computed values, state, batches, dtype, the runner."""
from __future__ import annotations

import math

import numpy as np
import pytest

from lessons_lib.adaptive import Adagrad, AdagradState, RMSprop, RMSpropState
from lessons_lib.optimizers import Adam
from lessons_lib.precision import DynamicLossScaler
from lessons_lib.runner import run
from lessons_lib.schedules import cosine
from lessons_lib.surfaces import START

TINY = 1e-300          # an eps that vanishes next to any gradient used here, so values come out exact


def steps(opt, grads, w=(0.0,)):
    """Apply fixed gradients one after another; return positions and states."""
    w = np.asarray(w, dtype=float)
    state = opt.init(w)
    ws, states = [w], [state]
    for g in grads:
        w, state = opt.step(w, np.asarray(g, dtype=float), state)
        ws.append(w)
        states.append(state)
    return ws, states


# ---------------------------------------------------------------- Adagrad by hand

def test_adagrad_sum_after_k_equal_gradients_is_k_g_squared():
    _, states = steps(Adagrad(lr=0.6), [[3.0]] * 4)
    assert [float(s.sum[0]) for s in states] == [0.0, 9.0, 18.0, 27.0, 36.0]
    assert [s.step for s in states] == [0, 1, 2, 3, 4]


def test_adagrad_effective_lr_after_k_equal_gradients():
    """lr / (sqrt(k) |g| + eps): after 4 gradients of 3 the root of the sum is 6, so lr 0.6 gives
    0.6 / (6 + 1e-10) = 0.1 / (1 + 1e-10 / 6)."""
    _, states = steps(Adagrad(lr=0.6), [[3.0]] * 4)
    assert Adagrad(lr=0.6).effective_lr(states[4])[0] == pytest.approx(0.1 / (1 + 1e-10 / 6), rel=1e-15)
    assert 0.1 - Adagrad(lr=0.6).effective_lr(states[4])[0] == pytest.approx(0.1 * 1e-10 / 6, rel=1e-5)


def test_adagrad_step_decays_like_one_over_sqrt_t_for_a_gradient_of_constant_size():
    ws, _ = steps(Adagrad(lr=0.1, eps=TINY), [[2.0]] * 100)
    moves = -np.diff(np.array(ws)[:, 0])
    assert moves[0] == 0.1                                       # the first step moves exactly lr
    np.testing.assert_allclose(moves * np.sqrt(np.arange(1, 101)), 0.1, rtol=1e-12)
    assert moves[99] == pytest.approx(0.01, rel=1e-12)          # step 100: lr / 10


def test_adagrad_lr_decay_divides_step_t_by_one_plus_t_minus_one_times_decay():
    """lr 1, lr_decay 1, g 1: step t moves (1/t) / sqrt(t): 1, then 1/8 at t = 4, 1/27 at t = 9."""
    opt = Adagrad(lr=1.0, lr_decay=1.0, eps=TINY)
    _, states = steps(opt, [[1.0]] * 9)
    assert opt.effective_lr(states[1])[0] == 1.0
    assert opt.effective_lr(states[4])[0] == 0.125
    assert opt.effective_lr(states[9])[0] == pytest.approx(1 / 27, rel=1e-15)


def test_adagrad_initial_accumulator_value_starts_the_sum():
    opt = Adagrad(lr=0.5, initial_accumulator_value=16.0, eps=TINY)
    start = opt.init(np.zeros(2))
    assert isinstance(start, AdagradState) and start.step == 0
    np.testing.assert_array_equal(start.sum, [16.0, 16.0])
    w, state = opt.step(np.zeros(1), np.array([3.0]), opt.init(np.zeros(1)))
    assert state.sum[0] == 25.0 and w[0] == -0.5 * 3 / 5


def test_adagrad_weight_decay_is_added_to_the_gradient():
    opt = Adagrad(lr=0.25, weight_decay=0.5, eps=TINY)
    w, state = opt.step(np.array([2.0]), np.array([0.0]), opt.init(np.zeros(1)))
    assert state.sum[0] == 1.0 and w[0] == 2.0 - 0.25           # g = 0 + 0.5 * 2 = 1


def test_adagrad_rare_coordinate_keeps_a_larger_step():
    """A coordinate with a gradient only every 4th step has a sum 4 times smaller, so after 16
    steps its effective lr is twice the dense coordinate's: sqrt(16) / sqrt(4)."""
    grads = [[1.0, 1.0 if k % 4 == 0 else 0.0] for k in range(16)]
    opt = Adagrad(lr=0.1, eps=TINY)
    _, states = steps(opt, grads, w=(0.0, 0.0))
    np.testing.assert_array_equal(states[16].sum, [16.0, 4.0])
    np.testing.assert_array_equal(opt.effective_lr(states[16]), [0.025, 0.05])


def test_adagrad_effective_lr_is_what_the_step_multiplied_the_gradient_by():
    opt = Adagrad(lr=0.3, lr_decay=0.05, weight_decay=0.0, initial_accumulator_value=0.2)
    trace = run(opt, 50, record_states=True)
    for k in (0, 9, 49):
        moved = trace.params[k] - trace.params[k + 1]
        np.testing.assert_allclose(moved, opt.effective_lr(trace.states[k]) * trace.grads[k], rtol=1e-14)


# ---------------------------------------------------------------- RMSprop by hand

def test_rmsprop_square_avg_of_a_constant_gradient_is_one_minus_alpha_to_the_t_times_g_squared():
    opt = RMSprop(lr=0.01, alpha=0.9)
    _, states = steps(opt, [[2.0]] * 200)
    for t in (1, 2, 10, 200):
        assert states[t].square_avg[0] == pytest.approx((1 - 0.9**t) * 4.0, rel=1e-14)
    # the effective lr settles at lr / (|g| + eps) instead of dying like Adagrad's
    assert opt.effective_lr(states[200])[0] == pytest.approx(0.01 / (2 + 1e-8), rel=1e-9)


def test_rmsprop_with_alpha_zero_is_sign_descent():
    """alpha 0: the average is the last g^2, so the step is lr * g / |g| (eps negligible)."""
    ws, states = steps(RMSprop(lr=0.5, alpha=0.0, eps=TINY), [[3.0], [-0.01], [200.0]])
    assert [float(w[0]) for w in ws] == [0.0, -0.5, 0.0, -0.5]
    assert states[3].square_avg[0] == 40000.0


def test_centered_rmsprop_of_a_constant_gradient_has_variance_alpha_t_times_one_minus_alpha_t_g_squared():
    """square_avg = W g^2 and grad_avg = W g with W = 1 - alpha^t, so square_avg - grad_avg^2 =
    alpha^t (1 - alpha^t) g^2: with alpha 0.5 and g 2, 1 after one step and 0.75 after two."""
    opt = RMSprop(lr=0.25, alpha=0.5, eps=TINY, centered=True)
    ws, states = steps(opt, [[2.0]] * 30)
    variance = [float(s.square_avg[0] - s.grad_avg[0] ** 2) for s in states]
    assert variance[1] == 1.0 and variance[2] == 0.75
    assert ws[1][0] == -0.5                                      # 0.25 * 2 / sqrt(1)
    for t in (5, 20):
        assert variance[t] == pytest.approx(0.5**t * (1 - 0.5**t) * 4, rel=1e-9)


def test_centered_rmsprop_on_a_constant_gradient_ends_up_dividing_by_eps():
    """The variance alpha^t (1 - alpha^t) g^2 of a constant gradient reaches 0 in floating point
    (alpha 0.5, g 2: at step 54), and from then on every step is lr * g / eps = 0.01 * 2 / 1e-8:
    two million (torch does the same; its fused multiply-adds can even round the variance below
    0, and the root of that is nan)."""
    opt = RMSprop(lr=0.01, alpha=0.5, centered=True)
    ws, states = steps(opt, [[2.0]] * 60)
    variance = np.array([s.square_avg[0] - s.grad_avg[0] ** 2 for s in states])
    assert np.all(variance[1:54] > 0) and np.all(variance[54:] == 0)
    assert ws[59][0] - ws[60][0] == pytest.approx(0.01 * 2 / 1e-8, rel=1e-12)


def test_centered_rmsprop_denominator_is_a_variance_and_the_plain_one_is_not():
    """Gradients 2, 0, 2, 0, ... have mean 1 and variance 1: the plain average of g^2 tends to
    E[g^2] = 2, the centered one to E[g^2] - E[g]^2 = 1 (within 0.02: with alpha 0.99 the
    averages swing by about 1% between a 2 and a 0; 0.99^4000 leaves no start-up bias)."""
    grads = [[2.0 if k % 2 == 0 else 0.0] for k in range(4000)]
    _, plain = steps(RMSprop(alpha=0.99), grads)
    _, centered = steps(RMSprop(alpha=0.99, centered=True), grads)
    assert plain[-1].square_avg[0] == pytest.approx(2.0, abs=0.02)
    assert centered[-1].square_avg[0] - centered[-1].grad_avg[0] ** 2 == pytest.approx(1.0, abs=0.02)


def test_rmsprop_momentum_buffer_starts_at_zero_and_collects_normalised_gradients():
    """Unlike SGD's buffer (the first gradient itself), RMSprop's starts at 0 and adds g / denom:
    with alpha 0 each g / denom is 1, so the buffer is 1, 1 + mu, 1 + mu + mu^2."""
    opt = RMSprop(lr=0.5, alpha=0.0, eps=TINY, momentum=0.5)
    ws, states = steps(opt, [[4.0]] * 3)
    np.testing.assert_array_equal(states[0].momentum_buffer, [0.0])
    assert [float(s.momentum_buffer[0]) for s in states[1:]] == [1.0, 1.5, 1.75]
    assert [float(w[0]) for w in ws] == [0.0, -0.5, -1.25, -2.125]


def test_rmsprop_eps_is_added_outside_the_root():
    """sqrt(v) + eps, not sqrt(v + eps): with v = 1e-8 and eps = 1e-8 the denominator is
    1.0001e-4, where eps inside the root would give 1.414e-4."""
    opt = RMSprop(lr=1.0, alpha=0.0, eps=1e-8)
    w, state = opt.step(np.zeros(1), np.array([1e-4]), opt.init(np.zeros(1)))
    assert -w[0] == pytest.approx(1e-4 / (1e-4 + 1e-8), rel=1e-15)
    assert -w[0] != pytest.approx(1e-4 / math.sqrt(2e-8), rel=1e-3)


def test_rmsprop_effective_lr_is_what_the_step_multiplied_the_gradient_by():
    opt = RMSprop(lr=0.01, alpha=0.9, centered=True)
    trace = run(opt, 50, record_states=True)
    for k in (0, 9, 49):
        moved = trace.params[k] - trace.params[k + 1]
        np.testing.assert_allclose(moved, opt.effective_lr(trace.states[k]) * trace.grads[k], rtol=1e-13)


def test_adam_with_beta1_zero_and_no_bias_correction_is_rmsprop_to_rounding():
    """The same denominator; not bit for bit: Adam's m = m + (g - m) and lr * (m / denom) round
    differently from RMSprop's (lr * g) / denom (in the last bit, a few steps in 300)."""
    for alpha, lr, eps in [(0.99, 0.01, 1e-8), (0.9, 0.003, 1e-6)]:
        rms = run(RMSprop(lr=lr, alpha=alpha, eps=eps), 300, record_states=True)
        adam = run(Adam(lr=lr, betas=(0.0, alpha), eps=eps, bias_correction=False), 300, record_states=True)
        np.testing.assert_allclose(adam.params, rms.params, rtol=0, atol=1e-15)
        np.testing.assert_allclose(adam.states[-1].v, rms.states[-1].square_avg, rtol=1e-14)


# ---------------------------------------------------------------- state

def test_rmsprop_keeps_only_the_buffers_it_uses():
    state = RMSprop().init(START)
    assert isinstance(state, RMSpropState) and state._fields == ("step", "square_avg", "grad_avg", "momentum_buffer")
    assert state.step == 0 and state.grad_avg is None and state.momentum_buffer is None
    np.testing.assert_array_equal(state.square_avg, [0.0, 0.0])
    state = RMSprop(momentum=0.9, centered=True).init(START)
    np.testing.assert_array_equal(state.grad_avg, [0.0, 0.0])
    np.testing.assert_array_equal(state.momentum_buffer, [0.0, 0.0])
    _, after = RMSprop().step(START, np.ones(2), RMSprop().init(START))
    assert after.grad_avg is None and after.momentum_buffer is None and after.step == 1


def test_defaults_are_torchs():
    assert (Adagrad().lr, Adagrad().lr_decay, Adagrad().weight_decay, Adagrad().initial_accumulator_value,
            Adagrad().eps) == (1e-2, 0.0, 0.0, 0.0, 1e-10)
    opt = RMSprop()
    assert (opt.lr, opt.alpha, opt.eps, opt.weight_decay, opt.momentum, opt.centered) == \
        (1e-2, 0.99, 1e-8, 0.0, 0.0, False)


def test_repr_lists_hyperparameters():
    text = repr(RMSprop(lr=0.01, momentum=0.9, centered=True))
    assert text.startswith("RMSprop(") and "momentum=0.9" in text and "centered=True" in text
    assert "lr_decay=0.0" in repr(Adagrad()) and "runs" not in repr(Adagrad())


@pytest.mark.parametrize("opt", [Adagrad(0.1, lr_decay=0.1, weight_decay=0.1),
                                 RMSprop(0.01, momentum=0.9, centered=True)], ids=lambda o: type(o).__name__)
def test_step_does_not_mutate_inputs(opt):
    w, g = START.copy(), np.array([100.0, 1.0])
    w1, s1 = opt.step(w, g, opt.init(w))
    copies = [np.copy(x) if isinstance(x, np.ndarray) else x for x in s1]
    opt.step(w1, g, s1)
    np.testing.assert_array_equal(w, START)
    np.testing.assert_array_equal(g, [100.0, 1.0])
    for before, after in zip(copies, s1):
        np.testing.assert_array_equal(before, after)


@pytest.mark.parametrize("make", [lambda lr: Adagrad(lr, lr_decay=0.1), lambda lr: RMSprop(lr, momentum=0.5)],
                         ids=["adagrad", "rmsprop"])
def test_lr_override_equals_constructor_lr(make):
    opt, other = make(0.05), make(0.003)
    a, sa = opt.step(START, START * 3, opt.init(START), lr=0.003)
    b, sb = other.step(START, START * 3, other.init(START))
    a, _ = opt.step(a, a * 3, sa, lr=0.003)                     # step 2: Adagrad's lr_decay applies to the override
    b, _ = other.step(b, b * 3, sb)
    np.testing.assert_array_equal(a, b)


# ---------------------------------------------------------------- batches, dtype, the runner

BATCH_R = 6
_rng = np.random.default_rng(3)
BATCH_TABLES = {
    "adagrad": (Adagrad, {}, dict(
        lr=10 ** _rng.uniform(-3, 0, BATCH_R), lr_decay=np.array([0, 0.1, 0.01, 0, 1e-3, 0.5]),
        weight_decay=np.array([0, 0.1, 0, 0.01, 0, 0.3]), initial_accumulator_value=_rng.uniform(0, 1, BATCH_R),
        eps=10 ** _rng.uniform(-10, -6, BATCH_R))),
    "rmsprop": (RMSprop, {}, dict(
        lr=10 ** _rng.uniform(-4, -1, BATCH_R), alpha=_rng.uniform(0.5, 0.999, BATCH_R),
        eps=10 ** _rng.uniform(-10, -6, BATCH_R), weight_decay=np.array([0, 0.1, 0, 0.01, 0, 0.3]),
        momentum=np.array([0, 0.9, 0.5, 0, 0.3, 0]))),
}
BATCH_TABLES["rmsprop-centered"] = (RMSprop, {"centered": True}, BATCH_TABLES["rmsprop"][2])


@pytest.mark.parametrize("kind", BATCH_TABLES)
@pytest.mark.parametrize("loop", ["plain", "loss-scaler", "schedule-and-clipping"])
def test_per_run_hyperparameters_equal_runs_one_by_one_bitwise(kind, loop):
    """A sweep mixing momentum 0 and > 0 (the runs without momentum take torch's plain step),
    lr_decay, initial values, eps and weight decay; with a loss scaler each run skips its own
    steps (so step counts differ per run, and with them Adagrad's lr_decay)."""
    cls, flags, table = BATCH_TABLES[kind]

    def loop_args(lr):
        if loop == "loss-scaler":
            return dict(scaler=DynamicLossScaler(init_scale=2.0**20, growth_interval=2))
        if loop == "schedule-and-clipping":
            return dict(schedule=cosine(lr, 60), max_norm=30.0)
        return {}

    batch = run(cls(**table, **flags), 60, record_states=True, **loop_args(table["lr"]))
    if loop == "loss-scaler":
        assert batch.skipped.any() and np.ndim(batch.states[-1].step) == 1
    for r in range(BATCH_R):
        settings = {name: float(values[r]) for name, values in table.items()}
        single = run(cls(**settings, **flags), 60, record_states=True, **loop_args(settings["lr"]))
        np.testing.assert_array_equal(batch.params[:, r], single.params)
        for name, a, b in zip(single.states[-1]._fields, batch.states[-1], single.states[-1]):
            if name == "step":
                assert (np.ravel(a)[r] if np.ndim(a) else a) == b
            elif b is not None:
                np.testing.assert_array_equal(a[r], b, err_msg=name)


def test_batch_of_starts_equals_single_runs():
    starts = np.array([[1.0, 1.0], [-0.5, 2.0], [0.2, -0.3]])
    for opt in (Adagrad(0.3, lr_decay=0.01), RMSprop(0.01, momentum=0.5, centered=True)):
        batch = run(opt, 50, start=starts)
        for r in range(3):
            np.testing.assert_array_equal(batch.params[:, r], run(opt, 50, start=starts[r]).params)


# float32 params and state: tests/test_optimizers.py::test_float32_params_and_state_stay_float32


def test_float32_stays_float32_with_per_run_float64_hyperparameters():
    for opt in (Adagrad(lr=np.array([0.1, 0.2]), initial_accumulator_value=np.array([0.0, 0.5])),
                RMSprop(lr=np.array([0.1, 0.2]), momentum=np.array([0.0, 0.9]), centered=True)):
        w = np.ones((2, 3), dtype=np.float32)
        state = opt.init(w)
        w, state = opt.step(w, np.full((2, 3), 0.5, dtype=np.float32), state)
        assert w.dtype == np.float32
        assert all(b.dtype == np.float32 for b in state if isinstance(b, np.ndarray))


@pytest.mark.parametrize("opt", [Adagrad(lr=0.5), RMSprop(lr=0.01, momentum=0.5), RMSprop(lr=0.003, centered=True)],
                         ids=["adagrad", "rmsprop-momentum", "rmsprop-centered"])
def test_run_records_a_trace_and_reaches_the_minimum(opt):
    trace = run(opt, 300, record_states=True)
    assert trace.params.shape == (301, 2) and len(trace.states) == 300
    assert isinstance(trace.states[-1], AdagradState if isinstance(opt, Adagrad) else RMSpropState)
    assert trace.states[-1].step == 300 and not trace.diverged
    assert trace.final_loss < 1e-3 * trace.losses[0]


def test_a_sweep_is_one_batched_run():
    lrs = np.geomspace(1e-3, 1.0, 32)
    trace = run(Adagrad(lr=lrs), 100)
    assert trace.params.shape == (101, 32, 2) and trace.final_loss.shape == (32,)
