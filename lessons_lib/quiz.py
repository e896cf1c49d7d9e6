"""Scored quizzes for the lessons, and the learner's progress file.

Questions are data: ``lessons_lib/quizzes/NN.json`` holds one lesson's quiz:

    {"lesson": "02", "title": "SGD and the zigzag",
     "questions": [
       {"id": "stability-limit", "kind": "choice", "prompt": "...", "choices": ["...", "..."],
        "answer": 1, "explanation": "one line: why"},
       {"id": "multiplier", "kind": "numeric", "prompt": "...", "answer": -1.1, "tolerance": 0.01,
        "explanation": "one line: why"}]}

``answer`` is the 0-based index of the right choice, or the number (``tolerance`` is absolute).

In a notebook:   show_quiz("02")                      displays the quiz widget
Without widgets: check_answers("02", {"stability-limit": 1, "multiplier": -1.1})

A score of 75% or more marks the lesson complete. Progress is kept in a JSON file in the
user's data directory (``progress_path()``; the environment variable LESSONS_PROGRESS_FILE
overrides it). It is written atomically (a temporary file, then os.replace); a file that
cannot be read is renamed aside with a warning and progress starts again.
"""
from __future__ import annotations

import html
import json
import math
import os
import sys
import tempfile
import time
import warnings
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path

import ipywidgets as widgets

__all__ = [
    "show_quiz", "quiz_widget", "QuizWidget", "check_answers", "grade", "load_quiz", "validate_quiz",
    "available_quizzes", "Quiz", "Question", "QuizResult", "Feedback", "QuizFormatError",
    "progress_path", "load_progress", "record_result", "reset_progress", "progress_table",
    "ProgressTable", "ProgressWarning", "PASS_MARK", "PROGRESS_ENV",
]

QUIZ_DIR = Path(__file__).resolve().parent / "quizzes"
PASS_MARK = Fraction(3, 4)          # 75% or more completes a lesson
PROGRESS_ENV = "LESSONS_PROGRESS_FILE"
APP_NAME = "optimizer-course"
PROGRESS_FORMAT = 1
LESSONS = {
    "01": "One uneven surface",
    "02": "SGD and the zigzag",
    "03": "Momentum",
    "04": "Adam's moments",
    "05": "AdamW's decoupled decay",
    "06": "Warmup and cosine schedules",
    "07": "Gradient clipping",
    "08": "fp16 and loss scaling",
    "09": "Capstone",
    "10": "From the surface to a real model",
}
"""The lessons with a quiz, and a fallback title when a lesson's quiz file is missing."""


class QuizFormatError(ValueError):
    """A quiz file that does not follow the format (the message says where and what)."""


class ProgressWarning(UserWarning):
    """Progress could not be read or saved; the course carries on without it."""


# ----------------------------------------------------------------------------- data

@dataclass(frozen=True)
class Question:
    """One question: kind "choice" (answer = index into choices) or "numeric" (answer, tolerance)."""

    id: str
    kind: str
    prompt: str
    explanation: str
    answer: float | int
    choices: tuple = ()
    tolerance: float = 0.0

    def grade(self, response) -> "Feedback":
        """Judge one response: None/'' is unanswered; text that is not a number is invalid."""
        if response is None or (isinstance(response, str) and not response.strip()):
            return Feedback(self.id, "unanswered", "Not answered (counts as wrong).", self.explanation)
        if self.kind == "choice":
            index = _choice_index(self, response)
            if index is None:
                return Feedback(self.id, "invalid", f"{response!r} is not one of the choices.", self.explanation)
            ok = index == self.answer
        else:
            value = _number(response)
            if value is None:
                return Feedback(self.id, "invalid", f"{str(response).strip()!r} is not a number.", self.explanation)
            ok = abs(value - self.answer) <= self.tolerance + 1e-12 * max(1.0, abs(self.answer))
        if ok:
            return Feedback(self.id, "correct", "Correct.", self.explanation)
        return Feedback(self.id, "wrong", "Not quite.", self.explanation)


def _choice_index(q: Question, response):
    if isinstance(response, bool):
        return None
    if isinstance(response, int) or (hasattr(response, "__index__") and not isinstance(response, str)):
        i = int(response)
        return i if 0 <= i < len(q.choices) else None
    if isinstance(response, str):
        text = response.strip()
        for i, c in enumerate(q.choices):
            if c == text:
                return i
    return None


def _number(response):
    if isinstance(response, bool):
        return None
    try:
        value = float(str(response).strip().replace("\u2212", "-")) if isinstance(response, str) else float(response)
    except (TypeError, ValueError):
        return None
    return value if math.isfinite(value) else None


@dataclass(frozen=True)
class Quiz:
    """A lesson's quiz: lesson id "NN", title and questions (validated)."""

    lesson: str
    title: str
    questions: tuple
    source: str = "<data>"

    def question(self, key) -> Question:
        """A question by id or by 0-based position."""
        if isinstance(key, int) and not isinstance(key, bool):
            if 0 <= key < len(self.questions):
                return self.questions[key]
            raise KeyError(f"question index {key} out of range 0..{len(self.questions) - 1}")
        for q in self.questions:
            if q.id == key:
                return q
        raise KeyError(f"no question {key!r} in quiz {self.lesson}; ids: {[q.id for q in self.questions]}")


@dataclass(frozen=True)
class Feedback:
    """The verdict on one question: status is correct, wrong, invalid or unanswered."""

    id: str
    status: str
    message: str
    explanation: str

    @property
    def correct(self) -> bool:
        return self.status == "correct"

    def text(self) -> str:
        if self.status == "unanswered":
            return self.message
        return f"{self.message} {self.explanation}"


@dataclass(frozen=True)
class QuizResult:
    """The score of one attempt; complete when correct/total >= 75%."""

    lesson: str
    title: str
    correct: int
    total: int
    feedback: tuple = field(default_factory=tuple)

    @property
    def score(self) -> float:
        return self.correct / self.total

    @property
    def complete(self) -> bool:
        return Fraction(self.correct, self.total) >= PASS_MARK

    @property
    def percent(self) -> int:
        return int(Fraction(100 * self.correct, self.total) + Fraction(1, 2))  # rounded half up

    def summary(self) -> str:
        head = f"Score {self.correct}/{self.total} ({self.percent}%)"
        if self.complete:
            return f"{head}: lesson {self.lesson} complete."
        need = math.ceil(PASS_MARK * self.total)
        return f"{head}: {need} of {self.total} correct (75%) completes the lesson. Try again."

    def __str__(self):
        lines = [self.summary()]
        lines += [f"  {f.id}: {f.status}" for f in self.feedback]
        return "\n".join(lines)


# ----------------------------------------------------------------------------- loading + validation

def _lesson_id(lesson) -> str:
    if isinstance(lesson, bool):
        raise ValueError(f"lesson must be a lesson number such as '02'; got {lesson!r}")
    if isinstance(lesson, int) and 0 <= lesson <= 99:
        return f"{lesson:02d}"
    if isinstance(lesson, str) and lesson.strip().isdigit() and len(lesson.strip()) <= 2:
        return f"{int(lesson.strip()):02d}"
    raise ValueError(f"lesson must be a lesson number such as '02' or 2; got {lesson!r}")


def available_quizzes(quiz_dir=None) -> list[str]:
    """Lesson ids that have a quiz file, sorted."""
    d = Path(quiz_dir) if quiz_dir is not None else QUIZ_DIR
    if not d.is_dir():
        return []
    return sorted(p.stem for p in d.glob("[0-9][0-9].json"))


def load_quiz(lesson, quiz_dir=None) -> Quiz:
    """Read and validate a quiz: a lesson id ("02", 2) looked up in quiz_dir, or a path to a .json file."""
    if isinstance(lesson, Path) or (isinstance(lesson, str) and lesson.endswith(".json")):
        path = Path(lesson)
        expected = path.stem if path.stem.isdigit() and len(path.stem) == 2 else None
    else:
        expected = _lesson_id(lesson)
        path = (Path(quiz_dir) if quiz_dir is not None else QUIZ_DIR) / f"{expected}.json"
    if not path.is_file():
        have = available_quizzes(path.parent)
        raise FileNotFoundError(
            f"no quiz file {path} (quizzes found in {path.parent}: {', '.join(have) or 'none'})")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError as exc:
        raise QuizFormatError(f"{path}: not UTF-8 text ({exc})") from None
    except json.JSONDecodeError as exc:
        raise QuizFormatError(f"{path}: not valid JSON: {exc.msg} at line {exc.lineno}, column {exc.colno}") from None
    return validate_quiz(data, source=str(path), expected_lesson=expected)


_QUESTION_KEYS = {
    "choice": {"id", "kind", "prompt", "choices", "answer", "explanation"},
    "numeric": {"id", "kind", "prompt", "answer", "tolerance", "explanation"},
}


def validate_quiz(data, source: str = "<data>", expected_lesson: str | None = None) -> Quiz:
    """Check a quiz dict against the format and return a Quiz; QuizFormatError says what is wrong."""

    def fail(where, msg):
        raise QuizFormatError(f"{source}: {where}{msg}")

    if not isinstance(data, dict):
        fail("", f"the top level must be an object with lesson, title and questions; got {type(data).__name__}")
    extra = set(data) - {"lesson", "title", "questions"}
    if extra:
        fail("", f"unknown top-level key(s) {sorted(extra)}; allowed: lesson, title, questions")
    lesson = data.get("lesson")
    if not (isinstance(lesson, str) and len(lesson) == 2 and lesson.isdigit()):
        fail("", f"'lesson' must be a two-digit string such as \"02\"; got {lesson!r}")
    if expected_lesson is not None and lesson != expected_lesson:
        fail("", f"'lesson' is {lesson!r} but the file is named {expected_lesson}.json")
    title = data.get("title")
    if not (isinstance(title, str) and title.strip()):
        fail("", f"'title' must be a non-empty string; got {title!r}")
    questions = data.get("questions")
    if not (isinstance(questions, list) and questions):
        fail("", f"'questions' must be a non-empty list; got {questions!r}")

    out, seen = [], set()
    for i, q in enumerate(questions, start=1):
        where = f"question {i}: "
        if not isinstance(q, dict):
            fail(where, f"must be an object; got {type(q).__name__}")
        qid = q.get("id")
        if isinstance(qid, str) and qid.strip():
            where = f"question {i} ({qid!r}): "
        else:
            fail(where, f"'id' must be a non-empty string; got {qid!r}")
        if qid in seen:
            fail(where, "duplicate id (ids must be unique within a quiz)")
        seen.add(qid)
        kind = q.get("kind")
        if kind not in _QUESTION_KEYS:
            fail(where, f"'kind' must be \"choice\" or \"numeric\"; got {kind!r}")
        allowed = _QUESTION_KEYS[kind]
        missing = sorted(allowed - set(q))
        if missing:
            fail(where, f"missing key(s) {missing} for a {kind} question")
        unknown = sorted(set(q) - allowed)
        if unknown:
            fail(where, f"unknown key(s) {unknown} for a {kind} question; allowed: {sorted(allowed)}")
        for key in ("prompt", "explanation"):
            if not (isinstance(q[key], str) and q[key].strip()):
                fail(where, f"'{key}' must be a non-empty string; got {q[key]!r}")
        answer = q["answer"]
        if kind == "choice":
            choices = q["choices"]
            if not (isinstance(choices, list) and len(choices) >= 2
                    and all(isinstance(c, str) and c.strip() for c in choices)):
                fail(where, f"'choices' must be a list of at least 2 non-empty strings; got {choices!r}")
            if len(set(choices)) != len(choices):
                fail(where, "'choices' contains the same text twice")
            if isinstance(answer, bool) or not isinstance(answer, int) or not 0 <= answer < len(choices):
                fail(where, f"'answer' must be the 0-based index of the right choice (0..{len(choices) - 1}); "
                            f"got {answer!r}")
            out.append(Question(qid, kind, q["prompt"], q["explanation"], answer, tuple(choices)))
        else:
            if isinstance(answer, bool) or not isinstance(answer, (int, float)) or not math.isfinite(answer):
                fail(where, f"'answer' must be a finite number; got {answer!r}")
            tol = q["tolerance"]
            if isinstance(tol, bool) or not isinstance(tol, (int, float)) or not math.isfinite(tol) or tol < 0:
                fail(where, f"'tolerance' must be a finite number >= 0 (absolute); got {tol!r}")
            out.append(Question(qid, kind, q["prompt"], q["explanation"], float(answer), tolerance=float(tol)))
    return Quiz(lesson=lesson, title=title.strip(), questions=tuple(out), source=source)


# ----------------------------------------------------------------------------- grading

def grade(quiz: Quiz, responses: dict) -> QuizResult:
    """Score responses {question id or 0-based index: answer}; missing ones count as unanswered."""
    by_id = {}
    for key, value in (responses or {}).items():
        by_id[quiz.question(key).id] = value
    feedback = tuple(q.grade(by_id.get(q.id)) for q in quiz.questions)
    return QuizResult(quiz.lesson, quiz.title, sum(f.correct for f in feedback), len(feedback), feedback)


def check_answers(lesson, responses: dict, quiz_dir=None, record: bool = True, progress_file=None) -> QuizResult:
    """Grade responses without any widget and (by default) record the attempt in the progress file."""
    quiz = load_quiz(lesson, quiz_dir)
    result = grade(quiz, responses)
    if record:
        record_result(result, progress_file)
    return result


# ----------------------------------------------------------------------------- progress file

def _user_data_dir() -> Path:
    home = Path.home()
    if sys.platform.startswith("win"):
        base = os.environ.get("LOCALAPPDATA") or os.environ.get("APPDATA") or str(home / "AppData" / "Local")
        return Path(base) / APP_NAME
    if sys.platform == "darwin":
        return home / "Library" / "Application Support" / APP_NAME
    return Path(os.environ.get("XDG_DATA_HOME") or home / ".local" / "share") / APP_NAME


def progress_path(path=None) -> Path:
    """Where progress lives: `path` if given, else $LESSONS_PROGRESS_FILE, else the user data dir
    (~/.local/share/optimizer-course/progress.json on Linux, ~/Library/Application Support/...
    on macOS, %LOCALAPPDATA%\\optimizer-course\\ on Windows)."""
    if path is not None:
        return Path(path)
    env = os.environ.get(PROGRESS_ENV)
    if env:
        return Path(env).expanduser()
    return _user_data_dir() / "progress.json"


def _empty_progress() -> dict:
    return {"format": PROGRESS_FORMAT, "lessons": {}}


def _check_progress(data) -> str | None:
    """Why `data` is not a usable progress record, or None when it is."""
    if not isinstance(data, dict) or not isinstance(data.get("lessons"), dict):
        return "expected an object with a 'lessons' object"
    for lesson, entry in data["lessons"].items():
        if not isinstance(entry, dict):
            return f"lesson {lesson!r} is not an object"
        for key in ("attempts", "best_correct", "total"):
            if key in entry and (isinstance(entry[key], bool) or not isinstance(entry[key], int) or entry[key] < 0):
                return f"lesson {lesson!r}: {key} is not a count"
    return None


def _set_aside(path: Path, reason: str) -> None:
    stamp = time.strftime("%Y%m%d-%H%M%S")
    target = path.with_name(f"{path.name}.corrupt-{stamp}")
    n = 1
    while target.exists():
        target = path.with_name(f"{path.name}.corrupt-{stamp}-{n}")
        n += 1
    try:
        os.replace(path, target)
        moved = f"moved it to {target}"
    except OSError as exc:
        moved = f"could not move it aside ({exc})"
    warnings.warn(f"progress file {path} could not be read ({reason}); {moved}; progress starts again",
                  ProgressWarning, stacklevel=3)


def load_progress(path=None) -> dict:
    """The progress record {"format": 1, "lessons": {"02": {...}}}; never raises.

    A missing file is fresh progress; an unreadable one is renamed to
    progress.json.corrupt-<time> with a ProgressWarning.
    """
    p = progress_path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except FileNotFoundError:
        return _empty_progress()
    except (OSError, UnicodeDecodeError) as exc:
        if isinstance(exc, UnicodeDecodeError):
            _set_aside(p, "not UTF-8 text")
        else:
            warnings.warn(f"progress file {p} could not be read ({exc}); progress starts again",
                          ProgressWarning, stacklevel=2)
        return _empty_progress()
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        _set_aside(p, f"invalid JSON: {exc.msg} at line {exc.lineno}")
        return _empty_progress()
    problem = _check_progress(data)
    if problem:
        _set_aside(p, problem)
        return _empty_progress()
    return data


def _write_atomic(path: Path, data: dict) -> None:
    """Write JSON to a temporary file in the same folder, then os.replace it over `path`."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(data, f, indent=2, sort_keys=True)
            f.write("\n")
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


def record_result(result: QuizResult, path=None) -> dict:
    """Add one attempt to the progress file (best score kept; complete stays complete).

    Returns the updated record. A file that cannot be written gives a ProgressWarning, not an error.
    """
    p = progress_path(path)
    data = load_progress(p)
    entry = data["lessons"].get(result.lesson, {})
    best_correct = entry.get("best_correct", -1)
    if entry.get("total") != result.total:      # the quiz changed: its old best no longer compares
        best_correct = -1
    entry = {
        "title": result.title,
        "attempts": int(entry.get("attempts", 0)) + 1,
        "last_correct": result.correct,
        "best_correct": max(best_correct, result.correct),
        "total": result.total,
        "complete": bool(entry.get("complete", False)) or result.complete,
    }
    entry["best_score"] = round(entry["best_correct"] / result.total, 4)
    data["lessons"][result.lesson] = entry
    data["format"] = PROGRESS_FORMAT
    try:
        _write_atomic(p, data)
    except OSError as exc:
        warnings.warn(f"could not save progress to {p} ({exc}); this attempt is not recorded",
                      ProgressWarning, stacklevel=2)
    return data


def reset_progress(path=None) -> None:
    """Forget all progress (deletes the progress file if there is one)."""
    try:
        progress_path(path).unlink()
    except FileNotFoundError:
        pass


class ProgressTable:
    """Per-lesson status; prints as a plain-text table (``rows`` holds the data)."""

    def __init__(self, rows: list[dict]):
        self.rows = rows

    @property
    def complete(self) -> int:
        return sum(r["status"] == "complete" for r in self.rows)

    def __str__(self):
        head = ("lesson", "title", "status", "best score", "attempts")
        cells = [head] + [(r["lesson"], r["title"], r["status"],
                           "-" if r["best_score"] is None else f"{round(100 * r['best_score'])}%",
                           str(r["attempts"])) for r in self.rows]
        widths = [max(len(c[i]) for c in cells) for i in range(len(head))]
        right = {3, 4}

        def line(c):
            return "  ".join(v.rjust(w) if i in right else v.ljust(w) for i, (v, w) in enumerate(zip(c, widths))).rstrip()

        out = [line(cells[0]), "  ".join("-" * w for w in widths)] + [line(c) for c in cells[1:]]
        out.append(f"{self.complete} of {len(self.rows)} lessons complete (a quiz score of 75% or more completes a lesson)")
        return "\n".join(out)

    __repr__ = __str__


def progress_table(path=None, quiz_dir=None) -> ProgressTable:
    """The status of every lesson with a quiz (01-10) from the progress file (a fresh file: all 'not started')."""
    data = load_progress(path)
    rows = []
    for lesson, fallback in LESSONS.items():
        entry = data["lessons"].get(lesson, {})
        title = fallback
        try:
            title = load_quiz(lesson, quiz_dir).title
        except (OSError, ValueError):
            pass
        attempts = int(entry.get("attempts", 0))
        total = entry.get("total")
        best = entry.get("best_correct")
        score = best / total if isinstance(best, int) and isinstance(total, int) and total > 0 and best >= 0 else None
        status = "complete" if entry.get("complete") else ("attempted" if attempts else "not started")
        rows.append({"lesson": lesson, "title": title, "status": status, "best_score": score, "attempts": attempts})
    return ProgressTable(rows)


# ----------------------------------------------------------------------------- the widget

class QuizWidget(widgets.VBox):
    """The quiz as ipywidgets (a VBox): one radio group or number box per question, a Check
    button, per-question feedback and the score.

    Programmatic API (tests, nbval): answer(key, value), answers(), check() -> QuizResult;
    ``inputs``/``feedback`` map question ids to their widgets; ``check_button``; ``score``.
    """

    def __init__(self, quiz: Quiz, progress_file=None, record: bool = True):
        inputs, feedback, blocks = {}, {}, []
        for i, q in enumerate(quiz.questions, start=1):
            prompt = widgets.HTMLMath(f"<b>{i}.</b> {html.escape(q.prompt)}")
            if q.kind == "choice":
                box = widgets.RadioButtons(options=[(c, k) for k, c in enumerate(q.choices)], value=None,
                                           layout=widgets.Layout(width="max-content"))
            else:
                box = widgets.Text(value="", placeholder="type a number", continuous_update=True,
                                   layout=widgets.Layout(width="220px"))
            note = widgets.HTML("")
            block = widgets.VBox([prompt, box, note], layout=widgets.Layout(margin="0 0 10px 0"))
            block.add_class("lessons-quiz-question")
            block.add_class(f"lessons-quiz-q{i}")
            block.add_class(f"lessons-quiz-{q.kind}")
            inputs[q.id], feedback[q.id] = box, note
            blocks.append(block)
        button = widgets.Button(description="Check", button_style="primary", icon="check")
        button.add_class("lessons-quiz-check")
        score = widgets.HTML("")
        score.add_class("lessons-quiz-score")
        header = widgets.HTML(f"<h4 style='margin:4px 0'>Quiz {quiz.lesson}: {html.escape(quiz.title)}</h4>"
                              f"<div>Answer, then press Check. 75% or more completes the lesson.</div>")
        super().__init__([header, *blocks, widgets.HBox([button, score])])
        self.add_class("lessons-quiz")
        self.add_class(f"lessons-quiz-{quiz.lesson}")
        self.quiz = quiz
        self.progress_file = progress_file
        self.record = record
        self.result: QuizResult | None = None
        self.warnings: list[str] = []
        self.inputs, self.feedback = inputs, feedback
        self.check_button, self.score = button, score
        button.on_click(lambda _button: self.check())

    def answer(self, key, value) -> None:
        """Fill in one answer: a choice index (or its text), a number (or text), or None to clear."""
        q = self.quiz.question(key)
        box = self.inputs[q.id]
        if q.kind == "choice":
            if value is None:
                box.value = None
                return
            index = _choice_index(q, value)
            if index is None:
                raise ValueError(f"question {q.id!r}: {value!r} is not a choice index 0..{len(q.choices) - 1} "
                                 f"or one of the choice texts")
            box.value = index
        else:
            if value is None:
                box.value = ""
            elif isinstance(value, str):
                box.value = value
            elif isinstance(value, bool):
                raise ValueError(f"question {q.id!r}: expected a number; got {value!r}")
            else:
                box.value = repr(float(value))

    def answers(self) -> dict:
        """The current responses {question id: choice index / text typed / None}."""
        return {qid: box.value for qid, box in self.inputs.items()}

    def check(self) -> QuizResult:
        """What the Check button does: grade, show feedback and score, record progress."""
        result = grade(self.quiz, self.answers())
        colors = {"correct": "#1a7f37", "wrong": "#b42318", "invalid": "#b42318", "unanswered": "#9a6700"}
        marks = {"correct": "\u2714", "wrong": "\u2718", "invalid": "\u2718", "unanswered": "\u2013"}
        for f in result.feedback:
            self.feedback[f.id].value = (f"<span style='color:{colors[f.status]}'>{marks[f.status]} "
                                         f"{html.escape(f.text())}</span>")
        notes = ""
        self.warnings = []
        if self.record:
            # a callback's warning would land in the browser's log console: show it here instead
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always", ProgressWarning)
                record_result(result, self.progress_file)
            self.warnings = [str(w.message) for w in caught if issubclass(w.category, ProgressWarning)]
            notes = "".join(f"<br><i>note: {html.escape(m)}</i>" for m in self.warnings)
        color = "#1a7f37" if result.complete else "#b42318"
        self.score.value = f"<b style='color:{color}'>{html.escape(result.summary())}</b>{notes}"
        self.result = result
        return result

    def __repr__(self):
        return f"Quiz {self.quiz.lesson}: {self.quiz.title} ({len(self.quiz.questions)} questions)"


def quiz_widget(lesson, quiz_dir=None, progress_file=None, record: bool = True) -> QuizWidget:
    """Build (not display) the quiz widget for a lesson id or a quiz file path."""
    return QuizWidget(load_quiz(lesson, quiz_dir), progress_file=progress_file, record=record)


def show_quiz(lesson, quiz_dir=None, progress_file=None) -> None:
    """Display the scored quiz of a lesson in the notebook: ``show_quiz("02")``."""
    from IPython.display import display

    display(quiz_widget(lesson, quiz_dir, progress_file))
