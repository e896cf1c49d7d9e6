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
from lessons_lib.lean import NS_COEFFICIENTS, Adafactor, Lion, Muon, newton_schulz, state_nbytes
from lessons_lib.logistic import EpochSampler, LogisticSurface, logistic_grad, logistic_loss
from lessons_lib.lr_schedulers import OneCycleLR, StepLR
from lessons_lib.memory import bytes_per_parameter, state_gigabytes
from lessons_lib.optimizers import SGD, Adam, AdamW, EMAMomentum
from lessons_lib.precision import DynamicLossScaler, to_bfloat16, to_fp16
from lessons_lib.quantized import AdamW8bit, dequantize, quantize
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


def _ticket_design_12(X_raw, mean, std):
    # lesson 12's inputs: standardised with the training statistics, plus the bias column
    return np.column_stack([(X_raw - mean) / std, np.ones(len(X_raw))])


def _summed_loss_at_zero_12():
    data = ticket_triage(n=3000, seed=0)
    X = _ticket_design_12(data.X_train, data.X_train.mean(axis=0), data.X_train.std(axis=0))
    return logistic_loss(np.zeros(3), X, data.y_train) * len(data.y_train)     # the mean times n rows


def _accumulation_ratio_12():
    # 4 micro-batches of 16 summed WITHOUT / 4, over the mean gradient of the same 64 rows (library gradient)
    data = ticket_triage(n=3000, seed=0)
    X = _ticket_design_12(data.X_train, data.X_train.mean(axis=0), data.X_train.std(axis=0))
    rows = np.random.default_rng(11).permutation(len(data.y_train))[:64]
    w = np.array([0.3, -0.2, 0.1])
    summed = sum(logistic_grad(w, X[p], data.y_train[p]) for p in np.split(rows, 4))
    ratio = summed / logistic_grad(w, X[rows], data.y_train[rows])
    assert np.allclose(ratio, ratio[0], rtol=1e-12)
    return float(ratio[0])


def _grid_rate_12(i):
    # np.geomspace(0.003, 10, 15)[i], by hand
    return 0.003 * (10 / 0.003) ** (i / 14)


# --- helpers: the lesson's routing model, written out again ---------------------------------------

def _routing(n, seed, d=64, k=16):
    # lesson 13, section 3: feature j has scale 2 -> 0.1 and is present on a share 1 -> 0.05 of the rows;
    # the queue is drawn from softmax(x W_true), W_true = 0.6 * N(0, 1) from seed 12345
    W_true = 0.6 * np.random.default_rng(12345).standard_normal((d, k))
    rng = np.random.default_rng(seed)
    X = np.geomspace(2.0, 0.1, d) * rng.standard_normal((n, d)) * (rng.random((n, d)) < np.geomspace(1.0, 0.05, d))
    z = X @ W_true
    p = np.exp(z - z.max(axis=1, keepdims=True))
    p /= p.sum(axis=1, keepdims=True)
    return X, (p.cumsum(axis=1) > rng.random((n, 1))).argmax(axis=1)


def _softmax_grad(W, X, Y):
    Z = X @ W
    P = np.exp(Z - Z.max(axis=-1, keepdims=True))
    P /= P.sum(axis=-1, keepdims=True)
    return X.T @ (P - Y) / len(X)


def _softmax_loss(W, X, y):
    Z = X @ W
    Z = Z - Z.max(axis=1, keepdims=True)
    return float(np.mean(np.log(np.exp(Z).sum(axis=1)) - Z[np.arange(len(y)), y]))


def _ns_single_value(steps=5):
    # one singular value, normalised to 1, through s -> a s + b s^3 + c s^5, by hand
    a, b, c = 3.4445, -4.7750, 2.0315
    s = 1.0
    for _ in range(steps):
        s = a * s + b * s ** 3 + c * s ** 5
    return s


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
    ("12", "initial-loss-ten-classes"): lambda: -math.log(1 / 10),                       # by hand
    ("12", "summed-loss-start"): _summed_loss_at_zero_12,
    ("12", "accumulation-without-division"): _accumulation_ratio_12,
    ("12", "one-cycle-first-rate"): lambda: float(OneCycleLR(_grid_rate_12(5), total_steps=420).lr),
    # 2560 parameters (10 blocks of 256), not the lesson's 2**20: bytes of the real state / parameters
    ("13", "adamw8bit-bytes"): lambda: state_nbytes(AdamW8bit(block_size=256).init(np.zeros(2560))) / 2560,
    # by hand: c = 0.9 * 0 + 0.1 * g_b with g_b = 1, the step is lr * |sign(c)|
    ("13", "lion-step-size"): lambda: 0.01 * abs(np.sign(0.9 * 0.0 + 0.1 * 1.0)),
    ("13", "ns-single-singular-value"): _ns_single_value,
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


def test_quiz_12_steplr_stepped_per_update_reaches_3_21e_07_at_update_10():
    # the lesson's StepLR rate is grid[5] = 0.0544; stepped once per update, update 10 uses 0.3**10 of it
    sched = StepLR(_grid_rate_12(5), step_size=1, gamma=0.3)
    for _ in range(10):
        sched.step()
    assert f"{sched.lr:.2e}" == "3.21e-07" == f"{_grid_rate_12(5) * 0.3 ** 10:.2e}"
    assert "3.21e-07 at update 10" in _choice("12", "steplr-per-batch")


def test_quiz_12_decaying_the_bias_pulls_it_towards_zero():
    # the penalised optimum by plain gradient descent (the lesson uses Newton): every 5th escalated ticket kept
    data = ticket_triage(n=3000, seed=0)
    keep = (data.y_train == 0) | (np.cumsum(data.y_train == 1) % 5 == 0)
    X_raw, y = data.X_train[keep], data.y_train[keep]
    X = _ticket_design_12(X_raw, X_raw.mean(axis=0), X_raw.std(axis=0))
    w, w_groups = np.zeros(3), np.zeros(3)
    for _ in range(6000):
        w = w - 2.0 * (logistic_grad(w, X, y) + 0.01 * w)
        w_groups = w_groups - 2.0 * (logistic_grad(w_groups, X, y) + 0.01 * np.array([1.0, 1.0, 0.0]) * w_groups)
    assert f"{w[2]:.4f}" == "-1.9210" and f"{y.mean():.3f}" == "0.161"
    assert f"{w_groups[2]:.4f}" == "-2.1695"                              # the weights decayed, the bias not
    assert _choice("12", "bias-decay-imbalanced").startswith("towards 0, to -1.9210")


def test_quiz_12_a_new_one_cycle_starts_at_0_0022_where_the_saved_one_was_at_0_0439():
    # the paired sweep's OneCycleLR max_lr is grid[5] = 0.0544
    saved = OneCycleLR(_grid_rate_12(5), total_steps=420)
    for _ in range(210):
        saved.step()
    new = OneCycleLR(_grid_rate_12(5), total_steps=420)
    assert f"{new.lr:.4f}" == "0.0022" and f"{saved.lr:.4f}" == "0.0439"
    assert "0.0022" in _choice("12", "weights-only-resume") and "0.0439" in _choice("12", "weights-only-resume")


def test_quiz_13_lion_at_a_fixed_lr_cycles_at_amplitude_lr():
    trace = run(Lion(lr=0.01), 600)
    last = np.abs(trace.params[-100:])
    assert last.max() == pytest.approx(0.01, rel=1e-9)                  # exactly one lr, both coordinates
    assert trace.losses[-100:].max() == pytest.approx(0.5 * 101 * 0.01 ** 2, rel=1e-9)   # 5.050e-03
    assert _choice("13", "lion-fixed-lr").startswith("exactly one lr, 0.01")
    # the explanation's qualifier: 1 / 0.03 is not whole, the grid 1 - 0.03 n skips 0 (nearest 0.01 and -0.02)
    last_03 = np.abs(run(Lion(lr=0.03), 600).params[-100:, 0])
    assert f"{last_03.max() / 0.03:.3f}" == "1.333" and "1.333 lr" in _question("13", "lion-fixed-lr")["explanation"]


def test_quiz_13_an_adafactor_cap_of_one_or_more_never_acts():
    X, y = _routing(20000, 0)
    Xv, yv = _routing(2000, 1)
    Y = np.eye(16)[y]
    scores = {}
    for cap in (0.3, 1.0, 3.0):
        per_seed = []
        for seed in (0, 1):
            sampler, opt = EpochSampler(len(y), 64, seed), Adafactor(lr=cap)
            W = np.zeros((64, 16))
            state = opt.init(W)
            for _ in range(200):
                idx = sampler.next()
                W, state = opt.step(W, _softmax_grad(W, X[idx], Y[idx]), state)
            per_seed.append(_softmax_loss(W, Xv, yv))
        scores[cap] = np.mean(per_seed)
    assert scores[1.0] == scores[3.0]                                   # identical runs: the cap never binds
    assert round(scores[1.0], 4) == 1.2588 and scores[0.3] > scores[1.0]
    assert "1.2588" in _question("13", "adafactor-cap")["prompt"]
    assert _choice("13", "adafactor-cap").startswith("its relative step uses rho_t = min(lr, 1/sqrt(t))")


def test_quiz_13_a_linear_code_reads_small_second_moments_as_zero():
    X, y = _routing(20000, 0)
    Y = np.eye(16)[y]
    opt = AdamW(lr=np.geomspace(1e-3, 1.0, 13)[7], weight_decay=0.0)     # the lesson's tuned rate, 0.0562
    w, state = np.zeros(1024), opt.init(np.zeros(1024))
    sampler = EpochSampler(len(y), 64, seed=0)
    for _ in range(5):
        idx = sampler.next()
        w, state = opt.step(w, _softmax_grad(w.reshape(64, 16), X[idx], Y[idx]).ravel(), state)
    v = state.v
    zeros = {code: int(np.sum((v > 0) & (dequantize(quantize(v, 256, code)) == 0))) for code in ("linear_unsigned", "log")}
    assert zeros == {"linear_unsigned": 49, "log": 0}
    octaves = [np.log2(b.max() / b[b > 0].min()) for b in v.reshape(4, 256)]
    assert np.round(octaves, 1).tolist() == [10.9, 8.9, 10.3, 12.0]
    # round(255 v / s) is 0 exactly below s / 510: the zeros per block are the values under that cut
    linear = dequantize(quantize(v, 256, "linear_unsigned")).reshape(4, 256)
    per_block = [int(np.sum(b == 0)) for b in linear]
    assert per_block == [int(np.sum(b < b.max() / 510)) for b in v.reshape(4, 256)] == [4, 0, 8, 37]
    assert "8.9 to 12.0 octaves" in _choice("13", "linear-v") and "s/510" in _choice("13", "linear-v")
    # the next step, step 6 with the 6th minibatch's gradient, from the linear-coded v (m exact)
    idx6 = sampler.next()
    g6 = _softmax_grad(w.reshape(64, 16), X[idx6], Y[idx6]).ravel()
    m6 = 0.9 * state.m + 0.1 * g6
    v6 = 0.999 * linear.ravel() + 0.001 * g6 ** 2
    largest = np.abs(m6 / (1 - 0.9 ** 6) / (np.sqrt(v6 / (1 - 0.999 ** 6)) + 1e-8)).max()
    assert f"{largest:.2f}" == "64.88" and "64.88" in _question("13", "linear-v")["explanation"]


def test_quiz_13_muon_is_for_matrices():
    with pytest.raises(ValueError, match="Muon takes one matrix"):
        Muon().init(np.zeros(16))
    # a 1 x c matrix comes back in its gradient's direction: normalised gradient descent
    g = np.arange(1.0, 17.0)[None, :]
    o = newton_schulz(g)
    assert float(np.sum(o * g) / np.linalg.norm(o) / np.linalg.norm(g)) == pytest.approx(1.0, abs=1e-12)
    assert np.linalg.norm(o) == pytest.approx(_ns_single_value(), rel=1e-9)
    assert sum(NS_COEFFICIENTS) == pytest.approx(0.701, abs=1e-12)
    assert _choice("13", "muon-for").startswith("the hidden weight matrices")
