"""The digest of a fraud check's meaning: the idempotency key's body hash (a retry with the same
meaning replays the answer; a different body under the same txn_id is a conflict)."""

from __future__ import annotations

import hashlib
from decimal import Decimal

import orjson

from control_plane.scoring.schemas import FraudCheckRequest

CENT = Decimal("0.01")


def request_hash(req: FraudCheckRequest) -> str:
    """A digest of the request's meaning (same instant and amount however they were written)."""
    canonical = "\x1f".join(
        (
            req.txn_id,
            req.card_token,
            req.terminal_id,
            str(req.timestamp.timestamp()),
            str(req.amount.quantize(CENT)),
            req.currency,
            req.channel or "",
            req.country or "",
            req.device or "",
            req.mcc or "",
            # Only when present, so the digests of checks without attributes stay what they were.
            *(
                (orjson.dumps(req.attributes, option=orjson.OPT_SORT_KEYS).decode(),)
                if req.attributes
                else ()
            ),
        )
    )
    return hashlib.blake2b(canonical.encode(), digest_size=16).hexdigest()
