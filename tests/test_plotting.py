"""Smoke tests of lessons_lib.plotting: every plot is labelled, titled and legended."""
from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

from lessons_lib import plotting  # noqa: E402
from lessons_lib.optimizers import SGD  # noqa: E402
from lessons_lib.runner import run  # noqa: E402
from lessons_lib.schedules import cosine, warmup_cosine  # noqa: E402


@pytest.fixture(autouse=True)
def close_figures():
    yield
    plt.close("all")


def labelled(ax):
    return ax.get_xlabel() and ax.get_ylabel() and ax.get_title()


def test_contour_marks_optimum_with_equal_aspect():
    ax = plotting.contour()
    assert labelled(ax)
    assert ax.get_aspect() == 1.0
    assert any(line.get_label().startswith("optimum") for line in ax.get_lines())


def test_paths_draw_each_run_and_drop_diverged_positions():
    good = run(SGD(0.018), 20)
    bad = run(SGD(1e6), 20)                        # nan after step 0
    ax = plotting.paths({"lr 0.018": good.params, "lr 1e6": bad.params})
    assert labelled(ax)
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert labels[:2] == ["optimum [0, 0]", "lr 0.018"] and "lr 1e6" in labels and "start" in labels
    diverged = [line for line in ax.get_lines() if line.get_label() == "lr 1e6"][0]
    assert len(diverged.get_xdata()) == 1 and np.all(np.isfinite(diverged.get_xdata()))


def test_loss_curves_log_scale_and_legend_only_for_several_lines():
    one = plotting.loss_curves({"sgd": run(SGD(0.01), 30).losses})
    assert labelled(one) and one.get_yscale() == "log" and one.get_legend() is None
    fig, ax = plt.subplots()
    two = plotting.loss_curves({"a": [3.0, 2.0, 1.0], "b": [3.0, 1.0, 0.5]}, ax=ax, log=False)
    assert two is ax and two.get_yscale() == "linear" and two.get_legend() is not None


def test_schedule_curves_accept_schedules_and_arrays():
    ax = plotting.schedule_curves({"cosine": cosine(0.1, 50), "warmup": warmup_cosine(0.1, 0.0, 5, 50),
                                   "array": np.linspace(0.1, 0.0, 50)}, steps=50)
    assert labelled(ax) and len(ax.get_legend().get_texts()) == 3
    np.testing.assert_array_equal(ax.get_lines()[0].get_ydata(), cosine(0.1, 50).values(50))


def test_heatmap_with_diverged_cells_and_marker():
    lrs = np.geomspace(1e-3, 0.03, 6)
    betas = np.linspace(0.0, 0.9, 5)
    values = np.outer(betas + 1, lrs)
    values[0, -1] = np.nan
    ax = plotting.heatmap(values, lrs, betas, xlabel="lr", ylabel="beta", title="final loss",
                          mark=(lrs[1], betas[2]), mark_label="best")
    assert labelled(ax) and ax.get_legend() is not None
    all_nan = plotting.heatmap(np.full((2, 2), np.nan), [0, 1], [0, 1], xlabel="x", ylabel="y", title="t")
    assert labelled(all_nan)
