"""The rollback handler as a subscriber of the in-process event bus."""

from __future__ import annotations

import json

from control_plane.notifications.local_rollback import sns_event, subscribe_rollback_handler
from lambdas.rollback.handler import RollbackDeps, parse_alarm
from providers.local.event_bus import InProcessEventBus
from providers.local.model_host import LocalModelHost
from tests.lambdas.rollback_fixtures import CANARY, STABLE, TENANT, Calls, alarm
from tests.webhook_sink import WebhookSink


def test_sns_event_wraps_a_bus_message_as_sns_delivers_it() -> None:
    event = sns_event(alarm(), "rollout.alarm")
    [record] = event["Records"]
    assert record["EventSource"] == "aws:sns"
    assert json.loads(record["Sns"]["Message"]) == alarm()
    assert record["Sns"]["Timestamp"].endswith("Z")
    assert parse_alarm(record)["rollout_id"] == "ro_42"


def test_publishing_an_alarm_on_the_bus_runs_the_rollback_handler(
    deps: RollbackDeps, host: LocalModelHost, sink: WebhookSink, calls: Calls
) -> None:
    bus = InProcessEventBus()
    subscribe_rollback_handler(bus, deps)

    bus.publish("rollout.alarm", alarm())

    assert host.weights(TENANT) == {STABLE: 10_000, CANARY: 0}  # synchronously, before publish returns
    assert [r.rollback_id for r in deps.rollback_log.list(TENANT)] == ["rb_ro_42"]
    assert len(calls.rolled_back) == 1
    assert {r.path for r in sink.wait_for(2)} == {"/slack/T0/B0/SECRET", "/teams/SECRET"}

    bus.publish("rollout.alarm", alarm())  # the bus delivers it again: recorded and notified once
    bus.publish("rollout.alarm", {"type": "rollout.alarm"})  # malformed: logged, never raised
    bus.publish("rollout.promoted", alarm(rollout_id="ro_other"))  # another topic: not ours
    assert len(deps.rollback_log.list(TENANT)) == 1
    assert len(calls.rolled_back) == 1 and len(sink.requests()) == 2
