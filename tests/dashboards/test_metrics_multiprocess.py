"""Several server processes on one port: each scrape shows the sum over all of them, so a counter
never jumps back when the next scrape lands on another process."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

from providers.local.metrics import InMemoryMetrics
from providers.metrics_catalog import CATALOG, TenantLabels
from tests.dashboards.queries import REPO_ROOT

WORKER = """
import sys
from providers.local.metrics import InMemoryMetrics
m = InMemoryMetrics()
checks, weight, ready = int(sys.argv[1]), float(sys.argv[2]), float(sys.argv[3])
for _ in range(checks):
    m.increment("fraudrail_fraud_check_total", tenant="ten_a", decision="LEGIT", cohort="stable")
    m.observe("fraudrail_fraud_check_seconds", 0.003, tenant="ten_a")
m.increment("fraudrail_flagged_total", tenant="ten_b", decision="REVIEW")
m.gauge("fraudrail_canary_weight", weight, tenant="ten_a")
m.gauge("fraudrail_spool_ready", ready)
if len(sys.argv) > 4:
    print(m.render_prometheus())
"""


def _process(folder: Path, *args: str) -> str:
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(folder), "PYTHONPATH": str(REPO_ROOT)}
    done = subprocess.run(
        [sys.executable, "-c", WORKER, *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def _samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def test_every_process_renders_the_sum_over_all_processes(tmp_path: Path) -> None:
    _process(tmp_path, "3", "0.1", "1")
    text = _process(tmp_path, "4", "0.25", "0", "render")  # this one answers the scrape
    samples = _samples(text)
    legit = (("cohort", "stable"), ("decision", "LEGIT"), ("tenant", "ten_a"))
    assert samples[("fraudrail_fraud_check_total", legit)] == 7
    assert samples[("fraudrail_fraud_check_seconds_count", (("tenant", "ten_a"),))] == 7
    assert samples[("fraudrail_fraud_check_seconds_bucket", (("le", "0.005"), ("tenant", "ten_a")))] == 7
    assert samples[("fraudrail_flagged_total", (("decision", "REVIEW"), ("tenant", "ten_b")))] == 2
    assert samples[("fraudrail_canary_weight", (("tenant", "ten_a"),))] == 0.25  # max
    assert samples[("fraudrail_spool_ready", ())] == 0  # min: one process cannot write
    assert not any("pid" in dict(labels) for _, labels in samples)
    for spec in CATALOG.values():  # the catalogue's HELP, not the collector's placeholder
        assert f"# HELP {spec.name} {spec.help}\n" in text


def test_the_tenant_policy_applies_to_the_aggregate(tmp_path: Path) -> None:
    _process(tmp_path, "2", "0.1", "1")
    _process(tmp_path, "1", "0.5", "1")
    reader = InMemoryMetrics(multiprocess_dir=tmp_path)
    samples = _samples(reader.render_prometheus(TenantLabels.parse("ten_b")))
    star = (("cohort", "stable"), ("decision", "LEGIT"), ("tenant", "*"))
    assert samples[("fraudrail_fraud_check_total", star)] == 3
    assert samples[("fraudrail_flagged_total", (("decision", "REVIEW"), ("tenant", "ten_b")))] == 2
    assert not [key for key in samples if ("tenant", "ten_a") in key[1]]


def test_without_the_switch_a_process_renders_its_own_registry(tmp_path: Path) -> None:
    metrics = InMemoryMetrics()  # this test process imported prometheus-client without it
    assert metrics.multiprocess_dir is None
