"""Issue 17, sections 1-7: dishonest and careless submissions graded by the sandboxed grader.

Every adversarial notebook (tests/fixtures/submissions/attacks/, built by build_attacks.py) is
graded in one call together with classmates (an untouched exercise and a solution), from the
course folder as an instructor would run it, on copies in a temporary folder. Each attack must
score 0 on the exercise it targets (or be reported as not gradable), every classmate keeps its
score and its file, and nothing outlives the grader.
"""
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from course_tools import autograder
from course_tools.sandbox import Limits

from grading_helpers import EXERCISES, ROOT, SOLUTIONS, SUBMISSIONS, digest, require_sandbox, run_grader

ATTACKS = SUBMISSIONS / "attacks"
MARKERS = (b"ISSUE17-DAEMON-MARKER", b"/grading/runner.py")

# exercise -> points each attack must get ("-" : the row must not exist)
EXPECTED = {
    "s1_input_transformer": {"01_one_sgd_step": "0"},
    "s1_showtraceback": {"01_one_sgd_step": "0"},
    "s1_custom_exc": {"01_one_sgd_step": "0"},
    "s1_patched_checks": {"01_one_sgd_step": "0"},
    "s1_frame_reading": {"06_adamw_step": "0"},
    "s1_hidden_globals": {"02_stability_limit": "2", "02_stability_run": "0"},
    "s2_saved_step": {"06_adamw_step": "0"},
    "s2_reload": {"06_adamw_step": "0"},
    "s2_function_copy": {"06_adamw_step": "0"},
    "s2_step_inplace": {"06_adamw_step": "0"},
    "s2_schedule_formula": {"07_warmup_cosine": "0"},
    "s2_scaler_update": {"09_scaler_update": "0"},
    "s2_state_gigabytes": {"10_state_memory": "0"},
    "s3_read_solutions": {"01_one_sgd_step": "0"},
    "s3_symlink": {"01_one_sgd_step": "0"},
    "s4_overwrite_classmates": {"01_one_sgd_step": "0"},
    "s4_poison_library": {"01_one_sgd_step": "0"},
    "s4_daemon": {"01_one_sgd_step": "0"},
    "s4_kill_grader": {"01_one_sgd_step": "0"},
    "s4_fork_setsid": {"01_one_sgd_step": "0"},
    "s5_print_flood": {"01_one_sgd_step": "0"},
    "s5_memory": {"01_one_sgd_step": "0"},
    "s5_sleepy_cells": {"01_one_sgd_step": "0"},
    "s6_check_oracle": {"11_hessian": "3", "11_condition_numbers": "0"},
    "e7_copied_graded_cell": {"01_one_sgd_step": "2"},
    "e7_hidden_test_only": {"06_adamw_step": "0"},
    "e7_swapped_answers": {"02_stability_limit": "0", "02_stability_run": "0"},
}


def leftover_processes() -> list[str]:
    """Processes whose command line carries a sandboxed runner's or the daemon attack's marker."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        if any(m in cmdline for m in MARKERS):
            found.append(f"{entry.name}: {cmdline[:120]!r}")
    return found


@pytest.fixture(scope="module")
def attacked(tmp_path_factory):
    base = tmp_path_factory.mktemp("class")
    submitted = base / "submitted"
    shutil.copytree(ATTACKS, submitted, symlinks=True)
    for name, source in (("classmate_untouched", EXERCISES), ("classmate_solved", SOLUTIONS)):
        (submitted / name).mkdir()
        for lesson in ("01_one_uneven_surface.ipynb", "06_adamw.ipynb"):
            shutil.copy(source / lesson, submitted / name / lesson)
    files = sorted(p for p in submitted.glob("*/*.ipynb"))
    classmates = {p: digest(p) for p in files if p.parent.name.startswith("classmate")}
    library = {p: digest(p) for p in (ROOT / "lessons_lib").rglob("*.py")}
    out = base / "grades.csv"
    t0 = time.monotonic()
    rows, output, code = run_grader(files, out, timeout=4, jobs=2, cwd=ROOT,
                                    extra=("--feedback", str(base / "feedback")))
    seconds = time.monotonic() - t0
    csv_after_grading = out.read_bytes()
    time.sleep(2.5)        # the daemon attack rewrites the CSV 0.5 s after the grader exits, if it is still alive
    table = {}
    for r in rows:
        table.setdefault(Path(r["file"]).parent.name, {})[r["exercise"]] = r
    return dict(table=table, rows=rows, out=out, csv=csv_after_grading, code=code, seconds=seconds,
                classmates=classmates, library=library, feedback=base / "feedback", files=files,
                leftovers=leftover_processes(), output=output)


@pytest.mark.slow
@pytest.mark.parametrize("case", sorted(EXPECTED))
def test_each_attack_scores_what_it_should(attacked, case):
    rows = attacked["table"][case]
    for exercise, points in EXPECTED[case].items():
        assert rows[exercise]["points"] == points, rows[exercise]


@pytest.mark.slow
def test_every_fixture_folder_has_an_expectation():
    assert sorted(p.name for p in ATTACKS.iterdir() if p.is_dir()) == sorted(EXPECTED)


@pytest.mark.slow
def test_classmates_keep_their_scores_and_their_files(attacked):
    table = attacked["table"]
    assert {r["points"] for r in table["classmate_untouched"].values()} == {"0"}
    assert all(r["message"].startswith("not attempted") for r in table["classmate_untouched"].values())
    assert all(r["points"] == r["max_points"] and r["message"] == "passed"
               for r in table["classmate_solved"].values())
    for path, before in attacked["classmates"].items():
        assert digest(path) == before, f"{path} was changed by another submission"


@pytest.mark.slow
def test_the_library_on_disk_is_not_poisoned(attacked):
    for path, before in attacked["library"].items():
        assert digest(path) == before, f"{path} changed during grading"


@pytest.mark.slow
def test_the_grader_survives_kills_daemons_and_forks_and_nothing_outlives_it(attacked):
    assert attacked["code"] == 3, "exit 3: the symlink could not be graded, everything else was"
    assert attacked["out"].read_bytes() == attacked["csv"], "the CSV changed after the grader exited"
    assert b"rewritten" not in attacked["csv"]
    assert attacked["leftovers"] == []
    assert len({r["file"] for r in attacked["rows"]}) == len(attacked["files"]), "a row for every submission"


@pytest.mark.slow
def test_limits_end_a_notebook_with_the_reason(attacked):
    table = attacked["table"]
    assert "output limit" in table["s5_print_flood"]["01_one_sgd_step"]["message"]
    assert "MemoryError" in table["s5_memory"]["01_one_sgd_step"]["message"]
    assert "timed out" in table["s5_sleepy_cells"]["01_one_sgd_step"]["message"]
    assert "symbolic link" in table["s3_symlink"]["01_one_sgd_step"]["message"]


@pytest.mark.slow
def test_library_pieces_are_absent_and_named(attacked):
    table = attacked["table"]
    for case, exercise in (("s2_saved_step", "06_adamw_step"), ("s2_function_copy", "06_adamw_step"),
                           ("s2_reload", "06_adamw_step"), ("s2_scaler_update", "09_scaler_update"),
                           ("s2_schedule_formula", "07_warmup_cosine"), ("s2_state_gigabytes", "10_state_memory")):
        assert "not available while grading" in table[case][exercise]["message"], table[case][exercise]
    assert "No module named 'benchmarks'" in table["s2_step_inplace"]["06_adamw_step"]["message"]


@pytest.mark.slow
def test_messages_and_feedback_hold_no_hidden_value_and_no_factor(attacked):
    hidden = attacked["table"]["e7_hidden_test_only"]["06_adamw_step"]["message"]
    assert "hidden test failed" in hidden and not any(ch.isdigit() for ch in hidden), hidden
    swapped = attacked["table"]["e7_swapped_answers"]
    assert "NameError" in swapped["02_stability_limit"]["message"]
    assert "not attempted" not in swapped["02_stability_run"]["message"]
    texts = [r["message"] for r in attacked["rows"]]
    texts += [p.read_text() for p in attacked["feedback"].iterdir()]
    assert len(list(attacked["feedback"].iterdir())) == len(attacked["files"])
    for text in texts:
        assert "DESIRED" not in text and "ACTUAL" not in text and "factor of" not in text, text


@pytest.mark.slow
def test_a_wall_clock_limit_per_notebook_not_per_cell():
    """12 cells of 0.45 s under a 2 s limit: the sandbox is killed at 2 s (plus start-up), not after
    every cell had its own second."""
    lessons = autograder.load_lessons(SOLUTIONS)
    options = autograder.GradeOptions(Limits(timeout=2), require_sandbox())
    builds = autograder.Builds(Path(os.environ.get("TMPDIR", "/tmp")) / f"builds-{os.getpid()}")
    try:
        t0 = time.monotonic()
        graded = autograder.grade_file(ATTACKS / "s5_sleepy_cells" / "01_one_uneven_surface.ipynb", lessons,
                                       options, builds)
        elapsed = time.monotonic() - t0
    finally:
        shutil.rmtree(builds.root, ignore_errors=True)
    assert "timed out" in graded.rows[0].message
    assert elapsed < 2 + 1.5, elapsed


def test_the_fixtures_are_what_the_build_script_makes():
    done = subprocess.run([sys.executable, str(SUBMISSIONS / "build_attacks.py"), "--check"],
                          capture_output=True, text=True, cwd=ROOT)
    assert done.returncode == 0, done.stdout + done.stderr
