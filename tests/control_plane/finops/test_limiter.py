"""Rate limits: 429 with Retry-After and RateLimit-* after the burst, refill, the daily quota, the Redis
Lua bucket deciding exactly as the in-process one, and one tenant's flood never limiting another."""

from __future__ import annotations

import random
import threading
import time
import uuid
from typing import Any

import redis
from fastapi.testclient import TestClient

from control_plane.bootstrap.state import State
from control_plane.finops.limiter import DAY_S, Limits, MemoryBuckets, RawTake, RedisBuckets
from tests.control_plane.conftest import auth
from tests.control_plane.finops.conftest import FakeClock
from tests.control_plane.scoring.conftest import LiveFn, txn


def _shrink(container: State, tenant_id: str, **quotas: Any) -> None:
    """Tier quotas for this test's container (the templates are loaded per container)."""
    template = container.templates["standard"]
    template["quotas"] = {**template["quotas"], **quotas}
    container.finops.refresh_limits(tenant_id)


def test_429_after_the_burst_with_headers_and_recovery_after_the_refill(
    client: TestClient, live_tenant: LiveFn, container: State, limiter_clock: FakeClock
) -> None:
    t = live_tenant("burst-co")
    _shrink(container, t["id"], rps=2, burst=3)
    answers = [client.post("/v1/fraud-check", json=txn(f"b{i}"), headers=auth(t["app"])) for i in range(4)]
    assert [r.status_code for r in answers] == [200, 200, 200, 429]
    assert [r.headers["RateLimit-Remaining"] for r in answers[:3]] == ["2", "1", "0"]
    assert answers[0].headers["RateLimit-Limit"] == "3"
    limited = answers[3]
    assert limited.headers["content-type"] == "application/problem+json"
    assert limited.headers["Retry-After"] == "1"  # one token at 2/s: 0.5 s, rounded up
    assert (limited.headers["RateLimit-Limit"], limited.headers["RateLimit-Remaining"]) == ("3", "0")
    assert limited.headers["RateLimit-Reset"] == "2"  # 3 tokens at 2/s to full
    body = limited.json()
    assert body["status"] == 429 and body["reason"] == "rate" and body["retry_after_s"] == 1
    assert "rate limit of 2 requests/s" in body["detail"]
    assert (
        container.providers.metrics.counter("fraudrail_rate_limited_total", tenant=t["id"], reason="rate")
        == 1
    )

    limiter_clock.advance(0.49)
    assert client.post("/v1/fraud-check", json=txn("b4"), headers=auth(t["app"])).status_code == 429
    limiter_clock.advance(0.01)  # 0.5 s after the refusal: one token
    assert client.post("/v1/fraud-check", json=txn("b5"), headers=auth(t["app"])).status_code == 200
    limiter_clock.advance(1.5)
    statuses = [
        client.post("/v1/fraud-check", json=txn(f"c{i}"), headers=auth(t["app"])).status_code
        for i in range(4)
    ]
    assert statuses == [200, 200, 200, 429]


def test_the_daily_quota_refuses_until_midnight_utc(
    client: TestClient, live_tenant: LiveFn, container: State, limiter_clock: FakeClock
) -> None:
    t = live_tenant("daily-quota-co")
    _shrink(container, t["id"], daily_requests=3)
    limiter_clock.now = (1_800_000_000 // DAY_S + 1) * DAY_S - 100.0  # 100 s before a UTC midnight
    ok = [client.post("/v1/fraud-check", json=txn(f"d{i}"), headers=auth(t["app"])) for i in range(3)]
    assert [r.status_code for r in ok] == [200, 200, 200]
    refused = client.post("/v1/fraud-check", json=txn("d3"), headers=auth(t["app"]))
    assert refused.status_code == 429 and refused.json()["reason"] == "daily"
    assert refused.headers["Retry-After"] == "100" and refused.headers["RateLimit-Limit"] == "3"
    assert "daily quota of 3" in refused.json()["detail"]
    limiter_clock.advance(100.0)
    assert client.post("/v1/fraud-check", json=txn("d4"), headers=auth(t["app"])).status_code == 200


MIDNIGHT = (1_800_000_000 // DAY_S + 1) * DAY_S


def _sequence(seed: int, n: int) -> list[float]:
    """Timestamps with bursts, pauses, a clock step backwards and a day change."""
    rng = random.Random(seed)
    now = float(MIDNIGHT - 400)
    out = []
    for i in range(n):
        gap = rng.choice([0.0, 0.0, 0.001, 0.013, 0.1, 0.25, 0.333, 1.7])
        if i == n // 3:
            gap = -0.5
        now += gap
        out.append(now)
    out.append(now + 500.0)  # past midnight
    return out


def test_the_redis_lua_bucket_decides_exactly_as_the_in_process_one(redis_url: str) -> None:
    client: redis.Redis[bytes] = redis.Redis.from_url(redis_url)
    redis_buckets, memory = RedisBuckets(client), MemoryBuckets()
    cases = [
        Limits(rate=5.0, burst=10.0, daily=150),
        Limits(rate=0.7, burst=3.5, daily=None),
        Limits(rate=1000.0, burst=2000.0, daily=40),
    ]
    for number, limits in enumerate(cases):
        tenant = f"ten_{uuid.uuid4().hex}"
        try:
            got_redis: list[RawTake] = []
            got_memory: list[RawTake] = []
            for now in _sequence(number, 600):
                got_redis.append(redis_buckets.take(tenant, now, limits))
                got_memory.append(memory.take(tenant, now, limits))
            assert got_redis == got_memory  # every field, floats bit for bit
            reasons = {r.reason for r in got_memory}
            assert "" in reasons and ("rate" in reasons or limits.rate == 1000.0)
            if limits.daily:
                assert "daily" in reasons
        finally:
            client.delete(
                *RedisBuckets.keys(tenant, MIDNIGHT - 1.0), *RedisBuckets.keys(tenant, MIDNIGHT + 1.0)
            )


def test_evalsha_falls_back_to_eval_when_the_server_lost_the_script(redis_url: str) -> None:
    client: redis.Redis[bytes] = redis.Redis.from_url(redis_url)
    buckets = RedisBuckets(client)
    tenant = f"ten_{uuid.uuid4().hex}"
    limits = Limits(rate=1.0, burst=2.0, daily=None)
    try:
        client.script_flush()
        assert buckets.take(tenant, 1000.0, limits).allowed is True  # NOSCRIPT → EVAL
        assert buckets.take(tenant, 1000.0, limits).allowed is True  # EVALSHA now
        third = buckets.take(tenant, 1000.0, limits)
        assert (third.allowed, third.reason, third.retry_after_s) == (False, "rate", 1.0)
    finally:
        client.delete(*RedisBuckets.keys(tenant, 1000.0))


def test_a_limiter_on_redis_refuses_over_http_too(
    client: TestClient, live_tenant: LiveFn, container: State, limiter_clock: FakeClock, redis_url: str
) -> None:
    t = live_tenant("redis-limit-co")
    container.finops.limiter.store = RedisBuckets(redis.Redis.from_url(redis_url))
    _shrink(container, t["id"], rps=1, burst=2)
    limiter_clock.now = time.time() + random.random()
    try:
        codes = [
            client.post("/v1/fraud-check", json=txn(f"r{i}"), headers=auth(t["app"])).status_code
            for i in range(3)
        ]
        assert codes == [200, 200, 429]
    finally:
        redis.Redis.from_url(redis_url).delete(*RedisBuckets.keys(t["id"], limiter_clock.now))


def test_a_check_runs_no_sql(container: State, live_tenant: LiveFn) -> None:
    """Limits are resolved once from the serving registry, then held in memory: the hot path's
    limit check never queries the database (its speed is in bench/bench_isolation.py)."""
    t = live_tenant("no-sql-co")
    limiter = container.finops.limiter
    limiter.forget(t["id"])
    queries: list[str] = []
    from sqlalchemy import event

    def count(*_args: Any) -> None:
        queries.append("q")

    event.listen(container.engine, "before_cursor_execute", count)
    try:
        decisions = [limiter.check(t["id"]) for _ in range(100)]
    finally:
        event.remove(container.engine, "before_cursor_execute", count)
    assert queries == []
    assert all(d is not None and d.allowed for d in decisions)
    assert limiter.limits(t["id"]) is not None


def test_one_tenant_flooding_is_refused_while_another_is_never_limited(
    client: TestClient, live_tenant: LiveFn, container: State
) -> None:
    """The flood is refused, mostly before routing and held until its windows end; the other tenant
    is never limited nor held. (The p99 comparison under load is bench/bench_isolation.py: timing
    bounds in tests on 2 shared cores would be noise.)"""
    a, b = live_tenant("flood-a"), live_tenant("calm-b")
    container.finops.limiter.set_limits(a["id"], Limits(rate=20.0, burst=20.0, daily=None))
    stop = threading.Event()
    a_codes: list[int] = []
    lock = threading.Lock()

    def flood(worker: int) -> None:
        i = 0
        while not stop.is_set():
            code = client.post(
                "/v1/fraud-check", json=txn(f"a{worker}-{i}"), headers=auth(a["app"])
            ).status_code
            with lock:
                a_codes.append(code)
            i += 1

    threads = [threading.Thread(target=flood, args=(w,)) for w in range(3)]
    for thread in threads:
        thread.start()
    try:
        b_codes = [
            client.post("/v1/fraud-check", json=txn(f"b{i}"), headers=auth(b["app"])).status_code
            for i in range(150)
        ]
    finally:
        stop.set()
        for thread in threads:
            thread.join(timeout=30)
    assert set(b_codes) == {200}
    assert a_codes.count(429) > 0 and set(a_codes) <= {200, 429}
    metrics = container.providers.metrics
    assert metrics.counter("fraudrail_rate_limit_held_total", tenant=a["id"]) > 0
    assert metrics.counter("fraudrail_rate_limit_held_total", tenant=b["id"]) == 0
    assert metrics.counter("fraudrail_rate_limited_total", tenant=b["id"], reason="rate") == 0
