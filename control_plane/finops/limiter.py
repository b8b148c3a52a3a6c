"""Per-tenant rate limits on the fraud-check hot path: a token bucket (rps, burst) and a daily quota.

The math is ``guardrails.budget.take``; the state lives next to the feature cache: in process
behind the memory cache's lock, or in Redis behind one atomic Lua script that repeats the same
float operations in the same order (so both give the same decisions on the same timestamps).
Tier limits are held in memory and refreshed when a tenant changes: a check costs no SQL.

A refusal also opens a *refusal window*: until the next token can exist (or midnight, for the daily
quota; at most ``max_window_s``) the limiter answers from memory without touching the bucket, and
``control_plane.finops.shedding`` answers those requests before routing. No request inside the
window could have been allowed (refused requests take no tokens; other processes only take more),
so the decisions are the bucket's own; a flooding tenant then costs a dictionary lookup a request.
"""

from __future__ import annotations

import hashlib
import logging
import math
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, NamedTuple, Protocol

import redis

from control_plane.errors import TooManyRequests
from control_plane.finops.ports import LockSharing, RedisBacked
from guardrails.budget import refill, take
from providers.lru import BoundedMap
from providers.ports import FeatureCache, MetricsSink

log = logging.getLogger(__name__)

DAY_S = 86_400
_TOKEN_EPSILON = 1e-9  # the same slack as guardrails.budget.take
MAX_TENANTS = 100_000  # per in-process map; past it the least recently seen tenant is forgotten


@dataclass(frozen=True)
class Limits:
    rate: float  # tokens per second
    burst: float  # bucket size
    daily: int | None  # requests per UTC day; None = no daily quota
    throttled: bool = False


def tier_limits(template: Mapping[str, Any]) -> Limits:
    q = template["quotas"]
    daily = int(q.get("daily_requests") or 0)
    return Limits(rate=float(q["rps"]), burst=float(q["burst"]), daily=daily or None)


class RateDecision(NamedTuple):
    allowed: bool
    limit: int  # bucket size (or the daily quota when that is what refused)
    remaining: int
    reset_s: int  # seconds until the bucket is full again (or the quota resets)
    retry_after_s: int  # 0 when allowed
    reason: str | None  # None | "rate" | "daily"

    @property
    def headers(self) -> dict[str, str]:
        out = {
            "RateLimit-Limit": str(self.limit),
            "RateLimit-Remaining": str(self.remaining),
            "RateLimit-Reset": str(self.reset_s),
        }
        if not self.allowed:
            out["Retry-After"] = str(self.retry_after_s)
        return out


class RateLimited(TooManyRequests):
    """429; the problem body names the limit, the response carries Retry-After and RateLimit-*."""

    def __init__(self, detail: str, decision: RateDecision) -> None:
        super().__init__(
            detail,
            field="rate_limit",
            extra={
                "retry_after_s": decision.retry_after_s,
                "limit": decision.limit,
                "remaining": decision.remaining,
                "reset_s": decision.reset_s,
                "reason": decision.reason,
            },
        )
        self.headers = decision.headers


@dataclass(frozen=True)
class _Window:
    """A refusal remembered until ``until`` (limiter clock): the bucket state it was decided on."""

    at: float
    until: float
    tokens: float
    limits: Limits
    reason: str  # "rate" | "daily"


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
    """Buckets in Redis: one EVALSHA per check (EVAL when the server lost the script)."""

    def __init__(self, client: redis.Redis[bytes]) -> None:
        self._client = client
        self._sha = hashlib.sha1(TAKE_SCRIPT.encode()).hexdigest()  # noqa: S324 - Redis names scripts by SHA-1

    @staticmethod
    def keys(tenant_id: str, now: float) -> tuple[str, str]:
        # One hash tag per tenant: both keys live in the same cluster slot.
        return f"frl:{{{tenant_id}}}:bucket", f"frl:{{{tenant_id}}}:day:{int(now // DAY_S)}"

    def take(self, tenant_id: str, now: float, limits: Limits) -> RawTake:
        bucket, day = self.keys(tenant_id, now)
        ttl_ms = math.ceil(limits.burst / limits.rate * 1000) + 1000
        args = (
            repr(float(now)),
            repr(limits.rate),
            repr(limits.burst),
            "1",
            str(limits.daily or 0),
            str(ttl_ms),
        )
        client: Any = self._client  # redis-py's script calls are untyped
        try:
            reply = client.evalsha(self._sha, 2, bucket, day, *args)
        except redis.exceptions.NoScriptError:
            reply = client.eval(TAKE_SCRIPT, 2, bucket, day, *args)  # also caches it for EVALSHA
        allowed, tokens, retry, reason, used = reply
        return RawTake(
            bool(int(allowed)),
            float(tokens),
            float(retry),
            reason.decode() if isinstance(reason, bytes) else str(reason),
            int(used),
        )

    def reset(self, tenant_id: str) -> None:
        self._client.delete(self.keys(tenant_id, 0.0)[0])


def buckets_for(cache: FeatureCache) -> BucketStore:
    """Redis buckets beside a Redis feature cache; in-process buckets (sharing its lock) otherwise."""
    if isinstance(cache, RedisBacked):
        return RedisBuckets(cache.client)
    return MemoryBuckets(cache.lock if isinstance(cache, LockSharing) else None)


class RateLimiter:
    """``check(tenant_id)`` on the hot path: in-memory limits, one bucket take, no SQL."""

    def __init__(
        self,
        store: BucketStore,
        resolve: Callable[[str], Limits | None],
        *,
        metrics: MetricsSink | None = None,
        clock: Callable[[], float] = time.time,
        max_window_s: float = 1.0,
        max_tenants: int = MAX_TENANTS,
    ) -> None:
        self.store = store
        self.clock = clock
        self.max_window_s = max_window_s  # bounds how long another process's reset goes unseen
        self._resolve = resolve
        self._metrics = metrics
        # One entry per tenant, bounded; a window expires at its end (swept, not only hidden).
        self._limits: BoundedMap[str, Limits] = BoundedMap(max_tenants, clock=clock)
        self._windows: BoundedMap[str, _Window] = BoundedMap(max_tenants, clock=clock)

    def limits(self, tenant_id: str) -> Limits | None:
        found = self._limits.get(tenant_id)
        if found is None:
            found = self._resolve(tenant_id)
            if found is not None:
                self._limits.set(tenant_id, found)
        return found

    def set_limits(self, tenant_id: str, limits: Limits) -> None:
        """Replace a tenant's limits (a tier change, a throttle). Entering or leaving a throttle
        starts the bucket full at the new size, so a lifted tenant is not held back by the floor."""
        before = self._limits.get(tenant_id)
        self._limits.set(tenant_id, limits)
        self._windows.pop(tenant_id)
        if before is not None and before.throttled != limits.throttled:
            try:
                self.store.reset(tenant_id)
            except (redis.RedisError, OSError) as exc:
                log.warning("could not reset the rate-limit bucket of %s: %s", tenant_id, exc)

    def forget(self, tenant_id: str) -> None:
        """A deleted tenant: drop its limits (a later request resolves them again, or nothing)."""
        self._limits.pop(tenant_id)
        self._windows.pop(tenant_id)

    def refusal(self, tenant_id: str) -> RateDecision | None:
        """The refusal for a tenant inside an open refusal window (no bucket call); None otherwise."""
        window = self._windows.get(tenant_id)
        if window is None:
            return None
        now = self.clock()
        if not window.at <= now < window.until:
            self._windows.pop(tenant_id)
            return None
        limits = window.limits
        if window.reason == "daily":
            return _daily_refusal(limits, now)
        tokens = min(limits.burst, window.tokens + (now - window.at) * limits.rate)
        full_in = math.ceil(max(0.0, limits.burst - tokens) / limits.rate)
        retry = max(1, math.ceil((1.0 - tokens) / limits.rate - _TOKEN_EPSILON))
        return RateDecision(False, int(limits.burst), 0, full_in, retry, "rate")

    def decide(self, tenant_id: str) -> RateDecision | None:
        """The decision for one request; None when the tenant is unknown here (nothing to limit)."""
        refused = self.refusal(tenant_id)
        if refused is not None:
            return refused
        limits = self.limits(tenant_id)
        if limits is None:
            return None
        now = self.clock()
        try:
            raw = self.store.take(tenant_id, now, limits)
        except (redis.RedisError, OSError) as exc:
            # Fail open: losing the limiter must not stop fraud checks.
            log.warning("rate limiter unavailable, allowing: %s", exc)
            if self._metrics is not None:
                self._metrics.increment("fraudrail_rate_limiter_errors_total", tenant=tenant_id)
            return None
        burst = int(limits.burst)
        full_in = math.ceil(max(0.0, limits.burst - raw.tokens) / limits.rate)
        if raw.allowed:
            return RateDecision(True, burst, int(raw.tokens + _TOKEN_EPSILON), full_in, 0, None)
        if raw.reason == "daily":
            decision = _daily_refusal(limits, now)
            open_for = float(decision.reset_s)
        else:
            retry = max(1, math.ceil(raw.retry_after_s - _TOKEN_EPSILON))
            decision = RateDecision(False, burst, 0, full_in, retry, "rate")
            # The bucket allows once available + epsilon >= 1: the window ends at that instant.
            open_for = raw.retry_after_s - _TOKEN_EPSILON / limits.rate
        until = now + min(open_for, self.max_window_s)
        self._windows.set(tenant_id, _Window(now, until, raw.tokens, limits, raw.reason), until - now, now)
        return decision

    def check(self, tenant_id: str) -> RateDecision | None:
        """Allow or raise ``RateLimited`` (429 with Retry-After and RateLimit-* headers)."""
        decision = self.decide(tenant_id)
        if decision is None or decision.allowed:
            return decision
        raise self.refused(tenant_id, decision)

    def refused(self, tenant_id: str, decision: RateDecision) -> RateLimited:
        """The 429 for a refusal (counted in ``fraudrail_rate_limited_total``)."""
        if self._metrics is not None:
            self._metrics.increment(
                "fraudrail_rate_limited_total", tenant=tenant_id, reason=str(decision.reason)
            )
        limits = self._limits.get(tenant_id)
        if decision.reason == "daily":
            detail = (
                f"daily quota of {decision.limit} fraud checks reached; it resets at 00:00 UTC "
                f"(in {decision.reset_s} s)"
            )
        elif limits is not None and limits.throttled:
            detail = (
                f"the tenant is throttled to {limits.rate:g} request(s)/s because its monthly budget is "
                f"spent; retry in {decision.retry_after_s} s"
            )
        else:
            rate = f"{limits.rate:g}" if limits else "?"
            detail = (
                f"rate limit of {rate} requests/s (burst {decision.limit}) exceeded; "
                f"retry in {decision.retry_after_s} s"
            )
        return RateLimited(detail, decision)


def _daily_refusal(limits: Limits, now: float) -> RateDecision:
    reset = int(DAY_S - (now % DAY_S)) or DAY_S
    return RateDecision(False, int(limits.daily or 0), 0, reset, reset, "daily")


def headers_of(decision: RateDecision | None) -> dict[str, str] | None:
    return decision.headers if decision is not None else None
