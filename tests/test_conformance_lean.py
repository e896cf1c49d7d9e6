"""Conformance of Adafactor and Muon with torch.optim (CPU, single-tensor code paths).

Adafactor (float64, a matrix (5, 3), its transpose and a vector (4,), 100 steps, several settings):
- step by step: before each torch step our optimizer gets torch's parameter and state (row_var,
  col_var, variance, step) and takes the same step; parameters and state must agree to 1e-12,
  relative to max(1, |value|). One step from an identical state: this is the claim that the rule,
  its order of operations and state are torch's, and a difference cannot compound;
- whole path: our loop against torch's from the same start, also 1e-12. Asserted because the
  relative step (alpha is a fraction of RMS(w)) and update clipping contract: rounding differences
  (torch's norms and lerp, numpy's mean) stay at 1e-16 here instead of growing.
Muon: torch always runs Newton-Schulz in bfloat16 (8 significant bits), so
- with torch's own bfloat16 iteration, one step from torch's state agrees only to bfloat16
  accuracy: |our step - torch's step| <= 2^-2 * lr_adj per entry (measured here: 0.02 to 0.14;
  entries of O are below 1, and the quintic's steep slope near 0 amplifies bfloat16's 2^-8
  rounding of small singular directions), and the momentum buffer (plain float arithmetic, not
  in bfloat16) to 1e-12 (float64) or 1e-6 (float32). The path is not asserted here (it drifts
  by up to 2e-2 over 100 steps on these settings);
- with torch's iteration patched to run in float64 (torch's own code otherwise: momentum, nesterov,
  lr adjustment, weight decay), step by step and the whole path agree to 1e-12.
These tests skip when torch is not importable; with LESSONS_REQUIRE_TORCH=1 (set by CI) a skip
is a failure (see conftest.py).
"""
from __future__ import annotations

import numpy as np
import pytest

from lessons_lib.lean import Adafactor, AdafactorState, Muon, MuonState, newton_schulz

pytestmark = pytest.mark.conformance

TOL = 1e-12
STEPS = 100


def grad_of(w):
    """A non-quadratic gradient (rows and columns of different sizes), the same in numpy and torch."""
    scale = np.arange(1, w.size + 1, dtype=np.float64).reshape(w.shape) / w.size
    return scale * (np.sin(3 * w) + w) - 0.05


def scaled_diff(a, b):
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    assert a.shape == b.shape and np.all(np.isfinite(a)) and np.all(np.isfinite(b))
    return float(np.max(np.abs(a - b) / np.maximum(1.0, np.abs(b))))


def adafactor_state_from_torch(s, ours, w):
    if not s:
        return ours.init(w)
    copy = lambda k: s[k].detach().numpy().copy() if k in s else None  # noqa: E731
    return AdafactorState(step=int(s["step"]), row_var=copy("row_var"), col_var=copy("col_var"),
                          variance=copy("variance"))


ADAFACTOR_SETTINGS = [
    {},
    {"lr": 0.05, "weight_decay": 0.1},
    {"lr": 0.3, "beta2_decay": -0.5, "eps": (1e-20, 1e-2), "d": 1.5},
    {"lr": 0.01, "maximize": True, "d": 4.0, "eps": (1e-8, 0.0)},
]
SHAPES = [(5, 3), (3, 5), (4,)]


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("settings", ADAFACTOR_SETTINGS)
def test_adafactor_matches_torch_step_by_step_and_over_100_steps(torch, shape, settings):
    rng = np.random.default_rng(sum(shape))
    w0 = rng.normal(size=shape)
    p = torch.nn.Parameter(torch.tensor(w0, dtype=torch.float64))
    ref = torch.optim.Adafactor([p], foreach=False, **settings)
    ours = Adafactor(**settings)
    w, state = w0.copy(), ours.init(w0)
    worst_step = worst_path = 0.0
    for _ in range(STEPS):
        tw = p.detach().numpy().copy()
        g_t, g_path = grad_of(tw), grad_of(w)
        one, one_state = ours.step(tw, g_t, adafactor_state_from_torch(ref.state[p], ours, tw))
        p.grad = torch.tensor(g_t)
        ref.step()
        tw_new, ts = p.detach().numpy(), adafactor_state_from_torch(ref.state[p], ours, tw)
        diffs = [scaled_diff(one, tw_new)] + [scaled_diff(a, b) for a, b in zip(one_state[1:], ts[1:]) if b is not None]
        assert one_state.step == ts.step
        worst_step = max(worst_step, *diffs)
        w, state = ours.step(w, g_path, state)
        worst_path = max(worst_path, scaled_diff(w, tw_new))
    assert worst_step <= TOL, f"one step from torch's state differs by {worst_step:.2e}"
    assert worst_path <= TOL, f"the 100-step path differs by {worst_path:.2e}"
    assert np.max(np.abs(w - w0)) > 1e-3        # it moved: the comparison is not of two standing starts


def test_adafactor_matches_torch_in_float32_to_float32_rounding(torch):
    w0 = np.random.default_rng(1).normal(size=(6, 4)).astype(np.float32)
    p = torch.nn.Parameter(torch.tensor(w0))
    ref, ours = torch.optim.Adafactor([p], lr=0.05, foreach=False), Adafactor(lr=0.05)
    w, state = w0.copy(), ours.init(w0)
    for _ in range(50):
        g = grad_of(w.astype(np.float64)).astype(np.float32)
        p.grad = torch.tensor(grad_of(p.detach().numpy().astype(np.float64)).astype(np.float32))
        ref.step()
        w, state = ours.step(w, g, state)
    assert w.dtype == np.float32 and state.row_var.dtype == np.float32
    assert scaled_diff(w, p.detach().numpy()) <= 1e-5   # float32 rounding (eps1 = 1.2e-7) over 50 steps


# ---------------------------------------------------------------- Muon

def ns_float64(torch):
    """torch's _zeropower_via_newtonschulz with the cast to bfloat16 removed (otherwise its code)."""
    def zeropower(grad, ns_coefficients, ns_steps, eps):
        a, b, c = ns_coefficients
        X = grad.clone()
        if grad.size(0) > grad.size(1):
            X = X.T
        X.div_(X.norm().clamp(min=eps))
        for _ in range(ns_steps):
            A = X @ X.T
            B = torch.addmm(A, A, A, beta=b, alpha=c)
            X = torch.addmm(X, B, X, beta=a)
        if grad.size(0) > grad.size(1):
            X = X.T
        return X
    return zeropower


MUON_SETTINGS = [
    {},
    {"lr": 0.02, "momentum": 0.9, "nesterov": False, "weight_decay": 0.0},
    {"lr": 0.05, "adjust_lr_fn": "match_rms_adamw", "ns_steps": 3},
    {"lr": 0.01, "momentum": 0.0, "ns_coefficients": (2.0, -1.5, 0.5), "adjust_lr_fn": "original"},
]


def muon_compare(torch, shape, settings, dtype=np.float64):
    """Worst differences over STEPS steps: (params one step from torch's state, in units of lr_adj;
    buffer one step; whole path)."""
    rng = np.random.default_rng(shape[0] * 10 + shape[1])
    w0 = rng.normal(size=shape).astype(dtype)
    p = torch.nn.Parameter(torch.tensor(w0))
    ref, ours = torch.optim.Muon([p], **settings), Muon(**settings)
    lr_adj = ours.adjusted_lr(ours.lr, shape)
    w, state = w0.copy(), ours.init(w0)
    worst = [0.0, 0.0, 0.0]
    for _ in range(STEPS):
        tw = p.detach().numpy().copy()
        s = ref.state[p]
        start = MuonState(step=0, momentum_buffer=s["momentum_buffer"].numpy().copy()) if s else ours.init(tw)
        g_t = grad_of(tw.astype(np.float64)).astype(dtype)
        one, one_state = ours.step(tw, g_t, start)
        p.grad = torch.tensor(g_t)
        ref.step()
        worst[0] = max(worst[0], float(np.max(np.abs(one - p.detach().numpy()))) / lr_adj)
        worst[1] = max(worst[1], scaled_diff(one_state.momentum_buffer, ref.state[p]["momentum_buffer"].numpy()))
        w, state = ours.step(w, grad_of(w.astype(np.float64)).astype(dtype), state)
        worst[2] = max(worst[2], scaled_diff(w, p.detach().numpy()))
    return worst


@pytest.mark.parametrize("shape", [(6, 4), (4, 6)])
@pytest.mark.parametrize("settings", MUON_SETTINGS)
def test_muon_matches_torch_exactly_when_torchs_iteration_runs_in_float64(torch, monkeypatch, shape, settings):
    monkeypatch.setattr(torch.optim._muon, "_zeropower_via_newtonschulz", ns_float64(torch))
    step, buf, path = muon_compare(torch, shape, settings)
    assert step * Muon(**settings).adjusted_lr(Muon(**settings).lr, shape) <= TOL
    assert buf <= TOL and path <= TOL, (buf, path)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("shape", [(6, 4), (4, 6)])
@pytest.mark.parametrize("settings", MUON_SETTINGS[:3])
def test_muon_matches_torchs_bfloat16_iteration_to_bfloat16_accuracy(torch, shape, settings, dtype):
    step, buf, _ = muon_compare(torch, shape, settings, dtype)
    assert step <= 2.0 ** -2, f"one step differs by {step:.3g} * lr_adj"      # see the module docstring
    assert buf <= (TOL if dtype == np.float64 else 1e-6)      # the buffer is plain arithmetic in the param dtype


def test_newton_schulz_matches_torchs_function(torch):
    from torch.optim._muon import _zeropower_via_newtonschulz as torch_ns
    G = np.random.default_rng(3).normal(size=(7, 4)) * np.array([1.0, 0.1, 0.01, 3.0])
    coefficients = (3.4445, -4.7750, 2.0315)
    exact = ns_float64(torch)(torch.tensor(G), coefficients, 5, 1e-7).numpy()
    np.testing.assert_allclose(newton_schulz(G), exact, rtol=0, atol=TOL)
    bf16 = torch_ns(torch.tensor(G), coefficients, 5, 1e-7).double().numpy()
    assert np.max(np.abs(newton_schulz(G) - bf16)) <= 2.0 ** -5   # bfloat16's 2^-8 per op, compounded
