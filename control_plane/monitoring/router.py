"""Monitoring routes: drift against the reference profile, delayed labels, performance."""

from __future__ import annotations

from datetime import date
from typing import Annotated

from fastapi import APIRouter, Depends, File, Query, UploadFile
from pydantic import AwareDatetime

from control_plane.deps import PrincipalDep, SessionDep, TemplatesDep, provided
from control_plane.errors import InvalidInput
from control_plane.monitoring import backtest, labels, service
from control_plane.monitoring.schemas import (
    BacktestIn,
    BacktestOut,
    DriftReport,
    LabelsIn,
    LabelsOut,
    PerformanceReport,
    Window,
)
from control_plane.principals import Scope
from control_plane.tenancy import tenant_of
from providers.ports import MetricsSink

router = APIRouter(tags=["monitoring"])
DRIFT_READERS = {Scope.TENANT_ADMIN, Scope.SRE}
PERFORMANCE_READERS = {Scope.TENANT_ADMIN, Scope.SRE, Scope.ANALYST}
MetricsDep = Annotated[MetricsSink, Depends(provided(MetricsSink))]
MAX_CSV_BYTES = 2 * 1_048_576
END_HELP = "The window ends with this hour (default: the latest hour with traffic)"
VersionQuery = Query(min_length=1, max_length=40, pattern=r"^[A-Za-z0-9_.:-]+$")


@router.get("/v1/monitoring/drift", response_model=DriftReport)
def get_drift(
    session: SessionDep,
    principal: PrincipalDep,
    metrics: MetricsDep,
    model_version: Annotated[str, VersionQuery],
    window: Window = "day",
    end: Annotated[
        AwareDatetime | None, Query(description="Window ends with this hour (default: latest traffic)")
    ] = None,
) -> DriftReport:
    """Every feature's PSI and Jensen-Shannon distance against the version's reference profile,
    the largest first, with both histograms; decision-rate changes; data-quality violations."""
    tenant_id = tenant_of(principal, DRIFT_READERS)
    return service.drift(session, tenant_id, model_version, window, end=end, metrics=metrics)


@router.post("/v1/labels", response_model=LabelsOut)
def post_labels(body: LabelsIn, session: SessionDep, principal: PrincipalDep) -> LabelsOut:
    """Record delayed labels, idempotent by (txn_id, source); unknown txn_ids are listed back."""
    tenant_id = tenant_of(principal, {Scope.TENANT_ADMIN})
    return labels.record(session, tenant_id, body.items, actor=principal.actor)


@router.post("/v1/labels/csv", response_model=LabelsOut)
def post_labels_csv(
    session: SessionDep,
    principal: PrincipalDep,
    file: Annotated[UploadFile, File(description="CSV: txn_id,label,known_at[,source] with a header")],
) -> LabelsOut:
    """The same as ``POST /v1/labels``, from a CSV file (at most 10,000 rows)."""
    tenant_id = tenant_of(principal, {Scope.TENANT_ADMIN})
    data = file.file.read(MAX_CSV_BYTES + 1)
    if len(data) > MAX_CSV_BYTES:
        raise InvalidInput(f"the file is larger than {MAX_CSV_BYTES} bytes", field="file")
    return labels.record(session, tenant_id, labels.parse_csv(data), actor=principal.actor)


@router.post("/v1/backtests", response_model=BacktestOut)
def post_backtest(
    body: BacktestIn, session: SessionDep, principal: PrincipalDep, templates: TemplatesDep
) -> BacktestOut:
    """Replay proposed thresholds / lists on the tenant's scored, labelled traffic against the live
    policy on the same window (answered at once: the replay reads stored scores only)."""
    tenant_id = tenant_of(principal, {Scope.TENANT_ADMIN})
    return backtest.run(session, tenant_id, body, templates)


@router.get("/v1/monitoring/performance", response_model=PerformanceReport)
def get_performance(
    session: SessionDep,
    principal: PrincipalDep,
    model_version: Annotated[str | None, VersionQuery] = None,
    days: Annotated[int, Query(ge=1, le=90)] = 30,
    end: Annotated[date | None, Query(description="Last day (default: the latest scored day)")] = None,
) -> PerformanceReport:
    """Per day of transaction time: precision of the flags, recall, fraud amount caught / missed,
    with label maturity."""
    tenant_id = tenant_of(principal, PERFORMANCE_READERS)
    return labels.performance(session, tenant_id, version=model_version, days=days, end=end)
