"""The rollback Lambda's ports, built from its environment with boto3 alone.

The Lambda runtime ships boto3 and nothing else of ours: this module reads the same
``FRAUDRAIL_AWS_*`` variables as ``providers.aws.settings`` (whose pydantic-settings the asset
does not carry; ``tests/lambdas`` checks that the names and defaults agree) and builds the
SageMaker model host (``providers.aws.factory``, as the control plane does), the DynamoDB
rollback log and a CloudWatch metrics sink.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass, fields
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from providers.aws.dynamo import DynamoRollbackLog
from providers.aws.factory import build_model_host, make_clients
from providers.aws.object_store import S3ObjectStore
from traffic import AlarmDeps

if TYPE_CHECKING:
    from mypy_boto3_cloudwatch import CloudWatchClient

log = logging.getLogger(__name__)

PREFIX = "FRAUDRAIL_AWS_"
# set_weights waits for the endpoint to be InService; the CDK function's timeout (900 s) is above it.
ENDPOINT_TIMEOUT_ENV = "FRAUDRAIL_ROLLBACK_ENDPOINT_TIMEOUT_S"
DEFAULT_ENDPOINT_TIMEOUT_S = 600.0


@dataclass(frozen=True)
class LambdaSettings:
    """The subset of ``AwsSettings`` / ``AwsRuntimeSettings`` the rollback needs (same env names)."""

    region: str = "eu-west-1"
    endpoint_url: str | None = None
    bucket: str = "fraudrail-platform"
    rollback_table: str = "fraudrail-rollback-log"
    pooled_endpoint: str = "fraudrail-pooled"
    kms_key_id: str | None = None
    sagemaker_role_arn: str | None = None
    inference_image_uri: str | None = None
    dedicated_instance_type: str = "ml.m5.xlarge"
    endpoint_kms_key_id: str | None = None
    metrics_namespace: str = "Fraudrail"
    endpoint_poll_s: float = 15.0
    max_attempts: int = 5
    endpoint_timeout_s: float = DEFAULT_ENDPOINT_TIMEOUT_S

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> LambdaSettings:
        env = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        for f in fields(cls):
            name = ENDPOINT_TIMEOUT_ENV if f.name == "endpoint_timeout_s" else PREFIX + f.name.upper()
            raw = env.get(name)
            if raw is None or raw == "":
                continue
            default = f.default
            values[f.name] = type(default)(raw) if isinstance(default, int | float) else raw
        return cls(**values)


class CloudWatchSink:
    """``MetricsSink`` for a short-lived process: every value is one ``PutMetricData`` call.

    A failed put is logged, never raised: a metric must not fail a rollback.
    """

    def __init__(self, client: CloudWatchClient, namespace: str) -> None:
        self._client = client
        self._namespace = namespace

    def _put(self, name: str, value: float, unit: str, labels: Mapping[str, str]) -> None:
        try:
            self._client.put_metric_data(
                Namespace=self._namespace,
                MetricData=[
                    {
                        "MetricName": name,
                        "Dimensions": [{"Name": k, "Value": str(v)} for k, v in sorted(labels.items())],
                        "Timestamp": datetime.now(UTC),
                        "Value": float(value),
                        "Unit": unit,  # type: ignore[typeddict-item]
                    }
                ],
            )
        except Exception:
            log.exception("put_metric_data %s failed", name)

    def increment(self, name: str, value: float = 1.0, **labels: str) -> None:
        self._put(name, value, "Count", labels)

    def observe(self, name: str, value: float, **labels: str) -> None:
        self._put(name, value, "None", labels)

    def gauge(self, name: str, value: float, **labels: str) -> None:
        self._put(name, value, "None", labels)


def deps_from_env(environ: Mapping[str, str] | None = None) -> AlarmDeps:
    """SageMaker model host, DynamoDB rollback log and CloudWatch metrics from ``FRAUDRAIL_AWS_*``,
    built by the same ``providers.aws.factory`` builders as the control plane's."""
    s = LambdaSettings.from_env(environ)
    clients = make_clients(s, max_attempts=s.max_attempts)
    store = S3ObjectStore(clients.s3, s.bucket, s.kms_key_id)
    return AlarmDeps(
        model_host=build_model_host(clients, s, s, store, endpoint_timeout_s=s.endpoint_timeout_s),
        rollback_log=DynamoRollbackLog(clients.dynamodb, s.rollback_table),
        metrics=CloudWatchSink(clients.cloudwatch, s.metrics_namespace),
    )
