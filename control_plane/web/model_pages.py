"""A page per model version (tenant admins and analysts): drift over time, reference vs current
histogram of a chosen feature, performance with label maturity, and backtests (the latest
retraining's champion / challenger comparison, and a threshold change replayed on demand), as
inline SVG drawn on the server. Every read starts from the viewer's tenant: another tenant's
version is a 404 page, as an unknown one."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal, InvalidOperation
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response
from pydantic import ValidationError

from control_plane.db import unit_of_work
from control_plane.deps import TemplatesDep
from control_plane.errors import Conflict, DomainError, NotFound
from control_plane.monitoring import backtest, labels
from control_plane.monitoring import service as drift_service
from control_plane.monitoring.schemas import BacktestIn, DriftReport
from control_plane.registry import service as registry
from control_plane.tenants import repository as tenants
from control_plane.training import retraining
from control_plane.web.model_charts import bin_labels, line_chart, paired_bars
from control_plane.web.pages import ConsoleDep, domain_error_page, error_page, redirect, render, viewer_of

router = APIRouter(include_in_schema=False)
DRIFT_DAYS = 14
WORST = 5
DECISIONS = ("LEGIT", "REVIEW", "SUSPICIOUS")


class _Quiet:
    """The console reads drift; publishing the PSI gauges is the monitoring check's job."""

    def increment(self, name: str, value: float = 1.0, **labels: str) -> None: ...
    def observe(self, name: str, value: float, **labels: str) -> None: ...
    def gauge(self, name: str, value: float, **labels: str) -> None: ...


def _drift_days(
    session: Any, tenant_id: str, version: str
) -> tuple[DriftReport | None, list[DriftReport], str]:
    """The latest day's report and one per day before it (oldest first), or why there is none."""
    try:
        latest = drift_service.drift(session, tenant_id, version, "day", end=None, metrics=_Quiet())
    except (NotFound, Conflict) as exc:
        return None, [], exc.detail
    days: list[DriftReport] = []
    end = latest.window_end - timedelta(hours=1)
    for back in range(DRIFT_DAYS - 1, -1, -1):
        try:
            report = drift_service.drift(
                session, tenant_id, version, "day", end=end - timedelta(days=back), metrics=_Quiet()
            )
        except NotFound:
            continue
        if not days or report.window_end != days[-1].window_end:  # a day without traffic repeats one
            days.append(report)
    return latest, days, ""


def _drift_context(latest: DriftReport | None, days: list[DriftReport], feature: str) -> dict[str, Any]:
    if latest is None:
        return {}
    worst = [f.feature for f in latest.features[:WORST]]
    labels_ = [(d.window_end - timedelta(hours=1)).date().isoformat() for d in days]  # the day it ends
    series = [("score", [d.score.psi for d in days])] + [
        (name, [next((f.psi for f in d.features if f.feature == name), None) for d in days]) for name in worst
    ]
    chosen = next((f for f in latest.features if f.feature == feature), None) or (
        latest.features[0] if latest.features else latest.score
    )
    if feature == "score":
        chosen = latest.score
    h = chosen.histogram
    ref_total, cur_total = max(sum(h.reference), 1), max(sum(h.current), 1)
    histogram = paired_bars(
        bin_labels(h.edges),
        [
            ("reference", [c / ref_total for c in h.reference]),
            ("current", [c / cur_total for c in h.current]),
        ],
        fmt="{:.1%}",
        every=1 if len(h.reference) <= 10 else 2,
    )
    return {
        "latest": latest,
        "drift_chart": line_chart(labels_, series, floor_max=0.25),
        "histogram": histogram,
        "chosen": chosen,
        "features": ["score", *sorted(f.feature for f in latest.features)],
    }


def _flip_matrix(flips: list[Any]) -> list[tuple[str, list[int]]]:
    counts = {(f["from_decision"], f["to_decision"]): int(f["count"]) for f in flips}
    return [(a, [counts.get((a, b), 0) for b in DECISIONS]) for a in DECISIONS]


def _comparison_context(session: Any, tenant_id: str, version: str) -> dict[str, Any] | None:
    """The latest retraining that compared this version (as champion or challenger)."""
    for r in retraining.list_for(session, tenant_id):
        if r.comparison and version in (r.champion_version, r.challenger_version):
            c = r.comparison
            day_labels = [d["day"] for d in c["days"]]
            workload = paired_bars(
                [d[5:] for d in day_labels],
                [(k, [float(d[k]["review"]) for d in c["days"]]) for k in ("champion", "challenger")],
            )
            return {"row": r, "c": c, "matrix": _flip_matrix(c["flips"]), "workload": workload}
    return None


def _proposal(request: Request) -> tuple[BacktestIn | None, str]:
    q = request.query_params
    if not q.get("review") and not q.get("suspicious"):
        return None, ""
    try:
        body = BacktestIn(
            review_threshold=Decimal(q["review"]) if q.get("review") else None,
            suspicious_threshold=Decimal(q["suspicious"]) if q.get("suspicious") else None,
            days=int(q.get("days") or 14),
        )
    except (ValidationError, InvalidOperation, ValueError):
        return None, "Thresholds are numbers from 0 to 1 (at most 4 decimals); days from 1 to 90."
    return body, ""


def _backtest_context(session: Any, tenant_id: str, body: BacktestIn, templates: Any) -> dict[str, Any]:
    out = backtest.run(session, tenant_id, body, templates)
    days = [d.day.isoformat()[5:] for d in out.days]
    workload = paired_bars(
        days, [(k, [float(getattr(d, k).review) for d in out.days]) for k in ("live", "proposed")]
    )
    flips = [f.model_dump() for f in out.flips]
    return {"out": out, "matrix": _flip_matrix(flips), "workload": workload, "body": body}


@router.get("/models/{model_id}")
def model_page(request: Request, model_id: str, c: ConsoleDep, templates: TemplatesDep) -> Response:
    viewer = viewer_of(request, c)
    if viewer is None:
        return redirect("/console/sign-in")
    feature = request.query_params.get("feature", "")
    proposal, proposal_error = _proposal(request)
    with unit_of_work(c.factory) as session:
        if model_id == "production":
            live = registry.production(session, viewer.tenant_id)
            if live is None:
                return error_page(
                    request, viewer, 404, "Not found", "This tenant has no PRODUCTION model yet."
                )
            return redirect(f"/console/models/{live.id}")
        try:
            mv = registry.get(session, viewer.tenant_id, model_id)
        except NotFound:
            return error_page(
                request, viewer, 404, "Not found", f"No model version {model_id} in this tenant."
            )
        tier = tenants.get(session, viewer.tenant_id).tier
        maturity = int(templates[tier].get("monitoring", {}).get("label_maturity_days", 7))
        latest, days, drift_note = _drift_days(session, viewer.tenant_id, mv.id)
        perf = labels.performance(session, viewer.tenant_id, version=mv.id, days=30, end=None)
        comparison = _comparison_context(session, viewer.tenant_id, mv.id)
        tested: dict[str, Any] | None = None
        if proposal is not None:
            try:
                tested = _backtest_context(session, viewer.tenant_id, proposal, templates)
            except DomainError as exc:
                if exc.status >= 500:
                    return domain_error_page(request, viewer, exc)
                proposal_error = exc.detail
        version = {"id": mv.id, "stage": mv.stage, "metrics": mv.metrics or {}, "created_at": mv.created_at}
    perf_days = [d for d in perf.days if d.scored]
    perf_chart = line_chart(
        [d.day.isoformat() for d in perf_days],
        [("precision", [d.precision for d in perf_days]), ("recall", [d.recall for d in perf_days])],
        floor_max=1.0,
        young=[d.label_maturity_days < maturity for d in perf_days],
    )
    context = {
        "viewer": viewer,
        "section": "monitoring",
        "version": version,
        "drift_note": drift_note,
        **_drift_context(latest, days, feature),
        "perf_days": perf_days,
        "perf_chart": perf_chart,
        "maturity": maturity,
        "comparison": comparison,
        "tested": tested,
        "proposal_error": proposal_error,
        "decisions": DECISIONS,
        "query": request.query_params,
    }
    return render(request, "model.html", context)
