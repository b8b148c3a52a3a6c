"""A SageMaker model for one registered version: the inference image with the version's verified
``model.tar.gz`` (``ModelDataUrl``) and its sha256, which the container checks again at start.
Hosting (``model_host_endpoint``) and Batch Transform (``batch_jobs``) both make theirs here."""

from __future__ import annotations

from typing import TYPE_CHECKING

from providers.aws._util import AwsError, error_message, provider_error
from providers.aws.model_archive import ensure_model_archive
from providers.aws.model_host_records import not_found
from providers.ports import HostedModel, ObjectStore

if TYPE_CHECKING:
    from mypy_boto3_sagemaker import SageMakerClient
    from mypy_boto3_sagemaker.type_defs import TagTypeDef


def ensure_sagemaker_model(
    sm: SageMakerClient,
    store: ObjectStore,
    name: str,
    model: HostedModel,
    *,
    bucket: str,
    role_arn: str,
    image_uri: str,
    tags: list[TagTypeDef],
    network_isolation: bool = False,
) -> None:
    """Create the SageMaker model ``name`` for ``model`` unless it exists (made by an earlier,
    interrupted attempt, or by a concurrent one between our describe and create). The archive
    is uploaded first if it is not there yet, once its artifact's sha256 matches the registry's."""
    try:
        sm.describe_model(ModelName=name)
        return
    except AwsError as exc:
        if not not_found(exc):
            raise provider_error(f"sagemaker describe_model {name}", exc) from exc
    archive = ensure_model_archive(store, model)  # SageMaker downloads a model.tar.gz
    try:
        sm.create_model(
            ModelName=name,
            ExecutionRoleArn=role_arn,
            PrimaryContainer={
                "Image": image_uri,
                "ModelDataUrl": f"s3://{bucket}/{archive}",
                "Environment": {"FRAUDRAIL_MODEL_SHA256": model.sha256.lower()},
            },
            EnableNetworkIsolation=network_isolation,
            Tags=tags,
        )
    except AwsError as exc:
        if "already exist" in error_message(exc).lower():
            return
        raise provider_error(f"sagemaker create_model {name}", exc) from exc
