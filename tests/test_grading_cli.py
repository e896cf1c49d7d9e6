"""The grade command's own behaviour (issue 17, section 7): arguments, output, exit status, sandbox choice."""
import csv
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from course_tools import cli

from grading_helpers import ROOT, SOLUTIONS, SUBMISSIONS, require_sandbox, run_grader

SOLVED_01 = SOLUTIONS / "01_one_uneven_surface.ipynb"
LOOP_07 = SUBMISSIONS / "infinite_loop" / "08_clipping.ipynb"


def read_rows(path):
    with open(path, newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def test_an_out_in_a_missing_folder_is_refused_before_anything_is_graded(tmp_path, capsys):
    t0 = time.monotonic()
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["grade", "--solutions", str(SOLUTIONS), "--out", str(tmp_path / "nope" / "grades.csv"),
                  str(SOLVED_01)])
    assert exit_info.value.code == cli.EXIT_USAGE
    assert "does not exist" in capsys.readouterr().err
    assert time.monotonic() - t0 < 2 and not list(tmp_path.iterdir())


def test_an_out_that_is_a_folder_is_refused(tmp_path, capsys):
    with pytest.raises(SystemExit):
        cli.main(["grade", "--solutions", str(SOLUTIONS), "--out", str(tmp_path), str(SOLVED_01)])
    assert "is a folder" in capsys.readouterr().err


def test_without_bubblewrap_the_grader_refuses_unless_told_no_sandbox(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("COURSE_TOOLS_BWRAP", "")
    code = cli.main(["grade", "--solutions", str(SOLUTIONS), "--out", str(tmp_path / "g.csv"), str(SOLVED_01)])
    err = capsys.readouterr().err
    assert code == cli.EXIT_USAGE and "bubblewrap" in err and "--no-sandbox" in err
    assert not (tmp_path / "g.csv").exists()


def test_folders_mean_their_notebooks_and_duplicates_are_graded_once():
    files, notes = cli.expand([SUBMISSIONS / "partial", SUBMISSIONS / "partial" / "05_adam.ipynb",
                               SUBMISSIONS / "partial" / ".." / "partial" / "05_adam.ipynb"])
    assert files == [SUBMISSIONS / "partial" / "05_adam.ipynb"]
    assert len(notes) == 2 and all("graded once" in n for n in notes)
    files, notes = cli.expand([ROOT / "benchmarks"])
    assert files == [] and "without notebooks" in notes[0]


@pytest.mark.slow
def test_no_sandbox_warns_loudly_and_still_grades_with_the_trusted_tests(tmp_path):
    out = tmp_path / "grades.csv"
    rows, output, code = run_grader([SUBMISSIONS / "partial", SOLVED_01, SOLVED_01], out, extra=("--no-sandbox",),
                                    expect=cli.EXIT_FAILED_TESTS)
    assert "WARNING: --no-sandbox" in output and "read solutions/" in output
    assert "given more than once" in output
    assert [r["file"] for r in rows].count(str(SOLVED_01)) == 1
    points = {(Path(r["file"]).name, r["exercise"]): r["points"] for r in rows}
    assert points[("05_adam.ipynb", "05_first_step")] == "2" and points[("05_adam.ipynb", "05_adam_three_steps")] == "0"
    assert points[("01_one_uneven_surface.ipynb", "01_one_sgd_step")] == "2"
    assert not Path(str(out) + ".partial").exists(), "the journal goes once the CSV is written"


@pytest.mark.slow
def test_all_passed_exits_0():
    out = Path(os.environ.get("TMPDIR", "/tmp")) / f"grades-{os.getpid()}.csv"
    try:
        rows, _, code = run_grader([SOLVED_01], out, expect=cli.EXIT_OK)
        assert [r["points"] for r in rows] == ["2"]
    finally:
        out.unlink(missing_ok=True)


def _start(out, files, timeout=30):
    require_sandbox()
    cmd = [sys.executable, "-m", "course_tools", "grade", "--solutions", str(SOLUTIONS), "--out", str(out),
           "--jobs", "1", "--timeout", str(timeout)] + [str(f) for f in files]
    return subprocess.Popen(cmd, cwd=out.parent, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)


def _wait_for_rows(journal: Path, proc, seconds=60):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if journal.exists() and len(read_rows(journal)) >= 1:
            return
        assert proc.poll() is None, proc.communicate()
        time.sleep(0.1)
    raise AssertionError("no row was journaled")


@pytest.mark.slow
@pytest.mark.parametrize("how", ["ctrl-c", "kill -9"])
def test_an_interrupted_run_keeps_every_row_graded_until_then(tmp_path, how):
    out = tmp_path / "grades.csv"
    journal = Path(str(out) + ".partial")
    proc = _start(out, [SOLVED_01, LOOP_07])
    try:
        _wait_for_rows(journal, proc)
        proc.send_signal(signal.SIGINT if how == "ctrl-c" else signal.SIGKILL)
        proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    if how == "ctrl-c":
        assert proc.returncode == cli.EXIT_INTERRUPTED
        rows = read_rows(out)
        assert not journal.exists()
    else:
        rows = read_rows(journal)
        assert not out.exists()
    assert [(Path(r["file"]).name, r["points"]) for r in rows] == [("01_one_uneven_surface.ipynb", "2")]
