"""Bytes of memory per parameter for weights, gradients and optimizer state.

    bytes per parameter = (1 weight + 1 gradient + state buffers) * bytes per value
State buffers: SGD 0, SGD with momentum 1 (momentum_buffer), Adam/AdamW 2 (m and v),
Adagrad 1 (sum), RMSprop 1 (square_avg), +1 when centered (grad_avg), +1 with momentum
(momentum_buffer), Lion 1 (exp_avg), Muon 1 (momentum_buffer; matrices only).

Two optimizers of lesson 13 keep state that is not a whole number of parameter-sized buffers,
so state_bytes(optimizer, shape) counts one parameter array of a given shape:

    Adafactor     matrix (r, c): (r + c) values (row_var, col_var);  vector (d,): d values (variance)
    AdamW 8-bit   2 bytes per value (m and v codes) + 2 * 8 bytes per block (two float64 scales);
                  blocks of block_size run along the last axis, one row at a time (quantized.py)

lean_memory_table(n_params, shape) prints bytes per parameter and GB for a model made of
parameters of that shape. The numbers are those of the arrays the library's init allocates
(tests/test_memory.py measures them with lean.state_nbytes).
"""
from __future__ import annotations

import numpy as np

from .validation import check_positive

# BEGIN GRADED PIECE memory: STATE_BUFFERS
STATE_BUFFERS = {
    "SGD": 0, "SGD + momentum": 1, "Adam": 2, "AdamW": 2,
    "Adagrad": 1, "RMSprop": 1, "RMSprop + momentum": 2, "RMSprop (centered)": 2, "RMSprop (centered) + momentum": 3,
    "Lion": 1, "Muon": 1,
}
# END GRADED PIECE
# the rows memory_table prints unless asked for others (lesson 10's table)
TABLE_ROWS = ("SGD", "SGD + momentum", "Adam", "AdamW")


def state_buffers(optimizer: str) -> int:
    """Number of parameter-sized buffers the optimizer keeps."""
    # BEGIN GRADED PIECE memory: state_buffers
    if optimizer not in STATE_BUFFERS:
        raise ValueError(f"optimizer must be one of {list(STATE_BUFFERS)}; got {optimizer!r}")
    return STATE_BUFFERS[optimizer]
    # END GRADED PIECE


def bytes_per_parameter(optimizer: str, bytes_per_value: int = 4, with_weights_and_grads=True) -> int:
    """(weight + gradient + buffers) * bytes_per_value, or buffers only."""
    # BEGIN GRADED PIECE memory: bytes_per_parameter
    check_positive("bytes_per_value", bytes_per_value)
    values = state_buffers(optimizer) + (2 if with_weights_and_grads else 0)
    return int(values * bytes_per_value)
    # END GRADED PIECE


def state_gigabytes(optimizer: str, n_params, bytes_per_value: int = 4) -> float:
    """Optimizer-state memory in GB (1e9 bytes): n_params * buffers * bytes_per_value / 1e9."""
    # BEGIN GRADED PIECE memory: state_gigabytes
    n = float(check_positive("n_params", n_params))
    return n * bytes_per_parameter(optimizer, bytes_per_value, with_weights_and_grads=False) / 1e9
    # END GRADED PIECE


def memory_table(n_params, bytes_per_value: int = 4, optimizers=TABLE_ROWS) -> list[dict]:
    """One row per optimizer: buffers, bytes per parameter (state, total), GB for n_params.

    optimizers: names from STATE_BUFFERS (every one: optimizers=list(STATE_BUFFERS))."""
    # BEGIN GRADED PIECE memory: memory_table
    n = float(check_positive("n_params", n_params))
    if isinstance(optimizers, str):
        optimizers = [optimizers]
    rows = []
    for name in optimizers:
        total = bytes_per_parameter(name, bytes_per_value)
        rows.append({
            "optimizer": name,
            "state buffers": state_buffers(name),
            "state bytes/param": bytes_per_parameter(name, bytes_per_value, False),
            "total bytes/param": total,
            "state GB": round(state_gigabytes(name, n, bytes_per_value), 3),
            "total GB": round(n * total / 1e9, 3),
        })
    return rows
    # END GRADED PIECE


# ----------------------------------------------------------------------------- lesson 13: lean state

FACTORED = ("Adafactor", "AdamW 8-bit")
"""The optimizers whose state state_bytes counts from the parameter's shape, not a buffer count."""
SCALE_BYTES = 8
"""Bytes of one block scale in quantized.py's 8-bit state (float64; bitsandbytes keeps float32: 4)."""
LEAN_ROWS = ("SGD", "SGD + momentum", "AdamW", "Lion", "Muon", "Adafactor", "AdamW 8-bit")
"""The rows lean_memory_table prints unless asked for others (lesson 13's table)."""


def _check_shape(shape) -> tuple:
    if isinstance(shape, (int, np.integer)) and not isinstance(shape, bool):
        shape = (int(shape),)
    if not isinstance(shape, (tuple, list)) or not 1 <= len(shape) <= 2 or not all(
            isinstance(n, (int, np.integer)) and not isinstance(n, bool) and n >= 1 for n in shape):
        raise ValueError(f"shape must be a vector's (d,) or a matrix's (r, c), whole numbers >= 1; got {shape!r}")
    return tuple(int(n) for n in shape)


def state_bytes(optimizer: str, shape, bytes_per_value: int = 4, block_size: int = 256) -> int:
    """Bytes of optimizer state for ONE parameter array of `shape` ((d,) or (r, c)).

        names in STATE_BUFFERS: buffers * size * bytes_per_value
        "Adafactor":   (r + c) * bytes_per_value for a matrix, d * bytes_per_value for a vector
        "AdamW 8-bit": 2 * size + 2 * SCALE_BYTES * blocks, blocks = rows * ceil(last axis / block_size)
                       (codes are one byte whatever bytes_per_value is; scales are float64)
    """
    shape = _check_shape(shape)
    check_positive("bytes_per_value", bytes_per_value)
    size = int(np.prod(shape))
    if optimizer == "Adafactor":
        values = sum(shape) if len(shape) == 2 else size
        return int(values * bytes_per_value)
    if optimizer == "AdamW 8-bit":
        if isinstance(block_size, bool) or not isinstance(block_size, (int, np.integer)) or block_size < 1:
            raise ValueError(f"block_size must be an integer >= 1; got {block_size!r}")
        rows = size // shape[-1]
        blocks = rows * -(-shape[-1] // int(block_size))
        return int(2 * size + 2 * SCALE_BYTES * blocks)
    if optimizer not in STATE_BUFFERS:
        raise ValueError(f"optimizer must be one of {list(STATE_BUFFERS) + list(FACTORED)}; got {optimizer!r}")
    return int(state_buffers(optimizer) * size * bytes_per_value)


def lean_memory_table(n_params, shape=(4096, 4096), bytes_per_value: int = 4, block_size: int = 256,
                      optimizers=LEAN_ROWS) -> list[dict]:
    """One row per optimizer: state bytes per parameter for parameters of `shape`, and state GB
    for a model of n_params parameters made of such arrays (n_params * bytes per parameter / 1e9)."""
    n = float(check_positive("n_params", n_params))
    shape = _check_shape(shape)
    size = int(np.prod(shape))
    if isinstance(optimizers, str):
        optimizers = [optimizers]
    rows = []
    for name in optimizers:
        per = state_bytes(name, shape, bytes_per_value, block_size) / size
        rows.append({"optimizer": name, "state bytes/param": round(per, 6), "state GB": round(n * per / 1e9, 4)})
    return rows
