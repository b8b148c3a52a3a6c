"""AWS adapters for every port (S3, DynamoDB, SNS, CloudWatch, SageMaker, CloudFormation).

Select them with ``FRAUDRAIL_PROVIDER=aws``; ``docs/aws.md`` describes the settings and the
deployment. The same contract checks as the local adapters run against them on moto's server
(``tests/aws``).
"""

from providers.aws.dynamo import DynamoFlaggedTransactionStore, DynamoRollbackLog
from providers.aws.event_bus import SnsEventBus
from providers.aws.factory import AwsClients, build_model_host, build_rollback_log, make_clients
from providers.aws.metrics import CloudWatchMetrics
from providers.aws.model_host import SageMakerModelHost
from providers.aws.object_store import S3ObjectStore
from providers.aws.provisioner import CloudFormationProvisioner, StackFailedError
from providers.aws.settings import AwsRuntimeSettings, AwsSettings

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
