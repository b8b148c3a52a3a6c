"""Tenant-admin page for budget and usage: the month's cost to date against the budget as an
inline SVG chart drawn on the server (cumulative cost by day, the budget line and the linear
forecast over the whole month; daily cost as bars), the budget's state and forecast, and usage
by meter. The figures are the answers of ``GET /v1/costs`` and ``GET /v1/usage``: the page runs
the same steps as those routes (``finops.reports``) for the signed-in admin, so the page and the
API check the same scopes and never disagree. Every read is the viewer's tenant."""

from __future__ import annotations

import re
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response

from control_plane.db import unit_of_work
from control_plane.errors import DomainError
from control_plane.finops import reports
from control_plane.finops.runtime import FinOpsRuntime
from control_plane.finops.schemas import CostsOut
from control_plane.web.model_charts import line_chart, paired_bars
from control_plane.web.pages import ConsoleDep, Viewer, admin_viewer, render

router = APIRouter(include_in_schema=False)
MONTH = re.compile(r"^\d{4}-\d{2}$")


def _month_days(costs: CostsOut) -> tuple[list[date], int]:
    """Every day of the month, and how many of them have figures (up to the figures' date)."""
    first = date.fromisoformat(f"{costs.month}-01")
    last = (first + timedelta(days=31)).replace(day=1) - timedelta(days=1)
    days = [first + timedelta(days=i) for i in range((last - first).days + 1)]
    return days, min(len(days), max((costs.as_of.date() - first).days + 1, 1))


def _charts(costs: CostsOut) -> dict[str, Any]:
    days, known = _month_days(costs)
    per_day = {d.day: d.cost for d in costs.days}
    daily = [float(per_day.get(d, Decimal(0))) for d in days[:known]]
    running, total = [], 0.0
    for value in daily:
        total += value
        running.append(round(total, 2))
    labels = [d.isoformat() for d in days]
    # Days still to come have no cost yet (a gap, not a zero); the forecast is the API's linear one.
    series: list[tuple[str, list[float | None]]] = [
        ("cost to date", [*running, *[None] * (len(days) - known)])
    ]
    budget = float(costs.budget.amount) if costs.budget is not None else 0.0
    if costs.budget is not None:
        month_end = float(costs.budget.forecast)
        series.append(("budget", [budget] * len(days)))
        series.append(("forecast", [round(month_end * (i + 1) / len(days), 2) for i in range(len(days))]))
    return {
        "cumulative": line_chart(labels, series, floor_max=budget, fmt="{:.2f}"),
        "daily": paired_bars(
            [lab[8:] for lab in labels[:known]], [("daily cost", daily)], fmt="{:.2f}", every=2
        ),
        "rows": list(zip(labels[:known], daily, running, strict=True)),
    }


def _page(request: Request, c: ConsoleDep, viewer: Viewer, month: str | None) -> Response:
    context: dict[str, Any] = {"viewer": viewer, "section": "usage", "month": month or ""}
    if month is not None and not MONTH.match(month):
        context["problem"] = f"month: give a month as YYYY-MM (e.g. 2026-11), got {month!r}"
        return render(request, "usage.html", context, 422)
    rt: FinOpsRuntime = request.app.state.provided[FinOpsRuntime]
    try:
        with unit_of_work(c.factory) as session:
            costs = reports.cost_report(session, rt, viewer.principal, month)
            usage = reports.usage_report(session, rt, viewer.principal, month)
    except DomainError as exc:
        context["problem"] = f"{exc.field or 'month'}: {exc.detail}"
        return render(request, "usage.html", context, exc.status)
    context.update(costs=costs, usage=usage, month=costs.month, **_charts(costs))
    return render(request, "usage.html", context)


@router.get("/usage")
def usage_page(request: Request, c: ConsoleDep, month: str | None = None) -> Response:
    viewer = admin_viewer(request, c)
    if isinstance(viewer, Response):
        return viewer
    return _page(request, c, viewer, month.strip() if month and month.strip() else None)
