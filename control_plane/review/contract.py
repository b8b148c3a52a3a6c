"""The flagged-transaction record the scoring hot path writes and the review domain reads.

Published on the event bus as topic ``flagged.stored`` (message = ``FlaggedPayload`` dict plus
``tenant_id``) once the record is durably in the flagged-transaction store; verdicts are
published as ``label.recorded`` (``{"tenant_id", "txn_id", "card_token", "terminal_id", "label", "ts"}``).
"""

from __future__ import annotations

from typing import Any, TypedDict

from control_plane.events import FLAGGED_STORED as FLAGGED_TOPIC
from control_plane.events import LABEL_RECORDED as LABEL_TOPIC

__all__ = ["FLAGGED_TOPIC", "LABEL_TOPIC", "FlaggedPayload", "FlaggedTransaction", "ReasonCode"]


class FlaggedTransaction(TypedDict):
    txn_id: str
    card_token: str
    terminal_id: str
    ts: str  # ISO-8601 UTC
    amount: str  # Decimal as string
    currency: str
    channel: str | None
    country: str | None
    mcc: str | None


class ReasonCode(TypedDict):
    code: str
    feature: str
    text: str
    contribution: float


class FlaggedPayload(TypedDict):
    flagged_id: str  # "flg_" + tenant-scoped hash of txn_id; stable across retries
    txn_id: str
    decision: str  # REVIEW | SUSPICIOUS
    score: float
    model_version: str | None
    cohort: str  # stable | canary | rules
    reasons: list[ReasonCode]
    features: dict[str, float]
    degraded: bool
    transaction: FlaggedTransaction
    scored_at: str  # ISO-8601 UTC


def example_payload(**overrides: Any) -> dict[str, Any]:
    """A valid payload for tests and docs."""
    payload: dict[str, Any] = {
        "flagged_id": "flg_0001",
        "txn_id": "tx_0001",
        "decision": "SUSPICIOUS",
        "score": 0.93,
        "model_version": "mv_example",
        "cohort": "stable",
        "reasons": [
            {
                "code": "AMOUNT_HIGH",
                "feature": "amount",
                "text": "Amount far above the card's usual",
                "contribution": 1.7,
            }
        ],
        "features": {"amount": 412.5, "card_nb_tx_1d": 4.0},
        "degraded": False,
        "transaction": {
            "txn_id": "tx_0001",
            "card_token": "card_42",
            "terminal_id": "term_7",
            "ts": "2026-11-22T10:00:00+00:00",
            "amount": "412.50",
            "currency": "USD",
            "channel": "ecom",
            "country": "FR",
            "mcc": "5411",
        },
        "scored_at": "2026-11-22T10:00:00.120000+00:00",
    }
    payload.update(overrides)
    return payload
