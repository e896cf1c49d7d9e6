"""Every numeric quiz answer is recomputed here, from the library or by hand, never copied.

A quiz is prose too: when a lesson's numbers change, its quiz must change with them. Each
numeric question (and each correct choice that quotes a measured number) has a recipe below
that measures the number again; a new numeric question without a recipe fails the coverage test.
"""
import json
import math
from pathlib import Path

import numpy as np
import pytest

from lessons_lib.adaptive import Adagrad, RMSprop
from lessons_lib.clipping import angle_degrees, clip_by_global_norm, clip_by_value
from lessons_lib.datasets import ticket_triage
from lessons_lib.logistic import LogisticSurface
from lessons_lib.memory import bytes_per_parameter, state_gigabytes
from lessons_lib.optimizers import SGD, Adam, AdamW, EMAMomentum
from lessons_lib.precision import DynamicLossScaler, to_bfloat16, to_fp16
from lessons_lib.runner import measured_rate, run
from lessons_lib.schedules import cosine, warmup_cosine
from lessons_lib.surfaces import COURSE

QUIZ_DIR = Path(__file__).resolve().parents[1] / "lessons_lib" / "quizzes"


def _question(lesson, qid):
    data = json.loads((QUIZ_DIR / f"{lesson}.json").read_text(encoding="utf-8"))
    return next(q for q in data["questions"] if q["id"] == qid)


# --- numeric answers: (lesson, id) -> the value measured again ----------------------------------

def _ticket_model():
    data = ticket_triage(n=3000, seed=0)
    return data, LogisticSurface(data.X_train, data.y_train)


def _standardised_condition_number():
    # standardising x -> x / s rescales the weights, w_s = D w with D = diag(s), so the Hessian
    # in the new weights is D^-1 H D^-1 (not D H D): computed by hand from the raw Hessian
    data, train = _ticket_model()
    s = data.X_train.std(axis=0)
    d_inv = np.diag(1 / s)
    lam = np.linalg.eigvalsh(d_inv @ train.hessian() @ d_inv)
    return lam[-1] / lam[0]


def _first_skipped_steps_default_scaler():
    trace = run(SGD(0.018), 20, scaler=DynamicLossScaler())
    return int(np.argmin(trace.skipped))


def _smallest_good_scale():
    # smallest k with every scaled gradient 2**k * g (g = 1e-3 ... 1e-9) a normal float16 number
    tiny = float(np.finfo(np.float16).tiny)          # 2**-14, numpy's own float16 facts
    grads = 10.0 ** -np.arange(3, 10)
    return next(k for k in range(40) if np.all(np.abs(to_fp16(grads * 2.0**k)) >= tiny))


def _clipped_fraction_at_max_norm_1():
    return float(run(SGD(lr=0.018), 60, max_norm=1).clipped.mean())


def _clipped_updates_in_the_capstone_loop():
    peak, steps = 0.08, 60
    return int(run(AdamW(peak, weight_decay=0.01), steps, schedule=cosine(peak, steps), max_norm=20).clipped.sum())


def _noise_floor_fraction_at_the_same_effective_step():
    # lesson 03, section 7, written out again without the library: heavy-ball as v = beta v + g,
    # w -= lr v (v starts at 0), the gradient [100 a, b] by hand, and lesson 07's noise: one
    # default_rng(0) standard normal per coordinate and copy at every step; the floor is the mean
    # loss over steps 1201-2400 and over 400 copies
    curvatures = np.array([100.0, 1.0])

    def floor(lr, beta, steps=2400, window_start=1200, copies=400):
        rng = np.random.default_rng(0)
        w, v, total = np.ones((copies, 2)), np.zeros((copies, 2)), 0.0
        for k in range(steps):
            v = beta * v + curvatures * w + rng.standard_normal(w.shape)
            w = w - lr * v
            if k >= window_start:
                total += float(np.mean(0.5 * (curvatures * w**2).sum(axis=1)))
        return total / (steps - window_start)

    return floor(0.018 * (1 - 0.9), 0.9) / floor(0.018, 0.0)


def _stationary_floor(lr, beta, sigma=1.0, curvatures=(100.0, 1.0)):
    # mean loss on the floor, summed over coordinates: lr s^2 (1+b) / (2 (1-b) (2 (1+b) - lr c))
    return sum(lr * sigma**2 * (1 + beta) / (2 * (1 - beta) * (2 * (1 + beta) - lr * c)) for c in curvatures)


def _adagrad_step_on_a_constant_gradient(t, lr=0.1):
    """The t-th step of the library's Adagrad when every gradient is 1 (the sloped plane)."""
    opt, w = Adagrad(lr=lr), np.zeros(1)
    state = opt.init(w)
    for _ in range(t):
        before = w
        w, state = opt.step(w, np.ones(1), state)
    return float(abs(w - before)[0])


NUMERIC = {
    ("01", "one-step-a"): lambda: 1 - 0.018 * 100,                       # by hand: a - lr * 100 a
    ("01", "one-step-b"): lambda: float(run(SGD(lr=0.018), 1).final_params[1]),
    ("01", "condition-number"): lambda: COURSE.condition_number,
    ("02", "multiplier"): lambda: float(run(SGD(lr=0.021), 1).final_params[0]),   # a after one step from 1
    ("02", "best-rate-contraction"): lambda: float(measured_rate(run(SGD(lr=2 / 101), 400), window=100)),
    ("03", "rescaled-heavy-ball-lr"): lambda: 0.05 * (1 - 0.8),           # lr_ema * (1 - beta), by hand
    # the double root makes the distance (A + Bk) r^k: a window W ending at step K measures
    # r (K / (K - W))^(1/W); dividing that factor out gives the limit the rate approaches
    ("03", "rate-at-theory-optimum"): lambda: float(measured_rate(
        run(SGD(lr=4 / 121, momentum=81 / 121), 400), window=300)) / (400 / 100) ** (1 / 300),
    ("03", "noise-floor-same-effective-step"): _noise_floor_fraction_at_the_same_effective_step,
    ("04", "adagrad-step-after-100"): lambda: _adagrad_step_on_a_constant_gradient(100),
    ("04", "rmsprop-first-step"): lambda: float(1 - run(RMSprop(lr=0.01, alpha=0.99), 1).final_params[0]) / 0.01,
    ("04", "eps-inside-the-root"): lambda: 1e-5 / math.sqrt(1e-5**2 + 1e-8),            # by hand
    ("05", "first-step-size"): lambda: float(1 - run(Adam(lr=0.01), 1).final_params[1]),
    ("05", "uncorrected-first-step"): lambda: 0.01 * (0.1 * 4.0) / math.sqrt(0.001 * 16.0),
    ("06", "adamw-zero-gradient"): lambda: float(AdamW(lr=0.1, weight_decay=0.01).step(
        np.array([10.0]), np.array([0.0]), AdamW(lr=0.1, weight_decay=0.01).init(np.array([10.0])))[0][0]),
    ("06", "adam-l2-zero-gradient"): lambda: float(Adam(lr=0.1, weight_decay=0.01).step(
        np.array([10.0]), np.array([0.0]), Adam(lr=0.1, weight_decay=0.01).init(np.array([10.0])))[0][0]),
    ("07", "first-warmup-value"): lambda: float(warmup_cosine(peak=3e-4, final=3e-5, warmup_steps=2,
                                                               total_steps=10)(0)),
    ("07", "cosine-last-rate"): lambda: cosine(0.018, 80)(79),                # the 80th update is k = 79
    ("07", "sgd-noise-floor"): lambda: sum(0.018 * 1.0**2 / (2 * (2 - 0.018 * c)) for c in (100.0, 1.0)),
    ("08", "clip-coefficient"): lambda: float(clip_by_global_norm(np.array([300.0, 400.0]), 5.0)[0][0] / 300),
    ("08", "value-clip-angle"): lambda: angle_degrees(np.array([4.0, 0.95]),
                                                      clip_by_value(np.array([4.0, 0.95]), 1.0)),
    ("08", "too-low-threshold"): _clipped_fraction_at_max_norm_1,
    ("09", "smallest-good-scale"): _smallest_good_scale,
    ("09", "default-scale-skips"): _first_skipped_steps_default_scaler,
    ("10", "clipped-updates"): _clipped_updates_in_the_capstone_loop,
    ("10", "adamw-bytes-per-param"): lambda: bytes_per_parameter("AdamW"),
    ("10", "sharded-moments"): lambda: state_gigabytes("AdamW", 7e9) / 8,
    ("11", "condition-number"): lambda: _ticket_model()[1].condition_number,
    ("11", "standardised-condition-number"): _standardised_condition_number,
}


@pytest.mark.parametrize("key", sorted(NUMERIC), ids=[f"{lesson}-{qid}" for lesson, qid in sorted(NUMERIC)])
def test_numeric_quiz_answer_is_what_the_library_measures(key):
    q = _question(*key)
    assert q["kind"] == "numeric"
    measured = float(NUMERIC[key]())
    assert abs(q["answer"] - measured) <= max(q["tolerance"], 1e-12), \
        f"quiz {key[0]} '{key[1]}' says {q['answer']}, the library measures {measured}"


# --- correct choices that quote a measured number -----------------------------------------------

def _choice(lesson, qid):
    q = _question(lesson, qid)
    return q["choices"][q["answer"]]


def test_quiz_01_one_step_overshoots_to_minus_0_8():
    assert run(SGD(lr=0.018), 1).final_params.tolist() == pytest.approx([-0.8, 0.982])


def test_quiz_02_lowest_8_step_loss():
    losses = {lr: float(run(SGD(lr=lr), 8).final_loss) for lr in (0.005, 0.018, 0.021)}
    assert _choice("02", "lowest-8-step-loss") == str(min(losses, key=losses.get))


def test_quiz_03_sgd_ends_below_momentum_at_lr_0_018():
    sgd, ema = run(SGD(lr=0.018), 40).final_loss, run(EMAMomentum(lr=0.018, beta=0.9), 40).final_loss
    assert sgd < ema and "SGD" in _choice("03", "sgd-vs-momentum-40-steps")


def test_quiz_03_noise_floor_fraction_agrees_with_the_stationary_formula():
    # the closed form, independent of any simulation: heavy-ball at lr 0.0018, beta 0.9 over SGD at 0.018
    q = _question("03", "noise-floor-same-effective-step")
    assert abs(q["answer"] - _stationary_floor(0.0018, 0.9) / _stationary_floor(0.018, 0.0)) <= q["tolerance"]


def test_quiz_04_adagrad_rates_freeze_on_the_surface():
    opt = Adagrad(lr=0.1)
    states = run(opt, 1000, record_states=True).states
    b_100, b_1000 = (float(opt.effective_lr(states[t - 1])[1]) for t in (100, 1000))
    assert f"{b_100:.3e}" == "3.158e-02" and f"{b_1000:.3e}" == "3.156e-02"
    assert _choice("04", "adagrad-freezes-on-the-surface").startswith("the gradients shrink geometrically")


def test_quiz_04_rmsprop_memory_with_alpha_0_999():
    n = math.ceil(-1 / math.log(0.999))             # the first n with 0.999**n <= 1/e, by hand
    assert 0.999**n <= math.exp(-1) < 0.999 ** (n - 1) and n == 1000
    assert _choice("04", "rmsprop-memory") == "1000"


def test_quiz_04_centered_rmsprop_step_explodes_on_a_constant_gradient():
    opt, w = RMSprop(lr=0.01, centered=True), np.zeros(1)
    state, sizes = opt.init(w), []
    for _ in range(3000):
        w_next, state = opt.step(w, np.array([3.0]), state)
        sizes.append(float(abs(w_next - w)[0]) / 0.01)
        w = w_next
    assert f"{sizes[-1]:.4g}" == "3.557e+06" and sizes[-1] > sizes[999] > sizes[0]
    assert "3.557e+06" in _choice("04", "centered-constant-gradient")


def test_quiz_04_sgd_and_heavy_ball_do_not_see_the_turn():
    c, s = math.cos(math.pi / 4), math.sin(math.pi / 4)
    R = np.array([[c, -s], [s, c]])
    H = R @ np.diag([100.0, 1.0]) @ R.T
    for momentum in (0.0, 0.69):
        w, u = np.array([1.0, 1.0]), R @ np.array([1.0, 1.0])
        bw, bu = np.zeros(2), np.zeros(2)
        for _ in range(100):                        # heavy-ball by hand on both surfaces
            bw, bu = momentum * bw + np.array([100.0, 1.0]) * w, momentum * bu + H @ u
            w, u = w - 0.0185 * bw, u - 0.0185 * bu
        assert np.allclose(R @ w, u, rtol=1e-9, atol=1e-14)   # the turned run is the aligned run, turned
    assert _choice("04", "turned-surface") == "SGD's and heavy-ball's"


def test_quiz_05_v_is_the_mean_of_g_squared():
    g = np.array([3.0, -3.0, 3.0, -3.0])
    assert float(np.mean(g**2)) == 9.0 and _choice("05", "what-v-measures").startswith("9")


def test_quiz_07_scheduler_stepped_first_skips_the_first_value():
    f = warmup_cosine(peak=3e-4, final=3e-5, warmup_steps=2, total_steps=10)
    assert f"{float(f(1)):.6f}" in _choice("07", "scheduler-order")


def test_quiz_02_distance_ranking_flips_at_step_189():
    runs = run(SGD(lr=np.array([0.018, 2 / 101])), 400)
    distance = np.linalg.norm(runs.params, axis=-1)
    first = int(np.argmax(distance[:, 1] < distance[:, 0]))
    assert np.all(distance[first:, 1] < distance[first:, 0])
    assert f"step {first}" in _choice("02", "ranking-by-distance")


def test_quiz_07_the_80th_update_of_cosine_uses_rate_0():
    assert cosine(0.018, 80).values(80)[-1] == 0.0


def test_quiz_09_bfloat16_rounds_1_plus_1e_3_to_1():
    assert float(to_bfloat16(np.array([1.001]))[0]) == 1.0
    assert "2**-7" in _choice("09", "bf16-precision")


def test_quiz_09_1e_8_becomes_zero_in_fp16():
    assert float(to_fp16(np.array([1e-8]))[0]) == 0.0 and _choice("09", "underflow-1e-8").startswith("0")


def test_every_numeric_question_has_a_recipe():
    missing = []
    for path in sorted(QUIZ_DIR.glob("*.json")):
        for q in json.loads(path.read_text(encoding="utf-8"))["questions"]:
            if q["kind"] == "numeric" and (path.stem, q["id"]) not in NUMERIC:
                missing.append(f"{path.stem}:{q['id']}")
    assert not missing, f"numeric quiz answers nobody recomputes: {missing}"
