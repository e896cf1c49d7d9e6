"""Exercise notebooks from solutions: nbgrader's cell markers, and the student versions they give.

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
"""
from __future__ import annotations

import copy
import re
import sys
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

# relative to the folder the instructor runs the tools from (the course folder), never to
# where this package is installed (site-packages after a non-editable install)
DEFAULT_SOLUTIONS = Path("solutions")
DEFAULT_EXERCISES = Path("exercises")


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
        raise ClassroomError(f"no solution notebooks in {solutions.resolve()}: run from the course "
                             "folder or pass --solutions DIR")
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
