"""A full or failing spool disk: a flagged answer only once its record is written whole; else 503."""

from __future__ import annotations

import errno
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from control_plane.bootstrap.state import State
from control_plane.scoring.spool import FlaggedSpool, SpoolUnavailable
from tests.conftest import IN_CI
from tests.control_plane.conftest import auth
from tests.control_plane.scoring.conftest import LiveFn, txn


class ShortWrites:
    """A spool file that takes ``take`` bytes of the next write, then fails with ``error``."""

    def __init__(self, real: Any, take: int, error: OSError | None) -> None:
        self.real, self.take, self.error, self.calls = real, take, error, 0

    def write(self, data: memoryview) -> int:
        self.calls += 1
        if self.calls == 1:
            return int(self.real.write(data[: self.take]))
        if self.error is not None:
            raise self.error
        return int(self.real.write(data))

    def __getattr__(self, name: str) -> Any:
        return getattr(self.real, name)


def record(i: int) -> dict[str, Any]:
    return {"tenant_id": "ten_x", "flagged_id": f"flg_{i}", "payload": {"n": i, "pad": "x" * 200}}


def lines_of(spool: FlaggedSpool) -> list[bytes]:
    return [line for seg in spool.segments() for line in seg.read_bytes().splitlines(keepends=True)]


def test_a_short_write_then_enospc_leaves_no_partial_record(tmp_path: Path) -> None:
    spool = FlaggedSpool(tmp_path)
    spool.append(record(1))
    spool._fh = ShortWrites(spool._fh, 17, OSError(errno.ENOSPC, "No space left on device"))
    with pytest.raises(SpoolUnavailable) as refused:
        spool.append(record(2))
    assert refused.value.status == 503 and refused.value.extra["retry_after_s"] > 0
    assert all(line.endswith(b"\n") for line in lines_of(spool)) and len(lines_of(spool)) == 1
    assert spool.health()["ok"] is False and "No space left" in str(spool.health()["last_error"])
    assert spool._fh is None  # the segment is closed: once drained it is deleted, freeing space
    spool.append(record(3))  # the disk has room again: a new segment
    got: list[dict[str, Any]] = []
    spool.drain(got.append)
    assert [r["flagged_id"] for r in got] == ["flg_1", "flg_3"]
    assert spool.health()["last_error"] is None


def test_a_short_write_that_can_continue_is_completed(tmp_path: Path) -> None:
    spool = FlaggedSpool(tmp_path)
    spool._fh = ShortWrites(spool._open(), 5, None)
    spool.append(record(1))
    got: list[dict[str, Any]] = []
    spool.drain(got.append)
    assert [r["flagged_id"] for r in got] == ["flg_1"]


def test_a_torn_tail_is_cut_at_start_up(tmp_path: Path) -> None:
    seg = tmp_path / f"seg-{1:020d}-{_dead_pid()}.jsonl"
    seg.write_bytes(b'{"flagged_id":"flg_1"}\n{"flagged_id":"flg_2"}\n{"flagged_id":"fl')
    spool = FlaggedSpool(tmp_path)
    assert spool.repaired == 1
    assert seg.read_bytes().endswith(b'"flg_2"}\n')
    spool.append({"flagged_id": "flg_3"})
    got: list[dict[str, Any]] = []
    spool.drain(got.append)
    assert [r["flagged_id"] for r in got] == ["flg_1", "flg_2", "flg_3"]


def _dead_pid() -> int:
    proc = subprocess.Popen(["true"])
    proc.wait()
    return proc.pid


def test_disk_full_answers_503_and_the_retry_is_scored(
    client: TestClient, live_tenant: LiveFn, container: State, monkeypatch: pytest.MonkeyPatch
) -> None:
    t = live_tenant()
    config = {"review_threshold": "0.5", "suspicious_threshold": "0.8", "block_cards": ["card_stolen"]}
    assert client.put("/v1/scoring-config", json=config, headers=auth(t["admin"])).status_code == 200
    spool = container.scoring.spool
    real_fh = spool._fh if spool._fh is not None else spool._open()

    class Full:
        def write(self, data: memoryview) -> int:
            raise OSError(errno.ENOSPC, "No space left on device")

        def __getattr__(self, name: str) -> Any:
            return getattr(real_fh, name)

    monkeypatch.setattr(spool, "_fh", Full())
    body = txn("tx_full", card_token="card_stolen")
    refused = client.post("/v1/fraud-check", json=body, headers=auth(t["app"]))
    assert refused.status_code == 503, refused.text
    assert refused.headers["content-type"] == "application/problem+json"
    assert int(refused.headers["retry-after"]) > 0 and refused.json()["field"] == "spool"
    legit = client.post("/v1/fraud-check", json=txn("tx_fine", amount="3.00"), headers=auth(t["app"]))
    assert legit.status_code == 200 and legit.json()["decision"] == "LEGIT"  # nothing to spool
    assert client.get("/readyz").status_code == 503
    assert client.get("/healthz").json()["spool"]["ok"] is False

    monkeypatch.setattr(
        spool, "_fh", None if real_fh.closed else real_fh
    )  # space again: the client retries the same txn_id
    retried = client.post("/v1/fraud-check", json=body, headers=auth(t["app"]))
    assert retried.status_code == 200 and retried.json()["decision"] == "SUSPICIOUS"
    assert "replayed" not in retried.json()  # scored again, not a replay of a failed claim
    assert client.get("/readyz").status_code == 200
    spool.drain(container.scoring.drainer.sink)
    flagged = client.get("/v1/flagged", headers=auth(t["analyst"])).json()
    assert [f["txn_id"] for f in flagged] == ["tx_full"]
    assert "fraudrail_spool_free_bytes" in container.providers.metrics.render_prometheus()


@pytest.fixture
def tiny_tmpfs(tmp_path: Path) -> Iterator[Path]:
    where = tmp_path / "tiny"
    where.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(where)], check=True)
    try:
        yield where
    finally:
        subprocess.run(["umount", str(where)], check=False)


@pytest.mark.skipif(os.geteuid() != 0 and not IN_CI, reason="mounting a tmpfs needs root (CI runs as root)")
def test_a_real_full_disk_loses_no_answered_record(tiny_tmpfs: Path) -> None:
    spool = FlaggedSpool(tiny_tmpfs)
    try:
        answered = 0
        with pytest.raises(SpoolUnavailable):
            for i in range(10_000):
                spool.append(record(i))
                answered += 1  # the answer a client would have got
        assert answered > 10
        assert all(line.endswith(b"\n") for line in lines_of(spool))
        got: list[dict[str, Any]] = []
        spool.drain(got.append)  # delivery works on the full disk, and frees it
        assert [r["flagged_id"] for r in got] == [f"flg_{i}" for i in range(answered)]
        assert spool.segments() == []
        spool.append(record(answered))  # room again: flagged answers resume
        spool.drain(got.append)
        assert got[-1]["flagged_id"] == f"flg_{answered}"
    finally:
        spool.close()
