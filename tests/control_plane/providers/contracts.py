"""Port contracts as plain checks, run against every adapter (local here, aws in tests/aws)."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

import pytest

from providers.ports import (
    Admission,
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


def check_delivery_modes(bus: EventBus, deliver: Callable[[Callable[[], bool]], None]) -> None:
    """One process: a broadcast and a work subscription each run once per message; ``deliver(cond)``
    waits until ``cond()`` holds where delivery is asynchronous."""
    topic = f"modes-{uuid.uuid4().hex[:8]}"
    seen: list[tuple[str, int]] = []
    bus.subscribe(topic, lambda _t, m: seen.append(("broadcast", m["n"])), mode="broadcast")
    bus.subscribe(topic, lambda _t, m: seen.append(("work", m["n"])), mode="work", group="kind-a")
    for n in (1, 2):
        bus.publish(topic, {"n": n}, require_delivery=True)
    deliver(lambda: len(seen) >= 4)
    assert sorted(seen) == [("broadcast", 1), ("broadcast", 2), ("work", 1), ("work", 2)]
    with pytest.raises(ValueError, match="delivery mode"):
        bus.subscribe(topic, lambda _t, _m: None, mode="sometimes")  # type: ignore[arg-type]


def check_broadcast_and_work_across_processes(
    a: EventBus, b: EventBus, deliver: Callable[[Callable[[], bool]], None], *, messages: int = 20
) -> None:
    """Two processes on one bus: a broadcast reaches both; each work message runs in exactly one of
    them (one consumer group per subscriber kind), and two kinds each get every work message."""
    bc, wk = f"bc-{uuid.uuid4().hex[:8]}", f"wk-{uuid.uuid4().hex[:8]}"
    got: dict[str, list[tuple[str, int]]] = {"a": [], "b": []}
    audit: list[int] = []
    for name, bus in (("a", a), ("b", b)):
        bus.subscribe(bc, lambda _t, m, n=name: got[n].append(("bc", m["n"])), mode="broadcast")
        bus.subscribe(wk, lambda _t, m, n=name: got[n].append(("wk", m["n"])), mode="work", group="review")
    a.subscribe(wk, lambda _t, m: audit.append(m["n"]), mode="work", group="audit")  # another kind
    a.publish(bc, {"n": 0})
    for n in range(messages):
        (a if n % 2 else b).publish(wk, {"n": n}, require_delivery=True)

    def done() -> bool:
        work = [n for name in got for kind, n in got[name] if kind == "wk"]
        return len(work) >= messages and len(audit) >= messages and all(("bc", 0) in got[n] for n in got)

    deliver(done)
    for name in got:
        assert [m for m in got[name] if m[0] == "bc"] == [("bc", 0)]  # every process, once
    work = sorted(n for name in got for kind, n in got[name] if kind == "wk")
    assert work == list(range(messages))  # each exactly once across the two processes
    assert sorted(audit) == list(range(messages))


def check_broadcast_across_processes(
    a: EventBus, b: EventBus, deliver: Callable[[Callable[[], bool]], None]
) -> None:
    """Two processes on one bus: a broadcast published by either reaches both."""
    topic = f"bc-{uuid.uuid4().hex[:8]}"
    got: dict[str, list[int]] = {"a": [], "b": []}
    a.subscribe(topic, lambda _t, m: got["a"].append(m["n"]), mode="broadcast")
    b.subscribe(topic, lambda _t, m: got["b"].append(m["n"]), mode="broadcast")
    a.publish(topic, {"n": 1})
    b.publish(topic, {"n": 2})
    deliver(lambda: len(got["a"]) >= 2 and len(got["b"]) >= 2)
    assert sorted(got["a"]) == sorted(got["b"]) == [1, 2]


class ConsumerCrashed(BaseException):
    """Raised by a handler to kill its consumer thread mid-message, as a crash would (not an
    ``Exception``: buses isolate those and retry)."""


def check_crash_reclaim(
    crashing: EventBus, survivor: EventBus, deliver: Callable[[Callable[[], bool]], None]
) -> None:
    """A process that read a work message and died before acknowledging it: another process's
    consumer of the same kind takes it over and runs it."""
    topic = f"reclaim-{uuid.uuid4().hex[:8]}"
    read_by_crashing: list[int] = []
    done: list[int] = []

    def crash(_t: str, m: Any) -> None:
        read_by_crashing.append(m["n"])
        raise ConsumerCrashed

    crashing.subscribe(topic, crash, mode="work", group="kind")
    crashing.publish(topic, {"n": 7}, require_delivery=True)
    deliver(lambda: bool(read_by_crashing))  # read, never acknowledged; its consumer is gone
    survivor.subscribe(topic, lambda _t, m: done.append(m["n"]), mode="work", group="kind")
    deliver(lambda: bool(done))
    assert done == [7] and read_by_crashing == [7]


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


async def check_async_feature_cache(cache: FeatureCache) -> None:
    """The async calls (the hot path's) keep the sync calls' contract and see the same data."""
    t, other = f"ten_{uuid.uuid4().hex}", f"ten_{uuid.uuid4().hex}"
    await cache.aset_many(t, {"card:1": b"state-c", "term:1": b"state-t"}, ttl_s=60)
    await cache.aset_many(other, {"card:1": b"other"})
    assert cache.get_many(t, ["card:1", "term:1"]) == [b"state-c", b"state-t"]
    existing, values = await cache.aclaim_and_read(
        t, "idem:tx1", b"pending:h1", 60, ["card:1", "term:1", "card:2"]
    )
    assert existing is None and values == [b"state-c", b"state-t", None]
    again, _ = await cache.aclaim_and_read(t, "idem:tx1", b"pending:h2", 60, ["card:1"])
    assert again == b"pending:h1"
    sync_again, _ = cache.claim_and_read(t, "idem:tx1", b"pending:h3", 60, [])
    assert sync_again == b"pending:h1"  # one claim, whichever calls are used
    await cache.aset_many(t, {"idem:tx1": b"final"})
    assert (await cache.aclaim_and_read(t, "idem:tx1", b"pending:h4", 60, []))[0] == b"final"
    await cache.adelete_many(t, ["idem:tx1", "card:1"])
    await cache.adelete_many(t, [])
    third, values = await cache.aclaim_and_read(t, "idem:tx1", b"pending:h5", 60, ["card:1", "term:1"])
    assert third is None and values == [None, b"state-t"]
    assert cache.get_many(other, ["card:1"]) == [b"other"]  # another tenant's namespace untouched
    await cache.aclose()


# An admission for the contract: admits while ARGV[1] is "yes", counting its calls in KEYS[1].
COUNTING_ADMISSION = """
local n = redis.call('INCR', KEYS[1])
if ARGV[1] == 'yes' then return {1, n} end
return {0, n}
"""


async def check_scripted_admission(cache: Any, counter_key: str) -> None:
    """``aadmit_claim_and_read``: a refusal claims and reads nothing; an admission claims and reads
    as ``aclaim_and_read`` does, and the admission's reply comes back either way."""
    t = f"ten_{uuid.uuid4().hex}"
    await cache.aset_many(t, {"card:1": b"state-c"})
    refuse = Admission(COUNTING_ADMISSION, (counter_key,), ("no",))
    admit = Admission(COUNTING_ADMISSION, (counter_key,), ("yes",))
    refused = await cache.aadmit_claim_and_read(refuse, t, "idem:tx1", b"pending:h1", 60, ["card:1"])
    assert refused.reply == [0, 1] and refused.existing is None and refused.values == []
    assert cache.get_many(t, ["idem:tx1"]) == [None]  # not claimed
    first = await cache.aadmit_claim_and_read(admit, t, "idem:tx1", b"pending:h1", 60, ["card:1", "term:1"])
    assert first.reply == [1, 2] and first.existing is None and first.values == [b"state-c", None]
    assert cache.get_many(t, ["idem:tx1"]) == [b"pending:h1"]
    second = await cache.aadmit_claim_and_read(admit, t, "idem:tx1", b"pending:h2", 60, [])
    assert second.reply == [1, 3] and second.existing == b"pending:h1" and second.values == []
    await cache.aclose()
