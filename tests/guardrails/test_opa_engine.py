"""OpaPolicyEngine over real HTTP against a stand-in OPA server (regopy behind OPA's REST API)."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from guardrails.policy import OpaPolicyEngine, PolicyEngineError, RegoPolicyEngine
from tests.guardrails.factories import POLICY_DIR, deployment_input, premium_tenant
from tests.guardrails.fake_opa import FakeOpa

ONBOARDING = "fraudrail.onboarding"


@pytest.fixture
def opa() -> Iterator[FakeOpa]:
    server = FakeOpa().start()
    yield server
    server.stop()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


def test_first_use_pushes_policies_and_data_then_queries_deny(
    opa: FakeOpa, templates: dict[str, dict[str, Any]]
) -> None:
    engine = OpaPolicyEngine(opa.url, POLICY_DIR, templates)
    assert opa.requests == []  # nothing is pushed before first use

    assert engine.evaluate(ONBOARDING, premium_tenant()).allowed
    policy_puts = {path for method, path in opa.requests if method == "PUT" and "/policies/" in path}
    assert policy_puts == {
        f"/v1/policies/fraudrail/{p.stem}" for p in POLICY_DIR.glob("*.rego") if "_test" not in p.stem
    }
    assert ("PUT", "/v1/data/fraudrail_data") in opa.requests
    assert opa.requests[-1] == ("POST", "/v1/data/fraudrail/onboarding/deny")
    assert opa.data == {"fraudrail_data": templates}
    assert opa.inputs[-1] == premium_tenant()

    engine.evaluate("fraudrail.deployment", deployment_input())
    puts = [r for r in opa.requests if r[0] == "PUT"]
    assert len(puts) == len(policy_puts) + 1  # pushed once: policies and data, not again
    assert opa.requests[-1] == ("POST", "/v1/data/fraudrail/deployment/deny")


def test_opa_and_regopy_engines_agree(opa: FakeOpa, templates: dict[str, dict[str, Any]]) -> None:
    remote = OpaPolicyEngine(opa.url, POLICY_DIR, templates)
    local = RegoPolicyEngine(POLICY_DIR, templates)
    bad_tenant = premium_tenant()
    bad_tenant["tenant"].update(region="mars-1", slug="X", encryption={"at_rest": False})
    cases = [
        (ONBOARDING, premium_tenant()),
        (ONBOARDING, bad_tenant),
        (
            "fraudrail.deployment",
            deployment_input(cost={"estimated_monthly": "901", "budget_headroom": "900"}),
        ),
        ("fraudrail.deployment", deployment_input(candidate={"stage": "SHADOW", "gate_passed": False})),
    ]
    for package, doc in cases:
        assert remote.evaluate(package, doc) == local.evaluate(package, doc)
    assert not remote.evaluate(ONBOARDING, bad_tenant).allowed


def test_a_server_that_forgot_the_policies_gets_them_again(
    opa: FakeOpa, templates: dict[str, dict[str, Any]]
) -> None:
    engine = OpaPolicyEngine(opa.url, POLICY_DIR, templates)
    engine.evaluate(ONBOARDING, premium_tenant())
    opa.forget()
    pushes_before = sum(1 for method, _ in opa.requests if method == "PUT")

    decision = engine.evaluate(ONBOARDING, premium_tenant())

    assert decision.allowed
    assert sum(1 for method, _ in opa.requests if method == "PUT") == 2 * pushes_before
    assert opa.data == {"fraudrail_data": templates}


def test_unreachable_server_fails_closed(templates: dict[str, dict[str, Any]]) -> None:
    engine = OpaPolicyEngine(f"http://127.0.0.1:{_free_port()}", POLICY_DIR, templates, timeout_s=0.5)
    with pytest.raises(PolicyEngineError, match="OPA evaluation"):
        engine.evaluate(ONBOARDING, premium_tenant())


def test_server_going_away_after_first_use_fails_closed(templates: dict[str, dict[str, Any]]) -> None:
    server = FakeOpa().start()
    engine = OpaPolicyEngine(server.url, POLICY_DIR, templates, retries=0)
    assert engine.evaluate(ONBOARDING, premium_tenant()).allowed
    server.stop()
    with pytest.raises(PolicyEngineError):
        engine.evaluate(ONBOARDING, premium_tenant())


def test_policy_rejected_by_the_server_fails_closed(opa: FakeOpa, tmp_path: Path) -> None:
    (tmp_path / "broken.rego").write_text(
        "package fraudrail.broken\nimport rego.v1\ndeny contains v if { v := }\n"
    )
    engine = OpaPolicyEngine(opa.url, tmp_path, {})
    with pytest.raises(PolicyEngineError):
        engine.evaluate("fraudrail.broken", {})
    assert not any(method == "POST" for method, _ in opa.requests)


def test_evaluation_error_on_the_server_fails_closed(opa: FakeOpa, tmp_path: Path) -> None:
    (tmp_path / "p.rego").write_text(
        "package fraudrail.p\nimport rego.v1\n"
        'deny contains {"rule": "too_big", "field": "n", "msg": "n"} if { to_number(input.n) > 5 }\n'
    )
    engine = OpaPolicyEngine(opa.url, tmp_path, {}, retries=0)
    assert engine.evaluate("fraudrail.p", {"n": "9"}).rules == {"too_big"}
    with pytest.raises(PolicyEngineError):  # strict-builtin-errors is requested on every query
        engine.evaluate("fraudrail.p", {"n": "nine"})


def test_unknown_package_is_refused_without_a_request(
    opa: FakeOpa, templates: dict[str, dict[str, Any]]
) -> None:
    engine = OpaPolicyEngine(opa.url, POLICY_DIR, templates)
    with pytest.raises(PolicyEngineError, match="unknown policy package"):
        engine.evaluate("fraudrail.elsewhere", {})
    assert opa.requests == []


def test_url_must_be_http() -> None:
    with pytest.raises(PolicyEngineError):
        OpaPolicyEngine("opa:8181", POLICY_DIR, {})
