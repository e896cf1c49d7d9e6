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


def run_grader(files, out, timeout=None):
    cmd = [sys.executable, "-m", "course_tools", "grade", "--solutions", str(SOLUTIONS), "--out", str(out)]
    if timeout:
        cmd += ["--timeout", str(timeout)]
    done = subprocess.run(cmd + [str(f) for f in files], capture_output=True, text=True, cwd=out.parent,
                          timeout=600)
    assert done.returncode == 0, done.stdout + done.stderr
    with open(out, newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    assert rows and list(rows[0]) == ["file", "exercise", "points", "max_points", "message"]
    return rows, done.stdout


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()
