"""The benchmarks' servers as subprocesses (the control plane, the floor app, Redis) and their
set-up through the API and the database."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
from _common import PY, REPO, free_port


def bench_templates(home: Path) -> Path:
    """A copy of tenant_templates/ whose rate limits cannot bind: the benchmark measures serving
    capacity, not a tier's quota (standard: 200 req/s). The limiter still runs on every request."""
    out = home / "tenant_templates"
    out.mkdir(parents=True, exist_ok=True)
    for src in (REPO / "tenant_templates").glob("*.json"):
        template = json.loads(src.read_text())
        template["quotas"]["rps"] = 1_000_000
        template["quotas"]["burst"] = 2_000_000
        template["quotas"]["daily_requests"] = 1_000_000_000
        (out / src.name).write_text(json.dumps(template, indent=2))
    return out


class Server:
    """A subprocess serving HTTP on 127.0.0.1:port; output goes to a log file."""

    def __init__(self, name: str, cmd: list[str], port: int, log_path: Path, env: dict[str, str]):
        self.name, self.cmd, self.port, self.log_path = name, cmd, port, log_path
        self.env = {**os.environ, "PYTHONUNBUFFERED": "1", **env}
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int:
        if self.proc is None:
            raise RuntimeError(f"{self.name} has not been started")
        return self.proc.pid

    def start(self, ready_path: str = "/healthz", timeout_s: float = 180.0) -> Server:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("ab") as out:
            self.proc = subprocess.Popen(
                self.cmd, cwd=REPO, env=self.env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
            )
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.name} exited with {self.proc.returncode}; see {self.log_path}")
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(self.url + ready_path, timeout=1.0).status_code < 500:
                    return self
            time.sleep(0.1)
        raise RuntimeError(f"{self.name} not ready after {timeout_s:.0f} s; see {self.log_path}")

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=5)

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""


def control_plane(
    home: Path, port: int, *, log_name: str, real_quotas: bool = False, **settings: str
) -> Server:
    """``fraudrail serve`` (python -m control_plane.cli serve) with FRAUDRAIL_* settings; the tiers'
    rate limits lifted unless ``real_quotas``."""
    templates = REPO / "tenant_templates" if real_quotas else bench_templates(home)
    env = {
        "FRAUDRAIL_HOME": str(home),
        "FRAUDRAIL_PORT": str(port),
        "FRAUDRAIL_TENANT_TEMPLATES_DIR": str(templates),
    }
    env.update({f"FRAUDRAIL_{k.upper()}": v for k, v in settings.items()})
    cmd = [PY, "-m", "control_plane.cli", "serve"]
    return Server("control plane", cmd, port, home / log_name, env)


def floor_server(port: int, log_path: Path, workers: int = 1) -> Server:
    cmd = [PY, str(REPO / "bench" / "floor_app.py"), "--port", str(port), "--workers", str(workers)]
    return Server("floor", cmd, port, log_path, {})


def admin_key(server: Server) -> str:
    for line in server.log_text().splitlines():
        if line.startswith("FRAUDRAIL_ADMIN_KEY="):
            return line.split("=", 1)[1].strip()
    raise RuntimeError(f"no FRAUDRAIL_ADMIN_KEY line in {server.log_path}")


@contextlib.contextmanager
def redis_url() -> Iterator[str]:
    """FRAUDRAIL_TEST_REDIS_URL when set (make bench-scoring), else a throwaway redis-server."""
    url = os.environ.get("FRAUDRAIL_TEST_REDIS_URL")
    if url:
        yield url
        return
    exe = shutil.which("redis-server")
    if exe is None:
        raise RuntimeError("no FRAUDRAIL_TEST_REDIS_URL and no redis-server (apt-get install redis-server)")
    port = free_port()
    proc = subprocess.Popen(
        [exe, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
                break
            time.sleep(0.05)
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        proc.terminate()
        proc.wait(timeout=10)


# --- set-up through the API and the database ---------------------------------------------------


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def onboard(base: str, admin: str, slug: str, tier: str = "standard") -> dict[str, str]:
    """POST /v1/tenants, wait until the worker made it ACTIVE, create an app key."""
    body = {
        "name": f"{slug} Ltd",
        "slug": slug,
        "tier": tier,
        "region": "eu-west-1",
        "budget": {"amount": "2500.00" if tier != "trial" else "400.00", "currency": "USD"},
        "contacts": {
            "email": "ops@example.com",
            "slack_webhook_url": "https://hooks.slack.com/services/T/B/X",
        },
    }
    with httpx.Client(base_url=base, timeout=30) as http:
        r = http.post("/v1/tenants", json=body, headers=auth(admin))
        r.raise_for_status()
        data = r.json()
        tid, tadmin = data["tenant"]["id"], data["admin_key"]["key"]
        deadline = time.monotonic() + 60
        while http.get(f"/v1/tenants/{tid}", headers=auth(tadmin)).json()["status"] != "ACTIVE":
            if time.monotonic() > deadline:
                raise RuntimeError(f"tenant {tid} not ACTIVE after 60 s")
            time.sleep(0.1)
        r = http.post(f"/v1/tenants/{tid}/keys", json={"scope": "app", "name": "bench"}, headers=auth(tadmin))
        r.raise_for_status()
        return {"id": tid, "admin": tadmin, "app": r.json()["key"]}


def session_factory(home: Path) -> Any:
    import control_plane.models  # noqa: F401  (every mapper)
    from control_plane.db import make_engine, make_session_factory

    return make_session_factory(make_engine(f"sqlite:///{home / 'fraudrail.db'}"))


def store_artifact(home: Path, key: str, artifact: bytes | Path) -> None:
    """Write an artifact into the local object store (a hard link when given a file)."""
    path = home / "objects" / key
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(artifact, Path):
        try:
            os.link(artifact, path)
        except OSError:
            shutil.copyfile(artifact, path)
    else:
        path.write_bytes(artifact)


def model_row(tenant_id: str, version_id: str, key: str, digest: str, stage: str) -> Any:
    """A model_versions row as training leaves it (gate passed), at ``stage``."""
    from control_plane.registry.orm import ModelVersion
    from fraud_model.features import FEATURE_SET_VERSION

    return ModelVersion(
        id=version_id,
        tenant_id=tenant_id,
        stage=stage,
        artifact_key=key,
        sha256=digest,
        feature_set_version=FEATURE_SET_VERSION,
        code_version="bench",
        params={},
        metrics={"auc_roc": 0.9},
        gate={"passed": True},
        analyst_labels=0,
    )


def register_model(factory: Any, home: Path, tenant_id: str, version_id: str, artifact: bytes) -> str:
    """Artifact into <home>/objects/tenants/<id>/models/<mv>.frm and an APPROVED row."""
    from control_plane.db import unit_of_work
    from fraud_model.training import sha256

    key = f"tenants/{tenant_id}/models/{version_id}.frm"
    store_artifact(home, key, artifact)
    with unit_of_work(factory) as s:
        s.add(model_row(tenant_id, version_id, key, sha256(artifact), "APPROVED"))
    return version_id


def promote(base: str, tenant_admin: str, version_id: str) -> None:
    r = httpx.post(f"{base}/v1/models/{version_id}/promote", headers=auth(tenant_admin), timeout=60)
    if r.status_code != 200:
        raise RuntimeError(f"promote {version_id}: {r.status_code} {r.text}")


class Sink:
    """A webhook receiver on 127.0.0.1 standing in for the tenant's Slack (answers 200 "ok");
    keeps every text it is sent."""

    def __init__(self) -> None:
        self.texts: list[str] = []
        sink = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length", 0) or 0))
                sink.texts.append(body.decode(errors="replace"))
                self.send_response(200)
                self.send_header("content-length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *_: Any) -> None:
                return

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/slack"

    @property
    def posts(self) -> int:
        return len(self.texts)

    def close(self) -> None:
        self.server.shutdown()
