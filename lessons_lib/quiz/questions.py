"""The question model and scoring: a quiz's questions, one response judged, a result scored.

A choice question's answer is the 0-based index of the right choice; a numeric question's is a
number with an absolute tolerance. A score of 75% or more (PASS_MARK) completes a lesson.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from fractions import Fraction

PASS_MARK = Fraction(3, 4)          # 75% or more completes a lesson


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
            index = choice_index(self, response)
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


def choice_index(q: Question, response):
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


def grade(quiz: Quiz, responses: dict) -> QuizResult:
    """Score responses {question id or 0-based index: answer}; missing ones count as unanswered."""
    by_id = {}
    for key, value in (responses or {}).items():
        by_id[quiz.question(key).id] = value
    feedback = tuple(q.grade(by_id.get(q.id)) for q in quiz.questions)
    return QuizResult(quiz.lesson, quiz.title, sum(f.correct for f in feedback), len(feedback), feedback)
