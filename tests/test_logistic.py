"""Unit tests of lessons_lib.logistic: logistic regression as a surface for runner.run."""
from __future__ import annotations

import warnings

import numpy as np
import pytest

from lessons_lib.datasets import ticket_triage
from lessons_lib.logistic import (
    EpochSampler, LogisticSurface, MinibatchLogistic, accuracy, condition_number, fit_newton,
    logistic_grad, logistic_hessian, logistic_loss, sigmoid,
)
from lessons_lib.optimizers import SGD, AdamW
from lessons_lib.precision import DynamicLossScaler
from lessons_lib.runner import run


@pytest.fixture(scope="module")
def data():
    d = ticket_triage()
    return d.X_train, d.y_train


@pytest.fixture(scope="module")
def surface(data):
    return LogisticSurface(*data)


def test_loss_at_zero_is_log_two(data):
    assert logistic_loss(np.zeros(2), *data) == pytest.approx(np.log(2), abs=1e-15)


def test_sigmoid_is_finite_and_silent_for_huge_inputs():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        np.testing.assert_array_equal(sigmoid([-1000.0, 0.0, 1000.0]), [0.0, 0.5, 1.0])
        assert np.isfinite(logistic_loss(np.array([500.0, 0.0]), np.array([[2.0, 0.0], [-2.0, 0.0]]),
                                         np.array([0.0, 1.0])))


@pytest.mark.parametrize("w", [[0.0, 0.0], [0.5, -1.0], [0.79, 3.0], [-2.0, 6.0]])
def test_gradient_matches_finite_differences(data, w):
    w = np.array(w)
    h = 1e-6
    fd = [(logistic_loss(w + h * e, *data) - logistic_loss(w - h * e, *data)) / (2 * h) for e in np.eye(2)]
    np.testing.assert_allclose(logistic_grad(w, *data), fd, rtol=1e-6, atol=1e-9)


def test_hessian_matches_finite_differences_of_the_gradient(data):
    w = np.array([0.4, 1.5])
    h = 1e-5
    fd = np.array([(logistic_grad(w + h * e, *data) - logistic_grad(w - h * e, *data)) / (2 * h)
                   for e in np.eye(2)])
    np.testing.assert_allclose(logistic_hessian(w, data[0]), fd, rtol=1e-6, atol=1e-10)


def test_a_batch_of_runs_equals_one_run_at_a_time(data):
    W = np.random.default_rng(0).normal(0, 2, size=(6, 2))
    X, y = data
    np.testing.assert_allclose(logistic_loss(W, X, y), [logistic_loss(w, X, y) for w in W], rtol=1e-14)
    np.testing.assert_allclose(logistic_grad(W, X, y), [logistic_grad(w, X, y) for w in W], rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(logistic_hessian(W, X), [logistic_hessian(w, X) for w in W], rtol=1e-12)
    np.testing.assert_array_equal(accuracy(W, X, y), [accuracy(w, X, y) for w in W])
    surface = LogisticSurface(X, y)
    np.testing.assert_allclose(surface.loss(W), [surface.loss(w) for w in W], rtol=1e-14)
    np.testing.assert_allclose(surface.grad(W), [surface.grad(w) for w in W], rtol=1e-12, atol=1e-15)


def test_optimum_and_condition_number(surface, data):
    w_star = surface.optimum
    assert np.linalg.norm(surface.grad(w_star)) < 1e-12
    np.testing.assert_allclose(fit_newton(*data), w_star, atol=1e-12)
    H = surface.hessian()
    lam = np.linalg.eigvalsh(H)
    assert surface.condition_number == pytest.approx(lam[1] / lam[0])
    assert 30 < surface.condition_number < 300
    assert surface.optimal_loss < surface.loss(w_star + [0.01, 0.0])


def test_condition_number_of_the_course_surface():
    assert condition_number(np.diag([100.0, 1.0])) == 100.0
    with pytest.raises(ValueError, match="square"):
        condition_number(np.ones((2, 3)))
    with pytest.raises(ValueError, match="positive definite"):
        condition_number(np.diag([1.0, 0.0]))


def test_separable_data_has_no_optimum():
    X = np.array([[1.0], [2.0], [-1.0], [-2.0]])
    y = np.array([1.0, 1.0, 0.0, 0.0])
    with pytest.raises(ValueError, match="separable"):
        fit_newton(X, y, max_iter=30)


def test_loss_cache_never_returns_a_stale_value(surface):
    a, b = np.array([0.1, 0.2]), np.array([0.3, 0.4])
    la = surface.loss(a)
    assert surface.loss(b) != la
    assert surface.loss(a) == la
    W = np.stack([a, b])
    np.testing.assert_array_equal(surface.loss(W), [la, surface.loss(b)])
    out = surface.loss(W)
    out[0] = 99.0                                            # callers may modify what they get
    assert surface.loss(W)[0] == la


def test_surface_data_is_read_only(surface):
    with pytest.raises(ValueError):
        surface.X[0, 0] = 1.0


def test_grid_matches_the_loss(surface):
    W1, W2, L = surface.grid((-1, 1), (0, 3), n=4)
    assert L.shape == (4, 4)
    assert L[2, 1] == pytest.approx(surface.loss([W1[2, 1], W2[2, 1]]), rel=1e-14)


def test_epoch_sampler_uses_every_row_once_per_epoch():
    sampler = EpochSampler(n=10, batch_size=3, seed=0)
    assert sampler.batches_per_epoch == 3
    epoch = np.concatenate([sampler.next() for _ in range(3)])
    assert len(set(epoch.tolist())) == 9                     # 9 distinct rows, 1 skipped (drop_last)
    np.testing.assert_array_equal(np.sort(np.concatenate([epoch, np.setdiff1d(np.arange(10), epoch)])), np.arange(10))
    first = np.random.default_rng(0).permutation(10)[:3]
    sampler.reset()
    np.testing.assert_array_equal(sampler.next(), first)


def test_batched_sampler_run_r_uses_seed_plus_r():
    batched = EpochSampler(n=50, batch_size=7, seed=4, runs=3)
    draws = np.stack([batched.next() for _ in range(20)])              # (20, 3, 7), crosses epochs
    for r in range(3):
        single = EpochSampler(n=50, batch_size=7, seed=4 + r)
        np.testing.assert_array_equal(draws[:, r], np.stack([single.next() for _ in range(20)]))


def test_one_epoch_of_minibatch_gradients_averages_to_the_full_gradient(data):
    X, y = data
    mb = MinibatchLogistic(X, y, batch_size=45, seed=2)     # 2250 = 50 * 45: no row skipped
    w = np.array([0.3, 1.0])
    mean = np.mean([mb.grad(w) for _ in range(50)], axis=0)
    np.testing.assert_allclose(mean, logistic_grad(w, X, y), rtol=1e-12, atol=1e-15)
    assert mb.draws == 50
    assert mb.loss(w) == pytest.approx(logistic_loss(w, X, y), rel=1e-14)   # loss is full batch


def test_minibatch_stream_is_stateful_and_reset_replays_it(data):
    mb = MinibatchLogistic(*data, batch_size=32, seed=0)
    w = np.array([0.2, 0.1])
    g1, g2 = mb.grad(w), mb.grad(w)
    assert not np.array_equal(g1, g2)
    mb.reset()
    np.testing.assert_array_equal(mb.grad(w), g1)
    with pytest.raises(ValueError, match="reset"):
        mb.grad(np.zeros((3, 2)))                            # a different number of runs


def test_batched_minibatch_run_equals_single_runs_with_shifted_seeds(data):
    X, y = data
    lrs = np.array([0.5, 1.0, 2.0])
    batch = run(SGD(lr=lrs), 40, surface=MinibatchLogistic(X, y, 16, seed=7), start=[0.0, 0.0])
    for r, lr in enumerate(lrs):
        single = run(SGD(lr=float(lr)), 40, surface=MinibatchLogistic(X, y, 16, seed=7 + r), start=[0.0, 0.0])
        np.testing.assert_allclose(batch.params[:, r], single.params, rtol=1e-12, atol=1e-14)
        np.testing.assert_allclose(batch.losses[:, r], single.losses, rtol=1e-12)


def test_runner_drives_the_full_batch_surface_like_inline_gradient_descent(surface, data):
    X, y = data
    w, path = np.zeros(2), [np.zeros(2)]
    for _ in range(25):
        w = w - 3.0 * logistic_grad(w, X, y)
        path.append(w)
    trace = run(SGD(lr=3.0), 25, surface=surface, start=[0.0, 0.0])
    np.testing.assert_allclose(trace.params, path, atol=1e-12)
    assert trace.diverged_at is None


def test_runner_with_scaler_and_clipping_on_minibatches(data):
    X, y = data
    scaler = DynamicLossScaler(init_scale=65536.0, growth_interval=5)
    trace = run(AdamW(lr=0.05), 60, surface=MinibatchLogistic(X, y, 32, seed=0), start=[0.0, 0.0],
                max_norm=0.2, scaler=scaler)
    assert trace.skipped.any() and trace.clipped.any()
    assert np.all(np.isfinite(trace.losses))
    assert trace.final_loss < np.log(2)


@pytest.mark.parametrize("call, match", [
    (lambda: LogisticSurface(np.zeros(5), np.zeros(5)), "2-D"),
    (lambda: LogisticSurface(np.zeros((5, 2)), np.zeros(4)), "one label per row"),
    (lambda: LogisticSurface(np.zeros((2, 2)), np.array([0.0, 2.0])), "labels 0 and 1"),
    (lambda: LogisticSurface(np.array([[np.inf, 0.0]]), np.array([1.0])), "inf or nan"),
    (lambda: logistic_loss(np.zeros(3), np.zeros((4, 2)), np.zeros(4)), "shape"),
    (lambda: MinibatchLogistic(np.zeros((4, 2)), np.zeros(4), batch_size=5), "batch_size"),
    (lambda: MinibatchLogistic(np.zeros((4, 2)), np.zeros(4), batch_size=0), "batch_size"),
    (lambda: EpochSampler(10, 2, seed=-1), "seed"),
])
def test_bad_inputs_raise_clear_errors(call, match):
    with pytest.raises(ValueError, match=match):
        call()
