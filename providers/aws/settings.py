"""AWS settings (``FRAUDRAIL_AWS_*``), read by the control plane and by the rollback Lambda.

Credentials never appear here: they come only from the standard AWS chain.
"""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class AwsSettings(BaseSettings):
    """AWS adapters; credentials come only from the standard AWS chain."""

    model_config = SettingsConfigDict(env_prefix="FRAUDRAIL_AWS_", extra="ignore")

    region: str = "eu-west-1"
    endpoint_url: str | None = None
    bucket: str = "fraudrail-platform"
    flagged_table: str = "fraudrail-flagged-transactions"
    rollback_table: str = "fraudrail-rollback-log"
    alarm_topic_arn: str | None = None
    pooled_endpoint: str = "fraudrail-pooled"


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
    # Where the SNS receiver listens (bus_backend=sns): port 0 takes a free port at start; set a
    # fixed one when a proxy or the advertised URL forwards to it.
    receiver_host: str = "127.0.0.1"
    receiver_port: int = Field(default=0, ge=0, le=65535)
    stack_poll_s: float = 10.0
    stack_timeout_s: float = 3600.0
    endpoint_poll_s: float = 15.0
    max_attempts: int = 5
    job_poll_s: float = 30.0  # how often a waiting training / batch job asks SageMaker again
    batch_instance_type: str = "ml.m5.large"  # Batch Transform instances
    # Against an emulator only (moto records SageMaker jobs but runs no container): run the
    # image's entry points as local processes (providers/aws/job_emulation.py). Refused on AWS.
    emulate_job_containers: bool = False
