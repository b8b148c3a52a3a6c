"""Every in-process structure that grows with traffic has a size cap and evicts what expired."""

from __future__ import annotations

from sqlalchemy.orm import sessionmaker

from control_plane.finops.limiter import Limits, MemoryBuckets, RateLimiter
from control_plane.slo.recorder import RequestRecorder
from providers.local.feature_cache import MemoryFeatureCache
from providers.lru import BoundedMap


class Clock:
    def __init__(self, now: float = 1_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def test_bounded_map_keeps_the_most_recently_used_up_to_its_cap() -> None:
    clock = Clock()
    m: BoundedMap[str, int] = BoundedMap(3, clock=clock)
    for i in range(3):
        m.set(f"k{i}", i)
    assert m.get("k0") == 0  # k0 is now the most recently used
    m.set("k3", 3)
    m.set("k4", 4)
    assert len(m) == 3 and m.evicted == 2
    assert m.get("k1") is None and m.get("k2") is None and m.get("k0") == 0


def test_bounded_map_sweeps_expired_entries() -> None:
    clock = Clock()
    m: BoundedMap[str, int] = BoundedMap(100, clock=clock, sweep_every_s=3600)
    for i in range(10):
        m.set(f"short{i}", i, ttl_s=10)
    m.set("long", 1, ttl_s=1000)
    clock.now += 11
    assert len(m) == 11  # expired but not yet swept
    assert m.sweep() == 10
    assert len(m) == 1 and m.get("long") == 1


def test_feature_cache_stays_at_its_cap_and_forgets_expired_answers() -> None:
    clock = Clock()
    cache = MemoryFeatureCache(max_entries=100, clock=clock, sweep_every_s=60)
    for i in range(250):  # one idempotency answer per request, as under load
        cache.set_many("ten_a", {f"idem:tx_{i}": b"x" * 500}, ttl_s=86_400)
    assert len(cache) == 100
    assert cache.get_many("ten_a", ["idem:tx_0", "idem:tx_249"]) == [None, b"x" * 500]

    existing, _ = cache.claim_and_read("ten_a", "idem:tx_new", b"pending", 30, [])
    assert existing is None
    clock.now += 31
    assert cache.get_many("ten_a", ["idem:tx_new"]) == [None]  # hidden at once once expired
    clock.now += 86_400
    cache.set_many("ten_a", {"card:c1": b"state"}, ttl_s=100)  # a write past the interval sweeps
    assert len(cache) == 1


def test_bounded_map_by_weight_evicts_until_it_fits_and_tracks_every_removal() -> None:
    clock = Clock()
    m: BoundedMap[str, bytes] = BoundedMap(
        1000, clock=clock, sweep_every_s=3600, max_weight=100, weigh=lambda _k, v: len(v)
    )
    for i in range(5):
        m.set(f"k{i}", b"x" * 30)  # the fourth 30-byte value no longer fits in 100
    assert len(m) == 3 and m.weight == 90 and m.evicted == 2
    m.set("k4", b"y" * 10)  # replacing a value re-weighs it, nothing else is evicted
    assert len(m) == 3 and m.weight == 70
    m.pop("k3")
    assert m.weight == 40
    m.set("short", b"z" * 5, ttl_s=1)
    clock.now += 2
    assert m.get("short") is None and m.weight == 40  # expired on read
    m.set("big", b"b" * 500)  # alone over the limit: kept (the caller needs it), the rest goes
    assert m.key_list() == ["big"] and m.weight == 500
    m.set("s1", b"s", ttl_s=1)  # and goes first once something newer needs the room
    assert m.key_list() == ["s1"] and m.weight == 1
    clock.now += 2
    assert m.sweep() == 1 and m.weight == 0
    m.set("k", b"k")
    m.clear()
    assert m.weight == 0 and len(m) == 0


def test_feature_cache_bounds_its_bytes_not_only_its_entries() -> None:
    # Answers of ~1 KB fill a byte budget long before an entry count a card state would fill.
    cache = MemoryFeatureCache(max_entries=100_000, max_bytes=200_000, clock=Clock())
    for i in range(1_000):
        cache.set_many("ten_a", {f"idem:tx_{i}": b"a" * 1_000})
    assert cache.bytes_held <= 200_000
    assert 100 < len(cache) < 200  # ~1.4 KB an entry with its overhead
    assert cache.get_many("ten_a", ["idem:tx_999"]) == [b"a" * 1_000]
    assert cache.get_many("ten_a", ["idem:tx_0"]) == [None]
    cache.purge_tenant("ten_a")
    assert cache.bytes_held == 0


def test_rate_limiter_state_is_bounded_and_windows_expire() -> None:
    clock = Clock()
    limits = Limits(rate=1.0, burst=1.0, daily=1000)
    buckets = MemoryBuckets(max_tenants=10)
    limiter = RateLimiter(buckets, lambda _t: limits, clock=clock, max_tenants=10)
    for i in range(25):
        tenant = f"ten_{i}"
        assert limiter.decide(tenant) is not None  # takes the only token
        refused = limiter.decide(tenant)
        assert refused is not None and not refused.allowed  # opens a refusal window
    assert len(buckets._buckets) == 10 and len(buckets._days) == 10
    assert len(limiter._limits) == 10 and len(limiter._windows) == 10
    clock.now += 5  # every window has ended; a sweep removes them (none is read again)
    assert limiter._windows.sweep() == 10 and len(limiter._windows) == 0
    assert buckets._buckets.sweep(clock.now) == 10  # full again: the same as no entry


def test_request_recorder_drops_the_oldest_buckets_past_its_cap() -> None:
    clock = Clock()
    recorder = RequestRecorder(sessionmaker(), bucket_s=10, clock=clock, max_buckets=10)
    for _ in range(30):  # the database is down: nothing is flushed
        recorder.record("ten_a", "mv_1", "stable", ok=True, latency_ms=3.0)
        clock.now += 10
    assert len(recorder) <= 10 and recorder.dropped >= 20
    newest = max(k[3] for k in recorder._buckets)
    assert newest == int(clock.now - 10) // 10 * 10
