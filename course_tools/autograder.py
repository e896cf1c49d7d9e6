"""The autograder: each submission run against its lesson's locked cells, one CSV row per exercise.

``grade`` restores every locked cell (setup, checks, visible and hidden tests) of a submission
from solutions/ by grade_id, runs the submission in its own kernel inside a temporary copy of
its folder with a per-notebook time limit, and writes one CSV row per exercise: file,
exercise, points, max_points, message. It never writes to a submission. Grading runs the
submitted code with your user's permissions: see README ("For instructors") for isolation.
"""
from __future__ import annotations

import copy
import csv
import os
import re
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import nbformat

from .exercises import (DEFAULT_SOLUTIONS, KERNEL, TEXT_STUB, ClassroomError, grade_id,
                        is_grade, is_locked, is_solution, nbgrader_meta, validate_solution)

@dataclass
class Row:
    """One line of the grades CSV. points is None for answers that are graded by hand."""
    file: str
    exercise: str
    points: float | None
    max_points: float
    message: str


@dataclass
class Exercise:
    grade_id: str
    points: float
    manual: bool            # a written answer: graded by hand
    answer_ids: list        # the answer cells this grade cell tests


@dataclass
class Lesson:
    path: Path
    nb: object
    exercises: list

    @property
    def name(self) -> str:
        return self.path.name

    @property
    def ids(self) -> set:
        return {grade_id(c) for c in self.nb.cells if grade_id(c)}


def load_lessons(solutions: Path) -> dict[str, Lesson]:
    """Every solution notebook by file name, with its graded exercises in order."""
    lessons, owner = {}, {}
    if not Path(solutions).is_dir():
        raise ClassroomError(f"no solutions folder at {Path(solutions).resolve()}: run from the course "
                             "folder or pass --solutions DIR")
    for path in sorted(Path(solutions).glob("*.ipynb")):
        nb = nbformat.read(path, as_version=4)
        validate_solution(nb, path.name)
        exercises, answers = [], []
        for cell in nb.cells:
            if is_grade(cell) and is_solution(cell):
                exercises.append(Exercise(grade_id(cell), float(nbgrader_meta(cell)["points"]), True, [grade_id(cell)]))
                answers = []
            elif is_grade(cell):
                exercises.append(Exercise(grade_id(cell), float(nbgrader_meta(cell)["points"]), False, answers))
                answers = []
            elif is_solution(cell):
                answers.append(grade_id(cell))
        lesson = Lesson(path, nb, exercises)
        for gid in lesson.ids:
            if gid in owner:
                raise ClassroomError(f"grade_id {gid!r} appears in both {owner[gid]} and {path.name}; "
                                     "ids must be unique across lessons")
            owner[gid] = path.name
        lessons[path.name] = lesson
    if not lessons:
        raise ClassroomError(f"no solution notebooks in {solutions}")
    return lessons


def _lesson_for_name(filename: str, lessons: dict[str, Lesson]) -> Lesson | None:
    if filename in lessons:
        return lessons[filename]
    m = re.match(r"(\d\d)[_\-\s]", filename)
    if m:
        found = [lesson for name, lesson in lessons.items() if name.startswith(m.group(1) + "_")]
        if len(found) == 1:
            return found[0]
    return None


def _lesson_for_ids(ids: set, lessons: dict[str, Lesson]) -> tuple[Lesson | None, int]:
    best, overlap = None, 0
    for lesson in lessons.values():
        n = len(ids & lesson.ids)
        if n > overlap:
            best, overlap = lesson, n
    return best, overlap


def _fmt_points(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else f"{x:g}"


def _rows_all_zero(file: str, lesson: Lesson, message: str) -> list[Row]:
    return [Row(file, ex.grade_id, 0.0, ex.points, message) for ex in lesson.exercises]


def _restore_locked_cells(student, solution) -> tuple[object, set]:
    """The submission with every locked cell taken from the solution; returns (nb, present ids).

    Edited locked cells get the solution's source back; deleted ones are put back after the
    nearest cell before them that is still there.
    """
    nb = copy.deepcopy(student)
    present = {grade_id(c) for c in nb.cells if grade_id(c)}
    anchor = -1
    for sol_cell in solution.cells:
        gid = grade_id(sol_cell)
        if not gid:
            continue
        positions = [i for i, c in enumerate(nb.cells) if grade_id(c) == gid]
        if is_locked(sol_cell):
            fresh = copy.deepcopy(sol_cell)
            if fresh.cell_type == "code":
                fresh.outputs, fresh.execution_count = [], None
            if positions:
                for i in positions:
                    fresh_i = copy.deepcopy(fresh)
                    if "id" in nb.cells[i]:
                        fresh_i["id"] = nb.cells[i]["id"]
                    nb.cells[i] = fresh_i
                anchor = positions[0]
            else:
                nb.cells.insert(anchor + 1, fresh)
                anchor += 1
        elif positions:
            anchor = positions[0]
    return nb, present


def _error_of(cell) -> dict | None:
    for out in cell.get("outputs", []):
        if out.get("output_type") == "error":
            return out
    return None


_ANSI = re.compile(r"\x1b\[[0-9;]*m")


def _one_line(text: str, limit: int = 300) -> str:
    text = " ".join(_ANSI.sub("", str(text)).split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


COPY_BUDGET = 200 * 1024 * 1024   # bytes of a submission's folder copied next to it at most


def _copy_folder(src: Path, dest: Path, keep: Path, budget: int = COPY_BUDGET) -> None:
    """Copy the submission's folder to dest: its files and subfolders, without other notebooks,
    checkpoints or hidden folders, and at most `budget` bytes (a Downloads folder stays put)."""
    dest.mkdir(parents=True)
    shutil.copy2(keep, dest / keep.name)
    used = keep.stat().st_size
    for folder, dirs, files in os.walk(src):
        dirs[:] = sorted(d for d in dirs if not d.startswith(".") and d != "__pycache__")
        rel = Path(folder).relative_to(src)
        for name in sorted(files):
            p = Path(folder) / name
            if name.endswith(".ipynb") or p.is_symlink() or not p.is_file():
                continue
            size = p.stat().st_size
            if used + size > budget:
                return
            target = dest / rel / name
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(p, target)
            used += size


def _execute(nb, workdir: Path, timeout: float, scratch: Path) -> tuple[set, str | None]:
    """Run nb in a fresh kernel in workdir; return (indices of finished cells, abort reason)."""
    from nbclient import NotebookClient
    from nbclient.exceptions import CellTimeoutError, DeadKernelError

    finished, current = set(), {"where": "?"}
    deadline = time.monotonic() + timeout

    def on_start(cell, cell_index, **_):
        gid = grade_id(cell)
        current["where"] = f"{cell_index + 1}" + (f" ({gid})" if gid else "")

    def on_executed(cell, cell_index, **_):
        finished.add(cell_index)

    client = NotebookClient(
        nb, kernel_name=KERNEL, allow_errors=True, timeout=timeout, startup_timeout=60,
        timeout_func=lambda cell: max(1.0, deadline - time.monotonic()),
        shutdown_kernel="immediate", record_timing=False,
        resources={"metadata": {"path": str(workdir)}},
        on_cell_start=on_start, on_cell_executed=on_executed,
    )
    env = dict(os.environ)
    env.update(MPLBACKEND="Agg", PYTHONDONTWRITEBYTECODE="1",
               LESSONS_PROGRESS_FILE=str(scratch / "progress.json"))
    try:
        client.execute(env=env, stderr=subprocess.DEVNULL)
    except CellTimeoutError:
        return finished, (f"timed out: the notebook ran past the {timeout:g} s limit in cell "
                          f"{current['where']} (an infinite loop?)")
    except DeadKernelError:
        return finished, (f"the kernel died while running cell {current['where']} (os._exit, a crash "
                          "or running out of memory)")
    except Exception as exc:   # kernel failed to start, or something nbclient could not handle
        if time.monotonic() >= deadline:
            return finished, f"timed out: the notebook ran past the {timeout:g} s limit"
        return finished, f"could not run the notebook: {type(exc).__name__}: {_one_line(exc)}"
    return finished, None


def grade_file(path, lessons: dict[str, Lesson], timeout: float = 120) -> list[Row]:
    """Grade one submitted notebook; never raises for a bad submission, never writes to it."""
    path = Path(path)
    file = str(path)
    by_name = _lesson_for_name(path.name, lessons)
    if not path.is_file():
        if by_name:
            return _rows_all_zero(file, by_name, "file not found")
        return [Row(file, "(notebook)", 0.0, 0.0, "file not found")]
    try:
        student = nbformat.read(path, as_version=4)
        if not isinstance(student.get("cells"), list):
            raise ValueError("it has no list of cells")
        for cell in student.cells:
            if cell.get("cell_type") not in ("code", "markdown", "raw") or not isinstance(cell.get("source"), str):
                raise ValueError("it has a malformed cell")
    except Exception as exc:
        reason = f"not a readable notebook ({type(exc).__name__}: {_one_line(exc, 150)})"
        if by_name:
            return _rows_all_zero(file, by_name, reason)
        return [Row(file, "(notebook)", 0.0, 0.0, reason)]

    ids = {grade_id(c) for c in student.cells if grade_id(c)}
    by_ids, _ = _lesson_for_ids(ids, lessons)
    lesson = by_name or by_ids
    if lesson is None:
        return [Row(file, "(notebook)", 0.0, 0.0,
                    "cannot tell which lesson this is: its name and its cells match no notebook in solutions/")]
    if by_ids is not None and by_ids is not lesson and not (ids & lesson.ids):
        return _rows_all_zero(file, lesson, f"this is the notebook of another lesson ({by_ids.name}), "
                                            f"not {lesson.name}")

    graded, present = _restore_locked_cells(student, lesson.nb)
    for cell in graded.cells:
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None
    graded.metadata["kernelspec"] = {"display_name": "Python 3 (ipykernel)", "language": "python",
                                     "name": KERNEL}

    scratch = Path(tempfile.mkdtemp(prefix="lessons-grade-"))
    try:
        workdir = scratch / "work"
        _copy_folder(path.parent, workdir, keep=path)
        finished, abort = _execute(graded, workdir, timeout, scratch)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)

    index_of = {}
    for i, cell in enumerate(graded.cells):
        gid = grade_id(cell)
        if gid and gid not in index_of:
            index_of[gid] = i
    rows = []
    for ex in lesson.exercises:
        missing = [a for a in ex.answer_ids if a not in present]
        if missing:
            rows.append(Row(file, ex.grade_id, 0.0, ex.points,
                            f"answer cell {missing[0]!r} is missing from the submission (deleted?); "
                            "copy it back from exercises/ and put the answer in it"))
            continue
        if ex.manual:
            text = graded.cells[index_of[ex.grade_id]].source.strip()
            if not text or text == TEXT_STUB:
                rows.append(Row(file, ex.grade_id, 0.0, ex.points, "not answered"))
            else:
                rows.append(Row(file, ex.grade_id, None, ex.points,
                                f"graded by hand: a written answer of {len(text.split())} words"))
            continue
        i = index_of[ex.grade_id]
        if i not in finished:
            rows.append(Row(file, ex.grade_id, 0.0, ex.points, abort or "the test cell did not run"))
            continue
        error = _error_of(graded.cells[i])
        if error is None:
            rows.append(Row(file, ex.grade_id, ex.points, ex.points, "passed"))
            continue
        answer_errors = [_error_of(graded.cells[index_of[a]]) for a in ex.answer_ids if a in index_of]
        if any(e and e.get("ename") == "NotImplementedError" for e in answer_errors) or \
                error.get("ename") == "NotImplementedError" or \
                str(error.get("evalue", "")).startswith("Not attempted yet"):
            rows.append(Row(file, ex.grade_id, 0.0, ex.points, "not attempted yet"))
            continue
        rows.append(Row(file, ex.grade_id, 0.0, ex.points,
                        f"failed: {error.get('ename')}: {_one_line(error.get('evalue', ''))}"))
    return rows


def grade(files, solutions: Path = DEFAULT_SOLUTIONS, timeout: float = 120) -> list[Row]:
    """Grade every file (each in its own kernel and temporary folder); one Row per exercise."""
    lessons = load_lessons(Path(solutions))
    rows = []
    for f in files:
        rows.extend(grade_file(f, lessons, timeout))
    return rows


def write_csv(rows: list[Row], out: Path) -> None:
    with open(out, "w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(["file", "exercise", "points", "max_points", "message"])
        for r in rows:
            writer.writerow([r.file, r.exercise, "" if r.points is None else _fmt_points(r.points),
                             _fmt_points(r.max_points), r.message])


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
        extra = f" (+ {_fmt_points(manual)} to grade by hand)" if manual else ""
        lines.append(f"{f}: {_fmt_points(auto)}/{_fmt_points(total)}{extra}")
    return lines
