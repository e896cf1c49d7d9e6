"""The benchmark's in-place AdamW (benchmarks/adam_inplace.py) computes exactly opt.step()."""
import numpy as np
import pytest

from benchmarks.adam_inplace import adam_step_inplace
from lessons_lib.optimizers import Adam, AdamW


@pytest.mark.parametrize("make", [
    lambda: AdamW(lr=0.01, weight_decay=0.01),
    lambda: Adam(lr=0.01, weight_decay=0.01),
    lambda: Adam(lr=0.01),
    lambda: AdamW(lr=0.01, bias_correction=False),
], ids=["adamw", "adam-l2", "adam", "adamw-no-bias-correction"])
@pytest.mark.parametrize("threads", [1, 2])
def test_step_inplace_gives_bitwise_the_numbers_of_step(make, threads):
    rng = np.random.default_rng(3)
    opt = make()
    p_fun = rng.standard_normal((37, 101))
    p_inp = p_fun.copy()
    s_fun, s_inp = opt.init(p_fun), opt.init(p_inp)
    for _ in range(15):
        g = rng.standard_normal(p_fun.shape)
        p_fun, s_fun = opt.step(p_fun, g, s_fun)
        s_inp = adam_step_inplace(opt, p_inp, g, s_inp, chunk=500, threads=threads)
    assert s_inp.step == s_fun.step == 15
    assert np.array_equal(p_inp, p_fun)
    assert np.array_equal(s_inp.m, s_fun.m) and np.array_equal(s_inp.v, s_fun.v)


def test_step_inplace_keeps_state_as_exactly_two_buffers_and_float32():
    opt = AdamW(lr=1e-3)
    p = np.ones(1000, dtype=np.float32)
    state = opt.init(p)
    state = adam_step_inplace(opt, p, np.full(1000, 0.5, dtype=np.float32), state)
    buffers = [name for name, value in state._asdict().items() if isinstance(value, np.ndarray)]
    assert buffers == ["m", "v"]
    assert p.dtype == state.m.dtype == state.v.dtype == np.float32


def test_step_inplace_refuses_non_finite_gradients_and_leaves_params_untouched():
    opt = AdamW(lr=1e-3)
    p = np.ones(10)
    state = opt.init(p)
    g = np.ones(10)
    g[4] = np.nan
    with pytest.raises(ValueError, match="grads"):
        adam_step_inplace(opt, p, g, state)
    assert np.all(p == 1.0) and state.step == 0 and np.all(state.m == 0)


def test_step_inplace_refuses_a_chunk_of_zero():
    opt = AdamW(lr=1e-3)
    p = np.ones(10)
    with pytest.raises(ValueError, match="chunk"):
        adam_step_inplace(opt, p, np.ones(10), opt.init(p), chunk=0)
