"""Training as SageMaker Training jobs, running the inference image (``docker run <image> train``:
``inference/train.py``), inputs and outputs under the tenant's prefix of the platform bucket,
managed spot training with a checkpoint location when the spec asks for it. Batch scoring is
``providers/aws/batch_jobs.py``; ``build_job_backends`` builds both.

Both name the job after the control plane's job id and describe before they create, so polling
again, or after a restart, never starts a second job.
"""

from __future__ import annotations

import hashlib
import json
import logging
from typing import TYPE_CHECKING, Any, Protocol

from providers.aws._util import AwsError, bounded_name, error_code, error_message, provider_error
from providers.ports import (
    ObjectStore,
    PermanentProviderError,
    ProviderError,
    RemoteJob,
    TrainingJobSpec,
)

if TYPE_CHECKING:
    from collections.abc import Callable

    from mypy_boto3_sagemaker import SageMakerClient

    from providers.aws.batch_jobs import SageMakerBatchRunner
    from providers.aws.factory import AwsClients

log = logging.getLogger(__name__)

# A training job's secondary status -> how far along it is (SageMaker reports no percentage).
TRAINING_PROGRESS = {
    "Starting": 5.0,
    "Pending": 5.0,
    "LaunchingMLInstances": 10.0,
    "PreparingTrainingStack": 15.0,
    "Downloading": 20.0,
    "DownloadingTrainingImage": 25.0,
    "Training": 50.0,
    "Interrupted": 30.0,  # spot capacity taken back: it restarts from the checkpoint
    "Restarting": 30.0,
    "Uploading": 90.0,
    "Completed": 100.0,
}
JOB_STATES: dict[str, Any] = {
    "InProgress": "running",
    "Stopping": "running",
    "Completed": "succeeded",
    "Failed": "failed",
    "Stopped": "stopped",
}


def not_found(exc: BaseException) -> bool:
    return error_code(exc) in {"ValidationException", "ResourceNotFound"} and (
        "not found" in error_message(exc).lower() or "could not find" in error_message(exc).lower()
    )


def training_job_name(job_id: str) -> str:
    return bounded_name(f"fraudrail-train-{job_id}", 63)


def job_tags(tenant_id: str, job_id: str) -> list[Any]:
    return [
        {"Key": "tenant_id", "Value": tenant_id},
        {"Key": "fraudrail_job", "Value": job_id},
        {"Key": "managed-by", "Value": "fraudrail"},
    ]


class SageMakerTrainingBackend:
    def __init__(
        self,
        sm_client: SageMakerClient,
        *,
        bucket: str,
        role_arn: str | None,
        image_uri: str | None,
        kms_key_id: str | None = None,
        volume_gb: int = 30,
        poll_s: float = 30.0,
    ) -> None:
        self._sm = sm_client
        self._bucket = bucket
        self._role_arn = role_arn
        self._image_uri = image_uri
        self._kms_key_id = kms_key_id
        self._volume_gb = volume_gb
        self._poll_s = poll_s

    def _s3(self, key: str) -> str:
        return f"s3://{self._bucket}/{key}"

    def _channel(self, name: str, key: str) -> dict[str, Any]:
        return {
            "ChannelName": name,
            "DataSource": {
                "S3DataSource": {
                    "S3DataType": "S3Prefix",
                    "S3Uri": self._s3(key),
                    "S3DataDistributionType": "FullyReplicated",
                }
            },
            "InputMode": "File",
        }

    def request(self, spec: TrainingJobSpec) -> dict[str, Any]:
        """The ``CreateTrainingJob`` parameters for ``spec``."""
        if not self._role_arn or not self._image_uri:
            raise PermanentProviderError(
                "SageMaker training needs an execution role and the inference image "
                "(FRAUDRAIL_AWS_SAGEMAKER_ROLE_ARN, FRAUDRAIL_AWS_INFERENCE_IMAGE_URI)"
            )
        request = json.dumps(dict(spec.request), sort_keys=True, separators=(",", ":"))
        stopping: dict[str, Any] = {"MaxRuntimeInSeconds": spec.max_runtime_s}
        params: dict[str, Any] = {
            "TrainingJobName": training_job_name(spec.job_id),
            "AlgorithmSpecification": {"TrainingImage": self._image_uri, "TrainingInputMode": "File"},
            "RoleArn": self._role_arn,
            # The request travels as a file (channel "config"): a feature set outgrows hyperparameters.
            "HyperParameters": {"request_sha256": hashlib.sha256(request.encode()).hexdigest()},
            "InputDataConfig": [
                self._channel("dataset", spec.dataset_key),
                self._channel("labels", spec.labels_key),
                self._channel("config", spec.request_key),
            ],
            "OutputDataConfig": {"S3OutputPath": self._s3(spec.output_prefix.rstrip("/"))},
            "ResourceConfig": {
                "InstanceType": spec.instance_type,
                "InstanceCount": 1,
                "VolumeSizeInGB": self._volume_gb,
            },
            "StoppingCondition": stopping,
            "EnableNetworkIsolation": True,  # the code reads only its channels: no network at all
            "Tags": job_tags(spec.tenant_id, spec.job_id),
        }
        if self._kms_key_id:
            params["OutputDataConfig"]["KmsKeyId"] = self._kms_key_id
            params["ResourceConfig"]["VolumeKmsKeyId"] = self._kms_key_id
        if spec.spot:
            params["EnableManagedSpotTraining"] = True
            stopping["MaxWaitTimeInSeconds"] = max(spec.max_wait_s, spec.max_runtime_s)
            params["CheckpointConfig"] = {
                "S3Uri": self._s3(f"{spec.output_prefix}checkpoints"),
                "LocalPath": "/opt/ml/checkpoints",
            }
        return params

    def ensure(self, spec: TrainingJobSpec, progress: Callable[..., None] | None = None) -> RemoteJob:
        del progress  # the job's status is the progress (see TRAINING_PROGRESS)
        name = training_job_name(spec.job_id)
        described = self._describe(name)
        if described is None:
            params = self.request(spec)
            try:
                self._sm.create_training_job(**params)
            except AwsError as exc:
                if error_code(exc) == "ValidationException":
                    raise PermanentProviderError(
                        f"sagemaker create_training_job {name}: {error_message(exc)}"
                    ) from exc
                raise provider_error(f"sagemaker create_training_job {name}", exc) from exc
            log.info("started SageMaker training job %s for %s (spot: %s)", name, spec.tenant_id, spec.spot)
            described = self._describe(name)
            if described is None:
                raise ProviderError(f"training job {name} was created but cannot be described yet")
        return self._remote(described)

    def _describe(self, name: str) -> dict[str, Any] | None:
        try:
            return dict(self._sm.describe_training_job(TrainingJobName=name))
        except AwsError as exc:
            if not_found(exc):
                return None
            raise provider_error(f"sagemaker describe_training_job {name}", exc) from exc

    def _remote(self, d: dict[str, Any]) -> RemoteJob:
        status, secondary = str(d.get("TrainingJobStatus")), str(d.get("SecondaryStatus", ""))
        state = JOB_STATES.get(status, "running")
        artifacts = str((d.get("ModelArtifacts") or {}).get("S3ModelArtifacts", ""))
        prefix = f"s3://{self._bucket}/"
        facts: dict[str, Any] = {
            "image": (d.get("AlgorithmSpecification") or {}).get("TrainingImage"),
            "spot": bool(d.get("EnableManagedSpotTraining", False)),
        }
        for field, fact in (
            ("BillableTimeInSeconds", "billable_seconds"),
            ("TrainingTimeInSeconds", "training_seconds"),
        ):
            if d.get(field) is not None:
                facts[fact] = int(d[field])
        return RemoteJob(
            name=str(d["TrainingJobName"]),
            state=state,
            arn=str(d.get("TrainingJobArn")) or None,
            detail=str(d.get("FailureReason") or secondary or status),
            percent=100.0 if state == "succeeded" else TRAINING_PROGRESS.get(secondary, 5.0),
            output_key=artifacts[len(prefix) :]
            if state == "succeeded" and artifacts.startswith(prefix)
            else None,
            facts=facts,
            poll_after_s=self._poll_s,
        )


class JobRuntime(Protocol):
    @property
    def sagemaker_role_arn(self) -> str | None: ...
    @property
    def inference_image_uri(self) -> str | None: ...
    @property
    def kms_key_id(self) -> str | None: ...
    @property
    def job_poll_s(self) -> float: ...
    @property
    def batch_instance_type(self) -> str: ...
    @property
    def emulate_job_containers(self) -> bool: ...


def build_job_backends(
    clients: AwsClients, bucket: str, rt: JobRuntime, store: ObjectStore, *, endpoint_url: str | None
) -> tuple[SageMakerTrainingBackend, SageMakerBatchRunner]:
    from providers.aws.batch_jobs import SageMakerBatchRunner

    """Training jobs and Batch Transform on SageMaker, running the inference image."""
    if rt.emulate_job_containers:
        if not endpoint_url:
            raise ValueError(
                "FRAUDRAIL_AWS_EMULATE_JOB_CONTAINERS is for an emulator: set FRAUDRAIL_AWS_ENDPOINT_URL, "
                "or unset it on AWS (SageMaker runs the image itself)"
            )
        from providers.aws.job_emulation import ContainerJobEmulator

        ContainerJobEmulator(clients.s3).install(clients.sagemaker)
    training = SageMakerTrainingBackend(
        clients.sagemaker,
        bucket=bucket,
        role_arn=rt.sagemaker_role_arn,
        image_uri=rt.inference_image_uri,
        kms_key_id=rt.kms_key_id,
        poll_s=rt.job_poll_s,
    )
    batch = SageMakerBatchRunner(
        clients.sagemaker,
        store,
        bucket=bucket,
        role_arn=rt.sagemaker_role_arn,
        image_uri=rt.inference_image_uri,
        instance_type=rt.batch_instance_type,
        kms_key_id=rt.kms_key_id,
        poll_s=rt.job_poll_s,
    )
    return training, batch
