"""Unit tests of lessons_lib.memory."""
from __future__ import annotations

import numpy as np
import pytest

from lessons_lib.adaptive import Adagrad, RMSprop
from lessons_lib.memory import (
    STATE_BUFFERS,
    TABLE_ROWS,
    bytes_per_parameter,
    memory_table,
    state_buffers,
    state_gigabytes,
)
from lessons_lib.optimizers import SGD, Adam, AdamW

OPTIMIZERS = {
    "SGD": SGD(0.01), "SGD + momentum": SGD(0.01, momentum=0.9), "Adam": Adam(), "AdamW": AdamW(),
    "Adagrad": Adagrad(), "RMSprop": RMSprop(), "RMSprop + momentum": RMSprop(momentum=0.9),
    "RMSprop (centered)": RMSprop(centered=True),
    "RMSprop (centered) + momentum": RMSprop(momentum=0.9, centered=True),
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
        state = opt.init(np.zeros(5))
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
                                         r"'Adagrad', .*\]; got 'Lion'"):
        state_buffers("Lion")
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
