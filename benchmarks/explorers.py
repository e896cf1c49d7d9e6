"""Explorer update times: every explorer's main control swept there and back, 50 updates each.

An update is compute + draw to the Agg canvas + PNG encoding (what a slider move costs before
the browser shows it); the explorer times its compute part itself (update_compute_seconds).
"""
from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402

from lessons_lib.explorers import EXPLORERS  # noqa: E402

UPDATES = 50

SWEEPS = {
    "02": ("lr", list(np.geomspace(1e-3, 0.03, 25))),
    "03": ("lr", list(np.geomspace(1e-3, 0.3, 25))),
    "04": ("at_step", list(range(1, 26))),
    "05": ("weight_decay", list(np.geomspace(1e-3, 1.0, 25))),
    "06": ("warmup_steps", list(range(0, 50, 2))),
    "07": ("max_norm", list(np.geomspace(0.1, 200, 25))),
    "08": ("log2_scale", list(range(0, 40, 2)) + list(range(40, 30, -2))),
    "09": ("at_step", list(range(0, 81, 3))),
}
"""lesson -> (main control, the values a learner sweeps through while dragging it)."""


def _there_and_back(sweep, n):
    values = list(sweep) + list(reversed(sweep))
    return [values[i % len(values)] for i in range(n)]


def measure_update_times(lessons=None, updates: int = UPDATES, warmup: int = 3) -> dict:
    """Time each explorer's updates while its main control sweeps there and back.

    Returns {lesson: {"name", "control", "updates", "median_ms", "p95_ms", "compute_median_ms",
    "draw_median_ms", "median_cpu_ms", "p95_cpu_ms", "panel_redraws"}}: wall-clock and process
    CPU time per update (CPU time is the steadier number on a shared machine), the compute part,
    and how many panel backgrounds were redrawn (the rest was blitted).
    """
    out = {}
    for lesson in lessons or EXPLORERS:
        name, build, _ = EXPLORERS[lesson]
        key, sweep = SWEEPS[lesson]
        values = _there_and_back(sweep, updates)
        ex = build()
        for v in values[:warmup]:                  # caches, fonts, first draw
            ex.controls[key].value = v
        for times in (ex.update_seconds, ex.update_compute_seconds, ex.update_cpu_seconds):
            times.clear()
        redraws = ex.canvas.full_redraws
        for v in values:
            before = len(ex.update_seconds)
            ex.controls[key].value = v
            if len(ex.update_seconds) == before:   # the same value as before: no event
                ex.update()
        ms = np.array(ex.update_seconds) * 1e3
        compute = np.array(ex.update_compute_seconds) * 1e3
        cpu = np.array(ex.update_cpu_seconds) * 1e3
        out[lesson] = {"name": name, "control": key, "updates": int(ms.size),
                       "median_ms": float(np.median(ms)), "p95_ms": float(np.percentile(ms, 95)),
                       "compute_median_ms": float(np.median(compute)),
                       "draw_median_ms": float(np.median(ms - compute)),
                       "median_cpu_ms": float(np.median(cpu)), "p95_cpu_ms": float(np.percentile(cpu, 95)),
                       "panel_redraws": ex.canvas.full_redraws - redraws}
    return out


def bench_explorers(row) -> None:
    for lesson, m in measure_update_times().items():
        row(f"2 explorer {lesson} {m['name']} ({m['control']}), {m['updates']} updates",
            f"median {m['median_ms']:.1f} ms, p95 {m['p95_ms']:.1f} ms",
            f"compute {m['compute_median_ms']:.1f} ms + draw {m['draw_median_ms']:.1f} ms",
            m["median_ms"] < 50 and m["p95_ms"] <= 100, m)
