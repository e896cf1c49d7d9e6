"""Scored quizzes for the lessons, and the learner's progress.

In a notebook:   show_quiz("02")                      displays the quiz widget
Without widgets: check_answers("02", {"stability-limit": 1, "multiplier": -1.1})

questions   the question model and scoring       files     quiz files and their format
progress    the learner's progress file          widget    the ipywidgets front end
"""
from __future__ import annotations

from .files import QUIZ_DIR, QuizFormatError, available_quizzes, load_quiz, validate_quiz
from .progress import (LESSONS, PROGRESS_ENV, ProgressTable, ProgressWarning, load_progress,
                       progress_path, progress_table, record_result, reset_progress)
from .questions import PASS_MARK, Feedback, Question, Quiz, QuizResult, grade
from .widget import QuizWidget, quiz_widget, show_quiz

__all__ = [
    "show_quiz", "quiz_widget", "QuizWidget", "check_answers", "grade", "load_quiz", "validate_quiz",
    "available_quizzes", "Quiz", "Question", "QuizResult", "Feedback", "QuizFormatError",
    "progress_path", "load_progress", "record_result", "reset_progress", "progress_table",
    "ProgressTable", "ProgressWarning", "PASS_MARK", "PROGRESS_ENV", "QUIZ_DIR", "LESSONS",
]


def check_answers(lesson, responses: dict, quiz_dir=None, record: bool = True, progress_file=None) -> QuizResult:
    """Grade responses without any widget and (by default) record the attempt in the progress file."""
    quiz = load_quiz(lesson, quiz_dir)
    result = grade(quiz, responses)
    if record:
        record_result(result, progress_file)
    return result
