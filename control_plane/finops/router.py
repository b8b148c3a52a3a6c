"""FinOps routes: usage and costs (tenant-admin, sre), a tenant's budget (read; platform admin sets it)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, FastAPI, Query, Request
from fastapi.responses import Response

from control_plane.auth.service import authorize
from control_plane.deps import PlatformAdminDep, PrincipalDep, SessionDep, provided
from control_plane.finops import reports, service
from control_plane.finops.limiter import RateLimited
from control_plane.finops.reports import READERS, budget_out
from control_plane.finops.runtime import FinOpsRuntime
from control_plane.finops.schemas import BudgetIn, BudgetOut, CostsOut, UsageOut
from control_plane.finops.shedding import rate_limited_response
from control_plane.tenants import repository as tenants
from control_plane.tenants.orm import Tenant

FinOpsDep = Annotated[FinOpsRuntime, Depends(provided(FinOpsRuntime))]

router = APIRouter(tags=["finops"])
Month = Annotated[str | None, Query(pattern=r"^\d{4}-\d{2}$", description="YYYY-MM; default: this month")]


@router.get("/v1/usage", response_model=UsageOut)
def get_usage(session: SessionDep, rt: FinOpsDep, principal: PrincipalDep, month: Month = None) -> UsageOut:
    """Usage by day and by meter, month to date (fraud checks are written every few seconds)."""
    return reports.usage_report(session, rt, principal, month)


@router.get("/v1/costs", response_model=CostsOut)
def get_costs(session: SessionDep, rt: FinOpsDep, principal: PrincipalDep, month: Month = None) -> CostsOut:
    """Cost (usage times the price table) by day and meter, month to date, and a linear month-end forecast."""
    return reports.cost_report(session, rt, principal, month)


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
