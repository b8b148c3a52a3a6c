"""The control plane's database, its secrets, and what its tasks may do with the platform's data.

Credentials never appear in the template: the database and Redis URLs are Secrets Manager secrets
whose value CloudFormation composes from dynamic references (``{{resolve:secretsmanager:...}}``)
at deploy time, and the tasks receive them as ECS secrets. Generated passwords are letters and
digits only, because they go into URLs unescaped.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from aws_cdk import Duration, Fn, RemovalPolicy, SecretValue, Stack
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_iam as iam
from aws_cdk import aws_logs as logs
from aws_cdk import aws_rds as rds
from aws_cdk import aws_secretsmanager as secretsmanager
from constructs import Construct

from cdk import iam_statements

if TYPE_CHECKING:
    from cdk.platform_stack import PlatformStack

DB_NAME = "fraudrail"
DB_USER = "fraudrail"
DB_INSTANCE_ID = "fraudrail-control-plane"
DB_LOG_GROUP = f"/aws/rds/instance/{DB_INSTANCE_ID}/postgresql"


@dataclass(frozen=True)
class Database:
    instance: rds.DatabaseInstance
    credentials: secretsmanager.Secret  # JSON: username, password (+ host, port once attached)
    url_secret: secretsmanager.Secret  # FRAUDRAIL_DATABASE_URL
    security_group: ec2.SecurityGroup


def composed_secret(
    scope: Construct, construct_id: str, description: str, key: Any, parts: list[str]
) -> secretsmanager.Secret:
    """A secret whose value CloudFormation joins from ``parts`` (tokens and dynamic references)."""
    return secretsmanager.Secret(
        scope,
        construct_id,
        description=description,
        encryption_key=key,
        secret_string_value=SecretValue.unsafe_plain_text(Fn.join("", parts)),
    )


def generated_secret(
    scope: Construct, construct_id: str, description: str, key: Any
) -> secretsmanager.Secret:
    return secretsmanager.Secret(
        scope,
        construct_id,
        description=description,
        encryption_key=key,
        generate_secret_string=secretsmanager.SecretStringGenerator(
            exclude_punctuation=True, password_length=48
        ),
    )


def control_plane_database(
    scope: Construct,
    *,
    vpc: ec2.IVpc,
    key: Any,
    clients: ec2.ISecurityGroup,
    instance_class: str,
    log_group: logs.LogGroup,
) -> Database:
    """PostgreSQL 17 on RDS: encrypted with the platform key, private, reachable from ``clients`` only."""
    security_group = ec2.SecurityGroup(
        scope, "DatabaseSecurityGroup", vpc=vpc, description="Fraudrail PostgreSQL", allow_all_outbound=False
    )
    security_group.add_ingress_rule(
        clients, ec2.Port.tcp(5432), "PostgreSQL from the control plane tasks only"
    )
    credentials = secretsmanager.Secret(
        scope,
        "DatabaseCredentials",
        description="Fraudrail PostgreSQL master credentials",
        encryption_key=key,
        generate_secret_string=secretsmanager.SecretStringGenerator(
            secret_string_template=json.dumps({"username": DB_USER}),
            generate_string_key="password",
            exclude_punctuation=True,
            password_length=40,
        ),
    )
    instance = rds.DatabaseInstance(
        scope,
        "Database",
        # A full version: cfn-lint's RDS data marks bare majors ("16", "17") as unusable for new
        # instances; later minors arrive in the maintenance window (auto_minor_version_upgrade).
        engine=rds.DatabaseInstanceEngine.postgres(version=rds.PostgresEngineVersion.VER_17_6),
        instance_type=ec2.InstanceType(instance_class),
        instance_identifier=DB_INSTANCE_ID,
        vpc=vpc,
        vpc_subnets=ec2.SubnetSelection(subnet_type=ec2.SubnetType.PRIVATE_ISOLATED),
        security_groups=[security_group],
        credentials=rds.Credentials.from_secret(credentials),
        database_name=DB_NAME,
        storage_encrypted=True,
        storage_encryption_key=key,
        storage_type=rds.StorageType.GP3,
        allocated_storage=50,
        max_allocated_storage=500,
        multi_az=True,
        publicly_accessible=False,
        backup_retention=Duration.days(14),
        copy_tags_to_snapshot=True,
        deletion_protection=True,
        removal_policy=RemovalPolicy.SNAPSHOT,
        cloudwatch_logs_exports=["postgresql"],
        auto_minor_version_upgrade=True,
    )
    # RDS writes into this group (with a retention) only if it exists before the instance.
    instance.node.add_dependency(log_group)
    password = credentials.secret_value_from_json("password").unsafe_unwrap()  # a dynamic reference
    url_secret = composed_secret(
        scope,
        "DatabaseUrl",
        "FRAUDRAIL_DATABASE_URL of the control plane (composed by CloudFormation)",
        key,
        [
            f"postgresql+psycopg://{DB_USER}:",
            password,
            "@",
            instance.db_instance_endpoint_address,
            ":",
            instance.db_instance_endpoint_port,
            f"/{DB_NAME}?sslmode=require",
        ],
    )
    return Database(
        instance=instance, credentials=credentials, url_secret=url_secret, security_group=security_group
    )


def redis_url_secret(scope: Construct, platform: PlatformStack) -> secretsmanager.Secret:
    """FRAUDRAIL_REDIS_URL: TLS (``rediss``) with the cache's AUTH token."""
    cache = platform.cache
    return composed_secret(
        scope,
        "RedisUrl",
        "FRAUDRAIL_REDIS_URL of the control plane (composed by CloudFormation)",
        platform.key,
        [
            "rediss://:",
            platform.cache_auth_secret.secret_value.unsafe_unwrap(),  # a dynamic reference
            "@",
            cache.attr_primary_end_point_address,
            ":",
            cache.attr_primary_end_point_port,
            "/0",
        ],
    )


def task_statements(
    stack: Stack, platform: PlatformStack, sagemaker_role_arn: str
) -> list[iam.PolicyStatement]:
    """The AWS adapters' calls (docs/aws.md), each on the platform's own resources or names."""
    p = platform
    arn = f"arn:{stack.partition}"
    where = f"{stack.region}:{stack.account}"
    return [
        iam.PolicyStatement(
            sid="PlatformObjects",
            actions=["s3:GetObject", "s3:PutObject", "s3:DeleteObject"],
            resources=[p.bucket.arn_for_objects("*")],
        ),
        iam.PolicyStatement(
            sid="ListPlatformBucket", actions=["s3:ListBucket"], resources=[p.bucket.bucket_arn]
        ),
        iam_statements.use_key_by_arn([p.key.key_arn], write=True),
        iam.PolicyStatement(
            sid="Tables",
            actions=[
                "dynamodb:GetItem",
                "dynamodb:PutItem",
                "dynamodb:UpdateItem",
                "dynamodb:DeleteItem",
                "dynamodb:Query",
                "dynamodb:BatchWriteItem",
                "dynamodb:ConditionCheckItem",
            ],
            resources=[
                p.flagged_table.table_arn,
                f"{p.flagged_table.table_arn}/index/*",
                p.rollback_table.table_arn,
            ],
        ),
        iam.PolicyStatement(
            sid="PublishEvents",
            actions=["sns:Publish"],
            resources=[p.alarm_topic.topic_arn, f"{arn}:sns:{where}:fraudrail-*"],
        ),
        iam_statements.put_metrics([p.names.metrics_namespace]),
        iam.PolicyStatement(
            sid="ModelHosting",
            actions=[
                *iam_statements.SAGEMAKER_ENDPOINT_ACTIONS,
                "sagemaker:UpdateEndpointWeightsAndCapacities",
                "sagemaker:InvokeEndpoint",
                "sagemaker:AddTags",
            ],
            resources=[
                f"{arn}:sagemaker:{where}:{kind}/fraudrail-*"
                for kind in ("model", "endpoint-config", "endpoint")
            ],
        ),
        # Training runs and batch scoring as SageMaker jobs (providers/aws/jobs.py, batch_jobs.py).
        iam.PolicyStatement(
            sid="TrainingAndBatchJobs",
            actions=[
                "sagemaker:CreateTrainingJob",
                "sagemaker:DescribeTrainingJob",
                "sagemaker:StopTrainingJob",
                "sagemaker:CreateTransformJob",
                "sagemaker:DescribeTransformJob",
                "sagemaker:StopTransformJob",
                "sagemaker:AddTags",
            ],
            resources=[
                f"{arn}:sagemaker:{where}:{kind}/fraudrail-*" for kind in ("training-job", "transform-job")
            ],
        ),
        iam.PolicyStatement(
            sid="PassModelRole",
            actions=["iam:PassRole"],
            resources=[sagemaker_role_arn],
            conditions={"StringEquals": {"iam:PassedToService": "sagemaker.amazonaws.com"}},
        ),
        # Tenant stacks only; CloudFormation creates the resources inside them with the tenant
        # stack role (cdk/tenant_stack_role.py), which the task role passes as RoleARN.
        iam.PolicyStatement(
            sid="TenantStacks",
            actions=[
                "cloudformation:CreateStack",
                "cloudformation:UpdateStack",
                "cloudformation:DeleteStack",
                "cloudformation:DescribeStacks",
                "cloudformation:DescribeStackEvents",
                "cloudformation:ListStackResources",
            ],
            resources=[f"{arn}:cloudformation:{where}:stack/fraudrail-tenant-*/*"],
        ),
    ]
