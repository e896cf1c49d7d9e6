"""Checks for lesson 13: optimizer-state bytes by hand, a Lion step, one block quantized to int8 and back.

    state bytes = parameters * buffers * bytes per value  (+ one scale per block per moment, 8-bit)
    Lion:  c = beta1*m + (1 - beta1)*g;  w <- w - lr*(sign(c) + weight_decay*w);  m <- beta2*m + (1 - beta2)*g
    int8:  scale = max|x|;  q = round(127 x / scale) in [-127, 127];  x_hat = scale * q / 127
"""
from __future__ import annotations

import math

import numpy as np

from ..lean import Lion, LionState, state_nbytes
from ..optimizers import AdamW
from ..quantized import AdamW8bit, dequantize, quantize
from .framework import (
    Wrong, call_blocked, check, close, diagnose, get, get_callable, returned_array, returned_arrays, scalar, type_name, untouched,
)
from .parameters import LEAN_BLOCK_SIZE, LEAN_PARAMS

# ------------------------------------------------------------------ exercise 1: state bytes


def _measured_state_bytes(n: float, block_size: int) -> dict:
    """Bytes of optimizer state for n float32 parameters, from states measured on small real arrays.

    AdamW and Lion: bytes per parameter measured at 1000 parameters. AdamW8bit: a fixed cost per
    value and per block, solved from one parameter (one block) and one full block, then confirmed
    on a size with a short last block."""
    per_param = {name: state_nbytes(opt.init(np.zeros(1000, dtype=np.float32))) / 1000
                 for name, opt in (("AdamW", AdamW()), ("Lion", Lion()))}
    opt8 = AdamW8bit(block_size=block_size)
    one = state_nbytes(opt8.init(np.zeros(1, dtype=np.float32)))
    full = state_nbytes(opt8.init(np.zeros(block_size, dtype=np.float32)))
    per_value = (full - one) / (block_size - 1)
    per_block = one - per_value
    size = 3 * block_size + 5
    assert state_nbytes(opt8.init(np.zeros(size, dtype=np.float32))) == per_value * size + per_block * 4
    return {"AdamW": per_param["AdamW"] * n, "Lion": per_param["Lion"] * n,
            "AdamW8bit": per_value * n + per_block * math.ceil(n / block_size),
            "per_value": per_value, "per_block": per_block}


def _state_number(ns, name: str, expected: float, known) -> None:
    got = scalar(get(ns, name), name)
    if close(got, expected, rtol=1e-6):
        return
    if close(got, expected * 1e9, rtol=1e-6):
        raise Wrong(f"`{name}` is in bytes; the exercise asks for GB (1e9 bytes).")
    if close(got, expected * 1e9 / 2**30, rtol=1e-6):
        raise Wrong(f"`{name}` is in GiB (2**30 bytes); the course uses GB = 1e9 bytes.")
    if close(got, expected * 1e9 / 2**20, rtol=1e-6) or close(got, expected * 1e3, rtol=1e-6):
        raise Wrong(f"`{name}` is in MB (or MiB); the exercise asks for GB (1e9 bytes).")
    for candidate, message in known:
        if close(got, candidate, rtol=1e-6):
            raise Wrong(f"`{name}`: {message}")
    if got != expected and abs(got - expected) <= 0.0051:
        raise Wrong(f"`{name}` looks rounded; store the unrounded number (round only when printing).")
    diagnose(got, expected, name, rtol=1e-6)


@check("optimizer-state bytes for 1.3e9 parameters: AdamW, Lion, 8-bit AdamW")
def lean_state_bytes(ns):
    """`adamw_state_gb`, `lion_state_gb`, `adamw8bit_state_gb`: state GB (1e9 bytes) for LEAN_PARAMS."""
    n, B = LEAN_PARAMS, LEAN_BLOCK_SIZE
    ref = _measured_state_bytes(n, B)
    blocks = math.ceil(n / B)
    gb = lambda x: x / 1e9  # noqa: E731
    weights_grads = "counts the weights and gradients too; the question asks for the optimizer's state only."
    _state_number(ns, "adamw_state_gb", gb(ref["AdamW"]), [
        (gb(4 * 4 * n), "16 bytes per parameter: that counts the weights and gradients too, or fp64 values; "
                        "AdamW's state is its two buffers m and v, 4 bytes each in fp32."),
        (gb(4 * n), "one buffer's worth; AdamW keeps two (m and v)."),
        (gb(2 * 2 * n), "2 bytes per value is fp16/bf16; this asks for fp32 (4 bytes)."),
        (gb(2 * n), "2 bytes per parameter: that is 8-bit state, or one fp16 buffer; this asks for two fp32 "
                    "buffers."),
        (gb(2 * 4 * 8 * n), "bits, not bytes: a float32 is 4 bytes (32 bits)."),
    ])
    _state_number(ns, "lion_state_gb", gb(ref["Lion"]), [
        (gb(2 * 4 * n), "two buffers' worth; Lion keeps one (m, its sign momentum)."),
        (gb(3 * 4 * n), weights_grads),
        (gb(2 * n), "2 bytes per value is fp16/bf16; this asks for fp32 (4 bytes)."),
        (gb(8 * n), "8 bytes per parameter is one fp64 buffer or two fp32 ones; Lion keeps one fp32 buffer."),
        (0.0, "Lion does keep state: one buffer m (it has no v)."),
        (gb(4 * 8 * n), "bits, not bytes: a float32 is 4 bytes (32 bits)."),
    ])
    codes = 2 * n
    _state_number(ns, "adamw8bit_state_gb", gb(ref["AdamW8bit"]), [
        (gb(codes), "the scales are missing: each block of values keeps its own absmax scale, for each "
                    "moment."),
        (gb(codes + 8 * blocks), "the scales: count one per block for each of the two moments (m and v), at the "
                                 "size the library stores them (read quantized.py)."),
        (gb(codes + 2 * 4 * blocks), "the scales: count one per block for each of the two moments (m and v), at the "
                                     "size the library stores them (read quantized.py)."),
        (gb(codes + 2 * 2 * blocks), "the scales: count them at the size the library stores them "
                                     "(read quantized.py)."),
        (gb(n + 8 * blocks), "one byte per parameter is one moment; 8-bit AdamW keeps two (m and v), each with "
                             "its own scales."),
        (gb(n + 16 * blocks), "one byte per parameter is one moment's codes; 8-bit AdamW keeps two (m and v)."),
        (gb(codes + 16 * n), "one scale per parameter; a scale is shared by a block of 256 values."),
        (gb(codes + 16 * blocks + 8 * n), weights_grads),
        (gb(codes + 16 * blocks + 2 * 4 * n), weights_grads),
        (gb(codes + 16 * n / B), "the number of blocks rounds up (a short last block still has its scale); "
                                 "here 1.3e9 is a multiple of 256, so is something else off?"),
        (gb(8 * codes + 16 * blocks), "bits, not bytes: an int8 code is one byte."),
    ])
    return "fp32 AdamW, Lion's one buffer and 8-bit codes plus their scales: all three match the library's states."


# ------------------------------------------------------------------ exercise 2: a Lion step


def _lion_cases():
    """Named cases: (name, w, g, m, lr, beta1, beta2, weight_decay); Python float hyperparameters."""
    f32 = np.float32
    return [
        ("a later step, m and g disagree", np.array([0.8, -1.5, 2.0, 0.3]), np.array([-8.5, -2.0, 0.4, 1.2]),
         np.array([1.0, 0.1, -0.3, -0.5]), 0.05, 0.9, 0.99, 0.5),
        ("first step (m = 0)", np.array([1.0, -2.0, 0.5]), np.array([0.3, -0.1, 2.0]), np.zeros(3),
         0.1, 0.9, 0.99, 0.0),
        ("c = 0 in one coordinate (only the decay moves it)", np.array([1.5, -0.4]), np.array([0.0, 0.7]),
         np.array([0.0, 0.2]), 0.02, 0.95, 0.98, 2.0),
        ("a batch of 3 runs, shape (3, 2)", np.array([[1.0, 1.0], [0.5, -0.2], [-2.0, 4.0]]),
         np.array([[100.0, 1.0], [-1.2, -0.2], [3.5, 4.0]]),
         np.array([[0.0, 0.0], [2.0, 0.1], [-5.0, 2.0]]), 0.01, 0.8, 0.9, 0.1),
        ("float32 parameters stay float32", np.array([0.25, -1.5, 3.0], dtype=f32),
         np.array([2.0, -0.3, -4.0], dtype=f32), np.array([1.0, 0.05, 0.3], dtype=f32), 0.03, 0.9, 0.99, 0.2),
    ]


def _lion_reference(w, g, m, lr, beta1, beta2, weight_decay):
    opt = Lion(lr=lr, betas=(beta1, beta2), weight_decay=weight_decay)
    w_new, state = opt.step(w, g, LionState(step=0, exp_avg=m))
    return w_new, state.exp_avg


def _lion_variants(w, g, m, lr, b1, b2, wd):
    """Outputs of the common mistakes, each with its message (computed in float64)."""
    w, g, m = (np.asarray(a, dtype=np.float64) for a in (w, g, m))
    c = b1 * m + (1 - b1) * g
    m_new = b2 * m + (1 - b2) * g
    stepped = w - lr * np.sign(c)
    return [
        ((w - lr * (np.sign(m) + wd * w), m_new), "the step uses the sign of m; Lion's direction is the sign of c, "
                                                   "a blend of m and this gradient."),
        ((w - lr * (np.sign(g) + wd * w), m_new), "the step uses the sign of g alone (signSGD); Lion's direction "
                                                   "is the sign of c, a blend of m and g."),
        ((w - lr * (np.sign(b1 * m_new + (1 - b1) * g) + wd * w), m_new),
         "m was updated before c was computed; c blends the previous m (the one passed in) with g."),
        ((w - lr * (np.sign(b2 * m + (1 - b2) * g) + wd * w), b1 * m + (1 - b1) * g),
         "beta1 and beta2 are swapped: beta1 blends the direction c, beta2 keeps the memory m."),
        ((w - lr * (np.sign(c) + wd * w), c), "the new m is c; m is updated with beta2: beta2*m + (1 - beta2)*g."),
        ((w - lr * (np.sign((1 - b1) * m + b1 * g) + wd * w), m_new),
         "in c, beta1 and 1 - beta1 are swapped: beta1 weighs m, 1 - beta1 the new g."),
        ((w - lr * (np.sign(c) + wd * w), (1 - b2) * m + b2 * g),
         "in m, beta2 and 1 - beta2 are swapped: beta2 weighs the old m, 1 - beta2 the new g."),
        ((w - lr * np.sign(c) - wd * w, m_new), "the decay is not multiplied by lr: w moves by lr * (sign(c) + "
                                                 "weight_decay * w)."),
        ((stepped - lr * wd * stepped, m_new), "the decay was applied after the step; decay the pre-step weights "
                                               "(the w passed in)."),
        ((w - lr * (c + wd * w), m_new), "the step uses c itself (Adam-like); Lion takes its sign, so every "
                                         "coordinate moves by exactly lr."),
        ((w - lr * (np.where(c >= 0, 1.0, -1.0) + wd * w), m_new),
         "where c is exactly 0 the step should not move that coordinate (np.sign(0) is 0, only the decay acts)."),
        ((w - lr * np.sign(c), m_new), "the weight decay is missing."),
        ((w + lr * (np.sign(c) + wd * w), m_new), "w moved uphill: the step goes against sign(c) and shrinks w."),
        ((w + lr * np.sign(c) - lr * wd * w, m_new), "w moved uphill: the step goes against sign(c)."),
        ((m_new, w - lr * (np.sign(c) + wd * w)), "the two results are in the wrong order: return the new "
                                                  "weights first, then the new m."),
    ]


@check("a Lion step from the equations")
def lion_step(ns):
    """`lion_step(w, g, m, lr, beta1, beta2, weight_decay)` -> (w_new, m_new), lessons_lib.lean.Lion's step."""
    fn = get_callable(ns, "lion_step")
    for case, w, g, m, lr, b1, b2, wd in _lion_cases():
        ref = [np.asarray(a, dtype=np.float64) for a in _lion_reference(w, g, m, lr, b1, b2, wd)]
        kept = [a.copy() for a in (w, g, m)]
        out = call_blocked(fn, "lion_step", case, ("lean",), *kept, lr, b1, b2, wd)
        untouched([w, g, m], kept, "lion_step", case, ("w", "g", "m"),
                  hint="Build new arrays (w_new = w - ..., m_new = ...) instead.")
        got = returned_arrays(out, case, "lion_step", ("w_new", "m_new"), w)
        rtol = 1e-5 if w.dtype == np.float32 else 1e-9
        if all(close(a, b, rtol=rtol, atol=1e-7 if w.dtype == np.float32 else 1e-12) for a, b in zip(got, ref)):
            continue
        for variant, message in _lion_variants(w, g, m, lr, b1, b2, wd):
            if all(a.shape == b.shape and np.allclose(a, b, rtol=rtol, atol=1e-12) for a, b in zip(got, variant)):
                raise Wrong(f"case '{case}': {message}")
        for part, a in zip(("w_new", "m_new"), got):
            if not np.all(np.isfinite(a)):
                raise Wrong(f"case '{case}': `{part}` contains nan or inf.")
        for part, a, b in zip(("m_new", "w_new"), (got[1], got[0]), (ref[1], ref[0])):
            diagnose(a, b, part, rtol=rtol, prefix=f"case '{case}': ")
    return "Later and first steps, c = 0, a batch of runs and float32: all match the library's Lion."


# ------------------------------------------------------------------ exercise 3: one int8 block


def _block_cases():
    """Named blocks (no value lands within 1e-6 of a rounding tie: tests/test_checks.py checks it)."""
    return [
        ("a block of mixed signs", np.array([0.5, -1.25, 0.03, 2.0, -0.7, 0.0, 1.1])),
        ("the absmax is a negative entry", np.array([-3.0, 1.1, 0.2, -0.05, 2.9])),
        ("one large entry", np.array([1000.0, 0.3, -0.2, 2.0, -4.1, 7.0])),
        ("an all-zero block", np.zeros(6)),
        ("float32 values", np.array([0.1, -0.37, 0.92, -0.05], dtype=np.float32)),
    ]


def _library_block(x):
    q = quantize(x, block_size=x.size, code="linear")
    return q.codes, float(q.scales[0]), dequantize(q)


def _codes_variants(x, scale):
    """(codes as numbers, message) for the common slips in turning x / absmax into int8 codes."""
    safe = scale if scale > 0 else 1.0
    r = x.astype(np.float64) / safe
    out = [(np.trunc(127 * r), "the codes are truncated toward 0 (a cast to int drops the fraction); round to "
                               "the nearest integer first."),
           (np.floor(127 * r), "the codes are rounded down (floor); round to the nearest integer."),
           (np.ceil(127 * r), "the codes are rounded up (ceil); round to the nearest integer."),
           (-np.rint(127 * r), "the codes have the wrong sign: a positive value gets a positive code.")]
    for levels in (255, 128, 256):
        raw = np.rint(levels * r)
        wrapped = (raw + 128) % 256 - 128
        message = (f"the codes use {levels} where the int8 code has 127 levels on each side of 0: "
                   "q = round(127 x / absmax), so codes stay in [-127, 127].")
        out += [(raw, message), (wrapped, message), (np.clip(raw, -127, 127), message),
                (np.clip(raw, -128, 127), message)]
    return out


def _codes_and_scale(out, case, x):
    """The learner's (codes, scale), checked for type, shape and int8."""
    if isinstance(out, np.ndarray) or not isinstance(out, (tuple, list)):
        raise Wrong(f"case '{case}': `quantize_block` returned only a {type_name(out)}; return the pair "
                    "(codes, scale): without its scale a block can't be read back.")
    if len(out) != 2:
        raise Wrong(f"case '{case}': `quantize_block` should return a pair (codes, scale); it returned "
                    f"{len(out)} values.")
    codes, scale = out
    if codes is None or scale is None:
        part = "codes" if codes is None else "scale"
        raise Wrong(f"case '{case}': `{part}` is None; return (codes, scale)"
                    + (": the scale must be stored, without it the block can't be read back."
                       if part == "scale" else "."))
    if np.ndim(scale) != 0 and np.ndim(codes) == 0:
        raise Wrong(f"case '{case}': the two results are in the wrong order: return the codes first, then "
                    "the scale.")
    scale = scalar(scale, "scale")
    if isinstance(codes, (str, bytes, dict, set)) or callable(codes):
        raise Wrong(f"case '{case}': `codes` should be a numpy array of int8; it is a {type_name(codes)}.")
    try:
        arr = np.asarray(codes)
        values = arr.astype(np.float64)
    except (TypeError, ValueError):
        raise Wrong(f"case '{case}': `codes` should be a numpy array of int8; it is a {type_name(codes)} that "
                    "numpy can't turn into numbers.") from None
    if values.shape != x.shape:
        raise Wrong(f"case '{case}': `codes` has shape {values.shape}; it should have the shape of the block, "
                    f"{x.shape} (one code per value).")
    return arr, values, scale


def _check_scale(scale, expected, x, case):
    if close(scale, expected, rtol=1e-7, atol=0):
        return
    if expected > 0 and close(scale, expected / 127, rtol=1e-7, atol=0):
        raise Wrong(f"case '{case}': `scale` is absmax / 127; store the block's absmax itself, as the library "
                    "does (dequantize_block divides by 127).")
    if expected > 0 and close(scale, 127 / expected, rtol=1e-7, atol=0):
        raise Wrong(f"case '{case}': `scale` is 127 / absmax; store the block's absmax itself.")
    if close(scale, float(np.max(x)), rtol=1e-7, atol=0) or close(scale, float(np.min(x)), rtol=1e-7, atol=0):
        raise Wrong(f"case '{case}': `scale` is the largest (or smallest) value, not the largest absolute "
                    "value; a negative entry can be the largest in size.")
    if expected == 0:
        raise Wrong(f"case '{case}': `scale` should stay the block's absmax, which is 0 here (codes 0 read "
                    "back as 0 whatever the scale); guard the division instead.")
    if not (scale > 0):
        raise Wrong(f"case '{case}': `scale` is {'negative' if scale < 0 else '0'}; the scale is the block's "
                    "absmax, max |x|, positive unless the block is all zeros.")
    diagnose(scale, expected, "scale", rtol=1e-7, prefix=f"case '{case}': ")


DIVIDED_BY_ZERO = ("divides by zero on the all-zero block (absmax is 0; numpy warns 'invalid value'). An all-zero "
                   "block keeps scale 0 and codes 0: test for it, or divide by a safe value (np.where still "
                   "computes both branches).")


def _quantize_zero_block(fn, case, x):
    """Call quantize_block on the all-zero block; a division by zero is named (locally also one numpy
    only warns about, with codes that happen to cast to 0)."""
    try:
        if getattr(fn, "runs_elsewhere", False):
            return call_blocked(fn, "quantize_block", case, ("lean",), x.copy())
        with np.errstate(divide="raise", invalid="raise"):
            return call_blocked(fn, "quantize_block", case, ("lean",), x.copy())
    except Wrong as exc:
        if any(word in str(exc) for word in ("ZeroDivisionError", "FloatingPointError", "NaN", "nan")):
            raise Wrong(f"case '{case}': `quantize_block` {DIVIDED_BY_ZERO}") from None
        raise


@check("one block quantized to int8 and back")
def int8_block(ns):
    """`quantize_block(x)` -> (codes int8, scale) and `dequantize_block(codes, scale)` -> x_hat, the "linear"
    code of lessons_lib.quantized on one block."""
    fn = get_callable(ns, "quantize_block")
    wrong_dtype = None
    for case, x in _block_cases():
        ref_codes, ref_scale, _ = _library_block(x)
        kept = x.copy()
        if not np.any(x):
            out = _quantize_zero_block(fn, case, x)
        else:
            out = call_blocked(fn, "quantize_block", case, ("lean",), kept)
        untouched([x], [kept], "quantize_block", case, ("x",), hint="Build a new array of codes instead.")
        arr, values, scale = _codes_and_scale(out, case, x)
        if not np.all(np.isfinite(values)) or not math.isfinite(scale):
            if not np.any(x):
                raise Wrong(f"case '{case}': `quantize_block` {DIVIDED_BY_ZERO}")
            raise Wrong(f"case '{case}': `codes` contain nan or inf.")
        if not np.any(x) and np.any(values != 0) and np.all(values == values.flat[0]):
            raise Wrong(f"case '{case}': `quantize_block` {DIVIDED_BY_ZERO}")     # nan cast to int8
        _check_scale(scale, ref_scale, x, case)
        expected = ref_codes.astype(np.float64)
        if not np.array_equal(values, expected):
            for variant, message in _codes_variants(x, ref_scale):
                if np.array_equal(values, variant):
                    raise Wrong(f"case '{case}': {message}")
            if np.all(values == np.rint(values)) and np.all(np.abs(values - expected) <= 1):
                raise Wrong(f"case '{case}': some codes are off by one: round 127 x / absmax to the nearest "
                            "integer.")
            diagnose(values, expected, "codes", rtol=0, atol=0.5, prefix=f"case '{case}': ")
        if arr.dtype != np.int8 and wrong_dtype is None:
            wrong_dtype = (case, arr.dtype)
    if wrong_dtype is not None:        # after the values: a division by zero shows in float codes first
        case, dtype = wrong_dtype
        kind = "float" if dtype.kind == "f" else ("unsigned" if dtype.kind == "u" else "integer")
        raise Wrong(f"case '{case}': the codes have the right values but are {dtype} ({kind}, "
                    f"{dtype.itemsize} byte{'s' if dtype.itemsize > 1 else ''} each); store them as "
                    "np.int8, one byte each (the point of 8-bit state).")

    back = get_callable(ns, "dequantize_block")
    for case, x in _block_cases():
        codes, scale, ref = _library_block(x)
        kept = codes.copy()
        got = call_blocked(back, "dequantize_block", case, ("lean",), kept, scale)
        untouched([codes], [kept], "dequantize_block", case, ("codes",), hint="Build a new array instead.")
        if isinstance(got, (tuple, list)) and len(got) != np.size(x):
            raise Wrong(f"case '{case}': `dequantize_block` should return one array x_hat; it returned a "
                        f"{type_name(got)} of {len(got)} values.")
        x_hat = returned_array(got, "x_hat", case, np.zeros(x.shape), "the shape of the codes")
        if close(x_hat, ref, rtol=1e-6, atol=1e-12):
            continue
        c = codes.astype(np.float64)
        safe = scale if scale > 0 else 1.0
        for candidate, message in [
            (c / 127, "`dequantize_block` ignores the scale: x_hat = scale * codes / 127."),
            (c, "`dequantize_block` returns the codes; read them back as scale * codes / 127."),
            (scale * c, "`dequantize_block` does not divide by 127 (codes run from -127 to 127)."),
            (scale * c / 255, "`dequantize_block` divides by 255; the int8 code has 127 levels on each side."),
            (scale * c / 128, "`dequantize_block` divides by 128; the int8 code has 127 levels on each side."),
            (c / (127 * safe), "`dequantize_block` divides by the scale; multiply by it."),
            (127 * c / safe, "`dequantize_block` inverts the formula; x_hat = scale * codes / 127."),
            (np.trunc(scale * c / 127), "`dequantize_block` rounds (or casts to int); x_hat is a float."),
        ]:
            if close(x_hat, candidate, rtol=1e-6, atol=1e-12) and not close(candidate, ref, rtol=1e-6, atol=1e-12):
                raise Wrong(f"case '{case}': {message}")
        diagnose(x_hat, ref, "x_hat", rtol=1e-6, prefix=f"case '{case}': ")

    for case, x in _block_cases():          # the learner's pair, end to end
        out = call_blocked(fn, "quantize_block", case, ("lean",), x.copy())
        codes, scale = out
        x_hat = np.asarray(call_blocked(back, "dequantize_block", case, ("lean",), codes, scale), dtype=np.float64)
        bound = float(np.max(np.abs(x))) / 254 * (1 + 1e-6) + 1e-300
        if x_hat.shape != x.shape or np.any(np.abs(x_hat - x.astype(np.float64)) > bound):
            raise Wrong(f"case '{case}': your two functions together miss the round-trip bound "
                        "|x_hat - x| <= absmax / 254 (half a level).")
    return "Rounding, the absmax scale, an all-zero block, int8 codes and the read-back: all match the library."
