"""SageMaker Training and Batch Transform jobs: request shapes on moto's server, states moto never
reaches with botocore's Stubber.

moto stores ``CreateTrainingJob`` / ``CreateTransformJob`` (and describes, lists and tags them) but
answers ``Completed`` at once, never ``InProgress`` or ``Failed``, runs no container and writes no
output: those paths are checked with the Stubber here, and with the container emulation
(``providers/aws/job_emulation.py``) in ``test_sagemaker_training_flow.py``.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber

from providers.aws.batch_jobs import SageMakerBatchRunner
from providers.aws.factory import AwsClients
from providers.aws.jobs import SageMakerTrainingBackend, training_job_name
from providers.aws.model_archive import model_archive_key
from providers.aws.object_store import S3ObjectStore
from providers.aws.settings import AwsSettings
from providers.ports import BatchScoringSpec, HostedModel, PermanentProviderError, TrainingJobSpec
from tests.aws import contracts_extra
from tests.aws.conftest import ACCOUNT, REGION

pytestmark = pytest.mark.aws

ROLE = f"arn:aws:iam::{ACCOUNT}:role/fraudrail-sagemaker"
IMAGE = f"{ACCOUNT}.dkr.ecr.{REGION}.amazonaws.com/fraudrail-inference:abc123"


def spec(tenant: str, *, spot: bool = True, job_id: str = "job_0123abcd") -> TrainingJobSpec:
    return TrainingJobSpec(
        tenant_id=tenant,
        job_id=job_id,
        dataset_key=f"tenants/{tenant}/datasets/ds_1.parquet",
        labels_key=f"tenants/{tenant}/training/{job_id}/labels/labels.json",
        request_key=f"tenants/{tenant}/training/{job_id}/config/request.json",
        output_prefix=f"tenants/{tenant}/training/{job_id}/",
        request={"algorithm": "xgboost", "seed": 3, "params": {"max_depth": 4}},
        spot=spot,
        instance_type="ml.m5.large",
        max_runtime_s=1800,
        max_wait_s=3600,
    )


def backend(sm: Any, bucket: str, **kw: Any) -> SageMakerTrainingBackend:
    return SageMakerTrainingBackend(
        sm, bucket=bucket, role_arn=ROLE, image_uri=IMAGE, kms_key_id="alias/k", **kw
    )


def count_calls(client: Any, operation: str) -> list[dict[str, Any]]:
    seen: list[dict[str, Any]] = []
    client.meta.events.register(
        f"provide-client-params.sagemaker.{operation}", lambda params, **_: seen.append(dict(params))
    )
    return seen


def test_training_job_request_on_moto(clients: AwsClients, aws_settings: AwsSettings) -> None:
    tenant = contracts_extra.new_tenant()
    creates = count_calls(clients.sagemaker, "CreateTrainingJob")
    training = backend(clients.sagemaker, aws_settings.bucket)
    s = spec(tenant)
    job = training.ensure(s)

    name = training_job_name(s.job_id)
    assert name == "fraudrail-train-job-0123abcd" or name.startswith("fraudrail-train-job-0123abcd-")
    d = clients.sagemaker.describe_training_job(TrainingJobName=name)
    assert job.arn == d["TrainingJobArn"] and job.name == name
    assert d["AlgorithmSpecification"]["TrainingImage"] == IMAGE and d["RoleArn"] == ROLE
    canonical = json.dumps(dict(s.request), sort_keys=True, separators=(",", ":")).encode()
    assert d["HyperParameters"] == {"request_sha256": hashlib.sha256(canonical).hexdigest()}
    uris = {c["ChannelName"]: c["DataSource"]["S3DataSource"]["S3Uri"] for c in d["InputDataConfig"]}
    bucket = aws_settings.bucket
    assert uris == {
        "dataset": f"s3://{bucket}/{s.dataset_key}",
        "labels": f"s3://{bucket}/{s.labels_key}",
        "config": f"s3://{bucket}/{s.request_key}",
    }
    assert all(u.startswith(f"s3://{bucket}/tenants/{tenant}/") for u in uris.values())
    assert d["OutputDataConfig"] == {
        "S3OutputPath": f"s3://{bucket}/tenants/{tenant}/training/job_0123abcd",
        "KmsKeyId": "alias/k",
    }
    assert (
        d["ResourceConfig"]["InstanceType"] == "ml.m5.large"
        and d["ResourceConfig"]["VolumeKmsKeyId"] == "alias/k"
    )
    assert d["EnableManagedSpotTraining"] is True
    assert d["StoppingCondition"] == {"MaxRuntimeInSeconds": 1800, "MaxWaitTimeInSeconds": 3600}
    assert d["CheckpointConfig"] == {
        "S3Uri": f"s3://{bucket}/tenants/{tenant}/training/job_0123abcd/checkpoints",
        "LocalPath": "/opt/ml/checkpoints",
    }
    tags = {
        t["Key"]: t["Value"] for t in clients.sagemaker.list_tags(ResourceArn=d["TrainingJobArn"])["Tags"]
    }
    assert tags["tenant_id"] == tenant and tags["fraudrail_job"] == "job_0123abcd"

    # moto completes at once; the output is where SageMaker puts it.
    assert job.state == "succeeded" and job.percent == 100.0
    assert job.output_key == f"tenants/{tenant}/training/job_0123abcd/{name}/output/model.tar.gz"
    assert job.facts["spot"] is True and job.facts["image"] == IMAGE

    # Polling again (or after a restart) describes; it never starts a second job.
    assert training.ensure(s).arn == job.arn
    assert len(creates) == 1
    assert [j["TrainingJobName"] for j in clients.sagemaker.list_training_jobs()["TrainingJobSummaries"]] == [
        name
    ]


def test_on_demand_training_has_no_spot_or_checkpoint(clients: AwsClients, aws_settings: AwsSettings) -> None:
    s = spec(contracts_extra.new_tenant(), spot=False, job_id="job_ondemand1")
    params = backend(clients.sagemaker, aws_settings.bucket).request(s)
    assert "EnableManagedSpotTraining" not in params and "CheckpointConfig" not in params
    assert params["StoppingCondition"] == {"MaxRuntimeInSeconds": 1800}
    assert params["EnableNetworkIsolation"] is True


def stubbed_sagemaker() -> tuple[Any, Stubber]:
    sm = boto3.session.Session(region_name=REGION).client("sagemaker", region_name=REGION)
    return sm, Stubber(sm)


def describe(name: str, status: str, **extra: Any) -> dict[str, Any]:
    return {
        "TrainingJobName": name,
        "TrainingJobArn": f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:training-job/{name}",
        "TrainingJobStatus": status,
        "SecondaryStatus": extra.pop("SecondaryStatus", status),
        "AlgorithmSpecification": {"TrainingImage": IMAGE, "TrainingInputMode": "File"},
        "CreationTime": "2026-12-04T00:00:00Z",
        "ModelArtifacts": {"S3ModelArtifacts": ""},
        "ResourceConfig": {"InstanceType": "ml.m5.large", "InstanceCount": 1, "VolumeSizeInGB": 30},
        "StoppingCondition": {"MaxRuntimeInSeconds": 1800},
        **extra,
    }


def test_progress_spot_interruption_and_failure_come_from_the_jobs_status() -> None:
    """States moto never reports, answered by the Stubber in the order SageMaker would."""
    sm, stub = stubbed_sagemaker()
    s = spec("ten_stub", job_id="job_stub1")
    name = training_job_name(s.job_id)
    missing = "Requested resource not found."
    stub.add_client_error(
        "describe_training_job", "ValidationException", missing, expected_params={"TrainingJobName": name}
    )
    stub.add_response("create_training_job", {"TrainingJobArn": "arn:x"}, backend(sm, "b").request(s))
    stub.add_response("describe_training_job", describe(name, "InProgress", SecondaryStatus="Downloading"))
    stub.add_response("describe_training_job", describe(name, "InProgress", SecondaryStatus="Interrupted"))
    stub.add_response("describe_training_job", describe(name, "InProgress", SecondaryStatus="Training"))
    stub.add_response(
        "describe_training_job",
        describe(name, "Failed", SecondaryStatus="Failed", FailureReason="AlgorithmError: too few days"),
    )
    with stub:
        training = backend(sm, "b", poll_s=7.0)
        first = training.ensure(s)
        assert (first.state, first.detail, first.percent, first.poll_after_s) == (
            "running",
            "Downloading",
            20.0,
            7.0,
        )
        assert training.ensure(s).detail == "Interrupted"  # spot capacity taken back: still running
        assert training.ensure(s).percent == 50.0
        failed = training.ensure(s)
        assert failed.state == "failed" and failed.detail == "AlgorithmError: too few days"
        assert failed.output_key is None
        stub.assert_no_pending_responses()


def test_a_refused_request_is_permanent() -> None:
    sm, stub = stubbed_sagemaker()
    s = spec("ten_stub", job_id="job_stub2")
    stub.add_client_error("describe_training_job", "ValidationException", "Requested resource not found.")
    stub.add_client_error(
        "create_training_job", "ValidationException", "Instance type ml.p5.48xlarge is not allowed"
    )
    with stub, pytest.raises(PermanentProviderError, match="not allowed"):
        backend(sm, "b").ensure(s)
    with pytest.raises(PermanentProviderError, match="FRAUDRAIL_AWS_SAGEMAKER_ROLE_ARN"):
        SageMakerTrainingBackend(sm, bucket="b", role_arn=None, image_uri=IMAGE).request(s)
    # A large request (a tenant's feature set) travels as a file, not as a hyperparameter.
    large = TrainingJobSpec(**{**s.__dict__, "request": {"feature_set": {"document": "y" * 30_000}}})
    params = backend(sm, "b").request(large)
    assert len(json.dumps(params["HyperParameters"])) < 200


def test_batch_transform_on_moto(clients: AwsClients, aws_settings: AwsSettings) -> None:
    tenant = contracts_extra.new_tenant()
    store = S3ObjectStore(clients.s3, aws_settings.bucket, None)
    artifact = b"FRM artifact bytes"
    model = contracts_extra.hosted(store, tenant, "mv_7", artifact)
    hosted = HostedModel(tenant, "mv_7", f"tenants/{tenant}/models/mv_7.frm", model.sha256)
    store.put(hosted.artifact_key, artifact)
    runner = SageMakerBatchRunner(
        clients.sagemaker,
        store,
        bucket=aws_settings.bucket,
        role_arn=ROLE,
        image_uri=IMAGE,
        kms_key_id="alias/k",
    )
    s = BatchScoringSpec(
        tenant_id=tenant,
        job_id="job_batch1",
        model=hosted,
        input_key=f"tenants/{tenant}/batch/job_batch1/input/mv_7.csv",
        output_prefix=f"tenants/{tenant}/batch/job_batch1/output/",
    )
    models = count_calls(clients.sagemaker, "CreateModel")
    job_name, model_name = runner.names(s)
    job = runner.ensure(s)
    assert job.state == "succeeded" and job.output_key == f"{s.output_prefix}mv_7.csv.out"
    d = clients.sagemaker.describe_transform_job(TransformJobName=job_name)
    assert d["ModelName"] == model_name and d["TransformJobArn"] == job.arn
    assert (
        d["TransformInput"]["DataSource"]["S3DataSource"]["S3Uri"]
        == f"s3://{aws_settings.bucket}/{s.input_key}"
    )
    assert (d["TransformInput"]["ContentType"], d["TransformInput"]["SplitType"]) == ("text/csv", "Line")
    assert d["TransformOutput"]["S3OutputPath"] == f"s3://{aws_settings.bucket}/{s.output_prefix.rstrip('/')}"
    assert d["TransformOutput"]["Accept"] == "text/csv" and d["TransformOutput"]["KmsKeyId"] == "alias/k"
    assert d["BatchStrategy"] == "MultiRecord" and d["MaxPayloadInMB"] == 6
    # The model it ran: the version's model.tar.gz, its digest for the container to check.
    (created,) = models
    assert created["PrimaryContainer"] == {
        "Image": IMAGE,
        "ModelDataUrl": f"s3://{aws_settings.bucket}/{model_archive_key(hosted.artifact_key)}",
        "Environment": {"FRAUDRAIL_MODEL_SHA256": hosted.sha256},
    }
    assert store.exists(model_archive_key(hosted.artifact_key))
    # The job ended: its model is gone (nothing left to bill or to leak at offboarding).
    names = [m["ModelName"] for m in clients.sagemaker.list_models()["Models"]]
    assert model_name not in names
    assert runner.ensure(s).arn == job.arn and len(models) == 1  # polling again starts nothing


def test_batch_refuses_a_tampered_artifact(clients: AwsClients, aws_settings: AwsSettings) -> None:
    tenant = contracts_extra.new_tenant()
    store = S3ObjectStore(clients.s3, aws_settings.bucket, None)
    store.put(f"tenants/{tenant}/models/mv_1.frm", b"tampered")
    hosted = HostedModel(tenant, "mv_1", f"tenants/{tenant}/models/mv_1.frm", "0" * 64)
    runner = SageMakerBatchRunner(
        clients.sagemaker, store, bucket=aws_settings.bucket, role_arn=ROLE, image_uri=IMAGE
    )
    s = BatchScoringSpec(
        tenant, "job_b2", hosted, f"tenants/{tenant}/batch/in.csv", f"tenants/{tenant}/batch/out/"
    )
    with pytest.raises(Exception, match="the registry says"):
        runner.ensure(s)
    assert clients.sagemaker.list_transform_jobs()["TransformJobSummaries"] == []
