"""The trusted side's view of solutions/: each lesson's exercises, setup cells and graded tests.

Also what grading does to a submission before it runs: restoring the locked cells from
solutions/, the order in which its cells are sent, and the copy of its folder it may read.
"""
from __future__ import annotations

import ast
import contextlib
import copy
import io
import os
import re
import shutil
import threading
import types
from dataclasses import dataclass, field
from pathlib import Path

import nbformat
import numpy as np

from . import grading_build
from .exercises import (
    BEGIN_HIDDEN,
    END_HIDDEN,
    ClassroomError,
    _cut_regions,
    grade_id,
    is_grade,
    is_locked,
    is_solution,
    nbgrader_meta,
    validate_solution,
)


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
    visible: str = ""       # the graded cell's code without its hidden tests (trusted side only)
    hidden: str = ""        # its hidden tests (trusted side only)
    names: tuple = ()       # answer names fetched from the submission for this exercise


@dataclass
class Lesson:
    path: Path
    nb: object
    exercises: list
    setup_sources: list = field(default_factory=list)
    answer_imports: list = field(default_factory=list)
    binds: dict = field(default_factory=dict)     # answer grade_id -> names its solution binds
    _setup_ns: dict | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def name(self) -> str:
        return self.path.name

    @property
    def ids(self) -> set:
        return {grade_id(c) for c in self.nb.cells if grade_id(c)}

    def setup_namespace(self) -> dict:
        """The lesson's setup cells run here, from solutions/ (so X, w_star... are trusted)."""
        with self._lock:
            if self._setup_ns is None:
                ns = {"__name__": "__grading__"}
                with contextlib.redirect_stdout(io.StringIO()):
                    for source in self.setup_sources:
                        exec(compile(source, f"<{self.name} setup>", "exec"), ns)
                _freeze(ns)
                self._setup_ns = ns
            return self._setup_ns


def _freeze(ns: dict) -> None:
    """Make the setup's arrays read-only: every submission's tests share them, so no function of a
    student (whose in-place changes are copied back to its inputs) can change them for the next."""
    for value in list(ns.values()):
        if isinstance(value, (types.ModuleType, type)) or callable(value):
            continue
        for item in [value, *(getattr(value, "__dict__", {}) or {}).values()]:
            if isinstance(item, np.ndarray):
                item.flags.writeable = False


def _hidden_part(source: str) -> str:
    out, inside = [], False
    for line in source.split("\n"):
        if BEGIN_HIDDEN in line:
            inside = True
        elif END_HIDDEN in line:
            inside = False
        elif inside:
            out.append(line)
    return "\n".join(out)


def _bound_names(source: str) -> tuple[list, list]:
    """(names bound at top level, import statements) of a cell's code."""
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return [], []
    names, imports = [], []

    def targets(node):
        if isinstance(node, ast.Name):
            names.append(node.id)
        elif isinstance(node, (ast.Tuple, ast.List)):
            for elt in node.elts:
                targets(elt)
        elif isinstance(node, ast.Starred):
            targets(node.value)

    for node in tree.body:
        if isinstance(node, ast.Assign):
            for t in node.targets:
                targets(t)
        elif isinstance(node, (ast.AugAssign, ast.AnnAssign)):
            targets(node.target)
        elif isinstance(node, (ast.For, ast.AsyncFor)):
            targets(node.target)
        elif isinstance(node, (ast.With, ast.AsyncWith)):
            for item in node.items:
                if item.optional_vars is not None:
                    targets(item.optional_vars)
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.append(node.name)
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            imports.append(ast.unparse(node))
    return names, imports


def _is_check_cell(cell) -> bool:
    return is_locked(cell) and not is_grade(cell) and str(grade_id(cell)).endswith("_check")


def load_lessons(solutions: Path) -> dict[str, Lesson]:
    """Every solution notebook by file name, with its graded exercises in order."""
    lessons, owner = {}, {}
    if not Path(solutions).is_dir():
        raise ClassroomError(f"no solutions folder at {Path(solutions).resolve()}: run from the course "
                             "folder or pass --solutions DIR")
    for path in sorted(Path(solutions).glob("*.ipynb")):
        nb = nbformat.read(path, as_version=4)
        validate_solution(nb, path.name)
        exercises, answers, setup, imports, bound, binds = [], [], [], [], [], {}
        for cell in nb.cells:
            if is_grade(cell) and is_solution(cell):
                exercises.append(Exercise(grade_id(cell), float(nbgrader_meta(cell)["points"]), True, [grade_id(cell)]))
                answers = []
            elif is_grade(cell):
                visible, _ = _cut_regions(cell.source, BEGIN_HIDDEN, END_HIDDEN, "", exact=False)
                exercises.append(Exercise(grade_id(cell), float(nbgrader_meta(cell)["points"]), False, answers,
                                          visible=visible, hidden=_hidden_part(cell.source), names=tuple(bound)))
                answers = []
            elif is_solution(cell):
                answers.append(grade_id(cell))
                if cell.cell_type == "code":
                    names, imps = _bound_names(cell.source)
                    bound.extend(n for n in names if n != "_" and n not in bound)
                    imports.extend(imps)
                    binds[grade_id(cell)] = set(names)
            elif is_locked(cell) and cell.cell_type == "code" and not _is_check_cell(cell):
                setup.append(cell.source)
        lesson = Lesson(path, nb, exercises, setup, imports, binds)
        for gid in lesson.ids:
            if gid in owner:
                raise ClassroomError(f"grade_id {gid!r} appears in both {owner[gid]} and {path.name}; "
                                     "ids must be unique across lessons")
            owner[gid] = path.name
        grading_build.pieces_for(path.name)     # every lesson says what its grading build leaves out
        lessons[path.name] = lesson
    if not lessons:
        raise ClassroomError(f"no solution notebooks in {solutions}")
    return lessons


def lesson_for_name(filename: str, lessons: dict[str, Lesson]) -> Lesson | None:
    if filename in lessons:
        return lessons[filename]
    m = re.match(r"(\d\d)[_\-\s]", filename)
    if m:
        found = [lesson for name, lesson in lessons.items() if name.startswith(m.group(1) + "_")]
        if len(found) == 1:
            return found[0]
    return None


def lesson_for_ids(ids: set, lessons: dict[str, Lesson]) -> tuple[Lesson | None, int]:
    best, overlap = None, 0
    for lesson in lessons.values():
        n = len(ids & lesson.ids)
        if n > overlap:
            best, overlap = lesson, n
    return best, overlap


def fmt_points(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else f"{x:g}"


def zero_rows(file: str, lesson: Lesson, message: str) -> list[Row]:
    return [Row(file, ex.grade_id, 0.0, ex.points, message) for ex in lesson.exercises]


def restore_locked_cells(student, solution) -> tuple[object, set]:
    """The submission with every locked cell taken from the solution; returns (nb, present ids).

    Edited locked cells get the solution's source back; deleted ones are put back after the
    nearest cell before them that is still there. (Graded cells are restored too, but their
    code never goes to the submission's process: see plan_cells.)
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


def plan_cells(nb, lesson: Lesson) -> list[tuple]:
    """The run: ("run", source, grade_id) for each code cell to send, ("grade", Exercise) where
    each exercise is tested. An exercise is tested at its graded cell if one comes after its last
    answer cell (copies placed above the answer are ignored), else right after that answer cell."""
    steps, last_answer = [], {}
    for i, cell in enumerate(nb.cells):
        gid = grade_id(cell)
        if gid:
            last_answer[gid] = i
    tested = set()
    by_id = {ex.grade_id: ex for ex in lesson.exercises if not ex.manual}
    after_answer: dict[int, list] = {}
    for ex in by_id.values():
        ends = [last_answer[a] for a in ex.answer_ids if a in last_answer]
        if ends:
            after_answer.setdefault(max(ends), []).append(ex)
    for i, cell in enumerate(nb.cells):
        gid = grade_id(cell)
        ex = by_id.get(gid)
        if ex is not None and is_grade(cell):
            answer_end = max([last_answer.get(a, -1) for a in ex.answer_ids] or [-1])
            if ex.grade_id not in tested and i > answer_end:
                steps.append(("grade", ex))
                tested.add(ex.grade_id)
        elif cell.cell_type == "code" and not _is_check_cell(cell) and not is_grade(cell):
            steps.append(("run", cell.source, gid))
        for waiting in after_answer.get(i, []):
            later = [j for j, c in enumerate(nb.cells) if j > i and grade_id(c) == waiting.grade_id and is_grade(c)]
            if not later and waiting.grade_id not in tested:
                steps.append(("grade", waiting))
                tested.add(waiting.grade_id)
    return steps


_ANSI = re.compile(r"\x1b\[[0-9;]*m")


def one_line(text: str, limit: int = 300) -> str:
    text = " ".join(_ANSI.sub("", str(text)).split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


COPY_BUDGET = 200 * 1024 * 1024   # bytes of a submission's folder copied next to it at most


def copy_folder(src: Path, dest: Path, keep: Path, budget: int = COPY_BUDGET) -> None:
    """Copy the submission's folder to dest: its files and subfolders, without other notebooks,
    checkpoints, hidden folders or symlinks, and at most `budget` bytes."""
    dest.mkdir(parents=True)
    shutil.copy2(keep, dest / keep.name)
    used = keep.stat().st_size
    for folder, dirs, files in os.walk(src):
        dirs[:] = sorted(d for d in dirs if not d.startswith(".") and d != "__pycache__"
                         and not (Path(folder) / d).is_symlink())
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
