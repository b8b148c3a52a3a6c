"""The ``fraudrail`` command run as a user would: a subprocess, its exit code, one-line errors."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from control_plane.settings import REPO_ROOT

CSV = (
    "txn_id,card_token,terminal_id,ts,amount,currency\n"
    "tx_1,card_1,term_1,2026-06-01T10:00:00Z,12.50,EUR\n"
    "tx_2,card_2,term_1,2026-06-01T10:01:00Z,80.00,EUR\n"
    "tx_3,card_3,term_2,2026-06-01T10:02:00Z,5.00,EUR\n"
)


def fraudrail(
    *args: str, env: dict[str, str] | None = None, cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith("FRAUDRAIL_")}
    return subprocess.run(
        [sys.executable, "-m", "control_plane.cli", *args],
        env={**base, **(env or {})},
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
    )


def assert_one_line_error(done: subprocess.CompletedProcess[str], code: int, *needles: str) -> None:
    assert done.returncode == code, (done.stdout, done.stderr)
    assert "Traceback" not in done.stderr
    errors = [line for line in done.stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1, done.stderr
    for needle in needles:
        assert needle in errors[0]


def test_create_admin_issues_a_key_on_the_servers_database(database_url: str, clean_db: None) -> None:
    done = fraudrail(
        "keys", "create-admin", "--name", "lost-key", env={"FRAUDRAIL_DATABASE_URL": database_url}
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("FRAUDRAIL_ADMIN_KEY=frk_")


def test_commands_on_an_unmigrated_home_say_so_in_one_line(tmp_path: Path) -> None:
    env = {"FRAUDRAIL_HOME": str(tmp_path)}
    assert_one_line_error(fraudrail("tenants", "list", env=env), 1, "fraudrail migrate", str(tmp_path))
    assert_one_line_error(fraudrail("keys", "create-admin", env=env), 1, "fraudrail migrate")


def test_make_run_and_the_cli_share_one_home(tmp_path: Path) -> None:
    # From another working directory, FRAUDRAIL_HOME unset: `make run`'s environment and a bare
    # `fraudrail` both end at settings' default, <checkout>/var.
    recipe = "show-home: ; @$(BIN)/python -m control_plane.cli spool status"
    made = subprocess.run(
        ["make", "-s", "--no-print-directory", "-C", str(REPO_ROOT), "--eval", recipe, "show-home"],
        env={k: v for k, v in os.environ.items() if not k.startswith("FRAUDRAIL_")},
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert made.returncode == 0, made.stderr
    direct = fraudrail("spool", "status", cwd=tmp_path)
    assert direct.returncode == 0, direct.stderr
    spool_of = [json.loads(out.splitlines()[0])["spool"] for out in (made.stdout, direct.stdout)]
    assert spool_of[0] == spool_of[1] == str(REPO_ROOT / "var" / "spool")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@pytest.fixture
def stub() -> Iterator[tuple[int, list[dict[str, object]], list[int]]]:
    """A fraud-check stand-in answering each request with the next queued status."""
    seen: list[dict[str, object]] = []
    statuses: list[int] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            seen.append(json.loads(self.rfile.read(int(self.headers["content-length"]))))
            if self.path == "/v1/labels":  # the chargeback feed's daily file
                items = seen[-1]["items"]
                assert isinstance(items, list)
                seen[-1] = {
                    "labels": [i["txn_id"] for i in items],
                    "known_at": [i["known_at"] for i in items],
                }
                raw = json.dumps({"recorded": len(items), "unknown_txn_ids": []}).encode()
                self.send_response(200)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(raw)))
                self.end_headers()
                self.wfile.write(raw)
                return
            status = statuses.pop(0) if statuses else 200
            if status == 200:
                body: dict[str, object] = {"decision": "LEGIT", "model_version": "mv_1", "cohort": "stable"}
                ctype = "application/json"
            else:
                body = {"title": "nope", "status": status, "detail": f"refused with {status}"}
                ctype = "application/problem+json"
            raw = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("content-type", ctype)
            self.send_header("content-length", str(len(raw)))
            self.end_headers()
            self.wfile.write(raw)

        def log_message(self, format: str, *args: object) -> None:
            return

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server.server_address[1], seen, statuses
    server.shutdown()
    server.server_close()


def test_replay_goes_to_the_configured_server(
    tmp_path: Path, stub: tuple[int, list[dict[str, object]], list[int]]
) -> None:
    port, seen, _ = stub
    (tmp_path / "t.csv").write_text(CSV)
    done = fraudrail(
        "replay",
        "--file",
        str(tmp_path / "t.csv"),
        "--key",
        "k",
        "--prefix",
        "p-",
        env={"FRAUDRAIL_PORT": str(port)},
    )
    assert done.returncode == 0, done.stderr
    assert [r["txn_id"] for r in seen] == ["p-tx_1", "p-tx_2", "p-tx_3"]
    assert "decisions: {'LEGIT': 3}" in done.stdout


def test_replay_plays_the_chargeback_feed_day_by_day(
    tmp_path: Path, stub: tuple[int, list[dict[str, object]], list[int]]
) -> None:
    port, seen, _ = stub
    (tmp_path / "t.csv").write_text(
        "txn_id,card_token,terminal_id,ts,amount,currency,is_fraud\n"
        "tx_1,card_1,term_1,2026-06-01T10:00:00Z,12.50,EUR,1\n"
        "tx_2,card_2,term_1,2026-06-02T10:01:00Z,80.00,EUR,0\n"
        "tx_3,card_3,term_2,2026-06-03T10:02:00Z,5.00,EUR,1\n"
    )
    url = f"http://127.0.0.1:{port}"
    args = ("replay", "--file", str(tmp_path / "t.csv"), "--key", "k", "--url", url, "--chargeback-days", "1")
    assert_one_line_error(fraudrail(*args), 2, "--admin-key")
    done = fraudrail(*args, "--admin-key", "admin")
    assert done.returncode == 0, done.stderr
    # tx_1's chargeback (known 2 June 10:00) goes with the file of 3 June 00:00, before tx_3 is
    # checked; tx_3's (known 4 June) is not known by the last transaction's time: never posted.
    order = [r.get("txn_id") or r.get("labels") for r in seen]
    assert order == ["tx_1", "tx_2", ["tx_1"], "tx_3"]
    assert seen[2]["known_at"] == ["2026-06-02T10:00:00+00:00"]
    assert "chargebacks posted: 1" in done.stdout


def test_replay_stops_at_the_first_refused_key(
    tmp_path: Path, stub: tuple[int, list[dict[str, object]], list[int]]
) -> None:
    port, seen, statuses = stub
    statuses.extend([401, 401, 401])
    (tmp_path / "t.csv").write_text(CSV)
    done = fraudrail(
        "replay", "--file", str(tmp_path / "t.csv"), "--key", "k", "--url", f"http://127.0.0.1:{port}"
    )
    assert_one_line_error(done, 2, "401", "refused with 401")
    assert len(seen) == 1


def test_replay_exits_non_zero_when_rows_fail(
    tmp_path: Path, stub: tuple[int, list[dict[str, object]], list[int]]
) -> None:
    port, _, statuses = stub
    statuses.extend([200, 409])
    (tmp_path / "t.csv").write_text(CSV)
    done = fraudrail(
        "replay", "--file", str(tmp_path / "t.csv"), "--key", "k", "--url", f"http://127.0.0.1:{port}"
    )
    assert_one_line_error(done, 1, "1 of 3 row(s)", "HTTP 409")


def test_replay_missing_file_and_refused_connection(tmp_path: Path) -> None:
    missing = fraudrail("replay", "--file", str(tmp_path / "nope.csv"), "--key", "k")
    assert_one_line_error(missing, 2, "no such file", "nope.csv")
    (tmp_path / "t.csv").write_text(CSV)
    url = f"http://127.0.0.1:{_free_port()}"
    refused = fraudrail("replay", "--file", str(tmp_path / "t.csv"), "--key", "k", "--url", url)
    assert_one_line_error(refused, 2, "cannot reach", url)


def test_simulate_writes_with_a_progress_bar(tmp_path: Path) -> None:
    out = tmp_path / "sim.csv"
    done = fraudrail("simulate", "--out", str(out), "--customers", "20", "--terminals", "40", "--days", "3")
    assert done.returncode == 0, done.stderr
    assert "writing" in done.stderr
    header, *rows = out.read_text().splitlines()
    assert header.startswith("txn_id,") and rows and not any(r.startswith("txn_id") for r in rows)
    assert_one_line_error(fraudrail("simulate", "--out", str(tmp_path / "no" / "x.csv")), 1, "no such folder")
