"""The learner-facing checks: right answers pass, unfinished ones say "not attempted yet",
wrong ones say what is wrong (and which case) without ever printing the expected answer."""
import math

import numpy as np
import pytest

from lessons_lib import checks
from lessons_lib.clipping import clip_by_global_norm
from lessons_lib.datasets import ticket_triage
from lessons_lib.logistic import LogisticSurface, fit_newton, logistic_hessian
from lessons_lib.optimizers import SGD, Adam, AdamW
from lessons_lib.precision import DynamicLossScaler
from lessons_lib.runner import run
from lessons_lib.schedules import Schedule, warmup_cosine
from lessons_lib.surfaces import COURSE, START


def verdict(check, capsys, **names):
    result = check(names)
    printed = capsys.readouterr().out
    assert printed.strip() == result.message
    return result


def assert_wrong(result, *fragments, hidden=()):
    assert result.status == "wrong" and not result, result.message
    assert "factor of" not in result.message, f"a precise factor gives the answer away: {result.message}"
    for f in fragments:
        assert f in result.message, result.message
    for h in hidden:
        assert h not in result.message, f"the message gives the answer away ({h}): {result.message}"


# ------------------------------------------------------------------ reference answers


def sgd_final_loss(lr, steps):
    w = START.copy()
    for _ in range(steps):
        w = w - lr * COURSE.grad(w)
    return float(COURSE.loss(w))


def rmsprop_step(w, g, square_avg, lr, alpha, eps):
    s = alpha * square_avg + (1 - alpha) * g * g
    return w - lr * g / (np.sqrt(s) + eps), s


def adamw_step(w, g, m, v, t, lr, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.01):
    b1, b2 = betas
    m2 = b1 * m + (1 - b1) * g
    v2 = b2 * v + (1 - b2) * g * g
    w2 = w * (1 - lr * weight_decay)
    return w2 - lr * (m2 / (1 - b1**t)) / (np.sqrt(v2 / (1 - b2**t)) + eps), m2, v2


def warmup_cosine_lr(k, peak, final, warmup_steps, total_steps):
    if k < warmup_steps:
        return peak * (k + 1) / warmup_steps
    p = (k - warmup_steps) / (total_steps - warmup_steps - 1)
    return final + (peak - final) * 0.5 * (1 + math.cos(math.pi * p))


def clip_global_norm(grads, max_norm, eps=1e-6):
    total = float(np.sqrt(sum(np.sum(np.asarray(x) ** 2) for x in grads)))
    if not math.isfinite(total):
        raise ValueError("non-finite gradient norm")
    coef = min(1.0, max_norm / (total + eps))
    return [np.asarray(x) * coef for x in grads], total


def scaler_update(scale, growth_tracker, found_inf, growth_factor=2.0, backoff_factor=0.5, growth_interval=2000):
    if found_inf:
        return scale * backoff_factor, 0
    if growth_tracker + 1 >= growth_interval:
        return scale * growth_factor, 0
    return scale, growth_tracker + 1


def optimizer_state_gb(optimizer, n_params, bytes_per_value=4):
    return {"SGD": 0, "SGD + momentum": 1, "Adam": 2, "AdamW": 2}[optimizer] * n_params * bytes_per_value / 1e9


def make_train(ahead=False, clip=True):
    from lessons_lib.optimizers import AdamW as _AdamW
    from lessons_lib.schedules import cosine

    def train(steps, peak_lr=0.08, max_norm=20.0, weight_decay=0.01):
        opt, sched = _AdamW(lr=peak_lr, weight_decay=weight_decay), cosine(peak_lr, steps)
        w, state, n = START.copy(), opt.init(START), 0
        for k in range(steps):
            g = COURSE.grad(w)
            if clip:
                g, norm = clip_by_global_norm(g, max_norm)
                n += int(norm > max_norm)
            w, state = opt.step(w, g, state, lr=sched(k + 1 if ahead else k))
        return w, n
    return train


def path(c, start, lr=0.05, mu=0.0, ema=False, steps=3):
    w, v, rows = np.array(start, float), np.zeros(len(start)), []
    for _ in range(steps):
        g = np.asarray(c) * w
        v = mu * v + ((1 - mu) if ema else 1.0) * g
        w = w - lr * (v if mu else g)
        rows.append(w)
    return np.array(rows)


def adam_path(c, start, lr=0.1, bias_correction=True):
    w, m, v, rows = np.array(start, float), 0.0, 0.0, []
    for t in (1, 2, 3):
        g = np.asarray(c) * w
        m = 0.9 * m + 0.1 * g
        v = 0.999 * v + 0.001 * g * g
        if bias_correction:
            w = w - lr * (m / (1 - 0.9**t)) / (np.sqrt(v / (1 - 0.999**t)) + 1e-8)
        else:
            w = w - lr * m / (np.sqrt(v) + 1e-8)
        rows.append(w)
    return np.array(rows)


def hessian(w, X):
    p = 1.0 / (1.0 + np.exp(-(X @ w)))
    return (X * (p * (1 - p))[:, None]).T @ X / len(X)


def kappa(H):
    eig = np.linalg.eigvalsh(H)
    return float(eig[-1] / eig[0])


TICKETS = ticket_triage(n=3000, seed=0)
X10, Y10 = TICKETS.X_train, TICKETS.y_train
W10 = fit_newton(X10, Y10)
S10 = X10.std(axis=0)
KAPPA_RAW, KAPPA_STD = kappa(hessian(W10, X10)), kappa(hessian(W10 * S10, X10 / S10))


C3, S3 = np.array([10.0, 2.0]), np.array([1.0, -2.0])

CORRECT = {
    "one_sgd_step": dict(w_next=np.array([0.0, 0.99]), loss_next=0.49005),
    "stability_limit": dict(lr_limit=0.02, steep_factor_at_limit=-1.0),
    "stability_run": dict(sgd_final_loss=sgd_final_loss, loss_below=sgd_final_loss(0.0196, 200),
                          loss_above=sgd_final_loss(0.0204, 200)),
    "three_steps_sgd_momentum": dict(my_curvatures=C3, my_start=S3, sgd_path=path(C3, S3),
                                     momentum_path=path(C3, S3, mu=0.9)),
    "adagrad_effective_lr": dict(effective_lr_k=0.1 / math.sqrt(10 * 0.4**2), step_size_k=0.1 / math.sqrt(10)),
    "rmsprop_step": dict(rmsprop_step=rmsprop_step),
    "adam_first_step": dict(first_step=[0.001, 0.001]),
    "v_constant_gradient": dict(v_hat_constant=9.0, variance_constant=0.0),
    "adam_three_steps": dict(adam_curvatures=[50.0, 0.5], adam_start=[-1.0, 3.0],
                             adam_path=adam_path([50.0, 0.5], [-1.0, 3.0])),
    "adamw_step": dict(adamw_step=adamw_step),
    "warmup_cosine_schedule": dict(warmup_cosine_lr=warmup_cosine_lr),
    "scheduler_order": dict(first_lr_scheduler_after=1.5e-4, first_lr_scheduler_before=3e-4),
    "clip_factor": dict(clip_factor=0.1, g_clipped=np.array([3.0, 4.0]), angle_change=0.0),
    "global_norm_clipping": dict(clip_global_norm=clip_global_norm),
    "fp16_underflow": dict(underflows=[False, False, False, True, True], scale_needed=65536.0),
    "loss_scaler_update": dict(scaler_update=scaler_update),
    "optimizer_state_memory": dict(optimizer_state_gb=optimizer_state_gb),
    "training_loop": dict(train=make_train()),
    "logistic_hessian": dict(hessian=hessian),
    "hessian_condition_numbers": dict(kappa_raw=KAPPA_RAW, kappa_std=KAPPA_STD),
}


def test_every_check_has_a_reference_answer():
    names = {n for n in checks.__all__ if n not in ("CheckResult", "library_blocked", "LibraryUsedError")}
    assert names == set(CORRECT)


@pytest.mark.parametrize("name", sorted(CORRECT))
def test_a_right_answer_passes_with_a_short_confirmation(name, capsys):
    result = verdict(getattr(checks, name), capsys, **CORRECT[name])
    assert result and result.status == "correct"
    assert result.message.startswith("Correct: ") and len(result.message) < 220


def _not_implemented(*args, **kwargs):
    raise NotImplementedError()


UNFINISHED = [(name, how) for name in sorted(CORRECT) for how in ("missing", "None", "NotImplementedError")
              if how != "NotImplementedError" or callable(next(iter(CORRECT[name].values())))]


@pytest.mark.parametrize("name, how", UNFINISHED)
def test_an_unfinished_exercise_says_not_attempted_yet(name, how, capsys):
    first, value = next(iter(CORRECT[name].items()))
    names = dict(CORRECT[name])
    if how == "missing":
        del names[first]
    elif how == "None":
        names[first] = None
    else:
        names[first] = _not_implemented
    result = verdict(getattr(checks, name), capsys, **names)
    assert result.status == "not attempted" and not result
    assert result.message.startswith("Not attempted yet") and "Traceback" not in result.message
    assert f"`{first}`" in result.message


def test_the_check_cell_looks_names_up_in_the_callers_namespace(capsys):
    namespace = {"checks": checks}
    exec("result = checks.one_sgd_step()", namespace)          # nothing defined yet: no NameError
    assert namespace["result"].status == "not attempted"
    exec("import numpy as np\nw_next = np.array([0.0, 0.99])\nloss_next = 0.49005\n"
         "result = checks.one_sgd_step()", namespace)
    assert namespace["result"]
    assert "Correct" in capsys.readouterr().out


def test_strict_mode_raises_assertion_error_with_the_message_and_stays_quiet_on_success(capsys):
    with pytest.raises(AssertionError, match="Not attempted yet"):
        checks.one_sgd_step({}, strict=True)
    with pytest.raises(AssertionError, match="moved uphill"):
        checks.one_sgd_step({"w_next": [2.0, 1.01], "loss_next": 0.0}, strict=True)
    assert checks.one_sgd_step(CORRECT["one_sgd_step"], strict=True)
    assert capsys.readouterr().out == ""


def test_a_result_displays_nothing_more_in_a_notebook():
    """The verdict was printed; IPython's display of the returned result must add no output."""
    from IPython.core.interactiveshell import InteractiveShell
    result = checks.one_sgd_step({}, quiet=True)
    assert InteractiveShell.instance().display_formatter.format(result) == ({}, {})


@pytest.mark.parametrize("junk", [None, "text", [1, 2, 3], {"a": 1}, float("nan"), object(), len, np.zeros((2, 2))])
@pytest.mark.parametrize("name", sorted(CORRECT))
def test_junk_gets_a_message_that_names_what_is_wrong(name, junk, capsys):
    """Not the catch-all "could not be checked": each check reads junk and says what it got."""
    names = {k: junk for k in CORRECT[name]}
    result = getattr(checks, name)(names)
    assert result.status in ("wrong", "not attempted")
    assert "could not be checked" not in result.message, result.message


# ------------------------------------------------------------------ lesson 01-02


@pytest.mark.parametrize("w_next, fragment", [
    ("0, 0.99", "it is a str"),
    ([0.0, 0.99, 1.0], "shape (3,)"),
    ([2.0, 1.01], "moved uphill"),
    ([1.0, 0.01], "holds the step"),
    ([-0.8, 0.982], "lr 0.018"),
    ([0.0, 0.98], "`w_next`: b is too small (a is right)"),
    ([0.5, 0.99], "a is too large in size (b is right)"),
])
def test_one_sgd_step_says_what_is_wrong_without_the_answer(w_next, fragment, capsys):
    result = verdict(checks.one_sgd_step, capsys, w_next=w_next, loss_next=0.49005)
    assert_wrong(result, fragment, hidden=("0.99,", "[0.0, 0.99]", "0.49005"))


def test_one_sgd_step_checks_the_loss_at_the_new_point(capsys):
    result = verdict(checks.one_sgd_step, capsys, w_next=[0.0, 0.99], loss_next=50.5)
    assert_wrong(result, "loss at the start")
    result = verdict(checks.one_sgd_step, capsys, w_next=[0.0, 0.99], loss_next=0.9801)
    assert_wrong(result, "leaves out the 0.5", hidden=("0.49",))


@pytest.mark.parametrize("lr, fragment", [(0.01, "multiplier 1 - lr*100 is 0"), (2.0, "shallow curvature"),
                                          (2 / 101, "best fixed rate"), (0.2, "`lr_limit` is too large")])
def test_stability_limit_recognises_the_usual_derivation_slips(lr, fragment, capsys):
    result = verdict(checks.stability_limit, capsys, lr_limit=lr, steep_factor_at_limit=-1.0)
    assert_wrong(result, fragment, hidden=("0.02",))


def test_stability_limit_names_a_sign_error_in_the_multiplier(capsys):
    result = verdict(checks.stability_limit, capsys, lr_limit=0.02, steep_factor_at_limit=1.0)
    assert_wrong(result, "wrong sign")


def test_stability_run_names_the_case_and_the_off_by_one(capsys):
    def one_too_many(lr, steps):
        return sgd_final_loss(lr, steps + 1)

    def uphill(lr, steps):
        return sgd_final_loss(-lr, steps)

    def returns_w(lr, steps):
        return START

    assert_wrong(verdict(checks.stability_run, capsys, sgd_final_loss=one_too_many),
                 "case 'zero steps (the start loss)'", "one step too many")
    assert_wrong(verdict(checks.stability_run, capsys, sgd_final_loss=uphill), "case 'one step at lr 0.01'", "uphill")
    assert_wrong(verdict(checks.stability_run, capsys, sgd_final_loss=returns_w), "should be one number")


def test_stability_run_refuses_the_librarys_optimizer(capsys):
    def with_library(lr, steps):
        return run(SGD(lr), steps).final_loss
    assert_wrong(verdict(checks.stability_run, capsys, sgd_final_loss=with_library), "calls the library's run()")


def test_stability_run_wants_one_run_below_and_one_above(capsys):
    names = dict(CORRECT["stability_run"], loss_above=sgd_final_loss(0.0196, 200))
    assert_wrong(verdict(checks.stability_run, capsys, **names), "`loss_above` did not grow")


# ------------------------------------------------------------------ lesson 03-05


def test_three_steps_validates_the_learners_surface(capsys):
    base = CORRECT["three_steps_sgd_momentum"]
    assert_wrong(verdict(checks.three_steps_sgd_momentum, capsys, **dict(base, my_curvatures=[1, 100])),
                 "course surface")
    assert_wrong(verdict(checks.three_steps_sgd_momentum, capsys, **dict(base, my_curvatures=[3.0, -1.0])),
                 "positive")
    assert_wrong(verdict(checks.three_steps_sgd_momentum, capsys, **dict(base, my_start=[1.0, 2.0, 3.0])),
                 "one coordinate per curvature")


@pytest.mark.parametrize("momentum_path, fragment", [
    (path(C3, S3, mu=0.9, ema=True), "EMA convention"),
    (path(C3, S3), "equals plain SGD"),
])
def test_three_steps_recognises_the_other_momentum_conventions(momentum_path, fragment, capsys):
    names = dict(CORRECT["three_steps_sgd_momentum"], momentum_path=momentum_path)
    assert_wrong(verdict(checks.three_steps_sgd_momentum, capsys, **names), fragment)


def test_three_steps_names_the_first_wrong_step_and_coordinate(capsys):
    wrong = path(C3, S3, mu=0.9)
    wrong[2, 1] += 0.1
    names = dict(CORRECT["three_steps_sgd_momentum"], momentum_path=wrong)
    assert_wrong(verdict(checks.three_steps_sgd_momentum, capsys, **names),
                 "steps 1, 2 are right, step 3 is wrong", "coordinate 1", "(coordinate 0 is right)")
    with_start = np.vstack([S3, path(C3, S3)])
    names = dict(CORRECT["three_steps_sgd_momentum"], sgd_path=with_start)
    assert_wrong(verdict(checks.three_steps_sgd_momentum, capsys, **names), "keep only the positions after steps")


@pytest.mark.parametrize("first_step, fragment", [
    ([-0.001, -0.001], "wrong sign"),
    ([0.1 / math.sqrt(1e-3) * 0.001] * 2, "without bias correction"),
    ([0.01, 0.01], "too large in every coordinate, all by the same factor"),
    ([0.001 / 20.0, 0.001 / 0.2], "square root"),
])
def test_adam_first_step_diagnoses_bias_correction_and_scale(first_step, fragment, capsys):
    result = verdict(checks.adam_first_step, capsys, first_step=first_step)
    assert_wrong(result, fragment, hidden=("0.001",))


@pytest.mark.parametrize("v_hat, fragment", [(0.0, "not centred"), (3.0, "squared gradient"),
                                             (9 * (1 - 0.999**5), "without bias correction")])
def test_v_constant_gradient_separates_second_moment_from_variance(v_hat, fragment, capsys):
    result = verdict(checks.v_constant_gradient, capsys, v_hat_constant=v_hat, variance_constant=0.0)
    assert_wrong(result, fragment, hidden=("9.0", " 9 "))


def test_adam_three_steps_detects_missing_bias_correction(capsys):
    c, s = [50.0, 0.5], [-1.0, 3.0]
    result = verdict(checks.adam_three_steps, capsys, adam_curvatures=c, adam_start=s,
                     adam_path=adam_path(c, s, bias_correction=False))
    assert_wrong(result, "bias correction")


# ------------------------------------------------------------------ lesson 04

LR04, G04, K04 = 0.1, 0.4, 10          # the exercise's numbers, by hand below


@pytest.mark.parametrize("effective_lr_k, step_size_k, fragment", [
    (LR04 / (K04 * G04**2), 1.0, "divides lr by the sum of squares"),
    (LR04 / G04, 1.0, "counts one squared gradient"),
    (LR04 / math.sqrt(K04), 1.0, "is the size of the step"),
    (LR04, 1.0, "is lr itself"),
    (LR04 / math.sqrt((K04 - 1) * G04**2), 1.0, "off by one"),
    (LR04 / math.sqrt(K04 * G04**2), LR04 / math.sqrt(K04 * G04**2), "is the effective learning rate"),
    (LR04 / math.sqrt(K04 * G04**2), -LR04 / math.sqrt(K04), "is negative"),
    (LR04 / math.sqrt(K04 * G04**2), LR04, "the first step (k = 1)"),
    (LR04 / math.sqrt(K04 * G04**2), LR04 * G04, "plain SGD step"),
    (LR04 / math.sqrt(K04 * G04**2), LR04 / K04, "divides by k"),
    (LR04 / math.sqrt(K04 * G04**2), LR04 / math.sqrt(K04 + 1), "off by one"),
    (LR04 / math.sqrt(K04 * G04**2), 0.05, "`step_size_k` is too large"),
])
def test_adagrad_effective_lr_names_the_usual_slips(effective_lr_k, step_size_k, fragment, capsys):
    result = verdict(checks.adagrad_effective_lr, capsys, effective_lr_k=effective_lr_k, step_size_k=step_size_k)
    assert_wrong(result, fragment, hidden=("0.079", "0.0316", "0.03162"))


def _rmsprop_variant(kind):
    def step(w, g, square_avg, lr, alpha, eps):
        a = 1 - alpha if kind == "swapped" else alpha
        if kind == "no square":
            s = a * square_avg + (1 - a) * g
        elif kind == "sum":
            s = square_avg + g * g
        elif kind == "in place":
            square_avg *= alpha
            square_avg += (1 - alpha) * g * g
            s = square_avg
        else:
            s = a * square_avg + (1 - a) * g * g
        denom = {"eps inside": np.sqrt(s + eps), "no eps": np.sqrt(s), "no root": s + eps,
                 "previous square_avg": np.sqrt(square_avg) + eps}.get(kind, np.sqrt(s) + eps)
        w_new = w + lr * g / denom if kind == "uphill" else w - lr * g / denom
        if kind == "float64":
            return np.asarray(w_new, dtype=np.float64), np.asarray(s, dtype=np.float64)
        if kind == "swapped order":
            return s, w_new
        if kind == "returns w only":
            return w_new
        if kind == "one number":
            return float(np.sum(w_new)), s
        if kind == "nan":
            return w_new * np.nan, s
        if kind == "library":
            from lessons_lib.adaptive import RMSprop, RMSpropState
            w2, st = RMSprop(lr=lr, alpha=alpha, eps=eps).step(w, g, RMSpropState(0, square_avg, None, None))
            return w2, st.square_avg
        return w_new, s
    return step


@pytest.mark.parametrize("kind, fragments", [
    ("eps inside", ["case 'first step (square_avg = 0)'", "eps went inside the square root"]),
    ("no square", ["average the squared gradient"]),
    ("sum", ["AdaGrad's ever-growing sum"]),
    ("swapped", ["alpha and 1 - alpha are swapped"]),
    ("no eps", ["eps is missing"]),
    ("no root", ["divides by square_avg itself"]),
    ("previous square_avg", ["divides by the previous square_avg"]),
    ("uphill", ["moved uphill"]),
    ("swapped order", ["in the wrong order"]),
    ("in place", ["changed the `square_avg` passed to it in place"]),
    ("float64", ["case 'float32 parameters stay float32'", "`w_new` is float64 for float32 inputs"]),
    ("returns w only", ["should return a tuple (w_new, square_avg_new)"]),
    ("one number", ["`w_new` has shape ()"]),
    ("nan", ["`w_new` contains nan or inf"]),
])
def test_rmsprop_step_names_each_known_mistake(kind, fragments, capsys):
    result = verdict(checks.rmsprop_step, capsys, rmsprop_step=_rmsprop_variant(kind))
    assert_wrong(result, *fragments)


def test_rmsprop_step_refuses_the_librarys_rmsprop(capsys):
    result = verdict(checks.rmsprop_step, capsys, rmsprop_step=_rmsprop_variant("library"))
    assert_wrong(result, "calls the library's RMSprop.step")


def test_rmsprop_step_accepts_torchs_own_route_and_a_batch_written_with_loops(capsys):
    def lerp_form(w, g, square_avg, lr, alpha, eps):       # torch: square_avg.mul_(alpha).addcmul_(g, g, 1 - alpha)
        s = square_avg + (1 - alpha) * (g * g - square_avg)
        return w - lr * (g / (np.sqrt(s) + eps)), s

    def by_entry(w, g, square_avg, lr, alpha, eps):
        w_new, s_new = np.empty_like(w), np.empty_like(square_avg)
        for i in np.ndindex(w.shape):
            s_new[i] = alpha * square_avg[i] + (1 - alpha) * g[i] ** 2
            w_new[i] = w[i] - lr * g[i] / (math.sqrt(s_new[i]) + eps)
        return w_new, s_new

    for fn in (lerp_form, by_entry):
        assert verdict(checks.rmsprop_step, capsys, rmsprop_step=fn)


def test_rmsprop_step_names_the_case_and_coordinate_of_an_unknown_slip(capsys):
    def late_slip(w, g, square_avg, lr, alpha, eps):
        w_new, s = rmsprop_step(w, g, square_avg, lr, alpha, eps)
        if w.ndim == 2:
            w_new = w_new.copy()
            w_new[1, 0] += 0.5
        return w_new, s

    result = verdict(checks.rmsprop_step, capsys, rmsprop_step=late_slip)
    assert_wrong(result, "case 'a batch of 3 runs, shape (3, 2)'", "entry [1, 0] is too large")


# ------------------------------------------------------------------ lesson 06


def _adamw_variant(kind):
    def step(w, g, m, v, t, lr, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.01):
        b1, b2 = betas
        if kind == "coupled":
            g = g + weight_decay * w
        m2 = b1 * m + (1 - b1) * g
        v2 = b2 * v + (1 - b2) * g * g
        t_used = t + 1 if kind == "t+1" else t
        upd = (m2 / (1 - b1**t_used)) / (np.sqrt(v2 / (1 - b2**t_used)) + eps)
        if kind == "no bias correction":
            upd = m2 / (np.sqrt(v2) + eps)
        if kind == "decay after":
            return (w - lr * upd) * (1 - lr * weight_decay), m2, v2
        if kind == "coupled":
            return w - lr * upd, m2, v2
        if kind == "in place":
            w *= 1 - lr * weight_decay
            return w - lr * upd, m2, v2
        if kind == "returns w only":
            return w * (1 - lr * weight_decay) - lr * upd
        if kind == "library":
            from lessons_lib.optimizers import AdamState
            w2, st = AdamW(lr=lr, betas=betas, eps=eps, weight_decay=weight_decay).step(w, g, AdamState(t - 1, m, v))
            return w2, st.m, st.v
        return w * (1 - lr * weight_decay) - lr * upd, m2, v2
    return step


@pytest.mark.parametrize("kind, fragments", [
    ("decay after", ["case 'decay on the pre-step weights'", "after the Adam update"]),
    ("coupled", ["case 'decay on the pre-step weights'", "went into the gradient"]),
    ("in place", ["changed the `w` passed to it in place", "Did you keep the pre-step weights?"]),
    ("no bias correction", ["case 'first step (t=1)'", "no bias correction"]),
    ("t+1", ["case 'first step (t=1)'", "t + 1"]),
    ("returns w only", ["should return a tuple (w_new, m_new, v_new)"]),
    ("library", ["calls the library's Adam.step"]),
])
def test_adamw_step_names_the_failing_case_and_the_mistake(kind, fragments, capsys):
    result = verdict(checks.adamw_step, capsys, adamw_step=_adamw_variant(kind))
    assert_wrong(result, *fragments)


def test_the_library_is_restored_after_a_blocked_call():
    originals = (Adam.step, SGD.step, Schedule.__call__, DynamicLossScaler.update,
                 clip_by_global_norm.__code__, run.__code__)
    with pytest.raises(checks.LibraryUsedError):
        with checks.library_blocked("optimizers", "schedules", "loss_scaler", "clip_by_global_norm", "run"):
            clip_by_global_norm(np.ones(2), 1.0)
    assert (Adam.step, SGD.step, Schedule.__call__, DynamicLossScaler.update,
            clip_by_global_norm.__code__, run.__code__) == originals
    assert run(SGD(0.01), 1).final_params.tolist() == [0.0, 0.99]


# ------------------------------------------------------------------ lesson 07-08


def _schedule_variant(kind):
    def lr(k, peak, final, warmup_steps, total_steps):
        if k < warmup_steps:
            return peak * (k if kind == "k/W" else k + 1) / warmup_steps
        denom = total_steps - warmup_steps - (0 if kind == "T-W" else 1)
        p = (k - warmup_steps) / denom
        low = 0.0 if kind == "to zero" else final
        return low + (peak - low) * 0.5 * (1 + math.cos(math.pi * p))
    return lr


@pytest.mark.parametrize("kind, fragments", [
    ("k/W", ["case 'first warmup step (k=0)'", "(k + 1) / warmup_steps"]),
    ("T-W", ["case 'last step lands on final'", "(total_steps - warmup_steps - 1)"]),
    ("to zero", ["case 'last step lands on final'", "decays to 0"]),
])
def test_warmup_cosine_names_the_boundary_that_fails(kind, fragments, capsys):
    result = verdict(checks.warmup_cosine_schedule, capsys, warmup_cosine_lr=_schedule_variant(kind))
    assert_wrong(result, *fragments)


def test_warmup_cosine_refuses_the_librarys_schedule(capsys):
    def lib(k, peak, final, w, t):
        return warmup_cosine(peak, final, w, t)(k)
    assert_wrong(verdict(checks.warmup_cosine_schedule, capsys, warmup_cosine_lr=lib), "calls the library's schedules")


def test_scheduler_order_notices_swapped_answers(capsys):
    result = verdict(checks.scheduler_order, capsys, first_lr_scheduler_after=3e-4, first_lr_scheduler_before=1.5e-4)
    assert_wrong(result, "swapped")


@pytest.mark.parametrize("names, fragment", [
    (dict(clip_factor=10.0), "inverted"),
    (dict(clip_factor=0.1, g_clipped=[5.0, 5.0]), "value clipping"),
    (dict(clip_factor=0.1, g_clipped=[3.0, 4.0], angle_change=12.0), "single positive scale factor"),
])
def test_clip_factor_explains_the_mistake(names, fragment, capsys):
    assert_wrong(verdict(checks.clip_factor, capsys, **names), fragment, hidden=("0.1 ", "[3.0, 4.0]"))


def _clip_variant(kind):
    def clip(grads, max_norm, eps=1e-6):
        arrays = [np.asarray(x, float) for x in grads]
        total = float(np.sqrt(sum(np.sum(x * x) for x in arrays)))
        if kind == "per array":
            return [x * min(1.0, max_norm / (np.linalg.norm(x) + eps)) for x in arrays], total
        if kind == "unclamped":
            return [x * max_norm / (total + eps) for x in arrays], total
        if kind == "post-clip norm":
            coef = min(1.0, max_norm / (total + eps))
            return [x * coef for x in arrays], total * coef
        if kind == "in place":
            for x in grads:
                x *= min(1.0, max_norm / (total + eps))
            return list(grads), total
        return [x * min(1.0, max_norm / (total + eps)) for x in arrays], total   # "no raise"
    return clip


@pytest.mark.parametrize("kind, fragments", [
    ("per array", ["case 'one norm over all the arrays'", "its own norm"]),
    ("unclamped", ["case 'below the threshold: unchanged'", "capped at 1"]),
    ("post-clip norm", ["norm before clipping"]),
    ("in place", ["in place"]),
    ("no raise", ["case 'an inf gradient must raise'"]),
])
def test_global_norm_clipping_names_the_failing_case(kind, fragments, capsys):
    result = verdict(checks.global_norm_clipping, capsys, clip_global_norm=_clip_variant(kind))
    assert_wrong(result, *fragments)


# ------------------------------------------------------------------ lesson 09-10


@pytest.mark.parametrize("names, fragment", [
    (dict(underflows=[False, False, True, True, True], scale_needed=65536), "subnormal"),
    (dict(underflows=[False, False, False, True, True], scale_needed=32768), "too small"),
    (dict(underflows=[False, False, False, True, True], scale_needed=2.0**20), "not the smallest"),
    (dict(underflows=[False, False, False, True, True], scale_needed=60000), "power of two"),
])
def test_fp16_underflow_feedback(names, fragment, capsys):
    assert_wrong(verdict(checks.fp16_underflow, capsys, **names), fragment, hidden=("65536",))


def _scaler_variant(kind):
    def update(scale, tracker, found_inf, growth_factor=2.0, backoff_factor=0.5, growth_interval=2000):
        if found_inf:
            return scale * backoff_factor, (tracker if kind == "no reset on inf" else 0)
        grow_at = growth_interval - (1 if kind == "early" else 0)
        if tracker + 1 >= grow_at:
            return scale * growth_factor, (tracker + 1 if kind == "no reset on growth" else 0)
        return scale, tracker + 1
    return update


@pytest.mark.parametrize("kind, fragments", [
    ("no reset on inf", ["case 'inf step: back off and reset the counter'", "not reset"]),
    ("no reset on growth", ["grow and reset", "not reset to 0 afterwards"]),
    ("early", ["one before growth_interval", "one step early"]),
])
def test_loss_scaler_update_names_the_inf_and_growth_cases(kind, fragments, capsys):
    result = verdict(checks.loss_scaler_update, capsys, scaler_update=_scaler_variant(kind))
    assert_wrong(result, *fragments)


def test_optimizer_state_memory_spots_counting_weights_and_gib(capsys):
    def with_weights(opt, n, b=4):
        return optimizer_state_gb(opt, n, b) + 2 * n * b / 1e9

    def gib(opt, n, b=4):
        return optimizer_state_gb(opt, n, b) * 1e9 / 2**30

    assert_wrong(verdict(checks.optimizer_state_memory, capsys, optimizer_state_gb=with_weights), "weights and gradients")
    assert_wrong(verdict(checks.optimizer_state_memory, capsys, optimizer_state_gb=gib), "GiB")


def test_training_loop_spots_the_scheduler_stepped_first_and_missing_clipping(capsys):
    assert_wrong(verdict(checks.training_loop, capsys, train=make_train(ahead=True)), "one step ahead")
    assert_wrong(verdict(checks.training_loop, capsys, train=make_train(clip=False)), "not clipped")


# ------------------------------------------------------------------ lesson 11


def _hessian_variant(kind):
    def H(w, X):
        n, d = X.shape
        p = 1.0 / (1.0 + np.exp(-(X @ w)))
        weights = p * (1 - p)
        if kind == "no weights":
            return X.T @ X / n
        if kind == "no mean":
            return (X * weights[:, None]).T @ X
        if kind == "weights p":
            return (X * p[:, None]).T @ X / n
        if kind == "weights twice":
            return (X * weights[:, None]).T @ (X * weights[:, None]) / n
        if kind == "one average weight":
            return weights.mean() * X.T @ X / n
        if kind == "minus":
            return -hessian(w, X)
        if kind == "rows x rows":
            return (X * weights[:, None]) @ X.T / n
        if kind == "typo in a loop":
            out = np.empty((d, d))
            for j in range(d):
                for k in range(d):
                    out[j, k] = np.mean(weights * X[:, j] * X[:, min(j, k)])
            return out
        if kind == "in place":
            X *= np.sqrt(weights)[:, None]
            return X.T @ X / n
        if kind == "two features only":
            return hessian(w[:2], X[:, :2])
        if kind == "no return":
            hessian(w, X)
            return None
        if kind == "library":
            return logistic_hessian(w, X)
        if kind == "library surface":
            return LogisticSurface(X, (X @ w > 0).astype(float)).hessian(w)
        if kind == "off in one entry":
            out = hessian(w, X)
            out[1, 1] *= 1.5
            return out
        raise AssertionError(kind)
    return H


@pytest.mark.parametrize("kind, fragments", [
    ("no weights", ["case 'w = 0, where every p(1 - p) is 1/4'", "X^T X / n: the weights are missing"]),
    ("no mean", ["not divided by n", "the sum over the rows"]),
    ("weights p", ["case 'w = 0, where every p(1 - p) is 1/4'", "weighted by p_i;"]),
    ("weights twice", ["case 'w = 0, where every p(1 - p) is 1/4'", "end up squared"]),
    ("one average weight", ["case 'five rows, away from the optimum'", "same, average weight"]),
    ("minus", ["wrong sign", "convex"]),
    ("rows x rows", ["is 5 x 5, one entry per pair of rows", "2 x 2"]),
    ("typo in a loop", ["not symmetric: entry [0, 1] differs from entry [1, 0]"]),
    ("in place", ["changed the `X` passed to it in place"]),
    ("two features only", ["case 'three features'", "shape (2, 2); for 3 weights it should be (3, 3)"]),
    ("no return", ["returned None", "`return`"]),
    ("library", ["calls the library's logistic_hessian"]),
    ("library surface", ["calls the library's logistic_hessian"]),
    ("off in one entry", ["case 'w = 0, where every p(1 - p) is 1/4'",
                          "`hessian(w, X)`: entry [1, 1] is too large (entry [0, 0], "
                          "entry [0, 1] and entry [1, 0] are right)"]),
])
def test_logistic_hessian_names_the_case_and_the_mistake(kind, fragments, capsys):
    result = verdict(checks.logistic_hessian, capsys, hessian=_hessian_variant(kind))
    assert_wrong(result, *fragments, hidden=("np.float64", "np.int64"))


def test_logistic_hessian_is_restored_after_the_check():
    code = logistic_hessian.__code__
    checks.logistic_hessian({"hessian": _hessian_variant("library")}, quiet=True)
    assert logistic_hessian.__code__ is code
    assert np.allclose(logistic_hessian(np.zeros(2), np.eye(2)), 0.125 * np.eye(2))


GIVEAWAYS_10 = ("107.9", "107.87", "1.84", f"{KAPPA_RAW:.3g}", f"{KAPPA_STD:.3g}")


@pytest.mark.parametrize("kappa_raw, kappa_std, fragment", [
    (KAPPA_STD, KAPPA_RAW, "swapped"),
    (KAPPA_STD, KAPPA_STD, "`kappa_raw` is the condition number for the standardised inputs"),
    (kappa(X10.T @ X10 / len(X10)), KAPPA_STD, "X^T X / n, the Hessian without its weights"),
    (kappa(hessian(np.zeros(2), X10)), KAPPA_STD, "at w = 0"),
    (1 / KAPPA_RAW, KAPPA_STD, "smallest eigenvalue over the largest"),
    (float(np.diag(hessian(W10, X10)).max() / np.diag(hessian(W10, X10)).min()), KAPPA_STD, "diagonal entries"),
    (float(np.linalg.cond(X10)), KAPPA_STD, "data matrix X"),
    (0.5, KAPPA_STD, "below 1"),
    (KAPPA_RAW, kappa(hessian(W10, X10 / S10)), "evaluated at `w_star`, the optimum in raw units"),
    (KAPPA_RAW, kappa(hessian(W10 / S10, X10 / S10)), "the weights moved the wrong way"),
    (KAPPA_RAW, kappa(hessian(np.zeros(2), X10 / S10)), "at w = 0"),
    (KAPPA_RAW, kappa(hessian(W10 / S10, X10 * S10)), "multiplied by their standard deviations"),
    (KAPPA_RAW, kappa(hessian(W10 * S10, (X10 - X10.mean(axis=0)) / S10)), "centred"),
    (KAPPA_RAW, KAPPA_RAW, "equals the raw condition number"),
    (KAPPA_RAW, 2 * KAPPA_STD, "`kappa_std` is too large"),
])
def test_condition_numbers_name_the_wrong_point_and_the_usual_slips(kappa_raw, kappa_std, fragment, capsys):
    result = verdict(checks.hessian_condition_numbers, capsys, kappa_raw=kappa_raw, kappa_std=kappa_std)
    assert_wrong(result, fragment, hidden=GIVEAWAYS_10)


def test_condition_numbers_accept_any_correct_route(capsys):
    refit = fit_newton(X10 / S10, Y10)                        # a new fit instead of w_star * s
    ddof1 = X10.std(axis=0, ddof=1)                           # the sample standard deviation
    for raw, std in [(np.float64(KAPPA_RAW), np.array([kappa(hessian(refit, X10 / S10))])),
                     (float(np.linalg.cond(hessian(W10, X10))), kappa(hessian(W10 * ddof1, X10 / ddof1)))]:
        assert verdict(checks.hessian_condition_numbers, capsys, kappa_raw=raw, kappa_std=std)



# ------------------------------------------------------------------ the library block

def test_the_block_closes_every_route_to_a_piece_and_restores_it():
    from lessons_lib import memory, schedules
    from lessons_lib.optimizers import AdamW
    saved_step = AdamW.step                       # a reference taken before the block
    sched = schedules.cosine(0.1, 10)
    w = np.ones(2)
    opt = AdamW(0.01)
    with checks.library_blocked("optimizers", "schedules", "memory"):
        for route in (lambda: opt.step(w, w, opt.init(w)), lambda: saved_step(opt, w, w, opt.init(w)),
                      lambda: sched(3), lambda: schedules.FORMULAS["cosine"](3.0, 0.1, 10, 0.0),
                      lambda: memory.state_gigabytes("AdamW", 7e9)):
            with pytest.raises(checks.LibraryUsedError):
                route()
    assert sched(9) == 0.0 and memory.state_gigabytes("AdamW", 7e9) == 56.0
    assert opt.step(w, w, opt.init(w))[1].step == 1


def test_a_schedule_keeps_no_callable_that_could_bypass_the_block():
    from lessons_lib import schedules
    sched = schedules.warmup_cosine(0.1, 0.0, 2, 10)
    assert not any(callable(v) for v in vars(sched).values())


def test_the_state_memory_exercise_may_not_call_the_library_table():
    from lessons_lib.memory import state_gigabytes

    def optimizer_state_gb(optimizer, n_params, bytes_per_value=4):
        return state_gigabytes(optimizer, n_params, bytes_per_value)

    result = checks.optimizer_state_memory({"optimizer_state_gb": optimizer_state_gb}, quiet=True)
    assert result.status == "wrong" and "memory table" in result.message
