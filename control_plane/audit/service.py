"""Append-only audit ledger: every state change records actor, reason, before/after and evidence."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from control_plane.audit.orm import AuditEvent
from control_plane.ids import new_id
from control_plane.principals import display_name_of


def record(
    session: Session,
    *,
    tenant_id: str | None,
    actor: str,
    action: str,
    subject: str,
    reason: str | None = None,
    before: Mapping[str, Any] | None = None,
    after: Mapping[str, Any] | None = None,
    evidence: Mapping[str, Any] | None = None,
) -> AuditEvent:
    """Append one event to the ledger (flushed with the caller's transaction). An ``actor`` taken
    from ``Principal.actor`` also records who it is, readable (``actor_name``)."""
    name = display_name_of(actor)
    event = AuditEvent(
        id=new_id("aud"),
        tenant_id=tenant_id,
        actor=str(actor),
        actor_name=name[:400] if name else None,
        action=action,
        subject=subject,
        reason=reason,
        before=dict(before) if before is not None else None,
        after=dict(after) if after is not None else None,
        evidence=dict(evidence) if evidence is not None else None,
    )
    session.add(event)
    return event


def list_events(
    session: Session,
    *,
    tenant_id: str | None,
    after_seq: int = 0,
    limit: int = 100,
    action: str | None = None,
) -> list[AuditEvent]:
    """Events oldest first; ``tenant_id=None`` means every tenant (platform admins only)."""
    stmt = select(AuditEvent).where(AuditEvent.seq > after_seq)
    if tenant_id is not None:
        stmt = stmt.where(AuditEvent.tenant_id == tenant_id)
    if action is not None:
        stmt = stmt.where(AuditEvent.action == action)
    return list(session.scalars(stmt.order_by(AuditEvent.seq).limit(limit)))
