"""Every documented printout appears verbatim in the stored outputs of its lesson.

nbval proves a notebook still prints what it stored; this proves that what it stored is
what the course documents, so re-storing wrong outputs fails too.
"""
import json
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PRINTOUTS = json.loads((ROOT / "tests" / "documented_printouts.json").read_text(encoding="utf-8"))


def stored_text(notebook: Path) -> str:
    nb = json.loads(notebook.read_text(encoding="utf-8"))
    chunks = []
    for cell in nb["cells"]:
        if cell["cell_type"] != "code":
            continue
        for out in cell.get("outputs", []):
            if out.get("output_type") == "stream" and out.get("name") == "stdout":
                chunks.append("".join(out["text"]))
            elif "data" in out and "text/plain" in out["data"]:
                chunks.append("".join(out["data"]["text/plain"]) + "\n")
    return "".join(chunks)


def lesson_notebook(lesson: str) -> Path:
    found = sorted((ROOT / "notebooks").glob(f"{lesson}_*.ipynb"))
    assert found, f"no notebook for lesson {lesson} in notebooks/"
    return found[0]


def test_all_13_documented_printouts_are_checked():
    """Guards the list itself: losing an entry from documented_printouts.json fails here."""
    assert len(PRINTOUTS) == 13
    assert {p["lesson"] for p in PRINTOUTS} == {"01", "02", "03", "05", "06", "07", "08", "10"}


@pytest.mark.parametrize("printout", PRINTOUTS, ids=[p["id"] for p in PRINTOUTS])
def test_documented_printout_is_stored_verbatim_in_its_lesson(printout):
    notebook = lesson_notebook(printout["lesson"])
    text = stored_text(notebook)
    assert printout["printout"] + "\n" in text, (
        f"{notebook.name} does not print the documented '{printout['id']}' lines verbatim:\n"
        f"{printout['printout']}"
    )
