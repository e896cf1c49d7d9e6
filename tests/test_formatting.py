"""Unit tests of lessons_lib.formatting: plain numbers only."""
from __future__ import annotations

import numpy as np

from lessons_lib.formatting import fixed, readout_number, readout_vector, rounded, table


def test_rounded_returns_plain_python_numbers():
    x = rounded(np.float64(0.123456), 3)
    assert x == 0.123 and type(x) is float
    assert repr(rounded(np.float64(50.5), 3)) == "50.5"
    assert rounded(np.array([0.12345, 2.0]), 2) == [0.12, 2.0]
    nested = rounded(np.array([[1.23456, 2.0], [3.0, 4.0]]), 1)
    assert nested == [[1.2, 2.0], [3.0, 4.0]] and type(nested[0][0]) is float
    assert rounded([1, 2], 0) == [1.0, 2.0]
    assert str(rounded(np.array([-1e-9, 0.5]), 3)) == "[-0.0, 0.5]"   # the sign of zero is kept


def test_fixed():
    assert fixed([0.00015, 3e-4], 6) == ["0.000150", "0.000300"]
    assert fixed(np.array([[1.0, 2.5]]), 1) == ["1.0", "2.5"]
    assert fixed(np.float64(1.0), 2) == ["1.00"]


def test_table():
    rows = [{"name": "SGD", "lr": np.float64(0.018), "steps": np.int64(40), "diverged": np.bool_(False)},
            {"name": "Adam", "lr": 0.001, "steps": 400, "diverged": True}]
    text = table(rows)
    lines = text.split("\n")
    assert lines[0].split() == ["name", "lr", "steps", "diverged"]
    assert set(lines[1].replace(" ", "")) == {"-"}
    assert lines[2].split() == ["SGD", "0.018", "40", "no"]
    assert lines[3].split() == ["Adam", "0.001", "400", "yes"]
    assert "np." not in text
    assert all(line == line.rstrip() for line in lines)
    assert len({len(lines[0]), len(lines[1])}) == 1


def test_table_columns_and_empty():
    assert table([]) == "(empty table)"
    assert table([{"a": 1, "b": 2}], columns=["b"]).split("\n")[2].strip() == "2"


def test_readout_number_is_positional_in_the_middle_and_scientific_outside():
    # as the lessons' readouts print them (tests/documented_printouts.json)
    assert readout_number(0.11690) == "0.1169"
    assert readout_number(50.5) == "50.5"
    assert readout_number(10000.0) == "10000"          # not 1e+04
    assert readout_number(0.0001) == "0.0001"
    assert readout_number(1.843e-05) == "1.843e-05"
    assert readout_number(4.8e9) == "4.8e+09"
    assert readout_number(-0.8) == "-0.8" and readout_number(0.0) == "0"
    assert readout_number(2 / 3, 3) == "0.667"
    assert readout_number(np.float32(0.5)) == "0.5"


def test_readout_number_spells_out_nan_and_inf():
    assert [readout_number(v) for v in (np.nan, np.inf, -np.inf)] == ["nan", "inf", "-inf"]


def test_readout_vector():
    assert readout_vector(np.array([100.0, 1.0])) == "[100, 1]"
    assert readout_vector([[0.00919, np.nan]]) == "[0.00919, nan]"
