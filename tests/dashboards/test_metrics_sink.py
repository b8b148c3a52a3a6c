"""The Prometheus metrics sink: catalogue-checked, monotonic, bucketed, one registry per instance."""

from __future__ import annotations

import pytest
from prometheus_client.parser import text_string_to_metric_families

from providers.local.metrics import InMemoryMetrics, UndeclaredMetric
from providers.metrics_catalog import CATALOG, LATENCY_BUCKETS_S, MetricSpec, TenantLabels
from providers.ports import MetricsSink


def _samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def test_counts_and_sums_never_go_down_however_many_values_are_observed() -> None:
    # The old sink kept 10,000 values then dropped 5,000: _count fell and rate() broke.
    metrics = InMemoryMetrics()
    assert isinstance(metrics, MetricsSink)
    counts = []
    for i in range(12_000):
        metrics.observe("fraudrail_fraud_check_seconds", 0.001, tenant="ten_a")
        if i % 1_000 == 999:
            counts.append(metrics.value("fraudrail_fraud_check_seconds_count", tenant="ten_a"))
    assert counts == [float(n) for n in range(1_000, 12_001, 1_000)]
    assert metrics.value("fraudrail_fraud_check_seconds_sum", tenant="ten_a") == pytest.approx(12.0)


def test_latency_histogram_has_cumulative_buckets_from_half_a_millisecond_to_ten_seconds() -> None:
    metrics = InMemoryMetrics()
    for seconds in (0.0004, 0.003, 0.003, 0.2, 30.0):
        metrics.observe("fraudrail_fraud_check_seconds", seconds, tenant="ten_a")
    assert LATENCY_BUCKETS_S[0] == 0.0005 and LATENCY_BUCKETS_S[-1] == 10.0
    bucket = "fraudrail_fraud_check_seconds_bucket"
    assert metrics.value(bucket, tenant="ten_a", le="0.0005") == 1
    assert metrics.value(bucket, tenant="ten_a", le="0.005") == 3
    assert metrics.value(bucket, tenant="ten_a", le="0.25") == 4
    assert metrics.value(bucket, tenant="ten_a", le="10.0") == 4
    assert metrics.value(bucket, tenant="ten_a", le="+Inf") == 5


def test_a_counter_refuses_to_go_down_and_a_gauge_may() -> None:
    metrics = InMemoryMetrics()
    metrics.increment("fraudrail_rollbacks_total", tenant="ten_a", reason="error_rate")
    with pytest.raises(ValueError):
        metrics.increment("fraudrail_rollbacks_total", -1.0, tenant="ten_a", reason="error_rate")
    assert metrics.counter("fraudrail_rollbacks_total", tenant="ten_a", reason="error_rate") == 1
    metrics.gauge("fraudrail_canary_weight", 0.25, tenant="ten_a")
    metrics.gauge("fraudrail_canary_weight", 0.0, tenant="ten_a")
    assert metrics.value("fraudrail_canary_weight", tenant="ten_a") == 0.0


def test_undeclared_names_types_and_labels_are_errors_not_new_series() -> None:
    metrics = InMemoryMetrics()
    with pytest.raises(UndeclaredMetric, match="not declared"):
        metrics.increment("fraudrail_typo_total", tenant="ten_a")
    with pytest.raises(UndeclaredMetric, match="is a counter"):
        metrics.gauge("fraudrail_rollbacks_total", 1.0, tenant="ten_a", reason="x")
    with pytest.raises(UndeclaredMetric, match="labels"):
        metrics.increment("fraudrail_flagged_total", tenant="ten_a")  # decision missing
    with pytest.raises(UndeclaredMetric, match="labels"):
        metrics.observe("fraudrail_fraud_check_seconds", 0.1, tenant="ten_a", version="mv_1")
    assert "fraudrail_typo" not in metrics.render_prometheus()


def test_exposition_has_help_and_type_for_every_catalogued_metric_and_no_created_series() -> None:
    metrics = InMemoryMetrics()
    metrics.increment("fraudrail_fraud_check_total", tenant="ten_a", decision="LEGIT", cohort="stable")
    text = metrics.render_prometheus()
    for spec in CATALOG.values():
        assert f"# HELP {spec.name} {spec.help}\n" in text
        assert f"# TYPE {spec.name} {spec.kind}\n" in text
    assert "_created" not in text  # would double the series count; nothing reads them


def test_each_instance_has_its_own_registry() -> None:
    first, second = InMemoryMetrics(), InMemoryMetrics()
    first.increment("fraudrail_integrity_failures_total", tenant="ten_a")
    assert first.counter("fraudrail_integrity_failures_total", tenant="ten_a") == 1
    assert second.counter("fraudrail_integrity_failures_total", tenant="ten_a") == 0


def test_a_catalogue_can_be_narrowed_for_an_adapter_test() -> None:
    spec = MetricSpec("fraudrail_only_total", "counter", "Only this.", ())
    metrics = InMemoryMetrics({spec.name: spec})
    metrics.increment("fraudrail_only_total", 2.0)
    assert metrics.counter("fraudrail_only_total") == 2
    with pytest.raises(UndeclaredMetric):
        metrics.increment("fraudrail_flagged_total", tenant="ten_a", decision="REVIEW")


def test_catalogue_refuses_inconsistent_declarations() -> None:
    with pytest.raises(ValueError, match="_total"):
        MetricSpec("fraudrail_checks", "counter", "x", ())
    with pytest.raises(ValueError, match="buckets"):
        MetricSpec("fraudrail_seconds", "histogram", "x", ())
    with pytest.raises(ValueError, match="_total"):
        MetricSpec("fraudrail_weight_total", "gauge", "x", ())


def _two_tenants() -> InMemoryMetrics:
    metrics = InMemoryMetrics()
    for tenant, decision, latency, weight in (("ten_a", "REVIEW", 0.002, 0.1), ("ten_b", "REVIEW", 0.2, 0.5)):
        metrics.increment("fraudrail_flagged_total", tenant=tenant, decision=decision)
        metrics.observe("fraudrail_fraud_check_seconds", latency, tenant=tenant)
        metrics.gauge("fraudrail_canary_weight", weight, tenant=tenant)
    return metrics


def test_tenant_labels_none_merges_every_tenant_into_a_star() -> None:
    samples = _samples(_two_tenants().render_prometheus(TenantLabels.parse("none")))
    assert not [key for key in samples if ("tenant", "ten_a") in key[1] or ("tenant", "ten_b") in key[1]]
    star = (("tenant", "*"),)
    assert samples[("fraudrail_flagged_total", (("decision", "REVIEW"), *star))] == 2
    assert samples[("fraudrail_fraud_check_seconds_count", star)] == 2
    assert samples[("fraudrail_fraud_check_seconds_sum", star)] == pytest.approx(0.202)
    assert samples[("fraudrail_fraud_check_seconds_bucket", (("le", "0.0025"), *star))] == 1
    assert samples[("fraudrail_fraud_check_seconds_bucket", (("le", "+Inf"), *star))] == 2
    assert samples[("fraudrail_canary_weight", star)] == 0.5  # a level: the largest, not a sum


def test_tenant_labels_list_keeps_only_the_listed_tenants() -> None:
    metrics = _two_tenants()
    samples = _samples(metrics.render_prometheus(TenantLabels.parse(" ten_a , ten_c ")))
    assert samples[("fraudrail_fraud_check_seconds_count", (("tenant", "ten_a"),))] == 1
    assert samples[("fraudrail_fraud_check_seconds_count", (("tenant", "*"),))] == 1
    assert not [key for key in samples if ("tenant", "ten_b") in key[1]]
    # The default shows every tenant; the policy changes the scrape, never the recorded values.
    assert ("fraudrail_canary_weight", (("tenant", "ten_b"),)) in _samples(metrics.render_prometheus())


def test_tenant_labels_parse() -> None:
    assert TenantLabels.parse("ALL").shown("ten_x")
    assert not TenantLabels.parse("none").shown("ten_x")
    assert TenantLabels.parse("ten_x").shown("ten_x") and not TenantLabels.parse("ten_x").shown("ten_y")
    with pytest.raises(ValueError):
        TenantLabels.parse(" , ")


def test_not_strict_a_refused_call_is_dropped_logged_once_and_counted(
    caplog: pytest.LogCaptureFixture,
) -> None:
    metrics = InMemoryMetrics(strict=False)
    for _ in range(3):
        metrics.increment("fraudrail_typo_total", tenant="ten_a")
    metrics.increment("fraudrail_flagged_total", tenant="ten_a")  # decision missing
    metrics.increment("fraudrail_integrity_failures_total", -1.0, tenant="ten_a")
    metrics.increment("fraudrail_integrity_failures_total", tenant="ten_a")
    assert metrics.counter("fraudrail_metrics_refused_total") == 5
    assert metrics.counter("fraudrail_integrity_failures_total", tenant="ten_a") == 1
    refusals = [r for r in caplog.records if "metric call refused" in r.getMessage()]
    assert len(refusals) == 3  # one line per distinct problem, not per call
    assert "fraudrail_typo" not in metrics.render_prometheus()
