"""DynamoDB adapters: flagged transactions and the rollback log, one partition per tenant.

Payloads travel as a JSON string attribute, so floats never meet DynamoDB's Decimal numbers;
the few attributes the platform queries on (``score``, ``status``, ``tenant_status`` for the
``status-score-index``) are written at the top level as well.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from providers.aws._util import AwsError, error_code, provider_error
from providers.ports import FlaggedRecord, RollbackRecord

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_dynamodb.type_defs import AttributeValueTypeDef

_BATCH = 25  # BatchWriteItem takes at most 25 requests
_CONDITION_FAILED = "ConditionalCheckFailedException"


def _s(value: str) -> AttributeValueTypeDef:
    return {"S": value}


def _str(item: Mapping[str, Any], name: str) -> str:
    value = item.get(name, {})
    return str(value.get("S", "")) if isinstance(value, Mapping) else ""


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="microseconds")


class _TenantPartitionTable:
    """A table keyed ``(tenant_id, <sort key>)``: query, count and purge one tenant."""

    def __init__(self, client: DynamoDBClient, table: str, sort_key: str) -> None:
        self._db = client
        self._table = table
        self._sort_key = sort_key

    @property
    def table(self) -> str:
        return self._table

    def _query(
        self, tenant_id: str, *, keys_only: bool = False, limit: int | None = None
    ) -> Iterator[dict[str, Any]]:
        params: dict[str, Any] = {
            "TableName": self._table,
            "KeyConditionExpression": "tenant_id = :t",
            "ExpressionAttributeValues": {":t": _s(tenant_id)},
            "ConsistentRead": True,
        }
        if keys_only:
            params["ProjectionExpression"] = "tenant_id, #sk"
            params["ExpressionAttributeNames"] = {"#sk": self._sort_key}
        seen = 0
        try:
            paginator = self._db.get_paginator("query")
            for page in paginator.paginate(**params):
                for item in page.get("Items", []):
                    yield dict(item)
                    seen += 1
                    if limit is not None and seen >= limit:
                        return
        except AwsError as exc:
            raise provider_error(f"dynamodb query {self._table}", exc) from exc

    def _count(self, tenant_id: str) -> int:
        total = 0
        try:
            paginator = self._db.get_paginator("query")
            for page in paginator.paginate(
                TableName=self._table,
                KeyConditionExpression="tenant_id = :t",
                ExpressionAttributeValues={":t": _s(tenant_id)},
                Select="COUNT",
                ConsistentRead=True,
            ):
                total += int(page.get("Count", 0))
        except AwsError as exc:
            raise provider_error(f"dynamodb count {self._table}", exc) from exc
        return total

    def _put_once(self, item: Mapping[str, AttributeValueTypeDef]) -> bool:
        try:
            self._db.put_item(
                TableName=self._table,
                Item=item,
                ConditionExpression="attribute_not_exists(#sk)",
                ExpressionAttributeNames={"#sk": self._sort_key},
            )
        except AwsError as exc:
            if error_code(exc) == _CONDITION_FAILED:
                return False
            raise provider_error(f"dynamodb put {self._table}", exc) from exc
        return True

    def _purge(self, tenant_id: str) -> int:
        keys = [
            {"tenant_id": _s(tenant_id), self._sort_key: _s(_str(item, self._sort_key))}
            for item in self._query(tenant_id, keys_only=True)
        ]
        for start in range(0, len(keys), _BATCH):
            pending: list[Any] = [{"DeleteRequest": {"Key": key}} for key in keys[start : start + _BATCH]]
            for _attempt in range(8):
                try:
                    response = self._db.batch_write_item(RequestItems={self._table: pending})
                except AwsError as exc:
                    raise provider_error(f"dynamodb purge {self._table}", exc) from exc
                pending = list(response.get("UnprocessedItems", {}).get(self._table, []))
                if not pending:
                    break
            if pending:
                raise provider_error(
                    f"dynamodb purge {self._table}",
                    RuntimeError(f"{len(pending)} deletes stayed unprocessed (throttled)"),
                )
        return len(keys)


class DynamoFlaggedTransactionStore(_TenantPartitionTable):
    """``tenant_id`` (hash) / ``flagged_id`` (range); ``put`` is a conditional write."""

    def __init__(self, client: DynamoDBClient, table: str) -> None:
        super().__init__(client, table, "flagged_id")

    def put(self, record: FlaggedRecord) -> bool:
        payload = dict(record.payload)
        status = str(payload.get("status", "open"))
        item: dict[str, AttributeValueTypeDef] = {
            "tenant_id": _s(record.tenant_id),
            "flagged_id": _s(record.flagged_id),
            "payload": _s(json.dumps(payload, separators=(",", ":"), sort_keys=True, default=str)),
            "status": _s(status),
            "tenant_status": _s(f"{record.tenant_id}#{status}"),
            "created_at": _s(_now()),
        }
        score = payload.get("score")
        if isinstance(score, int | float | Decimal) and not isinstance(score, bool):
            item["score"] = {"N": str(Decimal(str(score)))}
        return self._put_once(item)

    @staticmethod
    def _record(item: Mapping[str, Any]) -> FlaggedRecord:
        return FlaggedRecord(
            tenant_id=_str(item, "tenant_id"),
            flagged_id=_str(item, "flagged_id"),
            payload=json.loads(_str(item, "payload") or "{}"),
        )

    def get(self, tenant_id: str, flagged_id: str) -> FlaggedRecord | None:
        try:
            response = self._db.get_item(
                TableName=self._table,
                Key={"tenant_id": _s(tenant_id), "flagged_id": _s(flagged_id)},
                ConsistentRead=True,
            )
        except AwsError as exc:
            raise provider_error(f"dynamodb get {self._table}", exc) from exc
        item = response.get("Item")
        return None if item is None else self._record(item)

    def list(self, tenant_id: str, limit: int = 100) -> list[FlaggedRecord]:
        """Up to ``limit`` records in flagged-id order (the table's sort key)."""
        if limit <= 0:
            return []
        return [self._record(item) for item in self._query(tenant_id, limit=limit)]

    def count(self, tenant_id: str) -> int:
        return self._count(tenant_id)

    def purge_tenant(self, tenant_id: str) -> int:
        return self._purge(tenant_id)


class DynamoRollbackLog(_TenantPartitionTable):
    """``tenant_id`` (hash) / ``rollback_id`` (range); ``append`` stores each rollback id once."""

    def __init__(self, client: DynamoDBClient, table: str) -> None:
        super().__init__(client, table, "rollback_id")

    def append(self, record: RollbackRecord) -> bool:
        item: dict[str, AttributeValueTypeDef] = {
            "tenant_id": _s(record.tenant_id),
            "rollback_id": _s(record.rollback_id),
            "at": _s(record.at),
            "reason": _s(record.reason),
            "evidence": _s(json.dumps(dict(record.evidence), sort_keys=True, default=str)),
            "weights_after": _s(json.dumps({k: int(v) for k, v in record.weights_after.items()})),
        }
        return self._put_once(item)

    def list(self, tenant_id: str, limit: int = 50) -> list[RollbackRecord]:
        """Newest first (by ``at``, then rollback id)."""
        if limit <= 0:
            return []
        records = [
            RollbackRecord(
                tenant_id=_str(item, "tenant_id"),
                rollback_id=_str(item, "rollback_id"),
                at=_str(item, "at"),
                reason=_str(item, "reason"),
                evidence=json.loads(_str(item, "evidence") or "{}"),
                weights_after={k: int(v) for k, v in json.loads(_str(item, "weights_after") or "{}").items()},
            )
            for item in self._query(tenant_id)
        ]
        records.sort(key=lambda r: (r.at, r.rollback_id), reverse=True)
        return records[:limit]

    def purge_tenant(self, tenant_id: str) -> int:
        return self._purge(tenant_id)
