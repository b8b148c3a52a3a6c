"""FinOps tables: usage events (deduplicated by id), daily rollups, per-month budget state.

No foreign key to ``tenants``: usage and budget history are billing records and outlive an
offboarded tenant, like the audit ledger.
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import JSON, Date, Index, Numeric, String
from sqlalchemy.orm import Mapped, mapped_column

from control_plane.orm_base import Base, UTCDateTime, utcnow

QUANTITY = Numeric(24, 6)
MONEY = Numeric(24, 6)  # sub-cent: one fraud check costs a fraction of a cent


class UsageEvent(Base):
    """One metered quantity. The id is deterministic at the source, so a replay is a no-op."""

    __tablename__ = "finops_usage_events"
    __table_args__ = (Index("ix_finops_usage_events_tenant_day", "tenant_id", "day"),)

    id: Mapped[str] = mapped_column(String(160), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(String(40))
    meter: Mapped[str] = mapped_column(String(30))
    dimension: Mapped[str] = mapped_column(String(30))  # the tier or hosting kind it is priced at
    quantity: Mapped[Decimal] = mapped_column(QUANTITY)
    unit_price: Mapped[Decimal] = mapped_column(Numeric(24, 8))
    cost: Mapped[Decimal] = mapped_column(MONEY)
    day: Mapped[date] = mapped_column(Date)
    occurred_at: Mapped[datetime] = mapped_column(UTCDateTime)
    source: Mapped[str] = mapped_column(String(40))
    recorded_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class UsageDaily(Base):
    """Sum of a tenant's events per UTC day, meter and price dimension (written with the event)."""

    __tablename__ = "finops_usage_daily"

    tenant_id: Mapped[str] = mapped_column(String(40), primary_key=True)
    day: Mapped[date] = mapped_column(Date, primary_key=True)
    meter: Mapped[str] = mapped_column(String(30), primary_key=True)
    dimension: Mapped[str] = mapped_column(String(30), primary_key=True)
    quantity: Mapped[Decimal] = mapped_column(QUANTITY)
    cost: Mapped[Decimal] = mapped_column(MONEY)
    events: Mapped[int] = mapped_column(default=0)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class BudgetMonth(Base):
    """A tenant's budget state for one calendar month (``YYYY-MM``); a new month starts clean."""

    __tablename__ = "finops_budget_months"

    tenant_id: Mapped[str] = mapped_column(String(40), primary_key=True)
    month: Mapped[str] = mapped_column(String(7), primary_key=True)
    status: Mapped[str] = mapped_column(String(12), default="ok")  # ok | warning | frozen | throttled
    budget: Mapped[Decimal] = mapped_column(Numeric(18, 2))
    actual: Mapped[Decimal] = mapped_column(MONEY)
    forecast: Mapped[Decimal] = mapped_column(MONEY)
    # threshold -> {"claimed_at", "delivered_at", "deliveries"}: each notifies once a month
    notified: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    # day (ISO) -> the anomaly's figures: each day alerts once
    anomalies: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    frozen_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
    throttled_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
    evaluated_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)
