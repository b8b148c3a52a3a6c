"""Review items as the API (and the console) show them."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal, InvalidOperation

from control_plane.review.orm import ReviewItem
from control_plane.review.schemas import (
    TOP_REASONS,
    FlaggedPayloadIn,
    ReasonOut,
    ReviewDetailOut,
    ReviewOut,
    TransactionOut,
)
from control_plane.review.service import effective_status


def _amount(item: ReviewItem) -> Decimal:
    """The amount as the hot path wrote it (the column's scale pads it: 412.5000)."""
    try:
        return Decimal(str(item.payload["transaction"]["amount"]))
    except (KeyError, TypeError, InvalidOperation):
        return item.amount


def top_reasons(item: ReviewItem) -> list[str]:
    """The codes of the reasons that pushed the score up most (the hot path stores them ranked;
    they are ranked again here so an older record reads the same)."""
    reasons = item.payload.get("reasons") if isinstance(item.payload, dict) else None
    if not isinstance(reasons, list):
        return []
    ranked = sorted(
        (r for r in reasons if isinstance(r, dict) and isinstance(r.get("code"), str)),
        key=lambda r: -float(r.get("contribution") or 0.0),
    )
    return [str(r["code"]) for r in ranked[:TOP_REASONS]]


def review_out(item: ReviewItem, now: datetime) -> ReviewOut:
    status = effective_status(item, now)
    live = status == "claimed"
    return ReviewOut(
        id=item.id,
        flagged_id=item.flagged_id,
        txn_id=item.txn_id,
        decision=item.decision,
        score=item.score,
        amount=_amount(item),
        currency=item.currency,
        card_token=item.card_token,
        terminal_id=item.terminal_id,
        txn_ts=item.txn_ts,
        model_version=item.model_version,
        status=status,  # type: ignore[arg-type]
        claimed_by=item.claimed_by if live else None,
        claim_expires_at=item.claim_expires_at if live else None,
        verdict=item.verdict,  # type: ignore[arg-type]
        note=item.note,
        decided_by=item.decided_by,
        decided_at=item.decided_at,
        escalated_by=item.escalated_by,
        escalated_at=item.escalated_at,
        escalation_note=item.escalation_note,
        top_reasons=top_reasons(item),
        created_at=item.created_at,
    )


def detail_out(item: ReviewItem, history: list[ReviewItem], now: datetime) -> ReviewDetailOut:
    record = FlaggedPayloadIn.model_validate(item.payload)
    txn = record.transaction
    return ReviewDetailOut(
        **review_out(item, now).model_dump(),
        cohort=record.cohort,
        degraded=record.degraded,
        scored_at=record.scored_at,
        reasons=[ReasonOut(**r.model_dump()) for r in record.reasons],
        features=record.features,
        transaction=TransactionOut(**txn.model_dump()),
        history=[review_out(h, now) for h in history],
    )
