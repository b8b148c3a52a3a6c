"""Tenant stacks per tier: what each tier gets, tags on everything, and what the stack refuses."""

from __future__ import annotations

from typing import Any

import pytest
from aws_cdk.assertions import Match

from cdk.app import new_app
from cdk.config import tenant_endpoint_name
from cdk.tenant_stack import TenantStack, TenantStackError
from tests.cdk.support import CONTACT, COST_CENTER, REGION, TENANT_IDS, Synthesized, logical_id

TRIAL, STANDARD, PREMIUM = TENANT_IDS["trial"], TENANT_IDS["standard"], TENANT_IDS["premium"]


def _join_text(value: Any) -> str:
    """The literal parts of an Fn::Join (tokens dropped), to check prefixes inside ARNs and URLs."""
    if isinstance(value, dict) and "Fn::Join" in value:
        return "".join(part for part in value["Fn::Join"][1] if isinstance(part, str))
    return str(value)


# ---------------------------------------------------------------- trial


def test_trial_gets_a_serverless_endpoint(synthesized: Synthesized, tier_templates: dict[str, Any]) -> None:
    serverless = tier_templates["trial"]["serverless"]
    template = synthesized.templates["trial"]
    template.resource_count_is("AWS::SageMaker::Endpoint", 1)
    template.has_resource_properties(
        "AWS::SageMaker::EndpointConfig",
        {
            "KmsKeyId": Match.any_value(),
            "ProductionVariants": [
                {
                    "VariantName": "serverless",
                    "ModelName": Match.any_value(),
                    "ServerlessConfig": {
                        "MemorySizeInMB": serverless["memory_mb"],
                        "MaxConcurrency": serverless["max_concurrency"],
                    },
                }
            ],
        },
    )
    template.all_resources_properties(
        "AWS::SageMaker::EndpointConfig",
        {"ProductionVariants": [Match.object_like({"InstanceType": Match.absent()})]},
    )
    template.has_resource_properties(
        "AWS::SageMaker::Endpoint", {"EndpointName": tenant_endpoint_name(TRIAL)}
    )
    # No bucket of its own: the model lives under the tenant's prefix of the platform bucket.
    template.resource_count_is("AWS::S3::Bucket", 0)
    (model,) = template.find_resources("AWS::SageMaker::Model").values()
    url = _join_text(model["Properties"]["PrimaryContainer"]["ModelDataUrl"])
    assert url.startswith("s3://fraudrail-platform-") and f"/tenants/{TRIAL}/" in url


def test_trial_model_role_reads_only_its_prefix(synthesized: Synthesized) -> None:
    (policy,) = synthesized.templates["trial"].find_resources("AWS::IAM::Policy").values()
    statements = {s["Sid"]: s for s in policy["Properties"]["PolicyDocument"]["Statement"]}
    assert _join_text(statements["ReadModelArtifacts"]["Resource"]).endswith(f"/tenants/{TRIAL}/*")
    assert statements["ListModelArtifacts"]["Condition"] == {
        "StringLike": {"s3:prefix": [f"tenants/{TRIAL}/*"]}
    }
    assert statements["UsePlatformKmsKey"]["Condition"] == {
        "ForAnyValue:StringEquals": {"kms:ResourceAliases": ["alias/fraudrail-platform"]}
    }


# ---------------------------------------------------------------- standard


def test_standard_has_no_endpoint_and_records_its_pooled_slot(synthesized: Synthesized) -> None:
    template = synthesized.templates["standard"]
    for resource_type in (
        "AWS::SageMaker::Endpoint",
        "AWS::SageMaker::EndpointConfig",
        "AWS::SageMaker::Model",
    ):
        template.resource_count_is(resource_type, 0)
    template.resource_count_is("AWS::S3::Bucket", 0)
    (parameter,) = template.find_resources("AWS::SSM::Parameter").values()
    assert parameter["Properties"]["Name"] == f"/fraudrail/tenants/{STANDARD}/hosting"
    value = _join_text(parameter["Properties"]["Value"])
    assert '"endpoint_name": "fraudrail-pooled"' in value
    assert f'"model_prefix": "tenants/{STANDARD}/"' in value
    assert '"bucket": "fraudrail-platform-' in value
    outputs = synthesized.template_json("standard")["Outputs"]
    assert outputs["ModelPrefix"]["Value"] == f"tenants/{STANDARD}/"
    assert outputs["EndpointName"]["Value"] == "fraudrail-pooled"


# ---------------------------------------------------------------- premium


def test_premium_bucket(synthesized: Synthesized) -> None:
    silo = synthesized.premium_silo()
    stack = synthesized.tenants["premium"]
    template = synthesized.templates["premium"]
    template.resource_count_is("AWS::S3::Bucket", 1)
    template.has_resource_properties(
        "AWS::S3::Bucket",
        {
            "BucketEncryption": {
                "ServerSideEncryptionConfiguration": [
                    Match.object_like(
                        {
                            "ServerSideEncryptionByDefault": {
                                "SSEAlgorithm": "aws:kms",
                                "KMSMasterKeyID": {"Fn::GetAtt": [logical_id(stack, silo.key), "Arn"]},
                            }
                        }
                    )
                ]
            },
            "PublicAccessBlockConfiguration": {
                "BlockPublicAcls": True,
                "BlockPublicPolicy": True,
                "IgnorePublicAcls": True,
                "RestrictPublicBuckets": True,
            },
            "VersioningConfiguration": {"Status": "Enabled"},
            "LifecycleConfiguration": {
                "Rules": [
                    Match.object_like(
                        {
                            "Prefix": "logs/",
                            "Status": "Enabled",
                            "Transitions": [{"StorageClass": "GLACIER", "TransitionInDays": 30}],
                        }
                    )
                ]
            },
        },
    )
    template.has_resource_properties("AWS::KMS::Key", {"EnableKeyRotation": True})
    # enforce_ssl: a bucket policy denying every non-TLS request.
    template.has_resource_properties(
        "AWS::S3::BucketPolicy",
        {
            "PolicyDocument": {
                "Statement": Match.array_with(
                    [
                        Match.object_like(
                            {
                                "Effect": "Deny",
                                "Action": "s3:*",
                                "Condition": {"Bool": {"aws:SecureTransport": "false"}},
                            }
                        )
                    ]
                )
            }
        },
    )


def test_premium_studio_domain_and_user_profile(synthesized: Synthesized) -> None:
    stack = synthesized.tenants["premium"]
    silo = synthesized.premium_silo()
    template = synthesized.templates["premium"]
    domain_id = logical_id(stack, silo.domain)
    template.has_resource_properties(
        "AWS::SageMaker::Domain",
        {
            "AuthMode": "IAM",
            "AppNetworkAccessType": "VpcOnly",
            "DomainName": tenant_endpoint_name(PREMIUM),
            "VpcId": {"Ref": Match.string_like_regexp("SiloVpc")},
            "SubnetIds": Match.array_with([{"Ref": Match.string_like_regexp("isolatedSubnet1")}]),
            "KmsKeyId": Match.any_value(),
            "DefaultUserSettings": Match.object_like({"ExecutionRole": Match.any_value()}),
        },
    )
    template.has_resource_properties(
        "AWS::SageMaker::UserProfile",
        {"DomainId": {"Fn::GetAtt": [domain_id, "DomainId"]}, "UserProfileName": "ten-premium01-analyst"},
    )
    # The isolated VPC reaches SageMaker through endpoints, not the internet.
    template.resource_count_is("AWS::EC2::InternetGateway", 0)
    template.resource_count_is("AWS::EC2::VPCEndpoint", 5)


def test_premium_endpoint_has_stable_and_dark_canary(synthesized: Synthesized) -> None:
    template = synthesized.templates["premium"]
    template.resource_count_is("AWS::SageMaker::Model", 2)
    template.has_resource_properties(
        "AWS::SageMaker::EndpointConfig",
        {
            "KmsKeyId": {"Fn::GetAtt": [Match.string_like_regexp("SiloKey"), "Arn"]},
            "ProductionVariants": [
                Match.object_like(
                    {"VariantName": "stable", "InitialVariantWeight": 1, "InstanceType": "ml.m5.xlarge"}
                ),
                Match.object_like(
                    {"VariantName": "canary", "InitialVariantWeight": 0, "InstanceType": "ml.m5.xlarge"}
                ),
            ],
        },
    )
    template.has_resource_properties(
        "AWS::SageMaker::Endpoint", {"EndpointName": tenant_endpoint_name(PREMIUM)}
    )
    # Canary alarms go to the platform topic, which triggers the rollback Lambda.
    template.resource_count_is("AWS::CloudWatch::Alarm", 2)
    template.all_resources_properties(
        "AWS::CloudWatch::Alarm",
        {
            "Namespace": "AWS/SageMaker",
            "Dimensions": Match.array_with([{"Name": "VariantName", "Value": "canary"}]),
            "AlarmActions": [Match.any_value()],
        },
    )
    alarms = template.find_resources("AWS::CloudWatch::Alarm").values()
    assert {_join_text(a["Properties"]["AlarmActions"][0]).rsplit(":", 1)[-1] for a in alarms} == {
        "fraudrail-alarms"
    }


def test_premium_budget_notifies_at_80_and_100_percent(synthesized: Synthesized) -> None:
    notifications = [
        {
            "Notification": {
                "NotificationType": "ACTUAL",
                "ComparisonOperator": "GREATER_THAN",
                "Threshold": threshold,
                "ThresholdType": "PERCENTAGE",
            },
            "Subscribers": [{"SubscriptionType": "EMAIL", "Address": CONTACT}],
        }
        for threshold in (80, 100)
    ]
    synthesized.templates["premium"].has_resource_properties(
        "AWS::Budgets::Budget",
        {
            "Budget": Match.object_like(
                {
                    "BudgetType": "COST",
                    "TimeUnit": "MONTHLY",
                    "BudgetLimit": {"Amount": 100000, "Unit": "USD"},
                    "CostFilters": {"TagKeyValue": [f"user:tenant_id${PREMIUM}"]},
                }
            ),
            "NotificationsWithSubscribers": notifications,
        },
    )


def test_premium_outputs_name_what_the_control_plane_needs(synthesized: Synthesized) -> None:
    outputs = synthesized.template_json("premium")["Outputs"]
    silo = synthesized.premium_silo()
    endpoint_id = logical_id(synthesized.tenants["premium"], silo.endpoint)
    # GetAtt, so an emulator that ignores EndpointName still reports the real name.
    assert outputs["EndpointName"]["Value"] == {"Fn::GetAtt": [endpoint_id, "EndpointName"]}
    assert outputs["StableVariantName"]["Value"] == "stable"
    assert outputs["CanaryVariantName"]["Value"] == "canary"
    assert outputs["VariantNames"]["Value"] == "stable,canary"
    bucket_id = logical_id(synthesized.tenants["premium"], silo.bucket)
    assert outputs["BucketName"]["Value"] == {"Ref": bucket_id}
    names = {"StudioDomainId", "StudioUserProfileName", "BudgetName", "KmsKeyArn", "ModelRoleArn"}
    assert names <= set(outputs)


# ---------------------------------------------------------------- tags


# Resource types each tier must carry tags on (all are taggable in CloudFormation).
EXPECTED_TAGGED = {
    "trial": {
        "AWS::IAM::Role",
        "AWS::SageMaker::Model",
        "AWS::SageMaker::EndpointConfig",
        "AWS::SageMaker::Endpoint",
    },
    "standard": {"AWS::SSM::Parameter"},
    "premium": {
        "AWS::KMS::Key",
        "AWS::S3::Bucket",
        "AWS::IAM::Role",
        "AWS::SageMaker::Model",
        "AWS::SageMaker::EndpointConfig",
        "AWS::SageMaker::Endpoint",
        "AWS::SageMaker::Domain",
        "AWS::SageMaker::UserProfile",
        "AWS::CloudWatch::Alarm",
        "AWS::EC2::VPC",
        "AWS::EC2::Subnet",
        "AWS::EC2::SecurityGroup",
    },
}


@pytest.mark.parametrize("tier", sorted(EXPECTED_TAGGED))
def test_every_taggable_resource_is_tagged(synthesized: Synthesized, tier: str) -> None:
    template = synthesized.templates[tier]
    resources = synthesized.template_json(tier)["Resources"]
    wanted = {"tenant_id": TENANT_IDS[tier], "tier": tier, "cost-center": COST_CENTER}
    list_tags = Match.array_with([{"Key": key, "Value": value} for key, value in sorted(wanted.items())])
    tagged_types = {r["Type"] for r in resources.values() if "Tags" in r.get("Properties", {})}
    assert EXPECTED_TAGGED[tier] <= tagged_types
    for resource_type in tagged_types:
        if resource_type == "AWS::SSM::Parameter":  # SSM takes a map, not a list
            template.all_resources_properties(resource_type, {"Tags": wanted})
        else:
            template.all_resources_properties(resource_type, {"Tags": list_tags})
    if tier == "premium":
        template.has_resource_properties("AWS::Budgets::Budget", {"ResourceTags": list_tags})


# ---------------------------------------------------------------- refusals


def _tenant(tier_templates: dict[str, Any], tier: str, **overrides: Any) -> TenantStack:
    params: dict[str, Any] = {
        "tenant_id": "ten_refused",
        "tier_template": tier_templates[tier],
        "region": REGION,
        "budget_amount": "100",
        "budget_currency": "USD",
        "contacts_email": CONTACT,
        "cost_center": COST_CENTER,
    }
    params.update(overrides)
    return TenantStack(new_app(), "Refused", **params)


@pytest.mark.parametrize(
    ("tier", "overrides", "message"),
    [
        ("trial", {"region": "us-west-2"}, "region 'us-west-2' is not allowed"),
        ("trial", {"budget_amount": "500.01"}, "exceeds the trial cap"),
        ("standard", {"budget_amount": "0"}, "positive"),
        ("standard", {"budget_amount": "lots"}, "not a number"),
        ("standard", {"budget_currency": "EUR"}, "currency"),
        ("premium", {"contacts_email": None}, "needs a notification contact"),
        ("premium", {"instance_type": "ml.p4d.24xlarge"}, "instance type 'ml.p4d.24xlarge' is not allowed"),
        ("premium", {"vpc_id": "vpc-1234"}, "both vpc_id and subnet_ids"),
        ("premium", {"tenant_id": "ten_" + "x" * 60}, "longer than SageMaker's 63 characters"),
    ],
)
def test_stack_refuses_what_the_tier_does_not_allow(
    tier_templates: dict[str, Any], tier: str, overrides: dict[str, Any], message: str
) -> None:
    with pytest.raises(TenantStackError, match=message):
        _tenant(tier_templates, tier, **overrides)
