"""Two real `fraudrail serve` processes on one PostgreSQL and one Redis (as `make test` starts them).

The module's cluster gets a database of its own, a Redis logical database and a bus stream prefix
of its own, and one FRAUDRAIL_HOME shared by both servers (the object store holding model
artifacts, and the spool root whose per-process directories a restarted server takes over).
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest
import redis
from sqlalchemy import create_engine, make_url, text

from control_plane.bootstrap.admin_key import ensure_admin_key
from control_plane.db import make_engine, make_session_factory
from control_plane.migrate import upgrade
from control_plane.settings import REPO_ROOT
from tests.conftest import make_url_redis
from tests.helpers import wait_until
from tests.tcp_cut import TcpCut

START_TIMEOUT_S = 120.0  # imports dominate; a loaded 2-core machine needs most of it


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _required(name: str) -> str:
    value = os.environ.get(name)
    if not value:
        pytest.fail(f"{name} is not set: run `make test` (it starts PostgreSQL and Redis on loopback)")
    return value


@dataclass
class Server:
    """One `fraudrail serve` process (restartable on another process id, same port and home)."""

    name: str
    env: dict[str, str]
    logs: Path
    port: int = field(default_factory=free_port)
    proc: subprocess.Popen[bytes] | None = None
    starts: int = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, **extra_env: str) -> Server:
        self.starts += 1
        env = {**self.env, "FRAUDRAIL_PORT": str(self.port), **extra_env}
        out = (self.logs / f"{self.name}-{self.starts}.log").open("wb")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "control_plane.cli", "serve"],
            cwd=REPO_ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
        out.close()
        return self

    def wait_ready(self) -> Server:
        def ready() -> bool:
            assert self.proc is not None
            if self.proc.poll() is not None:
                raise AssertionError(f"{self.name} exited with {self.proc.returncode}: {self.log_tail()}")
            try:
                return httpx.get(f"{self.url}/healthz", timeout=1).status_code == 200
            except httpx.TransportError:
                return False

        wait_until(ready, timeout_s=START_TIMEOUT_S, what=f"{self.name} to answer /healthz")
        return self

    def kill9(self) -> int:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        return self.proc.wait(timeout=30)

    def wait_exit(self, timeout_s: float) -> int:
        assert self.proc is not None
        return self.proc.wait(timeout=timeout_s)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)

    def log_tail(self, chars: int = 3000) -> str:
        text_ = (self.logs / f"{self.name}-{self.starts}.log").read_bytes().decode(errors="replace")
        return text_[-chars:]


@dataclass
class Cluster:
    a: Server
    b: Server
    admin: str
    home: Path
    database_url: str
    redis_url: str
    prefix: str
    a_bus_link: TcpCut

    def client(self, server: Server, token: str) -> httpx.Client:
        return httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {token}"}, timeout=30)


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    base_db = _required("FRAUDRAIL_TEST_DATABASE_URL")
    base_redis = _required("FRAUDRAIL_TEST_REDIS_URL")
    name = f"fraudrail_mp{os.getpid()}_{uuid.uuid4().hex[:8]}"
    admin_engine = create_engine(base_db, isolation_level="AUTOCOMMIT")
    with admin_engine.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    database_url = make_url(base_db).set(database=name).render_as_string(hide_password=False)
    # A logical database apart from the in-process tests' (1 + pid % 15), and a stream prefix of
    # its own, so concurrent runs on one Redis never consume each other's events.
    redis_url = make_url_redis(base_redis, 1 + (os.getpid() + 7) % 15)
    prefix = f"fraudrail:mp:{uuid.uuid4().hex[:8]}:"
    upgrade(database_url)  # once, before two servers would race to migrate
    engine = make_engine(database_url)
    admin = ensure_admin_key(make_session_factory(engine))
    engine.dispose()
    assert admin is not None
    home = tmp_path_factory.mktemp("shared-home")
    templates = _slow_trial_templates(tmp_path_factory.mktemp("templates"))
    logs = tmp_path_factory.mktemp("server-logs")
    env = {k: v for k, v in os.environ.items() if not k.startswith("FRAUDRAIL_")}
    env.update(
        FRAUDRAIL_HOME=str(home),
        FRAUDRAIL_DATABASE_URL=database_url,
        FRAUDRAIL_CACHE_BACKEND="redis",
        FRAUDRAIL_REDIS_URL=redis_url,
        FRAUDRAIL_CACHE_TIMEOUT_MS="200",
        FRAUDRAIL_BUS_BACKEND="redis",
        FRAUDRAIL_BUS_STREAM_PREFIX=prefix,
        FRAUDRAIL_BUS_CLAIM_IDLE_S="2",
        # A worker that dies mid-job leaves a lease the other server's worker takes over this soon.
        FRAUDRAIL_JOB_LEASE_S="3",
        FRAUDRAIL_TENANT_TEMPLATES_DIR=str(templates),
    )
    # a's bus goes through a link the kill -9 test cuts (a Redis outage for a alone).
    redis_at = urlsplit(redis_url)
    cut = TcpCut(redis_at.hostname or "127.0.0.1", redis_at.port or 6379)
    a = Server("a", {**env, "FRAUDRAIL_BUS_REDIS_URL": cut.url("redis", redis_at.path)}, logs).start()
    b = Server("b", env, logs).start()
    try:
        a.wait_ready()
        b.wait_ready()
        yield Cluster(a, b, admin, home, database_url, redis_url, prefix, cut)
    finally:
        stoppers = [threading.Thread(target=s.stop) for s in (a, b)]
        for t in stoppers:
            t.start()
        for t in stoppers:
            t.join()
        cut.cut()
        streams = redis.Redis.from_url(redis_url)
        for key in streams.scan_iter(match=prefix + "*"):
            streams.delete(key)
        streams.close()
        with admin_engine.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin_engine.dispose()


TRIAL_RPS, TRIAL_BURST = 0.5, 6


def _slow_trial_templates(folder: Path) -> Path:
    """The tier templates with a trial bucket small enough that a loaded machine still outruns it."""
    for source in (REPO_ROOT / "tenant_templates").iterdir():
        (folder / source.name).write_bytes(source.read_bytes())
    trial = json.loads((folder / "trial.json").read_text())
    trial["quotas"].update(rps=TRIAL_RPS, burst=TRIAL_BURST)
    (folder / "trial.json").write_text(json.dumps(trial))
    return folder
