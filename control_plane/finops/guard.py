"""The budget gate of new spend: training runs, rollouts and promotions (fraud checks never pass here).

Imported by other domains (training, registry, rollouts); it imports none of them.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy.orm import Session

from control_plane.errors import Forbidden
from control_plane.finops import service
from control_plane.tenants import repository as tenants
from control_plane.tenants.orm import Tenant


class BudgetFrozen(Forbidden):
    title = "Budget frozen"


def require_budget(
    session: Session, tenant: Tenant | str, *, action: str, now: datetime
) -> service.BudgetView:
    """403 naming the reason and the figures when this month's budget is frozen."""
    row = tenant if isinstance(tenant, Tenant) else tenants.get(session, tenant)
    view = service.budget_view(session, row, now=now)
    if view.status == "frozen":
        raise BudgetFrozen(
            f"cannot {action}: the monthly budget is frozen — spend this month is {view.actual} "
            f"{view.currency}, the budget is {view.budget} {view.currency}. New training runs, rollouts "
            "and promotions are refused until the budget is raised or the month ends; fraud checks "
            "keep answering.",
            field="budget",
            extra={
                "reason": "budget_frozen",
                "actual": str(view.actual),
                "budget": str(view.budget),
                "currency": view.currency,
                "month": view.month,
                "frozen_at": view.frozen_at.isoformat() if view.frozen_at else None,
            },
        )
    return view


def deployment_context(
    session: Session,
    tenant: Tenant,
    *,
    now: datetime,
    action: str,
    estimated_monthly: Decimal = Decimal("0"),
) -> dict[str, Any]:
    """Keyword arguments for ``registry.service.deployment_input``: budget status, headroom and the
    deploy's estimated monthly cost (the policy refuses an estimate above the headroom)."""
    view = require_budget(session, tenant, action=action, now=now)
    return {
        "budget_status": view.status,
        "budget_headroom": str(view.headroom),
        "estimated_monthly": str(estimated_monthly),
    }
