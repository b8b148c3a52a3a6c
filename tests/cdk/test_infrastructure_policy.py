"""policies/rego/infrastructure.rego on the real synthesized templates, and on broken copies of them."""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import pytest

from cdk.config import TIERS
from guardrails.policy import PolicyDecision, RegoPolicyEngine
from guardrails.rego_testing import run_rego_test_file
from tests.cdk.support import POLICY_DIR, REGION, Synthesized

PACKAGE = "fraudrail.infrastructure"

Template = dict[str, Any]


@pytest.fixture(scope="module")
def engine() -> RegoPolicyEngine:
    return RegoPolicyEngine(POLICY_DIR, {})


def _input(
    template: Template, tier: str, tier_templates: dict[str, Any], region: str = REGION
) -> dict[str, Any]:
    if tier == "platform":
        allowed_regions, instance_types = [REGION], ["ml.m5.large"]
    else:
        allowed_regions = tier_templates[tier]["allowed_regions"]
        instance_types = tier_templates[tier]["instance_types"]
    return {
        "template": template,
        "tier": tier,
        "region": region,
        "allowed_regions": allowed_regions,
        "allowed_instance_types": instance_types,
    }


def _evaluate(
    engine: RegoPolicyEngine,
    template: Template,
    tier: str,
    tier_templates: dict[str, Any],
    region: str = REGION,
) -> PolicyDecision:
    return engine.evaluate(PACKAGE, _input(template, tier, tier_templates, region))


@pytest.mark.parametrize("name", ["platform", *TIERS])
def test_synthesized_templates_are_allowed(
    synthesized: Synthesized, engine: RegoPolicyEngine, tier_templates: dict[str, Any], name: str
) -> None:
    decision = _evaluate(engine, synthesized.template_json(name), name, tier_templates)
    assert decision.violations == ()
    assert decision.allowed


def test_region_outside_the_tier_is_denied(
    synthesized: Synthesized, engine: RegoPolicyEngine, tier_templates: dict[str, Any]
) -> None:
    decision = _evaluate(
        engine, synthesized.template_json("trial"), "trial", tier_templates, region="us-west-2"
    )
    assert not decision.allowed
    assert [(v.rule, v.field) for v in decision.violations] == [("region-not-allowed", None)]


def _only(resources: Template, resource_type: str) -> tuple[str, dict[str, Any]]:
    (match,) = [(rid, r) for rid, r in resources.items() if r["Type"] == resource_type]
    return match


def _public_bucket(resources: Template) -> str:
    bucket_id, bucket = _only(resources, "AWS::S3::Bucket")
    bucket["Properties"]["PublicAccessBlockConfiguration"]["BlockPublicPolicy"] = False
    return f"{bucket_id}.Properties.PublicAccessBlockConfiguration.BlockPublicPolicy"


def _unencrypted_bucket(resources: Template) -> str:
    bucket_id, bucket = _only(resources, "AWS::S3::Bucket")
    del bucket["Properties"]["BucketEncryption"]
    return f"{bucket_id}.Properties.BucketEncryption"


def _wildcard_action(resources: Template) -> str:
    policy_id, policy = next((rid, r) for rid, r in resources.items() if r["Type"] == "AWS::IAM::Policy")
    statements = policy["Properties"]["PolicyDocument"]["Statement"]
    statements.append(
        {"Effect": "Allow", "Action": "sagemaker:*", "Resource": "arn:aws:sagemaker:::endpoint/x"}
    )
    return f"{policy_id}.Properties.PolicyDocument.Statement[{len(statements) - 1}].Action"


def _wildcard_resource(resources: Template) -> str:
    policy_id, policy = next((rid, r) for rid, r in resources.items() if r["Type"] == "AWS::IAM::Policy")
    statements = policy["Properties"]["PolicyDocument"]["Statement"]
    statements.append({"Effect": "Allow", "Action": "s3:GetObject", "Resource": "*"})
    return f"{policy_id}.Properties.PolicyDocument.Statement[{len(statements) - 1}].Resource"


def _disallowed_instance_type(resources: Template) -> str:
    config_id, config = _only(resources, "AWS::SageMaker::EndpointConfig")
    config["Properties"]["ProductionVariants"][1]["InstanceType"] = "ml.p4d.24xlarge"
    return f"{config_id}.Properties.ProductionVariants[1].InstanceType"


def _endpoint_without_kms(resources: Template) -> str:
    config_id, config = _only(resources, "AWS::SageMaker::EndpointConfig")
    del config["Properties"]["KmsKeyId"]
    return f"{config_id}.Properties.KmsKeyId"


def _missing_tag(resources: Template) -> str:
    domain_id, domain = _only(resources, "AWS::SageMaker::Domain")
    domain["Properties"]["Tags"] = [t for t in domain["Properties"]["Tags"] if t["Key"] != "cost-center"]
    return f"{domain_id}.Properties.Tags"


MUTATIONS: dict[str, tuple[str, Callable[[Template], str]]] = {
    "public bucket": ("s3-public-access-block", _public_bucket),
    "unencrypted bucket": ("s3-encryption", _unencrypted_bucket),
    "service wildcard action": ("iam-wildcard-action", _wildcard_action),
    "wildcard resource": ("iam-wildcard-resource", _wildcard_resource),
    "disallowed instance type": ("sagemaker-instance-type", _disallowed_instance_type),
    "endpoint config without KMS": ("sagemaker-endpoint-kms", _endpoint_without_kms),
    "missing tag": ("required-tags", _missing_tag),
}


@pytest.mark.parametrize("mutation", sorted(MUTATIONS))
def test_each_violation_of_a_mutated_premium_template_is_reported(
    synthesized: Synthesized, engine: RegoPolicyEngine, tier_templates: dict[str, Any], mutation: str
) -> None:
    rule, mutate = MUTATIONS[mutation]
    template = copy.deepcopy(synthesized.template_json("premium"))
    field = mutate(template["Resources"])
    decision = _evaluate(engine, template, "premium", tier_templates)
    assert not decision.allowed
    assert [(v.rule, v.field) for v in decision.violations] == [(rule, field)]
    assert decision.violations[0].message


def test_all_mutations_together_report_every_rule(
    synthesized: Synthesized, engine: RegoPolicyEngine, tier_templates: dict[str, Any]
) -> None:
    template = copy.deepcopy(synthesized.template_json("premium"))
    expected = {(rule, mutate(template["Resources"])) for rule, mutate in MUTATIONS.values()}
    decision = _evaluate(engine, template, "premium", tier_templates)
    assert {(v.rule, v.field) for v in decision.violations} == expected


def test_star_action_on_star_resource_in_the_platform_is_denied(
    synthesized: Synthesized, engine: RegoPolicyEngine, tier_templates: dict[str, Any]
) -> None:
    template = copy.deepcopy(synthesized.template_json("platform"))
    policy = next(r for r in template["Resources"].values() if r["Type"] == "AWS::IAM::Policy")
    policy["Properties"]["PolicyDocument"]["Statement"].append(
        {"Effect": "Allow", "Action": "*", "Resource": "*"}
    )
    decision = _evaluate(engine, template, "platform", tier_templates)
    assert decision.rules == {"iam-wildcard-action", "iam-wildcard-resource"}


def test_rego_unit_tests_pass() -> None:
    results = run_rego_test_file(POLICY_DIR, POLICY_DIR / "infrastructure_test.rego")
    assert len(results) >= 15
    assert [r for r in results if not r.passed] == []
