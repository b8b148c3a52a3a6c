"""Drift of a model version's traffic against its reference profile, per hour or day window.

Windows are in transaction time (the hour buckets the serving processes flushed), ending with the
latest hour that saw traffic (or the hour of ``end``): a replay of simulated weeks and live traffic
read the same way.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy.orm import Session

from control_plane.errors import Conflict, NotFound
from control_plane.monitoring import repository as repo
from control_plane.monitoring.schemas import (
    DecisionRate,
    DriftReport,
    FeatureDrift,
    Histogram,
    QualityViolation,
    Window,
)
from control_plane.registry.orm import ModelVersion
from control_plane.scoring import config as scoring_config
from fraud_model.profile import SCORE, build_profile, js_distance, psi
from providers.ports import MetricsSink

WINDOW_HOURS: dict[str, int] = {"hour": 1, "day": 24}
PSI_GAUGE = "fraudrail_feature_psi"


def reference_profile(
    session: Session,
    tenant_id: str,
    templates: Mapping[str, Mapping[str, Any]],
    features: pd.DataFrame,
    scores: np.ndarray,
    labels: np.ndarray,
) -> dict[str, Any]:
    """The profile a training run stores with its version, at the tenant's current thresholds."""
    config = scoring_config.read(session, tenant_id, templates)
    return build_profile(
        features,
        scores,
        labels,
        review=float(config.review_threshold),
        suspicious=float(config.suspicious_threshold),
    )


def _version(session: Session, tenant_id: str, version_id: str) -> ModelVersion:
    mv = session.get(ModelVersion, version_id)
    if mv is None or mv.tenant_id != tenant_id:
        raise NotFound(f"model version {version_id} not found", field="model_version")
    return mv


def drift(
    session: Session,
    tenant_id: str,
    version_id: str,
    window: Window,
    *,
    end: datetime | None,
    metrics: MetricsSink,
) -> DriftReport:
    mv = _version(session, tenant_id, version_id)
    profile = mv.reference_profile
    if not profile:
        raise Conflict(
            f"model version {version_id} has no reference profile (trained before monitoring): "
            "retrain it to monitor its drift",
            field="model_version",
        )
    until = None if end is None else end.astimezone(UTC)
    last = repo.latest_hour(session, tenant_id, version_id, until=until)
    if last is None:
        raise NotFound(
            f"model version {version_id} scored no traffic "
            + ("yet" if until is None else f"up to {until.isoformat()}"),
            field="window",
        )
    start = last - timedelta(hours=WINDOW_HOURS[window] - 1)
    rows = repo.buckets(session, tenant_id, version_id, start, last)
    volume = sum(r.volume for r in rows)
    by_cohort: Counter[str] = Counter()
    decisions: Counter[str] = Counter()
    quality: dict[tuple[str, str], int] = Counter()
    current: dict[str, np.ndarray] = {
        n: np.zeros(len(c["counts"]), np.int64) for n, c in profile["features"].items()
    }
    score = np.zeros(len(profile[SCORE]["counts"]), np.int64)
    for r in rows:
        by_cohort[r.cohort] += r.volume
        decisions.update(r.decisions)
        score += np.asarray(r.score_counts, np.int64)
        for name, counts in r.feature_counts.items():
            if name in current and len(counts) == len(current[name]):
                current[name] += np.asarray(counts, np.int64)
        for kind, per in r.quality.items():
            for name, n in per.items():
                quality[(name, kind)] += int(n)

    def figures(name: str, ref: Mapping[str, Any], cur: np.ndarray) -> FeatureDrift:
        ref_counts = [int(c) for c in ref["counts"]]
        return FeatureDrift(
            feature=name,
            psi=round(psi(ref_counts, cur.tolist()), 6),
            js_distance=round(js_distance(ref_counts, cur.tolist()), 6),
            histogram=Histogram(edges=ref["edges"], reference=ref_counts, current=cur.tolist()),
        )

    features = sorted(
        (figures(n, profile["features"][n], c) for n, c in current.items()),
        key=lambda f: (-f.psi, f.feature),
    )
    score_drift = figures(SCORE, profile[SCORE], score)
    for f in [score_drift, *features]:
        metrics.gauge(PSI_GAUGE, f.psi, tenant=tenant_id, feature=f.feature)
    ref_rates: Mapping[str, float] = profile.get("decision_rates", {})
    rates = []
    for decision in ("LEGIT", "REVIEW", "SUSPICIOUS"):
        now_rate = decisions[decision] / volume if volume else 0.0
        before = float(ref_rates.get(decision, 0.0))
        rates.append(
            DecisionRate(
                decision=decision,
                reference=round(before, 6),
                current=round(now_rate, 6),
                change=round(now_rate - before, 6),
            )
        )
    violations = [
        QualityViolation(feature=name, kind=kind, count=n, rate=round(n / volume, 6) if volume else 0.0)  # type: ignore[arg-type]
        for (name, kind), n in sorted(quality.items(), key=lambda kv: (-kv[1], kv[0]))
        if n
    ]
    return DriftReport(
        model_version=version_id,
        window=window,
        window_start=start,
        window_end=last + timedelta(hours=1),
        volume=volume,
        volume_by_cohort=dict(by_cohort),
        score=score_drift,
        features=features,
        decision_rates=rates,
        quality=violations,
    )
