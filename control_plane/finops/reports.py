"""A tenant's month of usage and cost as the API answers it: ``GET /v1/usage`` and ``GET /v1/costs``
(``finops.router``) and the console's usage page (``web.usage_pages``) run these same steps, so
both check the same scopes and show the same figures. A step reads only; it never commits."""

from __future__ import annotations

from decimal import Decimal

from sqlalchemy.orm import Session

from control_plane.auth.scopes import Principal, Scope
from control_plane.finops import service
from control_plane.finops.prices import Meter, cents
from control_plane.finops.runtime import FinOpsRuntime
from control_plane.finops.schemas import (
    BudgetOut,
    CostLine,
    CostsOut,
    DayCost,
    DayUsage,
    ForecastOut,
    LimitsOut,
    MeterQuantity,
    UsageLine,
    UsageOut,
)
from control_plane.tenancy import tenant_of
from control_plane.tenants import repository as tenants

READERS = frozenset({Scope.TENANT_ADMIN, Scope.SRE})


def plain(value: Decimal) -> Decimal:
    """A quantity without trailing zeros (and never in exponent form)."""
    return value.quantize(Decimal(1)) if value == value.to_integral_value() else value.normalize()


def budget_out(rt: FinOpsRuntime, view: service.BudgetView) -> BudgetOut:
    limits = rt.limiter.limits(view.tenant_id)
    return BudgetOut(
        tenant_id=view.tenant_id,
        month=view.month,
        amount=view.budget,
        currency=view.currency,
        status=view.status,
        throttled=view.throttled,
        actual=view.actual,
        forecast=view.forecast,
        headroom=view.headroom,
        actual_fraction=view.actual_fraction,
        forecast_fraction=view.forecast_fraction,
        frozen_at=view.frozen_at,
        throttled_at=view.throttled_at,
        thresholds_notified=view.notified,
        evaluated_at=view.evaluated_at,
        limits=LimitsOut(
            rps=limits.rate, burst=limits.burst, daily_requests=limits.daily, throttled=limits.throttled
        )
        if limits
        else None,
    )


def usage_report(session: Session, rt: FinOpsRuntime, principal: Principal, month: str | None) -> UsageOut:
    """The caller's tenant's usage by day and by meter, month to date (``month``: YYYY-MM, default
    this month), with the fraud checks this process counted but has not written yet."""
    tenant_id = tenant_of(principal, READERS)
    usage = service.month_usage(session, rt.prices, tenant_id, month=month, now=rt.now())
    return UsageOut(
        tenant_id=tenant_id,
        month=usage.month,
        as_of=usage.as_of,
        month_to_date={
            m: MeterQuantity(unit=rt.prices.unit(Meter(m)), quantity=plain(q))
            for m, q in sorted(usage.by_meter_quantity.items())
        },
        days=[
            DayUsage(day=d["day"], meters={m: plain(v["quantity"]) for m, v in sorted(d["meters"].items())})
            for d in usage.days
        ],
        lines=[
            UsageLine(
                meter=ln["meter"], dimension=ln["dimension"], unit=ln["unit"], quantity=plain(ln["quantity"])
            )
            for ln in usage.lines
        ],
        unflushed_fraud_checks=rt.usage.peek(tenant_id),
    )


def cost_report(session: Session, rt: FinOpsRuntime, principal: Principal, month: str | None) -> CostsOut:
    """The caller's tenant's cost (usage times the price table) by day and meter, month to date, a
    linear month-end forecast and, for the current month only, the budget's state."""
    tenant_id = tenant_of(principal, READERS)
    now = rt.now()
    tenant = tenants.get(session, tenant_id)
    usage = service.month_usage(session, rt.prices, tenant_id, month=month, now=now)
    to_date = cents(usage.cost_to_date)
    projected = service.forecast(to_date, usage.start, usage.end, now)
    current = usage.month == service.month_key(now)
    return CostsOut(
        tenant_id=tenant_id,
        month=usage.month,
        currency=rt.prices.currency,
        as_of=usage.as_of,
        month_to_date=to_date,
        by_meter={m: cents(v) for m, v in sorted(usage.by_meter_cost.items())},
        days=[
            DayCost(
                day=d["day"],
                cost=cents(d["cost"]),
                by_meter={m: cents(v["cost"]) for m, v in sorted(d["meters"].items())},
            )
            for d in usage.days
        ],
        lines=[
            CostLine(
                meter=ln["meter"],
                dimension=ln["dimension"],
                unit=ln["unit"],
                quantity=plain(ln["quantity"]),
                cost=cents(ln["cost"]),
            )
            for ln in usage.lines
        ],
        forecast=ForecastOut(
            month_end=projected.month_end,
            method=projected.method,
            elapsed_days=projected.elapsed_days,
            days_in_month=projected.days_in_month,
            as_of=projected.as_of,
        ),
        budget=budget_out(rt, service.budget_view(session, tenant, now=now)) if current else None,
    )
