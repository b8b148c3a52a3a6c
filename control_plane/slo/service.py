"""SLO status, error budgets, burn-rate alerts and cohort statistics from request samples."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from control_plane.slo.orm import RequestSample
from control_plane.slo.recorder import LATENCY_BOUNDS_MS, histogram_percentile
from guardrails.canary import CohortStats
from guardrails.slo import DEFAULT_BURN_RATE_RULES, SLO, BurnRateRule, ErrorBudget, evaluate_burn_alerts

PERIOD = timedelta(days=28)


@dataclass(frozen=True)
class WindowTotals:
    requests: int
    errors: int
    slow: int
    flagged: int
    flips: int
    pairs: int
    hist: list[int]
    scores: list[float]

    @property
    def bad(self) -> int:
        """Requests that missed the SLO: errors, or slower than the latency objective."""
        return min(self.requests, self.errors + self.slow)

    @property
    def error_ratio(self) -> float:
        return self.bad / self.requests if self.requests else 0.0


def totals(
    session: Session,
    tenant_id: str,
    *,
    since: datetime,
    until: datetime,
    version: str | None = None,
    cohort: str | None = None,
) -> WindowTotals:
    stmt = select(RequestSample).where(
        RequestSample.tenant_id == tenant_id,
        RequestSample.bucket_start >= since,
        RequestSample.bucket_start < until,
    )
    if version is not None:
        stmt = stmt.where(RequestSample.version == version)
    if cohort is not None:
        stmt = stmt.where(RequestSample.cohort == cohort)
    else:
        stmt = stmt.where(RequestSample.cohort != "shadow")
    req = err = slow = flagged = flips = pairs = 0
    hist = [0] * (len(LATENCY_BOUNDS_MS) + 1)
    scores: list[float] = []
    for row in session.scalars(stmt):
        req += row.requests
        err += row.errors
        slow += row.slow
        flagged += row.flagged
        flips += row.flips
        pairs += row.pairs
        hist = [a + b for a, b in zip(hist, row.latency_hist, strict=True)]
        scores.extend(row.scores)
    return WindowTotals(req, err, slow, flagged, flips, pairs, hist, scores)


def cohort_stats(t: WindowTotals) -> CohortStats:
    return CohortStats(
        requests=t.requests,
        errors=t.errors,
        scores=t.scores,
        flagged=min(t.flagged, t.requests - t.errors),
        p95_latency_ms=histogram_percentile(t.hist, 95.0),
    )


def error_budget(session: Session, tenant_id: str, slo: SLO, *, now: datetime) -> ErrorBudget:
    t = totals(session, tenant_id, since=now - PERIOD, until=now + timedelta(seconds=1))
    return ErrorBudget(slo=slo, good=t.requests - t.bad, total=t.requests)


def burn_alerts(
    session: Session,
    tenant_id: str,
    slo: SLO,
    *,
    now: datetime,
    rules: Sequence[BurnRateRule] = DEFAULT_BURN_RATE_RULES,
    version: str | None = None,
    cohort: str | None = None,
    bucket_s: float = 0.0,
) -> tuple[list[Any], dict[float, float]]:
    windows = sorted({w for r in rules for w in (r.long_window_s, r.short_window_s)})
    ratios: dict[float, float] = {}
    for w in windows:
        t = totals(
            session,
            tenant_id,
            since=now - timedelta(seconds=w),
            until=now + timedelta(seconds=1),
            version=version,
            cohort=cohort,
        )
        ratios[w] = t.error_ratio
    return evaluate_burn_alerts(ratios, slo, rules), ratios


def slo_for(template: Mapping[str, Any]) -> tuple[SLO, float]:
    s = template["slo"]
    return SLO(target=float(s["availability"])), float(s["latency_p95_ms"])
