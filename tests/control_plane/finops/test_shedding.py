"""Refusal windows and load shedding: a tenant the limiter refuses is answered from memory, with the
bucket's own decisions, before routing; everyone else goes through the route as before."""

from __future__ import annotations

import random
from typing import Any

import pytest
from fastapi.testclient import TestClient

from control_plane.bootstrap.state import State
from control_plane.finops import shedding
from control_plane.finops.limiter import DAY_S, Limits, MemoryBuckets, RateDecision, RateLimiter, RawTake
from tests.control_plane.conftest import auth
from tests.control_plane.finops.conftest import FakeClock
from tests.control_plane.scoring.conftest import LiveFn, txn


class CountingBuckets:
    """MemoryBuckets that count the takes (each is a Redis round trip in production)."""

    def __init__(self) -> None:
        self.inner = MemoryBuckets()
        self.takes = 0

    def take(self, tenant_id: str, now: float, limits: Limits) -> RawTake:
        self.takes += 1
        return self.inner.take(tenant_id, now, limits)

    def reset(self, tenant_id: str) -> None:
        self.inner.reset(tenant_id)


def _timeline(seed: int, start: float, n: int) -> list[float]:
    """Request times: floods (many in the same instant), trickles just around the refill instants,
    pauses, one step of the clock backwards, and a UTC midnight."""
    rng = random.Random(seed)
    flood = [0.0, 0.0, 1e-4, 0.001, 0.003, 0.0199, 0.02, 0.0201, 0.0499, 0.05, 0.0501]
    calm = [0.05, 0.2, 0.7, 1.3]
    now, out = start, []
    for i in range(n):
        now += rng.choice(flood if (i // 250) % 3 else calm)
        if i == n // 2:
            now -= 0.4
        out.append(now)
    return out


def _decisions(
    limiter: RateLimiter, clock: FakeClock, tenant: str, times: list[float]
) -> list[RateDecision | None]:
    out = []
    for t in times:
        clock.now = t
        out.append(limiter.decide(tenant))
    return out


def test_refusal_windows_give_exactly_the_buckets_decisions_with_far_fewer_bucket_calls() -> None:
    cases = [
        Limits(rate=20.0, burst=40.0, daily=None),
        Limits(rate=3.0, burst=3.0, daily=200),
        Limits(rate=0.5, burst=1.0, daily=None),  # a throttled floor: windows of up to 1 s
        Limits(rate=50.0, burst=5.0, daily=30),  # the daily quota ends the day early
    ]
    for number, limits in enumerate(cases):
        times = _timeline(number, float((1_800_000_000 // DAY_S + 1) * DAY_S - 30), 3000)
        plain_store, windowed_store = CountingBuckets(), CountingBuckets()
        plain_clock, windowed_clock = FakeClock(), FakeClock()
        plain = RateLimiter(plain_store, lambda _t, lim=limits: lim, clock=plain_clock, max_window_s=0.0)
        windowed = RateLimiter(windowed_store, lambda _t, lim=limits: lim, clock=windowed_clock)

        expected = _decisions(plain, plain_clock, "ten_x", times)
        got = _decisions(windowed, windowed_clock, "ten_x", times)

        assert got == expected, f"case {number}: {limits}"
        refused = sum(1 for d in expected if d is not None and not d.allowed)
        assert refused > 500, f"case {number}: the timeline must flood ({refused} refusals)"
        assert plain_store.takes == len(times)
        assert windowed_store.takes < len(times) - refused // 2, (number, windowed_store.takes, refused)


def test_a_new_limit_or_a_forgotten_tenant_closes_the_window() -> None:
    clock = FakeClock()
    limits = {"ten_x": Limits(rate=1.0, burst=1.0, daily=None)}
    limiter = RateLimiter(MemoryBuckets(), limits.get, clock=clock)
    assert limiter.decide("ten_x") == RateDecision(True, 1, 0, 1, 0, None)
    refused = limiter.decide("ten_x")
    assert refused is not None and not refused.allowed and limiter.refusal("ten_x") == refused

    limiter.set_limits("ten_x", Limits(rate=1.0, burst=1.0, daily=None, throttled=True))  # a new bucket
    assert limiter.refusal("ten_x") is None
    lifted = limiter.decide("ten_x")
    assert lifted is not None and lifted.allowed

    assert limiter.decide("ten_x") is not None and limiter.refusal("ten_x") is not None
    limiter.forget("ten_x")
    assert limiter.refusal("ten_x") is None


def _flood_until_refused(client: TestClient, token: str, prefix: str, limit: int = 500) -> int:
    for i in range(limit):
        if client.post("/v1/fraud-check", json=txn(f"{prefix}{i}"), headers=auth(token)).status_code == 429:
            return i
    raise AssertionError(f"no 429 after {limit} requests")


def _answer(resp: Any) -> tuple[int, dict[str, Any], dict[str, str]]:
    names = ("content-type", "retry-after", "ratelimit-limit", "ratelimit-remaining", "ratelimit-reset")
    return resp.status_code, resp.json(), {n: resp.headers.get(n) for n in names}


def test_a_refused_tenant_is_answered_before_routing_with_the_routes_own_answer(
    client: TestClient, live_tenant: LiveFn, container: State, limiter_clock: FakeClock
) -> None:
    a, b = live_tenant("shed-a"), live_tenant("shed-b")
    store = CountingBuckets()
    limiter = container.finops.limiter
    limiter.store = store
    container.finops.settings.refusal_hold_s = 0.0  # the fake clock never reaches the window's end
    limiter.set_limits(a["id"], Limits(rate=2.0, burst=3.0, daily=None))
    parsed: list[str] = []
    real_check = container.scoring.checker.acheck

    async def check(tenant_id: str, body: Any, **kw: Any) -> Any:
        parsed.append(tenant_id)
        return await real_check(tenant_id, body, **kw)

    container.scoring.checker.acheck = check  # type: ignore[method-assign]

    assert _flood_until_refused(client, a["app"], "a") == 3
    first = client.post("/v1/fraud-check", json=txn("a-first"), headers=auth(a["app"]))
    takes = store.takes
    later = [
        client.post("/v1/fraud-check", json=txn(f"a-shed{i}"), headers=auth(a["app"])) for i in range(50)
    ]

    # 50 refusals inside the window: no bucket call, no body parsed, no scoring...
    assert store.takes == takes and parsed.count(a["id"]) == 3
    # ...and byte for byte the answer the route gave (the clock has not moved).
    assert {str(_answer(r)) for r in later} == {str(_answer(first))}
    status, body, headers = _answer(first)
    assert (status, body["reason"], headers["retry-after"]) == (429, "rate", "1")
    assert headers["content-type"] == "application/problem+json"
    assert (
        container.providers.metrics.counter("fraudrail_rate_limited_total", tenant=a["id"], reason="rate")
        == 52
    )

    # Another tenant is scored as usual meanwhile.
    assert client.post("/v1/fraud-check", json=txn("b1"), headers=auth(b["app"])).status_code == 200
    assert parsed[-1] == b["id"]

    # Half a second later one token exists: the bucket is asked again and allows.
    limiter_clock.advance(0.5)
    assert client.post("/v1/fraud-check", json=txn("a-later"), headers=auth(a["app"])).status_code == 200
    assert store.takes == takes + 2  # B's check and this one


def test_inside_a_window_a_revoked_or_wrong_key_is_still_refused_as_such(
    client: TestClient, live_tenant: LiveFn, container: State, limiter_clock: FakeClock
) -> None:
    a = live_tenant("shed-keys")
    container.finops.limiter.set_limits(a["id"], Limits(rate=1.0, burst=1.0, daily=None))
    _flood_until_refused(client, a["app"], "k")
    assert container.finops.limiter.refusal(a["id"]) is not None

    wrong_secret = a["app"][:-4] + ("AAAA" if not a["app"].endswith("AAAA") else "BBBB")
    assert client.post("/v1/fraud-check", json=txn("k-x"), headers=auth(wrong_secret)).status_code == 401
    # An analyst key of the same tenant cannot score: 403 from the route, not a 429.
    assert client.post("/v1/fraud-check", json=txn("k-y"), headers=auth(a["analyst"])).status_code == 403

    key_id = "key_" + a["app"].removeprefix("frk_").split(".", 1)[0]
    revoked = client.delete(f"/v1/tenants/{a['id']}/keys/{key_id}", headers=auth(a["admin"]))
    assert revoked.status_code == 200, revoked.text
    assert client.post("/v1/fraud-check", json=txn("k-z"), headers=auth(a["app"])).status_code == 401


def test_a_client_that_ignores_its_429s_gets_the_next_ones_late(
    client: TestClient,
    live_tenant: LiveFn,
    container: State,
    limiter_clock: FakeClock,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    holds: list[float] = []

    async def record(seconds: float) -> None:
        holds.append(seconds)

    monkeypatch.setattr(shedding, "_sleep", record)
    a = live_tenant("hold-a")
    limiter = container.finops.limiter
    limiter.set_limits(a["id"], Limits(rate=2.0, burst=1.0, daily=None))
    settings = container.finops.settings
    assert settings.refusal_hold_s == 0.25  # the default

    def post(i: int) -> int:
        return client.post("/v1/fraud-check", json=txn(f"h{i}"), headers=auth(a["app"])).status_code

    assert [post(0), post(1)] == [200, 429]
    assert holds == []  # the refusal that opens a window is answered at once, by the route

    assert post(2) == 429
    limiter_clock.advance(0.4)
    assert post(3) == 429  # still inside the window (0.5 s for one token at 2/s)
    assert len(holds) == 2 and all(0.125 <= h <= 0.375 for h in holds)  # 0.25 s ± 50 %

    settings.refusal_hold_max_requests = 0  # nothing may be held: answered at once
    assert post(4) == 429 and len(holds) == 2
    settings.refusal_hold_max_requests, settings.refusal_hold_s = 1024, 0.0
    assert post(5) == 429 and len(holds) == 2

    limiter_clock.advance(0.1)  # one token: the bucket is asked and allows
    assert post(6) == 200
