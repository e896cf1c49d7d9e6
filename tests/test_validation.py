"""One test per validation rule: a ValueError whose message names the argument, the value
given and the accepted range."""
from __future__ import annotations

import math
import re
import warnings

import numpy as np
import pytest

from lessons_lib.adaptive import Adagrad, RMSprop
from lessons_lib.clipping import clip_by_global_norm, clip_by_value
from lessons_lib.optimizers import SGD, Adam, AdamW, EMAMomentum
from lessons_lib.runner import run
from lessons_lib.schedules import constant, cosine, inverse_sqrt_warmup, linear_warmup, warmup_cosine
from lessons_lib.validation import (
    check_finite,
    check_int,
    check_nonnegative,
    check_positive,
    check_positive_real,
    check_real,
    check_same_shape,
    check_unit_interval,
)


def raises_naming(call, name: str, value: str, accepted: str):
    with pytest.raises(ValueError) as info:
        call()
    message = str(info.value)
    assert name in message, message
    assert value in message, message
    assert accepted in message, message
    return message


BAD_POSITIVE = [(0, "0.0"), (-0.1, "-0.1"), (math.nan, "nan"), (math.inf, "inf"), (-1e300, "-1e+300")]


# ---------------------------------------------------------------- lr <= 0

LR_OWNERS = {
    "SGD": lambda lr: SGD(lr=lr),
    "EMAMomentum": lambda lr: EMAMomentum(lr=lr),
    "Adam": lambda lr: Adam(lr=lr),
    "AdamW": lambda lr: AdamW(lr=lr),
    "Adagrad": lambda lr: Adagrad(lr=lr),
    "RMSprop": lambda lr: RMSprop(lr=lr),
    "constant": lambda lr: constant(lr),
}


@pytest.mark.parametrize("owner", LR_OWNERS)
@pytest.mark.parametrize("value,shown", BAD_POSITIVE)
def test_lr_must_be_positive(owner, value, shown):
    raises_naming(lambda: LR_OWNERS[owner](value), "lr", f"got {shown}", "> 0")


def test_per_run_lr_array_with_a_bad_entry():
    msg = raises_naming(lambda: SGD(lr=np.array([0.1, 0.0, 0.2])), "lr", "array of shape (3,)", "> 0")
    assert "min 0" in msg and "max 0.2" in msg


@pytest.mark.parametrize("owner", ["SGD", "EMAMomentum", "Adam", "AdamW", "Adagrad", "RMSprop"])
def test_step_lr_override_must_not_be_negative(owner):
    opt = LR_OWNERS[owner](0.1)
    w = np.zeros(2)
    raises_naming(lambda: opt.step(w, w, opt.init(w), lr=-0.5), "lr", "got -0.5", ">= 0")


@pytest.mark.parametrize("factory", [
    lambda v: cosine(v, 10), lambda v: linear_warmup(v, 3), lambda v: warmup_cosine(v, 0.0, 2, 10),
], ids=["cosine", "linear_warmup", "warmup_cosine"])
@pytest.mark.parametrize("value,shown", BAD_POSITIVE[:3])
def test_schedule_peak_must_be_positive(factory, value, shown):
    raises_naming(lambda: factory(value), "peak", f"got {shown}", "> 0")


def test_inverse_sqrt_arguments_must_be_positive():
    raises_naming(lambda: inverse_sqrt_warmup(0, 10), "d_model", "got 0.0", "> 0")
    raises_naming(lambda: inverse_sqrt_warmup(512, 10, scale=-1), "scale", "got -1.0", "> 0")
    raises_naming(lambda: inverse_sqrt_warmup(512, 0), "warmup_steps", "got 0", ">= 1")


def test_schedule_step_counts():
    raises_naming(lambda: cosine(0.1, 1), "total_steps", "got 1", ">= 2")
    raises_naming(lambda: cosine(0.1, 10.0), "total_steps", "got 10.0", "integer >= 2")
    raises_naming(lambda: linear_warmup(0.1, 0), "warmup_steps", "got 0", ">= 1")
    raises_naming(lambda: warmup_cosine(0.1, 0.0, -1, 10), "warmup_steps", "got -1", ">= 0")
    raises_naming(lambda: warmup_cosine(0.1, 0.0, 9, 10), "total_steps (10)", "warmup_steps (9)", "at least 2")
    raises_naming(lambda: warmup_cosine(0.1, 0.2, 2, 10), "final (0.2)", "peak (0.1)", "must not exceed")
    raises_naming(lambda: constant(0.1).values(0), "n", "got 0", ">= 1")


# ---------------------------------------------------------------- betas outside [0, 1)

@pytest.mark.parametrize("cls", [Adam, AdamW])
@pytest.mark.parametrize("index,betas,shown", [
    (0, (1.0, 0.999), "1.0"), (0, (-0.1, 0.999), "-0.1"), (1, (0.9, 1.0), "1.0"), (1, (0.9, 1.5), "1.5"),
    (1, (0.9, math.nan), "nan"),
])
def test_betas_must_lie_in_unit_interval(cls, index, betas, shown):
    raises_naming(lambda: cls(betas=betas), f"betas[{index}]", f"got {shown}", "[0, 1)")


@pytest.mark.parametrize("betas", [0.9, (0.9,), (0.9, 0.99, 0.999), "0.9,0.99"])
def test_betas_must_be_a_pair(betas):
    raises_naming(lambda: Adam(betas=betas), "betas", repr(betas), "pair (beta1, beta2)")


@pytest.mark.parametrize("value,shown", [(1.0, "1.0"), (-0.5, "-0.5"), (2, "2.0")])
def test_ema_beta_and_sgd_momentum_in_unit_interval(value, shown):
    raises_naming(lambda: EMAMomentum(0.1, beta=value), "beta", f"got {shown}", "[0, 1)")
    raises_naming(lambda: SGD(0.1, momentum=value), "momentum", f"got {shown}", "[0, 1)")


@pytest.mark.parametrize("value,shown", [(1.0, "1.0"), (-0.5, "-0.5"), (2, "2.0"), (math.nan, "nan")])
def test_rmsprop_alpha_and_momentum_in_unit_interval(value, shown):
    """Stricter than torch, which takes any alpha >= 0 and momentum >= 0: alpha 1 never updates
    the average (every step divides by eps) and momentum >= 1 never forgets a gradient."""
    raises_naming(lambda: RMSprop(alpha=value), "alpha", f"got {shown}", "[0, 1)")
    raises_naming(lambda: RMSprop(momentum=value), "momentum", f"got {shown}", "[0, 1)")
    RMSprop(alpha=0.0, momentum=0.0)                  # 0 is allowed for both, as in torch


@pytest.mark.parametrize("value", ["False", 1, None, np.array([True, False])])
def test_rmsprop_centered_must_be_a_bool(value):
    raises_naming(lambda: RMSprop(centered=value), "centered", repr(value), "True or False")


@pytest.mark.parametrize("name", ["lr_decay", "initial_accumulator_value"])
@pytest.mark.parametrize("value,shown", [(-0.01, "-0.01"), (math.inf, "inf"), (math.nan, "nan")])
def test_adagrad_lr_decay_and_initial_accumulator_value_must_be_nonnegative(name, value, shown):
    raises_naming(lambda: Adagrad(**{name: value}), name, f"got {shown}", ">= 0")
    Adagrad(**{name: 0.0})


def test_adagrad_per_run_initial_value_needs_params_with_one_row_per_run():
    opt = Adagrad(initial_accumulator_value=np.array([0.0, 0.1, 0.2]))
    raises_naming(lambda: opt.init(np.zeros(3)), "3 runs", "(3, d)", "got (3,)")
    assert opt.init(np.zeros((3, 2))).sum.shape == (3, 2)


def test_dampening_in_closed_unit_interval():
    raises_naming(lambda: SGD(0.1, momentum=0.9, dampening=1.5), "dampening", "got 1.5", "[0, 1]")
    raises_naming(lambda: SGD(0.1, momentum=0.9, dampening=-0.1), "dampening", "got -0.1", "[0, 1]")
    SGD(0.1, momentum=0.9, dampening=1.0)          # 1 is allowed, as in torch


def test_nesterov_needs_momentum_and_no_dampening():
    raises_naming(lambda: SGD(0.1, nesterov=True), "nesterov", "momentum > 0", "dampening = 0")
    raises_naming(lambda: SGD(0.1, momentum=0.9, dampening=0.1, nesterov=True), "nesterov", "momentum > 0",
                  "dampening = 0")


# ---------------------------------------------------------------- eps <= 0

@pytest.mark.parametrize("cls", [Adam, AdamW, Adagrad, RMSprop])
@pytest.mark.parametrize("value,shown", BAD_POSITIVE[:4])
def test_eps_must_be_positive(cls, value, shown):
    raises_naming(lambda: cls(eps=value), "eps", f"got {shown}", "> 0")


def test_clipping_eps_must_be_positive():
    raises_naming(lambda: clip_by_global_norm([1.0, 2.0], 1.0, eps=0.0), "eps", "got 0.0", "> 0")


# ---------------------------------------------------------------- negative decay

@pytest.mark.parametrize("make", [
    lambda v: SGD(0.1, weight_decay=v), lambda v: Adam(weight_decay=v), lambda v: AdamW(weight_decay=v),
    lambda v: Adagrad(weight_decay=v), lambda v: RMSprop(weight_decay=v),
], ids=["SGD", "Adam", "AdamW", "Adagrad", "RMSprop"])
@pytest.mark.parametrize("value,shown", [(-0.01, "-0.01"), (-1, "-1.0"), (math.inf, "inf"), (math.nan, "nan")])
def test_weight_decay_must_be_nonnegative(make, value, shown):
    raises_naming(lambda: make(value), "weight_decay", f"got {shown}", ">= 0")


def test_schedule_final_must_be_nonnegative():
    raises_naming(lambda: cosine(0.1, 10, final=-0.01), "final", "got -0.01", ">= 0")
    raises_naming(lambda: warmup_cosine(0.1, -0.01, 2, 10), "final", "got -0.01", ">= 0")


# ---------------------------------------------------------------- max_norm <= 0

@pytest.mark.parametrize("value,shown", BAD_POSITIVE[:4])
def test_max_norm_must_be_positive(value, shown):
    raises_naming(lambda: clip_by_global_norm([3.0, 4.0], value), "max_norm", f"got {shown}", "> 0")
    raises_naming(lambda: run(SGD(0.01), 3, max_norm=value), "max_norm", f"got {shown}", "> 0")
    raises_naming(lambda: clip_by_value([3.0, 4.0], value), "max_value", f"got {shown}", "> 0")


# ---------------------------------------------------------------- mismatched shapes

@pytest.mark.parametrize("opt", [SGD(0.1, momentum=0.9), EMAMomentum(0.1), Adam(), AdamW(), Adagrad(),
                                 RMSprop(momentum=0.9, centered=True)],
                         ids=lambda o: type(o).__name__)
@pytest.mark.parametrize("w_shape,g_shape", [((2,), (3,)), ((4, 2), (2,)), ((2,), (2, 1))])
def test_params_and_grads_shapes_must_match(opt, w_shape, g_shape):
    w = np.zeros(w_shape)
    raises_naming(lambda: opt.step(w, np.ones(g_shape), opt.init(w)),
                  f"params has shape {w_shape}", f"grads has shape {g_shape}", "must match")


def test_per_run_hyperparameter_lengths_must_match():
    raises_naming(lambda: Adam(lr=np.array([0.1, 0.2]), eps=np.array([1e-8, 1e-8, 1e-8])),
                  "per-run hyperparameters", "'lr': 2", "same length")


def test_start_shape_must_match_runs():
    raises_naming(lambda: run(AdamW(lr=np.array([0.1, 0.2])), 3, start=np.ones((3, 2))),
                  "start has shape (3, 2)", "2 runs", "(2, d)")


# ---------------------------------------------------------------- non-finite inputs

@pytest.mark.parametrize("opt", [SGD(0.1), SGD(0.1, momentum=0.9), EMAMomentum(0.1), Adam(), AdamW(), Adagrad(),
                                 RMSprop(momentum=0.9, centered=True)],
                         ids=lambda o: type(o).__name__)
@pytest.mark.parametrize("bad,shown,index", [
    ([math.inf, 1.0], "inf", "[0]"), ([1.0, -math.inf], "-inf", "[1]"), ([1.0, math.nan], "nan", "[1]"),
])
def test_nonfinite_gradient_is_refused(opt, bad, shown, index):
    w = np.zeros(2)
    state = opt.init(w)
    raises_naming(lambda: opt.step(w, bad, state), "grads", f"({shown}) at index {index}", "must be finite")


def test_nonfinite_gradient_in_a_batch_names_the_run():
    opt = Adam(lr=np.array([0.1, 0.2]))
    w = np.zeros((2, 2))
    raises_naming(lambda: opt.step(w, [[0.0, 1.0], [math.nan, 0.0]], opt.init(w)), "grads",
                  "(nan) at index [1, 0]", "must be finite")


def test_nonfinite_gradient_norm_in_clipping():
    raises_naming(lambda: clip_by_global_norm([math.inf, 1.0], 1.0), "grads", "(inf)", "must be finite")
    raises_naming(lambda: clip_by_global_norm([math.nan, 1.0], 1.0), "grads", "(nan)", "must be finite")


def test_nonfinite_start_is_refused():
    raises_naming(lambda: run(SGD(0.1), 3, start=[math.nan, 1.0]), "start", "(nan) at index [0]", "must be finite")


@pytest.mark.parametrize("value", ["abc", [[1.0, 2.0], [3.0]], {"a": 1}])
def test_non_numeric_input_is_refused_clearly(value):
    opt = SGD(0.1)
    w = np.zeros(2)
    raises_naming(lambda: opt.step(w, value, opt.init(w)), "grads", repr(value), "a number or an array of numbers")


def test_none_gradient_is_refused():
    opt = SGD(0.1)
    w = np.zeros(2)
    raises_naming(lambda: opt.step(w, None, opt.init(w)), "grads", "is None", "pass the gradient array")


# ---------------------------------------------------------------- the checks themselves

def test_check_helpers_return_float_arrays_on_success():
    assert check_positive("x", 2).dtype == np.float64
    assert check_nonnegative("x", 0).item() == 0.0
    assert check_unit_interval("x", 0.0).item() == 0.0
    assert check_unit_interval("x", 1.0, closed_right=True).item() == 1.0
    np.testing.assert_array_equal(check_finite("x", [1, 2]), [1.0, 2.0])
    assert check_int("n", np.int64(3), 1) == 3
    check_same_shape("a", np.zeros(2), "b", np.zeros(2))


def test_check_helpers_messages():
    assert str(_err(check_positive, "x", -1, "try 1")) == "x must be a finite number > 0; got -1.0. Try 1"
    assert str(_err(check_int, "n", True, 0)) == "n must be an integer >= 0; got True"
    assert str(_err(check_unit_interval, "d", 2.0, closed_right=True)) == "d must lie in [0, 1]; got 2.0"
    assert str(_err(check_nonnegative, "wd", [0.1, -0.2])) == \
        "wd must be a finite number >= 0; got array of shape (2,) (min -0.2, max 0.1)"
    assert str(_err(check_positive, "x", [])) == "x must be a finite number > 0; got array of shape (0,) (empty)"
    assert str(_err(check_positive, "x", [math.nan, math.nan])) == \
        "x must be a finite number > 0; got array of shape (2,) (all nan)"
    assert str(_err(check_same_shape, "a", np.zeros(2), "b", np.zeros(3))) == \
        "a has shape (2,) but b has shape (3,); they must match (one entry per parameter)"


def _err(fn, *args, **kwargs):
    """The ValueError fn raises, with warnings as errors (a check must not warn on its way)."""
    with pytest.raises(ValueError) as info:
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            fn(*args, **kwargs)
    return info.value


# ---------------------------------------------------------------- one setting typed into a box

@pytest.mark.parametrize("value,fragment", [
    ("fast", "must be a number; got 'fast'"), (None, "must be a number; got None"),
    ([1.0, 2.0], "must be a number; got [1.0, 2.0]"),
    (math.nan, "must be a finite number; got nan"), (-math.inf, "must be a finite number; got -inf"),
])
def test_check_real_refuses_text_none_and_non_finite_values(value, fragment):
    with pytest.raises(ValueError, match=re.escape(f"lr {fragment}")):
        check_real("lr", value)


def test_check_real_gives_a_plain_float():
    for value in (3, np.float32(0.5), np.int64(-2), "0.25"):
        x = check_real("lr", value)
        assert type(x) is float and x == float(value)


def test_check_positive_real_adds_the_range_and_the_hint():
    assert check_positive_real("lr", np.float64(0.018)) == 0.018
    with pytest.raises(ValueError, match=re.escape("lr must be a finite number > 0; got 0.0. Try 0.018")):
        check_positive_real("lr", 0, hint="try 0.018")
    with pytest.raises(ValueError, match=re.escape("lr must be a number; got 'x'")):
        check_positive_real("lr", "x")
