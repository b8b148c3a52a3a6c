"""Monitoring tables: drift counts per hour, the transactions a tenant scored, delayed labels.

No foreign key to ``tenants``: rows are written by a serving process's flush, which may run after
a tenant's row is gone (offboarding), and a flush must never fail on that.
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import JSON, Float, Index, Integer, Numeric, String
from sqlalchemy.orm import Mapped, mapped_column

from control_plane.orm_base import Base, UTCDateTime, utcnow


class DriftBucket(Base):
    """One process's counts of one (tenant, version, cohort) in one hour of transaction time.

    Each serving process owns its rows (``writer``), so its flush adds to them without racing
    another process; a report sums the writers.
    """

    __tablename__ = "drift_buckets"

    tenant_id: Mapped[str] = mapped_column(String(40), primary_key=True)
    model_version: Mapped[str] = mapped_column(String(40), primary_key=True)
    cohort: Mapped[str] = mapped_column(String(20), primary_key=True)
    hour_start: Mapped[datetime] = mapped_column(UTCDateTime, primary_key=True)
    writer: Mapped[str] = mapped_column(String(40), primary_key=True)
    volume: Mapped[int] = mapped_column(Integer)
    feature_counts: Mapped[dict[str, list[int]]] = mapped_column(JSON)
    score_counts: Mapped[list[int]] = mapped_column(JSON)
    decisions: Mapped[dict[str, int]] = mapped_column(JSON)
    # Data-quality violations per feature: {"nulls": {...}, "out_of_range": {...}, "unseen": {...}}
    quality: Mapped[dict[str, Any]] = mapped_column(JSON)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class ScoredTransaction(Base):
    """What a delayed label is joined with: every answered check (LEGIT ones included), written in
    batches by the monitoring flush (nothing else durable records a LEGIT check)."""

    __tablename__ = "scored_transactions"
    __table_args__ = (
        Index("ix_scored_transactions_tenant_ts", "tenant_id", "ts"),
        # The card history: one seek per day of the window. Keyed by day first so a flush's inserts
        # land in today's corner of the index: a (tenant, card, ts) index took every insert to a
        # random page of an index as large as the table, and its cost grew with it (9 -> 20 us a
        # row over 300,000 rows on SQLite). With the day first the part inserts touch is one day's
        # traffic, not the whole retention (docs/monitoring.md).
        Index("ix_scored_transactions_day_card", "tenant_id", "day", "card_token"),
    )

    tenant_id: Mapped[str] = mapped_column(String(40), primary_key=True)
    txn_id: Mapped[str] = mapped_column(String(80), primary_key=True)
    ts: Mapped[datetime] = mapped_column(UTCDateTime)
    amount: Mapped[Decimal] = mapped_column(Numeric(18, 2))
    card_token: Mapped[str] = mapped_column(String(128))
    terminal_id: Mapped[str] = mapped_column(String(80))
    score: Mapped[float] = mapped_column(Float)
    decision: Mapped[str] = mapped_column(String(20))
    model_version: Mapped[str | None] = mapped_column(String(40))
    cohort: Mapped[str] = mapped_column(String(20))
    # Days since 1970-01-01 of ``ts`` (UTC): the card history's index key. Written by every insert
    # (the ORM's default below; the monitoring flush passes it); NULL only for a row no path writes.
    day: Mapped[int | None] = mapped_column(
        Integer, default=lambda ctx: epoch_day(ctx.get_current_parameters()["ts"])
    )


def epoch_day(ts: datetime) -> int:
    """Whole days since 1970-01-01 UTC (floored, also before 1970)."""
    return (ts - EPOCH).days


EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


class TransactionLabel(Base):
    """A delayed label (chargeback, confirmed fraud, confirmed legit), one per (tenant, txn, source)."""

    __tablename__ = "transaction_labels"
    __table_args__ = (Index("ix_transaction_labels_tenant_known", "tenant_id", "known_at"),)

    tenant_id: Mapped[str] = mapped_column(String(40), primary_key=True)
    txn_id: Mapped[str] = mapped_column(String(80), primary_key=True)
    source: Mapped[str] = mapped_column(String(40), primary_key=True)
    label: Mapped[str] = mapped_column(String(20))  # fraud | legit | chargeback
    known_at: Mapped[datetime] = mapped_column(UTCDateTime)
    recorded_by: Mapped[str] = mapped_column(String(80))
    recorded_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
