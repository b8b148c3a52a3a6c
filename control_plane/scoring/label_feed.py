"""Delayed labels into a tenant feature set's entity states (delayed-label risk over any entity).

The batch engine computes ``label_risk`` features from every known outcome of the events in
(t - delay - w, t - delay]; the online engine counts the outcomes stored with each event of the
entity's state. So when a label becomes known (``label.recorded``: analyst verdicts and
``POST /v1/labels``), it must reach every state the transaction was appended to, or online the
feature reads 0 where training saw the real rate.

The label message names only the card and terminal, and the entity values (device, e-mail domain,
…) are the check's attributes, kept nowhere else. So the hot path writes, in the same cache call
as the states, a small index per transaction: the cache keys of the entity states with
delayed-label features it was appended to (``fs-labels:<txn_id>``), with the states' TTL. The
index lives exactly as long as the states it points to (same call, same TTL), so a label that
finds no index has nothing left to update. The label consumer (a bus worker, never the hot path)
reads the index, then the states, sets the outcome and writes back what changed, all through the
feature cache port.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import orjson

from fraud_model.feature_sets import EntityState, apply_label
from providers.ports import FeatureCache

log = logging.getLogger(__name__)
INDEX_PREFIX = "fs-labels:"


def index_key(txn_id: str) -> str:
    return INDEX_PREFIX + txn_id


def index_entry(txn_id: str, state_keys: Sequence[str], ttl_s: int) -> dict[str, bytes]:
    """The index item for the hot path's write (empty when no state keeps labels)."""
    if not state_keys:
        return {}
    return {index_key(txn_id): orjson.dumps({"keys": list(state_keys), "ttl_s": int(ttl_s)})}


def feed_label(cache: FeatureCache, tenant_id: str, txn_id: str, label: int) -> int:
    """Record the outcome in every entity state the transaction is still in; returns how many changed.

    A transaction checked without a tenant set (or one without delayed-label features), an unknown
    txn_id, or one whose events left every horizon has no index or no event to label: nothing is
    written.
    """
    raw = cache.get_many(tenant_id, [index_key(txn_id)])[0]
    if raw is None:
        return 0
    try:
        index = orjson.loads(raw)
        keys = [str(k) for k in index["keys"]]
        ttl_s = int(index["ttl_s"])
    except (orjson.JSONDecodeError, KeyError, TypeError, ValueError):
        log.error("unreadable label index for txn %s of tenant %s: ignored", txn_id, tenant_id)
        return 0
    changed: dict[str, bytes] = {}
    for key, state_raw in zip(keys, cache.get_many(tenant_id, keys), strict=True):
        if state_raw is None:
            continue
        state = EntityState.from_bytes(state_raw)
        if apply_label(state, txn_id, label):
            changed[key] = state.to_bytes()
    if changed:
        cache.set_many(tenant_id, changed, ttl_s=ttl_s)
    return len(changed)
