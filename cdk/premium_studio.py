"""The premium silo's SageMaker Studio: a VpcOnly domain (in the tenant's VPC or an isolated one),
its security group, the Studio execution role and one analyst user profile."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_iam as iam
from aws_cdk import aws_sagemaker as sagemaker
from constructs import Construct

from cdk import iam_statements
from cdk.config import TenantStackError
from cdk.network import isolated_vpc

if TYPE_CHECKING:
    from cdk.premium import PremiumSilo


def studio_network(
    scope: Construct, vpc_id: str | None, subnet_ids: Sequence[str] | None
) -> tuple[str, list[str]]:
    """The given VPC, or an isolated one with the endpoints a VpcOnly Studio domain needs."""
    if vpc_id and subnet_ids:
        return vpc_id, list(subnet_ids)
    if vpc_id or subnet_ids:
        raise TenantStackError("give both vpc_id and subnet_ids, or neither")
    vpc = isolated_vpc(
        scope,
        "Vpc",
        s3_gateway=True,
        interface_endpoints=(
            ("SageMakerApiEndpoint", ec2.InterfaceVpcEndpointAwsService.SAGEMAKER_API),
            ("SageMakerRuntimeEndpoint", ec2.InterfaceVpcEndpointAwsService.SAGEMAKER_RUNTIME),
            ("StsEndpoint", ec2.InterfaceVpcEndpointAwsService.STS),
            ("LogsEndpoint", ec2.InterfaceVpcEndpointAwsService.CLOUDWATCH_LOGS),
        ),
    )
    return vpc.vpc_id, [subnet.subnet_id for subnet in vpc.isolated_subnets]


def _studio_role(silo: PremiumSilo) -> iam.Role:
    stack = silo.stack
    arn_prefix = f"arn:{stack.partition}:sagemaker:{stack.region}:{stack.account}"
    role = iam.Role(
        silo,
        "StudioRole",
        assumed_by=iam.ServicePrincipal("sagemaker.amazonaws.com"),
        description=f"Studio users of premium tenant {silo.tenant_id}",
    )
    statements = [
        iam.PolicyStatement(
            sid="TenantBucketObjects",
            actions=["s3:GetObject", "s3:PutObject", "s3:DeleteObject", "s3:AbortMultipartUpload"],
            resources=[silo.bucket.arn_for_objects("*")],
        ),
        iam.PolicyStatement(
            sid="TenantBucketList",
            actions=["s3:ListBucket", "s3:GetBucketLocation"],
            resources=[silo.bucket.bucket_arn],
        ),
        iam_statements.use_key_by_arn([silo.key.key_arn], write=True),
        iam.PolicyStatement(
            sid="TrainAndRegister",
            actions=[
                "sagemaker:CreateTrainingJob",
                "sagemaker:DescribeTrainingJob",
                "sagemaker:StopTrainingJob",
                "sagemaker:CreateModel",
                "sagemaker:DescribeModel",
                "sagemaker:AddTags",
            ],
            resources=[
                f"{arn_prefix}:training-job/fraudrail-{silo.slug}-*",
                f"{arn_prefix}:model/fraudrail-{silo.slug}-*",
            ],
        ),
        iam.PolicyStatement(
            sid="UseOwnEndpoint",
            actions=["sagemaker:DescribeEndpoint", "sagemaker:InvokeEndpoint"],
            resources=[f"{arn_prefix}:endpoint/{silo.endpoint_name}"],
        ),
        iam.PolicyStatement(
            sid="PassModelRole",
            actions=["iam:PassRole"],
            resources=[silo.model_role.role_arn],
            conditions={"StringEquals": {"iam:PassedToService": "sagemaker.amazonaws.com"}},
        ),
        *iam_statements.pull_image(stack, silo.names.image_repository),
        iam_statements.write_logs(stack, "/aws/sagemaker/studio", sid="StudioLogs"),
        iam_statements.write_logs(stack, "/aws/sagemaker/TrainingJobs", sid="TrainingLogs"),
        iam_statements.put_metrics(iam_statements.SAGEMAKER_METRIC_NAMESPACES),
    ]
    for statement in statements:
        role.add_to_policy(statement)
    return role


def studio(
    silo: PremiumSilo, vpc_id: str, subnet_ids: list[str]
) -> tuple[sagemaker.CfnDomain, sagemaker.CfnUserProfile]:
    """A VpcOnly, IAM-auth Studio domain on the tenant's key, its security group and one user profile."""
    security_group = ec2.CfnSecurityGroup(
        silo,
        "StudioSecurityGroup",
        group_description=f"Studio domain of {silo.tenant_id}",
        vpc_id=vpc_id,
        security_group_egress=[
            ec2.CfnSecurityGroup.EgressProperty(
                ip_protocol="tcp", from_port=443, to_port=443, cidr_ip="0.0.0.0/0", description="HTTPS"
            )
        ],
    )
    # Studio apps talk to each other and to the home EFS inside the group (NFS, app ports).
    ec2.CfnSecurityGroupIngress(
        silo,
        "StudioSelfIngress",
        group_id=security_group.attr_group_id,
        source_security_group_id=security_group.attr_group_id,
        ip_protocol="tcp",
        from_port=0,
        to_port=65535,
        description="Studio apps and home EFS",
    )
    ec2.CfnSecurityGroupEgress(
        silo,
        "StudioSelfEgress",
        group_id=security_group.attr_group_id,
        destination_security_group_id=security_group.attr_group_id,
        ip_protocol="tcp",
        from_port=0,
        to_port=65535,
        description="Studio apps and home EFS",
    )
    role = _studio_role(silo)
    domain = sagemaker.CfnDomain(
        silo,
        "StudioDomain",
        domain_name=f"fraudrail-{silo.slug}",
        auth_mode="IAM",
        app_network_access_type="VpcOnly",
        vpc_id=vpc_id,
        subnet_ids=subnet_ids,
        kms_key_id=silo.key.key_arn,
        default_user_settings=sagemaker.CfnDomain.UserSettingsProperty(
            execution_role=role.role_arn,
            security_groups=[security_group.attr_group_id],
        ),
    )
    # The role's policy (a separate resource) may name the domain: the domain names only the role.
    stack = silo.stack
    arn_prefix = f"arn:{stack.partition}:sagemaker:{stack.region}:{stack.account}"
    domain_id = domain.attr_domain_id
    role.add_to_policy(
        iam.PolicyStatement(
            sid="StudioApps",
            actions=[
                "sagemaker:CreateApp",
                "sagemaker:DeleteApp",
                "sagemaker:DescribeApp",
                "sagemaker:DescribeDomain",
                "sagemaker:DescribeUserProfile",
            ],
            resources=[
                f"{arn_prefix}:app/{domain_id}/*",
                f"{arn_prefix}:domain/{domain_id}",
                f"{arn_prefix}:user-profile/{domain_id}/*",
            ],
        )
    )
    user_profile = sagemaker.CfnUserProfile(
        silo,
        "StudioUserProfile",
        domain_id=domain.attr_domain_id,
        user_profile_name=f"{silo.slug}-analyst",
        user_settings=sagemaker.CfnUserProfile.UserSettingsProperty(
            execution_role=role.role_arn,
            security_groups=[security_group.attr_group_id],
        ),
    )
    return domain, user_profile
