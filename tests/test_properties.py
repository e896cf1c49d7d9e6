"""Property tests (hypothesis): invariants that must hold for any valid input.

- clipping never exceeds max_norm and keeps the direction;
- warmup is monotone and lands exactly where it should; the last step is exactly the final lr;
- the loss scale never becomes non-finite, and a skipped step leaves params and state untouched;
- a batched run equals the same runs done one by one, bitwise.
Examples per property and the deadline come from the profile in conftest.py.
"""
from __future__ import annotations

import math

import numpy as np
from hypothesis import assume, given
from hypothesis import strategies as st

from lessons_lib.adaptive import Adagrad, RMSprop
from lessons_lib.clipping import clip_by_global_norm, clip_runs_by_norm, global_norm
from lessons_lib.optimizers import SGD, Adam, AdamW, EMAMomentum
from lessons_lib.precision import DynamicLossScaler
from lessons_lib.runner import run
from lessons_lib.schedules import cosine, inverse_sqrt_warmup, linear_warmup, warmup_cosine
from lessons_lib.surfaces import START

finite = st.floats(min_value=-1e6, max_value=1e6, allow_nan=False, allow_infinity=False)
gradients = st.lists(finite, min_size=1, max_size=8).map(np.array)
max_norms = st.floats(min_value=1e-3, max_value=1e3)
clip_eps = st.sampled_from([1e-6, 1e-12])


def log_uniform(lo, hi):
    return st.floats(min_value=math.log10(lo), max_value=math.log10(hi)).map(lambda e: 10.0**e)


# ---------------------------------------------------------------- clipping

def assert_positive_multiple(clipped, g):
    """clipped = c * g for one c in (0, 1]: the direction is kept."""
    big = np.abs(g) > 1e-200                        # far from underflow after scaling
    if not np.any(big):
        return
    ratios = clipped[big] / g[big]
    assert np.all(ratios > 0) and np.all(ratios <= 1.0)
    np.testing.assert_allclose(ratios, ratios[0], rtol=1e-15, atol=0)
    np.testing.assert_array_equal(clipped[g == 0], 0.0)


@given(g=gradients, max_norm=max_norms, eps=clip_eps)
def test_clipping_never_exceeds_max_norm_and_keeps_direction(g, max_norm, eps):
    clipped, norm = clip_by_global_norm(g, max_norm, eps=eps)
    assert norm == global_norm(g)
    assert global_norm(clipped) <= max_norm * (1 + 1e-12)
    assert global_norm(clipped) <= norm * (1 + 1e-15)
    if norm <= max_norm * 0.5:
        np.testing.assert_array_equal(clipped, g)       # small gradients pass unchanged
    assert_positive_multiple(clipped, g)


@given(rows=st.lists(st.lists(finite, min_size=3, max_size=3), min_size=1, max_size=6), max_norm=max_norms)
def test_batched_clipping_clips_each_run_like_a_single_call(rows, max_norm):
    g = np.array(rows)
    clipped, norms = clip_runs_by_norm(g, max_norm)
    for r in range(len(rows)):
        single, n = clip_by_global_norm(g[r], max_norm)
        np.testing.assert_array_equal(clipped[r], single)
        assert norms[r] == n


# ---------------------------------------------------------------- schedules

@st.composite
def warmup_cosine_args(draw):
    peak = draw(log_uniform(1e-6, 10.0))
    final = draw(st.one_of(st.just(0.0), st.floats(min_value=0.0, max_value=1.0).map(lambda f: f * peak)))
    warmup = draw(st.integers(min_value=0, max_value=60))
    total = warmup + draw(st.integers(min_value=2, max_value=300))
    return peak, final, warmup, total


@given(args=warmup_cosine_args())
def test_warmup_cosine_is_monotone_and_lands_on_final(args):
    peak, final, warmup, total = args
    v = warmup_cosine(peak, final, warmup, total).values(total + 5)
    tiny = 4 * np.spacing(peak)
    if warmup:
        assert np.all(np.diff(v[:warmup]) >= 0)                   # warmup never goes down
        assert v[0] == peak / warmup
        assert abs(v[warmup - 1] - peak) <= tiny                  # warmup ends at the peak
    assert np.all(np.diff(v[warmup:total]) <= tiny)               # then cosine never goes up
    assert v[total - 1] == final                                  # exactly the final rate
    np.testing.assert_array_equal(v[total:], final)               # and stays there
    assert np.all(v[warmup:] >= final) and np.all(v <= peak + tiny)


@given(peak=log_uniform(1e-6, 10.0), warmup=st.integers(min_value=1, max_value=200))
def test_linear_warmup_is_monotone_and_lands_exactly_on_peak(peak, warmup):
    v = linear_warmup(peak, warmup).values(warmup + 20)
    assert np.all(np.diff(v) >= 0)
    assert v[warmup - 1] == peak
    np.testing.assert_array_equal(v[warmup - 1:], peak)


@given(peak=log_uniform(1e-6, 10.0), final_fraction=st.floats(0.0, 1.0), total=st.integers(2, 500))
def test_cosine_is_monotone_and_lands_exactly_on_final(peak, final_fraction, total):
    final = peak * final_fraction
    v = cosine(peak, total, final).values(total)
    assert np.all(np.diff(v) <= 4 * np.spacing(peak))
    assert v[-1] == final


@given(d_model=st.integers(16, 4096), warmup=st.integers(1, 500))
def test_inverse_sqrt_warmup_rises_then_falls(d_model, warmup):
    v = inverse_sqrt_warmup(d_model, warmup).values(3 * warmup + 2)
    assert np.all(np.diff(v[:warmup]) > 0)
    assert np.all(np.diff(v[warmup:]) < 0)
    assert v.max() == v[warmup - 1]


# ---------------------------------------------------------------- loss scaling

@given(
    init_exp=st.integers(-20, 120),
    growth_factor=st.one_of(st.just(2.0), st.floats(min_value=1.001, max_value=1e10)),
    backoff=st.one_of(st.just(0.5), st.floats(min_value=1e-6, max_value=0.999)),
    interval=st.integers(1, 20),
    found=st.lists(st.booleans(), min_size=1, max_size=300),
)
def test_loss_scale_invariants(init_exp, growth_factor, backoff, interval, found):
    """Whatever the flags: the scale is a float32 value >= 0 and finite; an overflow never raises
    it and resets the count; a clean step never lowers it; it changes only when the count resets.
    (The exact values are checked against torch's own kernel in test_conformance_torch.py.)"""
    scaler = DynamicLossScaler(init_scale=2.0**init_exp, growth_factor=growth_factor,
                               backoff_factor=backoff, growth_interval=interval)
    state = scaler.init()
    for flag in found:
        before = state
        state = scaler.update(state, flag)
        assert math.isfinite(state.scale) and state.scale >= 0
        assert float(np.float32(state.scale)) == state.scale
        if flag:
            assert state.growth_tracker == 0 and state.scale <= before.scale
            assert state.scale < before.scale or before.scale == 0 or state.scale == 0
        else:
            assert state.scale >= before.scale
            assert state.growth_tracker == (before.growth_tracker + 1) % interval
            if state.growth_tracker != 0:
                assert state.scale == before.scale


OPTIMIZER_KINDS = ["sgd", "heavy-ball", "nesterov", "ema", "adam", "adamw", "adagrad", "rmsprop", "rmsprop-centered"]


def make_optimizer(kind, lr, mu, wd, b2):
    if kind == "sgd":
        return SGD(lr, weight_decay=wd)
    if kind == "heavy-ball":
        return SGD(lr, momentum=mu, dampening=mu / 2, weight_decay=wd)
    if kind == "nesterov":
        return SGD(lr, momentum=np.maximum(mu, 0.1), nesterov=True, weight_decay=wd)
    if kind == "ema":
        return EMAMomentum(lr, beta=mu)
    if kind == "adam":
        return Adam(lr, betas=(mu, b2), weight_decay=wd)
    if kind == "adagrad":
        return Adagrad(lr, lr_decay=mu / 10, weight_decay=wd, initial_accumulator_value=b2)
    if kind.startswith("rmsprop"):
        return RMSprop(lr, alpha=b2, momentum=mu, weight_decay=wd, centered=kind == "rmsprop-centered")
    return AdamW(lr, betas=(mu, b2), weight_decay=wd)


def state_equal(a, b):
    assert type(a) is type(b)
    for x, y in zip(a, b):
        if x is None or y is None:
            assert x is None and y is None
        else:
            np.testing.assert_array_equal(x, y)


@given(
    kind=st.sampled_from(OPTIMIZER_KINDS),
    lr=log_uniform(1e-4, 1.0),
    mu=st.floats(0.0, 0.95),
    wd=st.sampled_from([0.0, 0.01, 0.5]),
    b2=st.floats(0.5, 0.9999),
    init_exp=st.integers(0, 30),
    interval=st.integers(1, 6),
    start=st.tuples(st.floats(-3, 3), st.floats(-3, 3)),
    max_norm=st.one_of(st.none(), log_uniform(0.1, 100.0)),
)
def test_skipped_step_leaves_params_and_state_untouched(kind, lr, mu, wd, b2, init_exp, interval, start, max_norm):
    opt = make_optimizer(kind, lr, mu, wd, b2)
    start = np.array(start)
    t = run(opt, 30, start=start, scaler=DynamicLossScaler(init_scale=2.0**init_exp, growth_interval=interval),
            max_norm=max_norm, record_states=True)
    assume(np.any(t.skipped))                  # only runs that skipped a step say anything here
    assert np.all(np.isfinite(t.scales[: len(t.states)]))
    before = opt.init(start)
    for k, after in enumerate(t.states):
        if t.skipped[k]:
            np.testing.assert_array_equal(t.params[k + 1], t.params[k])
            state_equal(after, before)
            assert not t.clipped[k]
            if k + 1 < len(t.states):
                assert t.scales[k + 1] == t.scales[k] * 0.5           # and the scale backs off
        before = after


# ---------------------------------------------------------------- batched == one by one

def assert_same(batch, single):
    """Bitwise equal, nan in the same places."""
    batch, single = np.asarray(batch, dtype=float), np.asarray(single, dtype=float)
    np.testing.assert_array_equal(np.isnan(batch), np.isnan(single))
    ok = ~np.isnan(single)
    np.testing.assert_array_equal(batch[ok], single[ok])


@given(
    kind=st.sampled_from(OPTIMIZER_KINDS),
    runs=st.integers(1, 4),
    data=st.data(),
    use_schedule=st.booleans(),
    max_norm=st.one_of(st.none(), log_uniform(0.1, 100.0)),
    use_scaler=st.booleans(),
    separate_starts=st.booleans(),
)
def test_batched_run_equals_runs_one_by_one(kind, runs, data, use_schedule, max_norm, use_scaler, separate_starts):
    lr = np.array(data.draw(st.lists(st.one_of(log_uniform(1e-4, 0.5), st.sampled_from([1e6, 1e300])),
                                     min_size=runs, max_size=runs)))
    mu = np.array(data.draw(st.lists(st.floats(0.0, 0.95), min_size=runs, max_size=runs)))
    wd = np.array(data.draw(st.lists(st.sampled_from([0.0, 0.01, 0.3]), min_size=runs, max_size=runs)))
    b2 = np.array(data.draw(st.lists(st.floats(0.5, 0.9999), min_size=runs, max_size=runs)))
    if separate_starts:
        starts = np.array(data.draw(st.lists(st.tuples(st.floats(-3, 3), st.floats(-3, 3)),
                                             min_size=runs, max_size=runs)))
    else:
        starts = START
    steps = 40
    # a schedule with per-run peaks, so run r of the batch and the single run r use the same rates
    schedule = cosine(lr, steps) if use_schedule else None
    scaler = DynamicLossScaler(init_scale=2.0**10, growth_interval=3) if use_scaler else None
    batch = run(make_optimizer(kind, lr, mu, wd, b2), steps, start=starts, schedule=schedule,
                max_norm=max_norm, scaler=scaler)
    for r in range(runs):
        single = run(make_optimizer(kind, float(lr[r]), float(mu[r]), float(wd[r]), float(b2[r])), steps,
                     start=starts[r] if separate_starts else starts,
                     schedule=cosine(float(lr[r]), steps) if use_schedule else None,
                     max_norm=max_norm, scaler=scaler)
        assert_same(batch.params[:, r], single.params)
        assert_same(batch.losses[:, r], single.losses)
        assert (batch.diverged_at[r] if batch.diverged_at[r] >= 0 else None) == single.diverged_at
        np.testing.assert_array_equal(batch.clipped[:, r], single.clipped)
        np.testing.assert_array_equal(batch.skipped[:, r], single.skipped)
        alive = steps if single.diverged_at is None else single.diverged_at
        assert_same(batch.lrs[:alive, r], single.lrs[:alive])
        assert_same(batch.grad_norms[:alive, r], single.grad_norms[:alive])
        assert_same(batch.scales[:alive, r], single.scales[:alive])
