"""With the buckets and the cache on Redis, a fraud check makes one round trip to Redis before its
answer (token, idempotency claim and states in one script) and one after (the write-back), both on
the async client: no blocking Redis call on the event loop. The limiter's answers stay the same."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import redis
import redis.asyncio.connection
import redis.connection
from fastapi.testclient import TestClient

from control_plane.bootstrap.state import State
from control_plane.finops.limiter import RedisBuckets
from providers.redis_cache import RedisFeatureCache
from tests.control_plane.conftest import auth
from tests.control_plane.finops.conftest import FakeClock
from tests.control_plane.finops.test_limiter import _shrink
from tests.control_plane.scoring.conftest import LiveFn, txn


@pytest.fixture
def on_redis(client: TestClient, container: State, redis_url: str) -> Iterator[RedisFeatureCache]:
    """The checker's cache and the limiter's buckets on one Redis, as FRAUDRAIL_CACHE_BACKEND=redis."""
    cache = RedisFeatureCache(redis_url, timeout_ms=200)
    checker, limiter = container.scoring.checker, container.finops.limiter
    before = checker.cache, limiter.store
    checker.cache, limiter.store = cache, RedisBuckets(cache.client)
    try:
        yield cache
    finally:
        checker.cache, limiter.store = before
        client.portal.call(cache.aclose)  # type: ignore[union-attr]  # the pool of the client's loop
        cache.client.flushdb()


@pytest.fixture
def round_trips(monkeypatch: pytest.MonkeyPatch, container: State) -> list[str]:
    """Every packet sent to Redis ("async" / "sync"), and when the check scored ("score")."""
    events: list[str] = []
    async_send = redis.asyncio.connection.AbstractConnection.send_packed_command
    sync_send = redis.connection.AbstractConnection.send_packed_command

    async def counted_async(self: Any, *args: Any, **kwargs: Any) -> None:
        events.append("async")
        await async_send(self, *args, **kwargs)

    def counted_sync(self: Any, *args: Any, **kwargs: Any) -> None:
        events.append("sync")
        sync_send(self, *args, **kwargs)

    checker = container.scoring.checker
    score = checker._score

    def scored(*args: Any, **kwargs: Any) -> Any:
        events.append("score")
        return score(*args, **kwargs)

    monkeypatch.setattr(redis.asyncio.connection.AbstractConnection, "send_packed_command", counted_async)
    monkeypatch.setattr(redis.connection.AbstractConnection, "send_packed_command", counted_sync)
    monkeypatch.setattr(checker, "_score", scored)
    return events


def test_one_round_trip_before_the_answer_and_none_blocking(
    client: TestClient, live_tenant: LiveFn, on_redis: RedisFeatureCache, round_trips: list[str]
) -> None:
    t = live_tenant()
    assert client.post("/v1/fraud-check", json=txn("rt_0"), headers=auth(t["app"])).status_code == 200
    round_trips.clear()  # the first check also opened the connection
    for i in range(1, 4):
        resp = client.post("/v1/fraud-check", json=txn(f"rt_{i}"), headers=auth(t["app"]))
        assert resp.status_code == 200 and resp.json()["degraded"] is False
        assert resp.headers["RateLimit-Limit"] and resp.headers["RateLimit-Remaining"]
    # Per check: the script (token, claim, states), the scoring, the pipelined write-back.
    assert round_trips == ["async", "score", "async"] * 3
    replay = client.post("/v1/fraud-check", json=txn("rt_1"), headers=auth(t["app"]))
    assert replay.json()["replayed"] is True
    assert round_trips[9:] == ["async"]  # a replay: the one round trip, nothing scored or written


def test_the_token_taken_in_the_claim_refuses_as_the_limiter_does(
    client: TestClient,
    live_tenant: LiveFn,
    container: State,
    limiter_clock: FakeClock,
    on_redis: RedisFeatureCache,
) -> None:
    t = live_tenant("claim-burst-co")
    _shrink(container, t["id"], rps=2, burst=3)
    answers = [client.post("/v1/fraud-check", json=txn(f"cb{i}"), headers=auth(t["app"])) for i in range(4)]
    assert [r.status_code for r in answers] == [200, 200, 200, 429]
    assert [r.headers["RateLimit-Remaining"] for r in answers[:3]] == ["2", "1", "0"]
    limited = answers[3]
    assert limited.headers["content-type"] == "application/problem+json"
    assert (limited.headers["Retry-After"], limited.headers["RateLimit-Reset"]) == ("1", "2")
    assert limited.json()["reason"] == "rate" and limited.json()["retry_after_s"] == 1
    assert (
        container.providers.metrics.counter("fraudrail_rate_limited_total", tenant=t["id"], reason="rate")
        == 1
    )
    # The refused check claimed nothing: inside the window it is refused again, after it it is
    # checked (not replayed, not a 409 "being checked").
    assert on_redis.get_many(t["id"], ["idem:cb3"]) == [None]
    limiter_clock.advance(0.49)
    assert client.post("/v1/fraud-check", json=txn("cb3"), headers=auth(t["app"])).status_code == 429
    limiter_clock.advance(0.01)
    retried = client.post("/v1/fraud-check", json=txn("cb3"), headers=auth(t["app"]))
    assert retried.status_code == 200 and "replayed" not in retried.json()
    assert retried.headers["RateLimit-Remaining"] == "0"


def test_a_dead_redis_degrades_the_check_and_the_limiter_fails_open(
    client: TestClient, live_tenant: LiveFn, container: State, on_redis: RedisFeatureCache
) -> None:
    t = live_tenant()
    dead = RedisFeatureCache("redis://127.0.0.1:1/0", timeout_ms=5)
    container.scoring.checker.cache = dead
    container.finops.limiter.store = RedisBuckets(dead.client)
    resp = client.post("/v1/fraud-check", json=txn("dead_1"), headers=auth(t["app"]))
    assert resp.status_code == 200 and "RateLimit-Limit" not in resp.headers
    body = resp.json()
    assert body["degraded"] is True and body["degraded_inputs"] == ["feature_cache"]
    metrics = container.providers.metrics
    assert metrics.counter("fraudrail_rate_limiter_errors_total", tenant=t["id"]) == 1
    assert metrics.counter("fraudrail_degraded_total", tenant=t["id"], input="feature_cache") == 1
