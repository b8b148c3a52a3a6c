"""A real MLflow tracking server on loopback (SQLite backend, local artifact root), one per session.

``mlflow server`` runs from ``mlflow-skinny`` plus Flask, alembic and SQLAlchemy, all already in
the dev install (the full ``mlflow`` package pins pyarrow < 26, which conflicts with ours).
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.control_plane.conftest import (  # noqa: F401  (fixtures reused by these tests)
    admin_key,
    client,
    container,
    onboard,
    worker,
)
from tests.tcp_cut import TcpCut

READY_DEADLINE_S = 180.0  # first start migrates a fresh SQLite store; a loaded 2-core host is slow


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="session")
def mlflow_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    root = tmp_path_factory.mktemp("mlflow")
    port = free_port()
    env = {**os.environ, "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}
    log = (root / "server.log").open("wb")
    cmd = [
        str(Path(sys.executable).with_name("mlflow")),
        "server",
        "--backend-store-uri",
        f"sqlite:///{root / 'mlflow.db'}",
        "--default-artifact-root",
        str(root / "artifacts"),
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--workers",
        "1",
    ]
    proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True)
    uri = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + READY_DEADLINE_S
    try:
        while True:
            try:
                if httpx.get(f"{uri}/health", timeout=2.0).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(
                    f"MLflow server not ready after {READY_DEADLINE_S:.0f} s: "
                    + (root / "server.log").read_text()[-2000:]
                )
            try:
                # Waiting on the process paces the poll and notices an early exit.
                code = proc.wait(timeout=0.25)
                pytest.fail(f"MLflow server exited with {code}: {(root / 'server.log').read_text()[-2000:]}")
            except subprocess.TimeoutExpired:
                pass
        yield uri
    finally:
        # The CLI starts uvicorn as a child: stop the whole process group this fixture started.
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        log.close()


@pytest.fixture
def mlflow_proxy(mlflow_server: str) -> Iterator[TcpCut]:
    """A link to the MLflow server that a test can cut: MLflow unreachable, for this client only."""
    proxy = TcpCut("127.0.0.1", int(mlflow_server.rsplit(":", 1)[1]))
    yield proxy
    proxy.cut()
