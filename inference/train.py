"""``python -m inference train``: what a SageMaker Training job runs (``docker run <image> train``).

SageMaker's training contract, under ``--ml-root`` (``/opt/ml`` in the job):

| path | what |
| --- | --- |
| ``input/data/config/`` | ``request.json``: ``fraud_model.pipeline.run_training``'s request |
| ``input/config/hyperparameters.json`` | ``{"request_sha256": …}`` (checked), or ``{"request": "<JSON>"}`` |
| ``input/data/dataset/`` | the dataset (one parquet file, from the tenant's prefix) |
| ``input/data/labels/`` | analysts' verdicts ``{txn_id: 0 or 1}`` (one JSON file) |
| ``checkpoints/`` | kept across a spot interruption: the finished search and the trained model |
| ``model/`` | the outputs; SageMaker uploads them as ``model.tar.gz`` |
| ``output/failure`` | why the run failed (SageMaker shows it as the job's ``FailureReason``) |

Exit status 0 on success, 1 on a failure written to ``output/failure``.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import os
import sys
from pathlib import Path
from typing import Any

log = logging.getLogger("inference.train")

EXIT_FAILED = 1


def _one_file(channel: Path, suffixes: tuple[str, ...]) -> Path | None:
    files = sorted(p for p in channel.rglob("*") if p.is_file() and p.name.endswith(suffixes))
    if len(files) > 1:
        raise ValueError(f"channel {channel.name} holds {len(files)} files; expected one")
    return files[0] if files else None


def _request(ml_root: Path) -> dict[str, Any]:
    hyper = json.loads((ml_root / "input/config/hyperparameters.json").read_text())
    config = (
        _one_file(ml_root / "input/data/config", (".json",))
        if (ml_root / "input/data/config").is_dir()
        else None
    )
    if config is not None:
        request = json.loads(config.read_text())
    else:
        request = (
            json.loads(hyper["request"]) if isinstance(hyper.get("request"), str) else hyper.get("request")
        )
    if not isinstance(request, dict):
        raise ValueError("no 'request' object (config channel or hyperparameters.json)")
    expected = hyper.get("request_sha256")
    canonical = json.dumps(request, sort_keys=True, separators=(",", ":")).encode()
    if expected and hashlib.sha256(canonical).hexdigest() != expected:
        raise ValueError("the config channel's request.json does not match the job's request_sha256")
    return request


def run(ml_root: Path) -> int:
    # Imported here: `--help` must not pay for pandas and the learners.
    import pandas as pd

    from fraud_model.pipeline import run_training, write_model_dir

    failure = ml_root / "output" / "failure"
    try:
        request = _request(ml_root)
        dataset = _one_file(ml_root / "input/data/dataset", (".parquet",))
        if dataset is None:
            raise ValueError("the dataset channel is empty")
        labels_file = _one_file(ml_root / "input/data/labels", (".json",))
        labels = json.loads(labels_file.read_text()) if labels_file else {}
        frame = pd.read_parquet(dataset)

        def progress(phase: str, percent: float, **extra: Any) -> None:
            # One JSON line per phase: CloudWatch Logs keeps it, a metric definition can read it.
            print(
                json.dumps({"phase": phase, "percent": round(percent, 1), **extra}, default=str), flush=True
            )

        outputs = run_training(frame, labels, request, progress=progress, checkpoints=ml_root / "checkpoints")
        write_model_dir(outputs, ml_root / "model")
    except Exception as exc:  # every failure must reach SageMaker's FailureReason
        failure.parent.mkdir(parents=True, exist_ok=True)
        failure.write_text(f"{type(exc).__name__}: {exc}"[:1024])
        log.exception("training failed")
        return EXIT_FAILED
    print(json.dumps({"phase": "done", "percent": 100, "sha256": outputs.sha256}), flush=True)
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="fraudrail-inference train", description=__doc__.splitlines()[0])
    parser.add_argument("--ml-root", type=Path, default=Path(os.environ.get("FRAUDRAIL_ML_ROOT", "/opt/ml")))
    args = parser.parse_args(argv)
    logging.basicConfig(
        level="INFO", format="%(asctime)s %(levelname)s %(name)s %(message)s", stream=sys.stderr
    )
    return run(args.ml_root)
