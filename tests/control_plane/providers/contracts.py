"""Port contracts as plain checks, run against every adapter (local here, aws in tests/aws)."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

import pytest

from providers.ports import (
    EventBus,
    FeatureCache,
    FlaggedRecord,
    FlaggedTransactionStore,
    ObjectStore,
)


def check_feature_cache(cache: FeatureCache) -> None:
    a, b = f"ten_{uuid.uuid4().hex}", f"ten_{uuid.uuid4().hex}"
    assert cache.ensure_namespace(a) is True
    assert cache.ensure_namespace(a) is False
    cache.set_many(a, {"card:1": b"x", "term:9": b"y"})
    cache.set_many(b, {"card:1": b"other"})
    assert cache.get_many(a, ["card:1", "term:9", "missing"]) == [b"x", b"y", None]
    assert cache.get_many(b, ["card:1"]) == [b"other"]
    assert cache.keys(a) == ["card:1", "term:9"]
    assert cache.purge_tenant(a) >= 2
    assert cache.keys(a) == [] and cache.get_many(a, ["card:1"]) == [None]
    assert cache.get_many(b, ["card:1"]) == [b"other"]
    assert cache.ping() is True


def check_object_store(store: ObjectStore) -> None:
    t1, t10 = f"tenants/{uuid.uuid4().hex}", f"tenants/{uuid.uuid4().hex}"
    store.put(f"{t1}/a/1.bin", b"one")
    store.put(f"{t1}/b.bin", b"two")
    store.put(f"{t10}/c.bin", b"three")
    assert store.get(f"{t1}/a/1.bin") == b"one"
    assert store.list(f"{t1}/") == [f"{t1}/a/1.bin", f"{t1}/b.bin"]
    assert store.total_bytes(f"{t1}/") == len(b"one") + len(b"two")  # not t10's, a sibling prefix
    assert store.total_bytes(f"{t10}/") == 5 and store.total_bytes(f"{t1}/missing/") == 0
    assert store.delete_prefix(f"{t1}/") == 2
    assert store.total_bytes(f"{t1}/") == 0
    assert store.list(f"{t1}/") == []
    assert store.exists(f"{t10}/c.bin") and not store.exists(f"{t1}/b.bin")
    with pytest.raises(KeyError):
        store.get(f"{t1}/b.bin")


def check_flagged_store(store: FlaggedTransactionStore) -> None:
    a, b = f"ten_{uuid.uuid4().hex}", f"ten_{uuid.uuid4().hex}"
    assert store.put(FlaggedRecord(a, "flg_1", {"score": 0.91, "reasons": ["CARD_VELOCITY"]})) is True
    assert store.put(FlaggedRecord(a, "flg_1", {"score": 0.91, "reasons": ["CARD_VELOCITY"]})) is False
    assert store.put(FlaggedRecord(a, "flg_2", {"score": 0.6, "reasons": []})) is True
    assert store.put(FlaggedRecord(b, "flg_1", {"score": 0.5, "reasons": []})) is True
    assert store.count(a) == 2
    got = store.get(a, "flg_1")
    assert got is not None and got.payload == {"score": 0.91, "reasons": ["CARD_VELOCITY"]}
    assert store.get(a, "flg_missing") is None
    assert {r.flagged_id for r in store.list(a)} == {"flg_1", "flg_2"}
    assert store.purge_tenant(a) == 2
    assert store.count(a) == 0 and store.count(b) == 1


def check_event_bus(
    bus: EventBus, deliver: Callable[[], None] = lambda: None
) -> list[tuple[str, dict[str, Any]]]:
    """Publish to two topics; ``deliver`` waits for asynchronous delivery where the bus has it."""
    seen: list[tuple[str, dict[str, Any]]] = []
    bus.subscribe("alarms", lambda topic, msg: seen.append((topic, dict(msg))))
    bus.publish("alarms", {"tenant_id": "ten_a", "n": 1})
    bus.publish("other", {"x": 1})
    deliver()
    assert seen == [("alarms", {"tenant_id": "ten_a", "n": 1})]
    return seen


def check_claim_and_read(cache: FeatureCache) -> None:
    """The idempotency primitive: the first caller claims, later callers see the holder's value."""
    t = f"ten_{uuid.uuid4().hex}"
    cache.set_many(t, {"card:1": b"state-c", "term:1": b"state-t"})
    existing, values = cache.claim_and_read(t, "idem:tx1", b"pending:h1", 60, ["card:1", "term:1", "card:2"])
    assert existing is None and values == [b"state-c", b"state-t", None]
    again, _ = cache.claim_and_read(t, "idem:tx1", b"pending:h2", 60, ["card:1"])
    assert again == b"pending:h1"
    cache.delete_many(t, ["idem:tx1"])
    third, _ = cache.claim_and_read(t, "idem:tx1", b"pending:h3", 60, [])
    assert third is None
