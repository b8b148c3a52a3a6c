"""What SageMaker does with the image, for an emulator that only records the jobs (moto).

moto stores ``CreateTrainingJob`` / ``CreateTransformJob`` and answers ``Completed`` at once, but
runs no container (it would need Docker) and writes no output. With
``FRAUDRAIL_AWS_EMULATE_JOB_CONTAINERS=true`` (refused without ``FRAUDRAIL_AWS_ENDPOINT_URL``) this
module hooks the SageMaker client and, right after each create call, does what SageMaker would:

- training: downloads the job's channels (and checkpoints) from S3 into SageMaker's ``/opt/ml``
  layout in a temporary folder, runs the image's entry point ``python -m inference train`` as a
  process, uploads ``model/`` as ``<S3OutputPath>/<job>/output/model.tar.gz`` and the checkpoints;
- transform: downloads the model's ``ModelDataUrl``, starts ``python -m inference serve`` with it,
  posts each input file's lines to ``/invocations`` as ``text/csv`` and writes ``<file>.out``.

The first ``pending_polls`` describes of each job answer ``InProgress`` (moto never does), so the
control plane's re-polling runs; a container that failed answers ``Failed`` with the reason it
wrote to ``/opt/ml/output/failure``. Every emulated job is logged at WARNING: never silent.
"""

from __future__ import annotations

import io
import json
import logging
import os
import posixpath
import socket
import subprocess
import sys
import tarfile
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from botocore.awsrequest import AWSResponse, HTTPHeaders

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_sagemaker import SageMakerClient

log = logging.getLogger(__name__)


def _split_s3(uri: str) -> tuple[str, str]:
    bucket, _, key = uri.removeprefix("s3://").partition("/")
    return bucket, key


@dataclass
class _Emulated:
    kind: str  # training | transform
    arn: str
    request: Mapping[str, Any]
    polls_left: int
    failure: str | None = None
    log_tail: list[str] = field(default_factory=list)


class ContainerJobEmulator:
    def __init__(self, s3: S3Client, *, pending_polls: int = 1, timeout_s: float = 600.0) -> None:
        self._s3 = s3
        self._pending_polls = pending_polls
        self._timeout_s = timeout_s
        self._sm: SageMakerClient | None = None
        self._requests: dict[str, Mapping[str, Any]] = {}
        self.jobs: dict[str, _Emulated] = {}

    def install(self, sm: SageMakerClient) -> ContainerJobEmulator:
        self._sm = sm
        events = sm.meta.events
        for op in ("CreateTrainingJob", "CreateTransformJob"):
            events.register(f"provide-client-params.sagemaker.{op}", self._remember)
            events.register(f"after-call.sagemaker.{op}", self._after_create)
        for op in ("DescribeTrainingJob", "DescribeTransformJob"):
            events.register(f"before-call.sagemaker.{op}", self._before_describe)
        log.warning("SageMaker job containers are EMULATED in this process (moto runs none)")
        return self

    # -- hooks -------------------------------------------------------------------------------
    def _remember(self, params: dict[str, Any], model: Any, **_: Any) -> None:
        name = params.get("TrainingJobName") or params.get("TransformJobName")
        self._requests[f"{model.name}:{name}"] = dict(params)

    def _after_create(self, http_response: Any, parsed: dict[str, Any], model: Any, **_: Any) -> None:
        if getattr(http_response, "status_code", 500) >= 300 or "Error" in parsed:
            return
        training = model.name == "CreateTrainingJob"
        key = "TrainingJobName" if training else "TransformJobName"
        request = next(
            (r for k, r in reversed(self._requests.items()) if k.startswith(f"{model.name}:")), None
        )
        if request is None:
            return
        name = str(request[key])
        arn = str(parsed.get("TrainingJobArn") or parsed.get("TransformJobArn"))
        job = _Emulated("training" if training else "transform", arn, request, self._pending_polls)
        self.jobs[name] = job
        log.warning("emulating the container of SageMaker %s job %s", job.kind, name)
        try:
            if training:
                self._train(name, job)
            else:
                self._transform(name, job)
        except Exception as exc:  # what SageMaker would report as the job's failure
            job.failure = f"{type(exc).__name__}: {exc}"
            log.warning("emulated %s job %s failed: %s", job.kind, name, job.failure)

    def _before_describe(self, model: Any, params: Mapping[str, Any], **_: Any) -> Any:
        body = params.get("body") or {}
        if isinstance(body, bytes | str):
            body = json.loads(body or b"{}")
        training = model.name == "DescribeTrainingJob"
        name = body.get("TrainingJobName" if training else "TransformJobName")
        job = self.jobs.get(str(name))
        if job is None:
            return None
        prefix = "Training" if training else "Transform"
        if job.polls_left > 0:
            job.polls_left -= 1
            status, extra = "InProgress", {"SecondaryStatus": "Training"} if training else {}
        elif job.failure is not None:
            status, extra = "Failed", {"FailureReason": job.failure[:1024]}
        else:
            return None  # moto's own answer: Completed
        parsed = {
            f"{prefix}JobName": name,
            f"{prefix}JobArn": job.arn,
            f"{prefix}JobStatus": status,
            **extra,
            "ResponseMetadata": {"HTTPStatusCode": 200},
        }
        if training:
            parsed["AlgorithmSpecification"] = dict(job.request.get("AlgorithmSpecification") or {})
            parsed["EnableManagedSpotTraining"] = bool(job.request.get("EnableManagedSpotTraining", False))
        return AWSResponse("https://emulated", 200, HTTPHeaders(), None), parsed

    # -- S3 ----------------------------------------------------------------------------------
    def _download_prefix(self, uri: str, target: Path) -> int:
        bucket, prefix = _split_s3(uri)
        count = 0
        for page in self._s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
            for obj in page.get("Contents", []):
                key = str(obj["Key"])
                rel = key[len(prefix) :].lstrip("/") or posixpath.basename(key)
                path = target / rel
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_bytes(self._s3.get_object(Bucket=bucket, Key=key)["Body"].read())
                count += 1
        return count

    def _upload_dir(self, directory: Path, uri: str) -> None:
        bucket, prefix = _split_s3(uri.rstrip("/"))
        for path in sorted(p for p in directory.rglob("*") if p.is_file()):
            key = f"{prefix}/{path.relative_to(directory).as_posix()}"
            self._s3.put_object(Bucket=bucket, Key=key, Body=path.read_bytes())

    # -- the containers ----------------------------------------------------------------------
    def _train(self, name: str, job: _Emulated) -> None:
        request = job.request
        with tempfile.TemporaryDirectory(prefix="sm-train-") as tmp:
            root = Path(tmp)
            for channel in request.get("InputDataConfig") or []:
                uri = channel["DataSource"]["S3DataSource"]["S3Uri"]
                if self._download_prefix(uri, root / "input/data" / channel["ChannelName"]) == 0:
                    raise RuntimeError(f"channel {channel['ChannelName']}: no object under {uri}")
            (root / "input/config").mkdir(parents=True, exist_ok=True)
            (root / "input/config/hyperparameters.json").write_text(
                json.dumps(request.get("HyperParameters") or {})
            )
            checkpoint = (request.get("CheckpointConfig") or {}).get("S3Uri")
            if checkpoint:
                self._download_prefix(checkpoint, root / "checkpoints")
            done = subprocess.run(  # noqa: S603 - our own entry point, fixed arguments
                [sys.executable, "-m", "inference", "train", "--ml-root", str(root)],
                capture_output=True,
                text=True,
                timeout=self._timeout_s,
                env={**os.environ, "PYTHONHASHSEED": "0"},
                check=False,
            )
            job.log_tail = (done.stdout + done.stderr).splitlines()[-20:]
            if checkpoint and (root / "checkpoints").is_dir():
                self._upload_dir(root / "checkpoints", checkpoint)
            if done.returncode != 0:
                failure = root / "output/failure"
                raise RuntimeError(failure.read_text() if failure.is_file() else "\n".join(job.log_tail))
            buffer = io.BytesIO()
            with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
                for path in sorted(p for p in (root / "model").rglob("*") if p.is_file()):
                    tar.add(path, arcname=path.relative_to(root / "model").as_posix())
            output = str(request["OutputDataConfig"]["S3OutputPath"]).rstrip("/")
            bucket, key = _split_s3(f"{output}/{name}/output/model.tar.gz")
            self._s3.put_object(Bucket=bucket, Key=key, Body=buffer.getvalue())

    def _transform(self, name: str, job: _Emulated) -> None:
        assert self._sm is not None
        request = job.request
        container = self._sm.describe_model(ModelName=str(request["ModelName"]))["PrimaryContainer"]
        with tempfile.TemporaryDirectory(prefix="sm-transform-") as tmp:
            root = Path(tmp)
            bucket, key = _split_s3(str(container["ModelDataUrl"]))
            (root / "model").mkdir()
            (root / "model/model.tar.gz").write_bytes(
                self._s3.get_object(Bucket=bucket, Key=key)["Body"].read()
            )
            self._download_prefix(
                request["TransformInput"]["DataSource"]["S3DataSource"]["S3Uri"], root / "input"
            )
            with socket.socket() as probe:
                probe.bind(("127.0.0.1", 0))
                port = probe.getsockname()[1]
            env = {**os.environ, **dict(container.get("Environment") or {})}
            server = subprocess.Popen(  # noqa: S603 - our own entry point, fixed arguments
                [
                    sys.executable,
                    "-m",
                    "inference",
                    "serve",
                    "--host",
                    "127.0.0.1",
                    "--port",
                    str(port),
                    "--model-dir",
                    str(root / "model"),
                    "--models-root",
                    str(root / "none"),
                ],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
                env=env,
            )
            try:
                self._wait_ping(server, port)
                output = str(request["TransformOutput"]["S3OutputPath"]).rstrip("/")
                for path in sorted(p for p in (root / "input").rglob("*") if p.is_file()):
                    scores = self._invoke(port, path.read_bytes())
                    out_bucket, out_key = _split_s3(f"{output}/{path.name}.out")
                    self._s3.put_object(Bucket=out_bucket, Key=out_key, Body=scores)
            finally:
                server.terminate()
                server.wait(timeout=10)

    def _wait_ping(self, server: subprocess.Popen[bytes], port: int) -> None:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if server.poll() is not None:
                raise RuntimeError(
                    f"the inference container exited: {(server.stderr or io.BytesIO()).read()[-500:]!r}"
                )
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/ping", timeout=1) as answer:
                    if answer.status == 200:
                        return
            except OSError:
                time.sleep(0.05)  # the container is still starting: SageMaker waits for /ping too
        raise RuntimeError("the inference container never answered /ping")

    @staticmethod
    def _invoke(port: int, body: bytes) -> bytes:
        request = urllib.request.Request(
            f"http://127.0.0.1:{port}/invocations",
            data=body,
            headers={"Content-Type": "text/csv", "Accept": "text/csv"},
            method="POST",
        )
        try:
            with urllib.request.urlopen(request, timeout=60) as answer:  # noqa: S310
                return bytes(answer.read())
        except urllib.error.HTTPError as exc:
            raise RuntimeError(f"/invocations answered {exc.code}: {exc.read()[:500]!r}") from exc
