"""PostgreSQL stopped under load (``pg_ctl -m immediate stop`` on a throwaway cluster): never a 500.

Keys verified before the stop keep answering fraud checks; a key never seen gets 503 with
Retry-After, and so does any route that needs the database; after a restart everything answers.
"""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from control_plane.bootstrap.state import State
from control_plane.db import make_engine
from control_plane.migrate import upgrade
from tests.control_plane.auth.test_database_outage import FakeClock
from tests.control_plane.conftest import auth
from tests.control_plane.scoring.conftest import live_tenant, sim_frame, trained_artifact, txn  # noqa: F401


@dataclass
class Cluster:
    pgbin: Path
    data: Path
    port: int

    def _pg(self, *args: str) -> None:
        as_pg = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
        # From inside the cluster's folder: postgres may not be allowed into the caller's directory.
        subprocess.run([*as_pg, *args], check=True, cwd=self.data.parent, capture_output=True)

    def start(self) -> None:
        self._pg(
            str(self.pgbin / "pg_ctl"),
            "-D",
            str(self.data),
            "-w",
            "-l",
            str(self.data.parent / "pg.log"),
            "-o",
            f"-p {self.port} -k {self.data.parent} -c listen_addresses=127.0.0.1",
            "start",
        )

    def stop(self) -> None:
        self._pg(str(self.pgbin / "pg_ctl"), "-D", str(self.data), "-m", "immediate", "stop")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def cluster() -> Iterator[Cluster]:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    if not found:
        pytest.fail(
            "no PostgreSQL binaries: run `make test` (it installs them) or apt-get install postgresql"
        )
    root = Path(tempfile.mkdtemp(prefix="fraudrail-pgstop-", dir="/tmp"))
    if os.geteuid() == 0:
        shutil.chown(root, "postgres", "postgres")
    c = Cluster(Path(found[-1]).parent, root / "pg", _free_port())
    try:
        c._pg(
            str(c.pgbin / "initdb"), "-D", str(c.data), "-U", "app", "--auth=trust", "--no-sync", "-E", "UTF8"
        )
        c.start()
        c._pg(str(c.pgbin / "createdb"), "-h", "127.0.0.1", "-p", str(c.port), "-U", "app", "fraudrail_stop")
        yield c
    finally:
        subprocess.run(
            [
                "runuser",
                "-u",
                "postgres",
                "--",
                str(c.pgbin / "pg_ctl"),
                "-D",
                str(c.data),
                "-m",
                "immediate",
                "stop",
            ],
            cwd=root,
            capture_output=True,
            check=False,
        )
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="module")
def database_url(cluster: Cluster) -> str:  # this module's own server, which the test stops
    url = f"postgresql+psycopg://app@127.0.0.1:{cluster.port}/fraudrail_stop"
    upgrade(url)
    return url


@pytest.fixture(scope="module")
def db_engine(database_url: str) -> Iterator[Engine]:
    engine = make_engine(database_url)
    yield engine
    engine.dispose()


def test_postgres_stopped_under_load_never_answers_500(
    client: TestClient,
    live_tenant: Any,  # noqa: F811
    container: State,
    cluster: Cluster,
) -> None:
    t = live_tenant()
    fresh = client.post(
        f"/v1/tenants/{t['id']}/keys", json={"scope": "app", "name": "never-used"}, headers=auth(t["admin"])
    ).json()["key"]
    clock = FakeClock()
    container.verifier.clock = clock
    assert client.post("/v1/fraud-check", json=txn("warm"), headers=auth(t["app"])).status_code == 200

    def check(i: int) -> int:
        body = txn(f"load_{i}", card_token=f"card_{i % 50}", amount=f"{10 + i % 30}.00")
        return client.post("/v1/fraud-check", json=body, headers=auth(t["app"])).status_code

    with ThreadPoolExecutor(max_workers=4) as pool:
        before = pool.map(check, range(40))
        cluster.stop()  # while checks are in flight
        clock.now += 31  # and past the key cache's TTL: verification needs the database now
        during = list(pool.map(check, range(40, 120)))
    assert list(before) == [200] * 40 and during == [200] * 80, sorted(set(during))

    for resp in (
        client.post("/v1/fraud-check", json=txn("fresh"), headers=auth(fresh)),
        client.get("/v1/models", headers=auth(t["admin"])),
        client.put("/v1/scoring-config", json={"review_threshold": "0.4"}, headers=auth(t["admin"])),
    ):
        assert resp.status_code == 503, resp.text
        assert resp.headers["content-type"] == "application/problem+json"
        assert int(resp.headers["retry-after"]) > 0

    cluster.start()
    # Pooled connections died with the server: each answers 503 once as the pool drops it.
    codes = [client.get("/v1/models", headers=auth(t["admin"])).status_code for _ in range(12)]
    assert set(codes) <= {200, 503} and codes[-1] == 200, codes
    assert client.post("/v1/fraud-check", json=txn("fresh_back"), headers=auth(fresh)).status_code == 200
