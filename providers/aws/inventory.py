"""Everything still tagged with a tenant, asked of AWS itself rather than of the tenant's stack.

A stack can be gone (or report DELETE_COMPLETE) while resources it made remain: a VPC whose
deletion hit ``DependencyViolation``, a retained bucket, a model-host endpoint made outside the
stack. The offboarding report must list them, so it reads:

* the Resource Groups Tagging API (``GetResources`` filtered by ``tenant_id``);
* EC2 VPCs and VPC endpoints by tag, and S3 buckets by their tagging (not every account or
  emulator indexes these in the tagging API);
* minus KMS keys already scheduled for deletion (their waiting period is AWS's, not ours);
* minus SageMaker job records (training and transform jobs): history that holds names and S3
  URIs of objects offboarding purged, no data; AWS offers no way to delete a transform job, and
  moto none for a training job. They are listed by :meth:`job_history` instead.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from providers.aws._util import AwsError, error_code, provider_error

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

TENANT_TAG = "tenant_id"
JOB_HISTORY = (":training-job/", ":transform-job/")
_NO_TAGS = {"NoSuchTagSet", "NoSuchTagSetError", "NoSuchBucket", "AccessDenied"}


class TaggedInventory:
    def __init__(
        self,
        tagging: Any,  # boto3 clients: resourcegroupstaggingapi, ec2, s3, kms (no type stubs installed)
        ec2: Any,
        s3: S3Client,
        kms: Any,
        *,
        bucket_prefix: str = "fraudrail",
    ) -> None:
        self._tagging = tagging
        self._ec2 = ec2
        self._s3 = s3
        self._kms = kms
        self._bucket_prefix = bucket_prefix

    def tagged(self, tenant_id: str) -> list[str]:
        """ARNs (or ``ec2:<id>`` / ``s3:<bucket>``) of live resources tagged ``tenant_id=<tenant_id>``."""
        found: dict[str, str] = {}
        try:
            for arn in self._tagging_api(tenant_id):
                found[arn] = arn
            for vpc in self._ec2_tagged("describe_vpcs", "Vpcs", "VpcId", tenant_id):
                found.setdefault(f":vpc/{vpc}", f"ec2:vpc:{vpc}")
            for endpoint in self._ec2_tagged(
                "describe_vpc_endpoints", "VpcEndpoints", "VpcEndpointId", tenant_id
            ):
                found.setdefault(f":vpc-endpoint/{endpoint}", f"ec2:vpc-endpoint:{endpoint}")
            for bucket in self._buckets(tenant_id):
                found.setdefault(f"arn:aws:s3:::{bucket}", f"s3:bucket:{bucket}")
        except AwsError as exc:
            raise provider_error(f"list the resources tagged {TENANT_TAG}={tenant_id}", exc) from exc
        # One entry per resource: an ARN found by the tagging API hides the same id found directly.
        arns = [key for key in found if key.startswith("arn:")]
        result = []
        for key, label in found.items():
            if not key.startswith("arn:") and any(arn.endswith(key) for arn in arns):
                continue
            if any(marker in label for marker in JOB_HISTORY):
                continue
            if label.startswith("arn:") and ":kms:" in label and self._key_pending_deletion(label):
                continue
            result.append(label)
        return sorted(result)

    def job_history(self, tenant_id: str) -> list[str]:
        """ARNs of the SageMaker job records tagged with the tenant (never counted as remaining)."""
        try:
            arns = self._tagging_api(tenant_id)
        except AwsError as exc:
            raise provider_error(f"list the job records of {tenant_id}", exc) from exc
        return sorted(a for a in arns if any(marker in a for marker in JOB_HISTORY))

    def _tagging_api(self, tenant_id: str) -> list[str]:
        arns: list[str] = []
        paginator = self._tagging.get_paginator("get_resources")
        for page in paginator.paginate(TagFilters=[{"Key": TENANT_TAG, "Values": [tenant_id]}]):
            arns.extend(str(m["ResourceARN"]) for m in page.get("ResourceTagMappingList", []))
        return arns

    def _ec2_tagged(self, operation: str, key: str, id_key: str, tenant_id: str) -> list[str]:
        call: Any = getattr(self._ec2, operation)
        response = call(Filters=[{"Name": f"tag:{TENANT_TAG}", "Values": [tenant_id]}])
        return [
            str(item[id_key])
            for item in response.get(key, [])
            if str(item.get("State", "available")).lower() not in {"deleted", "deleting"}
        ]

    def _buckets(self, tenant_id: str) -> list[str]:
        mine = []
        for bucket in self._s3.list_buckets().get("Buckets", []):
            name = str(bucket["Name"])
            if not name.startswith(self._bucket_prefix):
                continue
            try:
                tags = self._s3.get_bucket_tagging(Bucket=name).get("TagSet", [])
            except AwsError as exc:
                if error_code(exc) in _NO_TAGS:
                    continue
                raise
            if any(t["Key"] == TENANT_TAG and t["Value"] == tenant_id for t in tags):
                mine.append(name)
        return mine

    def _key_pending_deletion(self, arn: str) -> bool:
        try:
            state = self._kms.describe_key(KeyId=arn)["KeyMetadata"].get("KeyState")
        except AwsError as exc:
            if error_code(exc) == "NotFoundException":
                return True
            raise
        return state in {"PendingDeletion", "PendingReplicaDeletion"}
