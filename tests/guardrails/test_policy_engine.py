"""RegoPolicyEngine against the real policies and tier templates, both regopy paths."""

from __future__ import annotations

import json
import shutil
import string
import threading
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from guardrails.policy import (
    DATA_ROOT,
    PolicyDecision,
    PolicyEngineError,
    RegoPolicyEngine,
    Violation,
    decision_from_deny,
    load_tier_templates,
    to_policy_json,
)
from tests.guardrails.factories import POLICY_DIR, TEMPLATES_DIR, deployment_input, premium_tenant

ONBOARDING = "fraudrail.onboarding"
DEPLOYMENT = "fraudrail.deployment"


@pytest.fixture(scope="module", params=[True, False], ids=["bundle", "plain"])
def engine(request: pytest.FixtureRequest, templates: dict[str, dict[str, Any]]) -> RegoPolicyEngine:
    return RegoPolicyEngine(POLICY_DIR, templates, compiled=request.param)


def tenant_with(**fields: Any) -> dict[str, Any]:
    doc = premium_tenant()
    doc["tenant"].update(fields)
    return doc


def test_valid_premium_tenant_is_allowed(engine: RegoPolicyEngine) -> None:
    assert engine.evaluate(ONBOARDING, premium_tenant()) == PolicyDecision(allowed=True, violations=())


def test_region_outside_the_tier_names_field_and_limit(engine: RegoPolicyEngine) -> None:
    doc = tenant_with(tier="trial", region="eu-central-1", budget={"amount": "100", "currency": "USD"})
    decision = engine.evaluate(ONBOARDING, doc)
    assert not decision.allowed
    assert decision.violations == (
        Violation(
            rule="region_not_allowed",
            field="tenant.region",
            message=(
                "tenant.region eu-central-1 is not allowed for tier trial (allowed: eu-west-1, us-east-1)"
            ),
        ),
    )


def test_budget_cap_comes_from_the_tier_template(engine: RegoPolicyEngine) -> None:
    doc = tenant_with(tier="standard", budget={"amount": "10000.01", "currency": "USD"})
    decision = engine.evaluate(ONBOARDING, doc)
    assert decision.rules == {"budget_over_cap"}
    assert decision.violations[0].message == (
        "tenant.budget.amount 10000.01 exceeds the standard tier cap of 10000 USD"
    )
    doc = tenant_with(tier="standard", budget={"amount": "10000", "currency": "USD"})
    assert engine.evaluate(ONBOARDING, doc).allowed


def test_decimal_amounts_are_sent_as_plain_strings(engine: RegoPolicyEngine) -> None:
    doc = tenant_with(budget={"amount": Decimal("1E+3"), "currency": "USD"})
    assert engine.evaluate(ONBOARDING, doc).allowed
    doc = tenant_with(budget={"amount": Decimal("100000.000001"), "currency": "USD"})
    assert engine.evaluate(ONBOARDING, doc).rules == {"budget_over_cap"}


def test_violations_are_sorted_by_rule_then_field(engine: RegoPolicyEngine) -> None:
    doc = tenant_with(
        slug="Bad-",
        region="mars-1",
        contacts={"slack_webhook_url": "http://hooks.test/a", "teams_webhook_url": "ftp://hooks.test/b"},
        encryption={"at_rest": False},
    )
    decision = engine.evaluate(ONBOARDING, doc)
    keys = [(v.rule, v.field or "") for v in decision.violations]
    assert keys == sorted(keys)
    assert keys == [
        ("encryption_at_rest_disabled", "tenant.encryption.at_rest"),
        ("kms_key_required", "tenant.encryption.kms_key_alias"),
        ("region_not_allowed", "tenant.region"),
        ("slug_invalid", "tenant.slug"),
        ("webhook_url_insecure", "tenant.contacts.slack_webhook_url"),
        ("webhook_url_insecure", "tenant.contacts.teams_webhook_url"),
    ]


def test_deployment_allows_a_clean_rollout(engine: RegoPolicyEngine) -> None:
    assert engine.evaluate(DEPLOYMENT, deployment_input()).allowed


def test_deployment_cost_message_carries_both_figures(engine: RegoPolicyEngine) -> None:
    doc = deployment_input(cost={"estimated_monthly": Decimal("950.25"), "budget_headroom": Decimal("900")})
    decision = engine.evaluate(DEPLOYMENT, doc)
    assert decision.violations == (
        Violation(
            "cost_over_headroom",
            "cost.estimated_monthly",
            "cost.estimated_monthly 950.25 exceeds cost.budget_headroom 900",
        ),
    )


def test_error_budget_freeze_yields_to_emergency(engine: RegoPolicyEngine) -> None:
    frozen = deployment_input(tenant={"error_budget_frozen": True})
    assert engine.evaluate(DEPLOYMENT, frozen).rules == {"error_budget_frozen"}
    emergency = deployment_input(tenant={"error_budget_frozen": True}, rollout={"emergency": True})
    assert engine.evaluate(DEPLOYMENT, emergency).allowed


def test_unknown_package_fails_closed(engine: RegoPolicyEngine) -> None:
    with pytest.raises(PolicyEngineError, match="unknown policy package"):
        engine.evaluate("fraudrail.nope", {})
    with pytest.raises(PolicyEngineError):
        engine.evaluate("fraudrail.onboarding; true", {})


def test_unserialisable_input_fails_closed(engine: RegoPolicyEngine) -> None:
    with pytest.raises(PolicyEngineError, match="JSON"):
        engine.evaluate(ONBOARDING, {"tenant": {"name": object()}})
    with pytest.raises(PolicyEngineError):
        engine.evaluate(ONBOARDING, {"tenant": {"budget": {"amount": float("nan")}}})


def test_every_loaded_package_defining_deny_is_known(engine: RegoPolicyEngine) -> None:
    assert {ONBOARDING, DEPLOYMENT} <= engine.packages


def test_engine_is_safe_across_threads(templates: dict[str, dict[str, Any]]) -> None:
    shared = RegoPolicyEngine(POLICY_DIR, templates)
    cases = [
        (ONBOARDING, premium_tenant(), frozenset()),
        (ONBOARDING, tenant_with(region="mars-1"), frozenset({"region_not_allowed"})),
        (DEPLOYMENT, deployment_input(), frozenset()),
        (DEPLOYMENT, deployment_input(tenant={"status": "SUSPENDED"}), frozenset({"tenant_not_active"})),
    ]
    mismatches: list[tuple[int, int]] = []
    errors: list[BaseException] = []
    start = threading.Barrier(6)

    def worker(worker_id: int) -> None:
        start.wait()
        try:
            for i in range(60):
                package, doc, expected = cases[(i + worker_id) % len(cases)]
                if shared.evaluate(package, doc).rules != expected:
                    mismatches.append((worker_id, i))
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert mismatches == []


# --- fail closed on bad policies and data ---------------------------------------------------


def test_bad_policy_fails_at_construction(tmp_path: Path) -> None:
    (tmp_path / "broken.rego").write_text(
        "package fraudrail.broken\nimport rego.v1\ndeny contains v if { v := }\n"
    )
    with pytest.raises(PolicyEngineError, match="compilation failed"):
        RegoPolicyEngine(tmp_path, {})


def test_directory_without_deny_rules_fails(tmp_path: Path) -> None:
    (tmp_path / "x.rego").write_text("package fraudrail.x\nimport rego.v1\nallow := true\n")
    with pytest.raises(PolicyEngineError, match="no policy package defines a deny rule"):
        RegoPolicyEngine(tmp_path, {})
    with pytest.raises(PolicyEngineError, match="does not exist"):
        RegoPolicyEngine(tmp_path / "missing", {})


@pytest.mark.parametrize("compiled", [True, False])
def test_builtin_error_in_a_rule_fails_closed(tmp_path: Path, compiled: bool) -> None:
    # Without strict built-in errors this rule would be silently undefined: an allow.
    (tmp_path / "p.rego").write_text(
        "package fraudrail.p\nimport rego.v1\n"
        'deny contains {"rule": "too_big", "field": "n", "msg": "n"} if { to_number(input.n) > 5 }\n'
    )
    engine = RegoPolicyEngine(tmp_path, {}, compiled=compiled)
    assert engine.evaluate("fraudrail.p", {"n": "7"}).rules == {"too_big"}
    assert engine.evaluate("fraudrail.p", {"n": "3"}).allowed
    with pytest.raises(PolicyEngineError):
        engine.evaluate("fraudrail.p", {"n": "seven"})


def test_data_is_mounted_under_fraudrail_data(tmp_path: Path) -> None:
    (tmp_path / "p.rego").write_text(
        "package fraudrail.p\nimport rego.v1\n"
        'deny contains {"rule": "over", "field": "n", "msg": "n"} if '
        f"{{ input.n > data.{DATA_ROOT}.limit }}\n"
    )
    engine = RegoPolicyEngine(tmp_path, {"limit": 10})
    assert engine.evaluate("fraudrail.p", {"n": 11}).rules == {"over"}
    assert engine.evaluate("fraudrail.p", {"n": 10}).allowed


def test_missing_tier_data_denies_onboarding(tmp_path: Path) -> None:
    shutil.copy(POLICY_DIR / "onboarding.rego", tmp_path)
    engine = RegoPolicyEngine(tmp_path, {})
    assert "tier_unknown" in engine.evaluate(ONBOARDING, premium_tenant()).rules


# --- decoding deny sets ---------------------------------------------------------------------


def test_malformed_deny_entries_still_deny() -> None:
    decision = decision_from_deny(
        ["just a string", {"field": "x"}, {"rule": "ok", "field": None, "msg": "m"}]
    )
    assert not decision.allowed
    assert [v.rule for v in decision.violations] == ["malformed_violation", "malformed_violation", "ok"]


def test_deny_that_is_not_a_set_is_an_engine_error() -> None:
    with pytest.raises(PolicyEngineError):
        decision_from_deny({"rule": "x"})


def test_to_policy_json_normalises_types() -> None:
    assert to_policy_json({"a": Decimal("1.50"), "b": (1, 2), "c": frozenset({"x"})}) == {
        "a": "1.50",
        "b": [1, 2],
        "c": ["x"],
    }


# --- tier templates -------------------------------------------------------------------------


def test_load_tier_templates_keys_by_tier(templates: dict[str, dict[str, Any]]) -> None:
    assert sorted(templates) == ["premium", "standard", "trial"]
    assert templates["trial"]["budget_cap"] == {"amount": "500", "currency": "USD"}


def test_load_tier_templates_rejects_mismatched_or_incomplete_files(tmp_path: Path) -> None:
    (tmp_path / "gold.json").write_text(json.dumps({"tier": "platinum"}))
    with pytest.raises(ValueError, match="gold"):
        load_tier_templates(tmp_path)
    (tmp_path / "gold.json").write_text(json.dumps({"tier": "gold", "allowed_regions": ["eu-west-1"]}))
    with pytest.raises(ValueError, match="budget_cap"):
        load_tier_templates(tmp_path)
    with pytest.raises(ValueError, match="no tier templates"):
        load_tier_templates(tmp_path / "empty")
    assert set(load_tier_templates(TEMPLATES_DIR)) == {"trial", "standard", "premium"}


@pytest.mark.parametrize("value", ["\\", "x\\", 'a"b', "new\nline", "\x00", "é€😀", "\u2028"])
def test_escape_characters_in_input_yield_violations_not_errors(engine: RegoPolicyEngine, value: str) -> None:
    # Found by the fuzz test: regopy.Input() with a trailing backslash corrupted the output.
    doc = tenant_with(slug=value, contacts={"slack_webhook_url": value, "teams_webhook_url": None})
    decision = engine.evaluate(ONBOARDING, doc)
    assert {"slug_invalid", "webhook_url_insecure"} <= decision.rules


# --- fuzz: caller-supplied text must never break the engine or leak into messages unsafely --

_values = st.one_of(st.none(), st.booleans(), st.integers(-(10**6), 10**6), st.text(max_size=60))
_safe_message_chars = set(string.ascii_letters + string.digits + " ._:/@+=,()-<>?;'%")


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    slug=_values,
    region=_values,
    tier=st.one_of(st.sampled_from(["trial", "standard", "premium"]), _values),
    amount=_values,
    currency=_values,
    webhook=_values,
    alias=_values,
)
def test_arbitrary_tenant_values_yield_a_decision_with_safe_messages(
    engine: RegoPolicyEngine,
    slug: Any,
    region: Any,
    tier: Any,
    amount: Any,
    currency: Any,
    webhook: Any,
    alias: Any,
) -> None:
    doc = tenant_with(
        slug=slug,
        region=region,
        tier=tier,
        budget={"amount": amount, "currency": currency},
        contacts={"slack_webhook_url": webhook},
        encryption={"at_rest": True, "kms_key_alias": alias},
    )
    decision = engine.evaluate(ONBOARDING, doc)
    for violation in decision.violations:
        assert set(violation.message) <= _safe_message_chars, violation
