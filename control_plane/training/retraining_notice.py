"""The ``retraining.notify`` job: tell the tenant's Slack / Teams webhooks what monitoring found and
what a retraining decided, with the comparison's figures and the link to approve.

Queued in the transaction that records the alert or the decision (so a crash cannot lose it);
delivered by the worker through the ``Notifier`` port. A channel that fails makes the job retry;
channels already delivered are kept in the job's progress and not posted twice.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy.orm import Session

from control_plane.audit import service as audit
from control_plane.db import unit_of_work
from control_plane.errors import NotFound
from control_plane.jobs import queue
from control_plane.jobs.orm import Job
from control_plane.jobs.worker import JobContext
from control_plane.orm_base import utcnow
from control_plane.tenants import repository as tenants
from control_plane.training.orm import Retraining
from providers.ports import DeliveryResult, Notification, Notifier, ProviderError

NOTIFY_JOB = "retraining.notify"
ACTOR = "system:retraining-notifier"
CHANNELS = ("slack_webhook_url", "teams_webhook_url")
HEADLINES = {
    "triggered": ("Model monitoring: retraining {champion}", "warning"),
    "waiting_for_labels": ("Model monitoring: {champion} drifted; retraining once labels mature", "warning"),
    "cancelled": ("Retraining of {champion} cancelled", "info"),
    "canary": ("Challenger {challenger} beat {champion}: canary started", "info"),
    "awaiting_approval": ("Challenger {challenger} beat {champion}: approve it to roll out", "warning"),
    "champion_kept": ("Challenger {challenger} did not beat {champion}: champion kept", "info"),
    "rejected": ("Retrained challenger {challenger} failed its evaluation gate", "warning"),
    "failed": ("Retraining of {champion} failed", "critical"),
    "skipped": ("Retraining of {champion} skipped: no new labelled traffic yet", "info"),
}


def enqueue_notice(session: Session, row: Retraining, *, event: str) -> Job:
    return queue.enqueue(
        session,
        kind=NOTIFY_JOB,
        payload={"tenant_id": row.tenant_id, "retraining_id": row.id, "event": event},
        tenant_id=row.tenant_id,
        now=utcnow(),
    )


def _fmt(value: Any) -> str:
    return "n/a" if value is None else (f"{value:.4f}" if isinstance(value, float) else str(value))


def notification(row: Retraining, event: str) -> Notification:
    title, severity = HEADLINES[event]
    title = title.format(champion=row.champion_version, challenger=row.challenger_version or "?")
    facts: dict[str, str] = {
        "Tenant": row.tenant_id,
        "Retraining": row.id,
        "Trigger": row.trigger,
        "Champion": str(row.champion_version),
    }
    for v in (row.trigger_evidence or {}).get("violations", []):
        facts[f"Trigger {v['rule']}"] = str(v["message"])
    if row.challenger_version:
        facts["Challenger"] = row.challenger_version
    comparison = row.comparison or {}
    if comparison:
        facts["Window"] = f"{comparison.get('window_start')} .. {comparison.get('window_end')}"
        facts["Transactions / frauds"] = f"{comparison.get('transactions')} / {comparison.get('fraud')}"
        for metric in ("average_precision", "recall", "precision", "flagged"):
            champ, chall = comparison["champion"].get(metric), comparison["challenger"].get(metric)
            facts[metric.replace("_", " ").capitalize()] = (
                f"champion {_fmt(champ)} -> challenger {_fmt(chall)}"
            )
    for v in (row.decision or {}).get("violations", []):
        facts[f"Gate {v['rule']}"] = str(v["message"])
    if row.error:
        facts["Error"] = row.error
    links = {"retraining": f"/v1/retraining/{row.id}"}
    if event == "awaiting_approval" or event == "champion_kept":
        links["approve"] = f"/v1/models/{row.challenger_version}/approve"
        facts["Approve"] = f"POST {links['approve']} (tenant admin), then POST /v1/rollouts"
    if row.rollout_id:
        links["rollout"] = f"/v1/rollouts/{row.rollout_id}"
    text = {
        "triggered": "Monitoring found the model outside its tier's policy; a challenger is being trained.",
        "canary": "The challenger won by the policy's margin and the tenant opted in: a canary is running "
        "under the rollout guardrails.",
        "awaiting_approval": "The challenger won by the policy's margin; approve it (POST the approve link) "
        "and start a rollout.",
        "champion_kept": "The challenger did not win by the policy's margin; it stays CANDIDATE.",
        "rejected": "The challenger is REJECTED; the champion keeps serving.",
        "failed": "The champion keeps serving.",
        "skipped": "The champion keeps serving; the next trigger retrains once the traffic since its "
        "training has mature labels.",
        "waiting_for_labels": "The traffic moved away from the champion's training data. A challenger "
        "cannot learn the new pattern before its transactions have mature labels: the retraining "
        "starts by itself once the stored traffic reaches the time below.",
        "cancelled": "The champion keeps serving.",
    }[event]
    waiting = (row.trigger_evidence or {}).get("waiting") or {}
    if event == "waiting_for_labels" and waiting:
        facts["Starts at (traffic time)"] = str(waiting.get("start_after"))
        facts["Drift seen from"] = str(waiting.get("drift_since"))
    if event == "triggered" and row.trigger == "manual":
        title = f"Retraining of {row.champion_version} requested"
        reason = (row.trigger_evidence or {}).get("reason", "")
        text = f"{row.requested_by} asked for a challenger: {reason}"
    return Notification(title=title, text=text, severity=severity, facts=facts, links=links)


class NotifyRetraining:
    """Job handler of ``retraining.notify``: one post per channel, a delivered channel never again."""

    def __init__(self, notifier: Notifier) -> None:
        self.notifier = notifier

    def run(self, ctx: JobContext) -> Mapping[str, Any]:
        tenant_id, event = str(ctx.payload["tenant_id"]), str(ctx.payload["event"])
        with unit_of_work(ctx.factory) as session:
            row = session.get(Retraining, str(ctx.payload["retraining_id"]))
            if row is None or row.tenant_id != tenant_id:
                return {"skipped": "retraining gone (tenant offboarded)"}
            note = notification(row, event)
            try:
                contacts = dict(tenants.get(session, tenant_id).contacts or {})
            except NotFound:
                contacts = {}
            delivered = set(queue.get_job(session, ctx.job_id, tenant_id=None).progress.get("delivered", []))
        results: list[DeliveryResult] = []
        failed: list[str] = []
        for channel in CHANNELS:
            if channel in delivered or not contacts.get(channel):
                continue
            sent = self.notifier.send({channel: contacts[channel]}, note)
            results.extend(sent)
            if all(r.ok for r in sent):
                delivered.add(channel)
            else:
                failed.extend(f"{r.channel}: {r.error}" for r in sent if not r.ok)
        ctx.progress("notified", 100.0 if not failed else 50.0, delivered=sorted(delivered))
        deliveries = [
            {"channel": r.channel, "ok": r.ok, "status": r.status, "error": r.error} for r in results
        ]
        with unit_of_work(ctx.factory) as session:
            audit.record(
                session, tenant_id=tenant_id, actor=ACTOR, action="retraining.notified",
                subject=str(ctx.payload["retraining_id"]), reason=event,
                evidence={"title": note.title, "deliveries": deliveries},
            )  # fmt: skip
        if failed:
            raise ProviderError(f"notification not delivered ({'; '.join(failed)}); retrying")
        return {"event": event, "deliveries": deliveries}

    def on_exhausted(self, ctx: JobContext, session: Session, error: str) -> None:
        audit.record(
            session, tenant_id=ctx.tenant_id, actor=ACTOR, action="retraining.notify_failed",
            subject=str(ctx.payload.get("retraining_id")), reason=error,
        )  # fmt: skip
