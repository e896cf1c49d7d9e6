"""Checks for lesson 12: the initial loss ln K, the warm-restarts rate, a gradient-accumulation step.

    initial loss      -ln(1/K) = ln K for a softmax over K classes at zero weights
    warm restarts     lr = eta_min + (lr - eta_min) (1 + cos(pi T_cur / T_i)) / 2, T_i = T_0 T_mult^i
    accumulation      (1/k) sum_j grad L_j(w) over k equal micro-batches = grad L(w) of the full batch
"""
from __future__ import annotations

import functools
import math

import numpy as np

from ..datasets import ticket_triage
from ..logistic import fit_newton, logistic_grad, logistic_loss
from ..lr_schedulers import CosineAnnealingWarmRestarts
from .framework import (
    Wrong, blocked_while_calling, call, check, close, diagnose, get, get_callable, scalar, type_name, untouched,
    vector,
)
from .parameters import INITIAL_LOSS_CLASSES, TICKETS_12


@functools.lru_cache(maxsize=1)
def _tickets_12():
    """Lesson 12's training rows and labels, the loss at w = 0 and at the optimum (computed once)."""
    data = ticket_triage(**TICKETS_12)
    X, y = data.X_train, data.y_train
    return logistic_loss(np.zeros(X.shape[1]), X, y), logistic_loss(fit_newton(X, y), X, y), len(y)


def _initial_loss_known(K: int, name: str):
    """Known slips for ln K, each with its message."""
    return [
        (math.log10(K), f"`{name}` uses the base-10 logarithm; cross-entropy uses the natural log (math.log, "
                        "np.log), as torch's CrossEntropyLoss does."),
        (math.log2(K), f"`{name}` uses the base-2 logarithm (bits); cross-entropy uses the natural log (nats)."),
        (1.0 / K, f"`{name}` is the probability the model gives each class; the loss is minus the log of the "
                  "probability of the right class."),
        (1.0 - 1.0 / K, f"`{name}` is the probability of the wrong classes; the loss is minus the log of the "
                        "probability of the right class."),
        (-math.log(K), f"`{name}` is negative: the loss is MINUS the log of a probability below 1, so it is "
                       "positive."),
    ]


@check("the initial loss for K classes")
def initial_loss(ns):
    """`initial_loss_2`, `initial_loss_10`: ln K; `ticket_loss_w0`: the ticket model's loss at w = 0."""
    values = {}
    for K in INITIAL_LOSS_CLASSES:
        name = f"initial_loss_{K}"
        values[K] = scalar(get(ns, name), name)
    (k_small, k_large) = INITIAL_LOSS_CLASSES
    if close(values[k_small], math.log(k_large)) and close(values[k_large], math.log(k_small)):
        raise Wrong(f"`initial_loss_{k_small}` and `initial_loss_{k_large}` are swapped: more classes, a "
                    "smaller probability for each, a larger loss.")
    for K in INITIAL_LOSS_CLASSES:
        name = f"initial_loss_{K}"
        diagnose(values[K], math.log(K), name, rtol=1e-6, known=_initial_loss_known(K, name))
    at_zero, at_optimum, n = _tickets_12()
    measured = scalar(get(ns, "ticket_loss_w0"), "ticket_loss_w0")
    diagnose(measured, at_zero, "ticket_loss_w0", rtol=1e-6, known=[
        (at_optimum, "`ticket_loss_w0` is the loss at the optimum (the trained model); the question asks for "
                     "the loss at w = 0, before training."),
        (n * at_zero, "`ticket_loss_w0` is a sum over the training rows; logistic_loss is a mean over them."),
        (0.5, "`ticket_loss_w0` is the probability sigmoid(0) the model gives each ticket; the loss is minus "
              "its log."),
        *_initial_loss_known(2, "ticket_loss_w0")[:2],
    ])
    return "ln K at zero weights, and the ticket model measures ln 2: a first loss far from it means a bug."


# ------------------------------------------------------------------ warm restarts

def _library_rate(epoch, lr, T_0, T_mult, eta_min):
    sched = CosineAnnealingWarmRestarts(lr, T_0, T_mult, eta_min)
    sched.step(epoch)
    return sched.lr


def _cycle(epoch, T_0, T_mult, extra=0):
    """(T_cur, T_i) when each cycle lasts T_i + extra epochs (extra = 0: the right cycles)."""
    start, length = 0, T_0
    while epoch >= start + length + extra:
        start, length = start + length + extra, length * T_mult
    return epoch - start, length


def _cosine(t_cur, t_i, lr, eta_min, phase=math.pi):
    return eta_min + (lr - eta_min) * (1 + math.cos(phase * t_cur / t_i)) / 2


def _torch_log_cycle(epoch, T_0, T_mult):
    """torch's step(epoch): the cycle from a floating-point logarithm (which can round down)."""
    if epoch < T_0 or T_mult == 1:
        return (epoch % T_0, T_0) if epoch >= T_0 else (epoch, T_0)
    n = int(math.log(epoch / T_0 * (T_mult - 1) + 1, T_mult))
    return epoch - T_0 * (T_mult ** n - 1) / (T_mult - 1), T_0 * T_mult ** n


def _restarts_variants(lr, T_0, T_mult, eta_min):
    """(rate function of the epoch, message) for the named mistakes."""
    def boundary_in_old_cycle(e):          # `epoch > start + length`: the restart epoch ends the old cycle
        start, length = 0, T_0
        while e > start + length:
            start, length = start + length, length * T_mult
        return _cosine(e - start, length, lr, eta_min)

    late = ("the restart comes one epoch late: T_cur runs 0, 1, ..., T_i - 1 in a cycle and never reaches T_i; "
            "the epoch where it would is already the restart, back at lr.")
    out = [
        (lambda e: _cosine(*_cycle(e, T_0, T_mult), lr, eta_min, phase=180.0),
         "the cosine got degrees: math.cos and np.cos take radians, so half a turn is pi, not 180."),
        (lambda e: eta_min + (lr - eta_min) * (1 - math.cos(math.pi * _cycle(e, T_0, T_mult)[0]
                                                             / _cycle(e, T_0, T_mult)[1])) / 2,
         "the cosine has the wrong phase: each cycle starts at eta_min and rises. At a restart (T_cur = 0) the "
         "rate is lr, since (1 + cos 0) / 2 = 1, and it falls to eta_min."),
        (lambda e: _cosine(*_cycle(e, T_0, T_mult), lr, 0.0),
         "eta_min is forgotten: the cosine falls from lr to eta_min, not to 0."),
        (lambda e: eta_min + lr * (1 + math.cos(math.pi * _cycle(e, T_0, T_mult)[0] / _cycle(e, T_0, T_mult)[1])) / 2,
         "eta_min is added but not taken off the cosine's height: the height is lr - eta_min, so that a restart "
         "starts at lr, not above it."),
        (lambda e: _cosine(*_cycle(e, T_0, 1), lr, eta_min),
         "T_mult is ignored: every cycle is T_0 epochs long, but each restart makes the next cycle T_mult times "
         "longer (T_0, T_0 T_mult, T_0 T_mult^2, ...)."),
        (lambda e: _cosine(_cycle(e, T_0, T_mult)[0], T_0, lr, eta_min),
         "the restarts come at the right epochs, but the cosine spans T_0 epochs in every cycle; it spans the "
         "current cycle's length T_i."),
        (lambda e: _cosine(*_cycle(e, T_0, T_mult, extra=1), lr, eta_min), late),
        (boundary_in_old_cycle, late),
        (lambda e: _cosine(*_torch_log_cycle(e, T_0, T_mult), lr, eta_min),
         "at an exact restart your cycle count rounds down: a floating-point logarithm such as math.log(243, 3) "
         "gives 4.999..., and int() makes it 4 (torch's step(epoch) does the same). Count the cycles with "
         "integer sums, T_0 + T_0 T_mult + ..., instead."),
        (lambda e: _cosine(*_cycle(math.floor(e), T_0, T_mult), lr, eta_min),
         "fractional epochs are rounded down: within an epoch the rate keeps falling, since T_cur counts the "
         "epochs since the last restart, fractions included."),
    ]
    if T_0 >= 2:
        out.append((lambda e: _cosine(*_cycle(e, T_0, T_mult, extra=-1), lr, eta_min),
                    "the restart comes one epoch early: a cycle holds T_i epochs (T_cur = 0, 1, ..., T_i - 1); "
                    "restart when T_cur reaches T_i, not T_i - 1."))
    return out


def _warm_restarts_cases():
    """Named cases: (name, lr, T_0, T_mult, eta_min, epochs)."""
    return [
        ("T_0 = 5, T_mult = 1, eta_min = 0, epochs 0 to 20", 0.1, 5, 1, 0.0, list(range(21))),
        ("T_0 = 3, T_mult = 2, eta_min = 0.01, epochs 0 to 45", 0.1, 3, 2, 0.01, list(range(46))),
        ("fractional epochs (4 batches per epoch), T_0 = 2, T_mult = 3, eta_min = 0.001, epochs 0 to 30",
         0.05, 2, 3, 0.001, [i / 4 for i in range(121)]),
        ("T_0 = 1, T_mult = 3, eta_min = 0.001, epochs 0 to 125 (cycles start at 1, 4, 13, 40 and 121)",
         0.1, 1, 3, 0.001, list(range(126))),
    ]


def _restarts(epochs, values, lr):
    """The epochs where the rate jumps back to lr (the restarts)."""
    return [e for e, a, b in zip(epochs[1:], values, values[1:]) if close(b, lr, rtol=1e-9) and a < b - 1e-9 * lr]


def _compare_restarts(ours, theirs, prefix):
    """Name the first restart that comes at another epoch than the library's (if one does)."""
    for i, (right, given) in enumerate(zip(ours, theirs)):
        if right != given:
            when = "late" if given > right else "early"
            what = f"one epoch too {when}" if abs(given - right) == 1 else \
                f"too {when}" + (" (or is missing)" if given > right else "")
            raise Wrong(f"{prefix}restart number {i + 1} comes {what}: the cycles last T_0, T_0 T_mult, "
                        "T_0 T_mult^2, ... epochs, and T_cur runs 0, 1, ..., T_i - 1 in each.")


@check("the rate of CosineAnnealingWarmRestarts")
def warm_restarts(ns):
    """`warm_restarts_lr(epoch, lr, T_0, T_mult, eta_min)` -> the rate at an (integer or fractional) epoch."""
    fn = get_callable(ns, "warm_restarts_lr")
    for case, lr, T_0, T_mult, eta_min, epochs in _warm_restarts_cases():
        expected = [_library_rate(e, lr, T_0, T_mult, eta_min) for e in epochs]
        prefix = f"case '{case}': "
        got = []
        with blocked_while_calling(fn, "lr_schedulers"):
            for e in epochs:
                value = call(fn, "warm_restarts_lr", case, e, lr, T_0, T_mult, eta_min)
                try:
                    got.append(scalar(value, f"warm_restarts_lr({e}, ...)"))
                except Wrong as exc:
                    raise Wrong(prefix + str(exc)) from None
        if close(got, expected, rtol=1e-9, atol=1e-15):
            continue
        for variant, message in _restarts_variants(lr, T_0, T_mult, eta_min):
            if close(got, [variant(e) for e in epochs], rtol=1e-9, atol=1e-15):
                raise Wrong(prefix + message)
        if not close(got[0], expected[0], rtol=1e-9):
            hint = " (the phase of the cosine?)" if close(got[0], eta_min, rtol=1e-9) else ""
            diagnose(got[0], expected[0], "warm_restarts_lr(0, ...)", prefix=f"{prefix}at epoch 0, the start{hint}: ")
        _compare_restarts(_restarts(epochs, expected, lr), _restarts(epochs, got, lr), prefix)
        i = next(i for i, (a, b) in enumerate(zip(got, expected)) if not close(a, b, rtol=1e-9, atol=1e-15))
        diagnose(got[i], expected[i], f"warm_restarts_lr({epochs[i]}, ...)", rtol=1e-9, atol=1e-15,
                 prefix=f"{prefix}at epoch {epochs[i]} (the epochs before it are right): ")
    return "Integer and fractional epochs, growing cycles, eta_min: all match the library's scheduler."


# ------------------------------------------------------------------ gradient accumulation

def _accumulation_cases():
    """Named cases: (name, w, X, y, k); X's rows are a multiple of k except in the last case."""
    rng = np.random.default_rng(12)
    data = ticket_triage(**TICKETS_12)

    def batch(n, d):
        X = rng.normal(0.0, 1.5, size=(n, d))
        return X, (rng.random(n) < 0.5).astype(float)

    X12, y12 = batch(12, 2)
    X24, y24 = batch(24, 3)
    X6, y6 = batch(6, 2)
    X10, y10 = batch(10, 2)
    return [
        ("12 rows, k = 3", np.array([0.7, -1.2]), X12, y12, 3),
        ("three features, 24 rows, k = 4", np.array([0.3, 0.8, -0.5]), X24, y24, 4),
        ("the lesson's 2250 training rows, k = 5", np.array([0.5, 1.5]), data.X_train, data.y_train, 5),
        ("k = 1: one micro-batch, the whole batch", np.array([-0.4, 2.0]), X6, y6, 1),
        ("6 rows, k = 6: one row per micro-batch", np.array([1.1, 0.2]), X6, y6, 6),
        ("10 rows, k = 4: 10 is not a multiple of 4", np.array([0.6, -0.3]), X10, y10, 4),
    ]


def _micro(X, y, k):
    return [(X[i * (len(X) // k):(i + 1) * (len(X) // k)], y[i * (len(X) // k):(i + 1) * (len(X) // k)])
            for i in range(k)]


def _accumulation_known(w, X, y, k):
    """(candidate, message) pairs for the named mistakes on one case with n a multiple of k."""
    n = len(X)
    m = n // k
    grads = [logistic_grad(w, Xj, yj) for Xj, yj in _micro(X, y, k)]
    total = np.sum(grads, axis=0)
    again = ("divides by the batch size again: logistic_grad already returns the mean over its rows, so each "
             "micro-batch's gradient needs no further division by its size.")
    out = [
        (total, "forgot to divide by k: that is the sum of the k micro-batches' mean gradients, not their mean."),
        (total / (k * m), again), (total / n, again), (total / k / n, again), (total / m, again),
    ]
    if k != m:
        chunks = [logistic_grad(w, X[i:i + k], y[i:i + k]) for i in range(0, n, k)]
        out.append((np.sum(chunks, axis=0) / k,
                    "the micro-batches hold k rows each (n / k of them); the exercise asks for k micro-batches of "
                    "n / k rows each."))
    return out


def _losses(w, X, y, k):
    """Sums and means of the micro-batches' losses: what summing losses instead of gradients gives."""
    losses = [logistic_loss(w, Xj, yj) for Xj, yj in _micro(X, y, k)]
    return [sum(losses), sum(losses) / k, logistic_loss(w, X, y)]


@check("a gradient-accumulation step")
def gradient_accumulation(ns):
    """`accumulated_grad(w, X, y, k)`: the mean of the k equal micro-batches' gradients (= the full gradient)."""
    fn = get_callable(ns, "accumulated_grad")
    for case, w, X, y, k in _accumulation_cases():
        n, d = X.shape
        prefix = f"case '{case}': "
        kept = [w.copy(), X.copy(), y.copy()]
        if n % k:
            try:
                out = fn(*kept, k)
            except ValueError:
                continue
            except Exception:              # let call() name it (NotImplementedError, a crash)
                out = call(fn, "accumulated_grad", case, *kept, k)
            untouched([w, X, y], kept, "accumulated_grad", case, ("w", "X", "y"),
                      hint="Leave the data and the weights as they were; slice them instead.")
            split = [logistic_grad(w, Xj, yj) for Xj, yj in zip(np.array_split(X, k), np.array_split(y, k))]
            try:
                given = vector(out, "accumulated_grad(w, X, y, k)")
            except Wrong:
                given = None
            if given is not None and close(given, np.mean(split, axis=0)):
                raise Wrong(prefix + "unequal micro-batches: with 10 rows in 4 micro-batches some hold 3 rows and "
                            "some 2, and the mean of their mean gradients weighs a row of a small one more than a "
                            "row of a large one, so it is not the full batch's gradient. Raise a ValueError "
                            "naming n and k when n is not a multiple of k.")
            raise Wrong(prefix + f"`accumulated_grad` returned a {type_name(out)}; with n not a multiple of k the "
                        "micro-batches can't all be equal: raise a ValueError naming n and k.")
        out = call(fn, "accumulated_grad", case, *kept, k)
        untouched([w, X, y], kept, "accumulated_grad", case, ("w", "X", "y"),
                  hint="Leave the data and the weights as they were; slice them instead.")
        if out is None:
            raise Wrong(f"{prefix}`accumulated_grad` returned None: is the `return` line missing?")
        if np.ndim(out) == 0 and not isinstance(out, (str, bytes)):
            value = scalar(out, "accumulated_grad(w, X, y, k)")
            if any(close(value, loss) for loss in _losses(w, X, y, k)):
                raise Wrong(prefix + "`accumulated_grad` returns one number, a loss: it sums the losses instead of "
                            "the gradients. Accumulate each micro-batch's gradient (logistic_grad), a vector "
                            "with one entry per weight.")
        g = vector(out, "accumulated_grad(w, X, y, k)")
        if g.shape != (d,):
            raise Wrong(f"{prefix}`accumulated_grad(w, X, y, k)` has shape {g.shape}; the gradient has one entry "
                        f"per weight, shape ({d},).")
        expected = logistic_grad(w, X, y)
        diagnose(g, expected, "accumulated_grad(w, X, y, k)", rtol=1e-9, atol=1e-15, prefix=prefix,
                 labels=[f"weight {j}" for j in range(d)], known=_accumulation_known(w, X, y, k))
    return "k equal micro-batches, their gradients summed and divided by k: the full batch's gradient, every time."
