"""The CloudWatch dashboards and alarms the CDK stacks synthesize: ours come from dashboards/ and
name catalogued metrics; the rest read metrics AWS itself publishes (AWS/* namespaces)."""

from __future__ import annotations

import json
import re
from typing import Any

from providers.metrics_catalog import CATALOG
from tests.cdk.support import Synthesized
from tests.dashboards.queries import DASHBOARDS_DIR, NAMESPACE


def _resources(synthesized: Synthesized, kind: str) -> list[tuple[str, dict[str, Any]]]:
    return [
        (f"{name}/{logical}", res["Properties"])
        for name in synthesized.templates
        for logical, res in synthesized.template_json(name)["Resources"].items()
        if res["Type"] == kind
    ]


def test_every_synthesized_dashboard_is_a_file_under_dashboards(synthesized: Synthesized) -> None:
    files = {json.dumps(json.loads(p.read_text()), sort_keys=True) for p in DASHBOARDS_DIR.rglob("*.json")}
    dashboards = _resources(synthesized, "AWS::CloudWatch::Dashboard")
    assert dashboards
    for where, props in dashboards:
        body = props["DashboardBody"]
        text = body["Fn::Sub"] if isinstance(body, dict) else body
        # So test_dashboards.py, which reads the files, checks what is deployed.
        assert json.dumps(json.loads(text), sort_keys=True) in files, where


def test_every_synthesized_alarm_reads_a_catalogued_or_aws_metric(synthesized: Synthesized) -> None:
    alarms = _resources(synthesized, "AWS::CloudWatch::Alarm")
    assert alarms
    for where, props in alarms:
        if "MetricName" in props:
            metrics = [props]
        else:
            metrics = [q["MetricStat"]["Metric"] for q in props["Metrics"] if "MetricStat" in q]
            metrics += [
                _insights_metric(where, q["Expression"]) for q in props["Metrics"] if "Expression" in q
            ]
        for metric in metrics:
            namespace, name = metric["Namespace"], metric["MetricName"]
            if namespace == NAMESPACE:
                spec = CATALOG.get(name)
                assert spec is not None, f"{where}: {name} is not in providers/metrics_catalog.py"
                dims = {d["Name"] for d in metric.get("Dimensions", [])}
                assert dims <= set(spec.labels), f"{where}: {name} has no dimension {dims - set(spec.labels)}"
            else:  # published by AWS itself (e.g. AWS/SageMaker ModelLatency for the canary alarms)
                assert namespace.startswith("AWS/"), f"{where}: {namespace} {name} is neither ours nor AWS's"


_INSIGHTS = re.compile(r'^SELECT \w+\((\w+)\) FROM SCHEMA\("([^"]+)"((?:, *\w+)*)\)')


def _insights_metric(where: str, expression: str) -> dict[str, Any]:
    """The metric a Metrics Insights alarm reads, in a MetricStat's shape (its schema's keys as
    dimensions), so it is checked against the catalogue like the others."""
    match = _INSIGHTS.match(expression)
    assert match, f"{where}: an expression alarm that is not a Metrics Insights SELECT: {expression}"
    name, namespace, keys = match.groups()
    dims = [{"Name": k.strip()} for k in keys.split(",") if k.strip()]
    return {"Namespace": namespace, "MetricName": name, "Dimensions": dims}
