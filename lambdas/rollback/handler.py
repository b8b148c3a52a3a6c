"""Rollback handler: an SNS ``rollout.alarm`` moves the tenant's traffic to the stable version.

Per record, in this order (``docs/rollback.md``):

1. weights ``{stable: 10000, canary: 0}`` through ``model_host.set_weights`` -- first, before any
   other I/O;
2. one ``RollbackRecord`` in the rollback log, id ``rb_<rollout_id>``: a redelivered message finds
   it recorded and stops here (the weights are simply re-asserted);
3. ``on_rolled_back(alarm, record)`` (the control plane's audit ledger and rollout state);
4. a notification to the tenant's Slack / Teams webhooks; its results go to
   ``on_notified(alarm, results)``.

Nothing after step 1 can undo or delay it; failures of later steps are reported in the result.
A bad record is reported and the others still run. ``handle`` never raises; ``lambda_handler``
(the AWS entry point) raises only when a weight change failed, so Lambda's retry runs it again.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from providers.ports import (
    DeliveryResult,
    ModelHost,
    Notification,
    Notifier,
    RollbackLog,
    RollbackRecord,
)

log = logging.getLogger(__name__)

ALARM_TYPE = "rollout.alarm"
FULL_WEIGHT = 10_000
SEVERITIES = {"page": "critical", "ticket": "warning", "analysis": "info"}
_STATUSES = ("rolled_back", "duplicate", "weights_failed", "invalid")
_REQUIRED = ("tenant_id", "rollout_id", "stable_version", "canary_version", "reason")

Alarm = Mapping[str, Any]


def _noop_rolled_back(_alarm: Alarm, _record: RollbackRecord) -> None:
    return None


def _noop_notified(_alarm: Alarm, _results: list[DeliveryResult]) -> None:
    return None


def _utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass
class RollbackDeps:
    """What the handler needs; the control plane builds it from its providers, AWS from env."""

    model_host: ModelHost
    rollback_log: RollbackLog
    notifier: Notifier
    contacts_for: Callable[[str], Mapping[str, Any]]
    on_rolled_back: Callable[[Alarm, RollbackRecord], None] = _noop_rolled_back
    on_notified: Callable[[Alarm, list[DeliveryResult]], None] = _noop_notified
    clock: Callable[[], datetime] = field(default=_utcnow)


class InvalidAlarm(ValueError):
    """A record that is not a well-formed ``rollout.alarm``."""


def rollback_id_for(rollout_id: str) -> str:
    """The rollback's id: one per rollout, so a redelivered alarm records (and notifies) once."""
    return f"rb_{rollout_id}"


def parse_alarm(record: Mapping[str, Any]) -> dict[str, Any]:
    """The alarm inside one SNS record, validated; ``InvalidAlarm`` when it is not one."""
    if not isinstance(record, Mapping):
        raise InvalidAlarm("record is not an object")
    source = record.get("EventSource", record.get("eventSource"))
    if source != "aws:sns":
        raise InvalidAlarm(f"record is not from SNS (EventSource={source!r})")
    sns = record.get("Sns")
    if not isinstance(sns, Mapping) or not isinstance(sns.get("Message"), str):
        raise InvalidAlarm("record has no Sns.Message string")
    try:
        alarm = json.loads(sns["Message"])
    except ValueError as exc:
        raise InvalidAlarm(f"Sns.Message is not JSON: {exc}") from exc
    if not isinstance(alarm, dict):
        raise InvalidAlarm("Sns.Message is not a JSON object")
    if alarm.get("type") != ALARM_TYPE:
        raise InvalidAlarm(f"message type is {alarm.get('type')!r}, not {ALARM_TYPE!r}")
    missing = [k for k in _REQUIRED if not isinstance(alarm.get(k), str) or not alarm[k].strip()]
    if missing:
        raise InvalidAlarm(f"missing or empty fields: {', '.join(missing)}")
    if alarm["stable_version"] == alarm["canary_version"]:
        raise InvalidAlarm("stable_version and canary_version are the same version")
    alarm.setdefault("severity", "page")
    if alarm["severity"] not in SEVERITIES:
        raise InvalidAlarm(f"severity {alarm['severity']!r} is not one of {sorted(SEVERITIES)}")
    for name in ("evidence", "links"):
        alarm.setdefault(name, {})
        if not isinstance(alarm[name], dict):
            raise InvalidAlarm(f"{name} is not an object")
    return alarm


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.6g}"
    if isinstance(value, Mapping | list):
        return json.dumps(value, sort_keys=True, default=str)
    return str(value)


def rollback_notification(
    alarm: Alarm, record: RollbackRecord | None, error: str | None = None
) -> Notification:
    """What the tenant's channels are told: the reason, the evidence facts, the links.

    ``error`` set means the weight change itself failed: the message says so, at critical.
    """
    evidence: Mapping[str, Any] = alarm.get("evidence") or {}
    facts: dict[str, str] = {
        "Tenant": str(alarm["tenant_id"]),
        "Rollout": str(alarm["rollout_id"]),
        "Metric": _fmt(evidence.get("metric", "n/a")),
        "Threshold": _fmt(evidence.get("threshold", "n/a")),
        "Observed": _fmt(evidence.get("observed", "n/a")),
        "Stable version": str(alarm["stable_version"]),
        "Canary version": str(alarm["canary_version"]),
    }
    for key, value in evidence.items():
        if key not in ("metric", "threshold", "observed"):
            facts[str(key).replace("_", " ").capitalize()] = _fmt(value)
    if record is not None:
        facts["Weights after"] = _fmt(dict(record.weights_after))
        facts["Rollback id"] = record.rollback_id
        facts["At"] = record.at
    if error is None:
        title = f"Rollout {alarm['rollout_id']} rolled back to {alarm['stable_version']}"
        text = (
            f"{alarm['reason']}. All traffic now goes to {alarm['stable_version']}; "
            f"canary {alarm['canary_version']} gets 0%."
        )
        severity = SEVERITIES[str(alarm["severity"])]
    else:
        title = f"Automatic rollback of rollout {alarm['rollout_id']} FAILED"
        text = (
            f"{alarm['reason']}. Moving traffic to {alarm['stable_version']} failed ({error}); "
            "the canary may still be serving. Roll back by hand."
        )
        severity = "critical"
    links = {str(k): str(v) for k, v in (alarm.get("links") or {}).items()}
    return Notification(title=title, text=text, severity=severity, facts=facts, links=links)


def _delivery_view(result: DeliveryResult) -> dict[str, Any]:
    return {
        "channel": result.channel,
        "url": result.url,
        "ok": result.ok,
        "status": result.status,
        "attempts": result.attempts,
        "error": result.error,
    }


def _notify(
    deps: RollbackDeps, alarm: Alarm, note: Notification, outcome: dict[str, Any]
) -> list[DeliveryResult]:
    tenant_id = str(alarm["tenant_id"])
    try:
        contacts = deps.contacts_for(tenant_id)
        results = deps.notifier.send(contacts, note)
    except Exception as exc:  # a notifier must not raise, but the rollback has happened: report it
        log.exception("notifying tenant %s failed", tenant_id)
        outcome["errors"].append(f"notify: {type(exc).__name__}: {exc}")
        results = []
    outcome["notifications"] = [_delivery_view(r) for r in results]
    if any(not r.ok for r in results):
        outcome["errors"].append(
            "notify: " + "; ".join(f"{r.channel}: {r.error}" for r in results if not r.ok)
        )
    try:
        deps.on_notified(alarm, results)
    except Exception as exc:
        log.exception("on_notified failed for rollout %s", alarm["rollout_id"])
        outcome["errors"].append(f"on_notified: {type(exc).__name__}: {exc}")
    return results


def _roll_back(deps: RollbackDeps, alarm: Alarm, outcome: dict[str, Any]) -> None:
    tenant_id = str(alarm["tenant_id"])
    weights = {str(alarm["stable_version"]): FULL_WEIGHT, str(alarm["canary_version"]): 0}
    try:
        deps.model_host.set_weights(tenant_id, weights)
    except Exception as exc:
        error = f"{type(exc).__name__}: {exc}"
        log.error("rollback of rollout %s (tenant %s) failed: %s", alarm["rollout_id"], tenant_id, error)
        outcome.update(status="weights_failed")
        outcome["errors"].append(f"set_weights: {error}")
        _notify(deps, alarm, rollback_notification(alarm, None, error), outcome)
        return
    outcome.update(status="rolled_back", weights_after=weights)
    record = RollbackRecord(
        tenant_id=tenant_id,
        rollback_id=rollback_id_for(str(alarm["rollout_id"])),
        at=deps.clock().astimezone(UTC).isoformat(),
        reason=str(alarm["reason"]),
        evidence=dict(alarm["evidence"]),
        weights_after=weights,
    )
    outcome["rollback_id"] = record.rollback_id
    try:
        recorded = deps.rollback_log.append(record)
    except Exception as exc:
        # Unknown whether it is a repeat: carry on (an audit or message twice beats none).
        log.exception("rollback log append failed for %s", record.rollback_id)
        outcome["errors"].append(f"rollback_log: {type(exc).__name__}: {exc}")
        recorded = True
    if not recorded:
        log.info("rollback %s already recorded: redelivery, weights re-asserted only", record.rollback_id)
        outcome.update(status="duplicate")
        return
    log.warning(
        "rolled back rollout %s of tenant %s to %s: %s",
        alarm["rollout_id"],
        tenant_id,
        alarm["stable_version"],
        alarm["reason"],
    )
    try:
        deps.on_rolled_back(alarm, record)
    except Exception as exc:
        log.exception("on_rolled_back failed for %s", record.rollback_id)
        outcome["errors"].append(f"on_rolled_back: {type(exc).__name__}: {exc}")
    _notify(deps, alarm, rollback_notification(alarm, record), outcome)


def handle(event: Mapping[str, Any], context: Any = None, deps: RollbackDeps | None = None) -> dict[str, Any]:
    """Roll back every alarm in an SNS event; a per-record outcome, never an exception.

    Outcome statuses: ``rolled_back``, ``duplicate`` (already recorded), ``weights_failed``
    (the weight change raised; notified at critical), ``invalid`` (not a usable alarm).
    """
    del context
    if deps is None:
        deps = _cached_env_deps()
    records = event.get("Records") if isinstance(event, Mapping) else None
    outcomes: list[dict[str, Any]] = []
    if not isinstance(records, list):
        outcomes.append({"index": None, "status": "invalid", "errors": ["event has no Records list"]})
        records = []
    for index, raw in enumerate(records):
        sns = raw.get("Sns") if isinstance(raw, Mapping) else None
        outcome: dict[str, Any] = {
            "index": index,
            "message_id": sns.get("MessageId") if isinstance(sns, Mapping) else None,
            "status": "invalid",
            "errors": [],
        }
        outcomes.append(outcome)
        try:
            alarm = parse_alarm(raw)
        except InvalidAlarm as exc:
            log.error("rollback record %d rejected: %s", index, exc)
            outcome["errors"].append(str(exc))
            continue
        outcome.update(tenant_id=alarm["tenant_id"], rollout_id=alarm["rollout_id"])
        try:
            _roll_back(deps, alarm, outcome)
        except Exception as exc:  # defensive: one record never stops the others
            log.exception("rollback record %d failed", index)
            outcome["errors"].append(f"{type(exc).__name__}: {exc}")
            if outcome["status"] == "invalid":
                outcome["status"] = "weights_failed"
    counts = {s: sum(1 for o in outcomes if o["status"] == s) for s in _STATUSES}
    return {"results": outcomes, **counts}


# ------------------------------------------------------------------------------------- AWS


def lambda_handler(event: Mapping[str, Any], context: Any = None) -> dict[str, Any]:
    """The Lambda entry point: ``handle`` with ``deps_from_env()``; raises if weights could not move.

    Raising makes Lambda retry the asynchronous SNS invocation; the rollback log makes the
    retry record and notify once.
    """
    result = handle(event, context, _cached_env_deps())
    if result["weights_failed"]:
        raise RuntimeError(f"rollback failed for {result['weights_failed']} record(s): {json.dumps(result)}")
    return result


_ENV_DEPS: RollbackDeps | None = None


def _cached_env_deps() -> RollbackDeps:
    global _ENV_DEPS  # built once per Lambda container, reused by warm invocations
    if _ENV_DEPS is None:
        _ENV_DEPS = deps_from_env()
    return _ENV_DEPS


def contacts_from_env(environ: Mapping[str, str] | None = None) -> Callable[[str], Mapping[str, Any]]:
    """Contacts lookup for the Lambda.

    ``FRAUDRAIL_ROLLBACK_CONTACTS``: JSON ``{"<tenant_id>": {contacts}, "*": {fallback}}``, or
    ``FRAUDRAIL_ROLLBACK_CONTACTS_TABLE``: a DynamoDB table keyed ``tenant_id`` whose item has
    ``contacts`` as a JSON string. The table wins when both are set; none means no webhooks.
    """
    env = os.environ if environ is None else environ
    table = env.get("FRAUDRAIL_ROLLBACK_CONTACTS_TABLE")
    static: dict[str, Any] = json.loads(env.get("FRAUDRAIL_ROLLBACK_CONTACTS") or "{}")
    if not table:
        return lambda tenant_id: dict(static.get(tenant_id) or static.get("*") or {})
    import boto3

    dynamodb = boto3.client("dynamodb", region_name=env.get("FRAUDRAIL_AWS_REGION"))

    def lookup(tenant_id: str) -> Mapping[str, Any]:
        item = dynamodb.get_item(
            TableName=table, Key={"tenant_id": {"S": tenant_id}}, ConsistentRead=True
        ).get("Item")
        raw = (item or {}).get("contacts", {}).get("S")
        if raw:
            contacts: dict[str, Any] = json.loads(raw)
            return contacts
        return dict(static.get(tenant_id) or static.get("*") or {})

    return lookup


def deps_from_env() -> RollbackDeps:
    """AWS deps from ``FRAUDRAIL_AWS_*`` settings: SageMaker model host, DynamoDB rollback log.

    Optional ``FRAUDRAIL_ROLLBACK_EVENTS_TOPIC_ARN``: each recorded rollback is also published
    there (``{"type": "rollout.rolled_back", ...}``) so the control plane can write its audit
    ledger and rollout state. Never used by the local path.
    """
    from providers.aws import (
        AwsRuntimeSettings,
        S3ObjectStore,
        build_rollback_log,
        make_clients,
    )
    from providers.aws.factory import build_model_host
    from providers.aws.settings import AwsSettings
    from providers.webhook_notifier import WebhookNotifier

    aws = AwsSettings()
    rt = AwsRuntimeSettings()
    clients = make_clients(aws, max_attempts=rt.max_attempts)
    store = S3ObjectStore(clients.s3, aws.bucket, rt.kms_key_id)
    # set_weights waits for InService; stay inside Lambda's 15-minute ceiling.
    timeout_s = float(os.environ.get("FRAUDRAIL_ROLLBACK_ENDPOINT_TIMEOUT_S", "600"))
    host = build_model_host(clients, aws, rt, store, endpoint_timeout_s=timeout_s)
    on_rolled_back: Callable[[Alarm, RollbackRecord], None] = _noop_rolled_back
    topic_arn = os.environ.get("FRAUDRAIL_ROLLBACK_EVENTS_TOPIC_ARN")
    if topic_arn:
        sns = clients.sns

        def publish_rolled_back(alarm: Alarm, record: RollbackRecord) -> None:
            message = {
                "type": "rollout.rolled_back",
                "tenant_id": record.tenant_id,
                "rollout_id": alarm["rollout_id"],
                "rollback_id": record.rollback_id,
                "at": record.at,
                "reason": record.reason,
                "evidence": dict(record.evidence),
                "weights_after": dict(record.weights_after),
            }
            sns.publish(TopicArn=topic_arn, Message=json.dumps(message, default=str))

        on_rolled_back = publish_rolled_back
    return RollbackDeps(
        model_host=host,
        rollback_log=build_rollback_log(aws, clients),
        notifier=WebhookNotifier(),
        contacts_for=contacts_from_env(),
        on_rolled_back=on_rolled_back,
    )
