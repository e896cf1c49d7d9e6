"""The exercise generator and the autograder.

Generator tests are pure nbformat and fast. Grading tests start Jupyter kernels (about a
second each), so they grade many notebooks per call and share the results through
module-scoped fixtures; they carry the `slow` mark (deselect with -m "not slow").
"""
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

from course_tools import autograder, cli, exercises, lessons

from grading_helpers import EXERCISES, ROOT, SOLUTIONS, SUBMISSIONS, digest, run_grader


def meta(gid, solution=False, grade=False, locked=False, points=None):
    m = {"schema_version": 3, "grade_id": gid, "grade": grade, "locked": locked, "solution": solution,
         "task": False}
    if grade:
        m["points"] = points
    return {"nbgrader": m}


def tiny_solution():
    return new_notebook(cells=[
        new_markdown_cell("# Tiny"),
        new_code_cell("x = 1", metadata=meta("setup", locked=True)),
        new_code_cell("def f(a):\n    \"\"\"doc\"\"\"\n    ### BEGIN SOLUTION\n    return 2 * a\n    ### END SOLUTION\n\n"
                      "print(f(1))", metadata=meta("f_answer", solution=True)),
        new_code_cell("### BEGIN SOLUTION\ny = 3\n### END SOLUTION", metadata=meta("y_answer", solution=True)),
        new_code_cell("y = 4", metadata=meta("whole_answer", solution=True)),
        new_code_cell("assert f(2) == 4\n### BEGIN HIDDEN TESTS\nassert f(5) == 10\n### END HIDDEN TESTS\n",
                      metadata={**meta("f", grade=True, locked=True, points=2), "collapsed": True}),
        new_markdown_cell("### BEGIN SOLUTION\nBecause.\n### END SOLUTION",
                          metadata=meta("why", solution=True, grade=True, points=1)),
    ], metadata={"celltoolbar": "Create Assignment", "language_info": {"name": "python", "version": "3.11.7"}})


# ------------------------------------------------------------------ the generator


def test_student_version_replaces_solutions_removes_hidden_tests_clears_and_locks():
    nb = tiny_solution()
    nb.cells[2].outputs = [nbformat.v4.new_output("stream", text="2\n")]
    nb.cells[2].execution_count = 3
    out = exercises.student_version(nb)
    src = [c.source for c in out.cells]
    assert src[2] == ('def f(a):\n    """doc"""\n    # YOUR CODE HERE\n    raise NotImplementedError()\n\n'
                      'print(f(1))')
    assert src[3] == "# YOUR CODE HERE\nraise NotImplementedError()"
    assert src[4] == "# YOUR CODE HERE\nraise NotImplementedError()"      # a solution cell without markers
    assert src[5] == "assert f(2) == 4\n"
    assert src[6] == "YOUR ANSWER HERE"
    assert out.cells[2].outputs == [] and out.cells[2].execution_count is None
    assert "collapsed" not in out.cells[5].metadata
    assert "celltoolbar" not in out.metadata and out.metadata.language_info == {"name": "python"}
    assert out.cells[1].metadata["deletable"] is False and out.cells[1].metadata["editable"] is False
    assert out.cells[2].metadata["deletable"] is False and "editable" not in out.cells[2].metadata
    assert out.cells[5].metadata["editable"] is False
    assert out.cells[6].metadata["deletable"] is False and "editable" not in out.cells[6].metadata
    assert "deletable" not in out.cells[0].metadata
    assert nb.cells[2].execution_count == 3, "the solution notebook itself must not change"


@pytest.mark.parametrize("cells, fragment", [
    ([new_code_cell("### BEGIN SOLUTION\nx = 1\n### END SOLUTION")], "not a solution cell"),
    ([new_code_cell("### BEGIN HIDDEN TESTS\nassert 1\n### END HIDDEN TESTS", metadata=meta("a", locked=True))],
     "not a graded cell"),
    ([new_code_cell("### BEGIN SOLUTION\n### BEGIN SOLUTION\n### END SOLUTION", metadata=meta("a", solution=True))],
     "nested"),
    ([new_code_cell("### BEGIN SOLUTION\nx = 1", metadata=meta("a", solution=True))], "without ### END SOLUTION"),
    ([new_code_cell("x", metadata=meta("a", locked=True)), new_code_cell("y", metadata=meta("a", locked=True))],
     "duplicate grade_id"),
    ([new_code_cell("assert 1", metadata=meta("a", grade=True, locked=True, points=-1))], "points >= 0"),
    ([new_markdown_cell("text", metadata=meta("a", grade=True, points=1))], "both grade and solution"),
    ([new_code_cell("x", metadata=meta("bad id!", locked=True))], "grade_id must be"),
])
def test_malformed_solutions_are_refused_with_a_reason(cells, fragment):
    with pytest.raises(exercises.ClassroomError, match=fragment):
        exercises.student_version(new_notebook(cells=cells))


def test_generate_is_deterministic_and_check_mode_reports_drift(tmp_path):
    sol, ex = tmp_path / "solutions", tmp_path / "exercises"
    sol.mkdir()
    nbformat.write(tiny_solution(), sol / "01_tiny.ipynb")
    assert [p.name for p in exercises.generate(sol, ex)] == ["01_tiny.ipynb"]
    first = (ex / "01_tiny.ipynb").read_bytes()
    assert exercises.generate(sol, ex) == []
    assert (ex / "01_tiny.ipynb").read_bytes() == first
    (ex / "01_tiny.ipynb").write_text("{}", encoding="utf-8")
    assert [p.name for p in exercises.generate(sol, ex, check=True)] == ["01_tiny.ipynb"]
    assert (ex / "01_tiny.ipynb").read_text(encoding="utf-8") == "{}", "--check must not write"


def test_generate_command_line_check_exits_0_when_in_sync(capsys):
    assert cli.main(["generate", "--check", "--solutions", str(SOLUTIONS), "--exercises", str(EXERCISES)]) == 0, \
        capsys.readouterr().out


def test_the_module_runs_as_a_command():
    done = subprocess.run([sys.executable, "-m", "course_tools", "--help"], capture_output=True, text=True, cwd=ROOT)
    assert done.returncode == 0 and "generate" in done.stdout and "grade" in done.stdout


# ------------------------------------------------------------------ grading without kernels


def test_unreadable_and_misplaced_submissions_get_zero_rows_without_running_anything(tmp_path):
    graded = autograder.grade([SUBMISSIONS / "invalid_json" / "01_one_uneven_surface.ipynb",
                               SUBMISSIONS / "not_a_notebook" / "homework.ipynb",
                               SUBMISSIONS / "wrong_lesson" / "05_adam.ipynb",
                               tmp_path / "06_adamw.ipynb"], SOLUTIONS)
    assert [g.ungraded for g in graded] == [True, True, False, True], "another lesson's notebook is graded (0)"
    rows = [r for g in graded for r in g.rows]
    by_file = {}
    for r in rows:
        by_file.setdefault(Path(r.file).parent.name + "/" + Path(r.file).name, []).append(r)
    invalid = by_file["invalid_json/01_one_uneven_surface.ipynb"]
    assert [(r.exercise, r.points, r.max_points) for r in invalid] == [("01_one_sgd_step", 0.0, 2.0)]
    assert "not a readable notebook" in invalid[0].message
    (unknown,) = by_file["not_a_notebook/homework.ipynb"]
    assert unknown.points == 0 and "not a readable notebook" in unknown.message
    wrong = by_file["wrong_lesson/05_adam.ipynb"]
    assert [r.exercise for r in wrong] == ["05_first_step", "05_v_measures", "05_v_constant_gradient",
                                           "05_adam_three_steps"]
    assert all(r.points == 0 and "another lesson (03_momentum.ipynb)" in r.message for r in wrong)
    missing = by_file[f"{tmp_path.name}/06_adamw.ipynb"]
    assert [(r.points, r.message) for r in missing] == [(0.0, "file not found")]


def test_grade_refuses_to_write_the_csv_over_a_submission(tmp_path, capsys):
    target = tmp_path / "01_one_uneven_surface.ipynb"
    target.write_bytes((EXERCISES / target.name).read_bytes())
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["grade", "--solutions", str(SOLUTIONS), "--out", str(target), str(target)])
    assert exit_info.value.code != 0 and "never writes to a submission" in capsys.readouterr().err
    assert target.read_bytes() == (EXERCISES / target.name).read_bytes()


def test_the_temporary_copy_leaves_out_other_notebooks_and_respects_its_budget(tmp_path):
    src = tmp_path / "submitted"
    (src / "data").mkdir(parents=True)
    (src / "05_adam.ipynb").write_text("{}", encoding="utf-8")
    (src / "03_momentum.ipynb").write_text("{}", encoding="utf-8")
    (src / "notes.txt").write_text("keep me", encoding="utf-8")
    (src / "data" / "big.bin").write_bytes(b"x" * 5000)
    (src / ".ipynb_checkpoints").mkdir()
    lessons.copy_folder(src, tmp_path / "copy", keep=src / "05_adam.ipynb", budget=1000)
    copied = sorted(str(p.relative_to(tmp_path / "copy")) for p in (tmp_path / "copy").rglob("*") if p.is_file())
    assert copied == ["05_adam.ipynb", "notes.txt"]
    lessons.copy_folder(src, tmp_path / "copy2", keep=src / "05_adam.ipynb")
    assert (tmp_path / "copy2" / "data" / "big.bin").exists()


# ------------------------------------------------------------------ grading with kernels


@pytest.fixture(scope="module")
def graded_course(tmp_path_factory):
    """Every solution and every unmodified exercise, graded in one call, in their sandboxes: the
    solutions run against their lessons' grading builds (pieces cut out), the tests run outside."""
    files = sorted(SOLUTIONS.glob("*.ipynb")) + sorted(EXERCISES.glob("*.ipynb"))
    before = {f: digest(f) for f in files}
    out = tmp_path_factory.mktemp("grades") / "grades.csv"
    rows, stdout, code = run_grader(files, out, expect=1)
    return rows, stdout, before


@pytest.mark.slow
def test_every_solution_scores_full_marks(graded_course):
    rows, _, _ = graded_course
    solved = [r for r in rows if Path(r["file"]).parent == SOLUTIONS]
    assert {Path(r["file"]).name for r in solved} == {p.name for p in SOLUTIONS.glob("*.ipynb")}
    for r in solved:
        if r["points"] == "":
            assert r["message"].startswith("graded by hand"), r
        else:
            assert r["points"] == r["max_points"] and r["message"] == "passed", r


@pytest.mark.slow
def test_unmodified_exercises_score_zero(graded_course):
    rows, _, _ = graded_course
    handed_out = [r for r in rows if Path(r["file"]).parent == EXERCISES]
    assert len({r["file"] for r in handed_out}) == len(list(EXERCISES.glob("*.ipynb")))
    for r in handed_out:
        assert r["points"] == "0", r
        assert r["message"].startswith(("not attempted yet", "not answered")), r


@pytest.mark.slow
def test_grading_never_modifies_a_graded_solution_or_exercise(graded_course):
    for path, before in graded_course[2].items():
        assert path.exists() and digest(path) == before, f"{path} changed during grading"
