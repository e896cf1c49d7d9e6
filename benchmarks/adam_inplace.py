"""AdamW at scale for the benchmark: the Adam/AdamW update done in place, block by block.

Not course material (no lesson uses it): it shows that the library's update rule, written
with numpy, can run a 10M-parameter step at torch's speed with almost no temporary memory.
tests/test_benchmark_adam_inplace.py proves it gives bitwise the numbers of opt.step().
"""
from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from lessons_lib.optimizers import Adam, AdamState, _power
from lessons_lib.validation import check_finite, check_int, check_same_shape


def adam_step_inplace(opt: Adam, params: np.ndarray, grads: np.ndarray, state: AdamState,
                      chunk: int = 65536, threads: int | None = None) -> AdamState:
    """opt.step(), done in place for large arrays (e.g. 10M parameters).

    Overwrites params, state.m and state.v and returns the new state (step + 1). Works
    through the arrays in blocks of `chunk` values so every intermediate stays in the CPU
    cache: one block-sized temporary per thread instead of parameter-sized ones. Blocks are
    shared among `threads` threads (default: up to 2; numpy releases the GIL inside each
    operation). Same arithmetic in the same order as step(), so both give bitwise the
    same numbers. Scalar hyperparameters and C-contiguous arrays only.
    """
    chunk = check_int("chunk", chunk, 1)
    if opt.runs is not None:
        raise ValueError("step_inplace needs scalar hyperparameters; use opt.step() for per-run arrays")
    for name, arr in (("params", params), ("grads", grads), ("state.m", state.m), ("state.v", state.v)):
        if not isinstance(arr, np.ndarray) or arr.dtype.kind != "f" or not arr.flags.c_contiguous:
            raise ValueError(f"{name} must be a C-contiguous floating-point numpy array for "
                             f"step_inplace; got {type(arr).__name__}")
        check_same_shape("params", params, name, arr)
    if not np.isfinite(np.add.reduce(grads, axis=None, dtype=np.float64)):  # no bool temporary
        check_finite("grads", grads, hint="skip this step (as a loss scaler does) or lower the lr")
    lr, (b1, b2), eps, wd = opt.lr, opt.betas, opt.eps, opt.weight_decay
    t = state.step + 1
    if opt.bias_correction:
        step_size, root_bc2 = lr / (1 - _power(b1, t)), np.sqrt(1 - _power(b2, t))
    else:
        step_size, root_bc2 = lr, None
    P, G, M, V = (a.reshape(-1) for a in (params, grads, state.m, state.v))
    coupled_l2 = wd != 0 and not opt.decoupled
    decay = 1 - lr * wd if (wd != 0 and opt.decoupled) else None

    def work(lo: int, hi: int) -> None:
        tmp_full = np.empty(min(chunk, hi - lo), dtype=P.dtype)
        g_full = np.empty_like(tmp_full) if coupled_l2 else None
        for start in range(lo, hi, chunk):
            sl = slice(start, min(start + chunk, hi))
            p, g, m, v = P[sl], G[sl], M[sl], V[sl]
            tmp = tmp_full[: p.size]
            if decay is not None:
                p *= decay                                 # AdamW: decay the pre-step weights
            elif coupled_l2:
                g = np.multiply(p, wd, out=g_full[: p.size])   # Adam: L2 enters the gradient
                g += G[sl]
            np.subtract(g, m, out=tmp)                     # m <- m + (1 - beta1) (g - m)
            tmp *= 1 - b1
            m += tmp
            v *= b2                                        # v <- beta2 v + (1 - beta2) g^2
            np.multiply(g, 1 - b2, out=tmp)
            tmp *= g
            v += tmp
            np.sqrt(v, out=tmp)                            # denom = sqrt(v_hat) + eps
            if root_bc2 is not None:
                tmp /= root_bc2
            tmp += eps
            np.divide(m, tmp, out=tmp)
            tmp *= step_size
            p -= tmp

    n_threads = threads or min(2, os.cpu_count() or 1)
    blocks = -(-P.size // chunk)
    if n_threads <= 1 or blocks < 2 * n_threads:
        work(0, P.size)
    else:
        per = -(-blocks // n_threads) * chunk
        with ThreadPoolExecutor(n_threads) as pool:
            list(pool.map(lambda lo: work(lo, min(lo + per, P.size)), range(0, P.size, per)))
    return AdamState(step=t, m=state.m, v=state.v)
