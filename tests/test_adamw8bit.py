"""Adam8bit / AdamW8bit: torch's step on the dequantized state, the real bytes, how closely they
follow full-precision AdamW, and why v is not stored with a linear code.

- torch (float64, foreach=False): one step from a given 8-bit state (random codes and scales),
  read back by a decoder written here, equals torch.optim.AdamW's (Adam's for Adam8bit) step from
  those moments: parameters to 1e-12 relative to max(1, |w|). Torch's new exp_avg and exp_avg_sq,
  quantized by an absmax quantizer written here with Python floats, give our codes exactly, except
  where the unrounded code lies within 1e-6 of a rounding boundary (torch and numpy differ in the
  last bit there), where they may differ by 1; scales agree to 1e-12 relative. 30 steps in a row,
  each from our own previous state, for (d,) and (runs, d), block sizes 1, 7, 64 and one block.
- bytes: codes + scales measured from the state's arrays are 2 bytes per parameter + 16 per block
  (two float64 scales) per run, for a huge and for small block sizes.
- tracking, on a grid fixed in advance (every run counted): both surfaces have d = 2, so both
  coordinates share one block, the hard case. The coordinate with the small gradient (b on COURSE,
  curvature 1 against 100; w2 on ticket triage, the rare contrast feature) has its m resolved in
  steps of 1/127 of the other's: it reads back rounded to 0 or up to twice itself for stretches.
  Measured on these grids: that coordinate's path departs from fp AdamW's by up to 0.32 (COURSE)
  and 0.55 (logistic) of the start's distance to the optimum, the other by 1.5e-4 and 1e-2, and
  the steps needed to cut the loss gap 1000-fold are 0.48x to 1.20x (COURSE) and 0.45x to 1.27x
  (logistic) of fp AdamW's. Asserted: 0.4 / 1e-3, 0.7 / 0.02 and [1/3, 1.5]. block_size = 1 (every
  value its own scale) is fp AdamW bit for bit, so the departure is the shared block's rounding.
- linear v fails: a coordinate with 1% of its block's largest gradient keeps m but has v rounded to
  0; its next step is m/eps, 373 where fp AdamW steps 6.7e-4 (lr 1e-3). On minibatch ticket triage
  (rare feature: its gradient is often exactly 0) linear v steps up to 4e6 * lr; the log code at
  most 1.26 * lr (fp AdamW: 1.1 * lr); asserted < 2 * lr against > 1e4 * lr.
Torch tests skip when torch is missing; with LESSONS_REQUIRE_TORCH=1 (CI) a skip fails.
"""
from __future__ import annotations

import math

import numpy as np
import pytest

from lessons_lib.datasets import ticket_triage
from lessons_lib.lean import state_nbytes
from lessons_lib.logistic import LogisticSurface, MinibatchLogistic
from lessons_lib.optimizers import AdamState, AdamW
from lessons_lib.precision import DynamicLossScaler
from lessons_lib.quantized import Adam8bit, Adam8bitState, AdamW8bit
from lessons_lib.runner import run
from lessons_lib.surfaces import COURSE

TOL = 1e-12
TIE = 1e-6


# ---------------------------------------------------------------- a decoder and quantizer written here

def hand_dequantize(codes, scales, block_size, code):
    """Each value from its code and its block's scale, one Python float at a time."""
    rows, srows = np.atleast_2d(codes), np.atleast_2d(scales)
    out = np.zeros(rows.shape)
    for r in range(rows.shape[0]):
        for i in range(rows.shape[1]):
            s, q = float(srows[r, i // block_size]), int(rows[r, i])
            if code == "linear":
                out[r, i] = s * q / 127
            elif code == "linear_unsigned":
                out[r, i] = s * q / 255
            else:
                out[r, i] = 0.0 if q == 0 else s * 2.0 ** ((q - 255) / 8)
    return out.reshape(np.shape(codes))


def hand_quantize(x, block_size, code):
    """(codes, scales, unrounded): absmax per block of block_size along each row, then the code's rule."""
    rows = np.atleast_2d(np.asarray(x, dtype=np.float64))
    n = rows.shape[1]
    count = -(-n // block_size)
    codes, raw, scales = np.zeros(rows.shape, dtype=int), np.zeros(rows.shape), np.zeros((rows.shape[0], count))
    for r in range(rows.shape[0]):
        for b in range(count):
            block = [float(v) for v in rows[r, b * block_size:(b + 1) * block_size]]
            s = max(abs(v) for v in block)
            scales[r, b] = s
            for j, v in enumerate(block):
                i = b * block_size + j
                if s == 0 or v == 0:
                    continue
                if code == "linear":
                    raw[r, i] = 127 * v / s
                    codes[r, i] = round(raw[r, i])
                elif code == "linear_unsigned":
                    raw[r, i] = 255 * v / s
                    codes[r, i] = round(raw[r, i])
                else:
                    raw[r, i] = 8 * (math.log2(s) - math.log2(v))
                    codes[r, i] = min(255, max(1, 255 - round(raw[r, i])))
    shape = np.shape(x)
    return codes.reshape(shape), scales.reshape(shape[:-1] + (count,)), raw.reshape(shape)


def assert_codes_match(ours, x, block_size, code):
    """Our codes against hand_quantize(x): equal, or off by 1 where the unrounded code is a near tie."""
    codes, scales, raw = hand_quantize(x, block_size, code)
    off = np.abs(ours.astype(int) - codes)
    near_tie = np.abs(np.abs(raw - np.floor(raw)) - 0.5) < TIE
    assert np.all(off <= 1) and np.all(near_tie[off == 1]), (code, np.argwhere(off > 0)[:5])
    return scales


def scaled_diff(a, b):
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    assert a.shape == b.shape and np.all(np.isfinite(a)) and np.all(np.isfinite(b))
    return float(np.max(np.abs(a - b) / np.maximum(1.0, np.abs(b))))


def random_state(rng, shape, block_size, step):
    """A given 8-bit state: random codes (some coordinates with no history: m = v = 0), random scales."""
    count = -(-shape[-1] // block_size)
    m_codes = rng.integers(-127, 128, size=shape)
    v_codes = rng.integers(1, 256, size=shape)
    empty = rng.random(shape) < 0.1
    m_codes[empty], v_codes[empty] = 0, 0
    return Adam8bitState(step=step, m_codes=m_codes.astype(np.int8),
                         m_scales=10.0 ** rng.uniform(-3, 0, size=shape[:-1] + (count,)),
                         v_codes=v_codes.astype(np.uint8),
                         v_scales=10.0 ** rng.uniform(-5, 0, size=shape[:-1] + (count,)))


def random_gradient(rng, shape):
    """Gradients of very different sizes, with exact zeros (a coordinate that saw no data this step)."""
    g = rng.normal(size=shape) * 10.0 ** rng.uniform(-4, 1, size=shape)
    g[rng.random(shape) < 0.15] = 0.0
    return g


# ---------------------------------------------------------------- torch

@pytest.mark.conformance
@pytest.mark.parametrize("v_code", ["log", "linear_unsigned"])
@pytest.mark.parametrize("block_size", [1, 7, 64, 10**6])
@pytest.mark.parametrize("shape", [(50,), (3, 40)], ids=["d", "runs-d"])
@pytest.mark.parametrize("kind", ["AdamW8bit", "Adam8bit"])
def test_each_step_from_a_given_8bit_state_is_torch_step_on_the_dequantized_state_then_quantized(
        torch, kind, shape, block_size, v_code):
    rng = np.random.default_rng([shape[-1], block_size, len(v_code), len(kind)])
    settings = dict(lr=float(10 ** rng.uniform(-4, -1)), betas=(float(rng.uniform(0.5, 0.95)),
                    float(rng.uniform(0.9, 0.9999))), eps=float(10 ** rng.uniform(-10, -6)),
                    weight_decay=float(rng.uniform(0.0, 0.1)))
    ours = (AdamW8bit if kind == "AdamW8bit" else Adam8bit)(block_size=block_size, v_code=v_code, **settings)
    reference = torch.optim.AdamW if kind == "AdamW8bit" else torch.optim.Adam
    w = rng.normal(size=shape)
    state = random_state(rng, shape, block_size, step=int(rng.integers(0, 50)))
    worst = 0.0
    for _ in range(30):
        g = random_gradient(rng, shape)
        new_w, new_state = ours.step(w, g, state)
        m = hand_dequantize(state.m_codes, state.m_scales, block_size, "linear")
        v = hand_dequantize(state.v_codes, state.v_scales, block_size, v_code)
        rows = [slice(None)] if len(shape) == 1 else range(shape[0])
        torch_m, torch_v, torch_w = np.zeros(shape), np.zeros(shape), np.zeros(shape)
        for r in rows:                                  # one torch parameter per run
            p = torch.nn.Parameter(torch.tensor(w[r], dtype=torch.float64))
            opt = reference([p], foreach=False, **settings)
            opt.state[p] = {"step": torch.tensor(float(state.step)), "exp_avg": torch.tensor(m[r]),
                            "exp_avg_sq": torch.tensor(v[r])}
            p.grad = torch.tensor(g[r])
            opt.step()
            torch_w[r] = p.detach().numpy()
            torch_m[r], torch_v[r] = opt.state[p]["exp_avg"].numpy(), opt.state[p]["exp_avg_sq"].numpy()
        worst = max(worst, scaled_diff(new_w, torch_w))
        m_scales = assert_codes_match(new_state.m_codes, torch_m, block_size, "linear")
        v_scales = assert_codes_match(new_state.v_codes, torch_v, block_size, v_code)
        np.testing.assert_allclose(new_state.m_scales, m_scales, rtol=TOL, atol=0)
        np.testing.assert_allclose(new_state.v_scales, v_scales, rtol=TOL, atol=0)
        assert new_state.step == state.step + 1
        w, state = new_w, new_state
    assert worst <= TOL, (settings, worst)


# ---------------------------------------------------------------- memory

@pytest.mark.parametrize("block_size", [10**9, 256, 64, 1])
@pytest.mark.parametrize("shape", [(1000,), (4097,), (3, 1000)])
def test_state_bytes_measured_from_the_arrays_are_two_per_parameter_plus_the_scales(shape, block_size):
    opt = AdamW8bit(block_size=block_size)
    w = np.random.default_rng(0).normal(size=shape)
    _, state = opt.step(w, np.cos(w), opt.init(w))
    runs, d = (1, shape[0]) if len(shape) == 1 else shape
    measured = sum(a.nbytes for a in (state.m_codes, state.m_scales, state.v_codes, state.v_scales))
    assert state.m_codes.dtype == np.int8 and state.v_codes.dtype == np.uint8
    assert measured == runs * (2 * d + 2 * 8 * math.ceil(d / block_size)) == state_nbytes(state)
    assert state_nbytes(AdamW().init(w)) == 16 * runs * d                # float64 m and v


def test_memory_numbers_for_a_4097_parameter_layer():
    """2 * 4097 + 16 * 17 = 8466 bytes at block 256 (65552 for float64 AdamW): 7.7x less; 8210 as one block."""
    w = np.zeros(4097)
    assert state_nbytes(AdamW8bit().init(w)) == 8466
    assert state_nbytes(AdamW8bit(block_size=10**9).init(w)) == 8210
    assert state_nbytes(AdamW().init(w)) == 65552


# ---------------------------------------------------------------- tracking full-precision AdamW

def first_below(gaps, target):
    hits = np.nonzero(gaps <= target)[0]
    return int(hits[0]) if hits.size else None


def tracking(surface, starts, lr, steps, optimum, optimal_loss, weight_decay):
    """(max |w8 - w| per coordinate over the path / start's distance to the optimum, per run;
    steps of AdamW8bit / steps of AdamW to cut the loss gap 1000-fold, per run)."""
    t8 = run(AdamW8bit(lr=lr, weight_decay=weight_decay), steps, surface=surface, start=starts)
    t = run(AdamW(lr=lr, weight_decay=weight_decay), steps, surface=surface, start=starts)
    assert not np.any(t8.diverged) and not np.any(t.diverged)
    distance = np.abs(starts - optimum).max(axis=1)
    departure = np.abs(t8.params - t.params).max(axis=0) / distance[:, None]
    ratios = []
    for r in range(starts.shape[0]):
        target = 1e-3 * (t.losses[0, r] - optimal_loss)
        ours, ref = first_below(t8.losses[:, r] - optimal_loss, target), first_below(t.losses[:, r] - optimal_loss, target)
        assert ours is not None and ref is not None, (lr, r)
        ratios.append(ours / ref)
    return departure, np.array(ratios)


@pytest.mark.parametrize("lr", [3e-3, 1e-2, 3e-2, 1e-1])
def test_adamw8bit_tracks_adamw_on_the_course_surface(lr):
    starts = np.random.default_rng(0).uniform(-2, 2, size=(8, 2))
    departure, ratios = tracking(COURSE, starts, lr, 2000, np.zeros(2), 0.0, weight_decay=1e-2)
    assert departure[:, 0].max() <= 1e-3          # a: curvature 100, the block's large gradient (1.5e-4)
    assert departure[:, 1].max() <= 0.4           # b: its m in steps of 1/127 of a's (0.32)
    assert np.all(ratios >= 1 / 3) and np.all(ratios <= 1.5), ratios      # 0.48 to 1.20


@pytest.fixture(scope="module")
def triage():
    data = ticket_triage()
    return data, LogisticSurface(data.X_train, data.y_train)


@pytest.mark.parametrize("lr", [1e-2, 3e-2, 1e-1])
def test_adamw8bit_tracks_adamw_on_ticket_triage_logistic_regression(triage, lr):
    _, surface = triage
    starts = np.random.default_rng(1).uniform(-3, 3, size=(8, 2))
    departure, ratios = tracking(surface, starts, lr, 1500, surface.optimum, surface.optimal_loss,
                                 weight_decay=0.0)
    assert departure[:, 0].max() <= 0.02          # w1, the frequent signal feature (0.0099)
    assert departure[:, 1].max() <= 0.7           # w2, the rare contrast feature (0.55)
    assert np.all(ratios >= 1 / 3) and np.all(ratios <= 1.5), ratios      # 0.45 to 1.27


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_with_one_value_per_block_the_8bit_state_is_exact_and_the_path_is_adamw_bit_for_bit(dtype):
    """Every value is its own absmax: codes +-127 and 255 store it exactly (8 bytes of scale each)."""
    start = np.array([[1.0, 1.0], [-0.7, 2.5]], dtype=dtype)
    t8 = run(AdamW8bit(lr=0.02, block_size=1), 300, start=start)
    t = run(AdamW(lr=0.02), 300, start=start)
    np.testing.assert_array_equal(t8.params, t.params)
    w = start.copy()
    opt = AdamW8bit(lr=0.02, block_size=1)
    w, state = opt.step(w, COURSE.grad(w).astype(dtype), opt.init(w))
    assert w.dtype == dtype


# ---------------------------------------------------------------- linear v fails, the log code does not

def two_steps(opt):
    """Block of 256: one gradient 1.0 and 255 of 0.01, then the small ones drop to 0 (sparse)."""
    g1 = np.full(256, 0.01)
    g1[0] = 1.0
    g2 = np.where(np.arange(256) == 0, 1.0, 0.0)
    w0 = np.zeros(256)
    w1, after_first = opt.step(w0, g1, opt.init(w0))
    w2, _ = opt.step(w1, g2, after_first)
    return np.abs(w2 - w1)[1:].max(), after_first


def test_linear_v_rounds_small_second_moments_to_zero_and_takes_a_huge_step_the_log_code_does_not():
    ref, _ = two_steps(AdamW(lr=1e-3))
    linear, state = two_steps(AdamW8bit(lr=1e-3, v_code="linear_unsigned"))
    log, _ = two_steps(AdamW8bit(lr=1e-3))
    assert ref == pytest.approx(6.7e-4, rel=0.01)
    # after the first step: v = 1e-7 is 1e-4 of the block's absmax (< 1/510): code 0; m = 1e-3 is 1% (> 1/254)
    assert np.all(state.v_codes[1:] == 0) and np.all(state.m_codes[1:] == 1)
    assert linear > 100.0                       # m / eps: 373, half a million times AdamW's step
    assert 0.5 * ref <= log <= 1.5 * ref        # 5.2e-4: m of 1.27 levels read back as 1


def test_on_minibatch_ticket_triage_linear_v_explodes_and_the_log_code_steps_like_adamw(triage):
    data, _ = triage
    starts = np.random.default_rng(1).uniform(-3, 3, size=(8, 2))
    lr = 1e-2
    largest = {}
    for name, opt in [("fp", AdamW(lr=lr, weight_decay=0.0)), ("log", AdamW8bit(lr=lr, weight_decay=0.0)),
                      ("linear", AdamW8bit(lr=lr, weight_decay=0.0, v_code="linear_unsigned"))]:
        surface = MinibatchLogistic(data.X_train, data.y_train, batch_size=32, seed=3)
        trace = run(opt, 500, surface=surface, start=starts)
        largest[name] = np.abs(np.diff(trace.params, axis=0)).max() / lr
    assert largest["fp"] < 2 and largest["log"] < 2, largest          # 1.1 and 1.26
    assert largest["linear"] > 1e4, largest                            # 3.9e6


# ---------------------------------------------------------------- state, batches, checks

def test_the_state_is_a_printable_namedtuple_that_reads_back_as_an_adam_state():
    opt = AdamW8bit(lr=0.1, block_size=4)
    w, state = opt.step(np.array([1.0, -2.0, 0.5]), np.array([0.3, -0.1, 0.0]), opt.init(np.zeros(3)))
    # m = 0.1 g = (0.03, -0.01, 0): 127 * -1/3 = -42.3; v = 1e-3 g^2 = (9e-5, 1e-5, 0): 255 - round(8 log2 9) = 230
    assert repr(state) == ("Adam8bitState(step=1, m_codes=array([127, -42,   0], dtype=int8), m_scales=array([0.03]), "
                           "v_codes=array([255, 230,   0], dtype=uint8), v_scales=array([9.e-05]))")
    full = opt.dequantize_state(state)
    assert isinstance(full, AdamState)
    np.testing.assert_allclose(full.m, [0.03, -0.03 * 42 / 127, 0.0], rtol=1e-15)
    assert full.v[2] == 0.0 and full.v[0] == pytest.approx(0.09 * 1e-3, rel=1e-12)
    m_hat, v_hat = opt.moments_hat(state)
    np.testing.assert_allclose(m_hat[0], 0.3, rtol=1e-12)
    assert "block_size=4" in repr(opt) and "v_code='log'" in repr(opt)


def test_a_batch_of_runs_equals_the_same_runs_one_by_one_bitwise():
    starts = np.array([[1.0, 1.0], [-0.7, 2.5], [0.03, -1.9]])
    lrs = np.array([0.01, 0.03, 0.1])
    batch = run(AdamW8bit(lr=lrs), 200, start=starts)
    for r in range(3):
        alone = run(AdamW8bit(lr=float(lrs[r])), 200, start=starts[r])
        np.testing.assert_array_equal(batch.params[:, r], alone.params)


def test_a_loss_scaler_skipping_steps_in_one_run_of_a_batch_leaves_that_runs_8bit_state_alone():
    """The state's arrays are (runs, ...) so runner.run keeps a skipped run's codes and scales per run."""
    starts = np.array([[1.0, 1.0], [0.001, 0.5]])           # 100 * 65536 overflows fp16, 0.1 * 65536 does not
    batch = run(AdamW8bit(lr=0.01), 15, start=starts, scaler=DynamicLossScaler(growth_interval=3),
                record_states=True)
    assert batch.skipped[0, 0] and not batch.skipped[0, 1]
    assert batch.states[0].step.tolist() == [0, 1]
    np.testing.assert_array_equal(batch.states[0].m_codes[0], 0)
    for r in range(2):
        alone = run(AdamW8bit(lr=0.01), 15, start=starts[r], scaler=DynamicLossScaler(growth_interval=3))
        np.testing.assert_array_equal(batch.params[:, r], alone.params)


def test_bad_settings_and_states_are_refused_with_what_to_do():
    with pytest.raises(ValueError, match=r"v_code must be one of \['log', 'linear_unsigned'\]; got 'linear'"):
        AdamW8bit(v_code="linear")
    with pytest.raises(ValueError, match=r"block_size must be an integer >= 1.*got 0"):
        AdamW8bit(block_size=0)
    with pytest.raises(ValueError, match=r"lr must be a finite number > 0"):
        AdamW8bit(lr=-1)
    opt = AdamW8bit()
    with pytest.raises(ValueError, match=r"state must be an Adam8bitState.*quantize_state"):
        opt.step(np.zeros(3), np.zeros(3), AdamW().init(np.zeros(3)))
    with pytest.raises(ValueError, match=r"state holds moments of shape \(4,\) but params has shape \(3,\)"):
        opt.step(np.zeros(3), np.zeros(3), opt.init(np.zeros(4)))
    with pytest.raises(ValueError, match=r"another block_size"):
        AdamW8bit(block_size=2).step(np.zeros(5), np.zeros(5), AdamW8bit(block_size=4).init(np.zeros(5)))
    with pytest.raises(ValueError, match=r"v contains a non-finite value \(inf\).*clip the gradients"):
        opt.step(np.zeros(2), np.array([1e200, 1.0]), opt.init(np.zeros(2)))
    with pytest.raises(ValueError, match=r"grads contains a non-finite value"):
        opt.step(np.zeros(2), np.array([np.nan, 1.0]), opt.init(np.zeros(2)))
    restored = opt.quantize_state(AdamState(step=3, m=np.array([0.5, -1.0]), v=np.array([1.0, 0.0])))
    assert restored.step == 3 and restored.m_codes.tolist() == [64, -127] and restored.v_codes.tolist() == [255, 0]
