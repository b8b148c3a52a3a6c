"""Review queries; every one starts from a tenant. State changes are conditional UPDATEs."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime
from typing import Any

from sqlalchemy import ColumnElement, and_, delete, func, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import InstrumentedAttribute, Session

from control_plane.errors import NotFound
from control_plane.review.cursor import Cursor
from control_plane.review.orm import ReviewItem
from control_plane.review.schemas import ReviewFilter

OPEN, CLAIMED, ESCALATED, DECIDED = "open", "claimed", "escalated", "decided"
UNDECIDED = (OPEN, CLAIMED)
R = ReviewItem


def open_condition(now: datetime) -> ColumnElement[bool]:
    """Unclaimed, or claimed with a lease that has run out."""
    return or_(R.status == OPEN, and_(R.status == CLAIMED, R.claim_expires_at <= now))


def claimed_condition(now: datetime) -> ColumnElement[bool]:
    return and_(R.status == CLAIMED, R.claim_expires_at > now)


def takeable_by(key_id: str, now: datetime) -> ColumnElement[bool]:
    """Open, or claimed by this key (a holder may extend its own claim or decide it)."""
    return or_(open_condition(now), and_(R.status == CLAIMED, R.claimed_by == key_id))


def get(session: Session, tenant_id: str, review_id: str, *, refresh: bool = False) -> ReviewItem:
    stmt = select(R).where(R.tenant_id == tenant_id, R.id == review_id)
    if refresh:
        stmt = stmt.execution_options(populate_existing=True)
    item = session.scalar(stmt)
    if item is None:
        raise NotFound(f"review {review_id} not found", field="review_id")
    return item


def by_flagged_id(session: Session, tenant_id: str, flagged_id: str) -> ReviewItem | None:
    return session.scalar(select(R).where(R.tenant_id == tenant_id, R.flagged_id == flagged_id))


def insert_if_absent(session: Session, values: dict[str, Any]) -> bool:
    """Insert unless (tenant_id, flagged_id) exists; True when inserted (atomic on both backends)."""
    dialect = session.get_bind().dialect.name
    if dialect == "postgresql":
        stmt: Any = (
            postgresql.insert(R)
            .values(**values)
            .on_conflict_do_nothing(index_elements=["tenant_id", "flagged_id"])
        )
    elif dialect == "sqlite":
        stmt = (
            sqlite.insert(R)
            .values(**values)
            .on_conflict_do_nothing(index_elements=["tenant_id", "flagged_id"])
        )
    else:  # pragma: no cover - only PostgreSQL and SQLite are supported
        raise NotImplementedError(dialect)
    result = session.execute(stmt)
    return bool(getattr(result, "rowcount", 0) == 1)


def filter_conditions(tenant_id: str, f: ReviewFilter, now: datetime) -> list[ColumnElement[bool]]:
    conds: list[ColumnElement[bool]] = [R.tenant_id == tenant_id]
    if f.decision is not None:
        conds.append(R.decision == f.decision)
    if f.status == OPEN:
        conds.append(open_condition(now))
    elif f.status == CLAIMED:
        conds.append(claimed_condition(now))
    elif f.status in (ESCALATED, DECIDED):
        conds.append(R.status == f.status)
    if f.ids is not None:
        conds.append(R.id.in_(f.ids))
    if f.score_min is not None:
        conds.append(R.score >= f.score_min)
    if f.score_max is not None:
        conds.append(R.score <= f.score_max)
    if f.amount_min is not None:
        conds.append(R.amount >= f.amount_min)
    if f.amount_max is not None:
        conds.append(R.amount <= f.amount_max)
    if f.since is not None:
        conds.append(R.txn_ts >= f.since)
    if f.until is not None:
        conds.append(R.txn_ts < f.until)
    if f.card_token is not None:
        conds.append(R.card_token == f.card_token)
    if f.terminal_id is not None:
        conds.append(R.terminal_id == f.terminal_id)
    return conds


SORT_COLUMNS: dict[str, InstrumentedAttribute[Any]] = {"score": R.score, "amount": R.amount, "age": R.txn_ts}


def is_descending(sort: str, order: str) -> bool:
    """Age is time since the transaction: the youngest (latest ``txn_ts``) has the smallest age."""
    return (order == "desc") != (sort == "age")


def page(
    session: Session,
    tenant_id: str,
    f: ReviewFilter,
    *,
    now: datetime,
    sort: str,
    order: str,
    after: Cursor | None,
    limit: int,
) -> list[ReviewItem]:
    """One keyset page ordered by (sort column, id), both in the same direction."""
    col = SORT_COLUMNS[sort]
    desc = is_descending(sort, order)
    stmt = select(R).where(*filter_conditions(tenant_id, f, now))
    if after is not None:
        if desc:
            stmt = stmt.where(or_(col < after.value, and_(col == after.value, R.id < after.id)))
        else:
            stmt = stmt.where(or_(col > after.value, and_(col == after.value, R.id > after.id)))
    stmt = stmt.order_by(col.desc(), R.id.desc()) if desc else stmt.order_by(col.asc(), R.id.asc())
    return list(session.scalars(stmt.limit(limit)))


def count(session: Session, tenant_id: str, f: ReviewFilter, *, now: datetime) -> int:
    stmt = select(func.count()).select_from(R).where(*filter_conditions(tenant_id, f, now))
    return int(session.scalar(stmt) or 0)


def oldest_open_since(session: Session, tenant_id: str, *, now: datetime) -> datetime | None:
    """When the longest-waiting open item entered the queue."""
    stmt = select(func.min(R.created_at)).where(R.tenant_id == tenant_id, open_condition(now))
    return session.scalar(stmt)


def matching(
    session: Session, tenant_id: str, f: ReviewFilter, *, now: datetime, limit: int
) -> list[ReviewItem]:
    stmt = select(R).where(*filter_conditions(tenant_id, f, now)).order_by(R.id).limit(limit)
    return list(session.scalars(stmt))


def card_history(
    session: Session, tenant_id: str, card_token: str, *, exclude_id: str, limit: int = 20
) -> list[ReviewItem]:
    stmt = (
        select(R)
        .where(R.tenant_id == tenant_id, R.card_token == card_token, R.id != exclude_id)
        .order_by(R.txn_ts.desc(), R.id.desc())
        .limit(limit)
    )
    return list(session.scalars(stmt))


def _rowcount(result: Any) -> int:
    return int(getattr(result, "rowcount", 0) or 0)


def try_claim(
    session: Session, tenant_id: str, review_id: str, *, key_id: str, now: datetime, until: datetime
) -> bool:
    """One conditional UPDATE: two analysts racing for an item can never both win."""
    result = session.execute(
        update(R)
        .where(R.tenant_id == tenant_id, R.id == review_id, takeable_by(key_id, now))
        .values(status=CLAIMED, claimed_by=key_id, claim_expires_at=until)
        .execution_options(synchronize_session=False)
    )
    return _rowcount(result) == 1


def try_claim_many(
    session: Session, tenant_id: str, ids: Sequence[str], *, key_id: str, now: datetime, until: datetime
) -> int:
    """Claim every listed item still open (or this key's); the caller compares the count."""
    result = session.execute(
        update(R)
        .where(R.tenant_id == tenant_id, R.id.in_(list(ids)), takeable_by(key_id, now))
        .values(status=CLAIMED, claimed_by=key_id, claim_expires_at=until)
        .execution_options(synchronize_session=False)
    )
    return _rowcount(result)


def try_decide(
    session: Session,
    tenant_id: str,
    ids: Sequence[str],
    *,
    key_id: str,
    override: bool,
    verdict: str,
    note: str | None,
    now: datetime,
    require_takeable: bool = False,
) -> int:
    """Decide (or escalate) open or claimed items; without ``override`` only under this key's live
    claim. ``require_takeable`` (bulk verdicts) accepts open items or items claimed by this key.

    ``escalate`` is no final verdict: the item becomes escalated and waits for a tenant-admin.
    """
    if require_takeable:
        allowed = takeable_by(key_id, now)
    elif override:
        allowed = R.status.in_(UNDECIDED)
    else:
        allowed = and_(R.status == CLAIMED, R.claimed_by == key_id, R.claim_expires_at > now)
    values: dict[str, Any] = {"verdict": verdict, "claimed_by": None, "claim_expires_at": None}
    if verdict == "escalate":
        values |= {"status": ESCALATED, "escalated_by": key_id, "escalated_at": now, "escalation_note": note}
    else:
        values |= {"status": DECIDED, "note": note, "decided_by": key_id, "decided_at": now}
    result = session.execute(
        update(R)
        .where(R.tenant_id == tenant_id, R.id.in_(list(ids)), allowed)
        .values(**values)
        .execution_options(synchronize_session=False)
    )
    return _rowcount(result)


def try_resolve(
    session: Session,
    tenant_id: str,
    review_id: str,
    *,
    key_id: str,
    verdict: str,
    note: str | None,
    now: datetime,
) -> bool:
    """An escalated item's final verdict (the escalation's who, when and why stay on the row)."""
    result = session.execute(
        update(R)
        .where(R.tenant_id == tenant_id, R.id == review_id, R.status == ESCALATED)
        .values(status=DECIDED, verdict=verdict, note=note, decided_by=key_id, decided_at=now)
        .execution_options(synchronize_session=False)
    )
    return _rowcount(result) == 1


def try_reopen(session: Session, tenant_id: str, review_id: str) -> bool:
    result = session.execute(
        update(R)
        .where(R.tenant_id == tenant_id, R.id == review_id, R.status.in_((DECIDED, ESCALATED)))
        .values(
            status=OPEN,
            verdict=None,
            note=None,
            decided_by=None,
            decided_at=None,
            escalated_by=None,
            escalated_at=None,
            escalation_note=None,
        )
        .execution_options(synchronize_session=False)
    )
    return _rowcount(result) == 1


def labelled(session: Session, tenant_id: str) -> list[tuple[str, str]]:
    """(txn_id, verdict) of every item decided fraud or legit."""
    stmt = select(R.txn_id, R.verdict).where(
        R.tenant_id == tenant_id, R.status == DECIDED, R.verdict.in_(("fraud", "legit"))
    )
    return [(txn, str(verdict)) for txn, verdict in session.execute(stmt)]


def _day(session: Session, col: InstrumentedAttribute[Any]) -> Any:
    if session.get_bind().dialect.name == "postgresql":
        return func.date(func.timezone("UTC", col))
    return func.date(col)  # SQLite stores UTC text: its date part is the UTC day


def _as_date(value: Any) -> date:
    return value if isinstance(value, date) else date.fromisoformat(str(value)[:10])


def counts_per_day(
    session: Session, tenant_id: str, *, since: datetime
) -> tuple[dict[date, int], dict[date, int]]:
    """Items flagged (ingested) and items decided per UTC day since ``since``."""
    out: list[dict[date, int]] = []
    for col in (R.created_at, R.decided_at):
        day = _day(session, col)
        stmt = (
            select(day, func.count())
            .where(R.tenant_id == tenant_id, col.is_not(None), col >= since)
            .group_by(day)
        )
        out.append({_as_date(d): int(n) for d, n in session.execute(stmt)})
    return out[0], out[1]


# -- offboarding --


def purge_tenant(session: Session, tenant_id: str) -> int:
    items = session.execute(delete(R).where(R.tenant_id == tenant_id))
    return _rowcount(items)


def remaining(session: Session, tenant_id: str, limit: int = 20) -> list[str]:
    items = session.scalars(select(R.id).where(R.tenant_id == tenant_id).limit(limit))
    return list(items)
