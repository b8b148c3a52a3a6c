"""The rollback handler: weights first, one record and one notification per rollout, never raises."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping
from typing import Any

import pytest

from lambdas.rollback import handler as rollback_handler
from lambdas.rollback.handler import RollbackDeps, contacts_from_env, handle, lambda_handler
from providers.local.model_host import LocalModelHost
from providers.ports import DeliveryResult, Notification, RollbackRecord
from tests.lambdas.rollback_fixtures import CANARY, STABLE, TENANT, Calls, alarm, sns_event, sns_record
from tests.webhook_sink import Reply, WebhookSink, closed_port_url


def test_alarm_moves_traffic_to_stable_records_once_and_notifies_slack_and_teams(
    deps: RollbackDeps, host: LocalModelHost, sink: WebhookSink, calls: Calls
) -> None:
    result = handle(sns_event(sns_record(alarm())), None, deps)

    assert host.weights(TENANT) == {STABLE: 10_000, CANARY: 0}
    [outcome] = result["results"]
    assert (result["rolled_back"], result["invalid"], result["weights_failed"]) == (1, 0, 0)
    assert outcome["status"] == "rolled_back" and outcome["errors"] == []
    assert outcome["rollback_id"] == "rb_ro_42" and outcome["message_id"] == "msg-1"
    assert [(n["channel"], n["ok"], n["attempts"]) for n in outcome["notifications"]] == [
        ("slack", True, 1),
        ("teams", True, 1),
    ]
    assert all("SECRET" not in n["url"] for n in outcome["notifications"])

    [record] = deps.rollback_log.list(TENANT)
    assert record == RollbackRecord(
        tenant_id=TENANT,
        rollback_id="rb_ro_42",
        at="2025-03-01T10:00:05+00:00",
        reason="canary p95 latency over its SLO for 3 windows",
        evidence={"metric": "p95_latency_ms", "threshold": 250, "observed": 412.5, "window_s": 300},
        weights_after={STABLE: 10_000, CANARY: 0},
    )
    assert [(a["rollout_id"], r.rollback_id) for a, r in calls.rolled_back] == [("ro_42", "rb_ro_42")]
    [(_, delivered)] = calls.notified
    assert [r.ok for r in delivered] == [True, True]

    slack = json.dumps(sink.wait_for(1, path="/slack/T0/B0/SECRET")[0].json)
    teams = json.dumps(sink.wait_for(1, path="/teams/SECRET")[0].json)
    for body in (slack, teams):
        for expected in ("canary p95 latency over its SLO", "p95_latency_ms", "250", "412.5", STABLE, CANARY):
            assert expected in body, (expected, body)
        assert "https://grafana.example/d/rollouts?var-rollout=ro_42" in body
    assert "CRITICAL" in slack  # severity "page" is critical


def test_a_redelivered_event_records_once_and_notifies_once(
    deps: RollbackDeps, host: LocalModelHost, sink: WebhookSink, calls: Calls
) -> None:
    event = sns_event(sns_record(alarm()))
    first = handle(event, None, deps)
    host.set_weights(TENANT, {STABLE: 10_000, CANARY: 0})
    second = handle(event, None, deps)

    assert first["rolled_back"] == 1
    assert (second["rolled_back"], second["duplicate"]) == (0, 1)
    assert second["results"][0]["errors"] == []
    assert len(deps.rollback_log.list(TENANT)) == 1
    assert len(calls.rolled_back) == 1 and len(calls.notified) == 1
    assert len(sink.requests()) == 2  # one Slack, one Teams: the second run posted nothing
    assert host.weights(TENANT) == {STABLE: 10_000, CANARY: 0}


def test_the_same_rollout_twice_in_one_event_counts_once(deps: RollbackDeps, sink: WebhookSink) -> None:
    result = handle(sns_event(sns_record(alarm(), "m1"), sns_record(alarm(), "m2")), None, deps)
    assert [o["status"] for o in result["results"]] == ["rolled_back", "duplicate"]
    assert len(sink.requests()) == 2


def test_weights_change_before_anything_else(deps: RollbackDeps, host: LocalModelHost) -> None:
    order: list[str] = []
    inner_log, inner_notifier = deps.rollback_log, deps.notifier

    class SpyHost:
        def set_weights(self, tenant_id: str, weights: Mapping[str, int]) -> None:
            order.append("set_weights")
            host.set_weights(tenant_id, weights)

    class SpyLog:
        def append(self, record: RollbackRecord) -> bool:
            order.append(f"append:{host.weights(TENANT)[STABLE]}")
            return inner_log.append(record)

    class SpyNotifier:
        def send(self, contacts: Mapping[str, Any], note: Notification) -> list[DeliveryResult]:
            order.append("send")
            return inner_notifier.send(contacts, note)

    def contacts_for(tenant_id: str) -> Mapping[str, Any]:
        order.append("contacts_for")
        return {}

    spied = dataclasses.replace(
        deps,
        model_host=SpyHost(),  # type: ignore[arg-type]
        rollback_log=SpyLog(),  # type: ignore[arg-type]
        notifier=SpyNotifier(),
        contacts_for=contacts_for,
        on_rolled_back=lambda a, r: order.append("on_rolled_back"),
        on_notified=lambda a, r: order.append("on_notified"),
    )
    handle(sns_event(sns_record(alarm())), None, spied)
    assert order == ["set_weights", "append:10000", "on_rolled_back", "contacts_for", "send", "on_notified"]


def test_a_permanently_failing_slack_is_recorded_and_the_weights_still_changed(
    deps: RollbackDeps, host: LocalModelHost, sink: WebhookSink, calls: Calls, sleeps: list[float]
) -> None:
    sink.default("/slack/T0/B0/SECRET", Reply(500, "rollup_error"))
    result = handle(sns_event(sns_record(alarm())), None, deps)

    assert host.weights(TENANT) == {STABLE: 10_000, CANARY: 0}
    assert len(deps.rollback_log.list(TENANT)) == 1
    [outcome] = result["results"]
    assert outcome["status"] == "rolled_back"
    slack, teams = outcome["notifications"]
    assert (slack["ok"], slack["status"], slack["attempts"], slack["error"]) == (
        False,
        500,
        3,
        "HTTP 500: rollup_error",
    )
    assert teams["ok"] is True
    assert any(e.startswith("notify: slack: HTTP 500") for e in outcome["errors"])
    [(_, delivered)] = calls.notified
    assert [(r.channel, r.ok) for r in delivered] == [("slack", False), ("teams", True)]
    assert len(sink.requests("/slack/T0/B0/SECRET")) == 3 and len(sleeps) == 2


def test_an_unreachable_webhook_is_recorded_as_failed(deps: RollbackDeps, host: LocalModelHost) -> None:
    unreachable = dataclasses.replace(
        deps, contacts_for=lambda _t: {"slack_webhook_url": closed_port_url("/services/T/B/X")}
    )
    result = handle(sns_event(sns_record(alarm())), None, unreachable)
    [notification] = result["results"][0]["notifications"]
    assert (notification["ok"], notification["status"], notification["attempts"]) == (False, None, 3)
    assert host.weights(TENANT) == {STABLE: 10_000, CANARY: 0}
    assert len(deps.rollback_log.list(TENANT)) == 1


def test_bad_records_are_reported_and_a_good_one_in_the_same_event_still_runs(
    deps: RollbackDeps, host: LocalModelHost
) -> None:
    incomplete = alarm()
    del incomplete["stable_version"]
    event = sns_event(
        sns_record("{not json", "bad-json"),
        sns_record(incomplete, "bad-fields"),
        {"EventSource": "aws:sqs", "body": "{}"},
        sns_record(alarm(type="rollout.promoted"), "bad-type"),
        sns_record(alarm(severity="sev0"), "bad-severity"),
        sns_record(alarm(), "good"),
    )
    result = handle(event, None, deps)

    statuses = [(o["message_id"], o["status"]) for o in result["results"]]
    assert statuses == [
        ("bad-json", "invalid"),
        ("bad-fields", "invalid"),
        (None, "invalid"),
        ("bad-type", "invalid"),
        ("bad-severity", "invalid"),
        ("good", "rolled_back"),
    ]
    errors = [o["errors"][0] for o in result["results"][:5]]
    assert "not JSON" in errors[0]
    assert "stable_version" in errors[1]
    assert "not from SNS" in errors[2]
    assert "rollout.promoted" in errors[3]
    assert "sev0" in errors[4]
    assert (result["invalid"], result["rolled_back"]) == (5, 1)
    assert host.weights(TENANT) == {STABLE: 10_000, CANARY: 0}


def test_an_event_without_records_is_reported(deps: RollbackDeps) -> None:
    result = handle({"hello": "world"}, None, deps)
    assert result["invalid"] == 1 and result["results"][0]["errors"] == ["event has no Records list"]


def test_a_failed_weight_change_records_nothing_and_pages_about_the_failure(
    deps: RollbackDeps, host: LocalModelHost, sink: WebhookSink, calls: Calls
) -> None:
    result = handle(sns_event(sns_record(alarm(canary_version="mv_unknown"))), None, deps)

    [outcome] = result["results"]
    assert outcome["status"] == "weights_failed"
    assert "set_weights: ProviderError" in outcome["errors"][0]
    assert host.weights(TENANT) == {STABLE: 9_000, CANARY: 1_000}  # unchanged
    assert deps.rollback_log.list(TENANT) == [] and calls.rolled_back == []
    slack = sink.wait_for(1, path="/slack/T0/B0/SECRET")[0].json
    assert "FAILED" in slack["blocks"][0]["text"]["text"]
    assert "CRITICAL" in slack["blocks"][0]["text"]["text"]


def test_callback_failures_are_reported_and_never_block_the_notification(
    deps: RollbackDeps, sink: WebhookSink
) -> None:
    def broken(_alarm: Mapping[str, Any], _record: RollbackRecord) -> None:
        raise RuntimeError("database is down")

    result = handle(sns_event(sns_record(alarm())), None, dataclasses.replace(deps, on_rolled_back=broken))
    [outcome] = result["results"]
    assert outcome["status"] == "rolled_back"
    assert outcome["errors"] == ["on_rolled_back: RuntimeError: database is down"]
    assert len(sink.wait_for(2)) == 2


def test_a_raising_notifier_is_contained(deps: RollbackDeps, host: LocalModelHost, calls: Calls) -> None:
    class Exploding:
        def send(self, contacts: Mapping[str, Any], note: Notification) -> list[DeliveryResult]:
            raise OSError("no route")

    result = handle(sns_event(sns_record(alarm())), None, dataclasses.replace(deps, notifier=Exploding()))
    assert result["results"][0]["errors"] == ["notify: OSError: no route"]
    assert host.weights(TENANT) == {STABLE: 10_000, CANARY: 0}
    assert calls.notified == [(alarm(), [])]


def test_lambda_handler_raises_when_weights_could_not_move_so_lambda_retries(
    deps: RollbackDeps, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(rollback_handler, "_ENV_DEPS", deps)
    with pytest.raises(RuntimeError, match="rollback failed for 1 record"):
        lambda_handler(sns_event(sns_record(alarm(canary_version="mv_unknown"))))
    assert lambda_handler(sns_event(sns_record(alarm())))["rolled_back"] == 1
    assert lambda_handler(sns_event(sns_record("not json")))["invalid"] == 1  # a retry cannot fix it


def test_contacts_from_env_static_json() -> None:
    env = {
        "FRAUDRAIL_ROLLBACK_CONTACTS": json.dumps(
            {
                TENANT: {"slack_webhook_url": "https://hooks.slack.com/x"},
                "*": {"teams_webhook_url": "https://t/x"},
            }
        )
    }
    lookup = contacts_from_env(env)
    assert lookup(TENANT) == {"slack_webhook_url": "https://hooks.slack.com/x"}
    assert lookup("ten_other") == {"teams_webhook_url": "https://t/x"}
    assert contacts_from_env({})("ten_other") == {}


def test_deps_from_env_builds_the_aws_adapters_without_calling_aws(monkeypatch: pytest.MonkeyPatch) -> None:
    from providers.aws import DynamoRollbackLog, SageMakerModelHost
    from providers.webhook_notifier import WebhookNotifier

    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "FRAUDRAIL_AWS_REGION": "eu-west-1",
        "FRAUDRAIL_AWS_ENDPOINT_URL": "http://127.0.0.1:9",
        "FRAUDRAIL_ROLLBACK_CONTACTS": json.dumps({"*": {"email": "ops@example.com"}}),
    }.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("FRAUDRAIL_ROLLBACK_CONTACTS_TABLE", raising=False)
    env_deps = rollback_handler.deps_from_env()
    assert isinstance(env_deps.model_host, SageMakerModelHost)
    assert isinstance(env_deps.rollback_log, DynamoRollbackLog)
    assert isinstance(env_deps.notifier, WebhookNotifier)
    assert env_deps.contacts_for("ten_x") == {"email": "ops@example.com"}


def test_a_failing_rollback_log_still_hands_over_and_notifies(
    deps: RollbackDeps, host: LocalModelHost, sink: WebhookSink, calls: Calls
) -> None:
    class DiskFull:
        def append(self, record: RollbackRecord) -> bool:
            raise OSError("No space left on device")

    failing = dataclasses.replace(deps, rollback_log=DiskFull())  # type: ignore[arg-type]
    result = handle(sns_event(sns_record(alarm())), None, failing)
    [outcome] = result["results"]
    assert outcome["status"] == "rolled_back"
    assert outcome["errors"] == ["rollback_log: OSError: No space left on device"]
    assert host.weights(TENANT) == {STABLE: 10_000, CANARY: 0}
    assert len(calls.rolled_back) == 1 and len(sink.wait_for(2)) == 2
