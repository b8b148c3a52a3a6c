"""``python -m inference train``: SageMaker's training contract, run as the job would run it (a
process, the ``/opt/ml`` layout in a temporary folder), and the same outputs as the in-process run."""

from __future__ import annotations

import hashlib
import io
import json
import subprocess
import sys
import tarfile
from pathlib import Path

import pandas as pd
import pytest

from fraud_model.pipeline import ARTIFACT_NAME, TrainingOutputs, pack_outputs, read_outputs, run_training
from fraud_model.simulator import simulate
from fraud_model.training import TrainedModel, sha256
from tests.inference.conftest import REPO_ROOT

REQUEST = {
    "algorithm": "xgboost",
    "params": {"num_boost_round": 20, "max_depth": 3},
    "seed": 3,
    "test_days": 7,
}


@pytest.fixture(scope="module")
def frame() -> pd.DataFrame:
    return simulate(250, 500, 35, start_date="2026-05-01", seed=5)


def lay_out(root: Path, frame: pd.DataFrame, request: dict[str, object], labels: dict[str, int]) -> None:
    (root / "input/config").mkdir(parents=True)
    (root / "input/config/hyperparameters.json").write_text(json.dumps({"request": json.dumps(request)}))
    (root / "input/data/dataset").mkdir(parents=True)
    frame.to_parquet(root / "input/data/dataset/ds_1.parquet")
    (root / "input/data/labels").mkdir(parents=True)
    (root / "input/data/labels/labels.json").write_text(json.dumps(labels))


def run_train(root: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "inference", "train", "--ml-root", str(root)],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def test_train_writes_what_the_in_process_run_computes(tmp_path: Path, frame: pd.DataFrame) -> None:
    flipped = str(frame["txn_id"].iloc[0])
    labels = {flipped: 1 - int(frame["is_fraud"].iloc[0])}
    lay_out(tmp_path, frame, REQUEST, labels)
    done = run_train(tmp_path)
    assert done.returncode == 0, done.stderr[-2000:]
    model_dir = tmp_path / "model"
    names = sorted(p.name for p in model_dir.iterdir())
    assert names == ["evaluation.json", "model.frm", "model.frm.sha256", "profile.json"]
    artifact = (model_dir / ARTIFACT_NAME).read_bytes()
    assert (model_dir / "model.frm.sha256").read_text().split()[0] == sha256(artifact)
    phases = [json.loads(line)["phase"] for line in done.stdout.splitlines() if line.startswith("{")]
    # Boosting rounds report "train" several times (its percent advancing): phases in order, once each.
    assert [p for i, p in enumerate(phases) if i == 0 or p != phases[i - 1]] == [
        "features",
        "train",
        "evaluate",
        "done",
    ]

    local = run_training(frame, labels, REQUEST)
    assert local.artifact == artifact  # same code, same seed: the same model byte for byte
    evaluation = json.loads((model_dir / "evaluation.json").read_text())
    assert evaluation == json.loads(json.dumps(local.evaluation)) and evaluation["analyst_labels"] == 1
    assert TrainedModel.from_bytes(artifact).params["num_boost_round"] == 20

    # The packed form round-trips (what the control plane reads from model.tar.gz).
    back = read_outputs(pack_outputs(local))
    assert back.sha256 == local.sha256 and back.evaluation == local.evaluation


def test_a_restarted_spot_job_resumes_from_its_checkpoint(tmp_path: Path, frame: pd.DataFrame) -> None:
    lay_out(tmp_path, frame, REQUEST, {})
    assert run_train(tmp_path).returncode == 0
    checkpoint = tmp_path / "checkpoints" / ARTIFACT_NAME
    first = checkpoint.read_bytes()
    assert first == (tmp_path / "model" / ARTIFACT_NAME).read_bytes()
    # A spot interruption after training: SageMaker restores checkpoints/ and runs train again.
    (tmp_path / "model" / ARTIFACT_NAME).unlink()
    again = run_train(tmp_path)
    assert again.returncode == 0, again.stderr[-2000:]
    phases = [json.loads(line)["phase"] for line in again.stdout.splitlines() if line.startswith("{")]
    assert "train" not in phases and phases[-1] == "done"  # no second training
    assert (tmp_path / "model" / ARTIFACT_NAME).read_bytes() == first


@pytest.mark.parametrize(
    ("breakage", "reason"),
    [
        ("no-dataset", "the dataset channel is empty"),
        ("too-short", "too few days"),
        ("bad-request", "no 'request' object"),
        ("config-mismatch", "does not match the job's request_sha256"),
    ],
)
def test_failures_reach_sagemakers_failure_reason(
    tmp_path: Path, frame: pd.DataFrame, breakage: str, reason: str
) -> None:
    lay_out(tmp_path, frame, REQUEST, {})
    if breakage == "no-dataset":
        (tmp_path / "input/data/dataset/ds_1.parquet").unlink()
    elif breakage == "too-short":
        (tmp_path / "input/config/hyperparameters.json").write_text(
            json.dumps({"request": json.dumps({**REQUEST, "test_days": 30, "delay_days": 10})})
        )
    elif breakage == "config-mismatch":  # the request as SageMaker passes it: a file, and its digest
        (tmp_path / "input/data/config").mkdir(parents=True)
        (tmp_path / "input/data/config/request.json").write_text(json.dumps({**REQUEST, "seed": 4}))
        canonical = json.dumps(REQUEST, sort_keys=True, separators=(",", ":")).encode()
        digest = hashlib.sha256(canonical).hexdigest()
        (tmp_path / "input/config/hyperparameters.json").write_text(json.dumps({"request_sha256": digest}))
    else:
        (tmp_path / "input/config/hyperparameters.json").write_text(json.dumps({"epochs": "3"}))
    done = run_train(tmp_path)
    assert done.returncode == 1
    assert reason in (tmp_path / "output/failure").read_text()
    assert not (tmp_path / "model" / ARTIFACT_NAME).exists()


def test_a_tampered_or_truncated_archive_is_refused() -> None:
    good = TrainingOutputs(artifact=b"artifact-bytes", evaluation={"metrics": {}}, profile={})
    members = {}
    with tarfile.open(fileobj=io.BytesIO(pack_outputs(good)), mode="r:gz") as tar:
        for member in tar.getmembers():
            handle = tar.extractfile(member)
            assert handle is not None
            members[member.name] = handle.read()
    members[ARTIFACT_NAME] = b"artifact-bytez"  # the digest file still names the original
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    with pytest.raises(ValueError, match=r"does not match its \.sha256"):
        read_outputs(buffer.getvalue())
    with pytest.raises(ValueError, match="readable archive"):
        read_outputs(pack_outputs(good)[:40])
