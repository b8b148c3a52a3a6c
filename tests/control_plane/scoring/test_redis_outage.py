"""A Redis outage on the async hot path: checks degrade at once while the link is cut, and the
next check after it comes back is whole again (the loop's pool reconnects; nothing is restarted)."""

from __future__ import annotations

from collections.abc import Iterator
from urllib.parse import urlsplit

import pytest
from fastapi.testclient import TestClient

from control_plane.bootstrap.state import State
from control_plane.finops.limiter import RedisBuckets
from providers.redis_cache import RedisFeatureCache
from tests.control_plane.conftest import auth
from tests.control_plane.scoring.conftest import LiveFn, txn
from tests.tcp_cut import TcpCut


@pytest.fixture
def cut_link(redis_url: str) -> Iterator[TcpCut]:
    parts = urlsplit(redis_url)
    link = TcpCut(parts.hostname or "127.0.0.1", parts.port or 6379)
    yield link
    link.cut()


def test_checks_degrade_while_redis_is_cut_and_recover_after(
    client: TestClient, live_tenant: LiveFn, container: State, cut_link: TcpCut, redis_url: str
) -> None:
    t = live_tenant()
    cache = RedisFeatureCache(cut_link.url("redis", urlsplit(redis_url).path), timeout_ms=200)
    checker, limiter = container.scoring.checker, container.finops.limiter
    checker.cache, limiter.store = cache, RedisBuckets(cache.client)
    metrics = container.providers.metrics

    def check(txn_id: str) -> dict[str, object]:
        resp = client.post("/v1/fraud-check", json=txn(txn_id), headers=auth(t["app"]))
        assert resp.status_code == 200, resp.text
        return dict(resp.json())

    try:
        assert check("cut_1")["degraded"] is False
        cut_link.cut()
        during = [check(f"cut_{i}") for i in range(2, 5)]
        assert all(a["degraded_inputs"] == ["feature_cache"] for a in during)
        assert metrics.counter("fraudrail_rate_limiter_errors_total", tenant=t["id"]) == 3
        cut_link.restore()
        after = check("cut_5")
        assert after["degraded"] is False and after["degraded_inputs"] == []
        assert check("cut_1")["replayed"] is True  # what was stored before the outage is still there
    finally:
        client.portal.call(cache.aclose)  # type: ignore[union-attr]
        RedisFeatureCache(redis_url).client.flushdb()
