"""Shared by the grading tests: run the autograder CLI and fingerprint files."""
import csv
import hashlib
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SOLUTIONS = ROOT / "solutions"
EXERCISES = ROOT / "exercises"
SUBMISSIONS = ROOT / "tests" / "fixtures" / "submissions"


# the grader's documented exit codes that still mean "a CSV was written"
GRADED = {0: "all passed", 1: "some exercise failed", 3: "some submission could not be graded"}


def require_sandbox() -> str:
    """The bwrap to grade with. Without a working bubblewrap the sandboxed grading tests skip,
    unless LESSONS_REQUIRE_SANDBOX=1 (CI sets it) turns the skip into a failure."""
    import os

    import pytest

    from course_tools.sandbox import SandboxUnavailable, check_bwrap, find_bwrap

    try:
        return check_bwrap(find_bwrap())
    except SandboxUnavailable as exc:
        if os.environ.get("LESSONS_REQUIRE_SANDBOX", "") == "1":
            pytest.fail(f"LESSONS_REQUIRE_SANDBOX=1 but {exc}")
        pytest.skip(f"no sandbox here (install bubblewrap): {exc}")


def run_grader(files, out, timeout=None, jobs=2, extra=(), cwd=None, expect=None):
    """Run `python -m course_tools grade` (sandboxed) on files; returns (rows, stdout, exit code)."""
    if "--no-sandbox" not in extra:
        require_sandbox()
    cmd = [sys.executable, "-m", "course_tools", "grade", "--solutions", str(SOLUTIONS), "--out", str(out),
           "--jobs", str(jobs), *extra]
    if timeout:
        cmd += ["--timeout", str(timeout)]
    done = subprocess.run(cmd + [str(f) for f in files], capture_output=True, text=True,
                          cwd=cwd or out.parent, timeout=600)
    assert done.returncode in (GRADED if expect is None else {expect}), done.stdout + done.stderr
    with open(out, newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    assert rows and list(rows[0]) == ["file", "exercise", "points", "max_points", "message"]
    return rows, done.stdout + done.stderr, done.returncode


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()
