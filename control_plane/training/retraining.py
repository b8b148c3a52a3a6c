"""Retraining use cases: start one (a person, or the monitoring check's trigger), read them, and
the tenant's opt-in to let a winning challenger start a canary by itself.

A retraining is a row (``retrainings``) driven by the durable ``retraining.run`` job
(``training/retrain_job.py``). It is created with its trigger's figures and audited in the same
transaction; everything it decides later is audited with its figures too.

A drift-triggered retraining is created ``waiting_for_labels``: the new pattern's transactions
have no mature labels yet, so a challenger trained now could not learn it (and would lose, or fail
the gate). Its evidence names the traffic time (``waiting.start_after``) by which enough days of
post-drift traffic will have mature labels; the periodic ``monitoring.check`` queues it then
(``release``). See docs/monitoring.md, "Waiting for labels".
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from control_plane.audit import service as audit
from control_plane.errors import Conflict, InvalidInput, NotFound
from control_plane.ids import new_id
from control_plane.jobs import queue
from control_plane.monitoring import repository as monitoring
from control_plane.registry import service as registry
from control_plane.tenants import repository as tenants
from control_plane.tenants.lifecycle import TenantStatus
from control_plane.training import retrain_data
from control_plane.training.orm import Retraining, RetrainingSettings
from control_plane.training.retraining_notice import enqueue_notice

RETRAIN_JOB = "retraining.run"
TRIGGERS = ("manual", "drift", "performance", "schedule")
WAITING = "waiting_for_labels"
OPEN = (WAITING, "queued", "training")


def open_for(session: Session, tenant_id: str) -> Retraining | None:
    stmt = select(Retraining).where(Retraining.tenant_id == tenant_id, Retraining.status.in_(OPEN))
    return session.scalars(stmt.limit(1)).first()


def latest(session: Session, tenant_id: str) -> Retraining | None:
    stmt = select(Retraining).where(Retraining.tenant_id == tenant_id)
    return session.scalars(stmt.order_by(Retraining.created_at.desc()).limit(1)).first()


def waiting_for(session: Session, tenant_id: str) -> Retraining | None:
    stmt = select(Retraining).where(Retraining.tenant_id == tenant_id, Retraining.status == WAITING)
    return session.scalars(stmt.limit(1)).first()


def start_after(row: Retraining) -> datetime | None:
    """The traffic time from which a waiting retraining may start (None: it does not wait)."""
    waiting = (row.trigger_evidence or {}).get("waiting") or {}
    value = waiting.get("start_after")
    return datetime.fromisoformat(value).astimezone(UTC) if isinstance(value, str) else None


def get(session: Session, tenant_id: str, retraining_id: str) -> Retraining:
    found = session.scalar(
        select(Retraining).where(Retraining.tenant_id == tenant_id, Retraining.id == retraining_id)
    )
    if found is None:
        raise NotFound(f"retraining {retraining_id} not found", field="retraining_id")
    return found


def list_for(session: Session, tenant_id: str, limit: int = 50) -> list[Retraining]:
    stmt = select(Retraining).where(Retraining.tenant_id == tenant_id)
    return list(session.scalars(stmt.order_by(Retraining.created_at.desc()).limit(limit)))


def start(
    session: Session,
    tenant_id: str,
    *,
    trigger: str,
    evidence: Mapping[str, Any],
    actor: str,
    now: datetime,
    cutoff: datetime | None = None,
    model_version: str | None = None,
    wait: Mapping[str, Any] | None = None,
) -> Retraining:
    """Record a retraining of the tenant's champion and queue its job (one open at a time).

    With ``wait`` (``start_after``: an ISO traffic time, and the figures it was computed from) the
    retraining is recorded ``waiting_for_labels`` and queued later by ``release``, unless the
    stored traffic has already reached that time."""
    if trigger not in TRIGGERS:
        raise InvalidInput(f"trigger must be one of {', '.join(TRIGGERS)}", field="trigger")
    tenant = tenants.get(session, tenant_id)
    if tenant.status != TenantStatus.ACTIVE.value:
        raise Conflict(f"tenant is {tenant.status}; retraining needs an ACTIVE tenant", field="status")
    champion = registry.production(session, tenant_id)
    if model_version is not None and (champion is None or champion.id != model_version):
        try:
            registry.get(session, tenant_id, model_version)
        except NotFound as exc:
            raise NotFound(f"model version {model_version} not found", field="model_version") from exc
        # Only the version serving production is retrained (the champion a challenger must beat).
        raise InvalidInput(
            f"{model_version} is not the PRODUCTION version; only the champion is retrained",
            field="model_version",
        )
    if champion is None:
        raise Conflict("the tenant has no PRODUCTION model to retrain", field="model_version")
    running = open_for(session, tenant_id)
    if running is not None and running.status == WAITING and trigger == "manual":
        # A person who asks for a challenger now is not kept waiting by the check's deferral.
        cancel(session, running, now=now, actor=actor, reason="superseded by a person's request")
        running = None
    if running is not None:
        raise Conflict(
            f"retraining {running.id} is still {running.status}", field="retraining",
            extra={"retraining_id": running.id},
        )  # fmt: skip
    last = monitoring.latest_scored(session, tenant_id, None)
    if last is None:
        raise InvalidInput("this tenant has scored no traffic to retrain on", field="cutoff")
    if cutoff is None:
        cutoff = last.astimezone(UTC)
    elif retrain_data.first_scored(session, tenant_id, before=cutoff) is None:
        raise InvalidInput(f"no scored traffic before {cutoff.isoformat()}", field="cutoff")
    waits = wait is not None and datetime.fromisoformat(str(wait["start_after"])) > cutoff
    row = Retraining(
        id=new_id("rt"),
        tenant_id=tenant_id,
        trigger=trigger,
        trigger_evidence={**evidence, "waiting": dict(wait)} if waits and wait else dict(evidence),
        status=WAITING if waits else "queued",
        champion_version=champion.id,
        cutoff=cutoff,
        requested_by=actor[:80],
        created_at=now,
    )
    session.add(row)
    after: dict[str, Any] = {"champion": champion.id, "cutoff": cutoff.isoformat(), "status": row.status}
    if waits and wait:
        after["start_after"] = str(wait["start_after"])
    else:
        after["job"] = _queue(session, row, now)
    audit.record(
        session,
        tenant_id=tenant_id,
        actor=actor,
        action="retraining.triggered",
        subject=row.id,
        reason=trigger,
        after=after,
        evidence=dict(evidence),
    )
    enqueue_notice(session, row, event=WAITING if waits else "triggered")
    return row


def _queue(session: Session, row: Retraining, now: datetime) -> str:
    job = queue.enqueue(
        session,
        kind=RETRAIN_JOB,
        payload={"tenant_id": row.tenant_id, "retraining_id": row.id},
        tenant_id=row.tenant_id,
        max_attempts=3,
        now=now,
    )
    row.job_id = job.id
    return job.id


def cancel(session: Session, row: Retraining, *, now: datetime, actor: str, reason: str) -> None:
    """Close a waiting retraining that will not run (audited, and the admin told why)."""
    row.status, row.finished_at, row.error = "cancelled", now, reason[:500]
    audit.record(
        session, tenant_id=row.tenant_id, actor=actor, action="retraining.cancelled", subject=row.id,
        reason=row.error, before={"status": WAITING}, after={"status": row.status},
    )  # fmt: skip
    enqueue_notice(session, row, event="cancelled")


def release(session: Session, row: Retraining, *, traffic_time: datetime, now: datetime, actor: str) -> str:
    """A waiting retraining whose labels have matured: queue it with the cut-off at the latest
    stored traffic (or cancel it when the champion it was to retrain no longer serves)."""
    champion = registry.production(session, row.tenant_id)
    if champion is None or champion.id != row.champion_version:
        cancel(session, row, now=now, actor=actor, reason="the champion changed while it waited for labels")
        return row.status
    before = {"status": row.status, "cutoff": row.cutoff.isoformat()}
    row.status, row.cutoff = "queued", traffic_time
    job_id = _queue(session, row, now)
    audit.record(
        session, tenant_id=row.tenant_id, actor=actor, action="retraining.labels_matured", subject=row.id,
        reason=row.trigger, before=before,
        after={"status": row.status, "cutoff": traffic_time.isoformat(), "job": job_id},
        evidence={"waiting": (row.trigger_evidence or {}).get("waiting")},
    )  # fmt: skip
    enqueue_notice(session, row, event="triggered")
    return row.status


def settings_of(session: Session, tenant_id: str) -> RetrainingSettings:
    found = session.get(RetrainingSettings, tenant_id)
    if found is None:
        return RetrainingSettings(
            tenant_id=tenant_id, auto_rollout=False, updated_by="default", updated_at=datetime.now(UTC)
        )
    return found


def set_settings(
    session: Session, tenant_id: str, *, auto_rollout: bool, actor: str, now: datetime
) -> RetrainingSettings:
    row = session.get(RetrainingSettings, tenant_id)
    before = None if row is None else {"auto_rollout": row.auto_rollout}
    if row is None:
        row = RetrainingSettings(tenant_id=tenant_id, auto_rollout=auto_rollout, updated_by=actor[:80])
        session.add(row)
    row.auto_rollout, row.updated_by, row.updated_at = auto_rollout, actor[:80], now
    audit.record(
        session,
        tenant_id=tenant_id,
        actor=actor,
        action="retraining.settings_changed",
        subject=tenant_id,
        before=before,
        after={"auto_rollout": auto_rollout},
    )
    return row
