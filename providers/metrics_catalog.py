"""Every metric Fraudrail emits: name, type, help, label names and buckets.

The metrics adapters refuse a name that is not here (and labels other than the declared ones), so a
typo is a failing test instead of a silent new series that no dashboard queries. The dashboards
test (``tests/dashboards``) checks every query of every dashboard against this catalogue and
against what ``/metrics`` really exposes. Adding a metric: declare it here, emit it, and say in
``docs/observability.md`` what it means.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final, Literal

MetricKind = Literal["counter", "gauge", "histogram"]

# Fraud checks answer in about a millisecond; a cold model load or a slow cache takes seconds.
LATENCY_BUCKETS_S: Final = (
    0.0005,
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
)


@dataclass(frozen=True)
class MetricSpec:
    name: str
    kind: MetricKind
    help: str
    labels: tuple[str, ...]
    buckets: tuple[float, ...] = ()
    # How a gauge's values combine across processes and across tenants merged into "*" (counters
    # and histograms always add up).
    gauge_combine: Literal["max", "min"] = "max"

    def __post_init__(self) -> None:
        if self.kind == "counter" and not self.name.endswith("_total"):
            raise ValueError(f"counter {self.name} must end in _total")
        if self.kind != "counter" and self.name.endswith("_total"):
            raise ValueError(f"{self.name}: only counters end in _total")
        if (self.kind == "histogram") != bool(self.buckets):
            raise ValueError(f"{self.name}: histograms, and only histograms, have buckets")


SPECS: Final = (
    MetricSpec(
        "fraudrail_fraud_check_total",
        "counter",
        "Fraud checks, by decision (LEGIT, REVIEW, SUSPICIOUS, or error when the check could not be "
        "answered) and cohort (stable, canary, rules; none for errors).",
        ("tenant", "decision", "cohort"),
    ),
    MetricSpec(
        "fraudrail_fraud_check_seconds",
        "histogram",
        "Server time of an answered fraud check, from the request to the answer.",
        ("tenant",),
        LATENCY_BUCKETS_S,
    ),
    MetricSpec(
        "fraudrail_flagged_total",
        "counter",
        "Fraud checks answered REVIEW or SUSPICIOUS (each one spooled for the review queue).",
        ("tenant", "decision"),
    ),
    MetricSpec(
        "fraudrail_degraded_total",
        "counter",
        "Fraud checks answered without one of their inputs (degraded: true), by the missing input.",
        ("tenant", "input"),
    ),
    MetricSpec(
        "fraudrail_feature_inputs_total",
        "counter",
        "Inputs a tenant feature set met that the model never saw, by kind: unknown_category (a "
        "category unseen at training), missing_optional (an optional attribute absent), new_entity "
        "(an entity with no state yet). Counted, never failed.",
        ("tenant", "kind"),
    ),
    MetricSpec(
        "fraudrail_integrity_failures_total",
        "counter",
        "Model artifacts refused at load because their SHA-256 does not match the registry.",
        ("tenant",),
    ),
    MetricSpec(
        "fraudrail_rate_limited_total",
        "counter",
        "Fraud checks refused with 429, by reason (rate, daily, budget ...).",
        ("tenant", "reason"),
    ),
    MetricSpec(
        "fraudrail_rate_limit_held_total",
        "counter",
        "429 answers held back before sending, for a client that ignores Retry-After.",
        ("tenant",),
    ),
    MetricSpec(
        "fraudrail_rate_limiter_errors_total",
        "counter",
        "Rate-limiter backend errors (the check is let through).",
        ("tenant",),
    ),
    MetricSpec(
        "fraudrail_overload_refused_total",
        "counter",
        "Requests refused with 503 because the process already held FRAUDRAIL_MAX_IN_FLIGHT_REQUESTS.",
        (),
    ),
    MetricSpec(
        "fraudrail_spool_refused_total",
        "counter",
        "Flagged answers refused with 503 because the spool could not make their record durable.",
        ("tenant",),
    ),
    MetricSpec(
        "fraudrail_spool_free_bytes",
        "gauge",
        "Free bytes on the flagged spool's disk (refreshed when a health probe asks).",
        (),
        gauge_combine="min",
    ),
    MetricSpec(
        "fraudrail_spool_ready",
        "gauge",
        "1 when the flagged spool can make records durable, else 0 (refreshed by health probes).",
        (),
        gauge_combine="min",  # one process that cannot write makes the service not ready
    ),
    MetricSpec(
        "fraudrail_metrics_refused_total",
        "counter",
        "Metric calls dropped because the catalogue does not declare them (a bug: see the logs).",
        (),
    ),
    # Emitted by the rollouts code on a rollout's weight change and on a rollback.
    MetricSpec(
        "fraudrail_canary_weight",
        "gauge",
        "Share of the tenant's traffic (0..1) sent to the canary version of an active rollout.",
        ("tenant",),
    ),
    MetricSpec(
        "fraudrail_rollbacks_total",
        "counter",
        "Rollouts rolled back, by reason (the failed analysis metric or alarm).",
        ("tenant", "reason"),
    ),
    # Set by control_plane.monitoring when a drift report is computed (feature="score" for the score).
    MetricSpec(
        "fraudrail_feature_psi",
        "gauge",
        "Population stability index of a feature (or the score) against the model version's "
        "reference profile, in the last drift window computed.",
        ("tenant", "feature"),
    ),
)

CATALOG: Final[dict[str, MetricSpec]] = {spec.name: spec for spec in SPECS}
assert len(CATALOG) == len(SPECS), "a metric is declared twice"

COLLAPSED_TENANT: Final = "*"


@dataclass(frozen=True)
class TenantLabels:
    """Which tenant ids ``/metrics`` may show: all, none, or the listed ones (the operator's
    ``FRAUDRAIL_METRICS_TENANT_LABELS``); the others are merged into ``tenant="*"``."""

    mode: str  # all | none | list
    tenants: frozenset[str] = frozenset()

    @classmethod
    def parse(cls, value: str) -> TenantLabels:
        """``all`` | ``none`` | a comma-separated list of tenant ids (the others become ``*``)."""
        text = value.strip()
        if text.lower() in ("all", "none"):
            return cls(text.lower())
        ids = frozenset(part.strip() for part in text.split(",") if part.strip())
        if not ids:
            raise ValueError("tenant labels must be 'all', 'none' or a comma-separated list of tenant ids")
        return cls("list", ids)

    def shown(self, tenant: str) -> bool:
        return self.mode == "all" or (self.mode == "list" and tenant in self.tenants)


ALL_TENANTS: Final = TenantLabels("all")

# Series a Prometheus histogram exposes besides its name.
HISTOGRAM_SUFFIXES: Final = ("_bucket", "_sum", "_count")


def spec_for_series(series: str) -> MetricSpec | None:
    """The metric behind an exposed series name (``x_bucket`` → histogram ``x``), or None."""
    spec = CATALOG.get(series)
    if spec is not None:
        return spec if spec.kind != "histogram" else None
    for suffix in HISTOGRAM_SUFFIXES:
        if series.endswith(suffix):
            base = CATALOG.get(series[: -len(suffix)])
            if base is not None and base.kind == "histogram":
                return base
    return None
