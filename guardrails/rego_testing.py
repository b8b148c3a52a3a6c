"""A Rego test runner on regopy (which has no ``opa test``).

For every ``*_test.rego`` file the runner loads all policies of the directory plus that file and
queries each ``test_*`` rule of the file's package; a test passes when the rule is ``true``.

regopy can crash the whole process on some constructs (1.5.2 segfaults on ``with input as
...``; override ``input.<key>`` instead), so each test file runs in a child process. After a
crash the test being evaluated is reported as failed and a new child resumes at the next test;
a crash while compiling the test module therefore fails every test of that file, and only it.

Other regopy 1.5.2 quirks test authors meet: ``with data.<base document> as ...`` is ignored
(replace the rule that reads it, by its full ``data.`` path, not an import alias), and
``with ... as <rule>`` misbehaves (bind the value to a local variable first).

CLI: ``python -m guardrails.rego_testing policies/rego`` (exit status 1 on any failure).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import regopy

from guardrails.policy import PolicyModule, discover_policy_modules, new_interpreter, read_policy_module

_TEST_RULE_RE = re.compile(r"^(test_[A-Za-z0-9_]*)\b", re.M)
_RESULT_MARK = "@@rego-test@@ "
_CHILD_TIMEOUT_S = 300.0


@dataclass(frozen=True)
class RegoTestResult:
    name: str
    passed: bool
    error: str | None = None


def test_rule_names(module: PolicyModule) -> list[str]:
    """The ``test_*`` rules a test module defines, in source order, each once."""
    return list(dict.fromkeys(_TEST_RULE_RE.findall(module.source)))


def _interpreter_for(policies: tuple[PolicyModule, ...], test_module: PolicyModule) -> regopy.Interpreter:
    interpreter = new_interpreter()
    for module in (*policies, test_module):
        interpreter.add_module(module.path.name, module.source)
    return interpreter


def _evaluate_test(interpreter: regopy.Interpreter, package: str, rule: str) -> RegoTestResult:
    name = f"{package}.{rule}"
    try:
        # Bind the value: a bare query of a rule that is `false` reads as undefined.
        output = interpreter.query(f"value := data.{package}.{rule}")
        if not output.ok():
            return RegoTestResult(name, False, f"evaluation error: {output}")
        results = output.results
        bindings = results[0].bindings if results else {}
    except (regopy.RegoError, ValueError) as exc:
        return RegoTestResult(name, False, f"evaluation error: {exc}")
    if "value" not in bindings:
        return RegoTestResult(name, False, "undefined: a condition of the test body did not hold")
    if bindings["value"] is not True:
        return RegoTestResult(name, False, f"evaluated to {json.dumps(bindings['value'])}, expected true")
    return RegoTestResult(name, True)


def _test_file_results(policy_dir: Path, test_file: Path, start: int) -> Iterator[RegoTestResult]:
    """The results of one test file's tests from index ``start``, each as soon as it is known."""
    module = read_policy_module(test_file)
    names = test_rule_names(module)[start:]
    try:
        interpreter = _interpreter_for(discover_policy_modules(policy_dir), module)
    except Exception as exc:  # a policy that does not compile fails every test of the file
        for name in names:
            yield RegoTestResult(f"{module.package}.{name}", False, f"load error: {exc}")
        return
    for name in names:
        yield _evaluate_test(interpreter, module.package, name)


def _child_main(policy_dir: Path, test_file: Path, start: int) -> int:
    for index, result in enumerate(_test_file_results(policy_dir, test_file, start), start):
        _emit(index, result)
    return 0


def _emit(index: int, result: RegoTestResult) -> None:
    record = {"index": index, "name": result.name, "passed": result.passed, "error": result.error}
    sys.stdout.write(_RESULT_MARK + json.dumps(record) + "\n")
    sys.stdout.flush()


def _run_file_isolated(policy_dir: Path, test_file: Path) -> list[RegoTestResult]:
    module = read_policy_module(test_file)
    names = test_rule_names(module)
    results: list[RegoTestResult] = []
    env = dict(os.environ)
    package_root = str(Path(__file__).resolve().parent.parent)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (package_root, env.get("PYTHONPATH")) if p)
    while len(results) < len(names):
        start = len(results)
        command = [
            sys.executable,
            "-m",
            "guardrails.rego_testing",
            "--child",
            str(policy_dir),
            str(test_file),
            str(start),
        ]
        try:
            proc = subprocess.run(  # noqa: S603 - our own module, fixed arguments
                command, capture_output=True, text=True, timeout=_CHILD_TIMEOUT_S, env=env, check=False
            )
            stdout, returncode = proc.stdout, proc.returncode
        except subprocess.TimeoutExpired as exc:
            out = exc.stdout
            stdout = out.decode() if isinstance(out, bytes) else (out or "")
            returncode = None
        for line in stdout.splitlines():
            if line.startswith(_RESULT_MARK):
                record = json.loads(line[len(_RESULT_MARK) :])
                if record["index"] == len(results):
                    results.append(RegoTestResult(record["name"], record["passed"], record["error"]))
        if len(results) < len(names):
            # The child died on the next test: report it and carry on after it.
            how = "timed out" if returncode is None else f"exited with status {returncode}"
            hint = " (regopy crashes on `with input as ...`: override input.<key> instead)"
            results.append(
                RegoTestResult(f"{module.package}.{names[len(results)]}", False, f"interpreter {how}{hint}")
            )
    return results


def run_rego_test_file(policy_dir: Path, test_file: Path, *, isolate: bool = True) -> list[RegoTestResult]:
    """Run the ``test_*`` rules of one test file against every policy in ``policy_dir``.

    ``isolate=False`` evaluates in this process: faster, but a regopy crash takes the caller down.
    A test file without any ``test_*`` rule is reported as one failure, so a typo cannot hide tests.
    """
    module = read_policy_module(test_file)
    if not test_rule_names(module):
        return [RegoTestResult(module.package, False, f"{test_file.name} defines no test_* rule")]
    if isolate:
        return _run_file_isolated(policy_dir, test_file)
    return list(_test_file_results(policy_dir, test_file, 0))


def run_rego_tests(policy_dir: Path, *, isolate: bool = True) -> list[RegoTestResult]:
    """Run every ``test_*`` rule of every ``*_test.rego`` file in ``policy_dir``, file by file."""
    results: list[RegoTestResult] = []
    for module in discover_policy_modules(policy_dir, include_tests=True):
        if module.is_test:
            results.extend(run_rego_test_file(policy_dir, module.path, isolate=isolate))
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m guardrails.rego_testing", description=__doc__.splitlines()[0]
    )
    parser.add_argument("policy_dir", type=Path, nargs="?", default=Path("policies/rego"))
    parser.add_argument(
        "--in-process", action="store_true", help="do not isolate test files in child processes"
    )
    parser.add_argument(
        "--child", nargs=3, metavar=("POLICY_DIR", "TEST_FILE", "START"), help=argparse.SUPPRESS
    )
    args = parser.parse_args(argv)
    if args.child:
        policy_dir, test_file, start = args.child
        return _child_main(Path(policy_dir), Path(test_file), int(start))
    results = run_rego_tests(args.policy_dir, isolate=not args.in_process)
    for result in results:
        status = "PASS" if result.passed else "FAIL"
        print(f"{status} {result.name}" + (f": {result.error}" if result.error else ""))
    failed = sum(not r.passed for r in results)
    print(f"{len(results) - failed} passed, {failed} failed")
    return 1 if failed or not results else 0


if __name__ == "__main__":
    sys.exit(main())
