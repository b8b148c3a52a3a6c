"""policies/rego/infrastructure.rego on the real synthesized platform template, and on weakened copies."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from cdk.platform_compute import ControlPlaneCompute
from cdk.platform_stack import PlatformStack
from guardrails.policy import RegoPolicyEngine
from tests.cdk.support import POLICY_DIR, REGION, Synthesized, logical_id


@pytest.fixture(scope="module")
def platform(synthesized: Synthesized) -> PlatformStack:
    return synthesized.platform


@pytest.fixture(scope="module")
def compute(platform: PlatformStack) -> ControlPlaneCompute:
    return platform.compute


@pytest.fixture(scope="module")
def engine() -> RegoPolicyEngine:
    return RegoPolicyEngine(POLICY_DIR, {})


def _violations(engine: RegoPolicyEngine, template: dict[str, Any]) -> set[str]:
    decision = engine.evaluate(
        "fraudrail.infrastructure",
        {
            "template": template,
            "tier": "platform",
            "region": REGION,
            "allowed_regions": [REGION],
            "allowed_instance_types": ["ml.m5.large"],
        },
    )
    return {f"{v.rule} {v.field}" for v in decision.violations}


def test_the_real_platform_template_passes_the_policy(
    engine: RegoPolicyEngine, synthesized: Synthesized
) -> None:
    assert _violations(engine, synthesized.template_json("platform")) == set()


def test_the_policy_catches_each_weakening_of_the_real_template(
    engine: RegoPolicyEngine, synthesized: Synthesized, platform: PlatformStack, compute: ControlPlaneCompute
) -> None:
    base = synthesized.template_json("platform")
    alb = logical_id(platform, compute.load_balancer)
    db = logical_id(platform, compute.database.instance)
    service_group = logical_id(platform, compute.service_security_group)

    no_waf = copy.deepcopy(base)
    for rid in [
        r for r, res in no_waf["Resources"].items() if res["Type"] == "AWS::WAFv2::WebACLAssociation"
    ]:
        del no_waf["Resources"][rid]
    assert _violations(engine, no_waf) == {f"waf-on-load-balancer {alb}"}

    public_db = copy.deepcopy(base)
    public_db["Resources"][db]["Properties"]["PubliclyAccessible"] = True
    del public_db["Resources"][db]["Properties"]["KmsKeyId"]
    assert _violations(engine, public_db) == {
        f"database-private {db}.Properties.PubliclyAccessible",
        f"database-encrypted {db}.Properties.KmsKeyId",
    }

    open_service = copy.deepcopy(base)
    open_service["Resources"][service_group]["Properties"]["SecurityGroupIngress"] = [
        {"CidrIp": "0.0.0.0/0", "IpProtocol": "tcp", "FromPort": 8000, "ToPort": 8000}
    ]
    assert _violations(engine, open_service) == {
        f"open-ingress {service_group}.Properties.SecurityGroupIngress[0]"
    }
