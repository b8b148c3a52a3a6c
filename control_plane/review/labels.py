"""Analyst labels: recorded in the outbox in the verdict's transaction, delivered after it commits.

Publishing from the request could announce a verdict that then rolls back, and publishing after
the commit loses the label if the process dies in between; the outbox (``control_plane.outbox``)
commits or rolls back with the verdict. Delivery is at least once: a consumer keys on
``label_id`` (or ``tenant_id`` + ``txn_id``, last label wins).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from control_plane.ids import new_id
from control_plane.outbox import emit
from control_plane.review.contract import LABEL_TOPIC
from control_plane.review.orm import ReviewItem

LABEL_VALUES = {"fraud": 1, "legit": 0}


def label_message(item: ReviewItem, *, label_id: str, verdict: str, decided_at: datetime) -> dict[str, Any]:
    """The ``label.recorded`` message (contract fields first, then what a consumer needs to dedupe)."""
    return {
        "tenant_id": item.tenant_id,
        "txn_id": item.txn_id,
        "card_token": item.card_token,
        "terminal_id": item.terminal_id,
        "label": LABEL_VALUES[verdict],
        "ts": item.txn_ts.isoformat(),
        "label_id": label_id,
        "verdict": verdict,
        "review_id": item.id,
        "flagged_id": item.flagged_id,
        "decided_at": decided_at.isoformat(),
    }


def queue_label(session: Session, item: ReviewItem, *, verdict: str, decided_at: datetime) -> str | None:
    """Record the label in the caller's transaction (the outbox delivers it after the commit);
    escalations carry no label. Returns the label id."""
    if verdict not in LABEL_VALUES:
        return None
    label_id = new_id("lbl")
    emit(session, LABEL_TOPIC, label_message(item, label_id=label_id, verdict=verdict, decided_at=decided_at))
    return label_id
