"""Explorer responsiveness: update times while a control sweeps, and a synthetic drag's latency.

An update is compute + draw to the Agg canvas + PNG encoding (what a slider move costs before
the browser shows it); the explorer times its compute part itself (update_compute_seconds).
Targets: every explorer's update p95 <= 100 ms (median < 50 ms), and a drag of 30 values in
1 s, sent the way the frontend sends them, ends with the picture of the last value within
150 ms of the last event.
"""
from __future__ import annotations

import asyncio
import statistics
import time

import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402

from lessons_lib.explorers import EXPLORERS, clear_caches  # noqa: E402

UPDATES = 50

SWEEPS = {
    "02": ("lr", list(np.geomspace(1e-3, 0.03, 25))),
    "03": ("lr", list(np.geomspace(1e-3, 0.3, 25))),
    "04": ("lr", list(np.geomspace(1e-3, 0.3, 25))),
    "05": ("at_step", list(range(1, 26))),
    "06": ("weight_decay", list(np.geomspace(1e-3, 1.0, 25))),
    "07": ("warmup_steps", list(range(0, 50, 2))),
    "08": ("max_norm", list(np.geomspace(0.1, 200, 25))),
    "09": ("log2_scale", list(range(0, 40, 2)) + list(range(39, 30, -2))),
    "10": ("at_step", list(range(0, 81, 3))),
    "12": ("lr", list(np.geomspace(0.01, 3.0, 25))),
    "13": ("lr", list(np.geomspace(1e-3, 0.3, 25))),
}
"""lesson -> (main control, the values a learner sweeps through while dragging it)."""


def measure_update_times(lessons=None, updates: int = UPDATES) -> dict:
    """Time each explorer's updates while its main control sweeps there and back.

    Caches start cold (clear_caches, then the explorer is built and shows the sweep's first
    value), so the way there computes every value afresh and the way back may find its runs
    cached, as a learner dragging back would. Returns {lesson: {"name", "control", "updates",
    "median_ms", "p95_ms", "compute_median_ms", "draw_median_ms", "cold_compute_median_ms"
    (the way there), "median_cpu_ms", "p95_cpu_ms", "panel_redraws"}}: wall-clock and process
    CPU time per update (CPU time is the steadier number on a shared machine), the compute
    part, and how many panel backgrounds were redrawn (the rest was blitted).
    """
    out = {}
    for lesson in lessons or EXPLORERS:
        name, build, _ = EXPLORERS[lesson]
        key, sweep = SWEEPS[lesson]
        there_and_back = list(sweep[1:]) + list(reversed(sweep[:-1]))
        values = [there_and_back[i % len(there_and_back)] for i in range(updates)]
        clear_caches()
        ex = build()
        ex.controls[key].value = sweep[0]          # fonts, first draw
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
                       "cold_compute_median_ms": float(np.median(compute[:len(sweep) - 1])),
                       "median_cpu_ms": float(np.median(cpu)), "p95_cpu_ms": float(np.percentile(cpu, 95)),
                       "panel_redraws": ex.canvas.full_redraws - redraws}
    return out


def bench_explorers(row) -> None:
    for lesson, m in measure_update_times().items():
        row(f"2 explorer {lesson} {m['name']} ({m['control']}), {m['updates']} updates",
            f"median {m['median_ms']:.1f} ms, p95 {m['p95_ms']:.1f} ms",
            f"compute {m['compute_median_ms']:.1f} (cold {m['cold_compute_median_ms']:.1f}) + draw "
            f"{m['draw_median_ms']:.1f} ms",
            m["median_ms"] < 50 and m["p95_ms"] <= 100, m)


# ----------------------------------------------------------------------------- a synthetic drag

DRAG_VALUES = 30
DRAG_SECONDS = 1.0
DRAG_TARGET_MS = 150.0
DRAGS = {
    "02": ("lr", [float(v) for v in np.geomspace(1e-3, 0.03, DRAG_VALUES)]),
    "03": ("lr", [float(v) for v in np.geomspace(1e-3, 0.3, DRAG_VALUES)]),
    "04": ("lr", [float(v) for v in np.geomspace(1e-3, 0.3, DRAG_VALUES)]),
    "05": ("at_step", list(range(1, 1 + DRAG_VALUES))),
    "06": ("weight_decay", [float(v) for v in np.geomspace(1e-3, 1.0, DRAG_VALUES)]),
    "07": ("warmup_steps", list(range(0, 2 * DRAG_VALUES, 2))),
    "08": ("max_norm", [float(v) for v in np.geomspace(0.1, 200, DRAG_VALUES)]),
    "09": ("log2_scale", list(range(0, DRAG_VALUES))),
    "10": ("at_step", list(range(20, 20 + 2 * DRAG_VALUES, 2))),
    "12": ("lr", [float(v) for v in np.geomspace(0.01, 3.0, DRAG_VALUES)]),
    "13": ("lr", [float(v) for v in np.geomspace(1e-3, 0.3, DRAG_VALUES)]),
}
"""lesson -> (control, 30 distinct values a hand passes through in one drag)."""


async def _drag(explorer, key, values, seconds, timeout=10.0):
    """Send `values` evenly over `seconds` as the frontend does (Widget.set_state, one message
    per event-loop turn) and return the milliseconds from the moment the last value was due
    to the picture of that value. A message due while the loop is busy waits, as it would in
    the kernel's socket, so a slow update delays everything behind it."""
    control = explorer.controls[key]
    loop = asyncio.get_running_loop()
    shown = loop.create_future()
    last_sent = False

    def on_picture(change):
        if last_sent and control.value == values[-1] and not shown.done():
            shown.set_result(time.perf_counter())

    explorer.image.observe(on_picture, names="value")
    try:
        t0 = time.perf_counter()
        dt = seconds / (len(values) - 1)
        for i, value in enumerate(values):
            await asyncio.sleep(max(0.0, t0 + i * dt - time.perf_counter()))
            last_sent = i == len(values) - 1
            control.set_state({"value": value})
        drawn = await asyncio.wait_for(shown, timeout)
    finally:
        explorer.image.unobserve(on_picture, names="value")
    return (drawn - (t0 + (len(values) - 1) * dt)) * 1e3


def measure_drags(lessons=None, repeats: int = 3, seconds: float = DRAG_SECONDS) -> dict:
    """Per explorer: `repeats` drags of its DRAGS values (there, back, there) under a running
    asyncio loop, each with cold caches on a fresh explorer. Returns {lesson: {"name", "control", "latency_ms" (one per drag),
    "median_latency_ms", "max_latency_ms", "updates_per_drag"}}."""
    out = {}
    for lesson in lessons or EXPLORERS:
        name, build, _ = EXPLORERS[lesson]
        key, values = DRAGS[lesson]
        latencies, updates = [], []
        for i in range(repeats):
            sweep = values if i % 2 == 0 else values[::-1]
            clear_caches()                          # every drag computes its values afresh
            ex = build()
            ex.controls[key].value = sweep[0]       # start where the drag starts
            before = len(ex.update_seconds)
            latencies.append(asyncio.run(_drag(ex, key, sweep, seconds)))
            updates.append(len(ex.update_seconds) - before)
        out[lesson] = {"name": name, "control": key, "latency_ms": latencies,
                       "median_latency_ms": statistics.median(latencies), "max_latency_ms": max(latencies),
                       "updates_per_drag": updates}
    return out


def bench_explorer_drags(row) -> None:
    for lesson, m in measure_drags().items():
        row(f"2 drag {lesson} {m['name']} ({m['control']}), {DRAG_VALUES} values in {DRAG_SECONDS:g} s",
            f"last event -> picture {m['median_latency_ms']:.0f} ms",
            f"worst of {len(m['latency_ms'])} {m['max_latency_ms']:.0f} ms, "
            f"{max(m['updates_per_drag'])} updates/drag",
            m["median_latency_ms"] <= DRAG_TARGET_MS, m)
