"""S3 and DynamoDB adapters against moto's server: the shared contracts and AWS specifics."""

from __future__ import annotations

import uuid

import pytest

from providers.aws.dynamo import DynamoFlaggedTransactionStore, DynamoRollbackLog
from providers.aws.factory import AwsClients
from providers.aws.object_store import S3ObjectStore
from providers.aws.settings import AwsSettings
from providers.ports import FlaggedRecord, ProviderError
from tests.aws import contracts_extra
from tests.control_plane.providers import contracts

pytestmark = pytest.mark.aws


def test_s3_object_store_contract(clients: AwsClients, aws_settings: AwsSettings, kms_key_id: str) -> None:
    contracts.check_object_store(S3ObjectStore(clients.s3, aws_settings.bucket, kms_key_id))


def test_s3_puts_with_sse_kms_when_a_key_is_given(
    clients: AwsClients, aws_settings: AwsSettings, kms_key_id: str
) -> None:
    store = S3ObjectStore(clients.s3, aws_settings.bucket, kms_key_id)
    store.put("tenants/ten_a/models/mv_1/model.tar.gz", b"weights")
    head = clients.s3.head_object(Bucket=aws_settings.bucket, Key="tenants/ten_a/models/mv_1/model.tar.gz")
    assert head["ServerSideEncryption"] == "aws:kms"
    assert kms_key_id in head["SSEKMSKeyId"]

    plain = S3ObjectStore(clients.s3, aws_settings.bucket, None)
    plain.put("tenants/ten_a/plain.bin", b"x")
    assert clients.s3.head_object(Bucket=aws_settings.bucket, Key="tenants/ten_a/plain.bin").get(
        "ServerSideEncryption"
    ) in (None, "AES256")


def test_s3_lists_and_deletes_across_pages_and_batches(
    clients: AwsClients, aws_settings: AwsSettings
) -> None:
    store = S3ObjectStore(clients.s3, aws_settings.bucket, None, page_size=40, delete_batch=50)
    keys = [f"tenants/ten_big/rows/{i:05d}.bin" for i in range(121)]  # 4 pages, 3 DeleteObjects calls
    for key in keys:
        clients.s3.put_object(Bucket=aws_settings.bucket, Key=key, Body=b"")
    store.put("tenants/ten_big2/keep.bin", b"keep")
    calls: list[int] = []
    clients.s3.meta.events.register("before-call.s3.ListObjectsV2", lambda **_: calls.append(0))
    clients.s3.meta.events.register("before-call.s3.DeleteObjects", lambda **_: calls.append(1))
    assert store.list("tenants/ten_big/") == keys
    assert calls.count(0) == 4
    assert store.delete_prefix("tenants/ten_big/") == len(keys)
    assert calls.count(1) == 3
    assert store.list("tenants/ten_big/") == []
    assert store.exists("tenants/ten_big2/keep.bin")
    with pytest.raises(ValueError):
        store.delete_prefix("")
    with pytest.raises(ValueError):
        S3ObjectStore(clients.s3, aws_settings.bucket, None, delete_batch=1001)


def test_s3_errors_other_than_missing_keys_are_provider_errors(clients: AwsClients) -> None:
    store = S3ObjectStore(clients.s3, "fraudrail-no-such-bucket", None)
    with pytest.raises(ProviderError, match="NoSuchBucket"):
        store.put("k", b"x")
    with pytest.raises(ProviderError):
        store.list("tenants/")


def test_dynamo_flagged_store_contract(clients: AwsClients, aws_settings: AwsSettings) -> None:
    contracts.check_flagged_store(DynamoFlaggedTransactionStore(clients.dynamodb, aws_settings.flagged_table))


def test_dynamo_flagged_put_is_a_conditional_write(clients: AwsClients, aws_settings: AwsSettings) -> None:
    store = DynamoFlaggedTransactionStore(clients.dynamodb, aws_settings.flagged_table)
    tenant = f"ten_{uuid.uuid4().hex}"
    first = FlaggedRecord(tenant, "flg_1", {"score": 0.91, "status": "open", "reasons": ["CARD_VELOCITY"]})
    replay = FlaggedRecord(tenant, "flg_1", {"score": 0.10, "status": "cleared", "reasons": []})
    assert store.put(first) is True
    assert store.put(replay) is False  # the replay neither overwrites nor duplicates
    got = store.get(tenant, "flg_1")
    assert got is not None and got.payload == first.payload
    assert store.count(tenant) == 1

    item = clients.dynamodb.get_item(
        TableName=aws_settings.flagged_table, Key={"tenant_id": {"S": tenant}, "flagged_id": {"S": "flg_1"}}
    )["Item"]
    assert item["score"] == {"N": "0.91"}  # a DynamoDB number (Decimal), exactly
    assert item["status"] == {"S": "open"}
    assert item["tenant_status"] == {"S": f"{tenant}#open"}
    assert "S" in item["payload"]  # the payload travels as JSON text: floats stay floats

    queue = clients.dynamodb.query(
        TableName=aws_settings.flagged_table,
        IndexName="status-score-index",
        KeyConditionExpression="tenant_status = :s",
        ExpressionAttributeValues={":s": {"S": f"{tenant}#open"}},
    )
    assert [i["flagged_id"]["S"] for i in queue["Items"]] == ["flg_1"]


def test_dynamo_flagged_list_limit_count_and_purge_in_batches(
    clients: AwsClients, aws_settings: AwsSettings
) -> None:
    store = DynamoFlaggedTransactionStore(clients.dynamodb, aws_settings.flagged_table)
    tenant, other = f"ten_{uuid.uuid4().hex}", f"ten_{uuid.uuid4().hex}"
    for i in range(60):  # purge needs three BatchWriteItem calls of at most 25
        assert store.put(FlaggedRecord(tenant, f"flg_{i:03d}", {"score": i / 100, "reasons": []}))
    store.put(FlaggedRecord(other, "flg_000", {"score": 0.5}))
    assert store.count(tenant) == 60
    assert [r.flagged_id for r in store.list(tenant, limit=5)] == [f"flg_{i:03d}" for i in range(5)]
    assert store.list(tenant, limit=0) == []
    assert store.purge_tenant(tenant) == 60
    assert store.count(tenant) == 0 and store.list(tenant) == []
    assert store.count(other) == 1


def test_dynamo_rollback_log_contract(clients: AwsClients, aws_settings: AwsSettings) -> None:
    contracts_extra.check_rollback_log(DynamoRollbackLog(clients.dynamodb, aws_settings.rollback_table))


def test_dynamo_missing_table_is_a_provider_error(clients: AwsClients) -> None:
    store = DynamoFlaggedTransactionStore(clients.dynamodb, "fraudrail-no-such-table")
    with pytest.raises(ProviderError, match="ResourceNotFoundException"):
        store.put(FlaggedRecord("ten_a", "flg_1", {}))
