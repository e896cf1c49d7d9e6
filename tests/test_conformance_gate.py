"""The gate in conftest.py: a skipped conformance test fails when LESSONS_REQUIRE_TORCH=1."""
from __future__ import annotations

from pathlib import Path

import pytest

CONFTEST = Path(__file__).with_name("conftest.py").read_text(encoding="utf-8")
TESTS = '''
import pytest

@pytest.mark.conformance
def test_reference_missing():
    pytest.importorskip("a_module_that_is_not_installed_anywhere")

@pytest.mark.conformance
def test_reference_missing_in_fixture(torch_like):
    pass

@pytest.fixture
def torch_like():
    pytest.importorskip("a_module_that_is_not_installed_anywhere")

def test_unmarked_skip_stays_a_skip():
    pytest.skip("not a conformance test")

@pytest.mark.conformance
def test_reference_present():
    assert True
'''


@pytest.fixture
def gate_suite(pytester):
    pytester.makeconftest(CONFTEST.replace('pytest_plugins = ["pytester"]', ""))
    pytester.makepyfile(test_gate=TESTS)
    pytester.makefile(".json", documented_printouts="[]")
    return pytester


def test_skips_stay_skips_without_the_variable(gate_suite, monkeypatch):
    monkeypatch.delenv("LESSONS_REQUIRE_TORCH", raising=False)
    result = gate_suite.runpytest_inprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=1, skipped=3)


def test_skipped_conformance_tests_fail_with_the_variable(gate_suite, monkeypatch):
    monkeypatch.setenv("LESSONS_REQUIRE_TORCH", "1")
    result = gate_suite.runpytest_inprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=1, skipped=1, failed=1, errors=1)   # errors: skipped in a fixture
    result.stdout.fnmatch_lines(["*LESSONS_REQUIRE_TORCH=1 requires it to run*"])
    assert result.ret != 0


def test_marker_is_registered(pytestconfig):
    assert any(line.startswith("conformance:") for line in pytestconfig.getini("markers"))
