"""The Rego test suites under policies/rego pass, and the runner reports failures honestly."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from guardrails.rego_testing import RegoTestResult, run_rego_test_file, run_rego_tests
from tests.guardrails.factories import POLICY_DIR, ROOT

TEST_FILES = sorted(POLICY_DIR.glob("*_test.rego"))

POLICY = """package fraudrail.sample
import rego.v1

deny contains {"rule": "too_big", "field": "n", "msg": "n is too big"} if { input.n > 5 }
"""


def _write_suite(directory: Path, tests: str) -> Path:
    (directory / "sample.rego").write_text(POLICY)
    test_file = directory / "sample_test.rego"
    test_file.write_text("package fraudrail.sample_test\nimport rego.v1\n\n" + tests)
    return test_file


def test_our_policies_have_test_suites() -> None:
    assert {p.name for p in TEST_FILES} >= {"onboarding_test.rego", "deployment_test.rego"}


@pytest.mark.parametrize("test_file", TEST_FILES, ids=lambda p: p.name)
def test_rego_suite_passes(test_file: Path) -> None:
    results = run_rego_test_file(POLICY_DIR, test_file)
    assert results, f"{test_file.name} ran no tests"
    failures = [r for r in results if not r.passed]
    assert failures == []


def test_false_test_rule_is_reported_failing(tmp_path: Path) -> None:
    _write_suite(
        tmp_path,
        "test_small_is_allowed if { count(data.fraudrail.sample.deny) == 0 with input.n as 3 }\n"
        "test_deliberately_false if { count(data.fraudrail.sample.deny) == 0 with input.n as 9 }\n"
        "test_false_value := false\n",
    )
    results = {r.name: r for r in run_rego_tests(tmp_path)}
    assert set(results) == {
        "fraudrail.sample_test.test_small_is_allowed",
        "fraudrail.sample_test.test_deliberately_false",
        "fraudrail.sample_test.test_false_value",
    }
    assert results["fraudrail.sample_test.test_small_is_allowed"] == RegoTestResult(
        "fraudrail.sample_test.test_small_is_allowed", True
    )
    deliberately_false = results["fraudrail.sample_test.test_deliberately_false"]
    assert not deliberately_false.passed
    assert deliberately_false.error is not None and "undefined" in deliberately_false.error
    false_value = results["fraudrail.sample_test.test_false_value"]
    assert not false_value.passed
    assert false_value.error == "evaluated to false, expected true"


def test_runner_in_process_gives_the_same_verdicts(tmp_path: Path) -> None:
    _write_suite(
        tmp_path,
        "test_ok if { count(data.fraudrail.sample.deny) == 0 with input.n as 1 }\n"
        "test_bad if { count(data.fraudrail.sample.deny) == 0 with input.n as 6 }\n",
    )
    verdicts = [(r.name, r.passed) for r in run_rego_tests(tmp_path, isolate=False)]
    assert verdicts == [("fraudrail.sample_test.test_ok", True), ("fraudrail.sample_test.test_bad", False)]
    assert verdicts == [(r.name, r.passed) for r in run_rego_tests(tmp_path)]


def test_an_interpreter_crash_fails_its_file_and_other_files_still_run(tmp_path: Path) -> None:
    # regopy 1.5.2 segfaults compiling `with input as {...}` when the rule calls a built-in on
    # input; the whole test module is affected. Should a regopy release fix the crash, this test
    # fails and the hint in the runner can go.
    _write_suite(tmp_path, "test_ok if { count(data.fraudrail.sample.deny) == 1 with input.n as 9 }\n")
    (tmp_path / "crash_test.rego").write_text(
        "package fraudrail.crash_test\nimport rego.v1\n"
        'test_one if { count(data.fraudrail.sample.deny) == 1 with input as {"n": 9} }\n'
        "test_two if { true }\n"
    )
    results = run_rego_tests(tmp_path)
    assert [(r.name, r.passed) for r in results] == [
        ("fraudrail.crash_test.test_one", False),
        ("fraudrail.crash_test.test_two", False),
        ("fraudrail.sample_test.test_ok", True),
    ]
    assert all("interpreter exited" in (r.error or "") for r in results[:2])


def test_policy_that_does_not_compile_fails_every_test(tmp_path: Path) -> None:
    _write_suite(tmp_path, "test_one if { true }\ntest_two if { true }\n")
    (tmp_path / "broken.rego").write_text("package fraudrail.broken\nimport rego.v1\nx := \n")
    results = run_rego_tests(tmp_path)
    assert [r.passed for r in results] == [False, False]
    assert all(r.error and r.error.startswith("load error") for r in results)


def test_test_file_without_tests_is_a_failure(tmp_path: Path) -> None:
    _write_suite(tmp_path, "helper := 1\n")
    assert run_rego_tests(tmp_path) == [
        RegoTestResult("fraudrail.sample_test", False, "sample_test.rego defines no test_* rule")
    ]


def test_runner_picks_up_any_package(tmp_path: Path) -> None:
    _write_suite(tmp_path, "test_ok if { count(data.fraudrail.sample.deny) == 0 with input.n as 1 }\n")
    shutil.copy(POLICY_DIR / "deployment.rego", tmp_path)
    (tmp_path / "extra.rego").write_text("package fraudrail.extra\nimport rego.v1\nlimit := 3\n")
    (tmp_path / "extra_test.rego").write_text(
        "package fraudrail.extra_test\nimport rego.v1\ntest_limit if { data.fraudrail.extra.limit == 3 }\n"
    )
    results = run_rego_tests(tmp_path)
    assert [(r.name, r.passed) for r in results] == [
        ("fraudrail.extra_test.test_limit", True),
        ("fraudrail.sample_test.test_ok", True),
    ]


def test_cli_exit_status(tmp_path: Path) -> None:
    _write_suite(tmp_path, "test_right if { 1 == 1 }\n")
    ok = subprocess.run(
        [sys.executable, "-m", "guardrails.rego_testing", str(tmp_path)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        check=False,
    )
    assert ok.returncode == 0, ok.stdout
    assert ok.stdout.splitlines() == ["PASS fraudrail.sample_test.test_right", "1 passed, 0 failed"]

    _write_suite(tmp_path, "test_wrong if { 1 == 2 }\n")
    failing = subprocess.run(
        [sys.executable, "-m", "guardrails.rego_testing", str(tmp_path)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        check=False,
    )
    assert failing.returncode == 1
    assert "FAIL fraudrail.sample_test.test_wrong" in failing.stdout
