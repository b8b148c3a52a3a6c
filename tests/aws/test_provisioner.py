"""CloudFormation provisioner against moto's server: policy gate, create, no-op, destroy, failures.

moto creates stacks synchronously and never reaches ``*_FAILED`` / ``ROLLBACK_*`` (a resource
it cannot create makes ``CreateStack`` itself fail); the asynchronous failure path of real
CloudFormation is checked with botocore's Stubber.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber

from control_plane.settings import REPO_ROOT
from guardrails.policy import RegoPolicyEngine, load_tier_templates
from providers.aws.factory import AwsClients
from providers.aws.provisioner import CloudFormationProvisioner, StackFailedError
from providers.ports import PermanentProviderError, PlannedResource, TenantSpec
from tests.aws.conftest import ACCOUNT, REGION
from tests.aws.contracts_extra import new_tenant

pytestmark = pytest.mark.aws

TEMPLATES = load_tier_templates(REPO_ROOT / "tenant_templates")


@pytest.fixture(scope="module")
def policy() -> RegoPolicyEngine:
    return RegoPolicyEngine(REPO_ROOT / "policies" / "rego", TEMPLATES)


def spec_for(tenant_id: str, tier: str = "trial") -> TenantSpec:
    return TenantSpec(
        tenant_id=tenant_id,
        slug="acme-payments",
        tier=tier,
        region=REGION,
        template=TEMPLATES[tier],
        budget_amount="250",
        contacts={"email": "risk@acme.example"},
    )


def _tags(spec: TenantSpec) -> list[dict[str, str]]:
    return [
        {"Key": "tenant_id", "Value": spec.tenant_id},
        {"Key": "tier", "Value": spec.tier},
        {"Key": "cost-center", "Value": "fraudrail"},
    ]


def compliant_template(spec: TenantSpec) -> dict[str, Any]:
    """A small tenant stack: encrypted private bucket, topic, table (all tagged)."""
    return {
        "Description": f"Fraudrail tenant {spec.tenant_id}",
        "Resources": {
            "Bucket": {
                "Type": "AWS::S3::Bucket",
                "Properties": {
                    "BucketEncryption": {
                        "ServerSideEncryptionConfiguration": [
                            {"ServerSideEncryptionByDefault": {"SSEAlgorithm": "aws:kms"}}
                        ]
                    },
                    "PublicAccessBlockConfiguration": {
                        "BlockPublicAcls": True,
                        "BlockPublicPolicy": True,
                        "IgnorePublicAcls": True,
                        "RestrictPublicBuckets": True,
                    },
                    "Tags": _tags(spec),
                },
            },
            "Alerts": {"Type": "AWS::SNS::Topic", "Properties": {"Tags": _tags(spec)}},
            "Cases": {
                "Type": "AWS::DynamoDB::Table",
                "Properties": {
                    "KeySchema": [{"AttributeName": "case_id", "KeyType": "HASH"}],
                    "AttributeDefinitions": [{"AttributeName": "case_id", "AttributeType": "S"}],
                    "BillingMode": "PAY_PER_REQUEST",
                    "Tags": _tags(spec),
                },
            },
        },
    }


def public_template(spec: TenantSpec) -> dict[str, Any]:
    """Violates the policy: a public bucket and an endpoint config off the tier's instance list."""
    template = compliant_template(spec)
    del template["Resources"]["Bucket"]["Properties"]["PublicAccessBlockConfiguration"]
    template["Resources"]["Config"] = {
        "Type": "AWS::SageMaker::EndpointConfig",
        "Properties": {
            "ProductionVariants": [
                {
                    "VariantName": "a",
                    "ModelName": "m",
                    "InstanceType": "ml.p4d.24xlarge",
                    "InitialInstanceCount": 1,
                }
            ],
            "Tags": _tags(spec),
        },
    }
    return template


def rejected_template(spec: TenantSpec) -> dict[str, Any]:
    """Passes the policy, but CloudFormation cannot create it (the model does not exist)."""
    template = compliant_template(spec)
    template["Resources"]["Config"] = {
        "Type": "AWS::SageMaker::EndpointConfig",
        "Properties": {
            "KmsKeyId": f"arn:aws:kms:{REGION}:{ACCOUNT}:alias/fraudrail-platform",
            "ProductionVariants": [
                {
                    "VariantName": "serverless",
                    "ModelName": "fraudrail-missing-model",
                    "ServerlessConfig": {"MemorySizeInMB": 2048, "MaxConcurrency": 5},
                }
            ],
            "Tags": _tags(spec),
        },
    }
    return template


def make(
    cfn: Any,
    policy: RegoPolicyEngine,
    synthesize: Callable[[TenantSpec], dict[str, Any]],
    progress: list[tuple[str, str]] | None = None,
    **wiring: Any,
) -> CloudFormationProvisioner:
    """A provisioner of the tier templates' instance types that polls fast; ``wiring``: the
    constructor's other keywords (model host, inventory, service role …)."""
    return CloudFormationProvisioner(
        cfn,
        policy,
        synthesize,
        allowed_instance_types_for=lambda tier: list(TEMPLATES[tier]["instance_types"]),
        poll_s=0.01,
        timeout_s=30,
        progress=None if progress is None else (lambda name, status: progress.append((name, status))),
        **wiring,
    )


def test_compliant_stack_is_created_once_listed_and_destroyed(
    clients: AwsClients, policy: RegoPolicyEngine
) -> None:
    progress: list[tuple[str, str]] = []
    provisioner = make(clients.cloudformation, policy, compliant_template, progress)
    tenant = new_tenant()
    spec = spec_for(tenant)
    name = f"fraudrail-tenant-{tenant.replace('_', '-')}"
    assert provisioner.plan(spec) == [PlannedResource("stack", name)]

    assert provisioner.apply(spec, provisioner.plan(spec)[0]) is True
    stack = clients.cloudformation.describe_stacks(StackName=name)["Stacks"][0]
    assert stack["StackStatus"] == "CREATE_COMPLETE"
    assert {"Key": "tenant_id", "Value": tenant} in stack["Tags"]
    assert progress[0] == (name, "CREATE_IN_PROGRESS") and progress[-1] == (name, "CREATE_COMPLETE")
    buckets = clients.s3.list_buckets()["Buckets"]

    # A repeated step (a retried job) creates nothing.
    assert provisioner.apply(spec, provisioner.plan(spec)[0]) is False
    again = clients.cloudformation.describe_stacks(StackName=name)["Stacks"][0]
    assert again["StackId"] == stack["StackId"] and again["StackStatus"] == "CREATE_COMPLETE"
    assert clients.s3.list_buckets()["Buckets"] == buckets

    resources = provisioner.list_resources(tenant)
    assert resources[0] == f"stack:{name}" and len(resources) == 4
    for kind in ("AWS::S3::Bucket", "AWS::SNS::Topic", "AWS::DynamoDB::Table"):
        assert sum(r.startswith(kind + ":") for r in resources) == 1, kind
    assert provisioner.list_resources(new_tenant()) == []

    assert provisioner.destroy(spec) == [f"stack:{name}"]
    assert provisioner.list_resources(tenant) == []
    assert provisioner.destroy(spec) == []
    names = [s["StackName"] for s in clients.cloudformation.describe_stacks()["Stacks"]]
    assert name not in names


def test_policy_violation_is_permanent_names_every_rule_and_creates_nothing(
    clients: AwsClients, policy: RegoPolicyEngine
) -> None:
    provisioner = make(clients.cloudformation, policy, public_template)
    spec = spec_for(new_tenant())
    with pytest.raises(PermanentProviderError) as caught:
        provisioner.apply(spec, provisioner.plan(spec)[0])
    message = str(caught.value)
    for rule in ("s3-public-access-block", "sagemaker-instance-type", "sagemaker-endpoint-kms"):
        assert rule in message
    assert "Bucket.Properties.PublicAccessBlockConfiguration.BlockPublicAcls" in message
    assert clients.cloudformation.describe_stacks()["Stacks"] == []
    assert provisioner.list_resources(spec.tenant_id) == []


def test_stack_cloudformation_rejects_surfaces_its_reason(
    clients: AwsClients, policy: RegoPolicyEngine
) -> None:
    provisioner = make(clients.cloudformation, policy, rejected_template)
    spec = spec_for(new_tenant())
    with pytest.raises(PermanentProviderError, match=r"Could not find model.*fraudrail-missing-model"):
        provisioner.apply(spec, provisioner.plan(spec)[0])


def test_existing_stack_in_another_state_is_updated(clients: AwsClients, policy: RegoPolicyEngine) -> None:
    provisioner = make(clients.cloudformation, policy, compliant_template)
    spec = spec_for(new_tenant())
    resource = provisioner.plan(spec)[0]
    assert provisioner.apply(spec, resource) is True
    clients.cloudformation.update_stack(StackName=resource.name, UsePreviousTemplate=True)
    assert clients.cloudformation.describe_stacks(StackName=resource.name)["Stacks"][0]["StackStatus"] == (
        "UPDATE_COMPLETE"
    )
    updates: list[str] = []
    clients.cloudformation.meta.events.register(
        "before-call.cloudformation.UpdateStack", lambda **_: updates.append("update")
    )
    assert provisioner.apply(spec, resource) is False
    assert updates == ["update"]


def _stack(name: str, stack_id: str, status: str, reason: str | None = None) -> dict[str, Any]:
    stack: dict[str, Any] = {
        "StackName": name,
        "StackId": stack_id,
        "StackStatus": status,
        "CreationTime": dt.datetime(2025, 1, 1, tzinfo=dt.UTC),
    }
    if reason:
        stack["StackStatusReason"] = reason
    return {"Stacks": [stack]}


def _event(
    stack_id: str, logical: str, kind: str, status: str, minute: int, reason: str = ""
) -> dict[str, Any]:
    event: dict[str, Any] = {
        "StackId": stack_id,
        "EventId": f"{logical}-{status}-{minute}",
        "StackName": stack_id.split("/")[1],
        "LogicalResourceId": logical,
        "ResourceType": kind,
        "Timestamp": dt.datetime(2025, 1, 1, 0, minute, tzinfo=dt.UTC),
        "ResourceStatus": status,
    }
    if reason:
        event["ResourceStatusReason"] = reason
    return event


def test_rolled_back_stack_reports_the_first_failure_then_is_recreated(policy: RegoPolicyEngine) -> None:
    """Real CloudFormation fails asynchronously; moto never does, so this path is stubbed."""
    cfn = boto3.client("cloudformation", region_name=REGION, endpoint_url="http://127.0.0.1:1")
    progress: list[tuple[str, str]] = []
    provisioner = make(cfn, policy, compliant_template, progress)
    spec = spec_for("ten_0f0f")
    name = "fraudrail-tenant-ten-0f0f"
    stack_id = f"arn:aws:cloudformation:{REGION}:{ACCOUNT}:stack/{name}/1111"
    missing = f"Stack with id {name} does not exist"
    reason = "The following resource(s) failed to create: [Endpoint, Cases]. Rollback requested by user."
    stub = Stubber(cfn)
    stub.add_client_error("describe_stacks", "ValidationError", missing, 400, {"StackName": name})
    stub.add_response("create_stack", {"StackId": stack_id})
    stub.add_response(
        "describe_stacks", _stack(name, stack_id, "CREATE_IN_PROGRESS"), {"StackName": stack_id}
    )
    stub.add_response("describe_stacks", _stack(name, stack_id, "ROLLBACK_IN_PROGRESS", reason))
    stub.add_response("describe_stacks", _stack(name, stack_id, "ROLLBACK_COMPLETE", reason))
    stub.add_response(
        "describe_stack_events",
        {
            "StackEvents": [  # newest first, as CloudFormation returns them
                _event(stack_id, name, "AWS::CloudFormation::Stack", "ROLLBACK_COMPLETE", 9),
                _event(
                    stack_id,
                    "Cases",
                    "AWS::DynamoDB::Table",
                    "CREATE_FAILED",
                    5,
                    "Resource creation cancelled",
                ),
                _event(
                    stack_id,
                    "Endpoint",
                    "AWS::SageMaker::Endpoint",
                    "CREATE_FAILED",
                    4,
                    'Resource handler returned message: "The account-level service limit '
                    "'ml.m5.xlarge for endpoint usage' is 0 Instances\"",
                ),
                _event(
                    stack_id, name, "AWS::CloudFormation::Stack", "CREATE_IN_PROGRESS", 1, "User Initiated"
                ),
            ]
        },
        {"StackName": stack_id},
    )
    with stub, pytest.raises(StackFailedError) as caught:
        provisioner.apply(spec, provisioner.plan(spec)[0])
    message = str(caught.value)
    assert "ROLLBACK_COMPLETE" in message and reason in message
    assert "first failure: Endpoint (AWS::SageMaker::Endpoint) CREATE_FAILED" in message
    assert "service limit" in message
    assert [s for _, s in progress] == ["CREATE_IN_PROGRESS", "ROLLBACK_IN_PROGRESS", "ROLLBACK_COMPLETE"]
    stub.assert_no_pending_responses()

    # The retry cannot update a ROLLBACK_COMPLETE stack: it deletes it and creates it again.
    new_id = stack_id.replace("1111", "2222")
    stub = Stubber(cfn)
    stub.add_response(
        "describe_stacks", _stack(name, stack_id, "ROLLBACK_COMPLETE", reason), {"StackName": name}
    )
    stub.add_response("delete_stack", {}, {"StackName": stack_id})
    stub.add_response("describe_stacks", _stack(name, stack_id, "DELETE_COMPLETE"), {"StackName": stack_id})
    stub.add_response("create_stack", {"StackId": new_id})
    stub.add_response("describe_stacks", _stack(name, new_id, "CREATE_COMPLETE"), {"StackName": new_id})
    with stub:
        assert provisioner.apply(spec, provisioner.plan(spec)[0]) is True
    stub.assert_no_pending_responses()


def test_cdk_trial_template_passes_the_gate_and_deploys_on_moto(
    clients: AwsClients, policy: RegoPolicyEngine, aws_settings: Any
) -> None:
    """The real synthesizer (cdk.synthesis) behind the provisioner, end to end."""
    from control_plane.bootstrap.aws import cdk_synthesizer

    provisioner = make(clients.cloudformation, policy, cdk_synthesizer(aws_settings.bucket))
    tenant = new_tenant()
    spec = spec_for(tenant)
    assert provisioner.apply(spec, provisioner.plan(spec)[0]) is True
    resources = provisioner.list_resources(tenant)
    endpoints = [r.rsplit("/", 1)[1] for r in resources if r.startswith("AWS::SageMaker::Endpoint:")]
    # moto names the endpoint itself (it ignores EndpointName; AWS uses fraudrail-<tenant-slug>).
    assert len(endpoints) == 1, resources
    assert clients.sagemaker.describe_endpoint(EndpointName=endpoints[0])["EndpointStatus"] == "InService"
    assert any(r.startswith("AWS::IAM::Role:") for r in resources)
    assert provisioner.destroy(spec) == [f"stack:fraudrail-tenant-{tenant.replace('_', '-')}"]
