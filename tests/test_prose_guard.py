"""The prose guard (tests/prose_guard.py): lesson text quotes only numbers its lesson prints.

It passes on every stored lesson, and it fails on the lessons as they stood before issue 12
(kept as tests/fixtures/prose_before_issue_12: markdown and text outputs, no images), where it
must find the stale and unprinted numbers that issue listed.
"""
import json
from pathlib import Path

import pytest

from prose_guard import ALLOWLIST, Evidence, check_notebook, check_text, structure_problems

ROOT = Path(__file__).resolve().parents[1]
LESSONS = sorted((ROOT / "notebooks").glob("*.ipynb"))
OLD = ROOT / "tests" / "fixtures" / "prose_before_issue_12"


def _report(problems):
    return "\n".join(str(p) for p in problems)


@pytest.mark.parametrize("notebook", LESSONS, ids=[p.stem for p in LESSONS])
def test_every_number_in_the_lesson_text_is_printed_by_the_lesson(notebook):
    problems = [p for p in check_notebook(notebook) if p.where != "structure"]
    assert not problems, "numbers quoted without printed evidence:\n" + _report(problems)


@pytest.mark.parametrize("notebook", LESSONS, ids=[p.stem for p in LESSONS])
def test_lesson_sections_come_in_the_documented_order(notebook):
    problems = [p for p in check_notebook(notebook) if p.where == "structure"]
    assert not problems, _report(problems)


def test_the_allowlist_is_small_reasoned_and_used():
    allowlist = json.loads(ALLOWLIST.read_text(encoding="utf-8"))
    entries = [(stem, e) for stem, es in allowlist.items() for e in es]
    assert len(entries) <= 25, "the allow-list is for a few derived values, not a way around the guard"
    for stem, e in entries:
        assert set(e) == {"number", "reason"} and len(e["reason"]) > 20, (stem, e)
        assert stem == "every lesson" or (ROOT / "notebooks" / f"{stem}.ipynb").exists(), stem
    used = set()
    for nb in LESSONS:
        check_notebook(nb, used=used)
    unused = [(stem, e["number"]) for stem, e in entries
              if stem != "every lesson" and (stem, e["number"]) not in used]
    unused += [("every lesson", e["number"]) for e in allowlist.get("every lesson", [])
               if not any(n == e["number"] for _, n in used)]
    assert not unused, f"allow-list entries no lesson quotes any more: {unused}"


# --- the guard fails on the lessons before issue 12 --------------------------------------------

FOUND_BEFORE = [
    ("02_sgd_zigzag", "cell 16", "2%"),            # "A 2% change in the learning rate": it is 1%
    ("04_adam", "cell 24", "47"),                  # "behind for the first 47 steps": never printed
    ("04_adam", "cell 24", "53"),                  # "reaches the optimum near step 53": never printed
    ("04_adam", "cell 29", "300"),                 # "about 300 times lower": cell 23 printed another ratio
    ("04_adam", "cell 24", "orders of magnitude"),
    ("03_momentum", "cell 25", "orders of magnitude"),
    ("03_momentum", "cell 34", "orders of magnitude"),
    ("09_capstone", "cell 10", "thousands of\ntimes"),   # one lucky point of a jagged curve
    ("09_capstone", "cell 36", "thousands of times"),
    ("06_schedules", "cell 21", "orders of magnitude"),
]
# Explore inserted between a result and its interpretation: the Summary heading then shares a
# cell with that interpretation, or the argument goes on after Explore (09's "5. The habit")
FLOW_BEFORE = ["02_sgd_zigzag", "03_momentum", "04_adam", "05_adamw", "06_schedules",
               "07_clipping", "08_loss_scaling", "09_capstone"]


@pytest.fixture(scope="module")
def old_problems():
    found = []
    for path in sorted(OLD.glob("*.json")):
        found += check_notebook(path, allowlist={}, quiz_dir=OLD / "quizzes")
    return found


@pytest.mark.parametrize("stem, where, quote", FOUND_BEFORE, ids=[f"{s}-{w}-{q}" for s, w, q in FOUND_BEFORE])
def test_the_guard_finds_each_unprinted_number_of_the_old_lessons(old_problems, stem, where, quote):
    assert any(p.notebook == stem and p.where == where and p.quote == quote for p in old_problems), \
        f"{stem} {where}: {quote!r} not flagged"


@pytest.mark.parametrize("stem", FLOW_BEFORE)
def test_the_guard_finds_each_explore_section_inserted_mid_argument(old_problems, stem):
    assert any(p.notebook == stem and p.where == "structure" for p in old_problems)


# --- the rules, on small texts ------------------------------------------------------------------

def _problems(text, printed="", code=""):
    return [p.quote for p in check_text("xx", "cell 1", text, Evidence(printed, code), set(), set())]


def test_a_rounded_quote_of_a_printed_number_is_supported():
    assert _problems("the loss fell to 0.17", printed="loss 0.168") == []
    assert _problems("about 300 times lower", printed="ratio 297.4") == []
    assert _problems("the loss fell to 0.17", printed="loss 0.1649") == ["0.17"]


def test_a_parameter_may_come_from_code_but_a_factor_must_be_printed():
    assert _problems("at lr 0.0135 it converged", code="run(SGD(lr=0.0135))") == []
    assert _problems("it was 12 times lower", code="steps = 12") == ["12"]
    assert _problems("it was 12 times lower", printed="ratio 12.2") == []


def test_small_integers_are_exempt_unless_they_claim_a_factor():
    assert _problems("after 3 steps the two paths agree", printed="") == []
    assert _problems("a factor of 3 lower", printed="step 3") == ["3"]
    assert _problems("it rose tenfold, about ten times", printed="") == ["ten", "ten"]
    assert _problems("a gap of two standard deviations", printed="") == ["two"]


def test_percentages_need_a_printed_percentage():
    assert _problems("a 1% change", printed="relative change 1.0%") == []
    assert _problems("a 2% change", printed="lr 0.0201") == ["2%"]


def test_vague_magnitudes_are_always_flagged():
    assert _problems("thousands of times lower", printed="ratio 2000") == ["thousands of times"]
    assert _problems("three orders of magnitude", printed="") == ["orders of magnitude"]


def test_a_worked_derivation_in_math_is_checked_by_the_reader_not_the_guard():
    assert _problems(r"so $0.8^8 \approx 0.168$ remains") == []
    assert _problems(r"and the run diverged at $k = 695$") == ["695"]


def test_a_power_of_ten_is_an_order_of_magnitude():
    assert _problems(r"a loss near $10^{-15}$", printed="loss 3.2e-15") == []
    assert _problems(r"a loss near $10^{-15}$", printed="loss 3.2e-12") == [r"10^{-15}"]


def test_links_file_names_and_lesson_numbers_are_not_claims():
    text = "See lesson 03 and [the exercise](../exercises/03_momentum.ipynb), `09_capstone`, 16-bit floats."
    assert _problems(text) == []


def test_structure_wants_explore_after_the_argument_and_before_the_summary():
    def md(s):
        return {"type": "markdown", "source": s, "outputs": ""}
    good = [md("# 01 · T\n\n## What you will be able to do\n- x"), md("## The argument"),
            md("## Explore"), {"type": "code", "source": "explorer()", "outputs": ""},
            md("## Summary"), md("## Check yourself"), md("## Exercises")]
    assert structure_problems("01_x", good) == []
    mid = good[:2] + good[2:4] + [md("## More argument")] + good[4:]
    assert structure_problems("01_x", mid)
    shared = good[:4] + [md("So the result above means...\n\n## Summary")] + good[5:]
    assert structure_problems("01_x", shared)
