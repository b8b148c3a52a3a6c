"""The price table and the monthly cost estimate a deploy is checked against."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from decimal import Decimal

import pytest

from control_plane.bootstrap.state import State
from control_plane.errors import PolicyDenied
from control_plane.finops.prices import (
    HostingPlan,
    Meter,
    PriceTable,
    estimate_monthly_cost,
    rollout_plan,
)
from control_plane.finops.settings import PRICES_FILE
from control_plane.registry.orm import ModelVersion
from control_plane.registry.service import check_deployment, deployment_input
from control_plane.tenants.orm import Tenant
from providers.ports import TenantSpec
from tests.control_plane.conftest import OnboardFn
from tests.control_plane.finops.conftest import spend


def test_prices_are_decimals_per_tier_and_hosting_kind() -> None:
    prices = PriceTable.load(PRICES_FILE)
    assert prices.unit_price(Meter.FRAUD_CHECKS, "standard") == Decimal("0.0002")
    assert prices.dimension(Meter.HOSTING_HOURS, {"tier": "premium", "hosting": "dedicated"}) == "dedicated"
    assert prices.dimension(Meter.BATCH_ROWS, {"tier": "premium", "hosting": "dedicated"}) == "premium"
    raw = json.loads(PRICES_FILE.read_text())
    raw["meters"]["fraud_checks"]["prices"]["trial"] = 0.0004
    with pytest.raises(ValueError, match="decimal string"):
        PriceTable.from_dict(raw)
    del raw["meters"]["batch_rows"]
    with pytest.raises(ValueError):
        PriceTable.from_dict(raw)


def test_monthly_estimates_of_each_tiers_provisioning_plan_and_of_a_canary(container: State) -> None:
    prices = container.finops.prices
    estimates = {}
    for tier in ("trial", "standard", "premium"):
        template = container.template(tier)
        plan = container.providers.provisioner.plan(TenantSpec("ten_x", "x", tier, "eu-west-1", template))
        estimates[tier] = estimate_monthly_cost(template, plan, prices).monthly
    # serverless 2 GB x 730 h x 0.005; one pooled slot x 730 h x 0.05; one ml.m5.xlarge x 730 h x 0.23
    assert estimates == {"trial": Decimal("7.30"), "standard": Decimal("36.50"), "premium": Decimal("167.90")}
    assert estimate_monthly_cost(
        container.template("premium"), rollout_plan(container.template("premium")), prices
    ).monthly == Decimal("167.90")
    assert (
        estimate_monthly_cost(
            container.template("standard"), rollout_plan(container.template("standard")), prices
        ).monthly
        == 0
    )
    big = HostingPlan(
        hosting="dedicated", instance_type="ml.c5.2xlarge", instance_count=2, storage_gb=Decimal(100)
    )
    estimate = estimate_monthly_cost(container.template("premium"), big, prices)
    assert estimate.monthly == Decimal("597.98") and len(estimate.lines) == 2  # 595.68 + 2.30
    with pytest.raises(KeyError, match=r"ml\.p4d"):
        estimate_monthly_cost(
            container.template("premium"), HostingPlan("dedicated", "ml.p4d.24xlarge", 1), prices
        )


def test_a_deploy_costing_more_than_the_headroom_is_refused_by_policy_with_the_numbers(
    onboard: OnboardFn, container: State
) -> None:
    t = onboard("silo-co", tier="premium")
    now = datetime.now(UTC)
    spend(container, t["id"], "2400", now)  # of 2500: 100.00 left this month
    candidate = ModelVersion(
        id="mv_candidate",
        tenant_id=t["id"],
        stage="APPROVED",
        gate={"passed": True},
        artifact_key="k",
        sha256="s",
    )
    with container.factory() as s:
        tenant = s.get(Tenant, t["id"])
        assert tenant is not None
        context = container.finops.rollout_context(s, tenant)  # what a rollout start adds
        assert context == {
            "budget_status": "warning",
            "budget_headroom": "100.00",
            "estimated_monthly": "167.90",
        }
        document = deployment_input(
            tenant, candidate, integrity=True, strategy="canary", emergency=False, **context
        )
    with pytest.raises(PolicyDenied) as denied:
        check_deployment(container.policy, document)
    assert "cost.estimated_monthly 167.90 exceeds cost.budget_headroom 100.00" in denied.value.detail
    assert [v["rule"] for v in denied.value.extra["violations"]] == ["cost_over_headroom"]
