"""Object store on S3: SSE-KMS when a key is given, keys exactly as the port names them."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from providers.aws._util import AwsError, error_code, provider_error
from providers.ports import ProviderError

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client


class PartialDeleteError(ProviderError):
    """Some keys of a prefix could not be deleted; ``deleted`` says how many were."""

    def __init__(self, message: str, deleted: int) -> None:
        super().__init__(message)
        self.deleted = deleted


_MISSING = {"NoSuchKey", "404", "NotFound"}
_DELETE_BATCH = 1000  # DeleteObjects takes at most 1,000 keys


class S3ObjectStore:
    def __init__(
        self,
        client: S3Client,
        bucket: str,
        kms_key_id: str | None,
        *,
        page_size: int = 1000,
        delete_batch: int = _DELETE_BATCH,
    ) -> None:
        if not 1 <= delete_batch <= _DELETE_BATCH:
            raise ValueError(f"delete_batch must be 1..{_DELETE_BATCH} (DeleteObjects' limit)")
        self._s3 = client
        self._bucket = bucket
        self._kms_key_id = kms_key_id
        self._page_size = page_size
        self._delete_batch = delete_batch

    @property
    def bucket(self) -> str:
        return self._bucket

    def url(self, key: str) -> str:
        return f"s3://{self._bucket}/{key}"

    def put(self, key: str, data: bytes) -> None:
        extra: dict[str, Any] = {}
        if self._kms_key_id:
            extra = {"ServerSideEncryption": "aws:kms", "SSEKMSKeyId": self._kms_key_id}
        try:
            self._s3.put_object(Bucket=self._bucket, Key=key, Body=data, **extra)
        except AwsError as exc:
            raise provider_error(f"s3 put {key}", exc) from exc

    def get(self, key: str) -> bytes:
        try:
            response = self._s3.get_object(Bucket=self._bucket, Key=key)
            return response["Body"].read()
        except AwsError as exc:
            if error_code(exc) in _MISSING:
                raise KeyError(key) from exc
            raise provider_error(f"s3 get {key}", exc) from exc

    def exists(self, key: str) -> bool:
        try:
            self._s3.head_object(Bucket=self._bucket, Key=key)
        except AwsError as exc:
            if error_code(exc) in _MISSING:
                return False
            raise provider_error(f"s3 head {key}", exc) from exc
        return True

    def _objects(self, prefix: str) -> list[tuple[str, int]]:
        found: list[tuple[str, int]] = []
        try:
            paginator = self._s3.get_paginator("list_objects_v2")
            pages = paginator.paginate(
                Bucket=self._bucket, Prefix=prefix, PaginationConfig={"PageSize": self._page_size}
            )
            for page in pages:
                found.extend(
                    (obj["Key"], int(obj.get("Size", 0))) for obj in page.get("Contents", []) if "Key" in obj
                )
        except AwsError as exc:
            raise provider_error(f"s3 list {prefix}", exc) from exc
        return sorted(found)

    def list(self, prefix: str) -> list[str]:
        return [key for key, _ in self._objects(prefix)]

    def total_bytes(self, prefix: str) -> int:
        return sum(size for _, size in self._objects(prefix))

    def delete_prefix(self, prefix: str) -> int:
        if not prefix:
            raise ValueError("refusing to delete the whole bucket (empty prefix)")
        keys = self.list(prefix)
        deleted = 0
        for start in range(0, len(keys), self._delete_batch):
            batch = keys[start : start + self._delete_batch]
            try:
                response = self._s3.delete_objects(
                    Bucket=self._bucket,
                    Delete={"Objects": [{"Key": k} for k in batch], "Quiet": True},
                )
            except AwsError as exc:
                raise provider_error(f"s3 delete {prefix}", exc) from exc
            errors = response.get("Errors", [])
            if errors:
                first = errors[0]
                raise PartialDeleteError(
                    f"s3 delete {prefix}: {len(errors)} key(s) not deleted, e.g. "
                    f"{first.get('Key')}: {first.get('Code')} {first.get('Message')}",
                    deleted + len(batch) - len(errors),
                )
            deleted += len(batch)
        return deleted
