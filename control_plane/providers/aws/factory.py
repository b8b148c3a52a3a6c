"""Builds the AWS adapters from settings (``FRAUDRAIL_PROVIDER=aws``).

Credentials come only from boto3's default chain (environment, shared config / SSO, web
identity, container or instance role); nothing here reads, stores or logs them.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import boto3
from botocore.config import Config
from pydantic_settings import BaseSettings, SettingsConfigDict
from sqlalchemy.orm import Session, sessionmaker

from control_plane.providers.aws.dynamo import DynamoFlaggedTransactionStore, DynamoRollbackLog
from control_plane.providers.aws.event_bus import SnsEventBus
from control_plane.providers.aws.metrics import CloudWatchMetrics
from control_plane.providers.aws.model_host import SageMakerModelHost
from control_plane.providers.aws.object_store import S3ObjectStore
from control_plane.providers.aws.provisioner import CloudFormationProvisioner
from control_plane.providers.local.event_bus import InProcessEventBus
from control_plane.providers.ports import EventBus, TenantSpec
from control_plane.providers.redis_cache import RedisFeatureCache
from control_plane.settings import AppSettings, AwsSettings

if TYPE_CHECKING:
    from mypy_boto3_cloudformation import CloudFormationClient
    from mypy_boto3_cloudwatch import CloudWatchClient
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_sagemaker import SageMakerClient
    from mypy_boto3_sagemaker_runtime import SageMakerRuntimeClient
    from mypy_boto3_sns import SNSClient

    from control_plane.providers.registry import Providers
    from guardrails.policy import PolicyEngine


class AwsRuntimeSettings(BaseSettings):
    """AWS settings the adapters need beyond ``AwsSettings`` (same ``FRAUDRAIL_AWS_`` prefix)."""

    model_config = SettingsConfigDict(env_prefix="FRAUDRAIL_AWS_", extra="ignore")

    kms_key_id: str | None = None  # SSE-KMS key for objects (id, ARN or alias); bucket default otherwise
    sagemaker_role_arn: str | None = None  # execution role of per-tenant SageMaker models
    inference_image_uri: str | None = None  # the inference image (ECR) of per-tenant models
    dedicated_instance_type: str = "ml.m5.xlarge"
    endpoint_kms_key_id: str | None = None  # KmsKeyId of endpoint configs the model host creates
    metrics_namespace: str = "Fraudrail"
    create_topics: bool | None = None  # default: only against an emulator (endpoint_url set)
    receiver_advertise_url: str | None = None  # public URL of the SNS receiver, if any
    stack_poll_s: float = 10.0
    stack_timeout_s: float = 3600.0
    endpoint_poll_s: float = 15.0
    max_attempts: int = 5


@dataclass(frozen=True)
class AwsClients:
    s3: S3Client
    dynamodb: DynamoDBClient
    sns: SNSClient
    sagemaker: SageMakerClient
    sagemaker_runtime: SageMakerRuntimeClient
    cloudformation: CloudFormationClient
    cloudwatch: CloudWatchClient


def make_clients(
    aws: AwsSettings,
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
    )


def cdk_synthesizer(platform_bucket: str | None = None) -> Callable[[TenantSpec], dict[str, Any]]:
    """The tenant template from the CDK app (``cdk.synthesis``; needs the ``[cdk]`` extra)."""

    def synthesize(spec: TenantSpec) -> dict[str, Any]:
        # Imported on use: aws-cdk-lib is an optional extra, and jsii starts a Node process.
        synthesis = importlib.import_module("cdk.synthesis")
        contacts: Mapping[str, Any] = spec.contacts or {}
        email = contacts.get("email")
        context = {"fraudrail:platformBucketName": platform_bucket} if platform_bucket else {}
        template: dict[str, Any] = synthesis.synthesize_tenant_template(
            spec.tenant_id,
            spec.tier,
            spec.region,
            spec.budget_amount,
            spec.budget_currency,
            str(email) if email else None,
            context=context,
        )
        return template

    return synthesize


def _policy_engine(settings: AppSettings, templates: dict[str, dict[str, Any]]) -> PolicyEngine:
    if settings.policy_engine == "opa":
        from guardrails.policy import OpaPolicyEngine

        return OpaPolicyEngine(settings.opa_url, settings.policy_dir, templates)
    from guardrails.policy import RegoPolicyEngine

    return RegoPolicyEngine(settings.policy_dir, templates)


def build_aws_providers(
    settings: AppSettings,
    aws: AwsSettings,
    factory: sessionmaker[Session],
    *,
    runtime: AwsRuntimeSettings | None = None,
    clients: AwsClients | None = None,
    synthesize: Callable[[TenantSpec], Mapping[str, Any]] | None = None,
) -> Providers:
    """Every port on AWS: S3, DynamoDB, SageMaker, SNS, CloudWatch, CloudFormation, ElastiCache.

    ``factory`` is accepted for symmetry with the local build (the flagged store lives in
    DynamoDB here, not in the control plane's database).
    """
    from control_plane.providers.registry import Providers
    from guardrails.policy import load_tier_templates

    del factory
    rt = runtime or AwsRuntimeSettings()
    c = clients or make_clients(aws, max_attempts=rt.max_attempts)
    templates = load_tier_templates(settings.tenant_templates_dir)
    store = S3ObjectStore(c.s3, aws.bucket, rt.kms_key_id)
    host = build_model_host(c, aws, rt, store)
    bus: EventBus
    if settings.bus_backend == "sns":
        topics = (
            {"rollout.alarm": aws.alarm_topic_arn, "alarms": aws.alarm_topic_arn}
            if aws.alarm_topic_arn
            else {}
        )
        create = rt.create_topics if rt.create_topics is not None else bool(aws.endpoint_url)
        bus = SnsEventBus(c.sns, topics, create, advertise_url=rt.receiver_advertise_url)
    else:
        bus = InProcessEventBus()
    metrics = CloudWatchMetrics(c.cloudwatch, rt.metrics_namespace)
    metrics.start()
    provisioner = CloudFormationProvisioner(
        c.cloudformation,
        _policy_engine(settings, templates),
        synthesize or cdk_synthesizer(aws.bucket),
        allowed_instance_types_for=lambda tier: [str(t) for t in templates[tier].get("instance_types") or []],
        poll_s=rt.stack_poll_s,
        timeout_s=rt.stack_timeout_s,
    )
    return Providers(
        object_store=store,
        feature_cache=RedisFeatureCache(settings.redis_url, timeout_ms=settings.cache_timeout_ms),
        model_host=host,
        flagged_store=DynamoFlaggedTransactionStore(c.dynamodb, aws.flagged_table),
        event_bus=bus,
        metrics=metrics,
        provisioner=provisioner,
        rollback_log=DynamoRollbackLog(c.dynamodb, aws.rollback_table),
    )


def build_model_host(
    clients: AwsClients,
    aws: AwsSettings,
    rt: AwsRuntimeSettings,
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
