"""Unit tests of lessons_lib.memory."""
from __future__ import annotations

import numpy as np
import pytest

from lessons_lib.adaptive import Adagrad, RMSprop
from lessons_lib.lean import Adafactor, Lion, Muon, state_nbytes
from lessons_lib.memory import (
    LEAN_ROWS,
    STATE_BUFFERS,
    TABLE_ROWS,
    bytes_per_parameter,
    lean_memory_table,
    memory_table,
    state_buffers,
    state_bytes,
    state_gigabytes,
)
from lessons_lib.optimizers import SGD, Adam, AdamW
from lessons_lib.quantized import AdamW8bit

OPTIMIZERS = {
    "SGD": SGD(0.01), "SGD + momentum": SGD(0.01, momentum=0.9), "Adam": Adam(), "AdamW": AdamW(),
    "Adagrad": Adagrad(), "RMSprop": RMSprop(), "RMSprop + momentum": RMSprop(momentum=0.9),
    "RMSprop (centered)": RMSprop(centered=True),
    "RMSprop (centered) + momentum": RMSprop(momentum=0.9, centered=True),
    "Lion": Lion(), "Muon": Muon(),
}


def test_state_buffers():
    assert [state_buffers(n) for n in ("SGD", "SGD + momentum", "Adam", "AdamW")] == [0, 1, 2, 2]


def test_bytes_per_parameter():
    assert bytes_per_parameter("AdamW") == 16                      # weight + grad + m + v in fp32
    assert bytes_per_parameter("AdamW", with_weights_and_grads=False) == 8
    assert bytes_per_parameter("SGD", 2) == 4
    assert bytes_per_parameter("SGD + momentum", 2, False) == 2


def test_state_gigabytes():
    assert state_gigabytes("AdamW", 7e9) == 56.0
    assert state_gigabytes("SGD", 7e9) == 0.0
    assert state_gigabytes("SGD + momentum", 1e9, bytes_per_value=2) == 2.0
    assert type(state_gigabytes("Adam", 7e9)) is float


def test_adaptive_state_buffers():
    assert [state_buffers(n) for n in ("Adagrad", "RMSprop", "RMSprop + momentum", "RMSprop (centered)",
                                       "RMSprop (centered) + momentum")] == [1, 1, 2, 2, 3]
    assert bytes_per_parameter("RMSprop (centered) + momentum") == 20          # w, g, square_avg, grad_avg, buf
    assert state_gigabytes("Adagrad", 7e9) == 28.0


def test_the_table_counts_the_buffers_each_optimizer_allocates():
    """Every name in the table against the parameter-sized arrays its optimizer's init returns."""
    assert set(OPTIMIZERS) == set(STATE_BUFFERS)
    for name, opt in OPTIMIZERS.items():
        state = opt.init(np.zeros((5, 3)) if name == "Muon" else np.zeros(5))     # Muon takes matrices only
        arrays = [f for f in state._fields if isinstance(getattr(state, f), np.ndarray)]
        assert len(arrays) == state_buffers(name), (name, arrays)


def test_memory_table():
    rows = memory_table(7e9)
    assert [r["optimizer"] for r in rows] == list(TABLE_ROWS) == ["SGD", "SGD + momentum", "Adam", "AdamW"]
    adamw = rows[-1]
    assert adamw == {"optimizer": "AdamW", "state buffers": 2, "state bytes/param": 8,
                     "total bytes/param": 16, "state GB": 56.0, "total GB": 112.0}


def test_memory_table_of_chosen_optimizers():
    rows = memory_table(1e9, 2, optimizers=["Adagrad", "RMSprop (centered) + momentum"])
    assert rows == [
        {"optimizer": "Adagrad", "state buffers": 1, "state bytes/param": 2, "total bytes/param": 6,
         "state GB": 2.0, "total GB": 6.0},
        {"optimizer": "RMSprop (centered) + momentum", "state buffers": 3, "state bytes/param": 6,
         "total bytes/param": 10, "state GB": 6.0, "total GB": 10.0},
    ]
    assert [r["optimizer"] for r in memory_table(1e9, optimizers=list(STATE_BUFFERS))] == list(STATE_BUFFERS)
    assert memory_table(1e9, optimizers="Adagrad") == memory_table(1e9, optimizers=["Adagrad"])


def test_unknown_optimizer():
    with pytest.raises(ValueError, match=r"optimizer must be one of \['SGD', 'SGD \+ momentum', 'Adam', 'AdamW', "
                                         r"'Adagrad', .*\]; got 'Sophia'"):
        state_buffers("Sophia")
    with pytest.raises(ValueError, match="got 'RMSProp'"):
        memory_table(1e9, optimizers=["RMSProp"])


@pytest.mark.parametrize("bad", [0, -1e9])
def test_n_params_must_be_positive(bad):
    with pytest.raises(ValueError, match="n_params must be a finite number > 0"):
        state_gigabytes("Adam", bad)
    with pytest.raises(ValueError, match="n_params"):
        memory_table(bad)


def test_bytes_per_value_must_be_positive():
    with pytest.raises(ValueError, match="bytes_per_value must be a finite number > 0; got 0"):
        bytes_per_parameter("Adam", 0)


# ----------------------------------------------------------------------------- lesson 13: lean state

def _lean_optimizers(name):
    return {"SGD": SGD(0.01), "SGD + momentum": SGD(0.01, momentum=0.9), "AdamW": AdamW(), "Lion": Lion(),
            "Muon": Muon(), "Adafactor": Adafactor()}[name]


@pytest.mark.parametrize("dtype,bytes_per_value", [(np.float32, 4), (np.float64, 8)])
@pytest.mark.parametrize("shape", [(7,), (300,), (4, 5), (64, 33), (1, 9)])
def test_measured_state_bytes_equal_the_formula(shape, dtype, bytes_per_value):
    """Real states from each optimizer's init, their arrays' nbytes summed, against state_bytes."""
    w = np.zeros(shape, dtype=dtype)
    for name in ("SGD", "SGD + momentum", "AdamW", "Lion", "Muon", "Adafactor"):
        if name == "Muon" and len(shape) == 1:
            continue                                           # Muon refuses vectors
        measured = state_nbytes(_lean_optimizers(name).init(w))
        assert measured == state_bytes(name, shape, bytes_per_value), (name, shape)
    for block_size in (1, 5, 64, 256, 10**6):
        measured = state_nbytes(AdamW8bit(block_size=block_size).init(w))   # codes: 1 byte whatever the dtype
        assert measured == state_bytes("AdamW 8-bit", shape, bytes_per_value, block_size), (shape, block_size)


def test_adafactor_keeps_r_plus_c_values_and_the_8bit_state_two_bytes_plus_scales():
    assert state_bytes("Adafactor", (4096, 4096)) == 4 * 8192
    assert state_bytes("Adafactor", (4096,)) == 4 * 4096                  # a vector keeps its full variance
    assert state_bytes("AdamW 8-bit", (1000,), block_size=256) == 2000 + 16 * 4
    assert state_bytes("AdamW 8-bit", (3, 1000), block_size=256) == 6000 + 16 * 12   # blocks stay in their row
    assert state_bytes("AdamW", (10, 10), bytes_per_value=2) == 400
    assert state_bytes("Lion", 50) == 200                                  # an int is a vector's length


def test_lean_memory_table_for_7b_parameters():
    rows = {r["optimizer"]: r for r in lean_memory_table(7e9)}
    assert list(rows) == list(LEAN_ROWS)
    assert rows["AdamW"] == {"optimizer": "AdamW", "state bytes/param": 8.0, "state GB": 56.0}
    assert rows["Lion"]["state GB"] == rows["SGD + momentum"]["state GB"] == 28.0
    assert rows["AdamW 8-bit"]["state bytes/param"] == 2 + 16 / 256
    assert rows["Adafactor"]["state bytes/param"] == round(4 * 8192 / 4096**2, 6)
    assert lean_memory_table(1e9, shape=(10,), optimizers="Adafactor")[0]["state GB"] == 4.0


@pytest.mark.parametrize("bad", [(), (0, 3), (2, 3, 4), (2.5,), "big", (True, 3)])
def test_state_bytes_refuses_a_bad_shape(bad):
    with pytest.raises(ValueError, match="shape must be a vector's"):
        state_bytes("AdamW", bad)


def test_state_bytes_refuses_unknown_optimizers_and_block_sizes():
    with pytest.raises(ValueError, match=r"optimizer must be one of .*'Adafactor', 'AdamW 8-bit'\]; got 'Sophia'"):
        state_bytes("Sophia", (3,))
    with pytest.raises(ValueError, match="block_size must be an integer >= 1"):
        state_bytes("AdamW 8-bit", (3,), block_size=0)
