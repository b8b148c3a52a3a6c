"""The ``rollout.notify`` job: tell the tenant's Slack and Teams that a rollout rolled back (or failed to).

Queued in the transaction that records the state change (``enqueue_rollback_notice``), so a crash
cannot lose it; delivered by the worker through the ``Notifier`` port, never inside a publish or
an HTTP request. A channel that fails makes the job fail and retry (with the queue's backoff);
channels already delivered are kept in the job's progress and not posted twice.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from control_plane.audit import service as audit
from control_plane.db import unit_of_work
from control_plane.errors import NotFound
from control_plane.jobs import queue
from control_plane.jobs.orm import Job
from control_plane.jobs.worker import JobContext
from control_plane.tenants import repository as tenants
from providers.ports import DeliveryResult, Notification, Notifier, ProviderError
from traffic import RolloutAlarm

NOTIFY_JOB = "rollout.notify"
ACTOR = "system:rollout-notifier"
CHANNELS = ("slack_webhook_url", "teams_webhook_url")
SEVERITIES = {"page": "critical", "ticket": "warning", "analysis": "info"}


def enqueue_rollback_notice(
    session: Session,
    alarm: RolloutAlarm,
    *,
    now: datetime,
    rollback_id: str | None = None,
    weights_after: Mapping[str, int] | None = None,
    error: str | None = None,
) -> Job:
    """Queue the notice in the caller's transaction: rolled back, or (``error``) the rollback failed."""
    payload: dict[str, Any] = {
        "tenant_id": alarm.tenant_id,
        "rollout_id": alarm.rollout_id,
        "alarm": alarm.to_message(),
        "rollback_id": rollback_id,
        "at": now.isoformat(),
        "weights_after": dict(weights_after or {}),
        "error": error,
    }
    return queue.enqueue(session, kind=NOTIFY_JOB, payload=payload, tenant_id=alarm.tenant_id, now=now)


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.6g}"
    if isinstance(value, Mapping | list):
        return json.dumps(value, sort_keys=True, default=str)
    return str(value)


def rollback_notification(alarm: RolloutAlarm, notice: Mapping[str, Any]) -> Notification:
    """What the channels are told: the reason, the evidence facts, the weights read back, the links."""
    evidence = alarm.evidence
    facts: dict[str, str] = {
        "Tenant": alarm.tenant_id,
        "Rollout": alarm.rollout_id,
        "Metric": _fmt(evidence.get("metric", "n/a")),
        "Threshold": _fmt(evidence.get("threshold", "n/a")),
        "Observed": _fmt(evidence.get("observed", "n/a")),
        "Stable version": alarm.stable_version,
        "Canary version": alarm.canary_version,
    }
    for key, value in evidence.items():
        if key not in ("metric", "threshold", "observed"):
            facts[str(key).replace("_", " ").capitalize()] = _fmt(value)
    error = notice.get("error")
    if error is None:
        facts["Weights after"] = _fmt(dict(notice.get("weights_after") or {}))
        facts["Rollback id"] = str(notice.get("rollback_id"))
        facts["At"] = str(notice.get("at"))
        title = f"Rollout {alarm.rollout_id} rolled back to {alarm.stable_version}"
        text = (
            f"{alarm.reason}. All traffic now goes to {alarm.stable_version}; "
            f"canary {alarm.canary_version} gets 0%."
        )
        severity = SEVERITIES.get(alarm.severity, "critical")
    else:
        title = f"Automatic rollback of rollout {alarm.rollout_id} FAILED"
        text = (
            f"{alarm.reason}. Moving traffic to {alarm.stable_version} failed ({error}); "
            "the canary may still be serving. Roll back by hand."
        )
        severity = "critical"
    return Notification(title=title, text=text, severity=severity, facts=facts, links=dict(alarm.links))


def _delivery_view(result: DeliveryResult) -> dict[str, Any]:
    return {
        "channel": result.channel,
        "url": result.url,
        "ok": result.ok,
        "status": result.status,
        "attempts": result.attempts,
        "error": result.error,
    }


class NotifyRollout:
    """Job handler of ``rollout.notify``: one post per channel, a delivered channel never again."""

    def __init__(self, notifier: Notifier) -> None:
        self.notifier = notifier

    def run(self, ctx: JobContext) -> Mapping[str, Any]:
        alarm = RolloutAlarm.from_message(ctx.payload["alarm"])
        note = rollback_notification(alarm, ctx.payload)
        with unit_of_work(ctx.factory) as session:
            try:
                contacts = dict(tenants.get(session, alarm.tenant_id).contacts or {})
            except NotFound:
                contacts = {}
            delivered = set(queue.get_job(session, ctx.job_id, tenant_id=None).progress.get("delivered", []))
        extras = {k: v for k, v in contacts.items() if k not in CHANNELS}
        results: list[DeliveryResult] = []
        failed: list[str] = []
        for channel in CHANNELS:
            if channel in delivered or not contacts.get(channel):
                continue
            sent = self.notifier.send({channel: contacts[channel], **extras}, note)
            results.extend(sent)
            if all(r.ok for r in sent):
                delivered.add(channel)
            else:
                failed.extend(f"{r.channel}: {r.error}" for r in sent if not r.ok)
        deliveries = [_delivery_view(r) for r in results]
        ctx.progress("notified", 100.0 if not failed else 50.0, delivered=sorted(delivered))
        with unit_of_work(ctx.factory) as session:
            audit.record(
                session,
                tenant_id=alarm.tenant_id,
                actor=ACTOR,
                action="rollout.notified",
                subject=alarm.rollout_id,
                reason="rollback failed" if ctx.payload.get("error") else "rolled back",
                evidence={"deliveries": deliveries, "attempt": ctx.attempt},
            )
        if failed:
            raise ProviderError(f"notification not delivered ({'; '.join(failed)}); retrying")
        return {"deliveries": deliveries}

    def on_exhausted(self, ctx: JobContext, session: Session, error: str) -> None:
        audit.record(
            session,
            tenant_id=ctx.tenant_id,
            actor=ACTOR,
            action="rollout.notify_failed",
            subject=str(ctx.payload.get("rollout_id")),
            reason=error,
        )
