"""Budgets: thresholds notify once a month, 100% freezes new spend (not fraud checks), a raise or a new
month lifts it, a freeze past its grace throttles to the floor rate, cost anomalies alert once."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from control_plane.audit.orm import AuditEvent
from control_plane.bootstrap.state import State
from control_plane.db import unit_of_work
from control_plane.finops.enforcement import ANOMALY_TOPIC, THRESHOLD_TOPIC
from control_plane.finops.guard import BudgetFrozen, require_budget
from control_plane.tenants.orm import Tenant
from tests.control_plane.conftest import OnboardFn, auth
from tests.control_plane.finops.conftest import FakeClock, RecordingNotifier, set_contacts, spend, utc
from tests.control_plane.scoring.conftest import LiveFn, register_model, txn
from tests.webhook_sink import WebhookSink


def _bus(container: State, topic: str) -> list[dict[str, Any]]:
    seen: list[dict[str, Any]] = []

    def on_message(_topic: str, message: Mapping[str, Any]) -> None:
        seen.append(dict(message))

    container.providers.event_bus.subscribe(topic, on_message)
    return seen


def _audit(container: State, tenant_id: str, prefix: str = "finops.") -> list[AuditEvent]:
    with container.factory() as s:
        stmt = select(AuditEvent).where(
            AuditEvent.tenant_id == tenant_id, AuditEvent.action.startswith(prefix)
        )
        return list(s.scalars(stmt.order_by(AuditEvent.seq)))


def test_thresholds_notify_the_contacts_and_the_bus_once_a_month(
    client: TestClient, onboard: OnboardFn, container: State, sink: WebhookSink
) -> None:
    t = onboard("notify-co")
    tid = t["id"]
    set_contacts(container, tid, {"slack_webhook_url": sink.url("/slack")})
    events = _bus(container, THRESHOLD_TOPIC)
    now = utc(2030, 1, 31)  # 30 of 31 days elapsed: forecast = actual * 31 / 30
    finops = container.finops

    spend(container, tid, "1300", utc(2030, 1, 10))  # 52 %
    assert finops.evaluate(tid, now=now)["notified"] == ["actual_50"]
    assert finops.evaluate(tid, now=now)["notified"] == []  # once
    spend(container, tid, "750", utc(2030, 1, 11))  # 82 %
    assert finops.evaluate(tid, now=now)["notified"] == ["actual_80"]
    spend(container, tid, "400", utc(2030, 1, 12))  # 98 % actual, 101.3 % forecast
    assert finops.evaluate(tid, now=now)["notified"] == ["forecast_100"]
    assert finops.evaluate(tid, now=now + timedelta(hours=1))["notified"] == []

    posts = sink.wait_for(3, path="/slack")
    assert len(posts) == 3 and "50% of the monthly budget" in posts[0].text and "2450.00" in posts[2].text
    assert [(e["threshold"], e["tenant_id"], e["month"]) for e in events] == [
        ("actual_50", tid, "2030-01"),
        ("actual_80", tid, "2030-01"),
        ("forecast_100", tid, "2030-01"),
    ]
    assert events[1]["actual"] == "2050.00" and events[1]["budget"] == "2500.00"
    crossed = [e.after["threshold"] for e in _audit(container, tid, "finops.threshold") if e.after]
    assert crossed == ["actual_50", "actual_80", "forecast_100"]
    delivered = [e for e in _audit(container, tid, "finops.notified")]
    assert len(delivered) == 3

    # A new month starts with no threshold notified: the same spend ratio notifies again.
    spend(container, tid, "1300", utc(2030, 2, 2))
    assert finops.evaluate(tid, now=utc(2030, 2, 27))["notified"] == ["actual_50"]
    assert len(sink.wait_for(4, path="/slack")) == 4


def test_an_undelivered_claim_is_sent_again_after_the_resend_window(
    onboard: OnboardFn, container: State, notifier: RecordingNotifier
) -> None:
    t = onboard("resend-co")
    spend(container, t["id"], "1300", utc(2030, 1, 10))
    enforcer = container.finops.enforcer
    deliver = enforcer._deliver
    enforcer._deliver = lambda *a, **k: None  # type: ignore[method-assign]  # a crash before sending
    assert enforcer.evaluate(t["id"], now=utc(2030, 1, 31))["notified"] == ["actual_50"]
    enforcer._deliver = deliver  # type: ignore[method-assign]
    assert container.finops.evaluate(t["id"], now=utc(2030, 1, 31, 0, 1))["notified"] == []  # still fresh
    resend = utc(2030, 1, 31, 0, 6)
    assert container.finops.evaluate(t["id"], now=resend)["notified"] == ["actual_50"]
    assert container.finops.evaluate(t["id"], now=resend + timedelta(hours=1))["notified"] == []
    assert [note.title for _, note in notifier.sent] == ["Fraudrail budget: 50% of the monthly budget spent"]


def test_spend_at_100_percent_freezes_training_and_promotion_while_fraud_checks_answer(
    client: TestClient,
    live_tenant: LiveFn,
    container: State,
    notifier: RecordingNotifier,
    trained_artifact: bytes,
    admin_key: str,
) -> None:
    t = live_tenant("freeze-co")
    tid = t["id"]
    now = datetime.now(UTC)
    spend(container, tid, "2600", now)
    result = container.finops.evaluate(tid, now=now)
    assert result["status"] == "frozen" and [x["to"] for x in result["transitions"]] == ["frozen"]
    assert [a.action for a in _audit(container, tid, "finops.budget.")] == ["finops.budget.frozen"]
    frozen = _audit(container, tid, "finops.budget.")[0]
    assert frozen.evidence is not None and frozen.evidence["actual"] == "2600.00"

    training = client.post("/v1/training-runs", json={"dataset_id": "ds_missing"}, headers=auth(t["admin"]))
    assert training.status_code == 403, training.text
    body = training.json()
    assert body["reason"] == "budget_frozen" and body["actual"] == "2600.00" and body["budget"] == "2500.00"
    assert "2600.00 USD" in body["detail"] and "2500.00 USD" in body["detail"]

    candidate = register_model(container, tid, trained_artifact)
    promote = client.post(f"/v1/models/{candidate}/promote", headers=auth(t["admin"]))
    assert promote.status_code == 403 and promote.json()["reason"] == "budget_frozen"
    with container.factory() as s:
        tenant = s.get(Tenant, tid)
        assert tenant is not None
        with pytest.raises(BudgetFrozen):
            container.finops.rollout_context(s, tenant)  # the rollouts module's hook

    check = client.post("/v1/fraud-check", json=txn("still-scored"), headers=auth(t["app"]))
    assert check.status_code == 200 and check.json()["decision"] in {"LEGIT", "REVIEW", "SUSPICIOUS"}
    budget = client.get(f"/v1/tenants/{tid}/budget", headers=auth(t["sre"])).json()
    assert budget["status"] == "frozen" and budget["headroom"] == "-100.00" and budget["throttled"] is False
    assert container.finops.budget_state(tid) == (
        "frozen",
        Decimal("2600.00"),
        Decimal("2500.00"),
        Decimal(-100),
    )

    raised = client.put(
        f"/v1/tenants/{tid}/budget",
        json={"amount": "5000.00", "currency": "USD", "reason": "Q4 peak"},
        headers=auth(admin_key),
    )
    assert raised.status_code == 200, raised.text
    assert raised.json()["status"] == "warning" and raised.json()["headroom"] == "2400.00"
    actions = [a.action for a in _audit(container, tid, "finops.budget")]
    assert actions[-2:] == ["finops.budget_changed", "finops.budget.warning"]
    changed = _audit(container, tid, "finops.budget_changed")[0]
    assert changed.before == {"amount": "2500.00", "currency": "USD"} and changed.reason == "Q4 peak"

    training = client.post("/v1/training-runs", json={"dataset_id": "ds_missing"}, headers=auth(t["admin"]))
    assert training.status_code == 404 and training.json()["field"] == "dataset_id"  # past the budget gate
    promote = client.post(f"/v1/models/{candidate}/promote", headers=auth(t["admin"]))
    assert promote.status_code == 200, promote.text


def test_a_new_month_lifts_the_freeze(
    onboard: OnboardFn, container: State, notifier: RecordingNotifier
) -> None:
    t = onboard("month-co")
    tid = t["id"]
    spend(container, tid, "2500", utc(2030, 1, 10))
    january = utc(2030, 1, 20)
    assert container.finops.evaluate(tid, now=january)["status"] == "frozen"
    assert container.finops.budget_state(tid, now=january).status == "frozen"
    with container.factory() as s, pytest.raises(BudgetFrozen):
        require_budget(s, tid, action="start a training run", now=january)

    february = utc(2030, 2, 1, 0, 5)
    result = container.finops.evaluate(tid, now=february)
    assert result["status"] == "ok" and result["transitions"][0]["reason"] == "new month"
    lifted = _audit(container, tid, "finops.budget.ok")[-1]
    assert (
        lifted.reason is not None
        and "new month" in lifted.reason
        and lifted.before
        == {
            "status": "frozen",
            "month": "2030-01",
        }
    )
    assert container.finops.budget_state(tid, now=february) == (
        "ok",
        Decimal("0.00"),
        Decimal(2500),
        Decimal(2500),
    )
    with container.factory() as s:
        assert require_budget(s, tid, action="start a training run", now=february).status == "ok"


def test_a_freeze_past_its_grace_throttles_to_the_floor_rate_until_lifted(
    client: TestClient,
    live_tenant: LiveFn,
    container: State,
    notifier: RecordingNotifier,
    limiter_clock: FakeClock,
    admin_key: str,
) -> None:
    t = live_tenant("throttle-co")
    tid = t["id"]
    finops = container.finops
    finops.settings.freeze_grace_s = 60.0
    t0 = datetime.now(UTC)
    spend(container, tid, "2500", t0)
    assert finops.evaluate(tid, now=t0)["status"] == "frozen"
    assert finops.evaluate(tid, now=t0 + timedelta(seconds=59))["status"] == "frozen"
    assert finops.limiter.limits(tid) is not None and finops.limiter.limits(tid).throttled is False  # type: ignore[union-attr]

    result = finops.evaluate(tid, now=t0 + timedelta(seconds=60))
    assert result["status"] == "throttled" and result["transitions"][0]["to"] == "throttled"
    throttled = _audit(container, tid, "finops.budget.throttled")[0]
    assert throttled.evidence is not None and throttled.evidence["floor_rps"] == 1.0
    limits = finops.limiter.limits(tid)
    assert limits is not None and (limits.rate, limits.burst, limits.throttled) == (1.0, 1.0, True)

    first = client.post("/v1/fraud-check", json=txn("f1"), headers=auth(t["app"]))
    second = client.post("/v1/fraud-check", json=txn("f2"), headers=auth(t["app"]))
    assert first.status_code == 200 and second.status_code == 429
    assert second.headers["Retry-After"] == "1" and "throttled to 1 request(s)/s" in second.json()["detail"]
    limiter_clock.advance(1.0)
    assert client.post("/v1/fraud-check", json=txn("f3"), headers=auth(t["app"])).status_code == 200
    budget = client.get(f"/v1/tenants/{tid}/budget", headers=auth(t["admin"])).json()
    assert budget["throttled"] is True and budget["limits"]["rps"] == 1.0

    raised = client.put(
        f"/v1/tenants/{tid}/budget", json={"amount": "9000", "currency": "USD"}, headers=auth(admin_key)
    )
    assert raised.status_code == 200 and raised.json()["throttled"] is False
    limits = finops.limiter.limits(tid)
    assert limits is not None and (limits.rate, limits.throttled) == (200.0, False)
    statuses = [
        client.post("/v1/fraud-check", json=txn(f"g{i}"), headers=auth(t["app"])).status_code
        for i in range(5)
    ]
    assert statuses == [200] * 5


def test_a_days_cost_far_above_the_recent_days_alerts_once(
    onboard: OnboardFn, container: State, notifier: RecordingNotifier
) -> None:
    t = onboard("spike-co")
    tid = t["id"]
    with unit_of_work(container.factory) as s:
        tenant = s.get(Tenant, tid)
        assert tenant is not None
        tenant.created_at = utc(2029, 12, 1)
    anomalies = _bus(container, ANOMALY_TOPIC)
    today = utc(2030, 1, 20, 15)
    daily = ["10", "11", "9", "10", "12", "10", "9", "11", "10", "10", "11", "9", "10", "10"]
    for back, amount in enumerate(reversed(daily), start=1):
        spend(container, tid, amount, today - timedelta(days=back))
    spend(container, tid, "12", today - timedelta(hours=2))
    assert container.finops.evaluate(tid, now=today)["anomalies"] == []  # an ordinary day

    spend(container, tid, "88", today - timedelta(hours=1))
    assert container.finops.evaluate(tid, now=today)["anomalies"] == ["2030-01-20"]
    assert container.finops.evaluate(tid, now=today + timedelta(hours=1))["anomalies"] == []  # once a day
    assert len(anomalies) == 1
    event = anomalies[0]
    assert event["tenant_id"] == tid and event["cost"] == "100.00" and event["median"] == "10.00"
    assert event["method"] == "robust_z" and Decimal(event["score"]) > Decimal("3.5")
    assert [note.title for _, note in notifier.sent] == ["Fraudrail cost anomaly"]
    assert _audit(container, tid, "finops.cost_anomaly")[0].evidence["day"] == "2030-01-20"  # type: ignore[index]


def test_a_budget_change_is_validated_against_the_tier_cap(
    client: TestClient, onboard: OnboardFn, admin_key: str
) -> None:
    t = onboard("cap-co")
    url = f"/v1/tenants/{t['id']}/budget"
    over = client.put(url, json={"amount": "10000.01", "currency": "USD"}, headers=auth(admin_key))
    assert over.status_code == 422 and over.json()["field"] == "amount" and "10000" in over.json()["detail"]
    euro = client.put(url, json={"amount": "100", "currency": "EUR"}, headers=auth(admin_key))
    assert euro.status_code == 422 and euro.json()["field"] == "currency"
    zero = client.put(url, json={"amount": "0", "currency": "USD"}, headers=auth(admin_key))
    assert zero.status_code == 422
    assert (
        client.put(url, json={"amount": "100", "currency": "USD"}, headers=auth(t["admin"])).status_code
        == 403
    )
    ok = client.put(url, json={"amount": "1200.50", "currency": "USD"}, headers=auth(admin_key))
    assert ok.status_code == 200 and ok.json()["amount"] == "1200.50" and ok.json()["status"] == "ok"
    assert (
        client.get(f"/v1/tenants/{t['id']}", headers=auth(t["admin"])).json()["budget"]["amount"] == "1200.50"
    )
