"""Least-privilege IAM statements shared by the stacks.

Only two actions are granted on ``Resource: "*"`` anywhere, because AWS accepts nothing else for
them: ``ecr:GetAuthorizationToken`` and ``cloudwatch:PutMetricData`` (the latter narrowed by a
``cloudwatch:namespace`` condition). ``policies/rego/infrastructure.rego`` lists the same
exceptions; ``docs/infrastructure.md`` explains them.
"""

from __future__ import annotations

from collections.abc import Sequence

from aws_cdk import Stack
from aws_cdk import aws_iam as iam

SAGEMAKER_METRIC_NAMESPACES = ("/aws/sagemaker/Endpoints", "/aws/sagemaker/*")
# Creating, reading, changing and deleting a model, its endpoint config and its endpoint: what the
# control plane's task role (model hosting) and the tenant stacks' CloudFormation role both need.
SAGEMAKER_ENDPOINT_ACTIONS = (
    "sagemaker:CreateModel",
    "sagemaker:DescribeModel",
    "sagemaker:DeleteModel",
    "sagemaker:CreateEndpointConfig",
    "sagemaker:DescribeEndpointConfig",
    "sagemaker:DeleteEndpointConfig",
    "sagemaker:CreateEndpoint",
    "sagemaker:DescribeEndpoint",
    "sagemaker:UpdateEndpoint",
    "sagemaker:DeleteEndpoint",
)


def s3_arn(stack: Stack, bucket_name: str, key_pattern: str | None = None) -> str:
    """The ARN of a bucket, or of the objects under ``key_pattern`` in it."""
    base = f"arn:{stack.partition}:s3:::{bucket_name}"
    return base if key_pattern is None else f"{base}/{key_pattern}"


def read_model_artifacts(stack: Stack, bucket_name: str, prefix: str) -> list[iam.PolicyStatement]:
    """Read objects under one prefix of one bucket, and list only that prefix."""
    return [
        iam.PolicyStatement(
            sid="ReadModelArtifacts",
            actions=["s3:GetObject"],
            resources=[s3_arn(stack, bucket_name, f"{prefix}*")],
        ),
        iam.PolicyStatement(
            sid="ListModelArtifacts",
            actions=["s3:ListBucket"],
            resources=[s3_arn(stack, bucket_name)],
            conditions={"StringLike": {"s3:prefix": [f"{prefix}*"]}},
        ),
    ]


def use_key_by_arn(key_arns: Sequence[str], *, write: bool = False) -> iam.PolicyStatement:
    """Decrypt (and optionally encrypt) with the given KMS keys."""
    actions = ["kms:Decrypt", "kms:DescribeKey"]
    if write:
        actions += ["kms:Encrypt", "kms:GenerateDataKey", "kms:ReEncrypt*"]
    return iam.PolicyStatement(sid="UseKmsKey", actions=actions, resources=list(key_arns))


def use_key_by_alias(stack: Stack, alias: str) -> iam.PolicyStatement:
    """Decrypt with the key behind an alias owned by another stack (no cross-stack export)."""
    return iam.PolicyStatement(
        sid="UsePlatformKmsKey",
        actions=["kms:Decrypt", "kms:DescribeKey"],
        resources=[f"arn:{stack.partition}:kms:{stack.region}:{stack.account}:key/*"],
        conditions={"ForAnyValue:StringEquals": {"kms:ResourceAliases": [alias]}},
    )


def pull_image(stack: Stack, repository_name: str) -> list[iam.PolicyStatement]:
    """Pull the inference image from one ECR repository."""
    repository_arn = f"arn:{stack.partition}:ecr:{stack.region}:{stack.account}:repository/{repository_name}"
    return [
        iam.PolicyStatement(
            sid="PullInferenceImage",
            actions=["ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer", "ecr:BatchCheckLayerAvailability"],
            resources=[repository_arn],
        ),
        # AWS accepts only "*" for this action (documented exception).
        iam.PolicyStatement(
            sid="EcrAuthorizationToken", actions=["ecr:GetAuthorizationToken"], resources=["*"]
        ),
    ]


def write_logs(stack: Stack, log_group_name: str, sid: str = "WriteLogs") -> iam.PolicyStatement:
    """Create and write one log group (``log_group_name`` may end in ``*`` for a family)."""
    base = f"arn:{stack.partition}:logs:{stack.region}:{stack.account}:log-group:{log_group_name}"
    return iam.PolicyStatement(
        sid=sid,
        actions=[
            "logs:CreateLogGroup",
            "logs:CreateLogStream",
            "logs:PutLogEvents",
            "logs:DescribeLogStreams",
        ],
        resources=[base, f"{base}:*"],
    )


def put_metrics(namespaces: Sequence[str]) -> iam.PolicyStatement:
    """Publish metrics only into the given namespaces (the action itself accepts only "*")."""
    return iam.PolicyStatement(
        sid="PutMetrics",
        actions=["cloudwatch:PutMetricData"],
        resources=["*"],
        conditions={"StringLike": {"cloudwatch:namespace": list(namespaces)}},
    )


def sagemaker_hosting_statements(
    stack: Stack,
    *,
    bucket_name: str,
    prefix: str,
    repository_name: str,
    endpoint_name: str,
) -> list[iam.PolicyStatement]:
    """What a SageMaker model's execution role needs to host one endpoint (KMS grants excluded)."""
    return [
        *read_model_artifacts(stack, bucket_name, prefix),
        *pull_image(stack, repository_name),
        write_logs(stack, f"/aws/sagemaker/Endpoints/{endpoint_name}"),
        put_metrics(SAGEMAKER_METRIC_NAMESPACES),
    ]
