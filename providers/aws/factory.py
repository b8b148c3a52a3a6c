"""Builds the AWS adapters from settings (``FRAUDRAIL_PROVIDER=aws``).

Credentials come only from boto3's default chain (environment, shared config / SSO, web
identity, container or instance role); nothing here reads, stores or logs them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

import boto3
from botocore.config import Config

from providers.aws.dynamo import DynamoRollbackLog
from providers.aws.model_host import SageMakerModelHost
from providers.aws.object_store import S3ObjectStore

if TYPE_CHECKING:
    from mypy_boto3_cloudformation import CloudFormationClient
    from mypy_boto3_cloudwatch import CloudWatchClient
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_sagemaker import SageMakerClient
    from mypy_boto3_sagemaker_runtime import SageMakerRuntimeClient
    from mypy_boto3_sns import SNSClient

    from providers.aws.settings import AwsSettings


# What the builders read: ``AwsSettings`` / ``AwsRuntimeSettings`` in the control plane, the
# rollback Lambda's stdlib ``LambdaSettings`` (its runtime has no pydantic-settings).


class ClientSettings(Protocol):
    @property
    def region(self) -> str: ...
    @property
    def endpoint_url(self) -> str | None: ...


class HostPlacement(Protocol):
    @property
    def bucket(self) -> str: ...
    @property
    def pooled_endpoint(self) -> str: ...


class HostRuntime(Protocol):
    @property
    def sagemaker_role_arn(self) -> str | None: ...
    @property
    def inference_image_uri(self) -> str | None: ...
    @property
    def dedicated_instance_type(self) -> str: ...
    @property
    def endpoint_kms_key_id(self) -> str | None: ...
    @property
    def endpoint_poll_s(self) -> float: ...


@dataclass(frozen=True)
class AwsClients:
    s3: S3Client
    dynamodb: DynamoDBClient
    sns: SNSClient
    sagemaker: SageMakerClient
    sagemaker_runtime: SageMakerRuntimeClient
    cloudformation: CloudFormationClient
    cloudwatch: CloudWatchClient
    # For the tag inventory of offboarding (no type stubs installed for these three).
    tagging: Any
    ec2: Any
    kms: Any


def make_clients(
    aws: ClientSettings,
    *,
    max_attempts: int = 5,
    timeout_s: float = 10.0,
    session: boto3.session.Session | None = None,
) -> AwsClients:
    """boto3 clients from the default credential chain, in ``aws.region`` (and ``aws.endpoint_url``).

    Pass a ``session`` to reuse its loaded service models (creating clients is then ~10x faster).
    """
    session = session or boto3.session.Session(region_name=aws.region)
    config = Config(
        retries={"max_attempts": max_attempts, "mode": "standard"},
        connect_timeout=timeout_s,
        read_timeout=max(timeout_s, 60.0),
    )
    kw: dict[str, Any] = {"region_name": aws.region, "config": config}
    if aws.endpoint_url:
        kw["endpoint_url"] = aws.endpoint_url
    return AwsClients(
        s3=session.client("s3", **kw),
        dynamodb=session.client("dynamodb", **kw),
        sns=session.client("sns", **kw),
        sagemaker=session.client("sagemaker", **kw),
        sagemaker_runtime=session.client("sagemaker-runtime", **kw),
        cloudformation=session.client("cloudformation", **kw),
        cloudwatch=session.client("cloudwatch", **kw),
        tagging=session.client("resourcegroupstaggingapi", **kw),
        ec2=session.client("ec2", **kw),
        kms=session.client("kms", **kw),
    )


def build_model_host(
    clients: AwsClients,
    aws: HostPlacement,
    rt: HostRuntime,
    store: S3ObjectStore,
    *,
    endpoint_timeout_s: float = 3600.0,
) -> SageMakerModelHost:
    """The SageMaker model host as the settings describe it (control plane and rollback Lambda)."""
    return SageMakerModelHost(
        clients.sagemaker,
        clients.sagemaker_runtime,
        store,
        execution_role_arn=rt.sagemaker_role_arn,
        image_uri=rt.inference_image_uri,
        pooled_endpoint=aws.pooled_endpoint,
        bucket=aws.bucket,
        instance_type=rt.dedicated_instance_type,
        kms_key_id=rt.endpoint_kms_key_id,
        poll_s=rt.endpoint_poll_s,
        endpoint_timeout_s=endpoint_timeout_s,
    )


def build_rollback_log(aws: AwsSettings, clients: AwsClients | None = None) -> DynamoRollbackLog:
    """The rollback log on DynamoDB, on its own (``build_aws_providers`` includes it)."""
    c = clients or make_clients(aws)
    return DynamoRollbackLog(c.dynamodb, aws.rollback_table)
