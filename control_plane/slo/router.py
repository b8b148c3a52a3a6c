"""SRE view: SLOs, the 28-day error budget and the burn-rate alerts, per tenant."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends

from control_plane.auth.scopes import Scope
from control_plane.deps import PrincipalDep, SessionDep, TemplatesDep, provided
from control_plane.orm_base import utcnow
from control_plane.slo import service
from control_plane.slo.recorder import RequestRecorder
from control_plane.tenancy import tenant_of
from control_plane.tenants import repository as tenants

RecorderDep = Annotated[RequestRecorder, Depends(provided(RequestRecorder))]

router = APIRouter(prefix="/v1/slo", tags=["slo"])


@router.get("")
def slo_status(
    session: SessionDep, recorder: RecorderDep, templates: TemplatesDep, principal: PrincipalDep
) -> dict[str, Any]:
    """Availability and latency objectives, error budget left, burn rates (SRE workbook windows)."""
    tenant_id = tenant_of(principal, {Scope.SRE, Scope.TENANT_ADMIN})
    recorder.flush()  # this process's samples count at once
    tenant = tenants.get(session, tenant_id)
    objective, latency_ms = service.slo_for(templates[tenant.tier])
    now = utcnow()
    budget = service.error_budget(session, tenant_id, objective, now=now)
    alerts, ratios = service.burn_alerts(session, tenant_id, objective, now=now)
    return {
        "objectives": {"availability": objective.target, "latency_p95_ms": latency_ms, "period_days": 28},
        "error_budget": {
            "requests": budget.total,
            "bad_requests": budget.errors,
            "allowed_bad_requests": round(budget.allowed_errors, 3),
            "remaining_fraction": round(budget.remaining_fraction, 6),
            "frozen": budget.frozen,
        },
        "burn_rates": {f"{int(w)}s": round(r / objective.error_budget, 4) for w, r in sorted(ratios.items())},
        "alerts": [
            {
                "severity": a.severity.value,
                "long_window_s": a.long_window_s,
                "short_window_s": a.short_window_s,
                "burn_rate_long": round(a.burn_rate_long, 3),
                "burn_rate_short": round(a.burn_rate_short, 3),
                "threshold": a.threshold,
            }
            for a in alerts
        ],
        "definition": "a request is bad when it fails (5xx) or takes longer than the latency objective",
    }
