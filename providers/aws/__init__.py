"""AWS adapters for every port (S3, DynamoDB, SNS, CloudWatch, SageMaker, CloudFormation).

Select them with ``FRAUDRAIL_PROVIDER=aws``; ``docs/aws.md`` describes the settings and the
deployment. The same contract checks as the local adapters run against them on moto's server
(``tests/aws``).

The names below are imported on first use, not with the package: the rollback Lambda imports
``providers.aws.model_host`` and friends with boto3 alone, without the settings' pydantic or the
metrics adapter's prometheus-client.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from providers.aws.dynamo import DynamoFlaggedTransactionStore, DynamoRollbackLog
    from providers.aws.event_bus import SnsEventBus
    from providers.aws.factory import AwsClients, build_model_host, build_rollback_log, make_clients
    from providers.aws.metrics import CloudWatchMetrics
    from providers.aws.model_host import SageMakerModelHost
    from providers.aws.object_store import S3ObjectStore
    from providers.aws.provisioner import CloudFormationProvisioner, StackFailedError
    from providers.aws.settings import AwsRuntimeSettings, AwsSettings

_MODULE_OF = {
    "AwsClients": "factory",
    "AwsRuntimeSettings": "settings",
    "AwsSettings": "settings",
    "CloudFormationProvisioner": "provisioner",
    "CloudWatchMetrics": "metrics",
    "DynamoFlaggedTransactionStore": "dynamo",
    "DynamoRollbackLog": "dynamo",
    "S3ObjectStore": "object_store",
    "SageMakerModelHost": "model_host",
    "SnsEventBus": "event_bus",
    "StackFailedError": "provisioner",
    "build_model_host": "factory",
    "build_rollback_log": "factory",
    "make_clients": "factory",
}

__all__ = [
    "AwsClients",
    "AwsRuntimeSettings",
    "AwsSettings",
    "CloudFormationProvisioner",
    "CloudWatchMetrics",
    "DynamoFlaggedTransactionStore",
    "DynamoRollbackLog",
    "S3ObjectStore",
    "SageMakerModelHost",
    "SnsEventBus",
    "StackFailedError",
    "build_model_host",
    "build_rollback_log",
    "make_clients",
]


def __getattr__(name: str) -> Any:
    module = _MODULE_OF.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{module}"), name)
