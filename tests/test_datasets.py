"""Unit tests of lessons_lib.datasets: the ticket-triage data of lesson 11."""
from __future__ import annotations

import numpy as np
import pytest

from lessons_lib.datasets import FEATURE_NAMES, TicketData, ticket_triage, train_val_split
from lessons_lib.logistic import LogisticSurface


@pytest.fixture(scope="module")
def data() -> TicketData:
    return ticket_triage()


def test_same_seed_gives_the_same_rows():
    a, b = ticket_triage(seed=3), ticket_triage(seed=3)
    for name in ("X_train", "y_train", "X_val", "y_val"):
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name))


def test_different_seeds_give_different_rows():
    a, b = ticket_triage(seed=0), ticket_triage(seed=1)
    assert not np.array_equal(a.X_train, b.X_train)


def test_shapes_and_split_sizes(data):
    assert data.X_train.shape == (2250, 2) and data.y_train.shape == (2250,)
    assert data.X_val.shape == (750, 2) and data.y_val.shape == (750,)
    assert (data.n_train, data.n_val) == (2250, 750)
    assert data.feature_names == FEATURE_NAMES == ("signal", "contrast")
    assert data.true_weights == (1.0, 4.0) and data.seed == 0
    small = ticket_triage(n=101, val_fraction=0.2)
    assert (small.n_train, small.n_val) == (81, 20)


def test_split_is_a_partition_of_the_rows():
    X = np.arange(40, dtype=float).reshape(20, 2)
    y = (np.arange(20) % 2).astype(float)
    Xt, yt, Xv, yv = train_val_split(X, y, val_fraction=0.25, seed=5)
    assert len(Xv) == 5 and len(Xt) == 15
    rows = np.vstack([Xt, Xv])
    np.testing.assert_array_equal(np.sort(rows[:, 0]), X[:, 0])      # every row exactly once
    np.testing.assert_array_equal(np.concatenate([yt, yv]), (rows[:, 0] / 2) % 2)  # labels follow their rows
    again = train_val_split(X, y, val_fraction=0.25, seed=5)
    np.testing.assert_array_equal(again[2], Xv)


def test_labels_and_class_balance(data):
    y = np.concatenate([data.y_train, data.y_val])
    assert set(np.unique(y).tolist()) == {0.0, 1.0}
    assert 0.45 < y.mean() < 0.55


def test_features_have_the_documented_shape(data):
    X = np.vstack([data.X_train, data.X_val])
    active = X[:, 1] != 0
    assert abs(active.mean() - 0.15) < 0.03                 # the contrast is rare
    assert abs(X[:, 0].std() - 2.0) < 0.1                    # the signal is large
    assert abs(X[active, 1].std() - 0.4) < 0.05              # the contrast is small when present
    assert np.all(X[:, 0] != 0)                              # the signal is on every ticket
    assert abs(X.mean(axis=0)).max() < 0.1                   # centred


def test_hessian_at_the_optimum_is_badly_conditioned():
    kappas = []
    for seed in range(4):
        d = ticket_triage(seed=seed)
        kappas.append(LogisticSurface(d.X_train, d.y_train).condition_number)
        standardised = LogisticSurface(d.X_train / d.X_train.std(axis=0), d.y_train)
        assert standardised.condition_number < 3
    assert all(30 < k < 300 for k in kappas), kappas
    assert round(kappas[0], 1) == 107.9                      # the number lesson 11 prints


def test_the_contrast_matters_although_it_is_flat(data):
    w_star = LogisticSurface(data.X_train, data.y_train).optimum
    assert w_star[1] > 2 * w_star[0] > 0                     # larger weight, smaller curvature


@pytest.mark.parametrize("kwargs, name", [
    ({"n": 5}, "n"), ({"n": 100.0}, "n"), ({"seed": -1}, "seed"), ({"seed": 1.5}, "seed"),
    ({"signal_scale": 0}, "signal_scale"), ({"contrast_scale": -1}, "contrast_scale"),
    ({"rare_rate": 0}, "rare_rate"), ({"rare_rate": 1.5}, "rare_rate"),
    ({"label_noise": 0.5}, "label_noise"), ({"label_noise": -0.1}, "label_noise"),
    ({"val_fraction": 0}, "val_fraction"), ({"val_fraction": 1}, "val_fraction"),
    ({"true_weights": (1.0, 2.0, 3.0)}, "true_weights"), ({"true_weights": (1.0, np.nan)}, "true_weights"),
    ({"rare_rate": "often"}, "rare_rate"),
])
def test_bad_arguments_raise_a_clear_error(kwargs, name):
    with pytest.raises(ValueError, match=name):
        ticket_triage(**kwargs)


def test_split_validates_its_inputs():
    X, y = np.zeros((10, 2)), np.zeros(10)
    with pytest.raises(ValueError, match="X must be a 2-D"):
        train_val_split(np.zeros(10), y)
    with pytest.raises(ValueError, match="one label per row"):
        train_val_split(X, np.zeros(9))
    with pytest.raises(ValueError, match="at least 2 rows"):
        train_val_split(np.zeros((1, 2)), np.zeros(1))
    with pytest.raises(ValueError, match="val_fraction"):
        train_val_split(X, y, val_fraction=1.2)


def test_rare_rate_one_and_no_label_noise_are_allowed():
    d = ticket_triage(n=200, rare_rate=1.0, label_noise=0.0)
    assert np.all(d.X_train[:, 1] != 0)
