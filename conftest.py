"""Session-wide settings for every test run, including nbval's notebook kernels.

Quiz progress goes to a throw-away file, so stored notebook outputs stay deterministic and
a learner's own progress is never touched by the tests.
"""
import os
import tempfile
from pathlib import Path

collect_ignore_glob = ["tests/fixtures/*", "exercises/*", "benchmarks/*", ".venv/*", "build/*"]


def pytest_configure(config):
    # always a fresh file, even when the user keeps their own progress elsewhere through
    # LESSONS_PROGRESS_FILE: the start page's stored progress table shows a fresh course
    folder = Path(tempfile.mkdtemp(prefix="lessons-progress-"))
    os.environ["LESSONS_PROGRESS_FILE"] = str(folder / "progress.json")
