"""Learning-rate schedulers with PyTorch's names: objects you step, in torch's order.

schedules.py gives lr(k) as a formula of the step. These are torch.optim.lr_scheduler's
schedulers: each holds the current rate and a counter, and step() moves them on. Our
optimizers keep no param_groups, so a scheduler is built with the base rate, and the
training loop hands its rate to every update:

    sched = StepLR(lr=0.1, step_size=30, gamma=0.1)
    for epoch in range(90):
        for grads in batches:
            params, state = opt.step(params, grads, state, lr=sched.lr)
        sched.step()                          # after the epoch's updates, as in torch

Right after construction sched.lr is torch's rate before its first scheduler.step(); each
step() is torch's step, with its floating-point operations in its order (compared with torch
in tests/test_lr_schedulers_torch.py). Below, k = last_epoch (step() calls so far) and lr0 the
rate given; lr0 (max_lr for OneCycleLR) may be a 1-D array of per-run rates, and sched.lr is
then one rate per run.

StepLR, per epoch: multiply by gamma every step_size epochs.
    lr_k = lr0 * gamma^floor(k / step_size)   (torch multiplies by gamma when k is a multiple)
MultiStepLR, per epoch: multiply by gamma as k reaches each milestone.
    lr_k = lr0 * gamma^(number of milestones <= k)   (a milestone 0 decays at construction)
ExponentialLR, per epoch: multiply by gamma at every step.   lr_k = lr0 * gamma^k
CosineAnnealingWarmRestarts (SGDR): a cosine from lr0 down to eta_min over T_i epochs, then
    a restart at lr0 with T_i <- T_i * T_mult (T_0, T_0 T_mult, T_0 T_mult^2, ...):
    lr = eta_min + (lr0 - eta_min) * (1 + cos(pi * T_cur / T_i)) / 2,  T_cur = epochs since restart.
    Per batch (fractional epochs): torch's documented call is step(epoch + i / batches_per_epoch)
    after the update of batch i, so update k uses lr((k - 1) / batches_per_epoch), one update
    behind (updates 0 and 1 both use lr0, and the restart comes one update after the epoch end).
    Calling step(epoch + (i + 1) / batches_per_epoch) instead makes update k use
    lr(k / batches_per_epoch) and restart exactly at the epoch end (lesson 12 does this, on
    purpose). Or step() once per epoch.
OneCycleLR, per batch (total_steps = number of optimizer updates): warm up from
    max_lr / div_factor to max_lr over pct_start of the steps, then anneal (cos or linear) to
    max_lr / (div_factor * final_div_factor); momentum (or Adam's beta1) moves the other way,
    max_momentum -> base_momentum -> max_momentum. three_phase: up, back down to the start,
    then down to the minimum. Within a phase from a to b at fraction p of it:
        cos: b + (a - b) / 2 * (1 + cos(pi p))        linear: a + (b - a) p
ReduceLROnPlateau (lr_plateau.py), per epoch, step(val_loss) after validating: a metric is an improvement
    when it beats the best by the threshold (rel: best * (1 -/+ threshold), abs: best -/+
    threshold); after more than `patience` epochs without one, lr <- max(lr * factor, min_lr)
    (skipped when that lowers lr by eps or less), then `cooldown` epochs that count as good.

Every scheduler has state_dict() (a plain dict that survives json.dumps/loads: type, version,
config, state) and load_state_dict(d), which refuses another type, another version or a
dict with missing or unknown keys instead of loading part of it.
"""
from __future__ import annotations

import math

import numpy as np

from .validation import (_show, as_float_array, check_int, check_keys, check_nonnegative, check_positive,
                         check_positive_real, check_real, check_unit_interval)

__all__ = ["StepLR", "MultiStepLR", "ExponentialLR", "CosineAnnealingWarmRestarts", "OneCycleLR", "STATE_VERSION"]

STATE_VERSION = 1
"""The state_dict layout; load_state_dict refuses a dict saved with another version."""


def _per_run(name, value, check, hint):
    """A setting that check accepts: a float, or a float64 array (R,) of per-run values."""
    arr = check(name, value, hint=hint)
    if arr.ndim > 1:
        raise ValueError(f"{name} must be a number or a 1-D array of per-run values; got shape {arr.shape}")
    return float(arr) if arr.ndim == 0 else arr.copy()


def _rates(name, value, hint="try a value such as 0.1"):
    """A rate > 0, or a 1-D array of per-run rates."""
    return _per_run(name, value, check_positive, hint)


def _momenta(name, value):
    """A momentum (beta1) in [0, 1), or a 1-D array of per-run ones."""
    return _per_run(name, value, check_unit_interval, "0.85 and 0.95 are torch's base_momentum and max_momentum")


def _same_runs(**values):
    sizes = {name: np.size(v) for name, v in values.items() if np.ndim(v) > 0}
    if len(set(sizes.values())) > 1:
        raise ValueError(f"per-run settings must all have the same length; got {sizes}")


def _integer(name, value, minimum, hint):
    try:
        return check_int(name, value, minimum)
    except ValueError as error:
        raise ValueError(f"{error}. {hint}") from None


def _choice(name, value, allowed):
    if value not in allowed:
        raise ValueError(f"{name} must be one of {', '.join(map(repr, allowed))}; got {value!r}")
    return value


def _flag(name, value):
    if not isinstance(value, (bool, np.bool_)):
        raise ValueError(f"{name} must be True or False; got {value!r}")
    return bool(value)


def _to_json(value):
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, (list, tuple)):
        return [_to_json(v) for v in value]
    return value.item() if isinstance(value, np.generic) else value


def _keys(where, d, expected):
    check_keys(where, d, expected, hint="Pass what state_dict() returned")


def _finite(name, value):
    """A saved number or 1-D array of them, finite (a float or a float64 array)."""
    arr = as_float_array(name, value)
    if arr.ndim > 1 or arr.size == 0 or not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} must be a finite number or a 1-D array of them; got {value!r}")
    return float(arr) if arr.ndim == 0 else arr


def _real_at_least_zero(name, value):
    return float(check_nonnegative(name, check_real(name, value)))


def _count(name, value):
    return check_int(name, value, 0)


class _Scheduler:
    """Shared plumbing: the current rate, get_last_lr, state_dict and load_state_dict."""

    # step()'s counters besides lr, each with the check load_state_dict applies to a saved value
    _counters = {"last_epoch": _count}

    @property
    def lr(self):
        """The rate for the next optimizer update: a float, or one per run (an array (R,))."""
        return self._lr if np.ndim(self._lr) == 0 else self._lr.copy()

    def get_last_lr(self) -> list[float]:
        """The current rate as a list, like torch's (one entry per run where torch has one per group)."""
        return np.atleast_1d(self._lr).tolist()

    def state_dict(self) -> dict:
        """The scheduler as a plain dict that json.dumps accepts: type, version, config, state."""
        return {"type": type(self).__name__, "version": STATE_VERSION,
                "config": {k: _to_json(v) for k, v in self._config.items()},
                "state": {"lr": _to_json(self._lr),
                          **{k: _to_json(getattr(self, k)) for k in self._counters}}}

    def load_state_dict(self, state_dict: dict) -> None:
        """Become the scheduler saved by state_dict(): all of it, or nothing (ValueError)."""
        name = type(self).__name__
        _keys("state_dict", state_dict, {"type", "version", "config", "state"})
        if state_dict["type"] != name:
            raise ValueError(f"state_dict was saved by a {state_dict['type']!r} scheduler, not a {name!r}; "
                             f"load it into a {state_dict['type']}")
        if state_dict["version"] != STATE_VERSION:
            raise ValueError(f"state_dict has version {state_dict['version']!r}, but this library reads version "
                             f"{STATE_VERSION} only; save it again with this version's state_dict()")
        _keys("state_dict['config']", state_dict["config"], self._config)
        _keys("state_dict['state']", state_dict["state"], {"lr", *self._counters})
        fresh = type(self)(**state_dict["config"])       # the constructor's checks, again
        saved = state_dict["state"]
        lr = _finite("state_dict['state']['lr']", saved["lr"])
        if np.shape(lr) != np.shape(fresh._lr):
            raise ValueError(f"state_dict['state']['lr'] must have shape {np.shape(fresh._lr)} (one rate per run of "
                             f"the config); got {saved['lr']!r}")
        fresh._lr = lr
        for key, check in self._counters.items():
            setattr(fresh, key, check(f"state_dict['state'][{key!r}]", saved[key]))
        fresh._check_restored()
        self.__dict__.update(fresh.__dict__)

    def _check_restored(self):
        """Refuse a loaded state that no run of this scheduler reaches (a hand-edited dict, say)."""

    def _start_rate(self):
        return self.base_lr if np.ndim(self.base_lr) == 0 else self.base_lr.copy()

    def __repr__(self):
        args = ", ".join(f"{k}={_to_json(v)!r}" for k, v in self._config.items())
        return f"{type(self).__name__}({args})"


class _Decay(_Scheduler):
    """StepLR, MultiStepLR and ExponentialLR: lr <- lr * gamma at the epochs k where _decays(k)."""

    def _setup(self, lr, gamma, hint, **config):
        self.base_lr = _rates("lr", lr)
        self.gamma = check_positive_real("gamma", gamma, hint=hint)
        self._config = dict(lr=self.base_lr, **config, gamma=self.gamma)
        self.last_epoch = 0
        self._lr = self._start_rate()

    def step(self) -> None:
        """One epoch on: k <- k + 1, and lr <- lr * gamma when k is a decay epoch."""
        self.last_epoch += 1
        if self._decays(self.last_epoch):
            self._lr = self._lr * self.gamma


class StepLR(_Decay):
    """Multiply the rate by gamma every step_size epochs (torch.optim.lr_scheduler.StepLR).

        lr_k = lr * gamma^floor(k / step_size),   k = step() calls so far (call it once per epoch)
    """

    def __init__(self, lr, step_size, gamma=0.1):
        self.step_size = _integer("step_size", step_size, 1, "it is the number of epochs between decays, e.g. 30")
        self._setup(lr, gamma, "0.1 divides the rate by 10 at each decay", step_size=self.step_size)

    def _decays(self, k):
        return k % self.step_size == 0


class MultiStepLR(_Decay):
    """Multiply the rate by gamma at each milestone epoch (torch.optim.lr_scheduler.MultiStepLR).

        lr_k = lr * gamma^(number of milestones <= k),   milestones strictly increasing epochs
    """

    def __init__(self, lr, milestones, gamma=0.1):
        if isinstance(milestones, (str, bytes, dict)) or not hasattr(milestones, "__iter__"):
            raise ValueError(f"milestones must be a list of epochs such as [30, 80]; got {milestones!r}")
        hint = "a milestone is an epoch index (step() calls so far), such as 30"
        self.milestones = [_integer(f"milestones[{i}]", m, 0, hint) for i, m in enumerate(milestones)]
        if any(b <= a for a, b in zip(self.milestones, self.milestones[1:])):
            raise ValueError(f"milestones must be strictly increasing; got {self.milestones}. Sort them (try "
                             f"{sorted(set(self.milestones))}); to decay twice at one epoch use gamma**2")
        self._setup(lr, gamma, "0.1 divides the rate by 10 at each milestone", milestones=self.milestones)
        if self._decays(0):               # torch's constructor takes step 0, and decays at a milestone 0
            self._lr = self._lr * self.gamma

    def _decays(self, k):
        return k in self.milestones


class ExponentialLR(_Decay):
    """Multiply the rate by gamma at every step (torch.optim.lr_scheduler.ExponentialLR).

        lr_k = lr * gamma^k      (torch multiplies the current rate: k roundings, not one power)
    """

    def __init__(self, lr, gamma):
        self._setup(lr, gamma, "0.95 takes about 14 steps to halve the rate")

    def _decays(self, k):
        return True


class CosineAnnealingWarmRestarts(_Scheduler):
    """SGDR: cosine from lr to eta_min over T_i epochs, then restart (torch's CosineAnnealingWarmRestarts).

        lr = eta_min + (lr - eta_min) * (1 + cos(pi * T_cur / T_i)) / 2,   T_i = T_0 * T_mult^(restarts)

    step() adds one epoch; step(epoch) jumps to a (fractional) epoch: per batch, torch's recipe calls
    step(epoch + i / batches_per_epoch) after the update of batch i (lesson 12 calls it with i + 1, so
    that update k uses lr(k / batches_per_epoch): see the module docstring). At an epoch that is exactly
    a restart, torch's step(epoch) finds the cycle with a floating-point logarithm that can round
    down (T_0=1, T_mult=3, epoch 121: rate eta_min); here the cycle is found by exact integer
    sums, so step(epoch) always gives what step() gives (the restart's lr), as torch's step() does.
    """

    _counters = {"last_epoch": _count, "T_cur": _real_at_least_zero, "T_i": lambda n, v: check_int(n, v, 1)}

    def __init__(self, lr, T_0, T_mult=1, eta_min=0.0):
        self.base_lr = _rates("lr", lr)
        self.T_0 = _integer("T_0", T_0, 1, "it is the length of the first cycle in epochs, e.g. 10")
        self.T_mult = _integer("T_mult", T_mult, 1, "1 keeps every cycle T_0 long; 2 doubles each one")
        self.eta_min = _real_at_least_zero("eta_min", eta_min)
        if self.eta_min > np.min(self.base_lr):
            raise ValueError(f"eta_min ({self.eta_min}) must not exceed lr ({_show(self.base_lr)}): the cosine "
                             "falls from lr to eta_min; try eta_min=0")
        self._config = dict(lr=self.base_lr, T_0=self.T_0, T_mult=self.T_mult, eta_min=self.eta_min)
        self.last_epoch, self.T_cur, self.T_i = 0, 0, self.T_0
        self._lr = self._rate()

    def _check_restored(self):
        if not self.T_cur < self.T_i:
            raise ValueError(f"state_dict['state'] has T_cur={self.T_cur!r} >= T_i={self.T_i!r}; the epochs since "
                             "the restart must be fewer than the cycle's length")

    def _rate(self):
        # BEGIN GRADED PIECE lr_schedulers: CosineAnnealingWarmRestarts._rate
        return self.eta_min + (self.base_lr - self.eta_min) * (1 + math.cos(math.pi * self.T_cur / self.T_i)) / 2
        # END GRADED PIECE

    def _cycle(self, epoch):
        """(T_cur, T_i) at an epoch: the cycle that holds it, by exact sums T_0 + T_0 T_mult + ..."""
        # BEGIN GRADED PIECE lr_schedulers: CosineAnnealingWarmRestarts._cycle
        if epoch < self.T_0:
            return epoch, self.T_0
        if self.T_mult == 1:
            return epoch % self.T_0, self.T_0
        start, length = 0, self.T_0
        while epoch >= start + length:
            start, length = start + length, length * self.T_mult
        return epoch - start, length
        # END GRADED PIECE

    def step(self, epoch=None) -> None:
        """One epoch on (T_cur <- T_cur + 1, restarting at T_i), or jump to `epoch` (a number >= 0)."""
        # BEGIN GRADED PIECE lr_schedulers: CosineAnnealingWarmRestarts.step
        if epoch is None:
            self.last_epoch += 1
            self.T_cur += 1
            if self.T_cur >= self.T_i:
                self.T_cur, self.T_i = self.T_cur % self.T_i, self.T_i * self.T_mult
        else:
            epoch = _real_at_least_zero("epoch", epoch)
            self.T_cur, self.T_i = self._cycle(epoch)
            self.last_epoch = math.floor(epoch)
        self._lr = self._rate()
        # END GRADED PIECE


class OneCycleLR(_Scheduler):
    """The 1cycle policy: warm up to max_lr, anneal far below the start (torch.optim.lr_scheduler.OneCycleLR).

        phases (a, b): lr initial -> max -> min (three_phase: initial -> max -> initial -> min),
        initial = max_lr / div_factor,  min = initial / final_div_factor;  in a phase at fraction p:
        cos: b + (a - b) / 2 * (1 + cos(pi p)),  linear: a + (b - a) p;  momentum the other way.

    Call step() after every optimizer update: total_steps updates use the rates at k = 0 ...
    total_steps - 1. The total_steps-th step() computes one rate past the end (torch does too;
    with 'linear' it can be negative, and no update uses it); one more step() is refused, as torch
    refuses it. With cycle_momentum, sched.momentum is the momentum (SGD) or beta1 (Adam) for the
    next update: set opt.momentum = sched.momentum, or opt.betas = (sched.momentum, opt.betas[1]).
    Stricter than torch: pct_start in (0, 1), total_steps >= 2, and no phase of zero length (torch
    divides by zero there) nor a three-phase third phase of negative length.
    """

    _counters = {"last_epoch": _count, "momentum": lambda n, v: None if v is None else _finite(n, v)}

    def __init__(self, max_lr, total_steps, pct_start=0.3, anneal_strategy="cos", cycle_momentum=True,
                 base_momentum=0.85, max_momentum=0.95, div_factor=25.0, final_div_factor=1e4,
                 three_phase=False):
        self.max_lr = _rates("max_lr", max_lr, hint="the peak rate, e.g. 0.1 (the start is max_lr / div_factor)")
        self.total_steps = _integer("total_steps", total_steps, 2,
                                    "it is the number of optimizer updates (batches) in the whole cycle")
        self.pct_start = check_real("pct_start", pct_start)
        if not 0 < self.pct_start < 1:
            raise ValueError(f"pct_start must lie in (0, 1): the fraction of the steps spent warming up; got "
                             f"{pct_start!r}. 0.3 is torch's default")
        self.anneal_strategy = _choice("anneal_strategy", anneal_strategy, ("cos", "linear"))
        self.cycle_momentum = _flag("cycle_momentum", cycle_momentum)
        self.three_phase = _flag("three_phase", three_phase)
        self.base_momentum = _momenta("base_momentum", base_momentum)
        self.max_momentum = _momenta("max_momentum", max_momentum)
        _same_runs(max_lr=self.max_lr, base_momentum=self.base_momentum, max_momentum=self.max_momentum)
        self.div_factor = check_positive_real("div_factor", div_factor, hint="25 starts at max_lr / 25")
        self.final_div_factor = check_positive_real("final_div_factor", final_div_factor,
                                                    hint="1e4 ends at max_lr / (div_factor * 1e4)")
        self._config = dict(max_lr=self.max_lr, total_steps=self.total_steps, pct_start=self.pct_start,
                            anneal_strategy=self.anneal_strategy, cycle_momentum=self.cycle_momentum,
                            base_momentum=self.base_momentum, max_momentum=self.max_momentum,
                            div_factor=self.div_factor, final_div_factor=self.final_div_factor,
                            three_phase=self.three_phase)
        self.initial_lr = self.max_lr / self.div_factor
        self.min_lr = self.initial_lr / self.final_div_factor
        self._phases = self._make_phases()
        self.last_epoch = 0
        self._lr, self.momentum = self._at(0)

    def _make_phases(self):
        """(end step, lr from, lr to, momentum from, momentum to) per phase, with torch's end steps."""
        lo, hi, up, top, t = self.initial_lr, self.max_lr, self.max_momentum, self.base_momentum, self.total_steps
        if np.ndim(up) or np.ndim(top):     # per-run momenta: one per run in every phase
            up, top = (np.array(x, dtype=np.float64) for x in np.broadcast_arrays(up, top))
        warm_end = float(self.pct_start * t) - 1
        if self.three_phase:
            phases = [(warm_end, lo, hi, up, top), (float(2 * self.pct_start * t) - 2, hi, lo, top, up),
                      (t - 1, lo, self.min_lr, up, up)]
        else:
            phases = [(warm_end, lo, hi, up, top), (t - 1, hi, self.min_lr, top, up)]
        start = 0.0
        for i, (end, *_) in enumerate(phases):
            what = f"pct_start={self.pct_start!r} with total_steps={t} gives phase {i + 1}"
            if end == start:
                raise ValueError(f"{what} zero length (from step {end:g} to itself: torch divides by zero there); "
                                 "choose pct_start so that pct_start * total_steps != 1")
            if i == 2 and end < start:
                raise ValueError(f"{what} (three_phase) negative length: the second phase ends at step {start:g}, "
                                 f"after the last step {end}; use pct_start < 0.5")
            start = end
        return phases

    def _anneal(self, a, b, pct):
        if self.anneal_strategy == "cos":
            return b + (a - b) / 2.0 * (math.cos(math.pi * pct) + 1)
        return (b - a) * pct + a

    def _at(self, k):
        start = 0.0
        for i, (end, lr_a, lr_b, m_a, m_b) in enumerate(self._phases):
            if k <= end or i == len(self._phases) - 1:
                pct = (k - start) / (end - start)
                momentum = self._anneal(m_a, m_b, pct) if self.cycle_momentum else None
                return self._anneal(lr_a, lr_b, pct), momentum
            start = end

    @property
    def momentum(self):
        """The momentum (SGD) or beta1 (Adam) for the next update; None without cycle_momentum."""
        return self._momentum if np.ndim(self._momentum) == 0 else self._momentum.copy()

    @momentum.setter
    def momentum(self, value):
        self._momentum = value

    def _check_restored(self):
        shape = np.shape(np.asarray(self.base_momentum) + self.max_momentum) if self.cycle_momentum else None
        if (self.momentum is None) != (shape is None) or (shape is not None and np.shape(self.momentum) != shape):
            want = "None" if shape is None else f"of shape {shape}"
            raise ValueError(f"state_dict['state']['momentum'] must be {want} for this config (cycle_momentum="
                             f"{self.cycle_momentum}); got {_to_json(self.momentum)!r}")

    def step(self) -> None:
        """One update on: k <- k + 1, lr and momentum from k's phase (refused past total_steps)."""
        if self.last_epoch + 1 > self.total_steps:
            raise ValueError(f"step() was already called total_steps={self.total_steps} times: the cycle is over "
                             "(torch refuses this step too). Build the scheduler with total_steps = the number "
                             "of optimizer updates you will take")
        self.last_epoch += 1
        self._lr, self.momentum = self._at(self.last_epoch)

