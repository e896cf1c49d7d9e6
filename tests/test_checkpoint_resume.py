"""Checkpoints resume a run exactly, and refuse (with a message naming the problem) what does not fit.

The oracle of the resume tests is the uninterrupted run itself: 100 steps in one go against 50
steps, a checkpoint written to a file, fresh objects loaded from it and 50 more steps. Equality is
np.array_equal (every bit), for every optimizer of the library, with a step-decay scheduler whose
position is checkpointed too; on the ticket-triage model the minibatch stream and a dynamic loss
scaler (which skips steps) are part of the checkpoint. Leaving the optimizer state (or the
stream) out must change the run: otherwise the test could not tell a resumed run from a restart.
"""
from __future__ import annotations

import numpy as np
import pytest

from lessons_lib.adaptive import Adagrad, RMSprop
from lessons_lib.checkpoint import (
    CHECKPOINT_FORMAT, FORMAT, VERSION, load_checkpoint, load_state_dict, save_checkpoint, state_dict,
)
from lessons_lib.datasets import ticket_triage
from lessons_lib.lean import Adafactor, Lion, Muon
from lessons_lib.logistic import EpochSampler, MinibatchLogistic
from lessons_lib.lr_plateau import ReduceLROnPlateau
from lessons_lib.lr_schedulers import CosineAnnealingWarmRestarts, ExponentialLR, MultiStepLR, OneCycleLR, StepLR
from lessons_lib.optimizers import SGD, Adam, AdamW, EMAMomentum, SGDState
from lessons_lib.param_groups import ParamGroups, ParamGroupsState
from lessons_lib.precision import DynamicLossScaler, ScalerState, scaled_fp16_gradient, unscale
from lessons_lib.quantized import Adam8bit, AdamW8bit
from lessons_lib.surfaces import COURSE

STEPS, AT = 100, 50
MATRIX_C = np.arange(1.0, 13.0).reshape(4, 3) ** 1.5       # a matrix quadratic 0.5 * sum(C * W^2)
MATRIX_START = np.linspace(-1.0, 1.2, 12).reshape(4, 3)
COURSE_START = np.array([1.0, 1.0])
BATCH_START = np.array([[1.0, 1.0], [-0.5, 2.0], [0.3, -1.5]])


class StepDecay:
    """A scheduler stand-in with the state_dict protocol: the lr factor halves every `every` steps."""

    def __init__(self, every=30):
        self.every, self.count = every, 0

    @property
    def factor(self):
        return 0.5 ** (self.count // self.every)

    def step(self):
        self.count += 1

    def state_dict(self):
        return {"every": self.every, "count": self.count}

    def load_state_dict(self, d):
        self.every, self.count = d["every"], d["count"]


# name: (make the optimizer, gradient function, start)
CASES = {
    "SGD": (lambda: SGD(lr=0.015), COURSE.grad, COURSE_START),
    "SGD-momentum": (lambda: SGD(lr=0.01, momentum=0.9, dampening=0.1, weight_decay=0.01), COURSE.grad, COURSE_START),
    "SGD-nesterov": (lambda: SGD(lr=0.01, momentum=0.8, nesterov=True), COURSE.grad, COURSE_START),
    "EMAMomentum": (lambda: EMAMomentum(lr=0.05, beta=0.9), COURSE.grad, COURSE_START),
    "Adam": (lambda: Adam(lr=0.05, weight_decay=0.01), COURSE.grad, COURSE_START),
    "AdamW": (lambda: AdamW(lr=0.05, weight_decay=0.1), COURSE.grad, COURSE_START),
    "Adagrad": (lambda: Adagrad(lr=0.3, lr_decay=0.01, initial_accumulator_value=0.1), COURSE.grad, COURSE_START),
    "RMSprop": (lambda: RMSprop(lr=0.01), COURSE.grad, COURSE_START),
    "RMSprop-centered-momentum": (lambda: RMSprop(lr=0.003, alpha=0.9, centered=True, momentum=0.5),
                                  COURSE.grad, COURSE_START),
    "Lion": (lambda: Lion(lr=0.05, weight_decay=0.1), COURSE.grad, COURSE_START),
    "Adafactor-matrix": (lambda: Adafactor(lr=0.05, weight_decay=0.01), lambda w: MATRIX_C * w, MATRIX_START),
    "Adafactor-vector": (lambda: Adafactor(lr=0.05), COURSE.grad, COURSE_START),
    "Muon": (lambda: Muon(lr=0.02), lambda w: MATRIX_C * w, MATRIX_START),
    "ParamGroups-AdamW": (lambda: ParamGroups(AdamW, [{"params": [0], "lr": 0.05}, {"params": [1], "weight_decay": 0.0}],
                                              lr=0.02), COURSE.grad, COURSE_START),
    "ParamGroups-SGD": (lambda: ParamGroups(SGD, [{"params": np.array([False, True])},
                                                  {"params": slice(0, 1), "momentum": 0.9}], lr=0.01),
                        COURSE.grad, COURSE_START),
    "batch-Adam-per-run-lr": (lambda: Adam(lr=np.array([0.01, 0.05, 0.1])), COURSE.grad, BATCH_START),
    "batch-RMSprop": (lambda: RMSprop(lr=0.01, momentum=np.array([0.0, 0.5, 0.9])), COURSE.grad, BATCH_START),
    "Adam8bit": (lambda: Adam8bit(lr=0.05, block_size=1), COURSE.grad, COURSE_START),
    "AdamW8bit-batch": (lambda: AdamW8bit(lr=0.05, weight_decay=0.1, block_size=2), COURSE.grad, BATCH_START),
}


def lr_of(opt, sched):
    """The scheduler's factor times each group's lr (a list for ParamGroups, as torch's schedulers do)."""
    if isinstance(opt, ParamGroups):
        return [sched.factor * lr for lr in opt.group_lrs]
    return sched.factor * opt.lr


def advance(opt, sched, grad, w, state, steps):
    for _ in range(steps):
        w, state = opt.step(w, grad(w), state, lr=lr_of(opt, sched))
        sched.step()
    return w, state


def leaves(state):
    """Every field of a state, ParamGroupsState flattened, for bitwise comparison."""
    if isinstance(state, ParamGroupsState):
        return [x for s in state.groups for x in leaves(s)]
    return list(state)


def assert_bitwise_equal(a, b):
    for x, y in zip(leaves(a), leaves(b), strict=True):
        assert (x is None) == (y is None)
        if x is not None:
            assert np.array_equal(x, y) and np.asarray(x).dtype == np.asarray(y).dtype


def uninterrupted(name):
    make, grad, start = CASES[name]
    opt = make()
    return advance(opt, StepDecay(), grad, start.copy(), opt.init(start), STEPS)


def resumed(name, tmp_path, reset_state=False):
    make, grad, start = CASES[name]
    opt, sched = make(), StepDecay()
    w, state = advance(opt, sched, grad, start.copy(), opt.init(start), AT)
    path = save_checkpoint(tmp_path / "run.npz", params=w, optimizer=state_dict(opt, state), scheduler=sched, step=AT)
    del opt, sched, w, state
    parts = load_checkpoint(path)
    opt, sched = make(), StepDecay()
    sched.load_state_dict(parts["scheduler"])
    w = parts["params"]
    state = opt.init(w) if reset_state else load_state_dict(opt, parts["optimizer"], w)
    assert parts["step"] == AT
    return advance(opt, sched, grad, w, state, STEPS - AT)


@pytest.mark.parametrize("name", list(CASES))
def test_resuming_from_a_checkpoint_file_equals_the_uninterrupted_run_bit_for_bit(name, tmp_path):
    w_ref, state_ref = uninterrupted(name)
    w, state = resumed(name, tmp_path)
    assert np.array_equal(w, w_ref) and w.dtype == w_ref.dtype
    assert_bitwise_equal(state, state_ref)


@pytest.mark.parametrize("name", [n for n in CASES if n != "SGD"])
def test_resuming_with_the_weights_only_gives_a_different_run(name, tmp_path):
    w_ref, _ = uninterrupted(name)
    w, _ = resumed(name, tmp_path, reset_state=True)
    assert not np.array_equal(w, w_ref)


def test_plain_sgd_is_the_one_optimizer_whose_state_carries_nothing(tmp_path):
    """SGD without momentum keeps only a step count it never reads: the weights alone resume it."""
    w_ref, _ = uninterrupted("SGD")
    assert np.array_equal(resumed("SGD", tmp_path, reset_state=True)[0], w_ref)


def test_float32_params_and_state_resume_bit_for_bit(tmp_path):
    opt = AdamW(lr=0.05)
    w0 = np.array([1.0, 1.0], dtype=np.float32)
    grad = lambda w: (COURSE.c * w).astype(np.float32)  # noqa: E731
    w_ref, s_ref = advance(opt, StepDecay(), grad, w0, opt.init(w0), STEPS)
    sched = StepDecay()
    w, s = advance(opt, sched, grad, w0, opt.init(w0), AT)
    save_checkpoint(tmp_path / "f32.npz", params=w, optimizer=state_dict(opt, s), scheduler=sched)
    parts = load_checkpoint(tmp_path / "f32.npz")
    sched = StepDecay()
    sched.load_state_dict(parts["scheduler"])
    w, s = advance(opt, sched, grad, parts["params"], load_state_dict(opt, parts["optimizer"], parts["params"]), STEPS - AT)
    assert w.dtype == np.float32 and np.array_equal(w, w_ref)
    assert_bitwise_equal(s, s_ref)


# ---------------------------------------------------------------- the ticket-triage model

def triage_steps(opt, scaler, surface, w, state, sc, steps):
    """Framework order with a dynamic loss scaler: fp16 gradient of scale * loss, skip on inf, update the scale."""
    skipped = 0
    for _ in range(steps):
        g, found = unscale(scaled_fp16_gradient(surface.grad(w), sc.scale), sc.scale)
        if not found:
            w, state = opt.step(w, g, state)
        skipped += bool(found)
        sc = scaler.update(sc, found)
    return w, state, sc, skipped


@pytest.fixture(scope="module")
def triage():
    d = ticket_triage()
    return d.X_train, d.y_train


def make_triage(triage):
    return (AdamW(lr=0.05, weight_decay=0.01), DynamicLossScaler(init_scale=65536.0, growth_interval=5),
            MinibatchLogistic(*triage, batch_size=32, seed=0))


@pytest.mark.parametrize("forget", [None, "optimizer", "sampler", "scaler"])
def test_minibatch_logistic_with_adamw_and_loss_scaler_resumes_exactly_and_only_with_every_part(triage, tmp_path, forget):
    opt, scaler, surface = make_triage(triage)
    w0 = np.zeros(2)
    w_ref, s_ref, sc_ref, skipped_ref = triage_steps(opt, scaler, surface, w0, opt.init(w0), scaler.init(), STEPS)

    opt, scaler, surface = make_triage(triage)
    w, s, sc, skipped_first = triage_steps(opt, scaler, surface, w0, opt.init(w0), scaler.init(), AT)
    assert 0 < skipped_first < skipped_ref           # the scaler skips steps on both sides of the checkpoint
    save_checkpoint(tmp_path / "triage.npz", params=w, optimizer=state_dict(opt, s), scaler=sc, step=AT,
                    sampler=surface)
    opt, scaler, surface = make_triage(triage)
    parts = load_checkpoint(tmp_path / "triage.npz")
    assert isinstance(parts["scaler"], ScalerState) and parts["scaler"] == sc
    w = parts["params"]
    s = opt.init(w) if forget == "optimizer" else load_state_dict(opt, parts["optimizer"], w)
    if forget != "sampler":
        surface.load_state_dict(parts["sampler"])
    sc = scaler.init() if forget == "scaler" else parts["scaler"]
    w, s, sc, skipped_rest = triage_steps(opt, scaler, surface, w, s, sc, STEPS - AT)
    if forget is None:
        assert np.array_equal(w, w_ref) and sc == sc_ref and skipped_first + skipped_rest == skipped_ref
        assert_bitwise_equal(s, s_ref)
        assert surface.draws == STEPS
    else:
        assert not np.array_equal(w, w_ref)


@pytest.mark.parametrize("runs", [None, 3])
@pytest.mark.parametrize("drawn", [0, 5, 7, 31])
def test_epoch_sampler_continues_the_same_stream_after_a_round_trip_through_a_file(tmp_path, runs, drawn):
    a = EpochSampler(n=20, batch_size=6, seed=3, runs=runs)
    for _ in range(drawn):
        a.next()
    save_checkpoint(tmp_path / "s.npz", sampler=a)
    b = EpochSampler(n=20, batch_size=6, seed=3, runs=runs)
    b.load_state_dict(load_checkpoint(tmp_path / "s.npz")["sampler"])
    assert b.draws == drawn
    for _ in range(12):                                   # crosses two epoch boundaries
        assert np.array_equal(a.next(), b.next())


# ---------------------------------------------------------------- refused, with a message naming the problem

def saved_adamw():
    opt = AdamW(lr=0.01)
    w = np.array([1.0, -2.0])
    w, s = opt.step(w, COURSE.grad(w), opt.init(w))
    return opt, w, state_dict(opt, s)


def test_load_state_dict_refuses_another_optimizer_class():
    _, w, d = saved_adamw()
    with pytest.raises(ValueError, match="holds the state of AdamW, but the optimizer is Adam"):
        load_state_dict(Adam(lr=0.01), d, w)
    with pytest.raises(ValueError, match="state is a SGDState, but the state of AdamW is a AdamState"):
        state_dict(AdamW(), SGDState(step=0, momentum_buffer=None))


def edit(d, change):
    d = {**d, "state": dict(d["state"]), "hyperparameters": dict(d["hyperparameters"])}
    change(d)
    return d


@pytest.mark.parametrize("change, match", [
    (lambda d: d.update(version=VERSION + 1), "version is 2 but this library reads version 1"),
    (lambda d: d.update(format="torch"), "format is 'torch'"),
    (lambda d: d.pop("hyperparameters"), r"missing keys \['hyperparameters'\]"),
    (lambda d: d["state"].pop("v"), r"missing keys \['v'\]"),
    (lambda d: d["state"].update(exp_avg=np.zeros(2)), r"unexpected keys \['exp_avg'\]"),
    (lambda d: d["hyperparameters"].pop("eps"), r"missing keys \['eps'\]"),
    (lambda d: d["state"].update(m=np.zeros(3)), r"state.m has shape \(3,\) but these params need \(2,\)"),
    (lambda d: d["state"].update(v=np.array([1.0, np.nan])), r"state.v has a non-finite value \(nan\) at index \[1\]"),
    (lambda d: d["state"].update(m=np.array([np.inf, 0.0])), r"state.m has a non-finite value \(inf\)"),
    (lambda d: d["state"].update(m=np.zeros(2, np.float32)), "state.m has dtype float32 but these params are float64"),
    (lambda d: d["state"].update(step=-1), "state.step must be an int >= 0"),
    (lambda d: d["state"].update(step=1.5), "state.step must be an int >= 0"),
    (lambda d: d["state"].update(m=None), "state.m is None, but this optimizer needs an array of shape"),
])
def test_load_state_dict_refuses_a_damaged_or_mismatched_state(change, match):
    _, w, d = saved_adamw()
    with pytest.raises(ValueError, match=match):
        load_state_dict(AdamW(lr=0.01), edit(d, change), w)


def test_load_state_dict_refuses_params_of_another_shape():
    _, _, d = saved_adamw()
    with pytest.raises(ValueError, match=r"state.m has shape \(2,\) but these params need \(3,\)"):
        load_state_dict(AdamW(lr=0.01), d, np.zeros(3))


def test_changed_hyperparameters_are_listed_and_loaded_only_when_asked():
    _, w, d = saved_adamw()
    with pytest.raises(ValueError, match=r"lr: saved 0.01, this optimizer 0.02; weight_decay: saved 0.01, "
                                         r"this optimizer 0.0.*allow_new_hyperparameters=True"):
        load_state_dict(AdamW(lr=0.02, weight_decay=0.0), d, w)
    state = load_state_dict(AdamW(lr=0.02, weight_decay=0.0), d, w, allow_new_hyperparameters=True)
    assert np.array_equal(state.m, d["state"]["m"]) and state.step == 1


def test_a_buffer_the_new_settings_do_not_keep_is_refused_even_with_the_flag():
    opt = SGD(lr=0.01, momentum=0.9)
    w = np.array([1.0, 1.0])
    _, s = opt.step(w, COURSE.grad(w), opt.init(w))
    d = state_dict(opt, s)
    with pytest.raises(ValueError, match="momentum: saved 0.9, this optimizer 0.0"):
        load_state_dict(SGD(lr=0.01), d, w)
    with pytest.raises(ValueError, match="state.momentum_buffer holds an array, but this optimizer keeps no momentum_buffer"):
        load_state_dict(SGD(lr=0.01), d, w, allow_new_hyperparameters=True)
    with pytest.raises(ValueError, match="state.momentum_buffer is None, but this optimizer needs an array"):
        load_state_dict(opt, state_dict(SGD(lr=0.01), SGD(lr=0.01).init(w)), w, allow_new_hyperparameters=True)


def test_parameter_groups_must_match_the_checkpoints_exactly():
    groups = [{"params": [0]}, {"params": [1], "weight_decay": 0.0}]
    opt = ParamGroups(AdamW, groups, lr=0.01)
    w = np.array([1.0, 1.0])
    d = state_dict(opt, opt.init(w))
    swapped = ParamGroups(AdamW, [{"params": [1]}, {"params": [0], "weight_decay": 0.0}], lr=0.01)
    with pytest.raises(ValueError, match=r"parameter groups differ.*groups\[0\].params: saved \['indices', \[0\]\]"):
        load_state_dict(swapped, d, w, allow_new_hyperparameters=True)
    with pytest.raises(ValueError, match="optimizer_class: saved 'AdamW', this optimizer 'Adam'"):
        load_state_dict(ParamGroups(Adam, groups, lr=0.01), d, w, allow_new_hyperparameters=True)
    with pytest.raises(ValueError, match=r"groups\[1\].lr: saved 0.01, this optimizer 0.1"):
        load_state_dict(ParamGroups(AdamW, [groups[0], {**groups[1], "lr": 0.1}], lr=0.01), d, w)
    with pytest.raises(ValueError, match="groups: saved 2 groups, this optimizer 1"):
        load_state_dict(ParamGroups(AdamW, [{"params": [0, 1]}], lr=0.01), d, w)


def test_a_checkpoint_part_that_cannot_be_saved_is_refused(tmp_path):
    opt = Adam()
    with pytest.raises(ValueError, match=r"parts\['optimizer'\] is a AdamState; save an optimizer state as state_dict"):
        save_checkpoint(tmp_path / "x.npz", optimizer=opt.init(np.zeros(2)))
    with pytest.raises(ValueError, match=r"parts\['scheduler'\]\['fn'\] is a function"):
        save_checkpoint(tmp_path / "x.npz", scheduler={"fn": lambda k: k})
    with pytest.raises(ValueError, match="at least one part"):
        save_checkpoint(tmp_path / "x.npz")
    assert not (tmp_path / "x.npz").exists()


@pytest.fixture
def good_file(tmp_path):
    opt, w, d = saved_adamw()
    path = tmp_path / "good.npz"
    save_checkpoint(path, params=w, optimizer=d, scaler=ScalerState(scale=1024.0, growth_tracker=3), step=1)
    return path, d


def test_a_truncated_file_is_refused(good_file, tmp_path):
    path, _ = good_file
    raw = path.read_bytes()
    for cut in (10, len(raw) // 2, len(raw) - 30):
        bad = tmp_path / f"cut{cut}.npz"
        bad.write_bytes(raw[:cut])
        with pytest.raises(ValueError, match="truncated or corrupt"):
            load_checkpoint(bad)


def test_a_flipped_byte_in_an_array_is_refused(good_file, tmp_path):
    path, d = good_file
    raw = bytearray(path.read_bytes())
    at = bytes(raw).find(d["state"]["m"].tobytes())
    assert at > 0
    raw[at + 3] ^= 0x10
    bad = tmp_path / "flipped.npz"
    bad.write_bytes(bytes(raw))
    with pytest.raises(ValueError, match="truncated or corrupt"):
        load_checkpoint(bad)


def test_files_that_are_not_checkpoints_are_refused(tmp_path):
    (tmp_path / "text.npz").write_text("not a checkpoint")
    np.savez(tmp_path / "plain.npz", w=np.zeros(2))
    header = np.frombuffer(b'{"format": "something else", "version": 1}', dtype=np.uint8)
    np.savez(tmp_path / "other.npz", __header__=header)
    for name, match in [("text.npz", "truncated or corrupt"), ("plain.npz", "it has no header"),
                        ("other.npz", "does not name the lessons_lib checkpoint format")]:
        with pytest.raises(ValueError, match=match):
            load_checkpoint(tmp_path / name)
    future = np.frombuffer(('{"format": "%s", "version": 9, "parts": {}, "sha256": {}}' % CHECKPOINT_FORMAT).encode(),
                           dtype=np.uint8)
    np.savez(tmp_path / "future.npz", __header__=future)
    with pytest.raises(ValueError, match="checkpoint of version 9; this library reads version 1"):
        load_checkpoint(tmp_path / "future.npz")


def test_an_invalid_loss_scale_is_refused_on_load(tmp_path):
    save_checkpoint(tmp_path / "s.npz", scaler=ScalerState(scale=-1.0, growth_tracker=0))
    with pytest.raises(ValueError, match="scale must be a finite loss scale >= 0"):
        load_checkpoint(tmp_path / "s.npz")


def test_a_sampler_state_is_refused_by_another_sampler_or_data_set(triage):
    a = EpochSampler(n=20, batch_size=6, seed=3)
    a.next()
    with pytest.raises(ValueError, match=r"seed \(saved 3, this sampler 4\)"):
        EpochSampler(n=20, batch_size=6, seed=4).load_state_dict(a.state_dict())
    with pytest.raises(ValueError, match=r"missing keys \['draws'\]"):
        EpochSampler(n=20, batch_size=6, seed=3).load_state_dict({k: v for k, v in a.state_dict().items() if k != "draws"})
    broken = {**a.state_dict(), "perms": np.zeros((1, 20), dtype=np.int64)}
    with pytest.raises(ValueError, match="perms must be None or 1 permutations"):
        EpochSampler(n=20, batch_size=6, seed=3).load_state_dict(broken)
    X, y = triage
    mb = MinibatchLogistic(X, y, batch_size=32)
    mb.grad(np.zeros(2))
    with pytest.raises(ValueError, match="the data X, y"):
        MinibatchLogistic(X[:-1], y[:-1], batch_size=32).load_state_dict(mb.state_dict())
    with pytest.raises(ValueError, match=r"batch_size \(saved 32, this surface 16\)"):
        MinibatchLogistic(X, y, batch_size=16).load_state_dict(mb.state_dict())


def test_the_state_dict_is_plain_values_a_learner_can_read():
    _, _, d = saved_adamw()
    assert d["format"] == FORMAT and d["version"] == VERSION and d["optimizer"] == "AdamW"
    assert d["hyperparameters"] == {"lr": 0.01, "betas": [0.9, 0.999], "eps": 1e-8, "weight_decay": 0.01,
                                    "bias_correction": True}
    assert d["state"]["step"] == 1 and set(d["state"]) == {"step", "m", "v"}


def test_per_run_step_counts_of_a_batch_survive_a_checkpoint(tmp_path):
    """With a scaler, runner.run skips steps in some runs only, so a batch's step count is one int per run."""
    from lessons_lib.runner import run
    opt = Adam(lr=np.array([0.01, 0.02, 0.03]))
    trace = run(opt, 20, start=np.array([[0.1, 0.1], [10.0, 1.0], [0.5, 0.5]]),
                scaler=DynamicLossScaler(init_scale=256.0), record_states=True)
    state = trace.states[-1]
    assert isinstance(state.step, np.ndarray) and len(set(state.step.tolist())) > 1
    save_checkpoint(tmp_path / "b.npz", params=trace.final_params, optimizer=state_dict(opt, state))
    parts = load_checkpoint(tmp_path / "b.npz")
    loaded = load_state_dict(Adam(lr=np.array([0.01, 0.02, 0.03])), parts["optimizer"], parts["params"])
    assert_bitwise_equal(loaded, state)
    with pytest.raises(ValueError, match=r"state.step must be an int >= 0 \(or one per run"):
        load_state_dict(Adam(lr=0.01), parts["optimizer"], parts["params"][0], allow_new_hyperparameters=True)


# ------------------------------------------------------------------ the library's own schedulers

SCHEDULERS = {
    "StepLR": lambda: StepLR(lr=0.05, step_size=20, gamma=0.5),
    "MultiStepLR": lambda: MultiStepLR(lr=0.05, milestones=[10, 45, 70], gamma=0.3),
    "ExponentialLR": lambda: ExponentialLR(lr=0.05, gamma=0.98),
    "CosineAnnealingWarmRestarts": lambda: CosineAnnealingWarmRestarts(lr=0.05, T_0=15, T_mult=2, eta_min=1e-4),
    "OneCycleLR": lambda: OneCycleLR(max_lr=0.05, total_steps=STEPS),
    "ReduceLROnPlateau": lambda: ReduceLROnPlateau(lr=0.05, factor=0.5, patience=3, threshold=0.05),
}


def scheduled_run(make_sched, start_w, start_state, opt, sched, steps):
    """AdamW driven by a scheduler (beta1 cycled by OneCycleLR; the plateau rule fed the loss)."""
    w, state = start_w, start_state
    for _ in range(steps):
        if isinstance(sched, OneCycleLR):
            opt.betas = (sched.momentum, opt.betas[1])
        w, state = opt.step(w, COURSE.grad(w), state, lr=sched.lr)
        if isinstance(sched, ReduceLROnPlateau):
            sched.step(float(COURSE.loss(w)))
        else:
            sched.step()
    return w, state


@pytest.mark.parametrize("name", list(SCHEDULERS))
def test_a_run_with_each_scheduler_resumes_from_a_file_bit_for_bit(name, tmp_path):
    make_sched = SCHEDULERS[name]
    opt, sched = AdamW(lr=0.05, weight_decay=0.01), make_sched()
    w_ref, state_ref = scheduled_run(make_sched, COURSE_START.copy(), opt.init(COURSE_START), opt, sched, STEPS)

    opt, sched = AdamW(lr=0.05, weight_decay=0.01), make_sched()
    w, state = scheduled_run(make_sched, COURSE_START.copy(), opt.init(COURSE_START), opt, sched, AT)
    saved_betas = opt.betas
    path = save_checkpoint(tmp_path / "run.npz", params=w, optimizer=state_dict(opt, state), scheduler=sched, step=AT)
    parts = load_checkpoint(path)
    opt, sched = AdamW(lr=0.05, weight_decay=0.01, betas=saved_betas), make_sched()
    sched.load_state_dict(parts["scheduler"])
    w = parts["params"]
    state = load_state_dict(opt, parts["optimizer"], w)
    w, state = scheduled_run(make_sched, w, state, opt, sched, STEPS - AT)
    assert np.array_equal(w, w_ref)
    assert_bitwise_equal(state, state_ref)
