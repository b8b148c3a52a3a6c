"""POST /v1/fraud-check against the HTTP floor, with the in-process cache and with Redis, and with
1 vs 1,000 tenants' models hosted. Writes docs/benchmarks.md (bench-scoring section).

    make bench-scoring        # = bash scripts/with-services.sh .venv/bin/python bench/bench_scoring.py

A benchmark, not a test: it prints whether the goals are met and never fails on them.
"""

from __future__ import annotations

import os
import tempfile
import time
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import numpy as np
from _common import (
    N_CARDS,
    REPO,
    TXN_PER_CARD_PER_DAY,
    describe_model,
    free_port,
    log,
    machine,
    met,
    summary,
    trained_artifact,
    write_section,
)
from _load import (
    Load,
    LoadResult,
    LoadSpec,
)
from _servers import (
    admin_key,
    auth,
    control_plane,
    floor_server,
    model_row,
    onboard,
    promote,
    redis_url,
    register_model,
    session_factory,
    store_artifact,
)

WARMUP_S = float(os.environ.get("BENCH_WARMUP_S", "3"))
DURATION_S = float(os.environ.get("BENCH_DURATION_S", "20"))  # shorter for a smoke run
CONCURRENCY = (16, 64)
MODEL_CACHE_SIZE = 200
TENANTS = 1_000
HOT_TENANTS = 10
COLD_FRACTION = 0.002  # 1 request in 500 goes to one of the 990 cold tenants
GOAL_RATIO, GOAL_P99_MS, GOAL_TENANT_RATIO = 0.60, 15.0, 1.2


def md_head(*cols: str) -> str:
    return "| " + " | ".join(cols) + " |\n|" + " --- |" * len(cols)


TABLE_HEAD = md_head(
    "cache",
    "concurrency",
    "fraud-check req/s",
    "p50 / p95 / p99",
    "floor req/s",
    "p50 / p95 / p99",
    "ratio",
    "non-200",
    "flagged",
    "degraded",
)
TENANT_HEAD = md_head(
    "hosted", "hot tenants' req/s", "hot p50 / p95 / p99", "cold requests", "cold p50 / p99"
)


def ms3(s: dict[str, Any]) -> str:
    return f"{s['p50']:.2f} / {s['p95']:.2f} / {s['p99']:.2f}"


class Clock:
    """The simulated transaction clock, continued from run to run (per-card histories stay ordered)."""

    def __init__(self) -> None:
        self.t = time.time() - 40 * 86_400

    def spec(self, **kw: Any) -> LoadSpec:
        return LoadSpec(sim_t0=self.t, **kw)

    def run(self, spec: LoadSpec) -> LoadResult:
        result = Load(spec).start().result()
        self.t += result.sent_total * 86_400 / (N_CARDS * TXN_PER_CARD_PER_DAY) + 3600
        return result


def describe(name: str, r: LoadResult, mask: np.ndarray | None = None) -> dict[str, Any]:
    m = np.ones(len(r.t_send), dtype=bool) if mask is None else mask
    ok = m & (r.status == 200)
    s: dict[str, Any] = dict(summary(r.latency_ms[m], int(m.sum()), r.duration_s))
    s["name"] = name
    s["failed"] = int((m & (r.status != 200)).sum())
    decisions = [d for d, k in zip(r.decision, m, strict=True) if k and d is not None]
    s["flagged"] = sum(d != "LEGIT" for d in decisions) / max(1, len(decisions))
    s["degraded"] = sum(bool(g) for g, k in zip(r.degraded, ok, strict=True) if k) / max(1, int(ok.sum()))
    codes = sorted({int(c) for c in r.status[m] if c != 200})
    s["codes"] = ",".join(map(str, codes))
    log(
        f"  {name:<34} {s['rps']:8.0f} req/s  p50 {s['p50']:7.2f}  p95 {s['p95']:7.2f}"
        f"  p99 {s['p99']:8.2f} ms"
        f"  n={s['n']:,}  non-200={s['failed']}{' (' + s['codes'] + ')' if codes else ''}"
        f"  flagged={s['flagged']:.1%}  degraded={s['degraded']:.1%}"
    )
    for e in r.errors[:3]:
        log(f"    client error: {e}")
    return s


def load(clock: Clock, port: int, concurrency: int, keys: list[str], label: str, **kw: Any) -> LoadResult:
    spec = clock.spec(
        port=port,
        concurrency=concurrency,
        warmup_s=WARMUP_S,
        duration_s=DURATION_S,
        keys=keys,
        label=label,
        **kw,
    )
    return clock.run(spec)


def probe(base: str, app_key: str) -> dict[str, Any]:
    body = {
        "txn_id": f"probe-{time.time_ns()}",
        "card_token": "card_probe",
        "terminal_id": "term_1",
        "timestamp": "2026-01-01T10:00:00+00:00",
        "amount": "12.50",
        "currency": "EUR",
    }
    r = httpx.post(f"{base}/v1/fraud-check", json=body, headers=auth(app_key), timeout=30)
    if r.status_code != 200:
        raise RuntimeError(f"fraud-check probe: {r.status_code} {r.text}")
    answer: dict[str, Any] = r.json()
    return answer


def host_many(factory: Any, home: Path, artifact_file: Path, digest: str, n: int) -> list[str]:
    """n ACTIVE standard tenants with a PRODUCTION model (one artifact, hard-linked per tenant
    path) and an app key each, inserted straight into the database. Returns their app keys."""
    from control_plane.auth.scopes import Scope
    from control_plane.auth.service import issue_key
    from control_plane.db import unit_of_work
    from control_plane.ids import new_id
    from control_plane.tenants.orm import Tenant

    tokens: list[str] = []
    with unit_of_work(factory) as s:
        for i in range(n):
            tid = new_id("ten")
            s.add(
                Tenant(
                    id=tid,
                    slug=f"bench-{i:05d}",
                    name=f"Bench {i}",
                    tier="standard",
                    region="eu-west-1",
                    budget_amount=Decimal("2500.00"),
                    budget_currency="USD",
                    contacts={"email": "ops@example.com"},
                    status="ACTIVE",
                    provisioning={},
                )
            )
            s.flush()
            version = f"mv_bench{i:05d}"
            key = f"tenants/{tid}/models/{version}.frm"
            store_artifact(home, key, artifact_file)
            s.add(model_row(tid, version, key, digest, "PRODUCTION"))
            tokens.append(
                issue_key(s, tenant_id=tid, scope=Scope.APP, name="bench", actor="system:bench").secret
            )
    return tokens


def main() -> None:
    t_begin = time.monotonic()
    env = machine()
    log(f"bench-scoring: {env['cores']} cores, load average {env['load']}, {env['date']}")
    artifact = trained_artifact()
    from fraud_model.training import sha256

    model = describe_model(artifact)
    log(f"model: {model}, {len(artifact):,} bytes")
    tmp = Path(tempfile.mkdtemp(prefix="fraudrail-bench-scoring-"))
    home = tmp / "home"
    port, floor_port = free_port(), free_port()
    floor = floor_server(floor_port, tmp / "floor.log")
    server = None
    results: dict[str, dict[str, Any]] = {}
    try:
        with redis_url() as redis:
            floor.start()
            log(f"floor on :{floor_port}; control plane on :{port}; logs in {tmp}")
            common = {"model_cache_size": str(MODEL_CACHE_SIZE)}
            server = control_plane(
                home, port, log_name="server-redis.log", cache_backend="redis", redis_url=redis, **common
            ).start()
            admin = admin_key(server)
            tenant = onboard(server.url, admin, "bench-main")
            factory = session_factory(home)
            version = register_model(factory, home, tenant["id"], "mv_benchmain", artifact)
            promote(server.url, tenant["admin"], version)
            answer = probe(server.url, tenant["app"])
            log(f"tenant {tenant['id']} serving {answer['model_version']} (probe: {answer['decision']})")
            clock = Clock()
            keys = [tenant["app"]]

            log("\nRedis cache (FRAUDRAIL_CACHE_BACKEND=redis), 1 tenant:")
            for c in CONCURRENCY:
                results[f"floor-redis-{c}"] = describe(
                    f"floor            c={c}", load(clock, floor_port, c, keys, "floor")
                )
                results[f"redis-{c}"] = describe(
                    f"fraud-check redis c={c}", load(clock, port, c, keys, f"redis{c}")
                )
            server.stop()

            server = control_plane(home, port, log_name="server-memory.log", **common).start()
            probe(server.url, tenant["app"])
            log("\nIn-process cache (default), 1 tenant:")
            for c in reversed(CONCURRENCY):  # c=16 last: it is also the 1-tenant baseline below
                results[f"floor-memory-{c}"] = describe(
                    f"floor             c={c}", load(clock, floor_port, c, keys, "floor")
                )
                results[f"memory-{c}"] = describe(
                    f"fraud-check memory c={c}", load(clock, port, c, keys, f"mem{c}")
                )
            server.stop()

            t = time.perf_counter()
            artifact_file = tmp / "model.frm"
            artifact_file.write_bytes(artifact)
            extra = host_many(factory, home, artifact_file, sha256(artifact), TENANTS - 1)
            server = control_plane(home, port, log_name="server-1000.log", **common)
            server.start()
            log(
                f"\n{TENANTS:,} tenants hosted (inserted + reloaded in {time.perf_counter() - t:.1f} s; "
                f"FRAUDRAIL_MODEL_CACHE_SIZE={MODEL_CACHE_SIZE}), {HOT_TENANTS} hot, "
                f"{COLD_FRACTION:.1%} of requests to the {TENANTS - HOT_TENANTS} cold ones:"
            )
            many_keys = keys + extra
            r = load(clock, port, 16, many_keys, "many", hot=HOT_TENANTS, cold_fraction=COLD_FRACTION)
            hot_mask = r.tenant < HOT_TENANTS
            results["many-hot"] = describe("fraud-check hot tenants  c=16", r, hot_mask)
            results["many-cold"] = describe("fraud-check cold tenants c=16", r, ~hot_mask)
            server.stop()
    finally:
        if server is not None:
            server.stop()
        floor.stop()

    report(results, env, model, time.monotonic() - t_begin)


def report(res: dict[str, dict[str, Any]], env: dict[str, str], model: str, elapsed: float) -> None:
    after = os.getloadavg()
    load_after = f"{after[0]:.2f}, {after[1]:.2f}, {after[2]:.2f}"
    log("\nGoals (concurrency 16):")
    rows = []
    goal_lines = []
    for cache in ("memory", "redis"):
        for c in CONCURRENCY:
            fc, fl = res[f"{cache}-{c}"], res[f"floor-{cache}-{c}"]
            ratio = fc["rps"] / fl["rps"]
            rows.append(
                f"| {cache} | {c} | {fc['rps']:,.0f} | {ms3(fc)} | {fl['rps']:,.0f} | {ms3(fl)} "
                f"| {ratio:.2f} | {fc['failed']} | {fc['flagged']:.1%} | {fc['degraded']:.1%} |"
            )
            if c == 16:
                for line in (
                    f"{cache}: throughput {ratio:.0%} of the floor (goal >= {GOAL_RATIO:.0%}): "
                    f"{met(ratio >= GOAL_RATIO)}",
                    f"{cache}: p99 {fc['p99']:.2f} ms (goal <= {GOAL_P99_MS:.0f} ms): "
                    f"{met(fc['p99'] <= GOAL_P99_MS)}",
                ):
                    log("  " + line)
                    goal_lines.append(line)
    one, hot, cold = res["memory-16"], res["many-hot"], res["many-cold"]
    tenant_ratio = hot["p99"] / one["p99"]
    line = (
        f"hot tenants' p99 with {TENANTS:,} tenants hosted {hot['p99']:.2f} ms "
        f"vs 1 tenant {one['p99']:.2f} ms: "
        f"x{tenant_ratio:.2f} (goal <= {GOAL_TENANT_RATIO}): {met(tenant_ratio <= GOAL_TENANT_RATIO)}"
    )
    log("  " + line)
    goal_lines.append(line)
    log(f"(load average before {env['load']}, after {load_after}; {elapsed:.0f} s in all)")

    table = "\n".join(rows)
    body = f"""
## Fraud-check vs the HTTP floor (`bench/bench_scoring.py`)

Measured {env["date"]} on {env["cores"]} cores (load average {env["load"]} before, {load_after} after:
other work shared the machine), with `make bench-scoring`
(`bash scripts/with-services.sh .venv/bin/python bench/bench_scoring.py`, {elapsed:.0f} s).

Method: the real control plane (`python -m control_plane.cli serve`: uvicorn, 1 worker, uvloop +
httptools, SQLite, fresh `FRAUDRAIL_HOME`), a standard-tier tenant onboarded through the API, an app
key, a model trained with `fraud_model`'s default parameters ({model}) on
`simulate{(2000, 4000, 60)}`, registered APPROVED and promoted through `POST /v1/models/{{id}}/promote`.
The floor (`bench/floor_app.py`) is FastAPI parsing the same `FraudCheckRequest` and answering a
constant JSON of the same shape with orjson, served by uvicorn the same way. Load: a closed-loop
generator in its own process (asyncio + uvloop, raw keep-alive HTTP/1.1), fixed concurrency,
{WARMUP_S:.0f} s warm-up then {DURATION_S:.0f} s measured per row; every request has a unique `txn_id`,
one of 5,000 cards (each with its usual amount and 4 usual terminals among 1,000) and a simulated
clock giving each card ~2.5 transactions a day, plus channel / country / device / mcc. The floor is
measured right before each fraud-check row. The tier templates are copied with the rate limit
raised (standard allows 200 req/s; the limiter still runs on every request), so the figures are
serving capacity, not the quota. Latencies are client-side, in ms.

{TABLE_HEAD}
{table}

Multi-tenant hosting ({TENANTS:,} tenants, `FRAUDRAIL_MODEL_CACHE_SIZE={MODEL_CACHE_SIZE}`, concurrency 16):
{TENANTS - 1} more ACTIVE standard tenants, each with a PRODUCTION model row and an app key, are
inserted straight into the database (one artifact file hard-linked under every tenant's path), then
the server restarts, which reloads every tenant (`ServingRegistry.load_all`). Traffic: {HOT_TENANTS} hot
tenants (the API-onboarded one and 9 others) get {1 - COLD_FRACTION:.1%} of the requests, the other
{COLD_FRACTION:.1%} go to a random one of the {TENANTS - HOT_TENANTS} cold tenants (most are not in
the model cache of {MODEL_CACHE_SIZE}: a cold request loads and verifies the artifact). The baseline is
the in-process, concurrency-16 row above (1 tenant hosted, same cache size), measured just before.

{TENANT_HEAD}
| 1 tenant | {one["rps"]:,.0f} | {ms3(one)} | - | - |
| {TENANTS:,} tenants | {hot["rps"]:,.0f} | {ms3(hot)} | {cold["n"]} | {cold["p50"]:.1f} / {cold["p99"]:.1f} |

Goals:

""" + "\n".join(f"- {g}" for g in goal_lines)
    write_section("bench-scoring", body)
    log(f"wrote {(REPO / 'docs' / 'benchmarks.md').relative_to(REPO)} (bench-scoring section)")
    ratio16 = one["rps"] / res["floor-memory-16"]["rps"]
    log(
        f"RESULT rps={one['rps']:.0f} floor_rps={res['floor-memory-16']['rps']:.0f} ratio={ratio16:.2f} "
        f"p99_ms={one['p99']:.2f} p99_1000_tenants_ms={hot['p99']:.2f}"
    )


if __name__ == "__main__":
    main()
