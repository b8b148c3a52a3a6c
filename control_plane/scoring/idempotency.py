"""A fraud check's idempotency: its ``idem:<txn_id>`` key is claimed with a pending marker (the
request's digest) in the round trip that reads its states, and holds the final answer afterwards;
a retry with the same body replays it, another body under the same txn_id is a conflict."""

from __future__ import annotations

import time
from typing import Any

import orjson

from control_plane.errors import Conflict
from control_plane.scoring.check_features import CheckFeatures
from control_plane.scoring.schemas import FraudCheckRequest
from control_plane.scoring.serving import TenantServing

IDEMPOTENCY_TTL_S = 7 * 86_400
PENDING = b"pending:"
FEATURE_CACHE = "feature_cache"  # the degraded input a failing cache names


class PreparedCheck:
    """A validated and routed check, before its cache round trip."""

    __slots__ = ("digest", "features", "idem_key", "marker", "req", "routed", "t0", "tenant")

    def __init__(
        self,
        tenant: TenantServing,
        req: FraudCheckRequest,
        digest: str,
        routed: tuple[str | None, str],
        features: CheckFeatures,
        t0: float,
    ) -> None:
        self.tenant = tenant
        self.req = req
        self.digest = digest
        self.routed = routed
        self.features = features
        self.t0 = t0
        self.idem_key = f"idem:{req.txn_id}"
        self.marker = PENDING + digest.encode()

    def write_back(self, states: dict[str, bytes], answer: dict[str, Any]) -> dict[str, bytes]:
        """The new states and the final answer, written in one call (the longest horizon's TTL)."""
        return {**states, self.idem_key: orjson.dumps({"h": self.digest, "r": answer})}


def replay(existing: bytes, check: PreparedCheck) -> dict[str, Any]:
    """The stored answer of a retry; a 409 while the first is in flight or for another body."""
    txn_id = check.req.txn_id
    if existing.startswith(PENDING):
        same = existing[len(PENDING) :].decode() == check.digest
        raise Conflict(
            f"txn_id {txn_id} is being checked right now; retry shortly"
            if same
            else f"txn_id {txn_id} was already used with a different body",
            field="txn_id",
        )
    stored = orjson.loads(existing)
    if stored["h"] != check.digest:
        raise Conflict(f"txn_id {txn_id} was already checked with a different body", field="txn_id")
    answer: dict[str, Any] = dict(stored["r"])
    answer["replayed"] = True
    answer["server_time_ms"] = round((time.perf_counter() - check.t0) * 1000, 3)
    return answer


def write_back_failed(answer: dict[str, Any]) -> None:
    """The states and the answer were not stored: the answer says the cache degraded it."""
    answer["degraded"] = True
    answer["degraded_inputs"] = [*answer["degraded_inputs"], FEATURE_CACHE]
