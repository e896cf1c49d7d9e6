"""The learner's progress file: each lesson's best quiz score, kept safely across sessions.

Progress is kept in a JSON file in the user's data directory (``progress_path()``; the
environment variable LESSONS_PROGRESS_FILE overrides it). It is written atomically (a
temporary file, then os.replace); a file that cannot be read is renamed aside with a warning
and progress starts again.
"""
from __future__ import annotations

import json
import os
import sys
import tempfile
import time
import warnings
from pathlib import Path

from .files import load_quiz
from .questions import QuizResult

PROGRESS_ENV = "LESSONS_PROGRESS_FILE"
APP_NAME = "optimizer-course"
PROGRESS_FORMAT = 1
LESSONS = {
    "01": "One uneven surface",
    "02": "SGD and the zigzag",
    "03": "Momentum: an optimizer with a memory",
    "04": "AdaGrad and RMSProp: where Adam's second moment comes from",
    "05": "Adam: a step size for every coordinate",
    "06": "AdamW: weight decay, decoupled",
    "07": "Warmup and cosine: changing the learning rate as you go",
    "08": "Gradient clipping: a length limit, not a steering wheel",
    "09": "fp16 and loss scaling",
    "10": "Capstone: one training loop, every mechanism",
    "11": "From the surface to a real model",
    "12": "Training practice: schedulers, parameter groups, finding a rate, debugging, resuming",
    "13": "Lean optimizer state: Lion, Adafactor, 8-bit moments, and Muon's matrix view",
}
"""The lessons with a quiz, and a fallback title when a lesson's quiz file is missing."""


class ProgressWarning(UserWarning):
    """Progress could not be read or saved; the course carries on without it."""


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
