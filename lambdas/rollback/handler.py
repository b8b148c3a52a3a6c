"""The rollback Lambda: each SNS ``rollout.alarm`` goes through ``traffic.handle_alarm``.

A thin adapter (``docs/rollback.md``): it unwraps the SNS records, builds the ports from env
(``lambdas/rollback/env.py``: boto3 only, which the Lambda runtime ships), and hands every alarm
to the code the control plane's reconcile runs too: stable at 100 %, read back and verified, one
``RollbackRecord`` per rollout. The control plane, which receives the same alarm, records the
abort, audits, reaches ROLLED_BACK and notifies Slack / Teams through its job queue.

``lambda_handler`` raises when any weight change failed, after trying every record: Lambda retries
the asynchronous invocation and then hands the event to the dead-letter queue. A retry repeats
nothing that already happened (the weights are re-asserted, the record is stored once). A record
that is not a usable alarm is logged and skipped: no retry can fix it.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from typing import Any

from traffic import AlarmDeps, InvalidAlarm, RolloutAlarm, handle_alarm

log = logging.getLogger(__name__)
log.setLevel(logging.INFO)

STATUSES = ("rolled_back", "duplicate", "failed", "invalid")


class RollbackFailed(RuntimeError):
    """At least one alarm's weight change (or its record) failed: Lambda must retry the event."""

    def __init__(self, result: Mapping[str, Any]) -> None:
        super().__init__(
            f"rollback failed for {result['failed']} record(s): {json.dumps(result, default=str)}"
        )
        self.result = dict(result)


def parse_record(record: object) -> RolloutAlarm:
    """The alarm inside one SNS record; ``InvalidAlarm`` when it is not one."""
    if not isinstance(record, Mapping):
        raise InvalidAlarm("record is not an object")
    source = record.get("EventSource", record.get("eventSource"))
    if source != "aws:sns":
        raise InvalidAlarm(f"record is not from SNS (EventSource={source!r})")
    sns = record.get("Sns")
    if not isinstance(sns, Mapping) or not isinstance(sns.get("Message"), str):
        raise InvalidAlarm("record has no Sns.Message string")
    try:
        message = json.loads(sns["Message"])
    except ValueError as exc:
        raise InvalidAlarm(f"Sns.Message is not JSON: {exc}") from exc
    return RolloutAlarm.from_message(message)


def handle(event: Mapping[str, Any], deps: AlarmDeps) -> dict[str, Any]:
    """Every record of the event, one outcome each; raises ``RollbackFailed`` after the last one
    if any weight change failed."""
    records = event.get("Records") if isinstance(event, Mapping) else None
    outcomes: list[dict[str, Any]] = []
    if not isinstance(records, list):
        outcomes.append({"index": None, "status": "invalid", "error": "event has no Records list"})
        records = []
    for index, raw in enumerate(records):
        sns = raw.get("Sns") if isinstance(raw, Mapping) else None
        outcome: dict[str, Any] = {
            "index": index,
            "message_id": sns.get("MessageId") if isinstance(sns, Mapping) else None,
        }
        outcomes.append(outcome)
        try:
            alarm = parse_record(raw)
        except InvalidAlarm as exc:
            log.error("rollback record %d rejected: %s", index, exc)
            outcome.update(status="invalid", error=str(exc))
            continue
        outcome.update(tenant_id=alarm.tenant_id, rollout_id=alarm.rollout_id)
        try:
            done = handle_alarm(alarm, deps)
        except Exception as exc:  # any failure: the event is retried, the other records still run
            log.error("rollback of rollout %s failed: %s", alarm.rollout_id, exc)
            outcome.update(status="failed", error=f"{type(exc).__name__}: {exc}")
            continue
        outcome.update(
            status="rolled_back" if done.first else "duplicate",
            rollback_id=done.record.rollback_id,
            weights_after=done.weights,
        )
    result = {"results": outcomes, **{s: sum(1 for o in outcomes if o["status"] == s) for s in STATUSES}}
    if result["failed"]:
        raise RollbackFailed(result)
    return result


_ENV_DEPS: AlarmDeps | None = None


def lambda_handler(event: Mapping[str, Any], context: Any = None) -> dict[str, Any]:
    """The configured entry point (``lambdas.rollback.handler.lambda_handler``)."""
    del context
    global _ENV_DEPS  # built once per Lambda container, reused by warm invocations
    if _ENV_DEPS is None:
        from lambdas.rollback.env import deps_from_env

        _ENV_DEPS = deps_from_env()
    return handle(event, _ENV_DEPS)
