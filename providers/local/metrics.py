"""Metrics kept in process and exposed in the Prometheus text format (``prometheus-client``).

Each instance owns its ``CollectorRegistry`` (tests build many apps in one process; the global
registry would mix them and refuse a second registration). Every metric of
``providers.metrics_catalog`` is registered up front, so ``/metrics`` always carries its HELP and
TYPE lines; a name or a label set the catalogue does not declare raises ``UndeclaredMetric``.
Counters only go up and histograms keep cumulative buckets, ``_sum`` and ``_count``, so
``rate()`` and ``histogram_quantile()`` work across scrapes.

Several server processes on one port (``FRAUDRAIL_WORKERS`` > 1) would each answer ``/metrics``
with their own counters, which then jump between scrapes. With ``PROMETHEUS_MULTIPROC_DIR`` set
before the processes start (prometheus-client's own switch: values go to files there), every
process renders the sum over all of them (gauges: the catalogue's max or min).

``render_prometheus`` applies the operator's tenant-label policy (``TenantLabels``): series of
tenants that may not be named are merged into ``tenant="*"`` (counters and histograms summed,
gauges by the catalogue's max or min), so a scrape shows no tenant id the operator did not choose.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest, values
from prometheus_client.metrics import MetricWrapperBase
from prometheus_client.metrics_core import Metric
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector

from providers.metrics_catalog import (
    ALL_TENANTS,
    CATALOG,
    COLLAPSED_TENANT,
    MetricKind,
    MetricSpec,
    TenantLabels,
)

log = logging.getLogger(__name__)
REFUSED = "fraudrail_metrics_refused_total"


class UndeclaredMetric(ValueError):
    """A metric name, type or label set that ``providers/metrics_catalog.py`` does not declare."""


class InMemoryMetrics:
    """``strict`` (the default) raises ``UndeclaredMetric`` for a call the catalogue does not allow,
    so tests catch it. Not strict (production), such a call is dropped, logged once and counted in
    ``fraudrail_metrics_refused_total``: a metric typo must not fail a fraud check or a rollback."""

    def __init__(
        self,
        catalog: Mapping[str, MetricSpec] = CATALOG,
        *,
        strict: bool = True,
        multiprocess_dir: Path | None = None,
    ) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.strict = strict
        self.multiprocess_dir = multiprocess_dir or _multiprocess_dir()
        self._catalog = catalog
        self._metrics: dict[str, MetricWrapperBase] = {
            name: _register(spec, self.registry) for name, spec in catalog.items()
        }
        self._logged: set[str] = set()
        self._updates: dict[tuple[object, ...], Callable[[float], None]] = {}

    def _child(self, name: str, kind: MetricKind, labels: Mapping[str, str]) -> MetricWrapperBase:
        spec = self._catalog.get(name)
        if spec is None:
            raise UndeclaredMetric(f"{name} is not declared in providers/metrics_catalog.py")
        if spec.kind != kind:
            raise UndeclaredMetric(f"{name} is a {spec.kind}, not a {kind}")
        if len(labels) != len(spec.labels) or set(labels) != set(spec.labels):
            raise UndeclaredMetric(f"{name} takes labels {spec.labels}, got {tuple(sorted(labels))}")
        metric = self._metrics[name]
        return metric.labels(**labels) if spec.labels else metric

    def _record(self, kind: MetricKind, name: str, value: float, labels: Mapping[str, str]) -> bool:
        """Record one call; False when it was refused (only when not strict)."""
        # The hot path: a call site seen before skips the catalogue check and the label lookup.
        key = (kind, name, *labels.items())
        update = self._updates.get(key)
        try:
            if update is None:
                child = self._child(name, kind, labels)
                if isinstance(child, Counter):
                    update = child.inc
                elif isinstance(child, Histogram):
                    update = child.observe
                else:
                    assert isinstance(child, Gauge)
                    update = child.set
                self._updates[key] = update  # a racing thread stores the same child's method
            update(value)  # Counter.inc refuses a negative value: a counter never goes down
        except ValueError as exc:  # UndeclaredMetric, or a counter asked to go down
            if self.strict:
                raise
            self._refused(str(exc))
            return False
        return True

    def _refused(self, reason: str) -> None:
        refused = self._metrics.get(REFUSED)
        if isinstance(refused, Counter):
            refused.inc()
        if len(self._logged) < 100 and reason not in self._logged:  # once each, and bounded
            self._logged.add(reason)
            log.error("metric call refused (fix the call or providers/metrics_catalog.py): %s", reason)

    def increment(self, name: str, value: float = 1.0, **labels: str) -> None:
        self._record("counter", name, value, labels)

    def observe(self, name: str, value: float, **labels: str) -> None:
        self._record("histogram", name, value, labels)

    def gauge(self, name: str, value: float, **labels: str) -> None:
        self._record("gauge", name, value, labels)

    # ------------------------------------------------------------------- read back

    def value(self, series: str, **labels: str) -> float | None:
        """The current value of one exposed series (``x_total``, ``x_count``, ``x_bucket`` + ``le``)."""
        return self.registry.get_sample_value(series, labels)

    def counter(self, name: str, **labels: str) -> float:
        return self.value(name, **labels) or 0.0

    def render_prometheus(self, tenant_labels: TenantLabels = ALL_TENANTS) -> str:
        source = self.registry
        if self.multiprocess_dir is not None:
            source = CollectorRegistry(auto_describe=False)
            MultiProcessCollector(source, path=str(self.multiprocess_dir))  # type: ignore[no-untyped-call]
        return generate_latest(_Exposed(source, tenant_labels, self._catalog)).decode()


def _multiprocess_dir() -> Path | None:
    """The folder every process writes its values to, when prometheus-client was imported with
    ``PROMETHEUS_MULTIPROC_DIR`` set (set later, values stay in memory: render those instead)."""
    folder = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if not folder or values.ValueClass is values.MutexValue:
        return None
    return Path(folder)


def _register(spec: MetricSpec, registry: CollectorRegistry) -> MetricWrapperBase:
    if spec.kind == "counter":
        return Counter(spec.name, spec.help, spec.labels, registry=registry)
    if spec.kind == "gauge":
        mode = spec.gauge_combine  # how the multiprocess collector combines the processes' values
        return Gauge(spec.name, spec.help, spec.labels, registry=registry, multiprocess_mode=mode)
    return Histogram(spec.name, spec.help, spec.labels, registry=registry, buckets=spec.buckets)


class _Exposed(Collector):
    """The families as served: HELP from the catalogue (the multiprocess collector has none),
    every catalogued metric present even before its first sample, ``_created`` samples dropped
    (they would double the series count and nothing reads them), unlisted tenants merged into
    ``tenant="*"``."""

    def __init__(
        self, source: CollectorRegistry, tenant_labels: TenantLabels, catalog: Mapping[str, MetricSpec]
    ) -> None:
        self._source = source
        self._tenants = tenant_labels
        self._catalog = catalog

    def collect(self) -> Iterable[Metric]:
        families = {family.name: family for family in self._source.collect()}
        for spec in self._catalog.values():
            # prometheus-client names a counter's family without its _total suffix.
            base = spec.name.removesuffix("_total") if spec.kind == "counter" else spec.name
            family = families.get(base)
            out = Metric(base, spec.help, spec.kind)
            for (name, pairs), value in self._merged(spec, family).items():
                out.add_sample(name, dict(pairs), value)
            yield out

    def _merged(
        self, spec: MetricSpec, family: Metric | None
    ) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
        merged: dict[tuple[str, tuple[tuple[str, str], ...]], float] = {}
        pick = max if spec.gauge_combine == "max" else min
        for sample in family.samples if family is not None else ():
            if sample.name.endswith("_created"):
                continue
            labels = dict(sample.labels)
            if "tenant" in labels and not self._tenants.shown(labels["tenant"]):
                labels["tenant"] = COLLAPSED_TENANT
            key = (sample.name, tuple(sorted(labels.items())))
            if key not in merged:
                merged[key] = sample.value
            elif spec.kind == "gauge":
                merged[key] = pick(merged[key], sample.value)
            else:  # counters and histogram series add up
                merged[key] += sample.value
        return merged
