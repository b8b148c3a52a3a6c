"""What a flagged check records for the review queue, and the public shape of a reason."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from control_plane.scoring.schemas import FraudCheckRequest


def flagged_id(tenant_id: str, txn_id: str) -> str:
    return "flg_" + hashlib.sha256(f"{tenant_id}\x00{txn_id}".encode()).hexdigest()[:24]


def public_reason(r: dict[str, Any]) -> dict[str, Any]:
    return {
        "code": r["code"],
        "feature": r["feature"],
        "text": r["text"],
        "contribution": round(float(r.get("contribution", 0.0)), 6),
    }


def flagged_payload(
    tenant_id: str,
    req: FraudCheckRequest,
    answer: dict[str, Any],
    vector: list[float],
    names: Sequence[str],
) -> dict[str, Any]:
    return {
        "flagged_id": flagged_id(tenant_id, req.txn_id),
        "txn_id": req.txn_id,
        "decision": answer["decision"],
        "score": answer["score"],
        "model_version": answer["model_version"],
        "cohort": answer["cohort"],
        "reasons": answer["reasons"],
        "features": {n: float(v) for n, v in zip(names, vector, strict=True)},
        "degraded": answer["degraded"],
        "transaction": {
            "txn_id": req.txn_id,
            "card_token": req.card_token,
            "terminal_id": req.terminal_id,
            "ts": req.timestamp.astimezone(UTC).isoformat(),
            "amount": str(req.amount),
            "currency": req.currency,
            "channel": req.channel,
            "country": req.country,
            "mcc": req.mcc,
            **({"attributes": req.attributes} if req.attributes else {}),
        },
        "scored_at": datetime.now(UTC).isoformat(),
    }
