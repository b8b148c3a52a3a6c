"""The local adapters (and the Redis cache) against the port contracts."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest

from control_plane.container import Container
from providers.local.event_bus import InProcessEventBus
from providers.local.feature_cache import MemoryFeatureCache
from providers.local.object_store import LocalObjectStore
from providers.ports import DeliveryFailed, ProviderError
from providers.redis_cache import RedisFeatureCache
from tests.control_plane.providers import contracts


def test_memory_cache_contract() -> None:
    contracts.check_feature_cache(MemoryFeatureCache())
    contracts.check_claim_and_read(MemoryFeatureCache())


def test_redis_cache_contract(redis_url: str) -> None:
    cache = RedisFeatureCache(redis_url, timeout_ms=200)
    try:
        contracts.check_feature_cache(cache)
        contracts.check_claim_and_read(cache)
    finally:
        cache.client.flushdb()


def test_redis_cache_down_raises_provider_error_quickly() -> None:
    dead = RedisFeatureCache("redis://127.0.0.1:1/0", timeout_ms=5)
    assert dead.ping() is False
    with pytest.raises(ProviderError):
        dead.get_many("ten_x", ["card:1"])


def test_local_object_store_contract(tmp_path: Path) -> None:
    contracts.check_object_store(LocalObjectStore(tmp_path / "objects"))


def test_local_object_store_refuses_escaping_keys(tmp_path: Path) -> None:
    store = LocalObjectStore(tmp_path / "objects")
    with pytest.raises(ValueError, match="escapes"):
        store.put("../outside.bin", b"x")


def test_sql_flagged_store_contract(container: Container) -> None:
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
