"""Port contracts: every adapter of a port passes the same tests (aws adapters join in tests/aws)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from control_plane.container import Container
from control_plane.providers.local.event_bus import InProcessEventBus
from control_plane.providers.local.feature_cache import MemoryFeatureCache
from control_plane.providers.local.object_store import LocalObjectStore
from control_plane.providers.ports import FeatureCache, FlaggedRecord, ObjectStore
from control_plane.providers.redis_cache import RedisFeatureCache


@pytest.fixture(params=["memory", "redis"])
def cache(request: pytest.FixtureRequest) -> Iterator[FeatureCache]:
    if request.param == "memory":
        yield MemoryFeatureCache()
        return
    redis_url: str = request.getfixturevalue("redis_url")
    adapter = RedisFeatureCache(redis_url, timeout_ms=200)
    yield adapter
    adapter.client.flushdb()


def test_cache_namespaces_are_isolated_and_purgeable(cache: FeatureCache) -> None:
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


def test_redis_cache_down_raises_provider_error_quickly() -> None:
    from control_plane.providers.ports import ProviderError

    dead = RedisFeatureCache("redis://127.0.0.1:1/0", timeout_ms=5)
    assert dead.ping() is False
    with pytest.raises(ProviderError):
        dead.get_many("ten_x", ["card:1"])


@pytest.fixture
def object_store(tmp_path: Path) -> ObjectStore:
    return LocalObjectStore(tmp_path / "objects")


def test_object_store_roundtrip_list_and_prefix_delete(object_store: ObjectStore) -> None:
    object_store.put("tenants/t1/a/1.bin", b"one")
    object_store.put("tenants/t1/b.bin", b"two")
    object_store.put("tenants/t10/c.bin", b"three")
    assert object_store.get("tenants/t1/a/1.bin") == b"one"
    assert object_store.list("tenants/t1/") == ["tenants/t1/a/1.bin", "tenants/t1/b.bin"]
    assert object_store.delete_prefix("tenants/t1/") == 2
    assert object_store.list("tenants/t1/") == []
    assert object_store.exists("tenants/t10/c.bin")
    with pytest.raises(KeyError):
        object_store.get("tenants/t1/b.bin")


def test_local_object_store_refuses_escaping_keys(tmp_path: Path) -> None:
    store = LocalObjectStore(tmp_path / "objects")
    with pytest.raises(ValueError, match="escapes"):
        store.put("../outside.bin", b"x")


def test_flagged_store_is_idempotent_and_tenant_scoped(container: Container) -> None:
    store = container.providers.flagged_store
    assert store.put(FlaggedRecord("ten_a", "flg_1", {"score": 0.91})) is True
    assert store.put(FlaggedRecord("ten_a", "flg_1", {"score": 0.91})) is False
    assert store.put(FlaggedRecord("ten_b", "flg_1", {"score": 0.5})) is True
    assert store.count("ten_a") == 1
    got = store.get("ten_a", "flg_1")
    assert got is not None and got.payload == {"score": 0.91}
    assert store.get("ten_a", "flg_missing") is None
    assert store.purge_tenant("ten_a") == 1
    assert store.count("ten_a") == 0 and store.count("ten_b") == 1


def test_event_bus_fans_out_and_isolates_failing_subscribers() -> None:
    bus = InProcessEventBus()
    seen: list[tuple[str, dict[str, Any]]] = []

    def broken(_: str, __: Any) -> None:
        raise RuntimeError("subscriber bug")

    bus.subscribe("alarms", broken)
    bus.subscribe("alarms", lambda topic, msg: seen.append((topic, dict(msg))))
    bus.publish("alarms", {"tenant_id": "ten_a"})
    bus.publish("other", {"x": 1})
    assert seen == [("alarms", {"tenant_id": "ten_a"})]
