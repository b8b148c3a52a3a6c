"""Batch scoring as a SageMaker Batch Transform job (``SageMakerBatchRunner``): the inference image's
``serve`` with the version's ``model.tar.gz``; SageMaker posts the input CSV's lines to
``/invocations`` and writes the scores to ``<output prefix><input file>.out``. The job is named
after the control plane's job and the version, and described before it is created, so polling
again, or after a restart, never starts a second one.
"""

from __future__ import annotations

import logging
import posixpath
from typing import TYPE_CHECKING, Any

from providers.aws._util import AwsError, bounded_name, error_code, error_message, provider_error, short_hash
from providers.aws.jobs import JOB_STATES, job_tags, not_found
from providers.aws.sagemaker_models import ensure_sagemaker_model
from providers.ports import BatchScoringSpec, ObjectStore, PermanentProviderError, ProviderError, RemoteJob

if TYPE_CHECKING:
    from mypy_boto3_sagemaker import SageMakerClient

log = logging.getLogger(__name__)


class SageMakerBatchRunner:
    """Batch Transform with a SageMaker model made for the version (``ModelDataUrl``: its
    ``model.tar.gz``); the model is deleted once the job has ended."""

    def __init__(
        self,
        sm_client: SageMakerClient,
        store: ObjectStore,
        *,
        bucket: str,
        role_arn: str | None,
        image_uri: str | None,
        instance_type: str = "ml.m5.large",
        kms_key_id: str | None = None,
        poll_s: float = 30.0,
    ) -> None:
        self._sm = sm_client
        self._store = store
        self._bucket = bucket
        self._role_arn = role_arn
        self._image_uri = image_uri
        self._instance_type = instance_type
        self._kms_key_id = kms_key_id
        self._poll_s = poll_s

    @staticmethod
    def names(spec: BatchScoringSpec) -> tuple[str, str]:
        """(transform job, model) names: one per (control-plane job, version)."""
        base = f"fraudrail-batch-{spec.job_id}-{short_hash(spec.model.version_id, 8)}"
        return bounded_name(base, 63), bounded_name(f"{base}-model", 63)

    def output_key(self, spec: BatchScoringSpec) -> str:
        return f"{spec.output_prefix}{posixpath.basename(spec.input_key)}.out"

    def request(self, spec: BatchScoringSpec, model_name: str) -> dict[str, Any]:
        job, _ = self.names(spec)
        output: dict[str, Any] = {
            "S3OutputPath": f"s3://{self._bucket}/{spec.output_prefix.rstrip('/')}",
            "Accept": "text/csv",
            "AssembleWith": "Line",
        }
        if self._kms_key_id:
            output["KmsKeyId"] = self._kms_key_id
        return {
            "TransformJobName": job,
            "ModelName": model_name,
            "BatchStrategy": "MultiRecord",
            "MaxPayloadInMB": 6,  # the inference container's body limit
            "TransformInput": {
                "DataSource": {
                    "S3DataSource": {
                        "S3DataType": "S3Prefix",
                        "S3Uri": f"s3://{self._bucket}/{spec.input_key}",
                    }
                },
                "ContentType": "text/csv",
                "SplitType": "Line",
            },
            "TransformOutput": output,
            "TransformResources": {"InstanceType": self._instance_type, "InstanceCount": 1},
            "Tags": job_tags(spec.tenant_id, spec.job_id),
        }

    def _model(self, spec: BatchScoringSpec, name: str) -> None:
        if not self._role_arn or not self._image_uri:
            raise PermanentProviderError(
                "SageMaker batch scoring needs an execution role and the inference image "
                "(FRAUDRAIL_AWS_SAGEMAKER_ROLE_ARN, FRAUDRAIL_AWS_INFERENCE_IMAGE_URI)"
            )
        ensure_sagemaker_model(
            self._sm,
            self._store,
            name,
            spec.model,
            bucket=self._bucket,
            role_arn=self._role_arn,
            image_uri=self._image_uri,
            tags=job_tags(spec.tenant_id, spec.job_id),
            network_isolation=True,
        )

    def ensure(self, spec: BatchScoringSpec) -> RemoteJob:
        job, model = self.names(spec)
        described = self._describe(job)
        if described is None:
            self._model(spec, model)
            try:
                self._sm.create_transform_job(**self.request(spec, model))
            except AwsError as exc:
                if error_code(exc) == "ValidationException":
                    raise PermanentProviderError(
                        f"sagemaker create_transform_job {job}: {error_message(exc)}"
                    ) from exc
                raise provider_error(f"sagemaker create_transform_job {job}", exc) from exc
            described = self._describe(job)
            if described is None:
                raise ProviderError(f"transform job {job} was created but cannot be described yet")
        status = str(described.get("TransformJobStatus"))
        state = JOB_STATES.get(status, "running")
        if state != "running":
            self._delete_model(model)
        return RemoteJob(
            name=job,
            state=state,
            arn=str(described.get("TransformJobArn")) or None,
            detail=str(described.get("FailureReason") or status),
            percent=100.0 if state == "succeeded" else 50.0,
            output_key=self.output_key(spec) if state == "succeeded" else None,
            facts={"model": model, "instance_type": self._instance_type},
            poll_after_s=self._poll_s,
        )

    def _describe(self, name: str) -> dict[str, Any] | None:
        try:
            return dict(self._sm.describe_transform_job(TransformJobName=name))
        except AwsError as exc:
            if not_found(exc):
                return None
            raise provider_error(f"sagemaker describe_transform_job {name}", exc) from exc

    def _delete_model(self, name: str) -> None:
        try:
            self._sm.delete_model(ModelName=name)
        except AwsError as exc:
            if not not_found(exc):
                log.warning("could not delete the batch model %s: %s", name, error_message(exc))
