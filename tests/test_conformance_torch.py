"""Conformance with PyTorch 2.x (float64, CPU, single-tensor code paths).

Every comparison runs at least 100 steps from several starts and hyperparameters and
requires a max abs difference <= 1e-12. These tests skip when torch is not importable;
with LESSONS_REQUIRE_TORCH=1 (set by CI) a skip is a failure (see conftest.py).
"""
from __future__ import annotations

import math
import warnings

import numpy as np
import pytest

from lessons_lib.clipping import clip_by_global_norm, clip_runs_by_norm
from lessons_lib.adaptive import Adagrad, RMSprop
from lessons_lib.optimizers import SGD, Adam, AdamW
from lessons_lib.precision import DynamicLossScaler, to_bfloat16, to_fp16, unscale
from lessons_lib.runner import run
from lessons_lib.schedules import constant, cosine, inverse_sqrt_warmup, linear_warmup, warmup_cosine
from lessons_lib.surfaces import COURSE, Quadratic

pytestmark = pytest.mark.conformance

TOL = 1e-12
STEPS = 120
STARTS = [np.array([1.0, 1.0]), np.array([-0.7, 2.5]), np.array([0.03, -1.9])]


# ---------------------------------------------------------------- torch reference loops

def torch_trajectory(torch, make_optimizer, start, steps, surface=COURSE, lr_at=None, max_norm=None):
    """PyTorch's loop on a quadratic: positions (steps+1, d) and pre-clip norms (steps,)."""
    p = torch.nn.Parameter(torch.tensor(start, dtype=torch.float64))
    c = torch.tensor(surface.c, dtype=torch.float64)
    opt = make_optimizer([p])
    positions = [p.detach().numpy().copy()]
    norms = []
    for k in range(steps):
        opt.zero_grad()
        loss = 0.5 * (c * p * p).sum()
        loss.backward()
        if max_norm is not None:
            norms.append(float(torch.nn.utils.clip_grad_norm_([p], max_norm)))
        if lr_at is not None:
            for group in opt.param_groups:
                group["lr"] = lr_at(k)
        opt.step()
        positions.append(p.detach().numpy().copy())
    return np.array(positions), np.array(norms)


def max_diff(a, b):
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    assert a.shape == b.shape
    assert np.all(np.isfinite(a)) and np.all(np.isfinite(b))
    return float(np.max(np.abs(a - b)))


# ---------------------------------------------------------------- optimizers

SGD_SETTINGS = [
    dict(lr=0.01),
    dict(lr=0.019, weight_decay=0.05),
    dict(lr=0.01, momentum=0.9),
    dict(lr=4 / 121, momentum=81 / 121),
    dict(lr=0.015, momentum=0.8, dampening=0.5),
    dict(lr=0.012, momentum=0.9, dampening=0.9, weight_decay=0.1),
    dict(lr=0.01, momentum=0.9, nesterov=True),
    dict(lr=0.008, momentum=0.7, nesterov=True, weight_decay=0.3),
]


@pytest.mark.parametrize("settings", SGD_SETTINGS, ids=lambda s: ",".join(f"{k}={v:.4g}" for k, v in s.items()))
@pytest.mark.parametrize("start", range(len(STARTS)))
def test_sgd_matches_torch(torch, settings, start):
    trace = run(SGD(**settings), STEPS, start=STARTS[start])
    ref, _ = torch_trajectory(torch, lambda ps: torch.optim.SGD(ps, foreach=False, **settings),
                              STARTS[start], STEPS)
    assert not trace.diverged
    assert max_diff(trace.params, ref) <= TOL


ADAM_SETTINGS = [
    dict(lr=0.01),
    dict(lr=0.05, betas=(0.8, 0.99), eps=1e-6),
    dict(lr=0.003, betas=(0.95, 0.9999), eps=1e-10),
    dict(lr=0.02, betas=(0.0, 0.5), eps=1e-8),
]


@pytest.mark.parametrize("kind", ["Adam", "Adam+L2", "AdamW"])
@pytest.mark.parametrize("settings", ADAM_SETTINGS, ids=lambda s: f"lr={s['lr']}")
@pytest.mark.parametrize("start", range(len(STARTS)))
def test_adam_family_matches_torch(torch, kind, settings, start):
    settings = dict(settings)
    if kind == "Adam":
        lib, ref_cls = Adam(**settings), torch.optim.Adam
    elif kind == "Adam+L2":
        settings["weight_decay"] = 0.05
        lib, ref_cls = Adam(**settings), torch.optim.Adam
    else:
        settings["weight_decay"] = 0.1
        lib, ref_cls = AdamW(**settings), torch.optim.AdamW
    trace = run(lib, STEPS, start=STARTS[start])
    ref, _ = torch_trajectory(torch, lambda ps: ref_cls(ps, foreach=False, **settings), STARTS[start], STEPS)
    assert not trace.diverged
    assert max_diff(trace.params, ref) <= TOL


def test_adamw_default_weight_decay_matches_torch(torch):
    trace = run(AdamW(lr=0.05), STEPS)
    ref, _ = torch_trajectory(torch, lambda ps: torch.optim.AdamW(ps, lr=0.05, foreach=False), STARTS[0], STEPS)
    assert max_diff(trace.params, ref) <= TOL


def test_adam_state_matches_torch_state(torch):
    """m, v and the step count are torch's exp_avg, exp_avg_sq and step."""
    settings = dict(lr=0.02, betas=(0.9, 0.99), eps=1e-8, weight_decay=0.01)
    trace = run(AdamW(**settings), STEPS, record_states=True)
    p = torch.nn.Parameter(torch.tensor([1.0, 1.0], dtype=torch.float64))
    opt = torch.optim.AdamW([p], foreach=False, **settings)
    c = torch.tensor(COURSE.c)
    for k in range(STEPS):
        opt.zero_grad()
        (0.5 * (c * p * p).sum()).backward()
        opt.step()
        ref = opt.state[p]
        state = trace.states[k]
        assert state.step == int(ref["step"]) == k + 1
        assert max_diff(state.m, ref["exp_avg"].numpy()) <= TOL
        assert max_diff(state.v, ref["exp_avg_sq"].numpy()) <= TOL


def test_other_surface_matches_torch(torch):
    surface = Quadratic([3.0, 40.0, 0.5])
    start = np.array([1.0, -0.5, 2.0])
    settings = dict(lr=0.02, momentum=0.85, nesterov=True, weight_decay=0.01)
    trace = run(SGD(**settings), STEPS, surface=surface, start=start)
    ref, _ = torch_trajectory(torch, lambda ps: torch.optim.SGD(ps, foreach=False, **settings),
                              start, STEPS, surface=surface)
    assert max_diff(trace.params, ref) <= TOL


# ---------------------------------------------------------------- batched path vs torch one by one

def test_batched_sgd_matches_torch_run_by_run(torch):
    lr = np.array([0.005, 0.01, 0.015, 0.019, 0.008])
    momentum = np.array([0.0, 0.5, 0.9, 0.3, 0.95])
    dampening = np.array([0.0, 0.5, 0.0, 0.3, 0.1])
    weight_decay = np.array([0.0, 0.1, 0.01, 0.0, 0.2])
    start = np.array([1.0, 1.0])
    trace = run(SGD(lr=lr, momentum=momentum, dampening=dampening, weight_decay=weight_decay), STEPS,
                start=start)
    assert trace.params.shape == (STEPS + 1, 5, 2)
    for r in range(5):
        settings = dict(lr=float(lr[r]), momentum=float(momentum[r]), dampening=float(dampening[r]),
                        weight_decay=float(weight_decay[r]))
        ref, _ = torch_trajectory(torch, lambda ps: torch.optim.SGD(ps, foreach=False, **settings), start, STEPS)
        assert max_diff(trace.params[:, r], ref) <= TOL, settings


def test_batched_nesterov_from_several_starts_matches_torch(torch):
    starts = np.array(STARTS)
    lr = np.array([0.01, 0.005, 0.012])
    momentum = np.array([0.9, 0.5, 0.7])
    trace = run(SGD(lr=lr, momentum=momentum, nesterov=True), STEPS, start=starts)
    for r in range(3):
        settings = dict(lr=float(lr[r]), momentum=float(momentum[r]), nesterov=True)
        ref, _ = torch_trajectory(torch, lambda ps: torch.optim.SGD(ps, foreach=False, **settings), starts[r], STEPS)
        assert max_diff(trace.params[:, r], ref) <= TOL


@pytest.mark.parametrize("kind", ["Adam", "Adam+L2", "AdamW"])
def test_batched_adam_family_matches_torch_run_by_run(torch, kind):
    lr = np.array([0.001, 0.01, 0.05, 0.02])
    beta1 = np.array([0.9, 0.8, 0.0, 0.95])
    beta2 = np.array([0.999, 0.99, 0.9, 0.5])
    eps = np.array([1e-8, 1e-6, 1e-10, 1e-8])
    wd = np.array([0.0, 0.01, 0.1, 0.3]) if kind != "Adam" else 0.0
    cls, ref_cls = (AdamW, torch.optim.AdamW) if kind == "AdamW" else (Adam, torch.optim.Adam)
    trace = run(cls(lr=lr, betas=(beta1, beta2), eps=eps, weight_decay=wd), STEPS, start=STARTS[1])
    for r in range(4):
        settings = dict(lr=float(lr[r]), betas=(float(beta1[r]), float(beta2[r])), eps=float(eps[r]),
                        weight_decay=float(np.broadcast_to(wd, (4,))[r]))
        ref, _ = torch_trajectory(torch, lambda ps: ref_cls(ps, foreach=False, **settings), STARTS[1], STEPS)
        assert max_diff(trace.params[:, r], ref) <= TOL, settings


# ---------------------------------------------------------------- clip_grad_norm_

@pytest.mark.parametrize("seed", range(5))
def test_clip_by_global_norm_matches_clip_grad_norm(torch, seed):
    rng = np.random.default_rng(seed)
    for _ in range(40):
        d = int(rng.integers(1, 9))
        g = rng.normal(size=d) * 10.0 ** rng.uniform(-3, 2)
        max_norm = 10.0 ** rng.uniform(-2, 2)
        for error_if_nonfinite in (False, True):
            t = torch.nn.Parameter(torch.zeros(d, dtype=torch.float64))
            t.grad = torch.tensor(g)
            ref_norm = float(torch.nn.utils.clip_grad_norm_([t], max_norm, error_if_nonfinite=error_if_nonfinite))
            clipped, norm = clip_by_global_norm(g, max_norm, error_if_nonfinite=error_if_nonfinite)
            assert abs(norm - ref_norm) <= TOL
            assert max_diff(clipped, t.grad.numpy()) <= TOL


@pytest.mark.parametrize("seed", range(5))
def test_a_list_of_gradients_is_clipped_jointly_like_clip_grad_norm(torch, seed):
    """Several parameters of different shapes: one total norm, one coefficient for all."""
    rng = np.random.default_rng(seed)
    for _ in range(20):
        shapes = [tuple(int(n) for n in rng.integers(1, 4, size=rng.integers(1, 3))) for _ in range(3)]
        grads = [rng.normal(size=s) * 10.0 ** rng.uniform(-2, 2) for s in shapes]
        max_norm = 10.0 ** rng.uniform(-1, 1)
        params = [torch.nn.Parameter(torch.zeros(s, dtype=torch.float64)) for s in shapes]
        for p, g in zip(params, grads):
            p.grad = torch.tensor(g)
        ref_norm = float(torch.nn.utils.clip_grad_norm_(params, max_norm))
        clipped, norm = clip_by_global_norm(grads, max_norm)
        assert abs(norm - ref_norm) <= TOL
        for c, p in zip(clipped, params):
            assert c.shape == tuple(p.shape) and max_diff(c, p.grad.numpy()) <= TOL


def test_a_list_of_float32_gradients_matches_torch_float32(torch):
    rng = np.random.default_rng(11)
    grads = [rng.normal(size=5).astype(np.float32) * 40, rng.normal(size=(2, 3)).astype(np.float32)]
    params = [torch.nn.Parameter(torch.zeros(g.shape, dtype=torch.float32)) for g in grads]
    for p, g in zip(params, grads):
        p.grad = torch.from_numpy(g.copy())
    torch.nn.utils.clip_grad_norm_(params, 1.0)
    clipped, _ = clip_by_global_norm(grads, 1.0)
    for c, p in zip(clipped, params):
        assert c.dtype == np.float32
        np.testing.assert_allclose(c, p.grad.numpy(), rtol=2e-7, atol=0)


def test_batched_clipping_matches_torch_per_run(torch):
    rng = np.random.default_rng(7)
    g = rng.normal(size=(6, 3)) * np.array([[0.1], [1], [10], [100], [3], [0.5]])
    clipped, norms = clip_runs_by_norm(g, 2.0)
    for r in range(6):
        t = torch.nn.Parameter(torch.zeros(3, dtype=torch.float64))
        t.grad = torch.tensor(g[r])
        ref = float(torch.nn.utils.clip_grad_norm_([t], 2.0))
        assert abs(norms[r] - ref) <= TOL
        assert max_diff(clipped[r], t.grad.numpy()) <= TOL


@pytest.mark.parametrize("bad", [[math.inf, 1.0], [1.0, -math.inf], [math.nan, 2.0], [math.inf, math.nan]])
def test_nonfinite_gradient_raises_like_error_if_nonfinite(torch, bad):
    t = torch.nn.Parameter(torch.zeros(2, dtype=torch.float64))
    t.grad = torch.tensor(bad, dtype=torch.float64)
    with pytest.raises(RuntimeError):
        torch.nn.utils.clip_grad_norm_([t], 1.0, error_if_nonfinite=True)
    with pytest.raises(ValueError, match="inf|nan"):
        clip_by_global_norm(bad, 1.0)


@pytest.mark.parametrize("bad", [[math.inf, 1.0], [1.0, -math.inf], [math.nan, 2.0], [math.inf, math.nan]])
def test_nonfinite_gradient_without_error_matches_torch(torch, bad):
    """error_if_nonfinite=False: the same nan/0 pattern and the same reported norm as torch."""
    t = torch.nn.Parameter(torch.zeros(2, dtype=torch.float64))
    t.grad = torch.tensor(bad, dtype=torch.float64)
    ref_norm = float(torch.nn.utils.clip_grad_norm_([t], 1.0, error_if_nonfinite=False))
    clipped, norm = clip_by_global_norm(bad, 1.0, error_if_nonfinite=False)
    np.testing.assert_array_equal(clipped, t.grad.numpy())   # nan positions must agree too
    np.testing.assert_array_equal(norm, ref_norm)


def test_framework_loop_with_clipping_matches_torch(torch):
    """Runner with cosine lr and global-norm clipping == torch AdamW + clip_grad_norm_ loop."""
    steps = 120
    for start in STARTS:
        for max_norm in (1.0, 20.0):
            trace = run(AdamW(lr=0.08, weight_decay=0.01), steps, start=start, max_norm=max_norm,
                        schedule=cosine(0.08, steps))
            ref, ref_norms = torch_trajectory(
                torch, lambda ps: torch.optim.AdamW(ps, lr=0.08, weight_decay=0.01, foreach=False),
                start, steps, max_norm=max_norm,
                lr_at=lambda k: 0.08 * 0.5 * (1 + math.cos(math.pi * k / (steps - 1))))
            assert max_diff(trace.params, ref) <= TOL
            assert max_diff(trace.grad_norms, ref_norms) <= TOL
            assert np.array_equal(trace.clipped, ref_norms > max_norm)


# ---------------------------------------------------------------- GradScaler

SCRIPT = (
    [[1.0, 2.0], [math.inf, 1.0], [0.5, -0.25], [math.nan, 0.0], [0.25, 0.125], [1.0, 1.0], [1.0, -1.0]]
    + [[0.5, 0.5]] * 7
    + [[-math.inf, 1.0], [math.nan, math.nan], [2.0, 0.5], [0.0, 0.0], [math.inf, -math.inf]]
    + [[0.125, -0.5]] * 10
    + [[1.0, 0.0], [math.nan, 1.0]]
) * 4


@pytest.mark.parametrize("init_scale,growth_interval", [(65536.0, 2000), (1024.0, 3), (2.0**20, 1), (8.0, 5)])
def test_dynamic_loss_scaler_matches_grad_scaler(torch, init_scale, growth_interval):
    """Scale, skip decision and parameters step by step on a scripted inf/nan sequence."""
    assert len(SCRIPT) >= 100
    p = torch.nn.Parameter(torch.tensor([1.0, -1.0], dtype=torch.float64))
    opt = torch.optim.SGD([p], lr=0.01, momentum=0.9, foreach=False)
    ref = torch.amp.GradScaler("cpu", init_scale=init_scale, growth_interval=growth_interval)
    assert ref.is_enabled()

    lib_opt = SGD(lr=0.01, momentum=0.9)
    scaler = DynamicLossScaler(init_scale=init_scale, growth_interval=growth_interval)
    w = np.array([1.0, -1.0])
    state, sc_state = lib_opt.init(w), scaler.init()
    skips = 0
    for g in SCRIPT:
        # torch: the scaled gradient of a scripted loss
        scale_before = ref.get_scale()
        assert scale_before == sc_state.scale
        opt.zero_grad()
        ref.scale((p * 0).sum()).backward()
        p.grad = torch.tensor(g, dtype=torch.float64) * scale_before
        before = p.detach().clone()
        ref.step(opt)
        ref.update()
        ref_skipped = bool(torch.equal(before, p.detach())) and not np.allclose(g, 0)
        # lessons_lib: unscale, skip or step, update
        grads, found_inf = unscale(np.asarray(g) * sc_state.scale, sc_state.scale)
        assert found_inf == (not np.all(np.isfinite(g)))
        if not found_inf:
            w, state = lib_opt.step(w, grads, state)
        sc_state = scaler.update(sc_state, found_inf)
        skips += found_inf
        assert found_inf == ref_skipped
        assert sc_state.scale == ref.get_scale()
        assert sc_state.growth_tracker == int(ref._growth_tracker)
        assert max_diff(w, p.detach().numpy()) <= TOL
    assert skips > 0 and skips < len(SCRIPT)


def _torch_scale_sequence(torch, init_scale, growth_factor, backoff_factor, interval, flags):
    """torch's own update kernel (what GradScaler.update calls), step by step."""
    scale = torch.full((), init_scale, dtype=torch.float32)
    tracker = torch.zeros((), dtype=torch.int32)
    out = []
    for f in flags:
        found = torch.full((), float(f), dtype=torch.float32)
        torch._amp_update_scale_(scale, tracker, found, growth_factor, backoff_factor, interval)
        out.append((float(scale), int(tracker)))
    return out


@pytest.mark.parametrize("init_scale,growth,backoff,interval,flags", [
    (65536.0, 1.7, 0.3, 3, [bool(b) for b in np.random.default_rng(0).random(80) < 0.3]),
    (2.0**126, 2.0, 0.5, 1, [False] * 5 + [True] + [False] * 5),            # growth stops at 2**127
    (1e-30, 2.0, 0.5, 2000, [True] * 40),                                  # backs off to 0
    (3.0, 1.1, 0.9, 2, [False, False, True] * 20),
], ids=["non-power-of-two", "float32-top", "underflow-to-zero", "slow-factors"])
def test_dynamic_loss_scaler_scale_matches_torch_in_float32(torch, init_scale, growth, backoff, interval, flags):
    ref = _torch_scale_sequence(torch, init_scale, growth, backoff, interval, flags)
    scaler = DynamicLossScaler(init_scale=init_scale, growth_factor=growth, backoff_factor=backoff,
                               growth_interval=interval)
    st = scaler.init()
    assert st.scale == float(torch.tensor(init_scale, dtype=torch.float32))
    for k, (f, (ref_scale, ref_tracker)) in enumerate(zip(flags, ref)):
        st = scaler.update(st, f)
        assert (st.scale, st.growth_tracker) == (ref_scale, ref_tracker), f"step {k}"


def test_grad_scaler_defaults_match(torch):
    ref = torch.amp.GradScaler("cpu")
    lib = DynamicLossScaler()
    assert lib.init_scale == ref.get_scale() == 65536.0
    assert lib.growth_factor == ref.get_growth_factor() == 2.0
    assert lib.backoff_factor == ref.get_backoff_factor() == 0.5
    assert lib.growth_interval == ref.get_growth_interval() == 2000


# ---------------------------------------------------------------- schedules

def torch_lrs(torch, make_scheduler, base_lr, n):
    """The lr each of n optimizer steps uses, with scheduler.step() after optimizer.step()."""
    p = torch.nn.Parameter(torch.zeros(1, dtype=torch.float64))
    opt = torch.optim.SGD([p], lr=base_lr)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")   # SequentialLR passes an epoch to its children
        sched = make_scheduler(opt)
        lrs = []
        for _ in range(n):
            lrs.append(opt.param_groups[0]["lr"])
            opt.step()
            sched.step()
    return np.array(lrs)


@pytest.mark.parametrize("peak,total,final", [(0.018, 80, 0.0), (3e-4, 10, 3e-5), (1.0, 150, 0.1), (0.08, 60, 0.0)])
def test_cosine_matches_cosine_annealing_lr(torch, peak, total, final):
    n = total + 100
    ref = torch_lrs(torch, lambda o: torch.optim.lr_scheduler.CosineAnnealingLR(o, T_max=total - 1, eta_min=final),
                    peak, n)
    # the same rates up to the last step; past it torch's cosine swings back up, ours holds final
    assert max_diff(cosine(peak, total, final).values(total), ref[:total]) <= TOL
    assert np.all(cosine(peak, total, final).values(n)[total:] == final) and np.any(ref[total:] > final)
    ours = cosine(peak, total, final).values(total)
    assert max_diff(ours, torch_lrs(torch, lambda o: torch.optim.lr_scheduler.LambdaLR(
        o, lambda k: (final + (peak - final) * 0.5 * (1 + math.cos(math.pi * k / (total - 1)))) / peak), peak, total)) <= TOL


@pytest.mark.parametrize("peak,warmup", [(0.1, 1), (0.1, 3), (3e-4, 10), (1.0, 37)])
def test_linear_warmup_matches_linear_lr(torch, peak, warmup):
    n = 120
    ref = torch_lrs(torch, lambda o: torch.optim.lr_scheduler.LinearLR(
        o, start_factor=1 / warmup, end_factor=1.0, total_iters=warmup - 1), peak, n)
    assert max_diff(linear_warmup(peak, warmup).values(n), ref) <= TOL


@pytest.mark.parametrize("peak,final,warmup,total",
                         [(3e-4, 3e-5, 2, 10), (0.08, 0.0, 10, 120), (1.0, 0.1, 25, 130), (0.5, 0.5, 3, 100),
                          (0.01, 0.001, 1, 100)])
def test_warmup_cosine_matches_sequential_lr(torch, peak, final, warmup, total):
    def make(o):
        lin = torch.optim.lr_scheduler.LinearLR(o, start_factor=1 / warmup, end_factor=1.0,
                                                total_iters=warmup - 1)
        cos = torch.optim.lr_scheduler.CosineAnnealingLR(o, T_max=total - warmup - 1, eta_min=final)
        return torch.optim.lr_scheduler.SequentialLR(o, [lin, cos], milestones=[warmup])

    ref = torch_lrs(torch, make, peak, total)
    ours = warmup_cosine(peak, final, warmup, total).values(total)
    assert max_diff(ours, ref) <= TOL
    assert ours[-1] == final


@pytest.mark.parametrize("d_model,warmup,scale", [(512, 4000, 1.0), (64, 10, 2.0), (1024, 100, 0.5)])
def test_inverse_sqrt_warmup_matches_lambda_lr(torch, d_model, warmup, scale):
    n = 300
    fn = lambda k: scale * d_model**-0.5 * min((k + 1) ** -0.5, (k + 1) * warmup**-1.5)  # noqa: E731
    ref = torch_lrs(torch, lambda o: torch.optim.lr_scheduler.LambdaLR(o, fn), 1.0, n)
    assert max_diff(inverse_sqrt_warmup(d_model, warmup, scale).values(n), ref) <= TOL


def test_constant_matches_lambda_lr(torch):
    ref = torch_lrs(torch, lambda o: torch.optim.lr_scheduler.LambdaLR(o, lambda k: 1.0), 0.02, 100)
    assert max_diff(constant(0.02).values(100), ref) <= TOL


def test_scheduled_sgd_run_matches_torch_scheduler_loop(torch):
    """The runner's schedule(k) at step k == a torch scheduler stepped after optimizer.step()."""
    steps, peak, final, warmup = 150, 0.019, 0.001, 15
    trace = run(SGD(lr=peak, momentum=0.5), steps, schedule=warmup_cosine(peak, final, warmup, steps))
    p = torch.nn.Parameter(torch.tensor([1.0, 1.0], dtype=torch.float64))
    opt = torch.optim.SGD([p], lr=peak, momentum=0.5, foreach=False)
    lin = torch.optim.lr_scheduler.LinearLR(opt, start_factor=1 / warmup, end_factor=1.0, total_iters=warmup - 1)
    cos = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=steps - warmup - 1, eta_min=final)
    c = torch.tensor(COURSE.c)
    positions, lrs = [p.detach().numpy().copy()], []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        sched = torch.optim.lr_scheduler.SequentialLR(opt, [lin, cos], milestones=[warmup])
        for _ in range(steps):
            opt.zero_grad()
            (0.5 * (c * p * p).sum()).backward()
            lrs.append(opt.param_groups[0]["lr"])
            opt.step()
            sched.step()
            positions.append(p.detach().numpy().copy())
    assert max_diff(trace.lrs, lrs) <= TOL
    assert max_diff(trace.params, positions) <= TOL


# ---------------------------------------------------------------- low-precision casts

def test_fp16_cast_matches_torch_half(torch):
    rng = np.random.default_rng(3)
    x = np.concatenate([rng.normal(size=300) * 10.0 ** rng.uniform(-9, 6, size=300),
                        [65504.0, 65520.0, 7e4, -7e4, 2.0**-24, 2.0**-25, 4e-8, 9e-9, 0.0, -0.0]])
    ref = torch.tensor(x).to(torch.float16).to(torch.float64).numpy()
    np.testing.assert_array_equal(to_fp16(x).astype(np.float64), ref)


def test_bfloat16_emulation_matches_torch_bfloat16(torch):
    rng = np.random.default_rng(4)
    random_bits = rng.integers(0, 2**32, size=400, dtype=np.uint64).astype(np.uint32).view(np.float32)
    x32 = np.concatenate([
        (rng.normal(size=400) * 10.0 ** rng.uniform(-30, 30, size=400)).astype(np.float32),
        random_bits[~np.isnan(random_bits)],   # every finite and infinite pattern class, no signalling nans
        np.array([1 + 2**-8, 1 + 3 * 2**-8, 65504, 3.4e38, np.finfo(np.float32).max, np.inf, -np.inf,
                  1e-40, -1e-45, 0.0, -0.0, np.nan], dtype=np.float32),
    ])
    ref = torch.from_numpy(x32.copy()).to(torch.bfloat16).to(torch.float32).numpy()
    ours = to_bfloat16(x32)
    finite = ~np.isnan(ref)
    np.testing.assert_array_equal(np.isnan(ours), ~finite)
    np.testing.assert_array_equal(ours[finite].view(np.uint32), ref[finite].view(np.uint32))


# ---------------------------------------------------------------- float32 stays float32

FLOAT32_CASES = ["sgd-momentum", "adam", "adamw", "adagrad", "rmsprop", "rmsprop-centered-momentum"]


@pytest.mark.parametrize("name", FLOAT32_CASES)
def test_float32_parameters_stay_float32_and_follow_torch_float32(torch, name):
    """Like a float32 tensor: params and state keep their dtype, and the path follows torch's."""
    ours, theirs, atol = {
        "sgd-momentum": (SGD(lr=0.01, momentum=0.9), lambda ps: torch.optim.SGD(ps, lr=0.01, momentum=0.9), 1e-7),
        "adam": (Adam(lr=0.01), lambda ps: torch.optim.Adam(ps, lr=0.01), 1e-7),
        "adamw": (AdamW(lr=0.01, weight_decay=0.1), lambda ps: torch.optim.AdamW(ps, lr=0.01, weight_decay=0.1), 1e-7),
        "adagrad": (Adagrad(lr=0.1, lr_decay=0.01), lambda ps: torch.optim.Adagrad(ps, lr=0.1, lr_decay=0.01), 1e-6),
        "rmsprop": (RMSprop(lr=0.01), lambda ps: torch.optim.RMSprop(ps, lr=0.01), 1e-6),
        "rmsprop-centered-momentum": (RMSprop(lr=0.003, momentum=0.9, centered=True),
                                      lambda ps: torch.optim.RMSprop(ps, lr=0.003, momentum=0.9, centered=True), 1e-6),
    }[name]
    c = np.array([100.0, 1.0], dtype=np.float32)
    w = np.array([1.0, 1.0], dtype=np.float32)
    p = torch.nn.Parameter(torch.tensor([1.0, 1.0], dtype=torch.float32))
    opt = theirs([p])
    state = ours.init(w)
    for _ in range(100):
        w, state = ours.step(w, c * w, state)
        opt.zero_grad()
        (0.5 * (torch.from_numpy(c) * p * p).sum()).backward()
        opt.step()
        assert w.dtype == np.float32
        assert all(b.dtype == np.float32 for b in state if isinstance(b, np.ndarray))
    np.testing.assert_allclose(w, p.detach().numpy(), rtol=1e-5, atol=atol)
