"""`fraudrail serve` from nothing: embedded defaults, the admin key printed once, the README walk-through."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from control_plane.settings import REPO_ROOT
from tests.helpers import wait_until


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _start(home: Path, port: int) -> subprocess.Popen[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("FRAUDRAIL_")}
    env.update({"FRAUDRAIL_HOME": str(home), "FRAUDRAIL_PORT": str(port)})
    return subprocess.Popen(
        [sys.executable, "-m", "control_plane.cli", "serve"],
        cwd=REPO_ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )


def _admin_key(proc: subprocess.Popen[str]) -> str | None:
    assert proc.stdout is not None
    for line in proc.stdout:
        if line.startswith("FRAUDRAIL_ADMIN_KEY="):
            return line.strip().split("=", 1)[1]
        if line.startswith("Fraudrail control plane on"):
            return None
    raise AssertionError("serve exited before it was ready")


@pytest.fixture
def server(tmp_path: Path) -> Iterator[tuple[str, str, Path]]:
    port = _free_port()
    home = tmp_path / "fraudrail-home"
    proc = _start(home, port)
    try:
        key = _admin_key(proc)
        assert key is not None
        base = f"http://127.0.0.1:{port}"

        def ready() -> bool:
            try:
                return httpx.get(f"{base}/healthz", timeout=1).status_code == 200
            except httpx.TransportError:
                return False

        wait_until(ready, timeout_s=30, what="the server to answer /healthz")
        yield base, key, home
    finally:
        proc.terminate()
        proc.wait(timeout=20)


def test_walkthrough_onboard_key_offboard(server: tuple[str, str, Path]) -> None:
    base, admin, home = server
    assert (home / "fraudrail.db").exists()
    h = {"Authorization": f"Bearer {admin}"}
    with httpx.Client(base_url=base, headers=h, timeout=10) as http:
        created = http.post(
            "/v1/tenants",
            json={
                "name": "Acme Payments",
                "slug": "acme-pay",
                "tier": "standard",
                "region": "eu-west-1",
                "budget": {"amount": "2500.00", "currency": "USD"},
                "contacts": {"email": "fraud-ops@acme.example"},
            },
        )
        assert created.status_code == 202, created.text
        tenant_id = created.json()["tenant"]["id"]

        def active() -> bool:
            return bool(http.get(f"/v1/tenants/{tenant_id}").json()["status"] == "ACTIVE")

        wait_until(active, timeout_s=20, what="the in-process worker to provision the tenant")
        tenant_admin = {"Authorization": f"Bearer {created.json()['admin_key']['key']}"}
        app_key = http.post(
            f"/v1/tenants/{tenant_id}/keys", json={"scope": "app", "name": "checkout"}, headers=tenant_admin
        )
        assert app_key.status_code == 201
        assert http.get("/docs").status_code == 200
        assert "/v1/tenants" in http.get("/openapi.json").json()["paths"]

        report = http.delete(f"/v1/tenants/{tenant_id}")
        assert report.status_code == 200, report.text
        assert report.json()["all_empty"] is True


def test_admin_key_is_printed_only_on_first_start(tmp_path: Path) -> None:
    home = tmp_path / "home"
    for expect_key in (True, False):
        proc = _start(home, _free_port())
        try:
            key = _admin_key(proc)
            assert (key is not None) == expect_key
        finally:
            proc.terminate()
            proc.wait(timeout=20)
