"""The CloudFormation service role of tenant stacks: trust, output, the task role's PassRole, scope."""

from __future__ import annotations

from typing import Any

from aws_cdk.assertions import Match, Template

from cdk.platform_stack import PlatformStack
from cdk.tenant_stack_role import TENANT_STACK_PREFIX
from tests.cdk.support import Synthesized, logical_id


def _role_id(synthesized: Synthesized) -> str:
    return logical_id(synthesized.platform, synthesized.platform.compute.tenant_stack_role)


def _statements_of(resources: dict[str, Any], role_id: str) -> list[dict[str, Any]]:
    return [
        statement
        for r in resources.values()
        if r["Type"] == "AWS::IAM::Policy" and {"Ref": role_id} in r["Properties"]["Roles"]
        for statement in r["Properties"]["PolicyDocument"]["Statement"]
    ]


def test_only_cloudformation_may_assume_the_role(synthesized: Synthesized) -> None:
    template: Template = synthesized.templates["platform"]
    role = template.to_json()["Resources"][_role_id(synthesized)]
    assert role["Type"] == "AWS::IAM::Role"
    assert role["Properties"]["AssumeRolePolicyDocument"]["Statement"] == [
        {
            "Action": "sts:AssumeRole",
            "Effect": "Allow",
            "Principal": {"Service": "cloudformation.amazonaws.com"},
        }
    ]


def test_the_role_arn_is_an_output_and_a_setting_of_both_services(synthesized: Synthesized) -> None:
    template: Template = synthesized.templates["platform"]
    arn = {"Fn::GetAtt": [_role_id(synthesized), "Arn"]}
    template.has_output("TenantStackRoleArn", {"Value": arn})
    environments = [
        {e["Name"]: e["Value"] for e in c["Environment"]}
        for r in template.to_json()["Resources"].values()
        if r["Type"] == "AWS::ECS::TaskDefinition"
        for c in r["Properties"]["ContainerDefinitions"]
    ]
    assert len(environments) == 2
    assert all(env["FRAUDRAIL_AWS_CFN_ROLE_ARN"] == arn for env in environments)


def test_the_task_role_passes_exactly_this_role_and_only_to_cloudformation(
    synthesized: Synthesized,
) -> None:
    platform: PlatformStack = synthesized.platform
    resources = synthesized.template_json("platform")["Resources"]
    task_role = logical_id(platform, platform.compute.task_role)
    passes = [s for s in _statements_of(resources, task_role) if s["Action"] == "iam:PassRole"]
    to_cloudformation = [s for s in passes if s.get("Sid") == "PassTenantStackRole"]
    assert to_cloudformation == [
        {
            "Sid": "PassTenantStackRole",
            "Action": "iam:PassRole",
            "Effect": "Allow",
            "Resource": {"Fn::GetAtt": [_role_id(synthesized), "Arn"]},
            "Condition": {"StringEquals": {"iam:PassedToService": "cloudformation.amazonaws.com"}},
        }
    ]
    # No other PassRole of the task role reaches CloudFormation.
    others = [s for s in passes if s is not to_cloudformation[0]]
    assert all(
        s["Condition"]["StringEquals"]["iam:PassedToService"] != "cloudformation.amazonaws.com"
        for s in others
    )
    synthesized.templates["platform"].has_resource_properties(
        "AWS::IAM::Policy",
        {
            "Roles": [{"Ref": task_role}],
            "PolicyDocument": {
                "Statement": Match.array_with(
                    [
                        Match.object_like(
                            {
                                "Sid": "TenantStacks",
                                "Action": Match.array_with(["cloudformation:CreateStack"]),
                            }
                        )
                    ]
                )
            },
        },
    )


def _actions(statement: dict[str, Any]) -> list[str]:
    action = statement["Action"]
    return [action] if isinstance(action, str) else list(action)


def test_the_role_covers_every_resource_type_of_the_tenant_templates_by_prefix(
    synthesized: Synthesized,
) -> None:
    statements = _statements_of(synthesized.template_json("platform")["Resources"], _role_id(synthesized))
    granted = {action for s in statements for action in _actions(s)}
    needed_by_type = {
        "AWS::IAM::Role": "iam:CreateRole",
        "AWS::IAM::Policy": "iam:PutRolePolicy",
        "AWS::KMS::Key": "kms:CreateKey",
        "AWS::KMS::Alias": "kms:CreateAlias",
        "AWS::S3::Bucket": "s3:CreateBucket",
        "AWS::S3::BucketPolicy": "s3:PutBucketPolicy",
        "AWS::SageMaker::Model": "sagemaker:CreateModel",
        "AWS::SageMaker::EndpointConfig": "sagemaker:CreateEndpointConfig",
        "AWS::SageMaker::Endpoint": "sagemaker:CreateEndpoint",
        "AWS::SageMaker::Domain": "sagemaker:CreateDomain",
        "AWS::SageMaker::UserProfile": "sagemaker:CreateUserProfile",
        "AWS::SSM::Parameter": "ssm:PutParameter",
        "AWS::Budgets::Budget": "budgets:ModifyBudget",
        "AWS::CloudWatch::Alarm": "cloudwatch:PutMetricAlarm",
        "AWS::EC2::VPC": "ec2:CreateVpc",
        "AWS::EC2::Subnet": "ec2:CreateSubnet",
        "AWS::EC2::SecurityGroup": "ec2:CreateSecurityGroup",
        "AWS::EC2::VPCEndpoint": "ec2:CreateVpcEndpoint",
        "AWS::EC2::RouteTable": "ec2:CreateRouteTable",
    }
    types = {
        r["Type"]
        for tier, template in synthesized.templates.items()
        if tier != "platform"
        for r in template.to_json()["Resources"].values()
    }
    # Every resource type a tenant template declares is known here (a new one must be granted).
    assert types <= set(needed_by_type) | {
        "AWS::EC2::SecurityGroupIngress",
        "AWS::EC2::SecurityGroupEgress",
        "AWS::EC2::SubnetRouteTableAssociation",
    }, types
    assert {needed_by_type[t] for t in types if t in needed_by_type} <= granted
    by_sid = {s["Sid"]: s for s in statements}
    role_arns = by_sid["TenantRoles"]["Resource"]
    assert f":role/{TENANT_STACK_PREFIX}*" in str(role_arns)
    assert f":::{TENANT_STACK_PREFIX}*" in str(by_sid["TenantBuckets"]["Resource"])
    assert by_sid["PassTenantRolesToSageMaker"]["Condition"] == {
        "StringEquals": {"iam:PassedToService": "sagemaker.amazonaws.com"}
    }
    # The only "*" statements: kms:CreateKey (only with a tenant tag) and EC2 Describe calls.
    wildcard = [s for s in statements if s["Resource"] == "*"]
    assert {s["Sid"] for s in wildcard} == {"CreateTenantKeys", "DescribeNetwork"}
    assert by_sid["CreateTenantKeys"]["Condition"] == {"Null": {"aws:RequestTag/tenant_id": "false"}}
    assert all(a.startswith("ec2:Describe") for a in _actions(by_sid["DescribeNetwork"]))
