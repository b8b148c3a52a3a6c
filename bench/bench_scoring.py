"""POST /v1/fraud-check against the HTTP floor served with the same worker count: the in-process
cache (1 worker, SQLite); the Redis cache + Redis bus on PostgreSQL with 1 and 2 workers; 1 vs
1,000 tenants' models hosted. Prints the server's CPU time per check for every row and the load
generator's CPU. Writes docs/benchmarks.md (bench-scoring section).

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
    TXN_PER_CARD_PER_DAY,
    describe_model,
    free_port,
    log,
    machine,
    summary,
    trained_artifact,
)
from _cpu import tree_cpu_s
from _load import (
    Load,
    LoadResult,
    LoadSpec,
)
from _scoring_report import (
    COLD_FRACTION,
    CONCURRENCY,
    DURATION_S,
    HOT_TENANTS,
    MODEL_CACHE_SIZE,
    TENANTS,
    WARMUP_S,
    report,
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
        f"  flagged={s['flagged']:.1%}  degraded={s['degraded']:.2%}"
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


def measured(
    clock: Clock, server: Any, concurrency: int, keys: list[str], label: str, **kw: Any
) -> LoadResult:
    """A load run with the server's process-tree CPU time per request it was sent (warm-up included)."""
    cpu0 = tree_cpu_s(server.proc.pid)
    r = load(clock, server.port, concurrency, keys, label, **kw)
    r.server_cpu_us = (tree_cpu_s(server.proc.pid) - cpu0) / max(1, r.sent_total) * 1e6  # type: ignore[attr-defined]
    return r


def row(name: str, r: LoadResult) -> dict[str, Any]:
    s = describe(name, r)
    s["cpu_us"] = getattr(r, "server_cpu_us", float("nan"))
    s["gen_cpu"] = r.cpu_s / max(1e-9, r.duration_s + WARMUP_S)  # the generator's cores in use
    if s["cpu_us"] == s["cpu_us"]:
        log(f"    server CPU {s['cpu_us']:.0f} us per check; load generator {s['gen_cpu']:.2f} cores")
    return s


def onboard_with_model(server: Any, factory: Any, home: Path, slug: str, artifact: bytes) -> dict[str, str]:
    tenant = onboard(server.url, admin_key(server), slug)
    version = register_model(factory, home, tenant["id"], f"mv_{slug.replace('-', '')}", artifact)
    promote(server.url, tenant["admin"], version)
    answer = probe(server.url, tenant["app"])
    log(f"tenant {tenant['id']} serving {answer['model_version']} (probe: {answer['decision']})")
    return tenant


def main() -> None:
    from bench_soak import pg_database

    from control_plane.db import make_engine, make_session_factory
    from fraud_model.training import sha256

    t_begin = time.monotonic()
    env = machine()
    log(f"bench-scoring: {env['cores']} cores, load average {env['load']}, {env['date']}")
    artifact = trained_artifact()
    model = describe_model(artifact)
    log(f"model: {model}, {len(artifact):,} bytes")
    tmp = Path(tempfile.mkdtemp(prefix="fraudrail-bench-scoring-"))
    port, floor_port = free_port(), free_port()
    servers: list[Any] = []
    res: dict[str, dict[str, Any]] = {}
    common = {"model_cache_size": str(MODEL_CACHE_SIZE)}
    clock = Clock()
    drop = None

    def start(server: Any) -> Any:
        servers.append(server)
        return server.start()

    def stop_all() -> None:
        while servers:
            servers.pop().stop()

    try:
        with redis_url() as redis:
            pg_url = os.environ.get("FRAUDRAIL_TEST_DATABASE_URL")
            if not pg_url:
                raise RuntimeError(
                    "no FRAUDRAIL_TEST_DATABASE_URL: run `make bench-scoring` (starts PostgreSQL)"
                )
            database_url, drop = pg_database(pg_url)
            shared = {
                **common,
                "database_url": database_url,
                "cache_backend": "redis",
                "bus_backend": "redis",
            }
            shared["redis_url"] = redis
            home_pg = tmp / "home-pg"
            for workers in (1, 2):
                start(floor_server(floor_port, tmp / f"floor-{workers}.log", workers=workers))
                server = start(
                    control_plane(
                        home_pg, port, log_name=f"server-redis-{workers}.log", workers=str(workers), **shared
                    )
                )
                if workers == 1:
                    factory_pg = make_session_factory(make_engine(database_url))
                    tenant_pg = onboard_with_model(server, factory_pg, home_pg, "bench-redis", artifact)
                keys = [tenant_pg["app"]]
                log(f"\nRedis cache + Redis bus on PostgreSQL, {workers} worker(s), 1 tenant:")
                for c in CONCURRENCY if workers == 1 else (16,):
                    res[f"floor-redis{workers}-{c}"] = row(
                        f"floor {workers}w c={c}", load(clock, floor_port, c, keys, "floor")
                    )
                    res[f"redis{workers}-{c}"] = row(
                        f"fraud-check redis {workers}w c={c}",
                        measured(clock, server, c, keys, f"r{workers}{c}"),
                    )
                stop_all()

            home = tmp / "home"
            start(floor_server(floor_port, tmp / "floor-memory.log"))
            server = start(control_plane(home, port, log_name="server-memory.log", **common))
            factory = session_factory(home)
            tenant = onboard_with_model(server, factory, home, "bench-main", artifact)
            keys = [tenant["app"]]
            log("\nIn-process cache (default), SQLite, 1 worker, 1 tenant:")
            for c in reversed(CONCURRENCY):  # c=16 last: it is also the 1-tenant baseline below
                res[f"floor-memory-{c}"] = row(f"floor 1w c={c}", load(clock, floor_port, c, keys, "floor"))
                res[f"memory-{c}"] = row(
                    f"fraud-check memory c={c}", measured(clock, server, c, keys, f"m{c}")
                )
            servers.pop().stop()

            t = time.perf_counter()
            artifact_file = tmp / "model.frm"
            artifact_file.write_bytes(artifact)
            extra = host_many(factory, home, artifact_file, sha256(artifact), TENANTS - 1)
            server = start(control_plane(home, port, log_name="server-1000.log", **common))
            log(
                f"\n{TENANTS:,} tenants hosted (inserted + reloaded in {time.perf_counter() - t:.1f} s; "
                f"FRAUDRAIL_MODEL_CACHE_SIZE={MODEL_CACHE_SIZE}), {HOT_TENANTS} hot, "
                f"{COLD_FRACTION:.1%} of requests to the {TENANTS - HOT_TENANTS} cold ones:"
            )
            r = measured(
                clock, server, 16, keys + extra, "many", hot=HOT_TENANTS, cold_fraction=COLD_FRACTION
            )
            hot_mask = r.tenant < HOT_TENANTS
            res["many-hot"] = describe("fraud-check hot tenants  c=16", r, hot_mask)
            res["many-hot"]["cpu_us"] = getattr(r, "server_cpu_us", float("nan"))
            res["many-cold"] = describe("fraud-check cold tenants c=16", r, ~hot_mask)
            stop_all()
    finally:
        stop_all()
        if drop is not None:
            drop()

    report(res, env, model, time.monotonic() - t_begin)


if __name__ == "__main__":
    main()
