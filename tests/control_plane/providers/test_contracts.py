"""The local adapters (and the Redis cache) against the port contracts."""

from __future__ import annotations

import asyncio
import socket
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest

from control_plane.bootstrap.state import State
from providers.local.event_bus import InProcessEventBus
from providers.local.feature_cache import MemoryFeatureCache
from providers.local.object_store import LocalObjectStore
from providers.ports import DeliveryFailed, ProviderError, ScriptedAdmission
from providers.redis_bus import RedisStreamsEventBus
from providers.redis_cache import LAG_CAP_S, RedisFeatureCache
from tests.control_plane.providers import contracts
from tests.helpers import wait_until


def test_memory_cache_contract() -> None:
    contracts.check_feature_cache(MemoryFeatureCache())
    contracts.check_claim_and_read(MemoryFeatureCache())
    asyncio.run(contracts.check_async_feature_cache(MemoryFeatureCache()))


def test_redis_cache_contract(redis_url: str) -> None:
    cache = RedisFeatureCache(redis_url, timeout_ms=200)
    try:
        contracts.check_feature_cache(cache)
        contracts.check_claim_and_read(cache)
        # Each asyncio.run is a new event loop: the cache opens a pool on each (a pool's sockets
        # belong to the loop that opened them) and the second run works as the first did.
        asyncio.run(contracts.check_async_feature_cache(cache))
        asyncio.run(contracts.check_async_feature_cache(cache))
    finally:
        cache.client.flushdb()


def test_redis_cache_runs_an_admission_in_front_of_the_claim(redis_url: str) -> None:
    cache = RedisFeatureCache(redis_url, timeout_ms=200)
    assert isinstance(cache, ScriptedAdmission) and not isinstance(MemoryFeatureCache(), ScriptedAdmission)
    counter = f"test-admission:{{{uuid.uuid4().hex}}}"
    try:
        cache.client.script_flush()  # the first call finds no script: EVALSHA falls back to EVAL
        asyncio.run(contracts.check_scripted_admission(cache, counter))
    finally:
        cache.client.delete(counter)


def test_redis_cache_down_raises_provider_error_quickly() -> None:
    dead = RedisFeatureCache("redis://127.0.0.1:1/0", timeout_ms=5)
    assert dead.ping() is False
    with pytest.raises(ProviderError):
        dead.get_many("ten_x", ["card:1"])

    async def async_calls() -> float:
        began = time.perf_counter()
        for call in (
            dead.aclaim_and_read("ten_x", "idem:t", b"p", 60, ["card:1"]),
            dead.aset_many("ten_x", {"card:1": b"s"}),
            dead.adelete_many("ten_x", ["card:1"]),
        ):
            with pytest.raises(ProviderError):
                await call
        await dead.aclose()
        return time.perf_counter() - began

    # Refused connections, one immediate retry each, no backoff series (that would take seconds).
    assert asyncio.run(async_calls()) < 1.0


def test_redis_cache_sync_calls_are_off_the_hot_paths_budget(redis_url: str) -> None:
    """A Redis slower than the hot path's budget (but alive) still serves the sync calls (label
    feeds, event handlers, probes): they are not on the fraud-check path and get their own budget."""
    cache = RedisFeatureCache(redis_url, timeout_ms=5)
    cache.set_many("ten_sync", {"card:1": b"s"}, ttl_s=60)
    try:
        # Redis holds every client's commands for 100 ms (20 hot-path budgets) from this reply on.
        RedisFeatureCache(redis_url).client.execute_command("CLIENT", "PAUSE", 100, "ALL")
        assert cache.get_many("ten_sync", ["card:1", "card:2"]) == [b"s", None]
        assert cache.ping() is True
    finally:
        cache.client.delete("fr:{ten_sync}:card:1")


def test_redis_cache_async_budget_counts_redis_not_a_busy_loop(redis_url: str) -> None:
    """A reply that arrives while the loop is busy is not a timeout (the loop's lateness is its
    own); a server that never answers fails the call within the outer bound."""
    # 200 ms: a budget the shared Redis of a loaded 2-core test machine keeps (its own scheduling is
    # not what this test is about).
    cache = RedisFeatureCache(redis_url, timeout_ms=200)
    black_hole = socket.create_server(("127.0.0.1", 0))  # accepts connections, never answers
    silent = RedisFeatureCache(f"redis://127.0.0.1:{black_hole.getsockname()[1]}/0", timeout_ms=20)

    async def busy_loop_then_silence() -> float:
        await cache.aset_many("ten_budget", {"card:1": b"s"})  # the connection is open
        for _ in range(3):
            # Another task holds the loop for 0.6 s (3 budgets, within LAG_CAP_S) while Redis
            # answers in ~0.1 ms.
            asyncio.get_running_loop().call_soon(time.sleep, 0.6)
            _, values = await cache.aclaim_and_read("ten_budget", "idem:b", b"p", 60, ["card:1"])
            assert values == [b"s"]
        await cache.aclose()
        began = time.perf_counter()
        with pytest.raises(ProviderError):
            await silent.aclaim_and_read("ten_budget", "idem:b", b"p", 60, ["card:1"])
        await silent.aclose()
        return time.perf_counter() - began

    try:
        assert asyncio.run(busy_loop_then_silence()) < LAG_CAP_S + 0.5
    finally:
        black_hole.close()
        cache.client.delete("fr:{ten_budget}:card:1", "fr:{ten_budget}:idem:b")


def test_local_object_store_contract(tmp_path: Path) -> None:
    contracts.check_object_store(LocalObjectStore(tmp_path / "objects"))


def test_local_object_store_refuses_escaping_keys(tmp_path: Path) -> None:
    store = LocalObjectStore(tmp_path / "objects")
    with pytest.raises(ValueError, match="escapes"):
        store.put("../outside.bin", b"x")


def test_sql_flagged_store_contract(container: State) -> None:
    contracts.check_flagged_store(container.providers.flagged_store)


def test_in_process_bus_contract_and_failing_subscriber_isolation() -> None:
    bus = InProcessEventBus()

    def broken(_: str, __: Any) -> None:
        raise RuntimeError("subscriber bug")

    bus.subscribe("alarms", broken)
    contracts.check_event_bus(bus)


def test_in_process_bus_raises_for_a_failed_subscriber_only_when_delivery_is_required() -> None:
    bus = InProcessEventBus()
    seen: list[str] = []

    def broken(_: str, __: Mapping[str, Any]) -> None:
        raise RuntimeError("subscriber bug")

    bus.subscribe("t", broken)
    bus.subscribe("t", lambda topic, _m: seen.append(topic))
    bus.publish("t", {"n": 1})  # logged; the publisher goes on
    with pytest.raises(DeliveryFailed) as failed:
        bus.publish("t", {"n": 2}, require_delivery=True)
    assert seen == ["t", "t"]  # the healthy subscriber ran both times
    assert failed.value.topic == "t" and [str(e) for e in failed.value.errors] == ["subscriber bug"]
    bus.publish("other", {"n": 3}, require_delivery=True)  # no subscriber: nothing failed


def test_in_process_bus_delivery_modes() -> None:
    contracts.check_delivery_modes(InProcessEventBus(), deliver=lambda cond: None)


def _eventually(cond: Callable[[], bool]) -> None:
    wait_until(cond, timeout_s=10, what="delivery on the Redis bus")


@pytest.fixture
def redis_buses(redis_url: str) -> Iterator[Callable[..., RedisStreamsEventBus]]:
    """Buses on one Redis, each standing for one process (its own consumer name and threads)."""
    made: list[RedisStreamsEventBus] = []
    # Streams of this test only: concurrent test sessions may share the Redis logical database.
    prefix = f"test-bus:{uuid.uuid4().hex}:"

    def make(**options: Any) -> RedisStreamsEventBus:
        bus = RedisStreamsEventBus(redis_url, block_ms=100, prefix=prefix, **options)
        bus.start()
        made.append(bus)
        return bus

    yield make
    for bus in made:
        bus.close()
    client = RedisFeatureCache(redis_url).client
    for key in client.scan_iter(match=prefix + "*"):
        client.delete(key)


def test_redis_bus_contract(redis_buses: Callable[..., RedisStreamsEventBus]) -> None:
    bus = redis_buses()
    contracts.check_event_bus(bus, deliver=lambda: _eventually(lambda: bus.delivered >= 0))
    contracts.check_delivery_modes(bus, deliver=_eventually)


def test_redis_bus_broadcast_reaches_every_process_and_work_exactly_one(
    redis_buses: Callable[..., RedisStreamsEventBus],
) -> None:
    contracts.check_broadcast_and_work_across_processes(redis_buses(), redis_buses(), deliver=_eventually)
    contracts.check_broadcast_across_processes(redis_buses(), redis_buses(), deliver=_eventually)


@pytest.mark.filterwarnings("ignore::pytest.PytestUnhandledThreadExceptionWarning")  # the crash, on purpose
def test_redis_bus_reclaims_what_a_crashed_consumer_read(
    redis_buses: Callable[..., RedisStreamsEventBus],
) -> None:
    crashing = redis_buses(claim_idle_ms=200)
    survivor = redis_buses(claim_idle_ms=200)
    contracts.check_crash_reclaim(crashing, survivor, deliver=_eventually)
    assert survivor.reclaimed == 1


def test_redis_bus_retries_a_failed_handler_then_dead_letters_it(
    redis_buses: Callable[..., RedisStreamsEventBus], redis_url: str
) -> None:
    bus = redis_buses(claim_idle_ms=50, max_deliveries=3)
    calls: list[int] = []

    def flaky(_t: str, m: Mapping[str, Any]) -> None:
        calls.append(m["n"])
        if len(calls) < 2 or m["n"] == 13:
            raise RuntimeError("subscriber bug")

    bus.subscribe("labels", flaky, mode="work", group="kind")
    bus.publish("labels", {"n": 1}, require_delivery=True)  # fails once, then succeeds
    bus.publish("labels", {"n": 13})  # always fails: dead-lettered after 3 deliveries
    client = RedisFeatureCache(redis_url).client
    _eventually(lambda: client.xlen(bus.stream("labels") + ":dead") == 1)
    assert calls.count(1) == 2 and calls.count(13) == 3  # 3 deliveries ran; the 4th moved it
    assert client.xpending(bus.stream("labels"), "kind")["pending"] == 0


def test_redis_bus_down_fails_the_publish(redis_url: str) -> None:
    dead = RedisStreamsEventBus("redis://127.0.0.1:1/0", timeout_s=0.2)
    with pytest.raises(ProviderError):
        dead.publish("t", {"n": 1}, require_delivery=True)
