"""Printing helpers: plain rounded Python numbers, never numpy scalar reprs."""
from __future__ import annotations

import math

import numpy as np


def rounded(x, digits: int = 4):
    """np.round(x, digits) as a plain float or a (nested) list of floats."""
    arr = np.round(np.asarray(x, dtype=np.float64), digits)
    return arr.tolist()


def fixed(values, decimals: int = 6) -> list[str]:
    """Each value as a string with a fixed number of decimals: ['0.000150', ...]."""
    return [f"{float(v):.{decimals}f}" for v in np.ravel(values)]


def readout_number(x, digits: int = 4) -> str:
    """A number for an explorer's readout: `digits` significant digits, 'nan'/'inf' spelled out.

    Positional between 1e-4 and 1e6 (10000 and 0.0001169, not 1e+04), scientific outside
    (1.843e-05, 4.8e+09); trailing zeros dropped (0.995, not 0.9950).
    """
    x = float(x)
    if math.isnan(x):
        return "nan"
    if math.isinf(x):
        return "inf" if x > 0 else "-inf"
    if x == 0 or 1e-4 <= abs(x) < 1e6:
        return np.format_float_positional(x, precision=digits, unique=True, fractional=False, trim="-")
    return f"{x:.{digits}g}"


def readout_vector(values, digits: int = 4) -> str:
    """A vector for a readout: '[100, 1]', each entry as readout_number writes it."""
    return "[" + ", ".join(readout_number(v, digits) for v in np.ravel(values)) + "]"


def table(rows: list[dict], columns: list[str] | None = None) -> str:
    """A plain-text table of dict rows with aligned columns."""
    if not rows:
        return "(empty table)"
    columns = columns or list(rows[0])
    cells = [[str(c) for c in columns]] + [[_cell(r.get(c, "")) for c in columns] for r in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(columns))]
    lines = ["  ".join(v.rjust(w) if j else v.ljust(w) for j, (v, w) in enumerate(zip(row, widths)))
             for row in cells]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(line.rstrip() for line in lines)


def _cell(v) -> str:
    if isinstance(v, (float, np.floating)):
        return f"{float(v):g}"
    if isinstance(v, (np.integer,)):
        return str(int(v))
    if isinstance(v, (bool, np.bool_)):
        return "yes" if v else "no"
    return str(v)
