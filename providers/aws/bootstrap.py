"""Create the shared resources the adapters expect, for an emulator (moto, LocalStack).

On a real account the CDK platform stack owns these (bucket, tables, topic, pooled endpoint);
this helper mirrors their names and keys so tests and local runs need no CloudFormation.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from providers.aws._util import AwsError, error_code

if TYPE_CHECKING:
    from providers.aws.factory import AwsClients
    from providers.aws.settings import AwsSettings


def ensure_bucket(clients: AwsClients, bucket: str, region: str) -> None:
    try:
        clients.s3.head_bucket(Bucket=bucket)
        return
    except AwsError as exc:
        if error_code(exc) not in {"404", "NoSuchBucket", "NotFound"}:
            raise
    if region == "us-east-1":
        clients.s3.create_bucket(Bucket=bucket)
    else:
        clients.s3.create_bucket(
            Bucket=bucket,
            CreateBucketConfiguration={"LocationConstraint": region},  # type: ignore[typeddict-item]
        )
    clients.s3.put_public_access_block(
        Bucket=bucket,
        PublicAccessBlockConfiguration={
            "BlockPublicAcls": True,
            "IgnorePublicAcls": True,
            "BlockPublicPolicy": True,
            "RestrictPublicBuckets": True,
        },
    )


def ensure_table(clients: AwsClients, table: str, sort_key: str, *, status_index: bool = False) -> None:
    """A pay-per-request table keyed ``tenant_id`` / ``sort_key`` (as in the platform stack)."""
    try:
        clients.dynamodb.describe_table(TableName=table)
        return
    except AwsError as exc:
        if error_code(exc) != "ResourceNotFoundException":
            raise
    if status_index:
        clients.dynamodb.create_table(
            TableName=table,
            KeySchema=[
                {"AttributeName": "tenant_id", "KeyType": "HASH"},
                {"AttributeName": sort_key, "KeyType": "RANGE"},
            ],
            AttributeDefinitions=[
                {"AttributeName": "tenant_id", "AttributeType": "S"},
                {"AttributeName": sort_key, "AttributeType": "S"},
                {"AttributeName": "tenant_status", "AttributeType": "S"},
                {"AttributeName": "score", "AttributeType": "N"},
            ],
            BillingMode="PAY_PER_REQUEST",
            GlobalSecondaryIndexes=[
                {
                    "IndexName": "status-score-index",
                    "KeySchema": [
                        {"AttributeName": "tenant_status", "KeyType": "HASH"},
                        {"AttributeName": "score", "KeyType": "RANGE"},
                    ],
                    "Projection": {"ProjectionType": "ALL"},
                }
            ],
        )
    else:
        clients.dynamodb.create_table(
            TableName=table,
            KeySchema=[
                {"AttributeName": "tenant_id", "KeyType": "HASH"},
                {"AttributeName": sort_key, "KeyType": "RANGE"},
            ],
            AttributeDefinitions=[
                {"AttributeName": "tenant_id", "AttributeType": "S"},
                {"AttributeName": sort_key, "AttributeType": "S"},
            ],
            BillingMode="PAY_PER_REQUEST",
        )
    clients.dynamodb.get_waiter("table_exists").wait(
        TableName=table, WaiterConfig={"Delay": 1, "MaxAttempts": 60}
    )


def ensure_platform_resources(clients: AwsClients, aws: AwsSettings) -> None:
    """Bucket, flagged-transaction table (with its status-score index) and rollback table."""
    ensure_bucket(clients, aws.bucket, aws.region)
    ensure_table(clients, aws.flagged_table, "flagged_id", status_index=True)
    ensure_table(clients, aws.rollback_table, "rollback_id")
