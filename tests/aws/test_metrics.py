"""CloudWatch metrics sink: buffered, flushed in batches, never raising into the caller."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest
from botocore.config import Config

from providers.aws.factory import AwsClients
from providers.aws.metrics import CloudWatchMetrics
from providers.local.metrics import InMemoryMetrics, UndeclaredMetric
from providers.ports import MetricsSink
from tests.aws.conftest import REGION
from tests.helpers import wait_until

pytestmark = pytest.mark.aws


def _stats(clients: AwsClients, name: str, dims: list[dict[str, str]]) -> dict[str, float]:
    now = datetime.now(UTC)
    points = clients.cloudwatch.get_metric_statistics(
        Namespace="Fraudrail",
        MetricName=name,
        Dimensions=dims,  # type: ignore[arg-type]
        StartTime=now - timedelta(minutes=10),
        EndTime=now + timedelta(minutes=10),
        Period=3600,
        Statistics=["Sum", "SampleCount", "Minimum", "Maximum"],
    )["Datapoints"]
    assert points, f"no data for {name}"
    return {k: float(sum(float(p[k]) for p in points)) for k in ("Sum", "SampleCount")} | {
        "Minimum": min(float(p["Minimum"]) for p in points),
        "Maximum": max(float(p["Maximum"]) for p in points),
    }


def test_metrics_flush_counters_and_observations_to_cloudwatch(clients: AwsClients) -> None:
    metrics = CloudWatchMetrics(clients.cloudwatch, batch_size=2, flush_interval_s=None)
    assert isinstance(metrics, MetricsSink) and isinstance(metrics, InMemoryMetrics)
    metrics.increment("fraudrail_flagged_total", tenant="ten_a", decision="REVIEW")
    metrics.increment("fraudrail_flagged_total", 2.0, tenant="ten_a", decision="REVIEW")
    metrics.increment("fraudrail_flagged_total", tenant="ten_b", decision="SUSPICIOUS")
    for value in (3.0, 9.0, 6.0, 3.0):
        metrics.observe("fraudrail_fraud_check_seconds", value, tenant="ten_a")
    sent: list[dict[str, Any]] = []
    clients.cloudwatch.meta.events.register(
        "before-parameter-build.cloudwatch.PutMetricData", lambda params, **_: sent.append(params)
    )
    assert metrics.pending == 7
    assert metrics.flush() == 3  # three series, sent in two PutMetricData calls of at most two
    assert len(sent) == 2
    assert metrics.pending == 0 and metrics.flush() == 0
    lenient = CloudWatchMetrics(clients.cloudwatch, flush_interval_s=None, strict=False)
    lenient.increment("scoring_requests_total", tenant="ten_a")
    assert lenient.pending == 0 and lenient.counter("fraudrail_metrics_refused_total") == 1

    review = [{"Name": "decision", "Value": "REVIEW"}, {"Name": "tenant", "Value": "ten_a"}]
    assert _stats(clients, "fraudrail_flagged_total", review)["Sum"] == 3.0
    latency = _stats(clients, "fraudrail_fraud_check_seconds", [{"Name": "tenant", "Value": "ten_a"}])
    assert latency == {"Sum": 21.0, "SampleCount": 4.0, "Minimum": 3.0, "Maximum": 9.0}
    (datum,) = [
        d for call in sent for d in call["MetricData"] if d["MetricName"] == "fraudrail_fraud_check_seconds"
    ]
    # Values / Counts (not StatisticValues), so CloudWatch can compute percentiles.
    assert datum["Values"] == [3.0, 6.0, 9.0] and datum["Counts"] == [2.0, 1.0, 1.0]
    assert datum["Unit"] == "Seconds"
    listed = clients.cloudwatch.list_metrics(Namespace="Fraudrail")["Metrics"]
    assert {m["MetricName"] for m in listed} == {"fraudrail_flagged_total", "fraudrail_fraud_check_seconds"}

    # /metrics serves the same recording: the process's own view in Prometheus text.
    text = metrics.render_prometheus()
    assert 'fraudrail_flagged_total{decision="REVIEW",tenant="ten_a"} 3.0' in text
    assert 'fraudrail_fraud_check_seconds_count{tenant="ten_a"} 4.0' in text
    assert 'fraudrail_fraud_check_seconds_bucket{le="10.0",tenant="ten_a"} 4.0' in text


def test_metrics_flush_in_the_background_past_the_threshold(clients: AwsClients) -> None:
    metrics = CloudWatchMetrics(clients.cloudwatch, flush_threshold=5, flush_interval_s=None)
    try:
        for _ in range(5):
            metrics.increment("fraudrail_rate_limited_total", tenant="ten_a", reason="rate")
        wait_until(lambda: metrics.flushes >= 1 and metrics.pending == 0, timeout_s=10, what="a flush")
        assert metrics.sent == 1
        dims = [{"Name": "reason", "Value": "rate"}, {"Name": "tenant", "Value": "ten_a"}]
        assert _stats(clients, "fraudrail_rate_limited_total", dims)["Sum"] == 5.0
    finally:
        metrics.close()


def test_metrics_never_raise_when_cloudwatch_is_unreachable() -> None:
    dead = boto3.client(
        "cloudwatch",
        region_name=REGION,
        endpoint_url="http://127.0.0.1:1",
        config=Config(retries={"max_attempts": 1, "mode": "standard"}, connect_timeout=0.2, read_timeout=0.2),
    )
    metrics = CloudWatchMetrics(dead, flush_interval_s=None)
    metrics.increment("fraudrail_integrity_failures_total", tenant="ten_a")
    metrics.observe("fraudrail_fraud_check_seconds", 0.004, tenant="ten_a")
    assert metrics.flush() == 0
    assert metrics.dropped == 2
    assert metrics.counter("fraudrail_integrity_failures_total", tenant="ten_a") == 1.0
    metrics.close()


def test_metrics_split_many_distinct_values_into_datums_of_150(clients: AwsClients) -> None:
    metrics = CloudWatchMetrics(clients.cloudwatch, flush_interval_s=None, flush_threshold=10_000)
    for i in range(400):
        metrics.observe("fraudrail_fraud_check_seconds", 0.001 * (i + 1), tenant="ten_a")
    assert metrics.flush() == 3  # 400 distinct values: 150 + 150 + 100
    stats = _stats(clients, "fraudrail_fraud_check_seconds", [{"Name": "tenant", "Value": "ten_a"}])
    assert stats["SampleCount"] == 400.0 and stats["Maximum"] == pytest.approx(0.4)


def test_a_gauge_sends_its_last_value_of_the_flush(clients: AwsClients) -> None:
    metrics = CloudWatchMetrics(clients.cloudwatch, flush_interval_s=None)
    metrics.gauge("fraudrail_canary_weight", 0.25, tenant="ten_g")
    metrics.gauge("fraudrail_canary_weight", 0.5, tenant="ten_g")
    assert metrics.flush() == 1
    stats = _stats(clients, "fraudrail_canary_weight", [{"Name": "tenant", "Value": "ten_g"}])
    assert stats["SampleCount"] == 1.0 and stats["Maximum"] == 0.5
    assert metrics.value("fraudrail_canary_weight", tenant="ten_g") == 0.5


def test_an_undeclared_metric_is_refused_before_it_is_buffered(clients: AwsClients) -> None:
    metrics = CloudWatchMetrics(clients.cloudwatch, flush_interval_s=None)
    with pytest.raises(UndeclaredMetric, match="not declared"):
        metrics.increment("scoring_requests_total", tenant="ten_a")
    with pytest.raises(UndeclaredMetric, match="labels"):
        metrics.increment("fraudrail_flagged_total", tenant_id="ten_a", decision="REVIEW")
    assert metrics.pending == 0 and metrics.flush() == 0
    lenient = CloudWatchMetrics(clients.cloudwatch, flush_interval_s=None, strict=False)
    lenient.increment("scoring_requests_total", tenant="ten_a")
    assert lenient.pending == 0 and lenient.counter("fraudrail_metrics_refused_total") == 1
