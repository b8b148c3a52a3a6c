"""The synthesized templates deploy on moto's CloudFormation (in-process) once cdk.emulation adapts them."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import boto3
import pytest
from moto import mock_aws
from moto.cloudformation.parsing import get_model_map

from cdk.config import TIERS
from cdk.emulation import MOTO_UNSUPPORTED_TYPES, moto_compatible_template, publish_file_assets, references
from tests.cdk.support import REGION, Synthesized

ACCOUNT = "123456789012"  # moto's default account


@dataclass(frozen=True)
class Deployed:
    stacks: dict[str, dict[str, Any]]  # name -> describe_stacks entry
    outputs: dict[str, dict[str, str]]
    sagemaker: Any


@pytest.fixture(scope="module")
def deployed(synthesized: Synthesized) -> Iterator[Deployed]:
    with pytest.MonkeyPatch.context() as env:
        for name, value in {
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_SESSION_TOKEN": "testing",
            "AWS_DEFAULT_REGION": REGION,
        }.items():
            env.setenv(name, value)
        with mock_aws():
            s3 = boto3.client("s3", region_name=REGION)
            cloudformation = boto3.client("cloudformation", region_name=REGION)
            stacks: dict[str, dict[str, Any]] = {}
            for name, stack in [("platform", synthesized.platform), *synthesized.tenants.items()]:
                publish_file_assets(
                    synthesized.assembly_dir, stack.artifact_id, s3, account=ACCOUNT, region=REGION
                )
                cloudformation.create_stack(
                    StackName=stack.stack_name,
                    TemplateBody=json.dumps(moto_compatible_template(synthesized.template_json(name))),
                    Capabilities=["CAPABILITY_IAM", "CAPABILITY_NAMED_IAM"],
                )
                stacks[name] = dict(cloudformation.describe_stacks(StackName=stack.stack_name)["Stacks"][0])
            outputs = {
                name: {o["OutputKey"]: o["OutputValue"] for o in stack.get("Outputs", [])}
                for name, stack in stacks.items()
            }
            yield Deployed(
                stacks=stacks, outputs=outputs, sagemaker=boto3.client("sagemaker", region_name=REGION)
            )


def test_every_stack_is_created(deployed: Deployed) -> None:
    assert {name: stack["StackStatus"] for name, stack in deployed.stacks.items()} == dict.fromkeys(
        ["platform", *TIERS], "CREATE_COMPLETE"
    )


def test_premium_endpoint_has_both_variants(deployed: Deployed) -> None:
    outputs = deployed.outputs["premium"]
    endpoint = deployed.sagemaker.describe_endpoint(EndpointName=outputs["EndpointName"])
    config = deployed.sagemaker.describe_endpoint_config(EndpointConfigName=endpoint["EndpointConfigName"])
    weights = {v["VariantName"]: v["InitialVariantWeight"] for v in config["ProductionVariants"]}
    assert weights == {"stable": 1.0, "canary": 0.0}
    assert config["KmsKeyId"].startswith(f"arn:aws:kms:{REGION}:{ACCOUNT}:key/")


def test_trial_endpoint_is_serverless(deployed: Deployed) -> None:
    endpoint = deployed.sagemaker.describe_endpoint(EndpointName=deployed.outputs["trial"]["EndpointName"])
    config = deployed.sagemaker.describe_endpoint_config(EndpointConfigName=endpoint["EndpointConfigName"])
    assert config["ProductionVariants"][0]["ServerlessConfig"] == {
        "MemorySizeInMB": 2048,
        "MaxConcurrency": 5,
    }


def test_platform_outputs_name_real_resources(deployed: Deployed) -> None:
    outputs = deployed.outputs["platform"]
    assert outputs["FlaggedTableName"] == "fraudrail-flagged-transactions"
    assert outputs["RollbackTableName"] == "fraudrail-rollback-log"
    assert outputs["PlatformBucketName"] == f"fraudrail-platform-{ACCOUNT}-{REGION}"
    deployed.sagemaker.describe_endpoint(EndpointName=outputs["PooledEndpointName"])


def test_the_unsupported_type_list_matches_moto(synthesized: Synthesized) -> None:
    used = {
        resource["Type"]
        for name in ("platform", *TIERS)
        for resource in synthesized.template_json(name)["Resources"].values()
    }
    assert {t for t in used if t not in get_model_map()} == MOTO_UNSUPPORTED_TYPES & used


def test_adaptation_drops_dependants_of_skipped_resources() -> None:
    template: dict[str, Any] = {
        "Resources": {
            "Domain": {"Type": "AWS::SageMaker::Domain", "Properties": {}},
            "Profile": {
                "Type": "AWS::SageMaker::UserProfile",
                "Properties": {"DomainId": {"Fn::GetAtt": ["Domain", "DomainId"]}},
            },
            "Policy": {
                "Type": "AWS::IAM::Policy",
                "Properties": {"Doc": {"Fn::Sub": "arn:x:${Domain.DomainId}/*"}},
            },
            "Role": {"Type": "AWS::IAM::Role", "Properties": {}, "DependsOn": ["Policy", "Bucket"]},
            "Bucket": {"Type": "AWS::S3::Bucket", "Properties": {}},
            "Parameter": {"Type": "AWS::SSM::Parameter", "Properties": {"Tags": {"tier": "premium"}}},
        },
        "Outputs": {"DomainId": {"Value": {"Ref": "Domain"}}, "Bucket": {"Value": {"Ref": "Bucket"}}},
    }
    adapted = moto_compatible_template(template)
    assert set(adapted["Resources"]) == {"Role", "Bucket", "Parameter"}
    assert adapted["Resources"]["Role"]["DependsOn"] == ["Bucket"]
    assert adapted["Resources"]["Parameter"]["Properties"]["Tags"] == [{"Key": "tier", "Value": "premium"}]
    assert set(adapted["Outputs"]) == {"Bucket"}
    assert "Domain" in template["Resources"]  # the input is left alone
    assert set(references({"Fn::Sub": ["${A}-${B.Arn}", {"C": {"Ref": "D"}}]})) == {"A", "B", "D"}
