"""What grading writes: the grades CSV (journaled, then atomic), per-student feedback, a summary."""
from __future__ import annotations

import contextlib
import csv
import os
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

from .lessons import Row, fmt_points

if TYPE_CHECKING:                      # only for a type annotation: reports never import the grader
    from .autograder import Graded

CSV_HEADER = ["file", "exercise", "points", "max_points", "message"]


def _csv_row(r: Row) -> list:
    return [r.file, r.exercise, "" if r.points is None else fmt_points(r.points), fmt_points(r.max_points), r.message]


def write_csv(rows: list[Row], out: Path) -> None:
    """Write the CSV atomically: a temporary file in the same folder, renamed over `out`."""
    out = Path(out)
    fd, tmp = tempfile.mkstemp(prefix=f".{out.name}.", suffix=".tmp", dir=out.parent)
    try:
        with os.fdopen(fd, "w", newline="", encoding="utf-8") as fh:
            writer = csv.writer(fh)
            writer.writerow(CSV_HEADER)
            for r in rows:
                writer.writerow(_csv_row(r))
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, out)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


class Journal:
    """Rows appended (and flushed to disk) as soon as each submission is graded: an interrupted
    run keeps what it graded in <out>.partial."""

    def __init__(self, out: Path):
        self.path = Path(str(out) + ".partial")
        self._fh = open(self.path, "w", newline="", encoding="utf-8")
        self._writer = csv.writer(self._fh)
        self._writer.writerow(CSV_HEADER)
        self._sync()

    def _sync(self):
        self._fh.flush()
        os.fsync(self._fh.fileno())

    def add(self, rows: list[Row]) -> None:
        for r in rows:
            self._writer.writerow(_csv_row(r))
        self._sync()

    def close(self, remove: bool) -> None:
        self._fh.close()
        if remove:
            with contextlib.suppress(OSError):
                self.path.unlink()


def feedback_text(graded: Graded) -> str:
    """What passed, what failed and why, for the student: the row messages (which never hold a
    hidden input or an expected value), the points, and what to do next."""
    lines = [f"Feedback for {Path(graded.file).name}", ""]
    auto = [r for r in graded.rows if r.points is not None]
    got = sum(r.points for r in auto)
    total = sum(r.max_points for r in graded.rows)
    manual = sum(r.max_points for r in graded.rows if r.points is None)
    lines.append(f"Points: {fmt_points(got)} of {fmt_points(total)}"
                 + (f" ({fmt_points(manual)} more to be graded by hand)" if manual else ""))
    lines.append("")
    for r in graded.rows:
        mark = "graded by hand" if r.points is None else f"{fmt_points(r.points)}/{fmt_points(r.max_points)}"
        lines.append(f"- {r.exercise} ({mark}): {r.message}")
    lines.append("")
    lines.append("Run each exercise's check cell in your own notebook for hints; the graded tests also try "
                 "cases the checks do not show.")
    return "\n".join(lines) + "\n"


def summary(rows: list[Row]) -> list[str]:
    """One line per file: points, maximum, and how many points wait for hand grading."""
    lines, files = [], []
    for r in rows:
        if r.file not in files:
            files.append(r.file)
    for f in files:
        mine = [r for r in rows if r.file == f]
        auto = sum(r.points for r in mine if r.points is not None)
        total = sum(r.max_points for r in mine)
        manual = sum(r.max_points for r in mine if r.points is None)
        extra = f" (+ {fmt_points(manual)} to grade by hand)" if manual else ""
        lines.append(f"{f}: {fmt_points(auto)}/{fmt_points(total)}{extra}")
    return lines
