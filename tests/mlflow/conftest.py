"""A real MLflow tracking server on loopback (SQLite backend, local artifact root), one per session.

``mlflow server`` runs from ``mlflow-skinny`` plus Flask, alembic and SQLAlchemy, all already in
the dev install (the full ``mlflow`` package pins pyarrow < 26, which conflicts with ours).
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import threading
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


class SwitchableProxy:
    """A TCP forwarder on loopback in front of the real MLflow server that a test can cut.

    ``down()`` closes the listening socket and every forwarded connection, so clients get a
    refused connection, as from a tracker that is unreachable; ``up()`` listens again on the same
    port.
    """

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.port = free_port()
        self._listener: socket.socket | None = None
        self._conns: list[socket.socket] = []
        self._lock = threading.Lock()

    @property
    def uri(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def up(self) -> None:
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(16)
        self._listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()

    def down(self) -> None:
        with self._lock:
            listener, self._listener = self._listener, None
            conns, self._conns = self._conns, []
        for s in [listener, *conns]:
            if s is not None:
                with contextlib.suppress(OSError):
                    s.shutdown(socket.SHUT_RDWR)
                s.close()

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return  # closed by down()
            upstream = socket.create_connection(("127.0.0.1", self.target_port))
            with self._lock:
                self._conns += [client, upstream]
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    @staticmethod
    def _pipe(src: socket.socket, dst: socket.socket) -> None:
        try:
            while data := src.recv(65536):
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                with contextlib.suppress(OSError):
                    s.shutdown(socket.SHUT_RDWR)


@pytest.fixture
def mlflow_proxy(mlflow_server: str) -> Iterator[SwitchableProxy]:
    proxy = SwitchableProxy(int(mlflow_server.rsplit(":", 1)[1]))
    proxy.up()
    yield proxy
    proxy.down()
