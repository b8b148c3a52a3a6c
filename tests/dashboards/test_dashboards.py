"""Every query of every dashboard is backed by a catalogued metric that the app really exposes.

Grafana dashboards are checked against ``/metrics`` after real traffic (a tenant onboarded, checks
answered LEGIT, SUSPICIOUS and degraded, one refused for a full spool, then a canary set to 10 %
and rolled back by the code the reconcile and the rollback Lambda share: ``traffic.set_weights``
and ``handle_alarm``); CloudWatch dashboards against the data the CloudWatch adapter sends for the
same metric calls."""

from __future__ import annotations

import json
import re
from typing import Any

import pandas as pd
import pytest
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from control_plane.bootstrap.state import State
from control_plane.scoring.spool import SpoolUnavailable
from fraud_model.training import sha256
from providers.aws.metrics import CloudWatchMetrics
from providers.local.metrics import InMemoryMetrics
from providers.metrics_catalog import CATALOG, spec_for_series
from providers.ports import HostedModel, ProviderError
from tests.control_plane.conftest import auth
from tests.control_plane.monitoring.conftest import score
from tests.control_plane.scoring.conftest import LiveFn, register_model, sim_requests, txn
from tests.dashboards.queries import NAMESPACE, Use, cloudwatch_uses, dashboard_files, grafana_uses
from traffic import CANARY_WEIGHT_METRIC, AlarmDeps, handle_alarm, set_weights
from traffic.alarm import ROLLBACKS_METRIC

_PERCENTILE = re.compile(r"^p\d+(\.\d+)?$")
Call = tuple[str, str, float, dict[str, str]]


def _grafana() -> list[Use]:
    return [use for path in dashboard_files()["grafana"] for use in grafana_uses(path)]


def _cloudwatch() -> list[Use]:
    return [
        use
        for path in dashboard_files()["cloudwatch"]
        for use in cloudwatch_uses(path.name, json.loads(path.read_text()))
    ]


def test_every_dashboard_is_read_and_queries_fraudrail_metrics() -> None:
    files = dashboard_files()
    assert files["grafana"] and files["cloudwatch"]
    for path in files["grafana"]:
        assert grafana_uses(path), path
    for path in files["cloudwatch"]:
        assert cloudwatch_uses(path.name, json.loads(path.read_text())), path


def test_every_grafana_series_is_catalogued_with_the_labels_its_query_uses() -> None:
    for use in _grafana():
        spec = spec_for_series(use.series)
        assert spec is not None, f"not in providers/metrics_catalog.py: {use}"
        allowed = set(spec.labels) | ({"le"} if use.series.endswith("_bucket") else set())
        assert use.labels <= allowed, f"{spec.name} has labels {spec.labels}: {use}"


def test_every_cloudwatch_metric_is_catalogued_and_its_statistic_fits_the_type() -> None:
    for use in _cloudwatch():
        spec = CATALOG.get(use.series)  # CloudWatch metric names are the catalogue's names
        assert spec is not None, f"not in providers/metrics_catalog.py: {use}"
        assert use.labels <= set(spec.labels), f"{spec.name} has dimensions {spec.labels}: {use}"
        stat = use.statistic or ""
        if _PERCENTILE.match(stat) or stat == "SampleCount":
            assert spec.kind == "histogram", f"{stat} needs observed values: {use}"
        elif spec.kind == "counter":
            assert stat == "Sum", f"a counter is sent as per-flush counts: read it with Sum: {use}"
        elif spec.kind == "gauge":
            assert stat in ("Maximum", "Minimum", "Average"), f"a gauge is a level: {use}"


def _record_calls(metrics: InMemoryMetrics, monkeypatch: pytest.MonkeyPatch) -> list[Call]:
    """Keep every metric call the app makes (to replay them into the CloudWatch adapter)."""
    calls: list[Call] = []
    for method in ("increment", "observe", "gauge"):
        original = getattr(metrics, method)

        def record(
            name: str, value: float = 1.0, *, _m: str = method, _o: Any = original, **labels: str
        ) -> None:
            calls.append((_m, name, value, labels))
            _o(name, value, **labels)

        monkeypatch.setattr(metrics, method, record)
    return calls


class DeadCache:
    def __getattr__(self, name: str) -> Any:
        def fail(*_: Any, **__: Any) -> Any:
            raise ProviderError("redis: Timeout reading from socket")

        return fail


class FakeCloudWatch:
    def __init__(self) -> None:
        self.data: list[dict[str, Any]] = []

    def put_metric_data(self, *, Namespace: str, MetricData: list[dict[str, Any]]) -> None:
        assert Namespace == NAMESPACE
        self.data += MetricData


def _drive_traffic(
    client: TestClient, live_tenant: LiveFn, container: State, artifact: bytes, mp: pytest.MonkeyPatch
) -> str:
    t = live_tenant()
    tenant_id: str = t["id"]
    config = {
        "review_threshold": "0.5",
        "suspicious_threshold": "0.8",
        "block_cards": ["card_stolen"],
        "allow_terminals": ["term_trusted"],
    }
    assert client.put("/v1/scoring-config", json=config, headers=auth(t["admin"])).status_code == 200
    app = auth(t["app"])
    legit = client.post("/v1/fraud-check", json=txn("tx_ok", terminal_id="term_trusted"), headers=app)
    assert legit.json()["decision"] == "LEGIT", legit.text
    flagged = client.post("/v1/fraud-check", json=txn("tx_bad", card_token="card_stolen"), headers=app)
    assert flagged.json()["decision"] == "SUSPICIOUS", flagged.text
    mp.setattr(container.scoring.checker, "cache", DeadCache())
    degraded = client.post("/v1/fraud-check", json=txn("tx_deg", terminal_id="term_trusted"), headers=app)
    assert degraded.json()["degraded_inputs"] == ["feature_cache"], degraded.text

    def disk_full(_: Any) -> None:
        raise SpoolUnavailable("flagged spool: [Errno 28] No space left on device")

    # A flagged answer that cannot be made durable is not given: 503, counted as an error.
    mp.setattr(container.scoring.checker.spool, "append", disk_full)
    failed = client.post("/v1/fraud-check", json=txn("tx_err", card_token="card_stolen"), headers=app)
    assert failed.status_code == 503, failed.text
    assert client.get("/readyz").status_code == 200  # a probe refreshes the spool gauges

    # A canary at 10 %, then its rollback, through the app's own host and metrics sink.
    host = container.providers.model_host
    canary = register_model(container, tenant_id, artifact)
    host.deploy(HostedModel(tenant_id, canary, f"tenants/{tenant_id}/models/{canary}.frm", sha256(artifact)))
    metrics = container.providers.metrics
    set_weights(host, tenant_id, {t["model"]: 9_000, canary: 1_000}, canary=canary, metrics=metrics)
    alarm = {
        "type": "rollout.alarm",
        "tenant_id": tenant_id,
        "rollout_id": "ro_dash",
        "stable_version": t["model"],
        "canary_version": canary,
        "reason": "canary analysis failed: latency_p95_ms observed 900 against threshold 250",
        "evidence": {"metric": "latency_p95_ms", "threshold": 250, "observed": 900},
    }
    assert handle_alarm(alarm, AlarmDeps(host, container.providers.rollback_log, metrics)).first
    return tenant_id


def _exposed(use: Use, samples: list[tuple[str, dict[str, str]]]) -> bool:
    return any(
        name == use.series
        and use.labels <= set(labels)
        and all(labels.get(k) == v for k, v in use.values.items())
        for name, labels in samples
    )


def test_every_queried_series_is_exposed_after_real_traffic(
    client: TestClient,
    live_tenant: LiveFn,
    container: State,
    trained_artifact: bytes,
    monitored: dict[str, Any],
    sim_frame: pd.DataFrame,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    metrics = container.providers.metrics
    calls = _record_calls(metrics, monkeypatch)
    # A version with a training profile serves checks; the drift report sets the PSI gauges.
    score(client, monitored, sim_requests(sim_frame, 40))
    container.monitor.flush()
    report = client.get(
        "/v1/monitoring/drift",
        params={"model_version": monitored["model"], "window": "day"},
        headers=auth(monitored["admin"]),
    )
    assert report.status_code == 200, report.text
    tenant_id = _drive_traffic(client, live_tenant, container, trained_artifact, monkeypatch)

    scrape = client.get("/metrics")
    assert scrape.status_code == 200
    assert scrape.headers["content-type"].startswith("text/plain; version=0.0.4")
    families = list(text_string_to_metric_families(scrape.text))
    samples = [(s.name, dict(s.labels)) for f in families for s in f.samples]
    missing = [str(use) for use in _grafana() if not _exposed(use, samples)]
    assert not missing, "queried but not exposed:\n" + "\n".join(missing)
    # Every catalogued metric carries its HELP and TYPE, even before its first sample.
    for spec in CATALOG.values():
        assert f"# HELP {spec.name} " in scrape.text and f"# TYPE {spec.name} {spec.kind}" in scrape.text
    # The flagged counter moves only on flagged answers, with the decision given.
    assert metrics.counter("fraudrail_flagged_total", tenant=tenant_id, decision="SUSPICIOUS") == 1
    assert metrics.counter("fraudrail_flagged_total", tenant=tenant_id, decision="LEGIT") == 0
    assert metrics.value("fraudrail_fraud_check_seconds_count", tenant=tenant_id) == 3  # answered checks
    assert metrics.value("fraudrail_canary_weight", tenant=tenant_id) == 0.0  # rolled back from 0.1
    assert metrics.counter("fraudrail_rollbacks_total", tenant=tenant_id, reason="latency_p95_ms") == 1

    # The same calls, as the CloudWatch adapter would send them.
    fake = FakeCloudWatch()
    cw = CloudWatchMetrics(fake, flush_interval_s=None)  # type: ignore[arg-type]
    for method, name, value, labels in calls:
        getattr(cw, method)(name, value, **labels)
    assert cw.flush() > 0
    for use in _cloudwatch():
        data = [
            d
            for d in fake.data
            if d["MetricName"] == use.series
            and all({"Name": k, "Value": v} in d["Dimensions"] for k, v in use.values.items())
        ]
        assert data, f"never sent to CloudWatch: {use}"
        if _PERCENTILE.match(use.statistic or ""):
            assert any("Values" in d for d in data), f"percentiles need Values/Counts: {use}"


def test_the_rollout_code_emits_catalogued_names() -> None:
    assert CATALOG[CANARY_WEIGHT_METRIC].kind == "gauge"
    assert CATALOG[ROLLBACKS_METRIC].kind == "counter"
