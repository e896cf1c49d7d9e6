"""Quizzes answered through the widget API, scores, the 75% rule and the progress file."""
from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from lessons_lib import quiz as Q

FIXTURES = Path(__file__).parent / "fixtures" / "quizzes"
RIGHT_02 = {"limit": 1, "multiplier": -1.1, "lowest": 0, "slow": 1}
WRONG_02 = {"limit": 0, "multiplier": 1.1, "lowest": 2, "slow": 0}


@pytest.fixture(autouse=True)
def progress_file(tmp_path, monkeypatch):
    """Every test gets its own progress file through the environment variable."""
    path = tmp_path / "data" / "progress.json"
    monkeypatch.setenv(Q.PROGRESS_ENV, str(path))
    return path


def widget(lesson="02"):
    return Q.quiz_widget(lesson, quiz_dir=FIXTURES)


def answer_all(w, answers):
    for key, value in answers.items():
        w.answer(key, value)


def saved(path):
    return json.loads(path.read_text(encoding="utf-8"))


# ----------------------------------------------------------------------------- scoring through the widget

def test_all_right_completes_the_lesson_and_saves_it(progress_file):
    w = widget()
    answer_all(w, RIGHT_02)
    w.check_button.click()                      # exactly what the Check button does
    r = w.result
    assert (r.correct, r.total, r.complete, r.percent) == (4, 4, True, 100)
    assert [f.status for f in r.feedback] == ["correct"] * 4
    assert "Score 4/4 (100%): lesson 02 complete." in w.score.value
    assert "Correct. The steep coordinate needs |1 - 100 lr| &lt; 1" in w.feedback["limit"].value
    entry = saved(progress_file)["lessons"]["02"]
    assert entry["complete"] is True and entry["attempts"] == 1 and entry["best_score"] == 1.0


def test_all_wrong_scores_zero_and_explains(progress_file):
    w = widget()
    answer_all(w, WRONG_02)
    r = w.check()
    assert (r.correct, r.complete) == (0, False)
    assert [f.status for f in r.feedback] == ["wrong"] * 4
    assert "Not quite. Measured: 0.462 at 0.005" in w.feedback["lowest"].value
    assert "3 of 4 correct (75%) completes the lesson. Try again." in w.score.value
    entry = saved(progress_file)["lessons"]["02"]
    assert entry["complete"] is False and entry["best_correct"] == 0


def test_partly_right_at_exactly_75_percent_completes():
    w = widget()
    answer_all(w, {**RIGHT_02, "slow": 0})
    r = w.check()
    assert (r.correct, r.total, r.percent, r.complete) == (3, 4, 75, True)


def test_partly_right_below_75_percent_does_not_complete():
    w = widget()
    answer_all(w, {**RIGHT_02, "slow": 0, "lowest": 1})
    r = w.check()
    assert (r.correct, r.percent, r.complete) == (2, 50, False)


@pytest.mark.parametrize("n_right,complete", [(5, True), (4, True), (3, False), (0, False)])
def test_five_question_quiz_needs_four_right(n_right, complete):
    right = {"q1": 1, "q2": 4, "q3": 3.14, "q4": 0, "q5": 0}
    wrong = {"q1": 0, "q2": 5, "q3": 3.2, "q4": 1, "q5": 1}
    w = widget("98")
    keys = list(right)
    answer_all(w, {k: (right[k] if i < n_right else wrong[k]) for i, k in enumerate(keys)})
    r = w.check()
    assert (r.correct, r.complete) == (n_right, complete)


def test_unanswered_quiz_scores_zero_without_revealing_explanations(progress_file):
    w = widget()
    r = w.check()
    assert [f.status for f in r.feedback] == ["unanswered"] * 4
    assert r.correct == 0 and not r.complete
    assert "Not answered" in w.feedback["multiplier"].value
    assert "-1.1" not in w.feedback["multiplier"].value
    assert saved(progress_file)["lessons"]["02"]["attempts"] == 1


def test_answers_can_be_changed_and_cleared():
    w = widget()
    answer_all(w, RIGHT_02)
    w.answer("limit", None)
    w.answer("multiplier", None)
    assert w.answers() == {"limit": None, "multiplier": "", "lowest": 0, "slow": 1}
    assert w.check().correct == 2


def test_choices_by_index_or_text_and_bad_choices_refused():
    w = widget()
    w.answer(0, "0.02")                    # by position and by the choice's text
    assert w.inputs["limit"].value == 1
    with pytest.raises(ValueError, match="not a choice index"):
        w.answer("limit", 7)
    with pytest.raises(KeyError, match="no question 'nope'"):
        w.answer("nope", 1)


@pytest.mark.parametrize("typed,status", [
    ("-1.1", "correct"), ("-1.109", "correct"), ("\u22121.1", "correct"), (" -1.10 ", "correct"),
    ("-1.12", "wrong"), ("1.1", "wrong"), ("abc", "invalid"), ("nan", "invalid"), ("", "unanswered"),
])
def test_numeric_answers_use_absolute_tolerance(typed, status):
    w = widget()
    w.answer("multiplier", typed)
    fb = {f.id: f for f in w.check().feedback}["multiplier"]
    assert fb.status == status


def test_zero_is_a_real_answer():
    w = widget("98")
    w.answer("q5", 0)
    assert {f.id: f.status for f in w.check().feedback}["q5"] == "correct"


def test_best_score_is_kept_and_complete_stays_complete(progress_file):
    w = widget()
    answer_all(w, RIGHT_02)
    w.check()
    answer_all(w, WRONG_02)
    r = w.check()
    assert not r.complete
    entry = saved(progress_file)["lessons"]["02"]
    assert entry == {"title": "Fixture quiz: SGD on the course surface", "attempts": 2, "last_correct": 0,
                     "best_correct": 4, "best_score": 1.0, "total": 4, "complete": True}


# ----------------------------------------------------------------------------- non-widget API

def test_check_answers_grades_and_records(progress_file):
    r = Q.check_answers("2", RIGHT_02, quiz_dir=FIXTURES)
    assert r.complete and str(r).splitlines()[0] == "Score 4/4 (100%): lesson 02 complete."
    assert saved(progress_file)["lessons"]["02"]["complete"] is True


def test_check_answers_without_recording_leaves_no_file(progress_file):
    r = Q.check_answers("02", {"limit": 1}, quiz_dir=FIXTURES, record=False)
    assert (r.correct, r.complete) == (1, False)
    assert not progress_file.exists()


def test_show_quiz_displays_the_widget(monkeypatch):
    shown = []
    import IPython.display
    monkeypatch.setattr(IPython.display, "display", lambda obj: shown.append(obj))
    assert Q.show_quiz("02", quiz_dir=FIXTURES) is None
    assert len(shown) == 1 and isinstance(shown[0], Q.QuizWidget)
    assert repr(shown[0]) == "Quiz 02: Fixture quiz: SGD on the course surface (4 questions)"


def test_missing_quiz_names_what_exists():
    with pytest.raises(FileNotFoundError, match=r"no quiz file .*07\.json .*02, 98"):
        Q.load_quiz("07", quiz_dir=FIXTURES)
    with pytest.raises(ValueError, match="lesson must be a lesson number"):
        Q.load_quiz("two", quiz_dir=FIXTURES)


# ----------------------------------------------------------------------------- progress file

def test_progress_path_env_override_and_platform_default(monkeypatch, tmp_path):
    monkeypatch.setenv(Q.PROGRESS_ENV, str(tmp_path / "x.json"))
    assert Q.progress_path() == tmp_path / "x.json"
    monkeypatch.delenv(Q.PROGRESS_ENV)
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    default = Q.progress_path()
    assert default.name == "progress.json" and default.parent.name == "optimizer-course"


def test_fresh_progress_table_is_deterministic():
    table = Q.progress_table(quiz_dir=FIXTURES)
    text = str(table)
    assert text == str(Q.progress_table(quiz_dir=FIXTURES)) == repr(table)
    lines = text.splitlines()
    assert lines[0].split() == ["lesson", "title", "status", "best", "score", "attempts"]
    assert lines[2].split() == ["01", "One", "uneven", "surface", "not", "started", "-", "0"]
    assert lines[3].split()[:9] == ["02", "Fixture", "quiz:", "SGD", "on", "the", "course", "surface", "not"]
    n = len(Q.LESSONS)                              # every lesson of the course, quiz file or not
    assert lines[-1] == f"0 of {n} lessons complete (a quiz score of 75% or more completes a lesson)"
    assert [r["status"] for r in table.rows] == ["not started"] * n


def test_progress_table_after_attempts():
    Q.check_answers("02", RIGHT_02, quiz_dir=FIXTURES)
    Q.check_answers("98", {"q1": 1}, quiz_dir=FIXTURES)
    table = Q.progress_table(quiz_dir=FIXTURES)
    rows = {r["lesson"]: r for r in table.rows}
    assert rows["02"]["status"] == "complete" and rows["02"]["best_score"] == 1.0
    assert "98" not in rows and table.complete == 1
    line = next(l for l in str(table).splitlines() if l.startswith("02 "))
    assert line.split()[-3:] == ["complete", "100%", "1"]


@pytest.mark.parametrize("content", [b"{not json", b"[1, 2]", b'{"lessons": {"02": 5}}',
                                     b'{"lessons": {"02": {"attempts": "many"}}}', b"\xff\xfe\x00garbage"])
def test_corrupt_progress_is_set_aside_with_a_warning(progress_file, content):
    progress_file.parent.mkdir(parents=True)
    progress_file.write_bytes(content)
    with pytest.warns(Q.ProgressWarning, match="could not be read .* moved it to .*corrupt"):
        data = Q.load_progress()
    assert data == {"format": 1, "lessons": {}}
    aside = list(progress_file.parent.glob("progress.json.corrupt-*"))
    assert len(aside) == 1 and aside[0].read_bytes() == content
    assert not progress_file.exists()


def test_quiz_still_works_after_a_corrupt_file(progress_file):
    progress_file.parent.mkdir(parents=True)
    progress_file.write_text("{oops", encoding="utf-8")
    w = widget()
    answer_all(w, RIGHT_02)
    r = w.check()                       # the widget shows the warning next to the score
    assert r.complete
    assert "note: progress file" in w.score.value and "moved it to" in w.score.value
    assert saved(progress_file)["lessons"]["02"]["attempts"] == 1
    assert len(list(progress_file.parent.glob("progress.json.corrupt-*"))) == 1
    assert Q.progress_table(quiz_dir=FIXTURES).complete == 1


def test_write_is_atomic(progress_file, monkeypatch):
    Q.check_answers("02", RIGHT_02, quiz_dir=FIXTURES)
    before = progress_file.read_bytes()
    calls = []
    real_replace = os.replace

    def failing_replace(src, dst):
        calls.append((Path(src), Path(dst)))
        raise OSError("disk full")

    monkeypatch.setattr(Q.progress.os, "replace", failing_replace)
    with pytest.warns(Q.ProgressWarning, match="could not save progress .*disk full"):
        Q.check_answers("02", WRONG_02, quiz_dir=FIXTURES)
    (src, dst), = calls
    assert dst == progress_file and src.parent == progress_file.parent and src != dst
    assert progress_file.read_bytes() == before                 # the old record is intact
    assert sorted(p.name for p in progress_file.parent.iterdir()) == ["progress.json"]  # no temp left
    monkeypatch.setattr(Q.progress.os, "replace", real_replace)
    Q.check_answers("02", WRONG_02, quiz_dir=FIXTURES)
    assert saved(progress_file)["lessons"]["02"]["attempts"] == 2


def test_unwritable_progress_location_warns_in_the_widget(tmp_path):
    blocker = tmp_path / "a_file"
    blocker.write_text("not a folder")
    w = Q.quiz_widget("02", quiz_dir=FIXTURES, progress_file=blocker / "progress.json")
    answer_all(w, RIGHT_02)
    r = w.check()                       # warning captured by the widget, shown next to the score
    assert r.complete
    assert "note: could not save progress" in w.score.value
    assert any(m.startswith("could not save progress") for m in w.warnings)


def test_reset_progress(progress_file):
    Q.check_answers("02", RIGHT_02, quiz_dir=FIXTURES)
    Q.reset_progress()
    assert not progress_file.exists()
    Q.reset_progress()                  # nothing to delete: fine


# ----------------------------------------------------------------------------- quiz file validation

def good_quiz():
    return json.loads((FIXTURES / "02.json").read_text(encoding="utf-8"))


def mutate(path, value):
    def apply(data):
        target = data
        for key in path[:-1]:
            target = target[key]
        if value is KeyError:
            del target[path[-1]]
        else:
            target[path[-1]] = value
        return data
    return apply


@pytest.mark.parametrize("change,message", [
    (mutate(["title"], KeyError), "'title' must be a non-empty string"),
    (mutate(["lesson"], "2"), "'lesson' must be a two-digit string"),
    (mutate(["questions"], []), "'questions' must be a non-empty list"),
    (mutate(["extra"], 1), "unknown top-level key(s) ['extra']"),
    (mutate(["questions", 0, "kind"], "essay"), "question 1 ('limit'): 'kind' must be \"choice\" or \"numeric\""),
    (mutate(["questions", 0, "answer"], 4), "question 1 ('limit'): 'answer' must be the 0-based index"),
    (mutate(["questions", 0, "answer"], True), "'answer' must be the 0-based index"),
    (mutate(["questions", 0, "choices"], ["only one"]), "'choices' must be a list of at least 2"),
    (mutate(["questions", 0, "choices"], ["same", "same"]), "contains the same text twice"),
    (mutate(["questions", 1, "tolerance"], -0.1), "question 2 ('multiplier'): 'tolerance' must be a finite number >= 0"),
    (mutate(["questions", 1, "tolerance"], "0.01"), "'tolerance' must be a finite number >= 0"),
    (mutate(["questions", 1, "answer"], "-1.1"), "'answer' must be a finite number"),
    (mutate(["questions", 1, "tolerence"], 0.1), "unknown key(s) ['tolerence']"),
    (mutate(["questions", 1, "explanation"], ""), "'explanation' must be a non-empty string"),
    (mutate(["questions", 2, "id"], "limit"), "question 3 ('limit'): duplicate id"),
    (mutate(["questions", 3, "prompt"], KeyError), "question 4 ('slow'): missing key(s) ['prompt']"),
    (mutate(["questions", 3], "text"), "question 4: must be an object"),
])
def test_invalid_quiz_files_give_clear_errors(tmp_path, change, message):
    path = tmp_path / "02.json"
    path.write_text(json.dumps(change(good_quiz())), encoding="utf-8")
    with pytest.raises(Q.QuizFormatError) as info:
        Q.load_quiz("02", quiz_dir=tmp_path)
    assert message in str(info.value)
    assert str(path) in str(info.value)


def test_invalid_json_and_mismatched_file_name(tmp_path):
    (tmp_path / "03.json").write_text('{"lesson": "03",\n "title": }', encoding="utf-8")
    with pytest.raises(Q.QuizFormatError, match=r"not valid JSON: .* at line 2, column"):
        Q.load_quiz("03", quiz_dir=tmp_path)
    (tmp_path / "04.json").write_text(json.dumps(good_quiz()), encoding="utf-8")
    with pytest.raises(Q.QuizFormatError, match=r"'lesson' is '02' but the file is named 04.json"):
        Q.load_quiz("04", quiz_dir=tmp_path)


def test_the_course_quiz_files_are_valid():
    lessons = Q.available_quizzes()
    assert lessons == sorted(Q.LESSONS), "every lesson 01-11 has a quiz file, and no other"
    for lesson in lessons:
        quiz = Q.load_quiz(lesson)
        assert len(quiz.questions) >= 4, f"lesson {lesson}: a quiz needs at least 4 questions"
        Q.QuizWidget(quiz, record=False)       # and each one builds as a widget


def test_each_quiz_title_is_its_notebooks_title_and_the_fallback_title():
    from pathlib import Path
    import json
    root = Path(__file__).resolve().parents[1]
    for lesson, fallback in Q.LESSONS.items():
        (notebook,) = (root / "notebooks").glob(f"{lesson}_*.ipynb")
        first = json.loads(notebook.read_text(encoding="utf-8"))["cells"][0]["source"]
        heading = ("".join(first) if isinstance(first, list) else first).splitlines()[0]
        title = heading.split("·", 1)[1].strip()
        assert Q.load_quiz(lesson).title == fallback == title, lesson
