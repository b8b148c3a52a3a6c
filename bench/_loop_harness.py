"""bench-loop's control plane: the real app in this process, driven through its HTTP API, with the
job worker and the periodic monitoring check on a *simulated* clock.

The app is ``control_plane.app.create_app`` over ``build_state`` (SQLite in a throwaway home), served
by uvicorn on 127.0.0.1 from a thread of this process and called over HTTP: every step of the loop
is an API call (upload, train, approve, promote, fraud checks, labels, retraining reads, archive).
What a deployment runs on wall time runs here on the simulated clock, the end of the simulated hour
just replayed: the ``monitoring.check`` periodic job (slots of ``monitoring_check_every_s``
simulated seconds), the retraining job and the training runs it starts, the rollout's steps and the
notices. The serving process's drift counts are flushed before each check (what its housekeeping
chore does every 10 s).
"""

from __future__ import annotations

import io
import threading
import time
from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pandas as pd
import uvicorn
from _common import free_port

from control_plane.app import create_app
from control_plane.bootstrap.admin_key import ensure_admin_key
from control_plane.bootstrap.state import build_state
from control_plane.jobs.periodic import PeriodicSchedule
from control_plane.jobs.worker import Worker
from control_plane.migrate import upgrade
from control_plane.settings import AppSettings
from control_plane.training.monitoring_check import CHECK_JOB

LABEL_CHUNK = 3_000  # a labels body stays under the default 1 MiB request limit


class SimClock:
    """The simulated time; ``now = None`` follows the wall clock (set-up through the API)."""

    def __init__(self, start: datetime | None) -> None:
        self.now = start

    def __call__(self) -> datetime:
        return datetime.now(UTC) if self.now is None else self.now


class LoopApp:
    """The control plane in this process, on a simulated clock."""

    def __init__(
        self, home: Path, templates_dir: Path, *, check_every_s: float, start: datetime | None
    ) -> None:
        self.settings = AppSettings(
            env="test",  # the worker is driven here, not by a thread of the app
            home=home,
            run_worker_in_process=False,
            tenant_templates_dir=templates_dir,
            monitoring_check_every_s=check_every_s,
        )
        home.mkdir(parents=True, exist_ok=True)
        upgrade(self.settings.resolved_database_url)
        self.state = build_state(self.settings)
        self.clock = SimClock(start)
        self.worker = Worker(self.state.factory, self.state.worker.handlers, clock=self.clock)
        checks = [j for j in self.state.periodic.jobs if j.kind == CHECK_JOB]
        self.schedule = PeriodicSchedule(self.state.factory, checks, clock=self.clock)
        port = free_port()
        config = uvicorn.Config(
            create_app(self.settings, self.state), host="127.0.0.1", port=port, log_level="warning",
            access_log=False,
        )  # fmt: skip
        self.server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self.server.run, name="loop-app", daemon=True)
        self._thread.start()
        while not self.server.started:
            if not self._thread.is_alive():
                raise RuntimeError("the app did not start")
            time.sleep(0.05)
        self.http = httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=300)
        token = ensure_admin_key(self.state.factory)
        assert token is not None
        self.admin = token

    def close(self) -> None:
        self.http.close()
        self.server.should_exit = True
        self._thread.join(timeout=30)
        self.state.engine.dispose()

    # -- plumbing -----------------------------------------------------------------------------

    def call(self, method: str, path: str, token: str, *, ok: Iterable[int] = (200,), **kw: Any) -> Any:
        resp = self.http.request(method, path, headers={"Authorization": f"Bearer {token}"}, **kw)
        if resp.status_code not in tuple(ok):
            raise RuntimeError(f"{method} {path}: {resp.status_code} {resp.text[:400]}")
        return resp.json() if resp.content else None

    def drain(self) -> int:
        """Every job due on the simulated clock (a job may queue another: run those too)."""
        return self.worker.drain(max_jobs=10_000)

    def check(self) -> int:
        """What the deployment does every ``check_every_s``: counts flushed, the due check run."""
        self.state.monitor.flush()
        self.schedule.enqueue_due()
        return self.drain()

    # -- set-up through the API ---------------------------------------------------------------

    def onboard(self, slug: str, webhook: str, tier: str = "standard") -> dict[str, str]:
        body = {
            "name": f"{slug} Ltd",
            "slug": slug,
            "tier": tier,
            "region": "eu-west-1",
            "budget": {"amount": "2500.00", "currency": "USD"},
            "contacts": {"email": "ops@example.com", "slack_webhook_url": webhook},
        }
        data = self.call("POST", "/v1/tenants", self.admin, ok=(202,), json=body)
        self.drain()
        tid, tadmin = data["tenant"]["id"], data["admin_key"]["key"]
        keys = {}
        for scope in ("app", "analyst"):
            key = self.call(
                "POST", f"/v1/tenants/{tid}/keys", tadmin, ok=(201,), json={"scope": scope, "name": scope}
            )
            keys[scope] = key["key"]
        return {"id": tid, "admin": tadmin, **keys}

    def train(
        self, tenant: dict[str, str], frame: pd.DataFrame, name: str, params: dict[str, Any]
    ) -> dict[str, Any]:
        """Upload ``frame`` as a dataset, run a training run on it; the run's result."""
        buf = io.BytesIO()
        frame.to_csv(buf, index=False)
        files = {"file": (f"{name}.csv", buf.getvalue(), "text/csv")}
        ds = self.call("POST", "/v1/datasets", tenant["admin"], ok=(201,), files=files, data={"name": name})
        job = self.call(
            "POST",
            "/v1/training-runs",
            tenant["admin"],
            ok=(202,),
            json={"dataset_id": ds["id"], "params": params},
        )
        self.drain()
        run = self.call("GET", f"/v1/training-runs/{job['id']}", tenant["admin"])
        if run["status"] != "succeeded":
            raise RuntimeError(f"training run {job['id']}: {run['status']} {run.get('error')}")
        return dict(run["result"])

    # -- traffic and labels -------------------------------------------------------------------

    def score(self, app_key: str, rows: pd.DataFrame) -> dict[str, int]:
        """POST /v1/fraud-check for each row in order; decisions counted."""
        counts: dict[str, int] = {}
        headers = {"Authorization": f"Bearer {app_key}"}
        for txn_id, card, terminal, ts, amount in zip(
            rows["txn_id"], rows["card_token"], rows["terminal_id"], rows["ts"], rows["amount"], strict=True
        ):
            body = {
                "txn_id": txn_id,
                "card_token": card,
                "terminal_id": terminal,
                "timestamp": ts.isoformat(),
                "amount": f"{amount:.2f}",
                "currency": "EUR",
            }
            resp = self.http.post("/v1/fraud-check", json=body, headers=headers)
            if resp.status_code != 200:
                raise RuntimeError(f"fraud-check {txn_id}: {resp.status_code} {resp.text[:300]}")
            decision = resp.json()["decision"]
            counts[decision] = counts.get(decision, 0) + 1
        return counts

    def label(self, admin_key: str, labels: pd.DataFrame) -> int:
        """POST /v1/labels (chargebacks); returns how many were recorded."""
        self.state.monitor.flush()  # the checks of the last hours are in scored_transactions (chore: 10 s)
        recorded = 0
        items = [
            {"txn_id": t, "label": "chargeback", "known_at": k.isoformat(), "source": "chargebacks"}
            for t, k in zip(labels["txn_id"], labels["known_at"], strict=True)
        ]
        for i in range(0, len(items), LABEL_CHUNK):
            out = self.call("POST", "/v1/labels", admin_key, json={"items": items[i : i + LABEL_CHUNK]})
            if out["unknown_txn_ids"]:
                raise RuntimeError(f"labels for unknown txn_ids: {out['unknown_txn_ids'][:5]}")
            recorded += int(out["recorded"])
        return recorded


def utc(ts: pd.Timestamp) -> datetime:
    return ts.to_pydatetime().astimezone(UTC)
