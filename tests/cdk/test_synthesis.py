"""Entry points: build_app, cdk.json, synthesize_tenant_template, scripts/synth.py, dashboard JSON."""

from __future__ import annotations

import importlib.util
import json
import re
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from cdk.app import PLATFORM_STACK_ID, build_app
from cdk.config import TenantStackError, tenant_stack_name
from cdk.synthesis import synthesize_tenant_template
from cdk.tenant_stack import TenantStack
from tests.cdk.support import REPO_ROOT

CLOUDWATCH_DASHBOARD = REPO_ROOT / "dashboards" / "cloudwatch" / "platform.json"
GRAFANA_DASHBOARD = REPO_ROOT / "dashboards" / "grafana" / "fraudrail.json"


def test_cdk_json_runs_the_app_module() -> None:
    config = json.loads((REPO_ROOT / "cdk.json").read_text())
    assert config["app"] == "python -m cdk.app"
    assert config["context"]["fraudrail:region"] == "eu-west-1"


def test_build_app_adds_a_tenant_stack_from_context() -> None:
    app = build_app(
        {
            "fraudrail:tenantId": "ten_ctx",
            "fraudrail:tier": "premium",
            "fraudrail:contactEmail": "ops@example.com",
            "fraudrail:studioVpcId": "vpc-0abc",
            "fraudrail:studioSubnetIds": "subnet-1,subnet-2",
        }
    )
    stacks = {child.node.id: child for child in app.node.children}
    assert set(stacks) == {PLATFORM_STACK_ID, tenant_stack_name("ten_ctx")}
    tenant = stacks[tenant_stack_name("ten_ctx")]
    assert isinstance(tenant, TenantStack)
    assert tenant.region == "eu-west-1"
    assert tenant.tier == "premium"


def test_build_app_without_a_tenant_builds_only_the_platform() -> None:
    app = build_app({})
    assert [child.node.id for child in app.node.children] == [PLATFORM_STACK_ID]


def test_synthesize_tenant_template_returns_the_cloudformation_dict() -> None:
    template = synthesize_tenant_template(
        "ten_api",
        "premium",
        "us-east-1",
        "2500.50",
        "USD",
        "ops@example.com",
        "cc-1",
        vpc_id="vpc-0abc",
        subnet_ids=["subnet-1", "subnet-2"],
    )
    resources = template["Resources"]
    types = [r["Type"] for r in resources.values()]
    # A given VPC is used as is: no VPC, subnets or endpoints of the stack's own.
    assert "AWS::EC2::VPC" not in types and "AWS::EC2::VPCEndpoint" not in types
    (domain,) = [r for r in resources.values() if r["Type"] == "AWS::SageMaker::Domain"]
    assert domain["Properties"]["VpcId"] == "vpc-0abc"
    assert domain["Properties"]["SubnetIds"] == ["subnet-1", "subnet-2"]
    (budget,) = [r for r in resources.values() if r["Type"] == "AWS::Budgets::Budget"]
    assert budget["Properties"]["Budget"]["BudgetLimit"] == {"Amount": 2500.5, "Unit": "USD"}
    assert "Rules" not in template and "Parameters" not in template  # no bootstrap-version check
    json.dumps(template)  # plain JSON types only


def test_synthesize_tenant_template_refuses_a_region_outside_the_tier() -> None:
    with pytest.raises(TenantStackError, match="region"):
        synthesize_tenant_template("ten_api", "trial", "ap-southeast-2", "100")


def _synth_script() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "fraudrail_synth_script", REPO_ROOT / "scripts" / "synth.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_synth_script_writes_templates(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    status = _synth_script().main(
        ["--tier", "trial", "--tenant-id", "ten_cli", "--out", str(tmp_path), "--no-platform"]
    )
    assert status == 0
    written = tmp_path / f"{tenant_stack_name('ten_cli')}.template.json"
    assert capsys.readouterr().out.split() == [str(written)]
    template = json.loads(written.read_text())
    assert any(r["Type"] == "AWS::SageMaker::Endpoint" for r in template["Resources"].values())


def test_synth_script_reports_a_refused_tenant(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    status = _synth_script().main(["--tier", "trial", "--region", "us-west-2", "--out", str(tmp_path)])
    assert status == 2
    assert "not allowed" in capsys.readouterr().err


_SEARCH = re.compile(r"SEARCH\('Namespace=\"Fraudrail\" MetricName=\"(\w+)\"([^']*)', '(\w+)', \d+\)")


def _cloudwatch_searches(body: dict[str, Any]) -> set[tuple[str, str, str]]:
    """(metric name, extra filter, statistic) of every SEARCH in the dashboard's expressions."""
    found: set[tuple[str, str, str]] = set()
    for widget in body["widgets"]:
        for line in widget["properties"].get("metrics", []):
            for item in line:
                if isinstance(item, dict) and "expression" in item:
                    found |= {(m, f.strip(), stat) for m, f, stat in _SEARCH.findall(item["expression"])}
    return found


def test_cloudwatch_dashboard_covers_the_platform_signals() -> None:
    body = json.loads(CLOUDWATCH_DASHBOARD.read_text())
    searches = _cloudwatch_searches(body)
    latency = "fraudrail_fraud_check_seconds"
    assert {(latency, "", p) for p in ("p50", "p95", "p99")} <= searches
    assert {
        ("fraudrail_fraud_check_total", "", "Sum"),
        ("fraudrail_fraud_check_total", 'decision="error"', "Sum"),
        ("fraudrail_degraded_total", "", "Sum"),
        ("fraudrail_flagged_total", "", "Sum"),
        ("fraudrail_canary_weight", "", "Maximum"),
        ("fraudrail_rollbacks_total", "", "Sum"),
    } <= searches
    assert all(w["properties"].get("region", "${AWS::Region}") == "${AWS::Region}" for w in body["widgets"])
    # Fn::Sub substitutes only the region: no other ${...} may appear in the body.
    assert set(re.findall(r"\$\{[^}]*\}", CLOUDWATCH_DASHBOARD.read_text())) == {"${AWS::Region}"}


def test_grafana_dashboard_queries_every_metric() -> None:
    dashboard = json.loads(GRAFANA_DASHBOARD.read_text())
    exprs = [t["expr"] for panel in dashboard["panels"] for t in panel["targets"]]
    joined = "\n".join(exprs)
    for metric in (
        "fraudrail_fraud_check_seconds_bucket",
        "fraudrail_fraud_check_total",
        "fraudrail_degraded_total",
        "fraudrail_flagged_total",
        "fraudrail_canary_weight",
        "fraudrail_rollbacks_total",
    ):
        assert metric in joined, metric
    for quantile in ("0.5", "0.95", "0.99"):
        assert f"histogram_quantile({quantile}," in joined
    ids = [panel["id"] for panel in dashboard["panels"]]
    assert len(ids) == len(set(ids))
