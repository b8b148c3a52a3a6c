"""Noisy neighbour: does one tenant flooding /v1/fraud-check move another tenant's p99?

Serves the control plane with uvicorn in a child process (embedded defaults, a fresh home), onboards
a trial tenant A (20 rps, burst 40) and a standard tenant B, puts one small model in PRODUCTION for
each, then measures B's fraud-check latency (at a steady rate under its limit) alone and while K
threads flood A as fast as they can.
A's surplus is answered 429 by the rate limiter before any scoring; the question is how much the
refusals themselves (auth, body parsing, the 429) cost B. The bound in the FinOps issue is +20 %
on B's p99.

    .venv/bin/python bench/bench_isolation.py [--samples 2000] [--flooders 3] [--b-rate 100]

Exit status 0 when B's p99 under the flood is within the bound, 1 otherwise.
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import httpx

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def txn(txn_id: str, card: str) -> dict[str, Any]:
    return {
        "txn_id": txn_id,
        "card_token": card,
        "terminal_id": "term_7",
        "timestamp": "2026-11-20T10:15:00+00:00",
        "amount": "42.50",
        "currency": "USD",
    }


def setup(home: Path, base: str, admin: str) -> dict[str, str]:
    """Two ACTIVE tenants (A trial, B standard), each with an app key and a PRODUCTION model."""
    from control_plane.db import make_engine, make_session_factory, unit_of_work
    from control_plane.providers.local.object_store import LocalObjectStore
    from control_plane.registry.orm import ModelVersion
    from fraud_model.features import FEATURE_SET_VERSION, batch_features
    from fraud_model.simulator import simulate
    from fraud_model.training import sha256, train_model

    frame = simulate(200, 400, 50, seed=7)
    artifact = train_model(
        batch_features(frame), frame["is_fraud"], params={"num_boost_round": 30, "max_depth": 3}, seed=1
    ).to_bytes()
    store = LocalObjectStore(home / "objects")
    factory = make_session_factory(make_engine(f"sqlite:///{home / 'fraudrail.db'}"))
    keys: dict[str, str] = {}
    with httpx.Client(base_url=base, headers={"Authorization": f"Bearer {admin}"}, timeout=30) as http:
        for name, tier, budget in (("a", "trial", "400.00"), ("b", "standard", "2500.00")):
            body = {
                "name": f"bench {name}",
                "slug": f"bench-{name}-{uuid.uuid4().hex[:6]}",
                "tier": tier,
                "region": "eu-west-1",
                "budget": {"amount": budget, "currency": "USD"},
            }
            created = http.post("/v1/tenants", json=body)
            created.raise_for_status()
            tenant_id = created.json()["tenant"]["id"]
            tenant_admin = created.json()["admin_key"]["key"]
            deadline = time.monotonic() + 60
            while http.get(f"/v1/tenants/{tenant_id}").json()["status"] != "ACTIVE":
                if time.monotonic() > deadline:
                    raise RuntimeError(f"tenant {tenant_id} did not become ACTIVE")
                time.sleep(0.1)
            auth = {"Authorization": f"Bearer {tenant_admin}"}
            new_key = {"scope": "app", "name": "app"}
            app_key = http.post(f"/v1/tenants/{tenant_id}/keys", json=new_key, headers=auth)
            app_key.raise_for_status()
            version = f"mv_bench{name}{uuid.uuid4().hex[:8]}"
            key = f"tenants/{tenant_id}/models/{version}.frm"
            store.put(key, artifact)
            with unit_of_work(factory) as s:
                s.add(
                    ModelVersion(
                        id=version,
                        tenant_id=tenant_id,
                        stage="APPROVED",
                        artifact_key=key,
                        sha256=sha256(artifact),
                        feature_set_version=FEATURE_SET_VERSION,
                        code_version="bench",
                        params={},
                        metrics={},
                        gate={"passed": True},
                        analyst_labels=0,
                    )
                )
            http.post(f"/v1/models/{version}/promote", headers=auth).raise_for_status()
            keys[name] = app_key.json()["key"]
    return keys


def sample_b(base: str, key: str, n: int, tag: str, rate: float) -> list[float]:
    """B at a steady ``rate`` (under its tier's 200 rps): one request per slot, latency per request."""
    latencies = []
    pause = threading.Event()
    with httpx.Client(base_url=base, headers={"Authorization": f"Bearer {key}"}, timeout=30) as http:
        next_at = time.perf_counter()
        for i in range(n):
            next_at += 1.0 / rate
            started = time.perf_counter()
            resp = http.post("/v1/fraud-check", json=txn(f"{tag}-{i}", f"card_{i % 97}"))
            latencies.append(time.perf_counter() - started)
            if resp.status_code != 200:
                raise RuntimeError(f"tenant B got {resp.status_code}: {resp.text}")
            pause.wait(max(0.0, next_at - time.perf_counter()))
    return latencies


def flood_a(base: str, key: str, stop: threading.Event, codes: list[int], worker: int) -> None:
    with httpx.Client(base_url=base, headers={"Authorization": f"Bearer {key}"}, timeout=30) as http:
        i = 0
        while not stop.is_set():
            resp = http.post("/v1/fraud-check", json=txn(f"a{worker}-{i}", f"card_{i % 89}"))
            codes.append(resp.status_code)
            i += 1


def report(label: str, values: list[float]) -> str:
    p50, p95, p99 = statistics.median(values) * 1e3, pct(values, 0.95) * 1e3, pct(values, 0.99) * 1e3
    return f"{label:<22} p50 {p50:6.2f} ms   p95 {p95:6.2f} ms   p99 {p99:6.2f} ms   (n={len(values)})"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--samples", type=int, default=2000)
    parser.add_argument("--flooders", type=int, default=3)
    parser.add_argument("--b-rate", type=float, default=100.0, help="tenant B's steady requests/s")
    parser.add_argument("--bound", type=float, default=1.2, help="allowed p99 ratio (loaded / alone)")
    args = parser.parse_args()

    home = Path(tempfile.mkdtemp(prefix="fraudrail-bench-isolation-"))
    port = free_port()
    env = {**os.environ, "FRAUDRAIL_HOME": str(home), "FRAUDRAIL_PORT": str(port)}
    env["FRAUDRAIL_ENV"] = "development"
    from control_plane.bootstrap import ensure_admin_key
    from control_plane.db import make_engine, make_session_factory
    from control_plane.migrate import upgrade

    url = f"sqlite:///{home / 'fraudrail.db'}"
    upgrade(url)
    admin = ensure_admin_key(make_session_factory(make_engine(url)))
    assert admin is not None
    server = subprocess.Popen(
        [sys.executable, "-c", "from control_plane.cli import app; app()", "serve", "--port", str(port)],
        env=env,
        cwd=REPO,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError("the server did not start")
            time.sleep(0.1)
        keys = setup(home, base, admin)
        sample_b(base, keys["b"], 300, "warm", args.b_rate)
        alone = sample_b(base, keys["b"], args.samples, "alone", args.b_rate)
        stop, codes = threading.Event(), list[int]()
        threads = [
            threading.Thread(target=flood_a, args=(base, keys["a"], stop, codes, w), daemon=True)
            for w in range(args.flooders)
        ]
        flood_started = time.perf_counter()
        for thread in threads:
            thread.start()
        loaded = sample_b(base, keys["b"], args.samples, "loaded", args.b_rate)
        stop.set()
        for thread in threads:
            thread.join(timeout=30)
        flood_s = time.perf_counter() - flood_started
        after = sample_b(base, keys["b"], args.samples, "after", args.b_rate)
    finally:
        server.terminate()
        server.wait(timeout=30)

    ratio = pct(loaded, 0.99) / pct(alone, 0.99)
    print(report("B alone", alone))
    print(report(f"B, A flooding x{args.flooders}", loaded))
    print(report("B alone again", after))
    print(
        f"A: {len(codes)} requests in {flood_s:.1f} s ({len(codes) / flood_s:.0f}/s), "
        f"{codes.count(200)} answered, {codes.count(429)} refused with 429"
    )
    verdict = "within" if ratio <= args.bound else "OVER"
    print(f"B p99 ratio loaded/alone = {ratio:.2f} ({verdict} the {args.bound:.2f} bound)")
    return 0 if ratio <= args.bound else 1


if __name__ == "__main__":
    sys.exit(main())
