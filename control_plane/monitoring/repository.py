"""Monitoring queries."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import case, func, select
from sqlalchemy.orm import Session

from control_plane.monitoring.orm import DriftBucket, ScoredTransaction, TransactionLabel, epoch_day
from control_plane.review.orm import ReviewItem

FRAUD_LABELS = ("fraud", "chargeback")
MAX_CARD_DAYS = 400  # the card history's window: one index seek per day


def latest_hour(session: Session, tenant_id: str, version: str, *, until: datetime | None) -> datetime | None:
    stmt = select(func.max(DriftBucket.hour_start)).where(
        DriftBucket.tenant_id == tenant_id, DriftBucket.model_version == version
    )
    if until is not None:
        stmt = stmt.where(DriftBucket.hour_start <= until)
    return session.scalar(stmt)


def buckets(
    session: Session, tenant_id: str, version: str, start: datetime, end: datetime
) -> Sequence[DriftBucket]:
    stmt = select(DriftBucket).where(
        DriftBucket.tenant_id == tenant_id,
        DriftBucket.model_version == version,
        DriftBucket.hour_start >= start,
        DriftBucket.hour_start <= end,
    )
    return session.scalars(stmt).all()


def scored(session: Session, tenant_id: str, txn_ids: Sequence[str]) -> dict[str, ScoredTransaction]:
    out: dict[str, ScoredTransaction] = {}
    for i in range(0, len(txn_ids), 500):
        stmt = select(ScoredTransaction).where(
            ScoredTransaction.tenant_id == tenant_id, ScoredTransaction.txn_id.in_(txn_ids[i : i + 500])
        )
        out.update({r.txn_id: r for r in session.scalars(stmt)})
    return out


def reviewed(session: Session, tenant_id: str, txn_ids: Sequence[str]) -> dict[str, ReviewItem]:
    """Flagged transactions in the review queue (scored before monitoring recorded every check)."""
    out: dict[str, ReviewItem] = {}
    for i in range(0, len(txn_ids), 500):
        stmt = select(ReviewItem).where(
            ReviewItem.tenant_id == tenant_id, ReviewItem.txn_id.in_(txn_ids[i : i + 500])
        )
        out.update({r.txn_id: r for r in session.scalars(stmt)})
    return out


def labels(
    session: Session, tenant_id: str, txn_ids: Sequence[str]
) -> dict[tuple[str, str], TransactionLabel]:
    out: dict[tuple[str, str], TransactionLabel] = {}
    for i in range(0, len(txn_ids), 500):
        stmt = select(TransactionLabel).where(
            TransactionLabel.tenant_id == tenant_id, TransactionLabel.txn_id.in_(txn_ids[i : i + 500])
        )
        out.update({(r.txn_id, r.source): r for r in session.scalars(stmt)})
    return out


def latest_label(session: Session, tenant_id: str) -> datetime | None:
    return session.scalar(
        select(func.max(TransactionLabel.known_at)).where(TransactionLabel.tenant_id == tenant_id)
    )


def latest_scored(session: Session, tenant_id: str, version: str | None) -> datetime | None:
    stmt = select(func.max(ScoredTransaction.ts)).where(ScoredTransaction.tenant_id == tenant_id)
    if version is not None:
        stmt = stmt.where(ScoredTransaction.model_version == version)
    return session.scalar(stmt)


def outcomes(
    session: Session, tenant_id: str, version: str | None, start: datetime, end: datetime
) -> Sequence[Any]:
    """(ts, amount, decision, fraud: 1 / 0 / None when unlabelled) of the scored transactions."""
    is_fraud = case((TransactionLabel.label.in_(FRAUD_LABELS), 1), else_=0)
    lab = (
        select(TransactionLabel.txn_id, func.max(is_fraud).label("fraud"))
        .where(TransactionLabel.tenant_id == tenant_id)
        .group_by(TransactionLabel.txn_id)
        .subquery()
    )
    stmt = (
        select(ScoredTransaction.ts, ScoredTransaction.amount, ScoredTransaction.decision, lab.c.fraud)
        .outerjoin(lab, lab.c.txn_id == ScoredTransaction.txn_id)
        .where(
            ScoredTransaction.tenant_id == tenant_id,
            ScoredTransaction.ts >= start,
            ScoredTransaction.ts < end,
        )
    )
    if version is not None:
        stmt = stmt.where(ScoredTransaction.model_version == version)
    return session.execute(stmt).all()


def replay_rows(
    session: Session, tenant_id: str, start: datetime, end: datetime, limit: int
) -> Sequence[Any]:
    """What a backtest replays: each scored transaction with its online score, answer and label."""
    is_fraud = case((TransactionLabel.label.in_(FRAUD_LABELS), 1), else_=0)
    lab = (
        select(TransactionLabel.txn_id, func.max(is_fraud).label("fraud"))
        .where(TransactionLabel.tenant_id == tenant_id)
        .group_by(TransactionLabel.txn_id)
        .subquery()
    )
    s = ScoredTransaction
    stmt = (
        select(s.txn_id, s.ts, s.amount, s.card_token, s.terminal_id, s.score, s.decision, lab.c.fraud)
        .outerjoin(lab, lab.c.txn_id == s.txn_id)
        .where(s.tenant_id == tenant_id, s.ts >= start, s.ts < end)
        .order_by(s.ts, s.txn_id)
        .limit(limit)
    )
    return session.execute(stmt).all()


def card_recent(
    session: Session, tenant_id: str, card_token: str, *, since: datetime, until: datetime, limit: int
) -> Sequence[ScoredTransaction]:
    """A card's scored transactions (LEGIT ones too) in [since, until), newest first, at most
    ``limit`` (the analyst's card history): one seek per day of the window in
    ``ix_scored_transactions_day_card``, so the window is bounded (MAX_CARD_DAYS)."""
    first, last = epoch_day(since), epoch_day(until)
    if last - first > MAX_CARD_DAYS:
        raise ValueError(f"card history window over {MAX_CARD_DAYS} days")
    s = ScoredTransaction
    stmt = (
        select(s)
        .where(
            s.tenant_id == tenant_id,
            s.day.in_(range(first, last + 1)),
            s.card_token == card_token,
            s.ts >= since,
            s.ts < until,
        )
        .order_by(s.ts.desc(), s.txn_id.desc())
        .limit(limit)
    )
    return session.scalars(stmt).all()
