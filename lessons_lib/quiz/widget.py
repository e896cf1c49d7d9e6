"""The quiz widget: one lesson's questions as ipywidgets, with a Check button and feedback."""
from __future__ import annotations

import html
import warnings

import ipywidgets as widgets

from .files import load_quiz
from .progress import ProgressWarning, record_result
from .questions import Quiz, QuizResult, choice_index, grade


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
            index = choice_index(q, value)
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
