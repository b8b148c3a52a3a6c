"""Token buckets and daily quotas for the rate limiter: in process, or in Redis beside the cache.

``MemoryBuckets`` and ``TAKE_SCRIPT`` do the same float operations in the same order (the math of
``guardrails.budget``), so both give the same decisions on the same timestamps.
"""

from __future__ import annotations

import hashlib
import math
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple, Protocol

import redis

from control_plane.finops.ports import LockSharing, RedisBacked
from guardrails.budget import refill, take
from providers.lru import BoundedMap
from providers.ports import Admission, FeatureCache

DAY_S = 86_400
MAX_TENANTS = 100_000  # per in-process map; past it the least recently seen tenant is forgotten


@dataclass(frozen=True)
class Limits:
    rate: float  # tokens per second
    burst: float  # bucket size
    daily: int | None  # requests per UTC day; None = no daily quota
    throttled: bool = False


class RawTake(NamedTuple):
    allowed: bool
    tokens: float
    retry_after_s: float  # seconds (float) until one token; 0 when allowed
    reason: str  # "" | "rate" | "daily"
    used_today: int


class BucketStore(Protocol):
    def take(self, tenant_id: str, now: float, limits: Limits) -> RawTake: ...

    def reset(self, tenant_id: str) -> None:
        """Start the tenant's bucket full again (its daily count stays)."""
        ...


class MemoryBuckets:
    """In-process buckets, guarded by the memory feature cache's lock (one process only)."""

    def __init__(self, lock: Any = None, *, max_tenants: int = MAX_TENANTS) -> None:
        self._lock = lock if lock is not None else threading.Lock()
        # Bounded (one entry per tenant, at most max_tenants) and expiring: a bucket past its TTL is
        # full again and a day's count past midnight is zero, which is what an absent entry means.
        self._buckets: BoundedMap[str, tuple[float, float]] = BoundedMap(max_tenants, clock=time.time)
        self._days: BoundedMap[str, tuple[int, int]] = BoundedMap(max_tenants, clock=time.time)

    def take(self, tenant_id: str, now: float, limits: Limits) -> RawTake:
        # Step for step what TAKE_SCRIPT does in Redis.
        day = int(now // DAY_S)
        with self._lock:
            tokens, last = self._buckets.get(tenant_id, now) or (limits.burst, now)
            full_in = limits.burst / limits.rate + 1.0
            used = 0
            if limits.daily:
                seen_day, count = self._days.get(tenant_id, now) or (day, 0)
                used = count if seen_day == day else 0
            if limits.daily and used >= limits.daily:
                available = refill(tokens, last, now, limits.rate, limits.burst)
                self._buckets.set(tenant_id, (available, now), full_in, now)
                return RawTake(False, available, 0.0, "daily", used)
            result = take(tokens, last, now, limits.rate, limits.burst)
            self._buckets.set(tenant_id, (result.tokens, now), full_in, now)
            if result.allowed and limits.daily:
                used += 1
                self._days.set(tenant_id, (day, used), DAY_S - now % DAY_S + 1.0, now)
        reason = "" if result.allowed else "rate"
        return RawTake(result.allowed, result.tokens, result.retry_after_s, reason, used)

    def reset(self, tenant_id: str) -> None:
        with self._lock:
            self._buckets.pop(tenant_id)


# The same refill / take as guardrails.budget (same operations, same order, IEEE doubles), plus
# the daily quota; numbers cross the boundary as %.17g strings so no precision is lost.
TAKE_SCRIPT = """
local now = tonumber(ARGV[1])
local rate = tonumber(ARGV[2])
local burst = tonumber(ARGV[3])
local cost = tonumber(ARGV[4])
local daily = tonumber(ARGV[5])
local state = redis.call('HMGET', KEYS[1], 't', 'ts')
local tokens = tonumber(state[1])
local last = tonumber(state[2])
if tokens == nil or last == nil then
  tokens = burst
  last = now
end
local elapsed = now - last
if elapsed < 0 then elapsed = 0 end
if tokens < 0 then tokens = 0 end
local available = tokens + elapsed * rate
if available > burst then available = burst end
local used = 0
if daily > 0 then used = tonumber(redis.call('GET', KEYS[2]) or '0') end
local allowed = 0
local left = available
local retry = 0
local reason = ''
if daily > 0 and used >= daily then
  reason = 'daily'
elseif available + 1e-9 >= cost then
  allowed = 1
  left = available - cost
  if left < 0 then left = 0 end
  if daily > 0 then
    used = redis.call('INCR', KEYS[2])
    if used == 1 then redis.call('EXPIRE', KEYS[2], 2 * 86400) end
  end
else
  reason = 'rate'
  retry = (cost - available) / rate
end
redis.call('HSET', KEYS[1], 't', string.format('%.17g', left), 'ts', string.format('%.17g', now))
redis.call('PEXPIRE', KEYS[1], ARGV[6])
return {allowed, string.format('%.17g', left), string.format('%.17g', retry), reason, used}
"""


class RedisBuckets:
    """Buckets in Redis: one EVALSHA per check (EVAL when the server lost the script), or the same
    script run by the feature cache in front of the check's idempotency claim (``admission``)."""

    def __init__(self, client: redis.Redis[bytes]) -> None:
        self._client = client
        self._sha = hashlib.sha1(TAKE_SCRIPT.encode()).hexdigest()  # noqa: S324 - Redis names scripts by SHA-1

    @staticmethod
    def keys(tenant_id: str, now: float) -> tuple[str, str]:
        # One hash tag per tenant: both keys live in the same cluster slot (the cache's keys too).
        return f"frl:{{{tenant_id}}}:bucket", f"frl:{{{tenant_id}}}:day:{int(now // DAY_S)}"

    @staticmethod
    def admission(tenant_id: str, now: float, limits: Limits) -> Admission:
        """The take as a script the feature cache runs before a claim (``ScriptedAdmission``)."""
        return Admission(TAKE_SCRIPT, RedisBuckets.keys(tenant_id, now), _take_args(now, limits))

    @staticmethod
    def raw_take(reply: Sequence[Any]) -> RawTake:
        """The script's reply as a ``RawTake``."""
        allowed, tokens, retry, reason, used = reply
        return RawTake(
            bool(int(allowed)),
            float(tokens),
            float(retry),
            reason.decode() if isinstance(reason, bytes) else str(reason),
            int(used),
        )

    def take(self, tenant_id: str, now: float, limits: Limits) -> RawTake:
        bucket, day = self.keys(tenant_id, now)
        args = _take_args(now, limits)
        client: Any = self._client  # redis-py's script calls are untyped
        try:
            reply = client.evalsha(self._sha, 2, bucket, day, *args)
        except redis.exceptions.NoScriptError:
            reply = client.eval(TAKE_SCRIPT, 2, bucket, day, *args)  # also caches it for EVALSHA
        return self.raw_take(reply)

    def reset(self, tenant_id: str) -> None:
        self._client.delete(self.keys(tenant_id, 0.0)[0])


def _take_args(now: float, limits: Limits) -> tuple[str, ...]:
    ttl_ms = math.ceil(limits.burst / limits.rate * 1000) + 1000
    return (repr(float(now)), repr(limits.rate), repr(limits.burst), "1", str(limits.daily or 0), str(ttl_ms))


def buckets_for(cache: FeatureCache) -> BucketStore:
    """Redis buckets beside a Redis feature cache; in-process buckets (sharing its lock) otherwise."""
    if isinstance(cache, RedisBacked):
        return RedisBuckets(cache.client)
    return MemoryBuckets(cache.lock if isinstance(cache, LockSharing) else None)
