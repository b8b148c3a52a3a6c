"""What deleting a tenant's stack leaves behind on purpose, removed by offboarding.

The premium stack retains its silo bucket and KMS key (``RemovalPolicy.RETAIN``: a mistaken stack
deletion must not destroy a tenant's data). Offboarding is the deliberate deletion, so after the
stack is gone the provisioner empties and deletes the retained buckets (every object version)
and schedules the retained keys for deletion (the shortest waiting period AWS allows; a key
pending deletion can no longer be used, and the tag inventory no longer counts it).
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from providers.aws._util import AwsError, error_code, provider_error

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

log = logging.getLogger(__name__)

RETAINED_TYPES = ("AWS::S3::Bucket", "AWS::KMS::Key")
KEY_PENDING_WINDOW_DAYS = 7
_GONE = {"NoSuchBucket", "NotFoundException", "KMSInvalidStateException"}


class RetainedResources:
    def __init__(self, s3: S3Client, kms: Any) -> None:
        self._s3 = s3
        self._kms = kms  # boto3 KMS client (no type stubs installed)

    @staticmethod
    def of(stack_resources: list[dict[str, Any]]) -> list[tuple[str, str]]:
        """(type, physical id) of the stack's buckets and keys, read before the stack is deleted."""
        return [
            (str(r["ResourceType"]), str(r["PhysicalResourceId"]))
            for r in stack_resources
            if r.get("ResourceType") in RETAINED_TYPES and r.get("PhysicalResourceId")
        ]

    def remove(self, retained: list[tuple[str, str]]) -> list[str]:
        removed = []
        for kind, physical in retained:
            try:
                if kind == "AWS::S3::Bucket":
                    self._delete_bucket(physical)
                    removed.append(f"s3:bucket:{physical}")
                else:
                    self._kms.schedule_key_deletion(
                        KeyId=physical, PendingWindowInDays=KEY_PENDING_WINDOW_DAYS
                    )
                    removed.append(f"kms:key:{physical}")
            except AwsError as exc:
                if error_code(exc) in _GONE:
                    continue
                raise provider_error(f"remove retained {kind} {physical}", exc) from exc
        return removed

    def _delete_bucket(self, bucket: str) -> None:
        paginator = self._s3.get_paginator("list_object_versions")
        for page in paginator.paginate(Bucket=bucket):
            doomed = [
                {"Key": v["Key"], "VersionId": v["VersionId"]}
                for v in [*page.get("Versions", []), *page.get("DeleteMarkers", [])]
            ]
            for start in range(0, len(doomed), 1000):
                self._s3.delete_objects(Bucket=bucket, Delete={"Objects": doomed[start : start + 1000]})  # type: ignore[typeddict-item]
        self._s3.delete_bucket(Bucket=bucket)
        log.info("deleted the retained bucket %s", bucket)
