"""Bulk claims and verdicts on the items a filter (or a selection of ids) matches: all or nothing.

Every matched item must be open or claimed by the caller, otherwise 409 lists the blockers and
nothing changes. The UPDATE repeats that condition, so an item taken between the read and the
write makes the count fall short: the service raises after its UPDATE and the caller's rollback
undoes it (services never commit).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from control_plane.audit import service as audit
from control_plane.auth.scopes import Principal
from control_plane.errors import Conflict, InvalidInput
from control_plane.ids import new_id
from control_plane.review import labels, repository
from control_plane.review.orm import ReviewItem
from control_plane.review.repository import DECIDED, ESCALATED, OPEN
from control_plane.review.schemas import BULK_MAX, BulkClaimRequest, BulkVerdictRequest, ReviewFilter
from control_plane.review.service import effective_status, holds_claim, state_of


def _blocker(item: ReviewItem, now: datetime) -> dict[str, Any]:
    return {"id": item.id, **state_of(item, now)}


def _takeable(
    session: Session,
    tenant_id: str,
    f: ReviewFilter,
    expected_count: int | None,
    *,
    key_id: str,
    now: datetime,
) -> list[ReviewItem]:
    """The matched items, once it is known that every one of them may be taken by this key."""
    items = repository.matching(session, tenant_id, f, now=now, limit=BULK_MAX + 1)
    if len(items) > BULK_MAX:
        raise InvalidInput(f"the filter matches more than {BULK_MAX} items; narrow it", field="filter")
    if expected_count is not None and len(items) != expected_count:
        raise Conflict(
            f"the filter matches {len(items)} items, not the expected {expected_count}; nothing was changed",
            field="expected_count",
            extra={"matched": len(items)},
        )
    blockers = [
        _blocker(i, now)
        for i in items
        if not (effective_status(i, now) == OPEN or holds_claim(i, key_id, now))
    ]
    if blockers:
        raise Conflict(
            f"{len(blockers)} of {len(items)} matched items are decided, escalated or claimed by "
            "someone else; nothing was changed",
            field="filter",
            extra={"blockers": blockers[:100], "blocker_count": len(blockers), "matched": len(items)},
        )
    return items


def _fell_short(matched: int, changed: int) -> Conflict:
    return Conflict(
        "some matched items were claimed or decided meanwhile; nothing was changed, try again",
        field="filter",
        extra={"matched": matched, "changed": changed},
    )


def _reload(session: Session, tenant_id: str, ids: list[str]) -> list[ReviewItem]:
    return list(
        session.scalars(
            select(ReviewItem)
            .where(ReviewItem.tenant_id == tenant_id, ReviewItem.id.in_(ids))
            .order_by(ReviewItem.id)
            .execution_options(populate_existing=True)
        )
    )


def bulk_claim(
    session: Session, tenant_id: str, request: BulkClaimRequest, *, principal: Principal, now: datetime
) -> list[ReviewItem]:
    """Claim every matched item for this key, or none (409 listing the blockers)."""
    key_id = principal.key_id
    items = _takeable(session, tenant_id, request.filter, request.expected_count, key_id=key_id, now=now)
    ids = [i.id for i in items]
    before = {i.id: state_of(i, now) for i in items}
    until = now + timedelta(minutes=request.minutes)
    changed = repository.try_claim_many(session, tenant_id, ids, key_id=key_id, now=now, until=until)
    if changed != len(ids):
        raise _fell_short(len(ids), changed)
    bulk_id = new_id("bulk")
    claimed = _reload(session, tenant_id, ids)
    for item in claimed:
        audit.record(
            session,
            tenant_id=tenant_id,
            actor=principal.actor,
            action="review.claimed",
            subject=item.id,
            before=before[item.id],
            after=state_of(item, now),
            evidence={"minutes": request.minutes, "bulk_id": bulk_id},
        )
    return claimed


def bulk_decide(
    session: Session, tenant_id: str, request: BulkVerdictRequest, *, principal: Principal, now: datetime
) -> list[ReviewItem]:
    """One verdict for every item the filter matches, or for none (409 listing the blockers).

    ``escalate`` sends every matched item to the escalated queue (no labels).
    """
    f: ReviewFilter = request.filter
    key_id = principal.key_id
    items = _takeable(session, tenant_id, f, request.expected_count, key_id=key_id, now=now)
    ids = [i.id for i in items]
    before = {i.id: state_of(i, now) for i in items}
    changed = repository.try_decide(
        session,
        tenant_id,
        ids,
        key_id=key_id,
        override=False,
        verdict=request.verdict,
        note=request.note,
        now=now,
        require_takeable=True,
    )
    if changed != len(ids):
        raise _fell_short(len(ids), changed)
    bulk_id = new_id("bulk")
    decided = _reload(session, tenant_id, ids)
    escalating = request.verdict == "escalate"
    for item in decided:
        labels.queue_label(session, item, verdict=request.verdict, decided_at=now)
        audit.record(
            session,
            tenant_id=tenant_id,
            actor=principal.actor,
            action="review.escalated" if escalating else "review.decided",
            subject=item.id,
            reason=request.note,
            before=before[item.id],
            after=state_of(item, now),
            evidence={"verdict": request.verdict, "txn_id": item.txn_id, "bulk_id": bulk_id},
        )
    audit.record(
        session,
        tenant_id=tenant_id,
        actor=principal.actor,
        action="review.bulk_decided",
        subject=bulk_id,
        reason=request.note,
        before={"statuses": sorted({b["status"] for b in before.values()})},
        after={"status": ESCALATED if escalating else DECIDED, "verdict": request.verdict},
        evidence={"filter": f.criteria(), "count": len(ids), "ids": ids},
    )
    return decided
