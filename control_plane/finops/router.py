"""FinOps routes: usage and costs (tenant-admin, sre), a tenant's budget (read; platform admin sets it)."""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated

from fastapi import APIRouter, Depends, FastAPI, Query, Request
from fastapi.responses import Response

from control_plane.auth.scopes import Scope
from control_plane.auth.service import authorize
from control_plane.deps import PlatformAdminDep, PrincipalDep, SessionDep, provided
from control_plane.finops import service
from control_plane.finops.limiter import RateLimited
from control_plane.finops.prices import Meter, cents
from control_plane.finops.runtime import FinOpsRuntime
from control_plane.finops.schemas import (
    BudgetIn,
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
from control_plane.finops.shedding import rate_limited_response
from control_plane.tenancy import tenant_of
from control_plane.tenants import repository as tenants
from control_plane.tenants.orm import Tenant

FinOpsDep = Annotated[FinOpsRuntime, Depends(provided(FinOpsRuntime))]

router = APIRouter(tags=["finops"])
READERS = {Scope.TENANT_ADMIN, Scope.SRE}
Month = Annotated[str | None, Query(pattern=r"^\d{4}-\d{2}$", description="YYYY-MM; default: this month")]


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


@router.get("/v1/usage", response_model=UsageOut)
def get_usage(session: SessionDep, rt: FinOpsDep, principal: PrincipalDep, month: Month = None) -> UsageOut:
    """Usage by day and by meter, month to date (fraud checks are written every few seconds)."""
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


@router.get("/v1/costs", response_model=CostsOut)
def get_costs(session: SessionDep, rt: FinOpsDep, principal: PrincipalDep, month: Month = None) -> CostsOut:
    """Cost (usage times the price table) by day and meter, month to date, and a linear month-end forecast."""
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


@router.get("/v1/tenants/{tenant_id}/budget", response_model=BudgetOut)
def get_budget(tenant_id: str, session: SessionDep, rt: FinOpsDep, principal: PrincipalDep) -> BudgetOut:
    """This month's budget, spend, forecast, enforcement state and the tenant's rate limits."""
    authorize(principal, tenant_id, READERS)
    tenant: Tenant = tenants.get(session, tenant_id)
    return budget_out(rt, service.budget_view(session, tenant, now=rt.now()))


@router.put("/v1/tenants/{tenant_id}/budget", response_model=BudgetOut)
def put_budget(
    tenant_id: str, body: BudgetIn, session: SessionDep, rt: FinOpsDep, admin: PlatformAdminDep
) -> BudgetOut:
    """Change a tenant's monthly budget (audited); a raise above the spend lifts a freeze at once."""
    now = rt.now()
    limits_changed = rt.enforcer.change_budget(
        session,
        tenant_id,
        amount=body.amount,
        currency=body.currency,
        actor=admin.actor,
        reason=body.reason,
        now=now,
    )
    del limits_changed  # the change emitted finops.limits: every process reloads after the commit
    return budget_out(rt, service.budget_view(session, tenants.get(session, tenant_id), now=now))


def install_finops(app: FastAPI) -> None:
    """Mount the routes and answer ``RateLimited`` with its Retry-After and RateLimit-* headers."""
    app.include_router(router)

    @app.exception_handler(RateLimited)
    async def _rate_limited(_: Request, exc: RateLimited) -> Response:
        return rate_limited_response(exc)
