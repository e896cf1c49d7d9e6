"""Checks for lesson 11: the logistic Hessian and the condition number before and after standardising."""
from __future__ import annotations

import functools

import numpy as np

from ..datasets import ticket_triage
from ..logistic import fit_newton, sigmoid
from ..logistic import logistic_hessian as logistic_hessian_of
from .framework import MISSING, Wrong, call_blocked, check, close, diagnose, get, get_callable, scalar, untouched, vector
from .parameters import TICKETS_10


def read_only(a):
    a = np.array(a, dtype=np.float64)
    a.flags.writeable = False
    return a


@functools.lru_cache(maxsize=1)
def _tickets_10():
    """Lesson 11's training rows, labels and optimum: (X, y, w_star), read-only, computed once."""
    data = ticket_triage(**TICKETS_10)
    return read_only(data.X_train), read_only(data.y_train), read_only(fit_newton(data.X_train, data.y_train))


def _hessian_cases():
    """Named cases (name, w, X) for logistic_hessian."""
    X_lesson, _, w_lesson = _tickets_10()
    five = np.array([[1.0, 2.0], [-0.5, 1.0], [3.0, -1.0], [0.0, -2.0], [1.5, 0.5]])
    three = np.random.default_rng(10).normal(0.0, 1.5, size=(40, 3))
    return [
        ("w = 0, where every p(1 - p) is 1/4", np.zeros(2), five),
        ("five rows, away from the optimum", np.array([0.8, -0.6]), five),
        ("the lesson's training rows at w_star", np.array(w_lesson), np.array(X_lesson)),
        ("three features", np.array([0.5, -1.0, 2.0]), three),
    ]


def _hessian_variants(w, X):
    """Outputs of common mistakes for one case, each with its message."""
    n = X.shape[0]
    p = sigmoid(X @ w)
    weights = p * (1 - p)
    plain = X.T @ X
    weighted = (X * weights[:, None]).T @ X
    out = [
        (plain / n, "this is X^T X / n: the weights are missing. Each row's outer product x_i x_i^T is "
                    "weighted by p_i (1 - p_i), the slope of the sigmoid at z_i = w . x_i."),
        (plain, "this is X^T X: both the weights p_i (1 - p_i) and the division by n are missing."),
        ((X * p[:, None]).T @ X / n, "the rows are weighted by p_i; the slope of the sigmoid, and so the "
                                     "weight, is p_i (1 - p_i)."),
        ((X * weights[:, None]).T @ (X * weights[:, None]) / n,
         "the weights p_i (1 - p_i) multiply both factors, so they end up squared; weight each outer "
         "product x_i x_i^T once."),
        (float(np.mean(weights)) * plain / n, "every row got the same, average weight; each row needs its own "
                                              "weight p_i (1 - p_i)."),
        (-weighted / n, "the Hessian has the wrong sign: the mean logistic loss is convex, so its diagonal "
                        "entries are positive."),
    ]
    if n > 1:
        out.append((weighted, "it is not divided by n: the loss is a mean over the rows, so its Hessian is a "
                              "mean too (yours is the sum over the rows)."))
    return out


def _entry_labels(d: int) -> list:
    return [f"entry [{j}, {k}]" for j in range(d) for k in range(d)]


@check("the Hessian of logistic regression")
def logistic_hessian(ns):
    """`hessian(w, X)` -> the (d, d) Hessian of the mean logistic loss at w, for X of shape (n, d)."""
    fn = get_callable(ns, "hessian")
    for case, w, X in _hessian_cases():
        n, d = X.shape
        expected = logistic_hessian_of(w, X)
        kept = [w.copy(), X.copy()]
        out = call_blocked(fn, "hessian", case, ("logistic_hessian",), *kept)
        untouched([w, X], kept, "hessian", case, ("w", "X"),
                   hint="Leave the data and the weights as they were; build new arrays instead.")
        prefix = f"case '{case}': "
        if out is None:
            raise Wrong(f"{prefix}`hessian` returned None: is the `return` line missing?")
        H = vector(out, "hessian(w, X)")
        if H.shape == (n, n) and n != d:
            raise Wrong(f"{prefix}`hessian(w, X)` is {n} x {n}, one entry per pair of rows ({n} rows). The Hessian "
                         f"has one row and one column per weight: {d} x {d}, from X^T (...) X, not X (...) X^T.")
        if H.shape != (d, d):
            raise Wrong(f"{prefix}`hessian(w, X)` has shape {H.shape}; for {d} weights it should be ({d}, {d}).")
        scale = float(np.max(np.abs(expected)))
        asym = [(j, k) for j in range(d) for k in range(j + 1, d)
                if not np.isclose(H[j, k], H[k, j], rtol=1e-9, atol=1e-12 * scale)]
        if asym:
            j, k = asym[0]
            raise Wrong(f"{prefix}`hessian(w, X)` is not symmetric: entry [{j}, {k}] differs from entry [{k}, {j}]. "
                         "Second derivatives don't depend on their order: H[j, k] = (1/n) sum_i p_i (1 - p_i) "
                         "x_ij x_ik reads the same with j and k swapped.")
        if close(H, expected, rtol=1e-8, atol=1e-12 * scale):
            continue
        for candidate, message in _hessian_variants(w, X):
            if close(H, candidate, rtol=1e-8, atol=1e-12 * scale):
                raise Wrong(prefix + message)
        diagnose(H, expected, "hessian(w, X)", labels=_entry_labels(d), rtol=1e-8, atol=1e-12 * scale,
                  prefix=prefix)
    return "Symmetric, weighted by p(1 - p), a mean over the rows: it matches the library on every case."


def _kappa(H) -> float:
    eig = np.linalg.eigvalsh(H)
    return float(eig[-1] / eig[0])


def _diagonal_ratio(H) -> float:
    diag = np.diag(H)
    return float(diag.max() / diag.min())


@functools.lru_cache(maxsize=1)
def _kappas_10():
    """(kappa_raw, kappa_std, known mistakes for each) on lesson 11's training rows."""
    X, y, w = (np.array(a) for a in _tickets_10())
    n = X.shape[0]
    s = X.std(axis=0)
    Xs = X / s
    H, Hs = logistic_hessian_of(w, X), logistic_hessian_of(w * s, Xs)
    kappa_raw, kappa_std = _kappa(H), _kappa(Hs)
    Xc = (X - X.mean(axis=0)) / s
    unweighted = ("the condition number of X^T X / n, the Hessian without its weights p(1 - p) (or the Hessian "
                  "at w = 0, where every weight is 1/4)")
    raw_known = [
        (_kappa(X.T @ X / n), f"`kappa_raw` is {unweighted}. Does exercise 1's check pass, and is your "
                              "`hessian` evaluated at `w_star`?"),
        (_kappa((X * sigmoid(X @ w)[:, None]).T @ X / n),
         "`kappa_raw` comes from a Hessian whose rows are weighted by p instead of p(1 - p); does exercise 1's "
         "check pass?"),
        (1.0 / kappa_raw, "`kappa_raw` is the smallest eigenvalue over the largest; the condition number is the "
                          "largest over the smallest (so it is at least 1)."),
        (_diagonal_ratio(H), "`kappa_raw` is the ratio of the Hessian's diagonal entries. The condition number is "
                             "the ratio of its eigenvalues, which the off-diagonal entries move too."),
        (float(np.linalg.cond(X)), "`kappa_raw` is the condition number of the data matrix X; the question asks "
                                   "for the Hessian's, at `w_star`."),
    ]
    std_known = [
        (_kappa(logistic_hessian_of(w, Xs)),
         "`kappa_std` is evaluated at `w_star`, the optimum in raw units. In standardised units the same model "
         "has other weights: which w keeps every w . x unchanged once feature j is divided by s_j?"),
        (_kappa(logistic_hessian_of(w / s, Xs)),
         "`kappa_std` is evaluated at w_star / s: the weights moved the wrong way. Dividing feature j by s_j has "
         "to be undone by weight j so that every w . x stays the same."),
        (_kappa(Xs.T @ Xs / n), "`kappa_std` is the condition number at w = 0 (or without the weights p(1 - p)); "
                                "evaluate the Hessian at the optimum of the standardised model."),
        (_kappa(logistic_hessian_of(w / s, X * s)),
         "the features were multiplied by their standard deviations; standardising divides each one by its s_j."),
        (_kappa(logistic_hessian_of(w * s, Xc)),
         "the features were centred (mean subtracted) before dividing by s. The lesson only divides by s: the "
         "model has no intercept, and centring changes the data and moves the optimum."),
        (_kappa(logistic_hessian_of(fit_newton(Xc, y), Xc)),
         "the features were centred (mean subtracted) before dividing by s. The lesson only divides by s: the "
         "model has no intercept, and centring changes the data and moves the optimum."),
        (kappa_raw, "`kappa_std` equals the raw condition number: compute the Hessian on the standardised inputs "
                    "(each column of X divided by its standard deviation)."),
        (1.0 / kappa_std, "`kappa_std` is the smallest eigenvalue over the largest; the condition number is the "
                          "largest over the smallest (so it is at least 1)."),
        (_diagonal_ratio(Hs), "`kappa_std` is the ratio of the Hessian's diagonal entries. The condition number is "
                              "the ratio of its eigenvalues, which the off-diagonal entries move too."),
        (float(np.linalg.cond(Xs)), "`kappa_std` is the condition number of the standardised data matrix; the "
                                    "question asks for the Hessian's."),
    ]
    return kappa_raw, kappa_std, raw_known, std_known


def _check_kappa(value, expected, name, known):
    if close(value, expected, rtol=1e-6):
        return
    for candidate, message in known:
        if close(value, candidate, rtol=1e-6):
            raise Wrong(message)
    if value < 1:
        raise Wrong(f"`{name}` is below 1. A condition number is the largest eigenvalue over the smallest, so "
                     "it is at least 1.")
    diagnose(value, expected, name, rtol=1e-6)


@check("the condition number before and after standardising")
def hessian_condition_numbers(ns):
    """`kappa_raw`, `kappa_std`: the Hessian's condition number at the optimum, raw and standardised inputs."""
    kappa_raw, kappa_std, raw_known, std_known = _kappas_10()
    raw = scalar(get(ns, "kappa_raw"), "kappa_raw")
    if not close(raw, kappa_raw, rtol=1e-6) and close(raw, kappa_std, rtol=1e-6):
        other = ns.get("kappa_std", MISSING)
        try:
            swapped = other is not MISSING and close(scalar(other, "kappa_std"), kappa_raw, rtol=1e-6)
        except Wrong:
            swapped = False
        if swapped:
            raise Wrong("`kappa_raw` and `kappa_std` are swapped: `kappa_raw` belongs to the raw inputs X.")
        raise Wrong("`kappa_raw` is the condition number for the standardised inputs; it should be the one for "
                     "the raw inputs X.")
    _check_kappa(raw, kappa_raw, "kappa_raw", raw_known)
    std = scalar(get(ns, "kappa_std"), "kappa_std")
    _check_kappa(std, kappa_std, "kappa_std", std_known)
    return "Same model, same optimum, new units: the conditioning went from bad to nearly round."
