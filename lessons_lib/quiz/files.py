"""Quiz files: lessons_lib/quizzes/NN.json, found, read and checked against the format.

    {"lesson": "02", "title": "SGD and the zigzag",
     "questions": [
       {"id": "stability-limit", "kind": "choice", "prompt": "...", "choices": ["...", "..."],
        "answer": 1, "explanation": "one line: why"},
       {"id": "multiplier", "kind": "numeric", "prompt": "...", "answer": -1.1, "tolerance": 0.01,
        "explanation": "one line: why"}]}
"""
from __future__ import annotations

import json
import math
from pathlib import Path

from .questions import Question, Quiz

QUIZ_DIR = Path(__file__).resolve().parents[1] / "quizzes"


class QuizFormatError(ValueError):
    """A quiz file that does not follow the format (the message says where and what)."""


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
