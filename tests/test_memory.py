"""Unit tests of lessons_lib.memory."""
from __future__ import annotations

import pytest

from lessons_lib.memory import STATE_BUFFERS, bytes_per_parameter, memory_table, state_buffers, state_gigabytes


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


def test_memory_table():
    rows = memory_table(7e9)
    assert [r["optimizer"] for r in rows] == list(STATE_BUFFERS)
    adamw = rows[-1]
    assert adamw == {"optimizer": "AdamW", "state buffers": 2, "state bytes/param": 8,
                     "total bytes/param": 16, "state GB": 56.0, "total GB": 112.0}


def test_unknown_optimizer():
    with pytest.raises(ValueError, match=r"optimizer must be one of \['SGD', 'SGD \+ momentum', 'Adam', 'AdamW'\]; got 'Lion'"):
        state_buffers("Lion")


@pytest.mark.parametrize("bad", [0, -1e9])
def test_n_params_must_be_positive(bad):
    with pytest.raises(ValueError, match="n_params must be a finite number > 0"):
        state_gigabytes("Adam", bad)
    with pytest.raises(ValueError, match="n_params"):
        memory_table(bad)


def test_bytes_per_value_must_be_positive():
    with pytest.raises(ValueError, match="bytes_per_value must be a finite number > 0; got 0"):
        bytes_per_parameter("Adam", 0)
