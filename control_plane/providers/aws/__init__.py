"""AWS adapters for every port (S3, DynamoDB, SNS, CloudWatch, SageMaker, CloudFormation).

Select them with ``FRAUDRAIL_PROVIDER=aws``; ``docs/aws.md`` describes the settings and the
deployment. The same contract checks as the local adapters run against them on moto's server
(``tests/aws``).
"""

from control_plane.providers.aws.dynamo import DynamoFlaggedTransactionStore, DynamoRollbackLog
from control_plane.providers.aws.event_bus import SnsEventBus
from control_plane.providers.aws.factory import (
    AwsClients,
    AwsRuntimeSettings,
    build_aws_providers,
    build_rollback_log,
    cdk_synthesizer,
    make_clients,
)
from control_plane.providers.aws.metrics import CloudWatchMetrics
from control_plane.providers.aws.model_host import SageMakerModelHost
from control_plane.providers.aws.object_store import S3ObjectStore
from control_plane.providers.aws.provisioner import CloudFormationProvisioner, StackFailedError

__all__ = [
    "AwsClients",
    "AwsRuntimeSettings",
    "CloudFormationProvisioner",
    "CloudWatchMetrics",
    "DynamoFlaggedTransactionStore",
    "DynamoRollbackLog",
    "S3ObjectStore",
    "SageMakerModelHost",
    "SnsEventBus",
    "StackFailedError",
    "build_aws_providers",
    "build_rollback_log",
    "cdk_synthesizer",
    "make_clients",
]
