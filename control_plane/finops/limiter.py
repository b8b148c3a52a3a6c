"""Per-tenant rate limits on the fraud-check hot path: a token bucket (rps, burst) and a daily quota.

The math is ``guardrails.budget.take``; the state lives next to the feature cache
(``control_plane.finops.buckets``): in process behind the memory cache's lock, or in Redis behind
one atomic Lua script that repeats the same float operations in the same order (so both give the
same decisions on the same timestamps). With the cache on Redis too, the fraud-check hot path has
the cache run that script in front of the check's idempotency claim (``scripted_take`` /
``settle``): one round trip for both.
Tier limits are held in memory and refreshed when a tenant changes: a check costs no SQL.

A refusal also opens a *refusal window*: until the next token can exist (or midnight, for the daily
quota; at most ``max_window_s``) the limiter answers from memory without touching the bucket, and
``control_plane.finops.shedding`` answers those requests before routing. No request inside the
window could have been allowed (refused requests take no tokens; other processes only take more),
so the decisions are the bucket's own; a flooding tenant then costs a dictionary lookup a request.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

import redis

from control_plane.errors import TooManyRequests
from control_plane.finops.buckets import DAY_S as DAY_S
from control_plane.finops.buckets import MAX_TENANTS as MAX_TENANTS
from control_plane.finops.buckets import BucketStore as BucketStore
from control_plane.finops.buckets import Limits as Limits
from control_plane.finops.buckets import MemoryBuckets as MemoryBuckets
from control_plane.finops.buckets import RawTake as RawTake
from control_plane.finops.buckets import RedisBuckets as RedisBuckets
from control_plane.finops.buckets import buckets_for as buckets_for
from providers.lru import BoundedMap
from providers.ports import Admission, MetricsSink

log = logging.getLogger(__name__)

_TOKEN_EPSILON = 1e-9  # the same slack as guardrails.budget.take


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


class ScriptedTake(NamedTuple):
    """A bucket take the feature cache runs on Redis in front of a check's claim."""

    admission: Admission
    now: float
    limits: Limits


@dataclass(frozen=True)
class _Window:
    """A refusal remembered until ``until`` (limiter clock): the bucket state it was decided on."""

    at: float
    until: float
    tokens: float
    limits: Limits
    reason: str  # "rate" | "daily"


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
            self.unavailable(tenant_id, exc)
            return None
        return self._decided(tenant_id, now, limits, raw)

    def unavailable(self, tenant_id: str, exc: Exception) -> None:
        """The buckets could not be reached: fail open (losing the limiter must not stop fraud
        checks), logged and counted in ``fraudrail_rate_limiter_errors_total``."""
        log.warning("rate limiter unavailable, allowing: %s", exc)
        if self._metrics is not None:
            self._metrics.increment("fraudrail_rate_limiter_errors_total", tenant=tenant_id)

    def _decided(self, tenant_id: str, now: float, limits: Limits, raw: RawTake) -> RateDecision:
        """A bucket take as a decision; a refusal opens the tenant's refusal window."""
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

    # The Redis hot path takes the token inside the script that claims the check's idempotency key
    # and reads its states (one round trip instead of two): ``scripted_take`` before the script,
    # ``settle`` with its reply. A refusal then claims nothing, as when the take comes first.

    @property
    def scripted(self) -> bool:
        """The buckets are in Redis, where the feature cache can run the take in front of a claim."""
        return isinstance(self.store, RedisBuckets)

    def scripted_take(self, tenant_id: str) -> ScriptedTake | None:
        """The take to run in the claim's script; None when the tenant is unknown here. Raises
        ``RateLimited`` inside a refusal window (no bucket call)."""
        refused = self.refusal(tenant_id)
        if refused is not None:
            raise self.refused(tenant_id, refused)
        limits = self.limits(tenant_id)
        if limits is None:
            return None
        now = self.clock()
        return ScriptedTake(RedisBuckets.admission(tenant_id, now, limits), now, limits)

    def settle(self, tenant_id: str, take: ScriptedTake, reply: Sequence[Any]) -> RateDecision:
        """The decision from the script's reply; raises ``RateLimited`` when it refused."""
        decision = self._decided(tenant_id, take.now, take.limits, RedisBuckets.raw_take(reply))
        if decision.allowed:
            return decision
        raise self.refused(tenant_id, decision)

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
