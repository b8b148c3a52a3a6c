"""Adapt a synthesized template to moto's CloudFormation (tests and local emulation only).

moto 5.2 skips resource types it does not model, but a ``Ref`` / ``Fn::GetAtt`` to a skipped
resource crashes the whole stack; it reads ``AWS::SSM::Parameter`` tags as a list although
CloudFormation defines them as a map, and KMS key tags as TagKey/TagValue; it keeps a KMS key's
policy object unserialised, so DescribeKey on it fails. It also ignores
``EndpointName`` (the endpoint gets a generated name; the stacks' outputs use GetAtt, so they
report the real one). ``moto_compatible_template`` removes the skipped resources and everything
that refers to them (transitively, outputs included) and rewrites the tags.
Never deploy its result to real AWS: it drops the Studio domain, the cache, budgets and alarms.
"""

from __future__ import annotations

import copy
import io
import json
import re
import zipfile
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from botocore.exceptions import ClientError

# Types moto 5.2's CloudFormation does not model (tests/cdk checks this list against moto).
MOTO_UNSUPPORTED_TYPES = frozenset(
    {
        "AWS::ApplicationAutoScaling::ScalableTarget",
        "AWS::ApplicationAutoScaling::ScalingPolicy",
        "AWS::Budgets::Budget",
        "AWS::CloudWatch::Alarm",
        "AWS::Cognito::UserPool",
        "AWS::Cognito::UserPoolClient",
        "AWS::Cognito::UserPoolDomain",
        "AWS::EC2::SecurityGroupEgress",
        "AWS::ElastiCache::ReplicationGroup",
        "AWS::ElastiCache::SubnetGroup",
        "AWS::Lambda::EventInvokeConfig",
        "AWS::S3::BucketPolicy",
        "AWS::SNS::Subscription",
        "AWS::SQS::QueuePolicy",
        "AWS::SageMaker::Domain",
        "AWS::SageMaker::UserProfile",
        "AWS::SecretsManager::Secret",
        "AWS::SecretsManager::SecretTargetAttachment",
        "AWS::WAFv2::WebACL",
        "AWS::WAFv2::WebACLAssociation",
    }
)

_SUB_REFERENCE = re.compile(r"\$\{([A-Za-z0-9]+)(?:\.[^}]*)?\}")


def references(value: Any) -> Iterator[str]:
    """Logical ids that a template fragment refers to (Ref, Fn::GetAtt, Fn::Sub)."""
    if isinstance(value, dict):
        for key, item in value.items():
            if key == "Ref" and isinstance(item, str):
                yield item
            elif key == "Fn::GetAtt":
                target = item[0] if isinstance(item, list) else str(item).split(".", 1)[0]
                yield str(target)
            elif key == "Fn::Sub":
                text = item[0] if isinstance(item, list) else item
                if isinstance(text, str):
                    yield from _SUB_REFERENCE.findall(text)
                if isinstance(item, list):
                    yield from references(item[1:])
            else:
                yield from references(item)
    elif isinstance(value, list):
        for item in value:
            yield from references(item)


def _depends_on(resource: dict[str, Any]) -> list[str]:
    depends = resource.get("DependsOn", [])
    return [depends] if isinstance(depends, str) else list(depends)


def moto_compatible_template(
    template: dict[str, Any], unsupported_types: Iterable[str] = MOTO_UNSUPPORTED_TYPES
) -> dict[str, Any]:
    """A copy of ``template`` that moto's CloudFormation can create."""
    result = copy.deepcopy(template)
    resources: dict[str, dict[str, Any]] = result.get("Resources", {})
    skipped = set(unsupported_types)
    removed = {rid for rid, resource in resources.items() if resource.get("Type") in skipped}
    changed = True
    while changed:
        changed = False
        for rid, resource in resources.items():
            if rid not in removed and removed.intersection(references(resource.get("Properties", {}))):
                removed.add(rid)
                changed = True
    for rid in removed:
        del resources[rid]
    for resource in resources.values():
        kept = [rid for rid in _depends_on(resource) if rid not in removed]
        if "DependsOn" in resource:
            if kept:
                resource["DependsOn"] = kept
            else:
                del resource["DependsOn"]
        tags = resource.get("Properties", {}).get("Tags")
        if resource.get("Type") == "AWS::SSM::Parameter" and isinstance(tags, dict):
            resource["Properties"]["Tags"] = [{"Key": k, "Value": v} for k, v in tags.items()]
        elif resource.get("Type") == "AWS::KMS::Key" and isinstance(tags, list):
            # moto passes CloudFormation's Key/Value tags to the KMS API, which wants TagKey/TagValue.
            resource["Properties"]["Tags"] = [
                {"TagKey": t["Key"], "TagValue": t["Value"]} if "Key" in t else t for t in tags
            ]
        policy = resource.get("Properties", {}).get("KeyPolicy")
        if resource.get("Type") == "AWS::KMS::Key" and isinstance(policy, dict):
            # moto stores the policy object as is and DescribeKey then fails parsing it (HTTP 500).
            resource["Properties"]["KeyPolicy"] = json.dumps(policy)
    outputs = result.get("Outputs", {})
    for output_id in [oid for oid, output in outputs.items() if removed.intersection(references(output))]:
        del outputs[output_id]
    return result


def publish_file_assets(
    assembly_dir: Path, artifact_id: str, s3: Any, *, account: str, region: str
) -> list[str]:
    """Upload a stack's file assets (the Lambda zip) where its template expects them, as ``cdk deploy`` would.

    ``s3`` is a boto3 S3 client (moto's, in tests); the bootstrap bucket is created when missing.
    Returns the ``s3://bucket/key`` URLs written.
    """
    manifest = json.loads((assembly_dir / f"{artifact_id}.assets.json").read_text(encoding="utf-8"))
    written: list[str] = []
    for asset in manifest.get("files", {}).values():
        source = asset["source"]
        path = assembly_dir / source["path"]
        if source.get("packaging") == "zip":
            body = _zip_directory(path)
        elif source["path"].endswith(".template.json"):
            continue  # the template itself is passed to CreateStack
        else:
            body = path.read_bytes()
        for destination in asset["destinations"].values():
            bucket = (
                destination["bucketName"]
                .replace("${AWS::AccountId}", account)
                .replace("${AWS::Region}", region)
            )
            _ensure_bucket(s3, bucket, region)
            s3.put_object(Bucket=bucket, Key=destination["objectKey"], Body=body)
            written.append(f"s3://{bucket}/{destination['objectKey']}")
    return written


def _ensure_bucket(s3: Any, bucket: str, region: str) -> None:
    try:
        s3.head_bucket(Bucket=bucket)
    except ClientError:
        if region == "us-east-1":
            s3.create_bucket(Bucket=bucket)
        else:
            s3.create_bucket(Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": region})


def _zip_directory(directory: Path) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for path in sorted(directory.rglob("*")):
            if path.is_file():
                archive.write(path, path.relative_to(directory).as_posix())
    return buffer.getvalue()
