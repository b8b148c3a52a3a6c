"""Analyst review: ingest flagged records, work the queue, record verdicts that become labels.

Services never commit. A verdict, its audit entry and its label's outbox row share the caller's
transaction; a refused bulk verdict raises after its UPDATE, so the caller's rollback undoes it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from pydantic import ValidationError
from sqlalchemy.orm import Session

from control_plane.audit import service as audit
from control_plane.auth.scopes import Principal, Scope
from control_plane.errors import Conflict, Forbidden, InvalidInput
from control_plane.ids import new_id
from control_plane.orm_base import utcnow
from control_plane.review import cursor, labels, repository
from control_plane.review.orm import ReviewItem
from control_plane.review.repository import CLAIMED, DECIDED, ESCALATED, OPEN
from control_plane.review.schemas import FlaggedPayloadIn, ReviewFilter, ReviewQuery
from control_plane.tenancy import tenant_of

HISTORY_LIMIT = 20


def effective_status(item: ReviewItem, now: datetime) -> str:
    """open | claimed | escalated | decided, where a claim whose lease has run out reads as open."""
    if item.status == CLAIMED and item.claim_expires_at is not None and item.claim_expires_at <= now:
        return OPEN
    return item.status


def holds_claim(item: ReviewItem, key_id: str, now: datetime) -> bool:
    return effective_status(item, now) == CLAIMED and item.claimed_by == key_id


def state_of(item: ReviewItem, now: datetime) -> dict[str, Any]:
    live = effective_status(item, now) == CLAIMED
    return {
        "status": effective_status(item, now),
        "claimed_by": item.claimed_by if live else None,
        "claim_expires_at": item.claim_expires_at.isoformat() if live and item.claim_expires_at else None,
        "verdict": item.verdict,
        "decided_by": item.decided_by,
        "escalated_by": item.escalated_by,
    }


# -- ingest --


def ingest(session: Session, tenant_id: str, payload: Mapping[str, Any]) -> ReviewItem:
    """Add a flagged record to the tenant's queue once; a replay returns the existing item unchanged."""
    record = {k: v for k, v in payload.items() if k != "tenant_id"}
    try:
        parsed = FlaggedPayloadIn.model_validate(record)
    except ValidationError as exc:
        first = exc.errors()[0]
        field = ".".join(str(p) for p in first["loc"]) or "payload"
        raise InvalidInput(f"flagged record is invalid: {field}: {first['msg']}", field=field) from exc
    txn = parsed.transaction
    if txn.txn_id != parsed.txn_id:
        raise InvalidInput("flagged record names two transactions", field="transaction.txn_id")
    repository.insert_if_absent(
        session,
        {
            "id": new_id("rev"),
            "tenant_id": tenant_id,
            "flagged_id": parsed.flagged_id,
            "txn_id": parsed.txn_id,
            "decision": parsed.decision,
            "score": parsed.score,
            "amount": txn.amount,
            "currency": txn.currency,
            "card_token": txn.card_token,
            "terminal_id": txn.terminal_id,
            "txn_ts": txn.ts,
            "model_version": parsed.model_version,
            "status": OPEN,
            "payload": record,
            "created_at": utcnow(),
        },
    )
    item = repository.by_flagged_id(session, tenant_id, parsed.flagged_id)
    assert item is not None
    return item


# -- reads --


@dataclass(frozen=True)
class Page:
    items: list[ReviewItem]
    next_cursor: str | None


@dataclass(frozen=True)
class QueueSummary:
    total: int  # items the filter matches
    oldest_open_since: datetime | None  # when the longest-waiting open item was flagged


def summary(session: Session, tenant_id: str, f: ReviewFilter, *, now: datetime) -> QueueSummary:
    """What the queue's header says: the filter's count and how long the open queue has waited."""
    return QueueSummary(
        total=repository.count(session, tenant_id, f, now=now),
        oldest_open_since=repository.oldest_open_since(session, tenant_id, now=now),
    )


def list_reviews(session: Session, tenant_id: str, query: ReviewQuery, *, now: datetime) -> Page:
    after = cursor.decode(query.cursor, query.sort, query.order) if query.cursor else None
    rows = repository.page(
        session,
        tenant_id,
        query,
        now=now,
        sort=query.sort,
        order=query.order,
        after=after,
        limit=query.limit + 1,
    )
    more = len(rows) > query.limit
    rows = rows[: query.limit]
    next_cursor = cursor.encode(rows[-1], query.sort, query.order) if more and rows else None
    return Page(items=rows, next_cursor=next_cursor)


def get(session: Session, tenant_id: str, review_id: str) -> ReviewItem:
    return repository.get(session, tenant_id, review_id)


def item_for(session: Session, principal: Principal, review_id: str, scopes: Iterable[Scope]) -> ReviewItem:
    """The item in the caller's tenant: 404 before any scope check, so other tenants learn nothing."""
    if principal.tenant_id is None:
        raise Forbidden("this route acts for one tenant: use a key of that tenant")
    item = get(session, principal.tenant_id, review_id)
    tenant_of(principal, scopes)
    return item


def act_on_item(
    session: Session,
    principal: Principal,
    review_id: str,
    scopes: Iterable[Scope],
    use_case: Callable[..., ReviewItem],
    *,
    now: datetime,
    **args: Any,
) -> ReviewItem:
    """One use case (``claim``, ``decide``, ``resolve``, ``reopen``) on the caller's item, found as
    ``item_for`` finds it; ``args`` are the use case's own (verdict, note, minutes, reason)."""
    tenant_id = item_for(session, principal, review_id, scopes).tenant_id
    return use_case(session, tenant_id, review_id, principal=principal, now=now, **args)


def card_history(session: Session, item: ReviewItem) -> list[ReviewItem]:
    """The tenant's other review items for the same card, newest first."""
    return repository.card_history(
        session, item.tenant_id, item.card_token, exclude_id=item.id, limit=HISTORY_LIMIT
    )


def neighbours(session: Session, item: ReviewItem, *, now: datetime) -> tuple[str | None, str | None]:
    """The open items just before and after this one in the default queue order (score, high first)."""
    ids: list[str | None] = []
    for order in ("asc", "desc"):
        query = ReviewQuery(status="open", sort="score", order=order, limit=1)
        token = cursor.encode(item, "score", order)
        page = list_reviews(session, item.tenant_id, query.model_copy(update={"cursor": token}), now=now)
        ids.append(page.items[0].id if page.items else None)
    return ids[0], ids[1]


@dataclass(frozen=True)
class DayCount:
    day: date
    flagged: int
    decided: int


def daily_activity(session: Session, tenant_id: str, *, days: int, now: datetime) -> list[DayCount]:
    """Flagged and decided items per UTC day for the last ``days`` days (today included)."""
    first = now.date() - timedelta(days=days - 1)
    since = datetime(first.year, first.month, first.day, tzinfo=now.tzinfo)
    flagged, decided = repository.counts_per_day(session, tenant_id, since=since)
    span = [first + timedelta(days=i) for i in range(days)]
    return [DayCount(d, flagged.get(d, 0), decided.get(d, 0)) for d in span]


def analyst_labels(session: Session, tenant_id: str) -> dict[str, int]:
    """txn_id → 1 (fraud) or 0 (legit) for every decided item; escalations carry no label."""
    return {txn: labels.LABEL_VALUES[verdict] for txn, verdict in repository.labelled(session, tenant_id)}


# -- claims and verdicts --


def _claimed_by_other(item: ReviewItem) -> Conflict:
    expires = item.claim_expires_at.isoformat() if item.claim_expires_at else None
    return Conflict(
        f"review {item.id} is claimed by {item.claimed_by} until {expires}",
        field="claimed_by",
        extra={"claimed_by": item.claimed_by, "claim_expires_at": expires},
    )


def _not_takeable(item: ReviewItem) -> Conflict:
    """Why an item that is no longer open cannot be claimed or decided by this caller."""
    if item.status == ESCALATED:
        return Conflict(
            f"review {item.id} is escalated (by {item.escalated_by}); a tenant-admin resolves it "
            f"with POST /v1/reviews/{item.id}/resolve",
            field="status",
            extra={"review_status": ESCALATED, "escalated_by": item.escalated_by},
        )
    if item.status == DECIDED:
        return _already_decided(item)
    return _claimed_by_other(item)


def _already_decided(item: ReviewItem) -> Conflict:
    return Conflict(
        f"review {item.id} is already decided ({item.verdict} by {item.decided_by}); "
        "a tenant-admin can reopen it",
        field="status",
        extra={"verdict": item.verdict, "decided_by": item.decided_by},
    )


def claim(
    session: Session, tenant_id: str, review_id: str, *, principal: Principal, minutes: int, now: datetime
) -> ReviewItem:
    """Lease the item to this key (or extend its own lease); 409 naming the holder otherwise."""
    item = repository.get(session, tenant_id, review_id)
    before = state_of(item, now)
    until = now + timedelta(minutes=minutes)
    won = repository.try_claim(session, tenant_id, review_id, key_id=principal.key_id, now=now, until=until)
    item = repository.get(session, tenant_id, review_id, refresh=True)
    if not won:
        raise _not_takeable(item)
    audit.record(
        session,
        tenant_id=tenant_id,
        actor=principal.actor,
        action="review.claimed",
        subject=item.id,
        before=before,
        after=state_of(item, now),
        evidence={"minutes": minutes, "extended": before["claimed_by"] == principal.key_id},
    )
    return item


def decide(
    session: Session,
    tenant_id: str,
    review_id: str,
    *,
    principal: Principal,
    verdict: str,
    note: str | None,
    now: datetime,
) -> ReviewItem:
    """Record a verdict: the holder of a live claim, or a tenant-admin (who overrides claims).

    fraud / legit are final; escalate sends the item to the escalated queue for a tenant-admin.
    """
    item = repository.get(session, tenant_id, review_id)
    before = state_of(item, now)
    override = principal.scope is Scope.TENANT_ADMIN
    decided = repository.try_decide(
        session,
        tenant_id,
        [review_id],
        key_id=principal.key_id,
        override=override,
        verdict=verdict,
        note=note,
        now=now,
    )
    item = repository.get(session, tenant_id, review_id, refresh=True)
    if decided != 1:
        if item.status in (DECIDED, ESCALATED):
            raise _not_takeable(item)
        if effective_status(item, now) == CLAIMED and item.claimed_by != principal.key_id:
            raise _claimed_by_other(item)
        lapsed = item.claimed_by == principal.key_id and item.claim_expires_at is not None
        detail = (
            f"your claim on review {item.id} expired at {item.claim_expires_at.isoformat()}; claim it again"
            if lapsed and item.claim_expires_at is not None
            else f"claim review {item.id} before deciding it"
        )
        raise Conflict(detail, field="claimed_by")
    labels.queue_label(session, item, verdict=verdict, decided_at=now)
    audit.record(
        session,
        tenant_id=tenant_id,
        actor=principal.actor,
        action="review.escalated" if verdict == "escalate" else "review.decided",
        subject=item.id,
        reason=note,
        before=before,
        after=state_of(item, now),
        evidence={
            "verdict": verdict,
            "txn_id": item.txn_id,
            "override_claim_of": before["claimed_by"] if before["claimed_by"] != principal.key_id else None,
        },
    )
    return item


def reopen(
    session: Session, tenant_id: str, review_id: str, *, principal: Principal, reason: str, now: datetime
) -> ReviewItem:
    """Put a decided or escalated item back in the open queue (tenant-admin); its old verdict
    stays in the ledger."""
    item = repository.get(session, tenant_id, review_id)
    before = {**state_of(item, now), "note": item.note}
    if not repository.try_reopen(session, tenant_id, review_id):
        raise Conflict(
            f"only a decided or escalated review can be reopened; {review_id} is "
            f"{effective_status(item, now)}",
            field="status",
        )
    item = repository.get(session, tenant_id, review_id, refresh=True)
    audit.record(
        session,
        tenant_id=tenant_id,
        actor=principal.actor,
        action="review.reopened",
        subject=item.id,
        reason=reason,
        before=before,
        after=state_of(item, now),
    )
    return item


def resolve(
    session: Session,
    tenant_id: str,
    review_id: str,
    *,
    principal: Principal,
    verdict: str,
    note: str | None,
    now: datetime,
) -> ReviewItem:
    """A tenant-admin's final verdict on an escalated item; fraud / legit become labels."""
    item = repository.get(session, tenant_id, review_id)
    before = {**state_of(item, now), "escalation_note": item.escalation_note}
    if not repository.try_resolve(
        session, tenant_id, review_id, key_id=principal.key_id, verdict=verdict, note=note, now=now
    ):
        raise Conflict(
            f"only an escalated review can be resolved; {review_id} is {effective_status(item, now)}",
            field="status",
            extra={"review_status": effective_status(item, now)},
        )
    item = repository.get(session, tenant_id, review_id, refresh=True)
    labels.queue_label(session, item, verdict=verdict, decided_at=now)
    audit.record(
        session,
        tenant_id=tenant_id,
        actor=principal.actor,
        action="review.resolved",
        subject=item.id,
        reason=note,
        before=before,
        after=state_of(item, now),
        evidence={"verdict": verdict, "txn_id": item.txn_id, "escalated_by": item.escalated_by},
    )
    return item
