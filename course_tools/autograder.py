"""The autograder: trusted tests here, each submission's code in its own sandbox, data between them.

The trusted side (this process) holds solutions/, and with it every expected value, hidden
input and comparison. For each submission it

1. restores the locked setup cells from solutions/ (edited or deleted ones come back) and
   leaves out every check and graded test cell: no test code goes to the submission;
2. starts a sandbox (course_tools.sandbox) running course_tools/sandbox_runner.py, with the
   lesson's grading build of lessons_lib (course_tools.grading_build: the pieces the exercises
   ask for are cut out, the learner-facing checks are stubs);
3. sends the cells one at a time, in the submission's order; at each exercise's graded cell it
   runs that cell's code from solutions/ (the check with strict=True, then the hidden tests)
   *here*, in a namespace made of the lesson's setup (executed here, from solutions/) and the
   submission's answers, fetched as data; the submission's functions are RemoteFunctions:
   calling one sends the inputs and receives the outputs;
4. decides, and writes rows whose messages carry no hidden input or expected value.

A time limit per notebook (wall clock), an output cap and rlimits bound each submission; a
submission that stops answering gets 0 for the exercises still to grade, with the reason.
"""
from __future__ import annotations

import ast
import contextlib
import copy
import csv
import io
import os
import re
import shutil
import tempfile
import threading
import time
import types
from dataclasses import dataclass, field
from pathlib import Path

import nbformat
import numpy as np

from . import grading_build
from .channel import ChannelError, RemoteFunction, SandboxGone, decode, encode, remote_exception, write_back
from .exercises import (BEGIN_HIDDEN, DEFAULT_SOLUTIONS, END_HIDDEN, TEXT_STUB, ClassroomError, _cut_regions,
                        grade_id, is_grade, is_locked, is_solution, nbgrader_meta, validate_solution)
from .sandbox import Limits, Sandbox, SandboxUnavailable, allow_new, kill_all

# ------------------------------------------------------------------------------------------
# Lessons: the trusted side's view of solutions/


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
    nearest cell before them that is still there. (Graded cells are restored too, but their
    code never goes to the submission's process: see _plan.)
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


def _plan(nb, lesson: Lesson) -> list[tuple]:
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


def _one_line(text: str, limit: int = 300) -> str:
    text = " ".join(_ANSI.sub("", str(text)).split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


COPY_BUDGET = 200 * 1024 * 1024   # bytes of a submission's folder copied next to it at most


def _copy_folder(src: Path, dest: Path, keep: Path, budget: int = COPY_BUDGET) -> None:
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


# ------------------------------------------------------------------------------------------
# The trusted test of one exercise


class _Trusted:
    """Runs one exercise's graded cell here against the submission's answers."""

    def __init__(self, sandbox: Sandbox, lesson: Lesson):
        self.sandbox, self.lesson = sandbox, lesson

    def rpc(self, name, args, kwargs):
        try:
            sent_args = [encode(a) for a in args]
            sent_kwargs = {str(k): encode(v) for k, v in kwargs.items()}
        except TypeError as exc:
            raise AssertionError(f"the grader cannot send this input: {exc}") from None
        reply = self.sandbox.request("call", name=name, args=sent_args, kwargs=sent_kwargs)
        if not reply.get("ok"):
            exc = remote_exception(reply.get("ename", "Error"), reply.get("evalue", ""))
            exc.from_submission = name
            raise exc
        try:
            value = decode(reply.get("value"), self.rpc, f"the value returned by {name}")
            after = reply.get("args_after") or []
            for local, remote in zip(args, after):
                write_back(local, decode(remote))
        except ChannelError as exc:
            raise SandboxGone(f"the notebook broke the grader's channel ({exc})") from None
        return value

    def namespace(self, ex: Exercise) -> dict:
        ns = dict(self.lesson.setup_namespace())
        for statement in self.lesson.answer_imports:
            with contextlib.suppress(Exception):
                exec(statement, ns)
        imported = set(ns)
        wanted = [n for n in ex.names if n not in imported]
        reply = self.sandbox.request("get", names=wanted)
        if not reply.get("ok"):
            raise SandboxGone("the notebook broke the grader's channel (its answers could not be read)")
        values = reply.get("values")
        if not isinstance(values, dict):
            raise SandboxGone("the notebook broke the grader's channel (its answers could not be read)")
        for name in wanted:
            if name in values:
                try:
                    ns[name] = decode(values[name], self.rpc, name)
                except ChannelError as exc:
                    raise SandboxGone(f"the notebook broke the grader's channel ({exc})") from None
        ns["checks"] = _checks_for(ns)
        return ns

    def test(self, ex: Exercise) -> tuple[bool, str]:
        """(passed, message); SandboxGone passes through."""
        ns = self.namespace(ex)
        try:
            with np.errstate(all="ignore"):
                exec(compile(ex.visible, f"<{ex.grade_id}>", "exec"), ns)
        except AssertionError as exc:
            return False, _one_line(str(exc))
        except Exception as exc:
            return False, f"{type(exc).__name__}: {_one_line(exc)}"
        try:
            with np.errstate(all="ignore"):
                exec(compile(ex.hidden, f"<{ex.grade_id} hidden>", "exec"), ns)
        except Exception as exc:
            who = getattr(exc, "from_submission", None)
            detail = (f"calling `{who}` raised {type(exc).__name__}" if who else type(exc).__name__)
            return False, (f"the check passes, but a hidden test failed ({detail}); the hidden tests try "
                           "other inputs and cases: is your answer general?")
        return True, "passed"


def _checks_for(ns: dict):
    """`checks` inside a trusted graded cell: the real checks, reading the namespace given."""
    import lessons_lib.checks as real

    adapter = types.SimpleNamespace(library_blocked=lambda *names: contextlib.nullcontext())
    for name in real.__all__:
        fn = getattr(real, name)
        if callable(fn) and hasattr(fn, "__wrapped__") and name not in vars(adapter):
            setattr(adapter, name, lambda *a, strict=False, quiet=False, _fn=fn: _fn(ns, strict=strict, quiet=True))
    return adapter


# ------------------------------------------------------------------------------------------
# One submission


@dataclass
class GradeOptions:
    limits: Limits = field(default_factory=Limits)
    bwrap: str | None = None          # None: run without a sandbox (--no-sandbox)


@dataclass
class Graded:
    """The rows of one submission; ungraded: it could not be graded at all (missing, unreadable,
    not a lesson, the sandbox failed), which the command line reports in its exit status."""
    file: str
    rows: list
    ungraded: bool = False
    seconds: float = 0.0


class Builds:
    """The grading builds of the library, one per lesson, made on first use in a temporary folder."""

    def __init__(self, root: Path):
        self.root = Path(root)
        self._made: dict[str, Path] = {}
        self._lock = threading.Lock()

    def for_lesson(self, lesson: Lesson) -> Path:
        with self._lock:
            if lesson.name not in self._made:
                dest = self.root / lesson.path.stem
                grading_build.build(dest, grading_build.pieces_for(lesson.name))
                self._made[lesson.name] = dest
            return self._made[lesson.name]


def _read_submission(path: Path):
    student = nbformat.read(path, as_version=4)
    if not isinstance(student.get("cells"), list):
        raise ValueError("it has no list of cells")
    for cell in student.cells:
        if cell.get("cell_type") not in ("code", "markdown", "raw") or not isinstance(cell.get("source"), str):
            raise ValueError("it has a malformed cell")
    return student


def grade_file(path, lessons: dict[str, Lesson], options: GradeOptions, builds: Builds) -> Graded:
    """Grade one submitted notebook; never raises for a bad submission, never writes to it."""
    t0 = time.monotonic()
    path = Path(path)
    file = str(path)
    by_name = _lesson_for_name(path.name, lessons)

    def ungraded(reason):
        rows = _rows_all_zero(file, by_name, reason) if by_name else [Row(file, "(notebook)", 0.0, 0.0, reason)]
        return Graded(file, rows, ungraded=True, seconds=time.monotonic() - t0)

    if path.is_symlink():      # it could point anywhere the grader can read (solutions/ included)
        return ungraded("a symbolic link, not a notebook: submit the notebook file itself")
    if not path.is_file():
        return ungraded("file not found" + (" (a folder: give its notebooks)" if path.is_dir() else ""))
    try:
        student = _read_submission(path)
    except Exception as exc:
        return ungraded(f"not a readable notebook ({type(exc).__name__}: {_one_line(exc, 150)})")

    ids = {grade_id(c) for c in student.cells if grade_id(c)}
    by_ids, _ = _lesson_for_ids(ids, lessons)
    lesson = by_name or by_ids
    if lesson is None:
        return Graded(file, [Row(file, "(notebook)", 0.0, 0.0, "cannot tell which lesson this is: its name and "
                                 "its cells match no notebook in solutions/")], ungraded=True)
    if by_ids is not None and by_ids is not lesson and not (ids & lesson.ids):
        return Graded(file, _rows_all_zero(file, lesson, f"this is the notebook of another lesson ({by_ids.name}), "
                                                         f"not {lesson.name}"), seconds=time.monotonic() - t0)

    restored, present = _restore_locked_cells(student, lesson.nb)
    results: dict[str, tuple] = {}        # grade_id -> (passed, message)
    answer_status: dict[str, dict] = {}   # answer grade_id -> the last run's reply
    abort = None
    scratch = Path(tempfile.mkdtemp(prefix="lessons-grade-"))
    try:
        _copy_folder(path.parent, scratch / "submission", keep=path)
        build = builds.for_lesson(lesson)
        with Sandbox(build, scratch / "submission", options.limits, options.bwrap) as box:
            trusted = _Trusted(box, lesson)
            try:
                for step in _plan(restored, lesson):
                    if step[0] == "run":
                        reply = box.request("run", source=step[1])
                        if step[2]:
                            answer_status[step[2]] = reply
                    else:
                        ex = step[1]
                        if any(a not in present for a in ex.answer_ids):
                            continue
                        results[ex.grade_id] = trusted.test(ex)
            except SandboxGone as exc:
                abort = str(exc)
    except SandboxUnavailable as exc:
        return ungraded(f"could not be graded: {exc}")
    except SandboxGone as exc:      # it stopped answering before its first cell
        abort = str(exc)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)

    rows = []
    for ex in lesson.exercises:
        missing = [a for a in ex.answer_ids if a not in present]
        if missing:
            rows.append(Row(file, ex.grade_id, 0.0, ex.points,
                            f"answer cell {missing[0]!r} is missing from the submission (deleted?); "
                            "copy it back from exercises/ and put the answer in it"))
            continue
        if ex.manual:
            cells = [c for c in restored.cells if grade_id(c) == ex.grade_id]
            text = cells[-1].source.strip() if cells else ""
            if not text or text == TEXT_STUB:
                rows.append(Row(file, ex.grade_id, 0.0, ex.points, "not answered"))
            else:
                rows.append(Row(file, ex.grade_id, None, ex.points,
                                f"graded by hand: a written answer of {len(text.split())} words"))
            continue
        if ex.grade_id not in results:
            rows.append(Row(file, ex.grade_id, 0.0, ex.points, abort or "the test did not run"))
            continue
        passed, message = results[ex.grade_id]
        if passed:
            rows.append(Row(file, ex.grade_id, ex.points, ex.points, "passed"))
            continue
        errors = [(a, answer_status[a]) for a in ex.answer_ids if a in answer_status and not answer_status[a].get("ok")]
        not_attempted = message.startswith("Not attempted yet")
        needs = _needs_earlier(errors, lesson, answer_status, ex)
        if any(r.get("ename") == "NotImplementedError" for _, r in errors) or \
                not_attempted and not errors and "is not defined" not in message or \
                needs and needs[2].get("ename") == "NotImplementedError":
            rows.append(Row(file, ex.grade_id, 0.0, ex.points, "not attempted yet" + (
                f" (it uses `{needs[0]}` from an earlier exercise that is not attempted yet)" if needs else "")))
        elif needs:
            name, gid, r = needs
            rows.append(Row(file, ex.grade_id, 0.0, ex.points,
                            f"failed: it uses `{name}` from answer cell {gid!r}, which raised "
                            f"{_one_line(r.get('ename'), 80)}: {_one_line(r.get('evalue', ''), 200)}"))
        elif errors:
            gid, r = errors[0]
            rows.append(Row(file, ex.grade_id, 0.0, ex.points,
                            f"failed: your answer cell {gid!r} raised {_one_line(r.get('ename'), 80)}: "
                            f"{_one_line(r.get('evalue', ''), 200)}"))
        elif not_attempted:
            m = re.search(r"(`\w+` is not defined)", message)
            rows.append(Row(file, ex.grade_id, 0.0, ex.points,
                            f"failed: {m.group(1) if m else _one_line(message, 200)} when this exercise is graded, "
                            "although its answer cell ran without error: is the answer assigned in another cell, "
                            "or below the graded test?"))
        else:
            rows.append(Row(file, ex.grade_id, 0.0, ex.points, f"failed: {message}"))
    return Graded(file, rows, seconds=time.monotonic() - t0)


def _needs_earlier(errors, lesson: Lesson, answer_status: dict, ex: Exercise):
    """(name, answer id, its reply) when this exercise's answer failed on a NameError for a name that
    another exercise's answer cell defines and that cell itself failed; else None."""
    for _, reply in errors:
        m = re.match(r"name '(\w+)' is not defined", str(reply.get("evalue", "")))
        if reply.get("ename") != "NameError" or not m:
            continue
        for gid, names in lesson.binds.items():
            if gid not in ex.answer_ids and m.group(1) in names and gid in answer_status \
                    and not answer_status[gid].get("ok"):
                return m.group(1), gid, answer_status[gid]
    return None


# ------------------------------------------------------------------------------------------
# Many submissions


def grade(files, solutions: Path = DEFAULT_SOLUTIONS, options: GradeOptions | None = None, jobs: int = 1,
          on_graded=None, workdir: Path | None = None) -> list[Graded]:
    """Grade every file, up to `jobs` at once (each in its own sandbox); results in input order.

    on_graded(graded) is called (from this thread) as soon as each submission is done.
    """
    from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait

    options = options or GradeOptions()
    allow_new()
    lessons = load_lessons(Path(solutions))
    for lesson in lessons.values():
        lesson.setup_namespace()          # here, once, before any thread needs it
    files = list(files)
    results: dict[int, Graded] = {}
    with tempfile.TemporaryDirectory(prefix="lessons-builds-", dir=workdir) as tmp:
        builds = Builds(Path(tmp))
        pool = ThreadPoolExecutor(max_workers=max(1, jobs))
        pending: dict = {}
        try:
            pending = {pool.submit(grade_file, f, lessons, options, builds): i for i, f in enumerate(files)}
            while pending:
                done, _ = wait(list(pending), timeout=0.2, return_when=FIRST_COMPLETED)
                for fut in done:
                    i = pending.pop(fut)
                    results[i] = fut.result()
                    if on_graded:
                        on_graded(results[i])
        except BaseException:        # Ctrl-C: stop the queue and end the running sandboxes now
            for fut in pending:
                fut.cancel()
            kill_all()
            raise
        finally:
            pool.shutdown(wait=True, cancel_futures=True)
    return [results[i] for i in sorted(results)]


CSV_HEADER = ["file", "exercise", "points", "max_points", "message"]


def _csv_row(r: Row) -> list:
    return [r.file, r.exercise, "" if r.points is None else _fmt_points(r.points), _fmt_points(r.max_points), r.message]


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
    lines.append(f"Points: {_fmt_points(got)} of {_fmt_points(total)}"
                 + (f" ({_fmt_points(manual)} more to be graded by hand)" if manual else ""))
    lines.append("")
    for r in graded.rows:
        mark = "graded by hand" if r.points is None else f"{_fmt_points(r.points)}/{_fmt_points(r.max_points)}"
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
        extra = f" (+ {_fmt_points(manual)} to grade by hand)" if manual else ""
        lines.append(f"{f}: {_fmt_points(auto)}/{_fmt_points(total)}{extra}")
    return lines
