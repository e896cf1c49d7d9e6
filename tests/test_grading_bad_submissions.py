"""Grading bad submissions: each kind gets 0-point rows with its reason, and grading goes on.

Kept apart from test_classroom.py so the two slow grading runs land on different workers.
"""
from pathlib import Path

import pytest

from grading_helpers import SOLUTIONS, SUBMISSIONS, digest, run_grader


@pytest.fixture(scope="module")
def graded_bad(tmp_path_factory):
    """The partial fixture and every kind of bad submission, graded in one call (4 s limit: enough to run the finished parts)."""
    names = ["partial/05_adam.ipynb", "invalid_json/01_one_uneven_surface.ipynb", "infinite_loop/08_clipping.ipynb",
             "missing_cells/02_sgd_zigzag.ipynb", "kernel_crash/07_schedules.ipynb",
             "deletes_files/09_loss_scaling.ipynb", "wrong_lesson/05_adam.ipynb"]
    files = [SUBMISSIONS / n for n in names]
    before = {f: digest(f) for f in sorted(SUBMISSIONS.rglob("*")) if f.is_file()}
    out = tmp_path_factory.mktemp("grades") / "grades.csv"
    rows, _, _ = run_grader(files, out, timeout=4, expect=3)
    table = {}
    for r in rows:
        key = "/".join(Path(r["file"]).parts[-2:])
        table.setdefault(key, {})[r["exercise"]] = r
    return table, before


@pytest.mark.slow
def test_grading_never_modifies_a_bad_submission(graded_bad):
    for path, before in graded_bad[1].items():
        assert path.exists() and digest(path) == before, f"{path} changed during grading"


@pytest.mark.slow
def test_a_partial_submission_scores_exactly_its_solved_parts(graded_bad):
    table, _ = graded_bad
    partial = table["partial/05_adam.ipynb"]
    points = {k: r["points"] for k, r in partial.items()}
    assert points == {"05_first_step": "2", "05_v_measures": "", "05_v_constant_gradient": "1",
                      "05_adam_three_steps": "0"}
    assert "bias correction" in partial["05_adam_three_steps"]["message"], "its edited test cell was restored"
    assert partial["05_v_measures"]["message"].startswith("graded by hand")


@pytest.mark.slow
def test_each_bad_submission_gets_zero_rows_with_the_reason_and_grading_goes_on(graded_bad):
    table, _ = graded_bad
    assert table["invalid_json/01_one_uneven_surface.ipynb"]["01_one_sgd_step"]["points"] == "0"
    assert "not a readable notebook" in table["invalid_json/01_one_uneven_surface.ipynb"]["01_one_sgd_step"]["message"]

    loop = table["infinite_loop/08_clipping.ipynb"]
    assert loop["08_clip_factor"]["points"] == "1", "work finished before the loop still counts"
    assert loop["08_global_norm_clipping"]["points"] == "0"
    assert "timed out" in loop["08_global_norm_clipping"]["message"]

    missing = table["missing_cells/02_sgd_zigzag.ipynb"]
    assert missing["02_stability_limit"]["points"] == "2", "a deleted test cell is restored from solutions/"
    assert missing["02_stability_run"]["points"] == "0"
    assert "answer cell '02_stability_run_answer' is missing" in missing["02_stability_run"]["message"]

    crash = table["kernel_crash/07_schedules.ipynb"]
    assert crash["07_warmup_cosine"]["points"] == "3"
    assert crash["07_scheduler_order"]["points"] == "0"
    assert "process died" in crash["07_scheduler_order"]["message"]

    wrong = table["wrong_lesson/05_adam.ipynb"]
    assert all(r["points"] == "0" and "another lesson" in r["message"] for r in wrong.values())

    deleter = table["deletes_files/09_loss_scaling.ipynb"]
    assert all(r["points"] == r["max_points"] for r in deleter.values())


@pytest.mark.slow
def test_a_submission_deleting_files_only_touches_its_temporary_copy(graded_bad):
    assert (SUBMISSIONS / "deletes_files" / "notes.txt").exists()
    assert (SUBMISSIONS / "deletes_files" / "09_loss_scaling.ipynb").exists()
    assert (SOLUTIONS / "09_loss_scaling.ipynb").exists()
