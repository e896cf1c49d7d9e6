"""Bytes of memory per parameter for weights, gradients and optimizer state.

    bytes per parameter = (1 weight + 1 gradient + state buffers) * bytes per value
State buffers: SGD 0, SGD with momentum 1 (momentum_buffer), Adam/AdamW 2 (m and v),
Adagrad 1 (sum), RMSprop 1 (square_avg), +1 when centered (grad_avg), +1 with momentum
(momentum_buffer).
"""
from __future__ import annotations

from .validation import check_positive

# BEGIN GRADED PIECE memory: STATE_BUFFERS
STATE_BUFFERS = {
    "SGD": 0, "SGD + momentum": 1, "Adam": 2, "AdamW": 2,
    "Adagrad": 1, "RMSprop": 1, "RMSprop + momentum": 2, "RMSprop (centered)": 2, "RMSprop (centered) + momentum": 3,
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
