"""Explorer update times: 50 updates per explorer with changing parameters.

An update is compute + draw to the Agg canvas + PNG encoding (what a slider move costs
before the browser shows it). The compute part is timed separately by calling the
explorer's pure compute function on the same parameters, so the split is printed too.
"""
from __future__ import annotations

import statistics
import time

import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402

from lessons_lib.explorers import _SWEEPS, EXPLORERS  # noqa: E402

UPDATES = 50


def _values(lesson: str) -> tuple[str, list]:
    """50 values of the explorer's main control: its sweep there and back."""
    key, sweep = _SWEEPS[lesson]
    there_and_back = list(sweep) + list(reversed(sweep))
    return key, [there_and_back[i % len(there_and_back)] for i in range(UPDATES)]


def bench_explorers(row) -> None:
    for lesson, (name, build, _) in EXPLORERS.items():
        explorer = build()
        key, values = _values(lesson)
        for v in values[:3]:                       # warm-up: caches, fonts, first draw
            explorer.controls[key].value = v
        explorer.update_seconds.clear()
        compute_ms = []
        for v in values:
            before = len(explorer.update_seconds)
            explorer.controls[key].value = v
            if len(explorer.update_seconds) == before:   # same value as before: no event
                explorer.update()
            params = explorer.params()
            t0 = time.perf_counter()
            explorer._compute(**params)                  # the compute half of that update
            compute_ms.append((time.perf_counter() - t0) * 1e3)
        total_ms = np.array(explorer.update_seconds) * 1e3
        median, p95 = float(np.median(total_ms)), float(np.percentile(total_ms, 95))
        c_med = statistics.median(compute_ms)
        row(f"2 explorer {lesson} {name} ({key}), {len(total_ms)} updates",
            f"median {median:.1f} ms, p95 {p95:.1f} ms",
            f"compute {c_med:.1f} ms + draw {max(median - c_med, 0):.1f} ms",
            median < 50 and p95 < 100,
            {"median_ms": median, "p95_ms": p95, "compute_median_ms": c_med,
             "draw_median_ms": max(median - c_med, 0.0), "updates": int(total_ms.size)})
