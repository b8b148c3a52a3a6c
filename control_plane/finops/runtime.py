"""The FinOps runtime of one process: usage counter, rate limiter, budget enforcer.

Built by the composition root with what it needs (no back-reference to the process's wiring).
Per-process buffers are flushed by ``housekeeping_tick`` (the serving process's housekeeping
loop); work that any process may do is a periodic job (``periodic_jobs``) run by the worker.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from control_plane import events
from control_plane.finops import guard, metering, repository, service
from control_plane.finops.enforcement import BudgetEnforcer
from control_plane.finops.limiter import Limits, RateLimiter, buckets_for, tier_limits
from control_plane.finops.prices import PriceTable, estimate_monthly_cost, rollout_plan
from control_plane.finops.settings import FinOpsSettings
from control_plane.jobs.periodic import PeriodicJob
from control_plane.orm_base import utcnow
from control_plane.tenants.orm import Tenant
from providers.ports import EventBus, FeatureCache, MetricsSink, Notifier, ObjectStore

log = logging.getLogger(__name__)

Templates = Mapping[str, Mapping[str, Any]]
TierOf = Callable[[str], "str | None"]


@dataclass
class FinOpsRuntime:
    factory: sessionmaker[Session]
    settings: FinOpsSettings
    prices: PriceTable
    templates: Templates
    object_store: ObjectStore
    usage: metering.UsageCounter
    writer: metering.UsageWriter
    limiter: RateLimiter
    enforcer: BudgetEnforcer
    # The tier of a tenant the serving registry knows (no SQL on the hot path); None if unknown.
    tier_of: TierOf = lambda _tenant_id: None
    clock: Callable[[], datetime] = utcnow
    _last_refresh: float = field(default_factory=time.monotonic)

    def now(self) -> datetime:
        return self.clock()

    # --- metering ---------------------------------------------------------------------------

    def flush(self, now: datetime | None = None) -> int:
        """Write counted fraud checks now (tests; the housekeeping tick calls it every interval)."""
        return self.writer.flush(self.usage, now=now or self.now())

    def meter_jobs(self, now: datetime | None = None) -> dict[str, int]:
        at = now or self.now()
        since = at - timedelta(seconds=self.settings.meter_jobs_lookback_s)
        return self.writer.meter_finished_jobs(since=since, now=at)

    def meter_day(self, day: date, now: datetime | None = None) -> dict[str, Any]:
        return metering.meter_day(
            self.factory, self.prices, self.templates, self.object_store, day, now=now or self.now()
        )

    def periodic_jobs(self) -> list[PeriodicJob]:
        """Finished-job metering every interval; yesterday's hosting and storage every hour (the
        daily meter is idempotent per tenant and day, so a missed midnight is caught up)."""
        return [
            PeriodicJob(metering.METER_JOBS_JOB, self.settings.meter_jobs_interval_s),
            PeriodicJob(
                metering.METER_DAILY_JOB,
                3600.0,
                lambda now: {"day": (now.date() - timedelta(days=1)).isoformat()},
            ),
        ]

    # --- budgets ----------------------------------------------------------------------------

    def evaluate(self, tenant_id: str, now: datetime | None = None) -> dict[str, Any]:
        """The ``finops.evaluate`` job, synchronously."""
        return self.enforcer.evaluate(tenant_id, now=now or self.now())

    def budget_state(self, tenant_id: str, now: datetime | None = None) -> service.BudgetState:
        """``(status, actual, budget, headroom)``: the deployment policy's budget input."""
        from control_plane.tenants import repository as tenants

        with self.factory() as session:
            return service.budget_state(session, tenants.get(session, tenant_id), now=now or self.now())

    def rollout_context(self, session: Session, tenant: Tenant) -> dict[str, Any]:
        """What a rollout's deployment decision needs from FinOps: 403 when frozen, else the budget
        status, the headroom and the monthly cost of the capacity a canary adds."""
        template = self.templates[tenant.tier]
        estimate = estimate_monthly_cost(
            template, rollout_plan(template), self.prices, hours_per_month=self.settings.hours_per_month
        )
        return guard.deployment_context(
            session, tenant, now=self.now(), action="start a rollout", estimated_monthly=estimate.monthly
        )

    # --- rate limits --------------------------------------------------------------------------

    def limits_for(self, tier: str, throttled: bool) -> Limits:
        base = tier_limits(self.templates[tier])
        if not throttled:
            return base
        return Limits(
            rate=self.settings.floor_rps, burst=self.settings.floor_burst, daily=base.daily, throttled=True
        )

    def resolve_limits(self, tenant_id: str) -> Limits | None:
        """First sight of a tenant on the hot path: its tier from the serving registry (no SQL)."""
        tier = self.tier_of(tenant_id)
        return None if tier is None else self.limits_for(tier, False)

    def refresh_limits(self, tenant_id: str | None = None) -> int:
        """Reload tiers and throttles from the database (one tenant, or all)."""
        month = service.month_key(self.now())
        with self.factory() as session:
            tiers = repository.tenant_tiers(session, [tenant_id] if tenant_id else None)
            throttled = repository.throttled_tenants(session, month)
        if tenant_id is not None and tenant_id not in tiers:
            self.limiter.forget(tenant_id)
        for tid, tier in tiers.items():
            self.limiter.set_limits(tid, self.limits_for(tier, tid in throttled))
        return len(tiers)

    def on_tenant_event(self, _topic: str, message: Mapping[str, Any]) -> None:
        tenant_id = message.get("tenant_id")
        if isinstance(tenant_id, str):
            self.refresh_limits(tenant_id)

    # --- this process's housekeeping ------------------------------------------------------------

    def housekeeping_tick(self) -> None:
        """Flush this process's counted checks; now and then reload every limit (a safety net for a
        missed ``finops.limits`` event). Every part is safe to repeat; failures wait for the next."""
        try:
            self.flush()
        except Exception:
            log.exception(
                "finops: flush failed; %d fraud check(s) wait for the next one", self.writer.pending()
            )
        mono = time.monotonic()
        if mono - self._last_refresh >= self.settings.limits_refresh_s:
            self._last_refresh = mono
            try:
                self.refresh_limits()
            except Exception:
                log.exception("finops: limits refresh failed")

    def shutdown(self) -> None:
        try:
            self.flush()
        except Exception:
            log.warning("finops: %d counted fraud check(s) not written at shutdown", self.writer.pending())


def build_finops(
    factory: sessionmaker[Session],
    *,
    templates: Templates,
    object_store: ObjectStore,
    feature_cache: FeatureCache,
    event_bus: EventBus,
    notifier: Notifier,
    metrics: MetricsSink,
    tier_of: TierOf,
    settings: FinOpsSettings | None = None,
) -> FinOpsRuntime:
    """The runtime, subscribed to the events that change limits (called once by the composition root)."""
    settings = settings or FinOpsSettings()
    prices = PriceTable.load(settings.prices_path)
    holder: dict[str, FinOpsRuntime] = {}
    limiter = RateLimiter(
        buckets_for(feature_cache),
        lambda tid: holder["rt"].resolve_limits(tid),
        metrics=metrics,
        max_window_s=settings.refusal_window_s,
    )
    rt = FinOpsRuntime(
        factory=factory,
        settings=settings,
        prices=prices,
        templates=templates,
        object_store=object_store,
        usage=metering.UsageCounter(),
        writer=metering.UsageWriter(
            factory, prices, templates, evaluate_min_interval_s=settings.evaluate_min_interval_s
        ),
        limiter=limiter,
        enforcer=BudgetEnforcer(factory, settings, notifier, templates=templates),
        tier_of=tier_of,
    )
    holder["rt"] = rt  # the limiter asks the runtime for a tenant's limits on first sight
    event_bus.subscribe(events.SERVING_CHANGED, rt.on_tenant_event)
    event_bus.subscribe(events.FINOPS_LIMITS, rt.on_tenant_event)
    return rt
