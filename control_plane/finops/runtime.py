"""The FinOps runtime of one process: usage counter and flusher, rate limiter, budget enforcer."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import TYPE_CHECKING, Any

from control_plane.finops import guard, metering, repository, service
from control_plane.finops.enforcement import LIMITS_TOPIC, BudgetEnforcer
from control_plane.finops.limiter import Limits, RateLimiter, buckets_for, tier_limits
from control_plane.finops.prices import PriceTable, estimate_monthly_cost, rollout_plan
from control_plane.finops.settings import FinOpsSettings
from control_plane.orm_base import utcnow
from control_plane.registry.service import SERVING_TOPIC
from control_plane.tenants.orm import Tenant
from providers.ports import DeliveryResult, Notification, Notifier

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from control_plane.container import Container

log = logging.getLogger(__name__)


@dataclass
class FinOpsRuntime:
    container: Container
    settings: FinOpsSettings
    prices: PriceTable
    usage: metering.UsageCounter
    writer: metering.UsageWriter
    limiter: RateLimiter
    enforcer: BudgetEnforcer
    clock: Callable[[], datetime] = utcnow
    flusher: Flusher = field(init=False)

    def __post_init__(self) -> None:
        self.flusher = Flusher(self, self.settings)

    def now(self) -> datetime:
        return self.clock()

    # --- metering ---------------------------------------------------------------------------

    def flush(self, now: datetime | None = None) -> int:
        """Write counted fraud checks now (tests; the flusher calls it every interval)."""
        return self.writer.flush(self.usage, now=now or self.now())

    def meter_jobs(self, now: datetime | None = None) -> dict[str, int]:
        at = now or self.now()
        since = at - timedelta(seconds=self.settings.meter_jobs_lookback_s)
        return self.writer.meter_finished_jobs(since=since, now=at)

    def meter_day(self, day: date, now: datetime | None = None) -> dict[str, Any]:
        c = self.container
        return metering.meter_day(
            c.factory, self.prices, c.templates, c.providers.object_store, day, now=now or self.now()
        )

    # --- budgets ----------------------------------------------------------------------------

    def evaluate(self, tenant_id: str, now: datetime | None = None) -> dict[str, Any]:
        """The ``finops.evaluate`` job, synchronously."""
        return self.enforcer.evaluate(tenant_id, now=now or self.now())

    def budget_state(self, tenant_id: str, now: datetime | None = None) -> service.BudgetState:
        """``(status, actual, budget, headroom)``: the deployment policy's budget input."""
        from control_plane.tenants import repository as tenants

        with self.container.factory() as session:
            return service.budget_state(session, tenants.get(session, tenant_id), now=now or self.now())

    def rollout_context(self, session: Session, tenant: Tenant) -> dict[str, Any]:
        """The rollouts module's ``deployment_context`` hook: 403 when frozen, else the budget
        status, the headroom and the monthly cost of the capacity a canary adds."""
        estimate = estimate_monthly_cost(
            self.container.template(tenant.tier),
            rollout_plan(self.container.template(tenant.tier)),
            self.prices,
            hours_per_month=self.settings.hours_per_month,
        )
        return guard.deployment_context(
            session, tenant, now=self.now(), action="start a rollout", estimated_monthly=estimate.monthly
        )

    def notifier(self) -> Notifier:
        """``extras["notifier"]`` when set (an override), else the providers' Notifier port."""
        c = self.container
        found = c.extras.get("notifier") or getattr(c.providers, "notifier", None)
        return found if found is not None else _NoNotifier()

    # --- rate limits --------------------------------------------------------------------------

    def limits_for(self, tier: str, throttled: bool) -> Limits:
        base = tier_limits(self.container.template(tier))
        if not throttled:
            return base
        return Limits(
            rate=self.settings.floor_rps, burst=self.settings.floor_burst, daily=base.daily, throttled=True
        )

    def resolve_limits(self, tenant_id: str) -> Limits | None:
        """First sight of a tenant on the hot path: its tier from the serving registry (no SQL)."""
        serving = self.container.scoring.serving.get(tenant_id)
        return None if serving is None else self.limits_for(serving.tier, False)

    def refresh_limits(self, tenant_id: str | None = None) -> int:
        """Reload tiers and throttles from the database (one tenant, or all)."""
        month = service.month_key(self.now())
        with self.container.factory() as session:
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


class _NoNotifier:
    def send(self, contacts: Mapping[str, Any], note: Notification) -> list[DeliveryResult]:
        log.warning("finops: no Notifier wired; %r not delivered (the bus event still is)", note.title)
        return []


class Flusher:
    """Background thread: flush counts every interval; scan finished jobs, queue the daily
    metering at a day change, reload limits now and then. Started and stopped in the lifespan."""

    def __init__(self, rt: FinOpsRuntime, settings: FinOpsSettings) -> None:
        self.rt = rt
        self.settings = settings
        self.wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._day = rt.now().date()
        self._last_jobs_scan = time.monotonic()
        self._last_refresh = time.monotonic()

    def start(self) -> None:
        self._catch_up()
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="fraudrail-finops", daemon=True)
        self._thread.start()

    def _catch_up(self) -> None:
        """A process that was down at midnight still meters yesterday."""
        now = self.rt.now()
        try:
            if metering.queue_daily_metering(
                self.rt.container.factory, now.date() - timedelta(days=1), now=now
            ):
                self.rt.container.on_enqueue()
        except Exception:
            log.exception("finops: daily metering catch-up failed")

    def _run(self) -> None:
        while not self._stop.is_set():
            self.wake.wait(self.settings.flush_interval_s)
            self.wake.clear()
            if self._stop.is_set():
                break
            self.tick()

    def tick(self) -> None:
        """One round of background work; every part is safe to repeat and failures are retried."""
        rt = self.rt
        now = rt.now()
        try:
            rt.flush(now)
        except Exception:
            log.exception(
                "finops: flush failed; %d fraud check(s) wait for the next one", rt.writer.pending()
            )
        mono = time.monotonic()
        if mono - self._last_jobs_scan >= self.settings.meter_jobs_interval_s:
            self._last_jobs_scan = mono
            try:
                rt.meter_jobs(now)
            except Exception:
                log.exception("finops: job metering failed")
        if now.date() != self._day:
            try:
                if metering.queue_daily_metering(rt.container.factory, self._day, now=now):
                    rt.container.on_enqueue()
                self._day = now.date()
            except Exception:
                log.exception("finops: could not queue the daily metering")
        if mono - self._last_refresh >= self.settings.limits_refresh_s:
            self._last_refresh = mono
            try:
                rt.refresh_limits()
            except Exception:
                log.exception("finops: limits refresh failed")

    def stop(self) -> None:
        self._stop.set()
        self.wake.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._thread = None
        try:
            self.rt.flush()
        except Exception:
            log.warning("finops: %d counted fraud check(s) not written at shutdown", self.rt.writer.pending())


def build_finops(c: Container, settings: FinOpsSettings | None = None) -> FinOpsRuntime:
    """Wire the runtime into the container's ports and bus (called once by ``build_container``)."""
    settings = settings or FinOpsSettings()
    prices = PriceTable.load(settings.prices_path)
    p = c.providers
    holder: dict[str, FinOpsRuntime] = {}
    limiter = RateLimiter(
        buckets_for(p.feature_cache),
        lambda tid: holder["rt"].resolve_limits(tid),
        metrics=p.metrics,
        max_window_s=settings.refusal_window_s,
    )
    rt = FinOpsRuntime(
        container=c,
        settings=settings,
        prices=prices,
        usage=metering.UsageCounter(),
        writer=metering.UsageWriter(
            c.factory,
            prices,
            c.templates,
            evaluate_min_interval_s=settings.evaluate_min_interval_s,
            on_enqueue=lambda: c.on_enqueue(),
        ),
        limiter=limiter,
        enforcer=BudgetEnforcer(
            c.factory, settings, p.event_bus, lambda: holder["rt"].notifier(), templates=c.templates
        ),
    )
    holder["rt"] = rt
    p.event_bus.subscribe(SERVING_TOPIC, rt.on_tenant_event)
    p.event_bus.subscribe(LIMITS_TOPIC, rt.on_tenant_event)
    c.extras["deployment_context"] = rt.rollout_context
    return rt
