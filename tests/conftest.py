"""Shared test configuration.

- The marker ``conformance`` labels the tests that compare the library with PyTorch.
  They skip when torch is not importable, unless LESSONS_REQUIRE_TORCH=1 is set (CI sets it):
  then a skipped conformance test is reported as a failure, so the reference checks cannot
  silently stop running.
- Hypothesis runs a small number of examples per property so the suite stays fast
  (LESSONS_HYPOTHESIS_PROFILE=thorough runs 2000 per property, for a local bug hunt).
"""
from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from hypothesis import settings

pytest_plugins = ["pytester"]   # test_conformance_gate.py runs the gate below on a tiny suite

REQUIRE_TORCH_VARIABLE = "LESSONS_REQUIRE_TORCH"
PRINTOUTS_FILE = Path(__file__).with_name("documented_printouts.json")

# the default profile is derandomized: every run (and CI) tries the same examples, so a pass is
# reproducible; the thorough profile explores new random examples each time
settings.register_profile("lessons", max_examples=50, deadline=None, database=None, derandomize=True)
settings.register_profile("thorough", max_examples=2000, deadline=None, database=None)   # for local bug hunts
settings.load_profile(os.environ.get("LESSONS_HYPOTHESIS_PROFILE", "lessons"))


def pytest_configure(config):
    config.addinivalue_line(
        "markers",
        "conformance: compares lessons_lib with PyTorch; a skip becomes a failure when "
        f"{REQUIRE_TORCH_VARIABLE}=1",
    )
    config.addinivalue_line("markers", "slow: starts Jupyter kernels (deselect with -m 'not slow')")


def _torch_required() -> bool:
    return os.environ.get(REQUIRE_TORCH_VARIABLE, "") == "1"


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    if report.skipped and _torch_required() and item.get_closest_marker("conformance") is not None:
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
        report.outcome = "failed"
        report.longrepr = (
            f"conformance test was skipped but {REQUIRE_TORCH_VARIABLE}=1 requires it to run: {reason}"
        )


@pytest.fixture(scope="session")
def torch():
    """The torch module; skips when torch is missing or fails to import (an optional extra)."""
    return pytest.importorskip("torch", exc_type=ImportError)


@pytest.fixture(scope="session")
def printouts() -> dict:
    """Documented printouts by id, read from the copy stored in the repository."""
    entries = json.loads(PRINTOUTS_FILE.read_text(encoding="utf-8"))
    return {entry["id"]: entry for entry in entries}