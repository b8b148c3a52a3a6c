"""The AWS side of the composition root: every port built from settings on AWS."""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from control_plane.bootstrap.bus import build_event_bus
from control_plane.bootstrap.providers import Providers
from control_plane.events import SERVING_CHANGED
from control_plane.settings import AppSettings
from guardrails.policy import PolicyEngine, load_tier_templates
from providers.aws.dynamo import DynamoFlaggedTransactionStore, DynamoRollbackLog
from providers.aws.emulation import (
    install_delete_stack_standin,
    install_update_endpoint_standin,
    require_emulator,
)
from providers.aws.event_bus import SnsEventBus
from providers.aws.factory import AwsClients, build_model_host, make_clients
from providers.aws.inventory import TaggedInventory
from providers.aws.jobs import build_job_backends
from providers.aws.metrics import CloudWatchMetrics
from providers.aws.object_store import S3ObjectStore
from providers.aws.provisioner import CloudFormationProvisioner
from providers.aws.settings import AwsRuntimeSettings, AwsSettings
from providers.aws.teardown import RetainedResources
from providers.ports import EventBus, FeatureCache, TenantSpec


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


def moto_template(template: dict[str, Any]) -> dict[str, Any]:
    """FRAUDRAIL_AWS_EMULATION=moto: the tenant template cut down to what moto's CloudFormation
    creates (``cdk.emulation.moto_compatible_template``), after the policy checked the real one."""
    emulation = importlib.import_module("cdk.emulation")
    adapted: dict[str, Any] = emulation.moto_compatible_template(template)
    return adapted


def _feature_cache(settings: AppSettings) -> FeatureCache:
    if settings.cache_backend == "redis":
        from providers.redis_cache import RedisFeatureCache

        return RedisFeatureCache(settings.redis_url, timeout_ms=settings.cache_timeout_ms)
    from providers.local.feature_cache import MemoryFeatureCache

    return MemoryFeatureCache()  # one process only: settings refuse it for several workers


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
    del factory
    rt = runtime or AwsRuntimeSettings()
    require_emulator(settings.aws_emulation, aws.endpoint_url, env=settings.env)
    emulated = settings.aws_emulation == "moto"
    if emulated:  # moto runs no SageMaker container: the job entry points run as processes
        rt = rt.model_copy(update={"emulate_job_containers": True})
    c = clients or make_clients(aws, max_attempts=rt.max_attempts)
    if emulated:
        install_update_endpoint_standin(c.sagemaker)
        install_delete_stack_standin(c.cloudformation, c.ec2)
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
        bus = SnsEventBus(
            c.sns,
            topics,
            create,
            receiver_host=rt.receiver_host,
            receiver_port=rt.receiver_port,
            advertise_url=rt.receiver_advertise_url,
        )
    else:
        bus = build_event_bus(settings)  # memory, or redis: a shared bus without SNS
    # The host serves weights and slots from memory; every process re-reads a tenant's on a change.
    bus.subscribe(SERVING_CHANGED, host.on_serving_changed, mode="broadcast")
    metrics = CloudWatchMetrics(c.cloudwatch, rt.metrics_namespace)
    metrics.start()
    provisioner = CloudFormationProvisioner(
        c.cloudformation,
        _policy_engine(settings, templates),
        synthesize or cdk_synthesizer(aws.bucket),
        allowed_instance_types_for=lambda tier: [str(t) for t in templates[tier].get("instance_types") or []],
        poll_s=rt.stack_poll_s,
        timeout_s=rt.stack_timeout_s,
        model_host=host,  # the tenant's model-hosting slot is a provisioning step
        inventory=TaggedInventory(c.tagging, c.ec2, c.s3, c.kms),
        deploy_transform=moto_template if emulated else None,
        retained=RetainedResources(c.s3, c.kms),
        service_role_arn=settings.aws_cfn_role_arn,
    )
    training, batch_runner = build_job_backends(c, aws.bucket, rt, store, endpoint_url=aws.endpoint_url)
    return Providers(
        object_store=store,
        feature_cache=_feature_cache(settings),
        model_host=host,
        flagged_store=DynamoFlaggedTransactionStore(c.dynamodb, aws.flagged_table),
        event_bus=bus,
        metrics=metrics,
        provisioner=provisioner,
        rollback_log=DynamoRollbackLog(c.dynamodb, aws.rollback_table),
        training=training,  # SageMaker Training jobs
        batch_runner=batch_runner,  # SageMaker Batch Transform
    )
