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


def warm_restarts_lr(epoch, lr, T_0, T_mult, eta_min):
    """Lesson 12's SGDR rate by hand: subtract whole cycles until the epoch lies inside one."""
    t_cur, t_i = epoch, T_0
    while t_cur >= t_i:
        t_cur, t_i = t_cur - t_i, t_i * T_mult
    return eta_min + (lr - eta_min) * (1 + math.cos(math.pi * t_cur / t_i)) / 2


def accumulated_grad(w, X, y, k):
    """Lesson 12's accumulation by hand: the mean of the k micro-batches' mean gradients."""
    if len(X) % k:
        raise ValueError(f"n = {len(X)} rows do not split into k = {k} equal micro-batches")
    grads = [(1 / (1 + np.exp(-(Xj @ w))) - yj) @ Xj / len(Xj) for Xj, yj in zip(np.split(X, k), np.split(y, k))]
    return np.sum(grads, axis=0) / k


def lion_step(w, g, m, lr, beta1, beta2, weight_decay):
    """Lesson 13's Lion step by hand: the sign of the blend c, decay on the pre-step w, then m."""
    c = beta1 * m + (1 - beta1) * g
    return w - lr * np.sign(c) - lr * weight_decay * w, beta2 * m + (1 - beta2) * g


def quantize_block(x):
    """Lesson 13's int8 block by hand: absmax scale, round(127 x / scale), an all-zero block kept at 0."""
    scale = np.abs(x).max()
    if scale == 0:
        return np.zeros(x.shape, dtype=np.int8), scale
    return np.round(x * (127 / scale)).astype(np.int8), scale


def dequantize_block(codes, scale):
    return codes * scale / 127


GB_13 = dict(adamw_state_gb=10.4, lion_state_gb=5.2, adamw8bit_state_gb=2.68125)   # 1.3e9 * (2 + 16/256) / 1e9

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
    "initial_loss": dict(initial_loss_2=math.log(2), initial_loss_10=math.log(10),
                         ticket_loss_w0=LogisticSurface(X10, Y10).loss(np.zeros(2))),
    "warm_restarts": dict(warm_restarts_lr=warm_restarts_lr),
    "gradient_accumulation": dict(accumulated_grad=accumulated_grad),
    "lean_state_bytes": dict(GB_13),
    "lion_step": dict(lion_step=lion_step),
    "int8_block": dict(quantize_block=quantize_block, dequantize_block=dequantize_block),
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


# ------------------------------------------------------------------ lesson 12

LOSS12 = dict(initial_loss_2=math.log(2), initial_loss_10=math.log(10), ticket_loss_w0=math.log(2))
GIVEAWAYS_12 = ("0.693", "2.30", "0.6931", "2.3026")


def test_initial_loss_accepts_other_correct_routes(capsys):
    from lessons_lib.logistic import logistic_loss
    for names in [dict(initial_loss_2=np.log(2.0), initial_loss_10=-np.log(0.1),
                       ticket_loss_w0=logistic_loss(np.zeros(2), X10, Y10)),
                  dict(initial_loss_2=np.array([-math.log(0.5)]), initial_loss_10=math.log1p(9),
                       ticket_loss_w0=float(np.mean(np.log1p(np.exp(np.zeros(len(Y10)))))))]:
        assert verdict(checks.initial_loss, capsys, **names)


@pytest.mark.parametrize("changes, fragment", [
    (dict(initial_loss_2=math.log10(2)), "base-10 logarithm"),
    (dict(initial_loss_10=math.log2(10)), "base-2 logarithm"),
    (dict(initial_loss_10=0.1), "the probability the model gives each class"),
    (dict(initial_loss_2=0.5), "the probability the model gives each class"),
    (dict(initial_loss_10=0.9), "the probability of the wrong classes"),
    (dict(initial_loss_2=-math.log(2)), "is negative"),
    (dict(initial_loss_2=math.log(10), initial_loss_10=math.log(2)), "are swapped"),
    (dict(initial_loss_10=3.0), "`initial_loss_10` is too large"),
    (dict(ticket_loss_w0=LogisticSurface(X10, Y10).optimal_loss), "the loss at the optimum"),
    (dict(ticket_loss_w0=len(Y10) * math.log(2)), "a sum over the training rows"),
    (dict(ticket_loss_w0=0.5), "sigmoid(0)"),
    (dict(ticket_loss_w0=math.log10(2)), "base-10 logarithm"),
])
def test_initial_loss_names_each_known_mistake(changes, fragment, capsys):
    result = verdict(checks.initial_loss, capsys, **{**LOSS12, **changes})
    assert_wrong(result, fragment, hidden=GIVEAWAYS_12)


def _cycle_by_powers(epoch, T_0, T_mult):
    """The cycle from a whole-number count of finished cycles (no floating-point logarithm)."""
    if T_mult == 1:
        return epoch % T_0, T_0
    n, start = 0, 0
    while start + T_0 * T_mult**n <= epoch:
        start += T_0 * T_mult**n
        n += 1
    return epoch - start, T_0 * T_mult**n


def _warm_restarts_variant(kind):
    def rate(epoch, lr, T_0, T_mult, eta_min):
        if kind == "library":
            from lessons_lib.lr_schedulers import CosineAnnealingWarmRestarts
            sched = CosineAnnealingWarmRestarts(lr, T_0, T_mult, eta_min)
            sched.step(epoch)
            return sched.lr
        if kind == "torch log":                     # torch's step(epoch), line by line
            if epoch >= T_0:
                if T_mult == 1:
                    t_cur, t_i = epoch % T_0, T_0
                else:
                    n = int(math.log((epoch / T_0 * (T_mult - 1) + 1), T_mult))
                    t_cur, t_i = epoch - T_0 * (T_mult**n - 1) / (T_mult - 1), T_0 * T_mult**n
            else:
                t_cur, t_i = epoch, T_0
        else:
            t_cur = math.floor(epoch) if kind == "floor" else epoch
            t_i = T_0
            extra = {"late": 1, "early": -1}.get(kind, 0)
            while (t_cur > t_i) if kind == "late by >" else (t_cur >= t_i + extra):
                t_cur -= t_i + extra
                t_i *= 1 if kind == "no T_mult" else T_mult
            if kind == "T_0 cosine":
                t_i = T_0
        if kind == "late twice":                    # wrong at the second restart only: the generic route
            start2 = T_0 + T_0 * T_mult
            if start2 <= epoch < start2 + 1:
                t_cur, t_i = T_0 * T_mult, T_0 * T_mult
        angle = (180.0 if kind == "degrees" else math.pi) * t_cur / t_i
        half = (1 - math.cos(angle) if kind == "phase" else 1 + math.cos(angle)) / 2
        if kind == "no eta_min":
            return lr * half
        if kind == "eta_min not subtracted":
            return eta_min + lr * half
        if kind == "array":
            return np.array([eta_min, eta_min + (lr - eta_min) * half])
        if kind == "off at 6.25" and epoch == 6.25:
            return 0.5
        return eta_min + (lr - eta_min) * half
    return rate


def test_warm_restarts_accepts_other_correct_routes(capsys):
    def by_powers(epoch, lr, T_0, T_mult, eta_min):
        t_cur, t_i = _cycle_by_powers(epoch, T_0, T_mult)
        return float(eta_min + (lr - eta_min) * 0.5 * (1 + np.cos(np.pi * t_cur / t_i)))

    def by_torch_chain(epoch, lr, T_0, T_mult, eta_min):   # torch's step() chain, then the fraction
        t_cur, t_i = 0, T_0
        for _ in range(math.floor(epoch)):
            t_cur += 1
            if t_cur >= t_i:
                t_cur, t_i = t_cur - t_i, t_i * T_mult
        t_cur += epoch - math.floor(epoch)
        return eta_min + (lr - eta_min) * (1 + math.cos(math.pi * t_cur / t_i)) / 2

    for fn in (by_powers, by_torch_chain):
        assert verdict(checks.warm_restarts, capsys, warm_restarts_lr=fn)


@pytest.mark.parametrize("kind, fragments", [
    ("late", ["case 'T_0 = 5, T_mult = 1", "one epoch late"]),
    ("late by >", ["one epoch late"]),
    ("early", ["one epoch early"]),
    ("no T_mult", ["case 'T_0 = 3, T_mult = 2", "T_mult is ignored"]),
    ("T_0 cosine", ["the cosine spans T_0 epochs in every cycle"]),
    ("no eta_min", ["eta_min is forgotten"]),
    ("eta_min not subtracted", ["eta_min is added but not taken off"]),
    ("phase", ["the cosine has the wrong phase"]),
    ("degrees", ["the cosine got degrees"]),
    ("torch log", ["case 'T_0 = 1, T_mult = 3", "your cycle count rounds down"]),
    ("floor", ["case 'fractional epochs", "fractional epochs are rounded down"]),
    ("library", ["calls the library's CosineAnnealingWarmRestarts"]),
    ("array", ["should be one number"]),
    ("late twice", ["restart number 2 comes too late (or is missing)"]),
    ("off at 6.25", ["case 'fractional epochs", "at epoch 6.25 (the epochs before it are right)", "too large"]),
])
def test_warm_restarts_names_each_known_mistake(kind, fragments, capsys):
    result = verdict(checks.warm_restarts, capsys, warm_restarts_lr=_warm_restarts_variant(kind))
    assert_wrong(result, *fragments)


def test_warm_restarts_agrees_with_torch_on_its_own_cases():
    """The check's expected rates are torch's, up to torch's documented slip at an exact restart."""
    torch = pytest.importorskip("torch")
    from lessons_lib.checks.training import _warm_restarts_cases
    for case, lr, T_0, T_mult, eta_min, epochs in _warm_restarts_cases():
        opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1, dtype=torch.float64))], lr=lr)
        sched = torch.optim.lr_scheduler.CosineAnnealingWarmRestarts(opt, T_0, T_mult, eta_min)
        for e in epochs:
            sched.step(e)
            if not (T_0, T_mult, e) == (1, 3, 121):
                assert sched.get_last_lr()[0] == pytest.approx(warm_restarts_lr(e, lr, T_0, T_mult, eta_min),
                                                               rel=1e-12), (case, e)


def test_warm_restarts_check_restores_the_library():
    from lessons_lib.lr_schedulers import CosineAnnealingWarmRestarts
    checks.warm_restarts({"warm_restarts_lr": _warm_restarts_variant("library")}, quiet=True)
    sched = CosineAnnealingWarmRestarts(1.0, 4, 2)
    sched.step(2.0)
    assert sched.lr == pytest.approx(0.5, rel=1e-15)


def _accumulation_variant(kind):
    def acc(w, X, y, k):
        n = len(X)
        if kind == "array_split":
            parts = list(zip(np.array_split(X, k), np.array_split(y, k)))
        else:
            if n % k and kind != "no error":
                raise ValueError(f"n = {n}, k = {k}")
            m = n // k
            parts = [(X[j * m:(j + 1) * m], y[j * m:(j + 1) * m]) for j in range(k)]
        if kind == "chunks of k":
            parts = [(X[i:i + k], y[i:i + k]) for i in range(0, n, k)]
        if kind == "losses":
            from lessons_lib.logistic import logistic_loss
            return sum(logistic_loss(w, a, b) for a, b in parts)
        grads = [(1 / (1 + np.exp(-(a @ w))) - b) @ a / len(a) for a, b in parts]
        if kind == "in place":
            X *= 1.0
            X[0, 0] += 1.0
        total = np.sum(grads, axis=0)
        if kind == "no division":
            return total
        if kind == "batch size again":
            return total / k / len(parts[0][0])
        if kind == "divide by n":
            return total / n
        if kind == "column":
            return (total / k)[:, None]
        return total / k
    return acc


def test_gradient_accumulation_accepts_other_correct_routes(capsys):
    from lessons_lib.logistic import logistic_grad

    def by_reshape(w, X, y, k):
        n, d = X.shape
        if n % k:
            raise ValueError(f"{n} rows, k = {k}: not a multiple")
        Xs, ys = X.reshape(k, n // k, d), y.reshape(k, n // k)
        return np.mean([logistic_grad(w, a, b) for a, b in zip(Xs, ys)], axis=0)

    def running_sum(w, X, y, k):
        if X.shape[0] % k != 0:
            raise ValueError("n must be a multiple of k")
        step = X.shape[0] // k
        acc = np.zeros_like(w, dtype=float)
        for start in range(0, X.shape[0], step):
            acc += logistic_grad(w, X[start:start + step], y[start:start + step]) / k
        return acc

    for fn in (by_reshape, running_sum):
        assert verdict(checks.gradient_accumulation, capsys, accumulated_grad=fn)


@pytest.mark.parametrize("kind, fragments", [
    ("no division", ["case '12 rows, k = 3'", "forgot to divide by k"]),
    ("batch size again", ["divides by the batch size again"]),
    ("divide by n", ["divides by the batch size again"]),
    ("losses", ["sums the losses instead of the gradients"]),
    ("chunks of k", ["the micro-batches hold k rows each"]),
    ("array_split", ["case '10 rows, k = 4", "unequal micro-batches", "Raise a ValueError"]),
    ("no error", ["case '10 rows, k = 4", "raise a ValueError naming n and k"]),
    ("in place", ["changed the `X` passed to it in place"]),
    ("column", ["has shape (2, 1)", "shape (2,)"]),
])
def test_gradient_accumulation_names_each_known_mistake(kind, fragments, capsys):
    result = verdict(checks.gradient_accumulation, capsys, accumulated_grad=_accumulation_variant(kind))
    assert_wrong(result, *fragments)


def test_gradient_accumulation_equals_the_full_batch_gradient_by_hand():
    """The oracle the check compares with, on numbers small enough to follow by hand."""
    from lessons_lib.logistic import logistic_grad
    X, y, w = np.array([[1.0, 0.0], [0.0, 2.0], [1.0, 1.0], [-1.0, 0.5]]), np.array([1.0, 0.0, 1.0, 0.0]), np.zeros(2)
    # at w = 0 every p is 1/2: the gradient is mean((1/2 - y) x) = [(-1 - 1) / 2, (1 - 1 + 0.25) / 2] / 4 * 2
    by_hand = np.mean((0.5 - y)[:, None] * X, axis=0)
    np.testing.assert_allclose(logistic_grad(w, X, y), by_hand, rtol=1e-15)
    np.testing.assert_allclose(accumulated_grad(w, X, y, 2), by_hand, rtol=1e-15)


# ------------------------------------------------------------------ lesson 13

N13, BLOCKS13 = 1.3e9, 1.3e9 / 256      # 5078125 blocks of 256 per moment, by hand


@pytest.mark.parametrize("name, value, fragment", [
    ("adamw_state_gb", 10.4e9, "in bytes"),
    ("adamw_state_gb", 10.4e9 / 2**30, "GiB"),
    ("adamw_state_gb", 20.8, "weights and gradients too"),
    ("adamw_state_gb", 5.2, "AdamW keeps two"),
    ("adamw_state_gb", 10.404, "looks rounded"),
    ("lion_state_gb", 10.4, "Lion keeps one"),
    ("lion_state_gb", 15.6, "weights and gradients too"),
    ("lion_state_gb", 0.0, "Lion does keep state"),
    ("adamw8bit_state_gb", 2.6, "the scales are missing"),
    ("adamw8bit_state_gb", (2 * N13 + 8 * BLOCKS13) / 1e9, "one per block for each of the two moments"),
    ("adamw8bit_state_gb", (2 * N13 + 2 * 4 * BLOCKS13) / 1e9, "at the size the library stores them"),
    ("adamw8bit_state_gb", (N13 + 8 * BLOCKS13) / 1e9, "keeps two (m and v)"),
    ("adamw8bit_state_gb", (2 * N13 + 16 * N13) / 1e9, "one scale per parameter"),
    ("adamw8bit_state_gb", 2.68125 + 10.4, "weights and gradients too"),
    ("adamw8bit_state_gb", 2.68, "looks rounded"),
    ("adamw8bit_state_gb", 3.0, "`adamw8bit_state_gb` is too large"),
])
def test_lean_state_bytes_names_the_usual_slips(name, value, fragment, capsys):
    result = verdict(checks.lean_state_bytes, capsys, **dict(GB_13, **{name: value}))
    assert_wrong(result, fragment, hidden=("2.68125", "10.4 ", "5.2 ", "5078125"))


def test_lean_state_bytes_accepts_integer_arithmetic_and_numpy_numbers(capsys):
    n = 1_300_000_000
    by_ints = dict(adamw_state_gb=n * 8 / 10**9, lion_state_gb=n * 4 / 10**9,
                   adamw8bit_state_gb=(2 * n + 2 * 8 * -(-n // 256)) / 10**9)
    as_numpy = {k: np.array([np.float32(v)]) for k, v in GB_13.items()}
    for names in (by_ints, as_numpy):
        assert verdict(checks.lean_state_bytes, capsys, **names)


def _lion_variant(kind):
    def step(w, g, m, lr, beta1, beta2, weight_decay):
        b1, b2 = (beta2, beta1) if kind == "betas swapped" else (beta1, beta2)
        m_new = b2 * m + (1 - b2) * g
        c = b1 * (m_new if kind == "m first" else m) + (1 - b1) * g
        direction = {"sign of m": np.sign(m), "sign of g": np.sign(g), "no sign": c,
                     "c >= 0": np.where(c >= 0, 1.0, -1.0)}.get(kind, np.sign(c))
        if kind == "decay not times lr":
            w_new = w - lr * direction - weight_decay * w
        elif kind == "decay after":
            w_new = w - lr * direction
            w_new = w_new - lr * weight_decay * w_new
        elif kind == "no decay":
            w_new = w - lr * direction
        elif kind == "uphill":
            w_new = w + lr * (direction + weight_decay * w)
        elif kind == "in place":
            w -= lr * (direction + weight_decay * w)
            w_new = w
        else:
            w_new = w - lr * (direction + weight_decay * w)
        if kind == "m is c":
            m_new = c
        if kind == "float64":
            return np.asarray(w_new, dtype=np.float64), np.asarray(m_new, dtype=np.float64)
        if kind == "wrong order":
            return m_new, w_new
        if kind == "w only":
            return w_new
        if kind == "library":
            from lessons_lib.lean import Lion, LionState
            w2, st = Lion(lr=lr, betas=(beta1, beta2), weight_decay=weight_decay).step(w, g, LionState(0, m))
            return w2, st.exp_avg
        return w_new, m_new
    return step


@pytest.mark.parametrize("kind, fragments", [
    ("sign of m", ["uses the sign of m"]),
    ("sign of g", ["sign of g alone"]),
    ("m first", ["case 'a later step, m and g disagree'", "m was updated before c"]),
    ("betas swapped", ["beta1 and beta2 are swapped"]),
    ("m is c", ["the new m is c"]),
    ("decay not times lr", ["decay is not multiplied by lr"]),
    ("decay after", ["decay was applied after the step"]),
    ("no decay", ["weight decay is missing"]),
    ("no sign", ["uses c itself (Adam-like)"]),
    ("c >= 0", ["case 'c = 0 in one coordinate", "np.sign(0) is 0"]),
    ("uphill", ["moved uphill"]),
    ("wrong order", ["in the wrong order"]),
    ("in place", ["changed the `w` passed to it in place"]),
    ("float64", ["case 'float32 parameters stay float32'", "`w_new` is float64 for float32 inputs"]),
    ("w only", ["should return a tuple (w_new, m_new)"]),
])
def test_lion_step_names_each_known_mistake(kind, fragments, capsys):
    result = verdict(checks.lion_step, capsys, lion_step=_lion_variant(kind))
    assert_wrong(result, *fragments)


def test_lion_step_refuses_the_librarys_lion(capsys):
    result = verdict(checks.lion_step, capsys, lion_step=_lion_variant("library"))
    assert_wrong(result, "calls the library's Lion.step")


def test_lion_step_accepts_the_lerp_form_and_a_loop_over_entries(capsys):
    def lerp_form(w, g, m, lr, beta1, beta2, weight_decay):     # torch style: exp_avg.lerp_(grad, 1 - beta2)
        c = m + (1 - beta1) * (g - m)
        return w * (1 - lr * weight_decay) - lr * np.sign(c), m + (1 - beta2) * (g - m)

    def by_entry(w, g, m, lr, beta1, beta2, weight_decay):
        w_new, m_new = np.empty_like(w), np.empty_like(m)
        for i in np.ndindex(w.shape):
            c = beta1 * m[i] + (1 - beta1) * g[i]
            step = 0.0 if c == 0 else math.copysign(1.0, c)
            w_new[i] = w[i] - lr * (step + weight_decay * w[i])
            m_new[i] = beta2 * m[i] + (1 - beta2) * g[i]
        return w_new, m_new

    for fn in (lerp_form, by_entry):
        assert verdict(checks.lion_step, capsys, lion_step=fn)


def _quantize_variant(kind):
    import contextlib

    def quantize(x):
        scale = np.max(np.abs(x))
        if kind == "max":
            scale = np.max(x)
        safe = scale if (scale != 0 or kind in ("divides", "divides, float codes")) else 1.0
        with np.errstate(all="ignore") if kind == "divides, float codes" else contextlib.nullcontext():
            r = 127 * (x / safe)
        levels = {"255": 255, "128": 128}.get(kind)
        if levels:
            r = levels * (x / safe)
        q = {"truncate": r, "floor": np.floor(r)}.get(kind, np.rint(r))
        codes = q.astype({"float codes": np.float64, "divides, float codes": np.float64,
                          "int64 codes": np.int64}.get(kind, np.int8))
        if kind == "codes only":
            return codes
        if kind == "scale None":
            return codes, None
        if kind == "scale over 127":
            return codes, scale / 127
        if kind == "python division":
            return np.array([round(127 * float(v) / float(scale)) for v in x], dtype=np.int8), scale
        if kind == "library":
            from lessons_lib.quantized import quantize as library_quantize
            qa = library_quantize(x, block_size=x.size)
            return qa.codes, qa.scales[0]
        return codes, scale
    return quantize


@pytest.mark.parametrize("kind, fragments", [
    ("truncate", ["truncated toward 0"]),
    ("floor", ["rounded down (floor)"]),
    ("255", ["use 255 where the int8 code has 127 levels"]),
    ("128", ["use 128 where the int8 code has 127 levels"]),
    ("divides", ["case 'an all-zero block'", "divides by zero on the all-zero block"]),
    ("divides, float codes", ["case 'an all-zero block'", "divides by zero on the all-zero block"]),
    ("python division", ["case 'an all-zero block'", "divides by zero on the all-zero block"]),
    ("codes only", ["returned only a numpy array", "without its scale"]),
    ("scale None", ["`scale` is None", "the scale must be stored"]),
    ("scale over 127", ["`scale` is absmax / 127"]),
    ("max", ["case 'the absmax is a negative entry'", "not the largest absolute value"]),
    ("float codes", ["the codes have the right values but are float64", "np.int8"]),
    ("int64 codes", ["the codes have the right values but are int64"]),
])
def test_int8_block_names_each_known_mistake_of_quantize(kind, fragments, capsys):
    result = verdict(checks.int8_block, capsys, quantize_block=_quantize_variant(kind),
                     dequantize_block=dequantize_block)
    assert_wrong(result, *fragments)


@pytest.mark.parametrize("dequantize, fragment", [
    (lambda codes, scale: codes / 127, "ignores the scale"),
    (lambda codes, scale: scale * codes / 255, "divides by 255"),
    (lambda codes, scale: scale * codes / 128, "divides by 128"),
    (lambda codes, scale: scale * codes.astype(float), "does not divide by 127"),
    (lambda codes, scale: codes / 127 / scale, "divides by the scale"),
])
def test_int8_block_names_each_known_mistake_of_dequantize(dequantize, fragment, capsys):
    result = verdict(checks.int8_block, capsys, quantize_block=quantize_block, dequantize_block=dequantize)
    assert_wrong(result, fragment)


def test_int8_block_refuses_the_librarys_quantize(capsys):
    result = verdict(checks.int8_block, capsys, quantize_block=_quantize_variant("library"),
                     dequantize_block=dequantize_block)
    assert_wrong(result, "calls the library's _quantize")


def test_int8_block_names_a_division_by_zero_seen_in_the_codes_of_a_function_run_elsewhere(capsys):
    """In the grader the function runs in the sandbox (no local errstate): nan codes still tell."""
    class Elsewhere:
        runs_elsewhere = True

        def __init__(self, fn):
            self.fn = fn

        def __call__(self, *args):
            with np.errstate(all="ignore"):
                return self.fn(*args)

    for kind in ("divides, float codes", "python division"):
        result = verdict(checks.int8_block, capsys, quantize_block=Elsewhere(_quantize_variant(kind)),
                         dequantize_block=dequantize_block)
        assert_wrong(result, "divides by zero on the all-zero block")


def test_int8_block_accepts_a_safe_divisor_and_a_loop_with_pythons_round(capsys):
    def safe_divisor(x):
        s = float(np.max(np.abs(x)))
        return np.clip(np.round(127 * x / (s if s > 0 else 1.0)), -127, 127).astype(np.int8), s

    def by_entry(x):
        s = max(abs(float(v)) for v in x)
        return np.array([0 if s == 0 else round(127 * float(v) / s) for v in x], dtype=np.int8), s

    def read_back(codes, scale):
        return codes.astype(np.float64) * (scale / 127)

    for q, d in ((safe_divisor, read_back), (by_entry, dequantize_block)):
        assert verdict(checks.int8_block, capsys, quantize_block=q, dequantize_block=d)


def test_int8_blocks_keep_clear_of_rounding_ties():
    """Every way of computing 127 x / absmax (float32 or float64, either order) rounds the same way."""
    from lessons_lib.checks.lean import _block_cases
    for _, x in _block_cases():
        s = np.max(np.abs(x.astype(np.float64)))
        if s:
            r = 127 * x.astype(np.float64) / s
            assert np.min(np.abs(np.abs(r - np.floor(r)) - 0.5)) > 1e-3
