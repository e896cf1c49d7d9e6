"""Classroom tools: student versions of the exercise notebooks, and an autograder.

    python -m lessons_lib.classroom generate [--solutions DIR] [--exercises DIR] [--check]
    python -m lessons_lib.classroom grade --out grades.csv [--timeout 120] [--solutions DIR] FILE...

The notebooks in solutions/ are the single source, in nbgrader's format (cell metadata
``metadata.nbgrader``, schema_version 3): answer cells (``solution``), locked read-only cells
(``locked``), graded test cells (``grade`` + ``locked`` + ``points``) and graded written answers
(markdown, ``solution`` + ``grade``). Solution regions sit between ``### BEGIN SOLUTION`` and
``### END SOLUTION``; hidden tests between ``### BEGIN HIDDEN TESTS`` and ``### END HIDDEN TESTS``.

``generate`` writes exercises/ the way nbgrader's ClearSolutions, ClearHiddenTests, ClearOutput
and LockCells preprocessors would: solution code becomes ``# YOUR CODE HERE`` +
``raise NotImplementedError()``, written answers ``YOUR ANSWER HERE``, hidden tests disappear,
outputs are cleared and graded/locked cells are marked undeletable (and uneditable). It uses
nbformat only, and rewrites a file only when its content changes, so running it twice
changes nothing.

``grade`` restores every locked cell (setup, checks, visible and hidden tests) of a submission
from solutions/ by grade_id, runs the submission in its own kernel inside a temporary copy of
its folder with a per-notebook time limit, and writes one CSV row per exercise: file,
exercise, points, max_points, message. It never writes to a submission. Grading runs the
submitted code with your user's permissions: see README ("For instructors") for isolation.
"""
from __future__ import annotations

import argparse
import copy
import csv
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import nbformat

BEGIN_SOLUTION = "### BEGIN SOLUTION"
END_SOLUTION = "### END SOLUTION"
BEGIN_HIDDEN = "BEGIN HIDDEN TESTS"     # matched anywhere in a line, as nbgrader does
END_HIDDEN = "END HIDDEN TESTS"
CODE_STUB = "# YOUR CODE HERE\nraise NotImplementedError()"
TEXT_STUB = "YOUR ANSWER HERE"
GRADE_ID = re.compile(r"^[a-zA-Z0-9_\-]+$")
KERNEL = "python3"

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_SOLUTIONS = ROOT / "solutions"
DEFAULT_EXERCISES = ROOT / "exercises"


class ClassroomError(ValueError):
    """A solution notebook that breaks the format (the message says where and how)."""


# ------------------------------------------------------------------------------------------
# nbgrader metadata


def nbgrader_meta(cell) -> dict:
    return cell.get("metadata", {}).get("nbgrader", {}) or {}


def is_solution(cell) -> bool:
    return bool(nbgrader_meta(cell).get("solution", False))


def is_grade(cell) -> bool:
    return bool(nbgrader_meta(cell).get("grade", False))


def is_locked(cell) -> bool:
    """Read-only in the student version: grade cells and locked cells that aren't answers."""
    meta = nbgrader_meta(cell)
    if not meta or meta.get("solution", False):
        return False
    return bool(meta.get("grade", False) or meta.get("locked", False))


def grade_id(cell) -> str | None:
    return nbgrader_meta(cell).get("grade_id")


def validate_solution(nb, name: str = "notebook") -> None:
    """Check a solution notebook against nbgrader's cell metadata schema v3 and our markers."""
    seen = set()
    for index, cell in enumerate(nb.cells):
        meta = nbgrader_meta(cell)
        where = f"{name}, cell {index}"
        src = cell.source
        has_solution = any(line.strip() == BEGIN_SOLUTION for line in src.split("\n"))
        has_hidden = BEGIN_HIDDEN in src
        if not meta:
            if has_solution:
                raise ClassroomError(f"{where}: a solution region in a cell that is not a solution cell")
            if has_hidden:
                raise ClassroomError(f"{where}: hidden tests in a cell that is not a graded test cell")
            continue
        if meta.get("schema_version") != 3:
            raise ClassroomError(f"{where}: nbgrader schema_version must be 3; got {meta.get('schema_version')!r}")
        for key in ("grade", "locked", "solution"):
            if not isinstance(meta.get(key), bool):
                raise ClassroomError(f"{where}: nbgrader metadata needs a true/false '{key}'")
        gid = meta.get("grade_id")
        if not isinstance(gid, str) or not GRADE_ID.match(gid):
            raise ClassroomError(f"{where}: grade_id must be letters, digits, '_' or '-'; got {gid!r}")
        if gid in seen:
            raise ClassroomError(f"{where}: duplicate grade_id {gid!r}")
        seen.add(gid)
        if meta["grade"]:
            points = meta.get("points")
            if isinstance(points, bool) or not isinstance(points, (int, float)) or points < 0:
                raise ClassroomError(f"{where} ({gid}): a graded cell needs points >= 0; got {points!r}")
        if cell.cell_type == "markdown" and meta["grade"] != meta["solution"]:
            raise ClassroomError(f"{where} ({gid}): a graded markdown cell must be both grade and solution")
        if has_solution and not meta["solution"]:
            raise ClassroomError(f"{where} ({gid}): a solution region in a cell that is not a solution cell")
        if has_hidden and not meta["grade"]:
            raise ClassroomError(f"{where} ({gid}): hidden tests in a cell that is not a graded cell")
        _replace_solution_regions(cell.source, cell.cell_type, where)   # balanced markers
        _remove_hidden_tests(cell.source, where)


# ------------------------------------------------------------------------------------------
# The student version


def _cut_regions(source: str, begin: str, end: str, where: str, stub=None, exact=True):
    """Cut every begin..end region (markers included) from a cell's source; where `stub` lines
    are given, put them in its place, indented like the begin line. Returns (source, found).
    `exact`: a marker must be the whole (stripped) line, else it may appear anywhere in it."""
    def is_marker(line, marker):
        return line.strip() == marker if exact else marker in line

    out, inside, found = [], False, False
    for line in source.split("\n"):
        if is_marker(line, begin):
            if inside:
                raise ClassroomError(f"{where}: nested {begin}")
            inside = found = True
            if stub is not None:
                indent = line[:line.find(begin)]
                out.extend(indent + s for s in stub)
        elif is_marker(line, end):
            if not inside:
                raise ClassroomError(f"{where}: {end} without {begin}")
            inside = False
        elif not inside:
            out.append(line)
    if inside:
        raise ClassroomError(f"{where}: {begin} without {end}")
    return "\n".join(out), found


def _replace_solution_regions(source: str, cell_type: str, where: str = "cell") -> tuple[str, bool]:
    """Replace each solution region by the stub, indented like its BEGIN line."""
    stub = (CODE_STUB if cell_type == "code" else TEXT_STUB).split("\n")
    return _cut_regions(source, BEGIN_SOLUTION, END_SOLUTION, where, stub=stub)


def _remove_hidden_tests(source: str, where: str = "cell") -> tuple[str, bool]:
    """Remove each hidden-test region, markers included."""
    return _cut_regions(source, BEGIN_HIDDEN, END_HIDDEN, where, exact=False)


def student_version(nb, name: str = "notebook"):
    """The exercise notebook for one solution notebook (a new object; `nb` is not changed)."""
    validate_solution(nb, name)
    nb = copy.deepcopy(nb)
    nb.metadata.pop("celltoolbar", None)
    # the Python version that last executed the solutions is no business of the student
    # version: dropping it keeps exercises/ unchanged when solutions are re-run elsewhere
    nb.metadata.get("language_info", {}).pop("version", None)
    for index, cell in enumerate(nb.cells):
        where = f"{name}, cell {index}"
        source, replaced = _replace_solution_regions(cell.source, cell.cell_type, where)
        if is_solution(cell) and not replaced:
            source = CODE_STUB if cell.cell_type == "code" else TEXT_STUB
        source, _ = _remove_hidden_tests(source, where)
        cell.source = source
        if cell.cell_type == "code":
            cell.outputs = []
            cell.execution_count = None
            cell.metadata.pop("collapsed", None)
            cell.metadata.pop("scrolled", None)
        # lock as nbgrader's LockCells does: answers can't be deleted; tests and read-only
        # cells can be neither deleted nor edited
        if is_solution(cell):
            cell.metadata["deletable"] = False
        elif is_grade(cell) or is_locked(cell):
            cell.metadata["deletable"] = False
            cell.metadata["editable"] = False
    return nb


def generate(solutions: Path = DEFAULT_SOLUTIONS, exercises: Path = DEFAULT_EXERCISES,
             check: bool = False) -> list[Path]:
    """Write exercises/NN_name.ipynb for every solutions/NN_name.ipynb; return the changed files.

    With check=True nothing is written: the returned list names the files that are out of date.
    """
    solutions, exercises = Path(solutions), Path(exercises)
    sources = sorted(solutions.glob("*.ipynb"))
    if not sources:
        raise ClassroomError(f"no solution notebooks in {solutions}")
    changed = []
    for src in sources:
        nb = nbformat.read(src, as_version=4)
        text = nbformat.writes(student_version(nb, src.name))
        if not text.endswith("\n"):
            text += "\n"
        dest = exercises / src.name
        if dest.exists() and dest.read_text(encoding="utf-8") == text:
            continue
        changed.append(dest)
        if not check:
            exercises.mkdir(parents=True, exist_ok=True)
            dest.write_text(text, encoding="utf-8")
    stale = sorted(p.name for p in exercises.glob("*.ipynb") if not (solutions / p.name).exists())
    if stale:
        print(f"note: {exercises} has notebooks without a solution: {', '.join(stale)}", file=sys.stderr)
    return changed


# ------------------------------------------------------------------------------------------
# Grading


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


def read_csv(path: Path) -> list[Row]:
    with open(path, newline="", encoding="utf-8") as fh:
        return [Row(r["file"], r["exercise"], None if r["points"] == "" else float(r["points"]),
                    float(r["max_points"]), r["message"]) for r in csv.DictReader(fh)]


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


# ------------------------------------------------------------------------------------------
# Command line


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m lessons_lib.classroom", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    gen = sub.add_parser("generate", help="write exercises/ from solutions/")
    gen.add_argument("--solutions", type=Path, default=DEFAULT_SOLUTIONS)
    gen.add_argument("--exercises", type=Path, default=DEFAULT_EXERCISES)
    gen.add_argument("--check", action="store_true", help="write nothing; exit 1 if exercises/ is out of date")
    gr = sub.add_parser("grade", help="grade submitted notebooks into a CSV file")
    gr.add_argument("files", nargs="+", type=Path, metavar="FILE")
    gr.add_argument("--out", type=Path, required=True, help="the CSV file to write")
    gr.add_argument("--timeout", type=float, default=120.0, help="seconds per notebook (default 120)")
    gr.add_argument("--solutions", type=Path, default=DEFAULT_SOLUTIONS)
    args = parser.parse_args(argv)

    try:
        if args.command == "generate":
            changed = generate(args.solutions, args.exercises, check=args.check)
            if args.check:
                for p in changed:
                    print(f"out of date: {p}")
                return 1 if changed else 0
            print(f"{len(changed)} exercise notebook(s) written" + (": " + ", ".join(p.name for p in changed) if changed else ""))
            return 0
        if args.timeout <= 0:
            parser.error(f"--timeout must be > 0; got {args.timeout}")
        out = args.out.resolve()
        if any(out == f.resolve() for f in args.files):
            parser.error("--out names one of the submissions; grading never writes to a submission")
        rows = grade(args.files, args.solutions, args.timeout)
        write_csv(rows, args.out)
        for line in summary(rows):
            print(line)
        print(f"{len(rows)} rows written to {args.out}")
        return 0
    except ClassroomError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
