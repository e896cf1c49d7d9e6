"""The explorer benchmark's tools (benchmarks/): the race re-tuning and the update timer."""
from benchmarks.explorers import DRAGS, SWEEPS, measure_update_times
from benchmarks.tune_race import tune_race
from lessons_lib.explorers import EXPLORERS, RACE_DEFAULTS


def test_race_defaults_are_the_tuned_settings():
    assert tune_race() == RACE_DEFAULTS


def test_measure_update_times_reports_median_and_p95_per_explorer():
    row = measure_update_times(["10"], updates=10)["10"]
    assert row["name"] == "race" and row["control"] == "at_step" and row["updates"] == 10
    assert 0 < row["compute_median_ms"] < row["median_ms"] <= row["p95_ms"]
    assert row["median_cpu_ms"] > 0 and row["panel_redraws"] >= 0


def test_every_explorer_has_a_sweep_and_a_drag():
    assert sorted(SWEEPS) == sorted(DRAGS) == sorted(EXPLORERS)
    for lesson, (name, build, _) in EXPLORERS.items():
        controls = build().controls
        assert SWEEPS[lesson][0] in controls and DRAGS[lesson][0] in controls, (lesson, name)
        assert len(set(DRAGS[lesson][1])) == len(DRAGS[lesson][1]) == 30, lesson


def test_the_adaptive_explorer_is_timed():
    row = measure_update_times(["04"], updates=5)["04"]
    assert row["name"] == "adaptive" and row["control"] == "lr" and row["updates"] == 5
    assert 0 < row["compute_median_ms"] < row["median_ms"] <= row["p95_ms"]
