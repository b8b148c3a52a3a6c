"""FinOps queries (every one scoped to a tenant unless it is a platform-wide scan)."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from control_plane.finops.orm import BudgetMonth, UsageDaily, UsageEvent
from control_plane.jobs import queue
from control_plane.jobs.orm import Job
from control_plane.tenants.orm import Tenant

ZERO = Decimal("0")
BILLABLE_STATUSES = ("ACTIVE", "SUSPENDED")


def _insert(session: Session, table: Any) -> Any:
    """A dialect insert that supports ``ON CONFLICT`` (PostgreSQL and SQLite share the syntax)."""
    if session.get_bind().dialect.name == "postgresql":
        return postgresql.insert(table)
    return sqlite.insert(table)


def insert_event(session: Session, values: dict[str, Any]) -> bool:
    """Insert one usage event; False when its id was already recorded (the unique key dedups)."""
    stmt = (
        _insert(session, UsageEvent)
        .values(**values)
        .on_conflict_do_nothing(index_elements=["id"])
        .returning(UsageEvent.id)  # rowcount is not reliable here (psycopg reports -1)
    )
    return session.execute(stmt).first() is not None


def add_to_daily(
    session: Session,
    *,
    tenant_id: str,
    day: date,
    meter: str,
    dimension: str,
    quantity: Decimal,
    cost: Decimal,
    now: datetime,
) -> None:
    """Add to the day's rollup atomically (an upsert, safe against a concurrent writer)."""
    table = UsageDaily.__table__
    stmt = _insert(session, UsageDaily).values(
        tenant_id=tenant_id,
        day=day,
        meter=meter,
        dimension=dimension,
        quantity=quantity,
        cost=cost,
        events=1,
        updated_at=now,
    )
    stmt = stmt.on_conflict_do_update(
        index_elements=["tenant_id", "day", "meter", "dimension"],
        set_={
            "quantity": table.c.quantity + stmt.excluded.quantity,
            "cost": table.c.cost + stmt.excluded.cost,
            "events": table.c.events + 1,
            "updated_at": stmt.excluded.updated_at,
        },
    )
    session.execute(stmt)


def existing_event_ids(session: Session, ids: Collection[str]) -> set[str]:
    if not ids:
        return set()
    return set(session.scalars(select(UsageEvent.id).where(UsageEvent.id.in_(list(ids)))))


def daily_rows(session: Session, tenant_id: str, first: date, last: date) -> list[UsageDaily]:
    """Rollup rows of ``first``..``last`` (inclusive), by day then meter."""
    stmt = (
        select(UsageDaily)
        .where(UsageDaily.tenant_id == tenant_id, UsageDaily.day >= first, UsageDaily.day <= last)
        .order_by(UsageDaily.day, UsageDaily.meter, UsageDaily.dimension)
    )
    return list(session.scalars(stmt))


def cost_between(session: Session, tenant_id: str, first: date, last: date) -> Decimal:
    stmt = select(func.coalesce(func.sum(UsageDaily.cost), 0)).where(
        UsageDaily.tenant_id == tenant_id, UsageDaily.day >= first, UsageDaily.day <= last
    )
    return Decimal(str(session.scalar(stmt) or 0))


def daily_costs(session: Session, tenant_id: str, first: date, last: date) -> dict[date, Decimal]:
    stmt = (
        select(UsageDaily.day, func.sum(UsageDaily.cost))
        .where(UsageDaily.tenant_id == tenant_id, UsageDaily.day >= first, UsageDaily.day <= last)
        .group_by(UsageDaily.day)
    )
    return {day: Decimal(str(total)) for day, total in session.execute(stmt).all()}


def get_month(
    session: Session, tenant_id: str, month: str, *, for_update: bool = False
) -> BudgetMonth | None:
    stmt = select(BudgetMonth).where(BudgetMonth.tenant_id == tenant_id, BudgetMonth.month == month)
    if for_update:
        stmt = stmt.with_for_update().execution_options(populate_existing=True)
    return session.scalar(stmt)


def lock_month(
    session: Session, tenant_id: str, month: str, *, budget: Decimal, now: datetime
) -> BudgetMonth:
    """The month's row, created if missing (race-free), locked for this transaction."""
    stmt = (
        _insert(session, BudgetMonth)
        .values(
            tenant_id=tenant_id,
            month=month,
            status="ok",
            budget=budget,
            actual=ZERO,
            forecast=ZERO,
            notified={},
            anomalies={},
            updated_at=now,
        )
        .on_conflict_do_nothing(index_elements=["tenant_id", "month"])
    )
    session.execute(stmt)
    row = get_month(session, tenant_id, month, for_update=True)
    assert row is not None
    return row


def previous_month(session: Session, tenant_id: str, month: str) -> BudgetMonth | None:
    stmt = (
        select(BudgetMonth)
        .where(BudgetMonth.tenant_id == tenant_id, BudgetMonth.month < month)
        .order_by(BudgetMonth.month.desc())
        .limit(1)
    )
    return session.scalar(stmt)


def throttled_tenants(session: Session, month: str) -> set[str]:
    stmt = select(BudgetMonth.tenant_id).where(
        BudgetMonth.month == month, BudgetMonth.throttled_at.is_not(None), BudgetMonth.frozen_at.is_not(None)
    )
    return set(session.scalars(stmt))


def tenant_tiers(session: Session, tenant_ids: Sequence[str] | None = None) -> dict[str, str]:
    stmt = select(Tenant.id, Tenant.tier).where(Tenant.status != "DELETED")
    if tenant_ids is not None:
        stmt = stmt.where(Tenant.id.in_(list(tenant_ids)))
    return {tid: tier for tid, tier in session.execute(stmt).all()}


def billable_tenants(session: Session) -> list[Tenant]:
    return list(
        session.scalars(select(Tenant).where(Tenant.status.in_(BILLABLE_STATUSES)).order_by(Tenant.id))
    )


def finished_jobs(session: Session, kinds: Collection[str], since: datetime) -> list[Job]:
    stmt = (
        select(Job)
        .where(
            Job.kind.in_(list(kinds)),
            Job.status == queue.SUCCEEDED,
            Job.finished_at >= since,
            Job.tenant_id.is_not(None),
        )
        .order_by(Job.finished_at)
    )
    return list(session.scalars(stmt))


def job_queued(session: Session, kind: str, tenant_id: str | None) -> bool:
    stmt = select(Job.id).where(Job.kind == kind, Job.status == queue.QUEUED)
    stmt = stmt.where(Job.tenant_id == tenant_id) if tenant_id else stmt.where(Job.tenant_id.is_(None))
    return session.scalar(stmt.limit(1)) is not None
