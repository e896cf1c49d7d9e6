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

import contextlib
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
from .channel import (
    ChannelError,
    SandboxGone,
    decode,
    encode,
    remote_exception,
    write_back,
)
from .exercises import (
    DEFAULT_SOLUTIONS,
    TEXT_STUB,
    grade_id,
)
from .lessons import (
    Exercise,
    Lesson,
    Row,
    copy_folder,
    lesson_for_ids,
    lesson_for_name,
    load_lessons,
    one_line,
    plan_cells,
    restore_locked_cells,
    zero_rows,
)
from .sandbox import Limits, Sandbox, SandboxUnavailable, allow_new, kill_all

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
            return False, one_line(str(exc))
        except Exception as exc:
            return False, f"{type(exc).__name__}: {one_line(exc)}"
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
    by_name = lesson_for_name(path.name, lessons)

    def ungraded(reason):
        rows = zero_rows(file, by_name, reason) if by_name else [Row(file, "(notebook)", 0.0, 0.0, reason)]
        return Graded(file, rows, ungraded=True, seconds=time.monotonic() - t0)

    if path.is_symlink():      # it could point anywhere the grader can read (solutions/ included)
        return ungraded("a symbolic link, not a notebook: submit the notebook file itself")
    if not path.is_file():
        return ungraded("file not found" + (" (a folder: give its notebooks)" if path.is_dir() else ""))
    try:
        student = _read_submission(path)
    except Exception as exc:
        return ungraded(f"not a readable notebook ({type(exc).__name__}: {one_line(exc, 150)})")

    ids = {grade_id(c) for c in student.cells if grade_id(c)}
    by_ids, _ = lesson_for_ids(ids, lessons)
    lesson = by_name or by_ids
    if lesson is None:
        return Graded(file, [Row(file, "(notebook)", 0.0, 0.0, "cannot tell which lesson this is: its name and "
                                 "its cells match no notebook in solutions/")], ungraded=True)
    if by_ids is not None and by_ids is not lesson and not (ids & lesson.ids):
        return Graded(file, zero_rows(file, lesson, f"this is the notebook of another lesson ({by_ids.name}), "
                                                         f"not {lesson.name}"), seconds=time.monotonic() - t0)

    restored, present = restore_locked_cells(student, lesson.nb)
    results: dict[str, tuple] = {}        # grade_id -> (passed, message)
    answer_status: dict[str, dict] = {}   # answer grade_id -> the last run's reply
    abort = None
    scratch = Path(tempfile.mkdtemp(prefix="lessons-grade-"))
    try:
        copy_folder(path.parent, scratch / "submission", keep=path)
        build = builds.for_lesson(lesson)
        with Sandbox(build, scratch / "submission", options.limits, options.bwrap) as box:
            trusted = _Trusted(box, lesson)
            try:
                for step in plan_cells(restored, lesson):
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
                            f"{one_line(r.get('ename'), 80)}: {one_line(r.get('evalue', ''), 200)}"))
        elif errors:
            gid, r = errors[0]
            rows.append(Row(file, ex.grade_id, 0.0, ex.points,
                            f"failed: your answer cell {gid!r} raised {one_line(r.get('ename'), 80)}: "
                            f"{one_line(r.get('evalue', ''), 200)}"))
        elif not_attempted:
            m = re.search(r"(`\w+` is not defined)", message)
            rows.append(Row(file, ex.grade_id, 0.0, ex.points,
                            f"failed: {m.group(1) if m else one_line(message, 200)} when this exercise is graded, "
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
