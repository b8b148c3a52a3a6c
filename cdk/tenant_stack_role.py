"""The CloudFormation service role that creates the resources inside tenant stacks.

The control plane's task role may only create, update and delete stacks ``fraudrail-tenant-*``
and pass this role to CloudFormation (``RoleARN`` on every stack call). CloudFormation then acts
with this role's permissions, which cover exactly what the tenant templates declare (cdk/
tenant_stack.py, premium.py, premium_studio.py): the tenant's model role, KMS key and alias,
bucket, SageMaker models / endpoint configs / endpoints, Studio domain and user profile, the
hosting parameter, the budget, the canary alarms and the premium VPC. Names are scoped by the
prefixes the templates use: CloudFormation names unnamed roles and buckets after the stack
(``fraudrail-tenant-...``); SageMaker models and endpoint configs get generated names without a
prefix, so those are scoped to this account and region only.
"""

from __future__ import annotations

from aws_cdk import Stack
from aws_cdk import aws_iam as iam
from constructs import Construct

from cdk import iam_statements

TENANT_STACK_PREFIX = "fraudrail-tenant-"
CLOUDFORMATION_SERVICE = "cloudformation.amazonaws.com"


def tenant_stack_role(scope: Construct, construct_id: str) -> iam.Role:
    """A role only CloudFormation can assume, with the permissions tenant stacks need."""
    stack = Stack.of(scope)
    role = iam.Role(
        scope,
        construct_id,
        assumed_by=iam.ServicePrincipal(CLOUDFORMATION_SERVICE),
        description="CloudFormation service role for tenant stacks fraudrail-tenant-* (docs/aws.md)",
    )
    for statement in tenant_stack_statements(stack):
        role.add_to_policy(statement)
    return role


def pass_tenant_stack_role(role_arn: str) -> iam.PolicyStatement:
    """Let the control plane hand exactly this role to CloudFormation, and to nothing else."""
    return iam.PolicyStatement(
        sid="PassTenantStackRole",
        actions=["iam:PassRole"],
        resources=[role_arn],
        conditions={"StringEquals": {"iam:PassedToService": CLOUDFORMATION_SERVICE}},
    )


def tenant_stack_statements(stack: Stack) -> list[iam.PolicyStatement]:
    arn = f"arn:{stack.partition}"
    where = f"{stack.region}:{stack.account}"
    has_tenant_tag = {"Null": {"aws:RequestTag/tenant_id": "false"}}
    tagged_resource = {"Null": {"aws:ResourceTag/tenant_id": "false"}}
    return [
        iam.PolicyStatement(
            sid="TenantRoles",
            actions=[
                "iam:CreateRole",
                "iam:DeleteRole",
                "iam:GetRole",
                "iam:TagRole",
                "iam:UntagRole",
                "iam:UpdateAssumeRolePolicy",
                "iam:PutRolePolicy",
                "iam:GetRolePolicy",
                "iam:DeleteRolePolicy",
                "iam:ListRolePolicies",
                "iam:ListAttachedRolePolicies",
            ],
            resources=[f"{arn}:iam::{stack.account}:role/{TENANT_STACK_PREFIX}*"],
        ),
        # The tenant's model and Studio roles go to SageMaker only.
        iam.PolicyStatement(
            sid="PassTenantRolesToSageMaker",
            actions=["iam:PassRole"],
            resources=[f"{arn}:iam::{stack.account}:role/{TENANT_STACK_PREFIX}*"],
            conditions={"StringEquals": {"iam:PassedToService": "sagemaker.amazonaws.com"}},
        ),
        # kms:CreateKey has no resource type (documented exception); only with the tenant tag.
        iam.PolicyStatement(
            sid="CreateTenantKeys",
            actions=["kms:CreateKey"],
            resources=["*"],
            conditions=has_tenant_tag,
        ),
        iam.PolicyStatement(
            sid="ManageTenantKeys",
            actions=[
                "kms:DescribeKey",
                "kms:GetKeyPolicy",
                "kms:PutKeyPolicy",
                "kms:EnableKeyRotation",
                "kms:GetKeyRotationStatus",
                "kms:ScheduleKeyDeletion",
                "kms:TagResource",
                "kms:UntagResource",
                "kms:ListResourceTags",
                "kms:CreateGrant",
                "kms:Decrypt",
                "kms:GenerateDataKey",
                "kms:CreateAlias",
                "kms:DeleteAlias",
            ],
            resources=[f"{arn}:kms:{where}:key/*"],
            conditions=tagged_resource,
        ),
        iam.PolicyStatement(
            sid="TenantKeyAliases",
            actions=["kms:CreateAlias", "kms:DeleteAlias", "kms:UpdateAlias"],
            resources=[f"{arn}:kms:{where}:alias/fraudrail-*"],
        ),
        iam.PolicyStatement(
            sid="TenantBuckets",
            actions=[
                "s3:CreateBucket",
                "s3:DeleteBucket",
                "s3:GetBucketLocation",
                "s3:ListBucket",
                "s3:PutEncryptionConfiguration",
                "s3:GetEncryptionConfiguration",
                "s3:PutBucketPublicAccessBlock",
                "s3:GetBucketPublicAccessBlock",
                "s3:PutLifecycleConfiguration",
                "s3:GetLifecycleConfiguration",
                "s3:PutBucketTagging",
                "s3:GetBucketTagging",
                "s3:PutBucketPolicy",
                "s3:GetBucketPolicy",
                "s3:DeleteBucketPolicy",
                "s3:PutBucketVersioning",
                "s3:PutBucketOwnershipControls",
            ],
            resources=[f"{arn}:s3:::{TENANT_STACK_PREFIX}*"],
        ),
        iam.PolicyStatement(
            sid="TenantSageMaker",
            actions=[
                *iam_statements.SAGEMAKER_ENDPOINT_ACTIONS,
                "sagemaker:CreateDomain",
                "sagemaker:DescribeDomain",
                "sagemaker:UpdateDomain",
                "sagemaker:DeleteDomain",
                "sagemaker:CreateUserProfile",
                "sagemaker:DescribeUserProfile",
                "sagemaker:DeleteUserProfile",
                "sagemaker:AddTags",
                "sagemaker:DeleteTags",
                "sagemaker:ListTags",
            ],
            resources=[
                f"{arn}:sagemaker:{where}:model/*",
                f"{arn}:sagemaker:{where}:endpoint-config/*",
                f"{arn}:sagemaker:{where}:endpoint/fraudrail-*",
                f"{arn}:sagemaker:{where}:domain/*",
                f"{arn}:sagemaker:{where}:user-profile/*/*",
            ],
        ),
        iam.PolicyStatement(
            sid="TenantHostingParameters",
            actions=[
                "ssm:PutParameter",
                "ssm:GetParameters",
                "ssm:DeleteParameter",
                "ssm:AddTagsToResource",
                "ssm:RemoveTagsFromResource",
            ],
            resources=[f"{arn}:ssm:{where}:parameter/fraudrail/tenants/*"],
        ),
        iam.PolicyStatement(
            sid="TenantBudgets",
            actions=["budgets:ModifyBudget", "budgets:ViewBudget"],
            resources=[f"{arn}:budgets::{stack.account}:budget/fraudrail-*"],
        ),
        iam.PolicyStatement(
            sid="TenantAlarms",
            actions=[
                "cloudwatch:PutMetricAlarm",
                "cloudwatch:DeleteAlarms",
                "cloudwatch:DescribeAlarms",
                "cloudwatch:TagResource",
            ],
            resources=[f"{arn}:cloudwatch:{where}:alarm:fraudrail-*"],
        ),
        iam.PolicyStatement(
            sid="PremiumNetwork",
            actions=[
                "ec2:CreateVpc",
                "ec2:DeleteVpc",
                "ec2:ModifyVpcAttribute",
                "ec2:CreateSubnet",
                "ec2:DeleteSubnet",
                "ec2:CreateRouteTable",
                "ec2:DeleteRouteTable",
                "ec2:AssociateRouteTable",
                "ec2:DisassociateRouteTable",
                "ec2:CreateSecurityGroup",
                "ec2:DeleteSecurityGroup",
                "ec2:AuthorizeSecurityGroupIngress",
                "ec2:AuthorizeSecurityGroupEgress",
                "ec2:RevokeSecurityGroupIngress",
                "ec2:RevokeSecurityGroupEgress",
                "ec2:CreateVpcEndpoint",
                "ec2:DeleteVpcEndpoints",
                "ec2:CreateTags",
                "ec2:DeleteTags",
            ],
            resources=[
                f"{arn}:ec2:{where}:{kind}/*"
                for kind in (
                    "vpc",
                    "subnet",
                    "route-table",
                    "security-group",
                    "security-group-rule",
                    "vpc-endpoint",
                    "network-interface",
                )
            ],
        ),
        # Describe calls accept only "*" (documented exceptions).
        iam.PolicyStatement(
            sid="DescribeNetwork",
            actions=[
                "ec2:DescribeVpcs",
                "ec2:DescribeSubnets",
                "ec2:DescribeSecurityGroups",
                "ec2:DescribeRouteTables",
                "ec2:DescribeVpcEndpoints",
                "ec2:DescribeAvailabilityZones",
                "ec2:DescribeNetworkInterfaces",
            ],
            resources=["*"],
        ),
    ]
