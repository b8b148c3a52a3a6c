"""The inference container as a real process on a free loopback port, and small trained artifacts."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import numpy as np
import pytest

from fraud_model.features import FEATURE_NAMES
from fraud_model.training import TrainedModel, sha256, train_model
from tests.helpers import wait_until

REPO_ROOT = Path(__file__).resolve().parents[2]
ARTIFACT_NAME = "model.fraudrail"
START_TIMEOUT_S = 60.0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def train_small(seed: int, algorithm: str = "xgboost") -> TrainedModel:
    """A tiny but real model: 600 random rows, the label driven by two features."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(600, len(FEATURE_NAMES))).astype(np.float32)
    y = ((x[:, 0] + 0.5 * x[:, 5] + rng.normal(scale=0.5, size=600)) > 1.0).astype(np.float32)
    params = {"num_boost_round": 15 + seed} | ({"max_depth": 3} if algorithm == "xgboost" else {})
    return train_model(x, y, params=params, seed=seed, algorithm=algorithm)


def write_model(directory: Path, artifact: bytes, *, digest: str | None = "auto") -> Path:
    """``directory/model.fraudrail`` and, unless ``digest`` is None, its ``.sha256`` sidecar."""
    directory.mkdir(parents=True, exist_ok=True)
    (directory / ARTIFACT_NAME).write_bytes(artifact)
    if digest is not None:
        value = sha256(artifact) if digest == "auto" else digest
        (directory / f"{ARTIFACT_NAME}.sha256").write_text(f"{value}  {ARTIFACT_NAME}\n")
    return directory


@dataclass
class Server:
    base: str
    proc: subprocess.Popen[str]
    models_root: Path

    def client(self) -> httpx.Client:
        return httpx.Client(base_url=self.base, timeout=30)


def start(args: list[str], env: dict[str, str] | None = None) -> subprocess.Popen[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("FRAUDRAIL_", "SM_", "SAGEMAKER_"))}
    clean.update(env or {})
    return subprocess.Popen(
        [sys.executable, "-m", "inference", "serve", "--host", "127.0.0.1", *args],
        cwd=REPO_ROOT,
        env=clean,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def wait_ready(proc: subprocess.Popen[str], base: str) -> None:
    def ready() -> bool:
        if proc.poll() is not None:
            _, err = proc.communicate()
            raise AssertionError(f"inference server exited with {proc.returncode}: {err}")
        try:
            return httpx.get(f"{base}/ping", timeout=1).status_code == 200
        except httpx.TransportError:
            return False

    wait_until(ready, timeout_s=START_TIMEOUT_S, what="the inference server's /ping")


def stop(proc: subprocess.Popen[str]) -> None:
    proc.terminate()
    try:
        proc.communicate(timeout=15)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.communicate()


@pytest.fixture(scope="session")
def models() -> list[TrainedModel]:
    return [train_small(seed) for seed in range(4)]


@pytest.fixture(scope="session")
def serve(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Callable[..., Server]]:
    """Start a server: ``serve(model_dir=..., memory_budget=..., env=...)``; all stopped at the end."""
    procs: list[subprocess.Popen[str]] = []

    def _serve(
        *, model_dir: Path | None = None, memory_budget: int | None = None, env: dict[str, str] | None = None
    ) -> Server:
        root = tmp_path_factory.mktemp("models-root")
        port = free_port()
        args = ["--port", str(port), "--models-root", str(root)]
        args += ["--model-dir", str(model_dir or tmp_path_factory.mktemp("empty-model-dir"))]
        if memory_budget is not None:
            args += ["--memory-budget", str(memory_budget)]
        proc = start(args, env)
        procs.append(proc)
        base = f"http://127.0.0.1:{port}"
        wait_ready(proc, base)
        return Server(base=base, proc=proc, models_root=root)

    yield _serve
    for proc in procs:
        stop(proc)
