"""The one training loop that lessons, explorers and benchmarks share.

For k = 0 .. steps-1 (framework order):
    g = grad L(w)                              (in fp16 as fp16(scale * g) / scale with a scaler)
    skip the step if g has inf/nan            (scaler only; the scale backs off)
    g, norm = clip_runs_by_norm(g, max_norm)  (if max_norm is given; each run by its own norm)
    lr = schedule(k)                           (or the optimizer's lr)
    w, state = optimizer.step(w, g, state, lr)
A run whose loss becomes non-finite or exceeds divergence_factor * L(w0) is recorded as
diverged at that step and stops there (later positions and losses are nan): never a crash.
A surface with minibatch gradients (one with reset()) is reset first, so the same call always
gives the same run.

One rule for return types: a single run gives Python numbers (final_loss a float, diverged a
bool, diverged_at an int or None); a batch gives one array entry per run (final_loss (R,),
diverged a bool array: ask `trace.diverged.any()`, diverged_at ints with -1 for "never").
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .clipping import clip_runs_by_norm, run_norms
from .precision import DynamicLossScaler, scaled_fp16_gradient, unscale
from .surfaces import COURSE, START, Quadratic
from .validation import check_finite, check_int, check_positive


@dataclass
class Trace:
    """Everything a run recorded. Leading axis: step; then (runs,) for a batch.

    params:      (steps+1, [R,] d)  positions w_0 .. w_steps
    losses:      (steps+1, [R])     L(w_k)
    grads:       (steps, [R,] d)    the gradient at w_k before clipping (unscaled)
    lrs:         (steps, [R])       the lr used at step k
    grad_norms:  (steps, [R])       pre-clip gradient norm
    clipped:     (steps, [R])       True where clipping shrank the gradient (norm > max_norm)
    skipped:     (steps, [R])       True where a loss scaler skipped the step
    scales:      (steps, [R])       loss scale used at step k (nan without a scaler)
    diverged_at: step index where the run diverged, or None (an int array, -1 = never, for a batch)
    states:      optimizer state after each step, when record_states=True
    """

    params: np.ndarray
    losses: np.ndarray
    grads: np.ndarray
    lrs: np.ndarray
    grad_norms: np.ndarray
    clipped: np.ndarray
    skipped: np.ndarray
    scales: np.ndarray
    diverged_at: object
    states: list = field(default_factory=list)
    surface: object = field(default=None, repr=False, compare=False)

    @property
    def final_params(self) -> np.ndarray:
        return self.params[-1]

    @property
    def final_loss(self):
        last = self.losses[-1]
        return float(last) if np.ndim(last) == 0 else last

    @property
    def diverged(self):
        if isinstance(self.diverged_at, np.ndarray):
            return self.diverged_at >= 0
        return self.diverged_at is not None


def run(optimizer, steps: int, surface: Quadratic = COURSE, start=START, schedule=None,
        max_norm=None, clip_eps: float = 1e-6, scaler: DynamicLossScaler | None = None,
        record_states: bool = False, divergence_factor: float = 1e6) -> Trace:
    """Run `optimizer` on `surface` for `steps` updates from `start` and return a Trace.

    For a batch, give `start` of shape (R, d) or an optimizer with per-run hyperparameters
    (start is then repeated for each run).
    """
    # BEGIN GRADED PIECE run: run
    steps = check_int("steps", steps, 0)
    check_positive("divergence_factor", divergence_factor)
    if hasattr(surface, "reset"):
        surface.reset()               # a minibatch stream starts from its seed on every run
    w = check_finite("start", start).copy()
    if w.ndim not in (1, 2):
        raise ValueError(f"start must have shape (d,) or (runs, d); got shape {w.shape}")
    runs = getattr(optimizer, "runs", None)
    if runs is not None and w.ndim == 1:
        w = np.broadcast_to(w, (runs, w.shape[0])).copy()
    if runs is not None and w.shape[0] != runs:
        raise ValueError(f"start has shape {w.shape} but the optimizer has per-run hyperparameters "
                         f"for {runs} runs; give one start of shape (d,) or starts of shape ({runs}, d)")
    loss0 = surface.loss(w)
    batch = w.ndim == 2
    R = w.shape[0] if batch else None
    lead = (R,) if batch else ()
    if max_norm is not None:
        check_positive("max_norm", max_norm, hint="the threshold is a gradient length, e.g. 20")

    params = np.full((steps + 1,) + w.shape, np.nan)
    losses = np.full((steps + 1,) + lead, np.nan)
    grads = np.full((steps,) + w.shape, np.nan)
    lrs = np.full((steps,) + lead, np.nan)
    norms = np.full((steps,) + lead, np.nan)
    clipped = np.zeros((steps,) + lead, dtype=bool)
    skipped = np.zeros((steps,) + lead, dtype=bool)
    scales = np.full((steps,) + lead, np.nan)
    diverged_at = np.full(lead, -1, dtype=int)
    states = []

    state = optimizer.init(w)
    sc_state = scaler.init(R) if scaler is not None else None
    active = np.ones(lead, dtype=bool)
    params[0], losses[0] = w, loss0
    limit = divergence_factor * np.maximum(loss0, 1e-300)

    with np.errstate(over="ignore", invalid="ignore"):
        for k in range(steps):
            g = surface.grad(w)
            found_inf = np.zeros(lead, dtype=bool)
            if scaler is not None:
                scales[k] = sc_state.scale
                g, found_inf = unscale(_fp16_grad(g, sc_state.scale, batch), sc_state.scale)
                found_inf = np.asarray(found_inf) & active
                skipped[k] = found_inf
            grads[k] = g
            norm = np.asarray(run_norms(g))
            norms[k] = norm
            take = active & ~found_inf
            g = np.where(take[..., None] if batch else take, g, 0.0)
            if max_norm is not None:
                g, _ = clip_runs_by_norm(g, max_norm, eps=clip_eps)
                clipped[k] = take & (norm > max_norm)
            lr = schedule(k) if schedule is not None else optimizer.lr
            if k == 0 and schedule is not None:
                _check_schedule_runs(optimizer, lr)
            lrs[k] = lr
            new_w, new_state = optimizer.step(w, g, state, lr=lr)
            new_loss = surface.loss(new_w)
            bad = take & (~np.isfinite(new_loss) | (new_loss > limit))
            if np.any(bad):
                diverged_at = np.where(bad, k + 1, diverged_at)
            keep = take & ~bad
            if batch:
                w = np.where(keep[:, None], new_w, w)
                state = _select_state(keep, new_state, state)
            elif keep:
                w, state = new_w, new_state
            active = active & ~bad
            if scaler is not None:
                sc_state = scaler.update(sc_state, found_inf)
            params[k + 1] = np.where(active[..., None] if batch else active, w, np.nan)
            losses[k + 1] = np.where(active, surface.loss(w), np.nan)
            if record_states:
                states.append(state)
            if not np.any(active):
                break

    return Trace(params=params, losses=losses, grads=grads, lrs=lrs, grad_norms=norms,
                 clipped=clipped, skipped=skipped, scales=scales,
                 diverged_at=diverged_at if batch else (int(diverged_at) if diverged_at >= 0 else None),
                 states=states, surface=surface)
    # END GRADED PIECE


def _check_schedule_runs(optimizer, lr) -> None:
    """A schedule that returns one rate would silently replace per-run learning rates."""
    if np.ndim(getattr(optimizer, "lr", None)) > 0 and np.ndim(lr) == 0:
        raise ValueError(
            "the optimizer has one learning rate per run, but the schedule returns a single rate for "
            "all runs, which would replace them. Give the schedule per-run peaks, e.g. "
            "schedule=cosine(peak=lrs, total_steps=steps), or scale them: "
            "schedule=lambda k: lrs * cosine(1.0, steps)(k)")


def _fp16_grad(g, scale, batch):
    s = np.asarray(scale, dtype=np.float64)
    return scaled_fp16_gradient(g * (s[:, None] if batch and s.ndim else s), 1.0)


def _select_state(keep, new_state, old_state):
    """Per run: the new state where the step was kept, the old one elsewhere."""
    fields = {}
    for name, new, old in zip(new_state._fields, new_state, old_state):
        if isinstance(new, np.ndarray) and isinstance(old, np.ndarray) and new.ndim == 2:
            fields[name] = np.where(keep[:, None], new, old)
        elif name == "step" and not np.all(keep):
            fields[name] = np.where(keep, new, old)   # skipped runs keep their step count
        else:
            fields[name] = new
    return type(new_state)(**fields)


def measured_rate(trace: Trace, window: int = 20, optimum=None):
    """Measured per-step contraction of the distance to the optimum over the last `window` steps.

        rate = (||w_K - w*|| / ||w_{K-window} - w*||) ** (1 / window)

    w* is `optimum` when given, else the optimum of the surface the run used (0 on a quadratic,
    the Newton fit on a LogisticSurface). One value per run for a batch; nan for diverged runs.
    """
    window = check_int("window", window, 1)
    if trace.params.shape[0] <= window:
        raise ValueError(f"window ({window}) must be smaller than the number of steps ({trace.params.shape[0] - 1})")
    if optimum is None:
        optimum = getattr(trace.surface, "optimum", None)
    w_star = np.zeros(trace.params.shape[-1]) if optimum is None else check_finite("optimum", optimum)
    d_end = np.linalg.norm(trace.params[-1] - w_star, axis=-1)
    d_start = np.linalg.norm(trace.params[-1 - window] - w_star, axis=-1)
    with np.errstate(divide="ignore", invalid="ignore"):
        rate = (d_end / d_start) ** (1.0 / window)
    return float(rate) if np.ndim(rate) == 0 else rate
