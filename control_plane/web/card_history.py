"""The card's recent transactions as the detail page shows them, and features under readable names.

Every answered check (LEGIT ones too) is in ``scored_transactions`` (written by the monitoring
flush), so the analyst sees what normal looks like for the card, not only what was flagged. Only
flagged checks keep the features the model scored (in their review item), so the velocity the
model saw is shown for those rows and for the item itself.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from statistics import median

from sqlalchemy import select
from sqlalchemy.orm import Session

from control_plane.monitoring import repository as monitoring
from control_plane.review.orm import ReviewItem
from fraud_model.features import READABLE_NAMES

RECENT_DAYS = 30
RECENT_LIMIT = 50
# The card's velocity features, in the order an analyst reads them.
VELOCITY = (
    "card_nb_tx_1h",
    "card_amount_sum_1h",
    "card_nb_tx_1d",
    "card_amount_sum_1d",
    "card_avg_amount_1d",
    "card_nb_tx_7d",
    "card_avg_amount_7d",
    "card_nb_tx_30d",
    "card_avg_amount_30d",
    "card_amount_to_avg_30d",
    "card_secs_since_prev",
)


@dataclass(frozen=True)
class Feature:
    name: str  # the raw feature name (shown on hover)
    label: str  # the readable name
    value: float
    shown: str  # the value as a person reads it


@dataclass(frozen=True)
class RecentTxn:
    txn_id: str
    ts: datetime
    amount: Decimal
    decision: str
    score: float
    review_id: str | None  # the review item when the check was flagged
    status: str | None
    verdict: str | None
    nb_tx_1d: float | None  # the velocity the model saw (flagged checks only)
    amount_sum_1d: float | None
    is_this: bool


@dataclass(frozen=True)
class CardHistory:
    rows: list[RecentTxn]
    velocity: list[Feature]  # what the model saw for this transaction
    count: int
    median_amount: Decimal | None
    days: int
    limit: int


def _shown(name: str, value: float) -> str:
    if name in ("during_weekend", "during_night"):
        return "yes" if value > 0 else "no"
    if name == "card_secs_since_prev":
        if value >= 86_400:
            return f"{value / 86_400:.1f} days"
        if value >= 3_600:
            return f"{value / 3_600:.1f} h"
        return f"{value / 60:.0f} min"
    if name.startswith("terminal_risk"):
        return f"{value:.1%}"
    if name == "card_amount_to_avg_30d":
        return f"{value:.2f} times"
    return f"{value:.0f}" if float(value).is_integer() else f"{value:,.2f}"


def readable(features: dict[str, float]) -> list[Feature]:
    """Every feature under its readable name (unknown names stay raw), in the model's order."""
    known = [n for n in READABLE_NAMES if n in features]
    rest = sorted(n for n in features if n not in READABLE_NAMES)
    return [Feature(n, READABLE_NAMES.get(n, n), features[n], _shown(n, features[n])) for n in known + rest]


def velocity(features: dict[str, float]) -> list[Feature]:
    return [f for f in readable(features) if f.name in VELOCITY]


def _features(item: ReviewItem) -> dict[str, float]:
    raw = item.payload.get("features") if isinstance(item.payload, dict) else None
    return {str(k): float(v) for k, v in raw.items()} if isinstance(raw, dict) else {}


def card_history(session: Session, item: ReviewItem, *, limit: int = RECENT_LIMIT) -> CardHistory:
    """The card's transactions from 30 days before this one to 30 days after (newest first, bounded),
    with the review items among them; flagged items the monitoring flush has not written yet
    (or from before it existed) are listed from the queue."""
    since = item.txn_ts - timedelta(days=RECENT_DAYS)
    until = item.txn_ts + timedelta(days=RECENT_DAYS)
    scored = monitoring.card_recent(
        session, item.tenant_id, item.card_token, since=since, until=until, limit=limit
    )
    flagged = list(
        session.scalars(
            select(ReviewItem)
            .where(
                ReviewItem.tenant_id == item.tenant_id,
                ReviewItem.card_token == item.card_token,
                ReviewItem.txn_ts >= since,
                ReviewItem.txn_ts < until,
            )
            .order_by(ReviewItem.txn_ts.desc(), ReviewItem.id.desc())
            .limit(limit)
        )
    )
    by_txn = {r.txn_id: r for r in flagged}
    rows: dict[str, RecentTxn] = {}

    def add(txn_id: str, ts: datetime, amount: Decimal, decision: str, score: float) -> None:
        review = by_txn.get(txn_id)
        seen = _features(review) if review is not None else {}
        rows[txn_id] = RecentTxn(
            txn_id=txn_id,
            ts=ts,
            amount=amount,
            decision=decision,
            score=score,
            review_id=review.id if review is not None else None,
            status=review.status if review is not None else None,
            verdict=review.verdict if review is not None else None,
            nb_tx_1d=seen.get("card_nb_tx_1d"),
            amount_sum_1d=seen.get("card_amount_sum_1d"),
            is_this=txn_id == item.txn_id,
        )

    for s in scored:
        add(s.txn_id, s.ts, s.amount, s.decision, s.score)
    for r in flagged:
        if r.txn_id not in rows:
            add(r.txn_id, r.txn_ts, r.amount.quantize(Decimal("0.01")), r.decision, r.score)
    ordered = sorted(rows.values(), key=lambda r: (r.ts, r.txn_id), reverse=True)[:limit]
    amounts = [r.amount for r in ordered]
    return CardHistory(
        rows=ordered,
        velocity=velocity(_features(item)),
        count=len(ordered),
        median_amount=Decimal(str(median(amounts))).quantize(Decimal("0.01")) if amounts else None,
        days=RECENT_DAYS,
        limit=limit,
    )
