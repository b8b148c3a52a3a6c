"""Soak: does the server's memory stay flat under a steady attack-like load?

    make bench-soak               # = bash scripts/with-services.sh .venv/bin/python bench/bench_soak.py
    .venv/bin/python bench/bench_soak.py --minutes 3

``fraudrail serve`` on embedded defaults (SQLite, in-process cache), then on PostgreSQL + Redis
(FRAUDRAIL_TEST_DATABASE_URL / FRAUDRAIL_TEST_REDIS_URL, as ``scripts/with-services.sh`` exports;
skipped without them). Each gets ``--minutes`` of fraud checks at a steady ``--rate`` (open loop,
from a separate process; unique txn ids over 5,000 cards) with the tenant's review threshold at 0,
so every check is flagged (REVIEW / SUSPICIOUS) and goes through the spool, as in an attack.
The server's RSS (its process tree) is sampled every 10 s. Reported: errors (any answer but 200),
p99, and RSS growth after the first minute (goal: 0 errors, <= 20 MB). Writes docs/benchmarks.md
(bench-soak section) and ends with ``RESULT errors=… rss_growth_mb=… p99_ms=…``.
A benchmark, not a test: the goal is printed, not asserted.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import numpy as np
from _common import describe_model, free_port, log, machine, met, pct, trained_artifact, write_section
from _probe import Probe, ProbeSpec
from _servers import admin_key, auth, onboard, promote, register_model, session_factory
from _servers import control_plane as fraudrail_serve

SAMPLE_S = 10.0
WARM_S = 60.0  # growth is measured from the first sample at or after one minute
GOAL_MB = 20.0
SUSTAINED = 0.95  # below this share of the requested rate, the run measured a backlog


def rss_mb(pid: int) -> float:
    """Resident memory of a process and its children (uvicorn may fork), in MB."""
    total = 0
    todo = [pid]
    while todo:
        p = todo.pop()
        try:
            status = Path(f"/proc/{p}/status").read_text()
            total += next(int(line.split()[1]) for line in status.splitlines() if line.startswith("VmRSS:"))
            for task in Path(f"/proc/{p}/task").iterdir():
                todo.extend(int(c) for c in (task / "children").read_text().split())
        except (OSError, StopIteration, ValueError):
            continue
    return total / 1024


def pg_database(url: str) -> tuple[str, Any]:
    """A fresh database on the test server (dropped afterwards), migrated."""
    from sqlalchemy import create_engine, make_url, text

    from control_plane.migrate import upgrade

    name = f"fraudrail_soak_{os.getpid()}_{uuid.uuid4().hex[:6]}"
    admin = create_engine(url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    own = make_url(url).set(database=name).render_as_string(hide_password=False)
    upgrade(own)

    def drop() -> None:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()

    return own, drop


def run(name: str, settings: dict[str, str], artifact: bytes, args: argparse.Namespace) -> dict[str, Any]:
    import importlib

    from control_plane.db import make_engine, make_session_factory

    importlib.import_module("control_plane.models")  # every mapper

    drop = None
    if name != "embedded":
        settings["database_url"], drop = pg_database(settings.pop("test_database_url"))
    with tempfile.TemporaryDirectory(prefix="fraudrail-soak-") as tmp:
        home = Path(tmp)
        port = free_port()
        server = fraudrail_serve(home, port, log_name="server.log", **settings)
        try:
            server.start()
        except RuntimeError as exc:
            raise RuntimeError(f"{exc}: {server.log_text()[-600:]}") from exc
        try:
            base = server.url
            tenant = onboard(base, admin_key(server), f"soak-{name}")
            factory = (
                make_session_factory(make_engine(settings["database_url"]))
                if "database_url" in settings
                else session_factory(home)
            )
            version = register_model(factory, home, tenant["id"], f"mv_soak_{name}", artifact)
            promote(base, tenant["admin"], version)
            config = {"review_threshold": "0", "suspicious_threshold": "0.5"}  # every check is flagged
            r = httpx.put(f"{base}/v1/scoring-config", json=config, headers=auth(tenant["admin"]), timeout=30)
            r.raise_for_status()
            assert server.proc is not None
            pid = server.proc.pid
            samples: list[tuple[float, float]] = []
            stop = threading.Event()

            def sample(t0: float) -> None:
                while True:
                    samples.append((time.monotonic() - t0, rss_mb(pid)))
                    if stop.wait(SAMPLE_S):
                        return

            probe = Probe(ProbeSpec(port, tenant["app"], args.rate, label=f"soak-{name}", sim_t0=1.79e9))
            start = probe.start()
            sampler = threading.Thread(target=sample, args=(start,), daemon=True)
            sampler.start()
            deadline = start + args.minutes * 60
            while time.monotonic() < deadline:
                time.sleep(min(5.0, max(0.0, deadline - time.monotonic())))
                done = samples[-1] if samples else (0.0, 0.0)
                log(f"{name}: {done[0]:5.0f} s, RSS {done[1]:.1f} MB")
            t_send, t_recv, status, conns = probe.stop()
            stop.set()
            sampler.join()
            health = httpx.get(f"{base}/healthz", timeout=10).json()
        finally:
            server.stop()
            if drop is not None:
                drop()
    lat_ms = (t_recv - t_send) * 1000
    window = args.minutes * 60
    # Growth and the served rate count the window only: past it the probe waits for the answers
    # still owed (a server that fell behind drains its backlog there, and its RSS falls flat).
    after = [rss for t, rss in samples if WARM_S <= t <= window]
    growth = (after[-1] - after[0]) if len(after) >= 2 else float("nan")
    flagged = (health.get("spool") or {}).get("appended")
    return {
        "name": name,
        "sent": len(status),
        "errors": int(np.count_nonzero(status != 200)),
        "statuses": {int(s): int(n) for s, n in zip(*np.unique(status, return_counts=True), strict=True)},
        "rps": int(np.count_nonzero(t_recv <= deadline)) / window,  # answered within the window
        "p50": pct(lat_ms, 50),
        "p99": pct(lat_ms, 99),
        "rss": samples,
        "growth": growth,
        "flagged": flagged,
        "connections": conns,
    }


def verdict(r: dict[str, Any], rate: float) -> str:
    """The goal's verdict, or why the run cannot give one: a server answering below the requested
    rate builds a backlog (the open-loop probe opens a connection for every request it cannot
    send on an idle one), and its RSS then measures that backlog, not the steady state."""
    if r["rps"] < SUSTAINED * rate:
        return f"not measured: served {r['rps']:.0f}/s of {rate:.0f}"
    return met(r["growth"] <= GOAL_MB and r["errors"] == 0)


def describe(r: dict[str, Any], rate: float) -> str:
    rss = r["rss"]
    return (
        f"{r['name']}: {r['sent']} checks ({r['rps']:.1f}/s), flagged {r['flagged']}, errors {r['errors']} "
        f"{r['statuses']}, p50 {r['p50']:.1f} ms, p99 {r['p99']:.1f} ms, {r['connections']} connections "
        f"opened, RSS {rss[0][1]:.0f} → {rss[-1][1]:.0f} MB, growth after the first minute "
        f"{r['growth']:+.1f} MB (goal <= {GOAL_MB:.0f}: {verdict(r, rate)})"
    )


def doc(results: list[dict[str, Any]], args: argparse.Namespace, artifact: bytes) -> str:
    env = machine()
    lines = [
        "## bench-soak: memory under a steady attack-like load",
        "",
        f"`make bench-soak` (`bench/bench_soak.py --minutes {args.minutes}`), {env['date']}, "
        f"{env['cores']} cores, load {env['load']}. {describe_model(artifact)}",
        f"{args.rate:.0f} fraud checks/s for {args.minutes} min per configuration from a separate "
        "process (open loop, unique txn ids, 5,000 cards), every check flagged (review threshold 0), "
        "so each one also goes through the spool to the flagged store and the review queue. RSS of "
        f"the server's process tree every {SAMPLE_S:.0f} s; growth is measured after the first minute.",
        "",
        "| configuration | checks (served/s) | errors | connections | p50 ms | p99 ms | RSS 1 min | RSS end "
        "| growth MB | goal |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |",
    ]
    for r in results:
        after = [rss for t, rss in r["rss"] if t >= WARM_S] or [float("nan")]
        lines.append(
            f"| {r['name']} | {r['sent']} ({r['rps']:.0f}/s) | {r['errors']} | {r['connections']} | "
            f"{r['p50']:.1f} | {r['p99']:.1f} | {after[0]:.0f} | {after[-1]:.0f} | {r['growth']:+.1f} | "
            f"{verdict(r, args.rate)} |"
        )
    lines += ["", "RSS samples (MB, every 10 s):", ""]
    for r in results:
        lines.append(f"- {r['name']}: " + " ".join(f"{rss:.0f}" for _, rss in r["rss"]))
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--rate", type=float, default=200.0)
    parser.add_argument("--only", choices=("embedded", "services"), default=None)
    args = parser.parse_args()
    artifact = trained_artifact()
    configs: list[tuple[str, dict[str, str]]] = []
    if args.only in (None, "embedded"):
        configs.append(("embedded", {}))
    pg, redis = os.environ.get("FRAUDRAIL_TEST_DATABASE_URL"), os.environ.get("FRAUDRAIL_TEST_REDIS_URL")
    if args.only in (None, "services"):
        if pg and redis:
            configs.append(
                ("postgres-redis", {"test_database_url": pg, "cache_backend": "redis", "redis_url": redis})
            )
        else:
            log("no FRAUDRAIL_TEST_DATABASE_URL / FRAUDRAIL_TEST_REDIS_URL: PostgreSQL + Redis skipped")
    results = []
    for name, settings in configs:
        log(f"== {name}: {args.minutes} min at {args.rate:.0f}/s")
        try:
            results.append(run(name, settings, artifact, args))
        except RuntimeError as exc:  # the server did not start: say so, keep the other figures
            log(f"{name}: not measured: {exc}")
            continue
        log(describe(results[-1], args.rate))
    if not results:
        print("RESULT errors=nan rss_growth_mb=nan p99_ms=nan", flush=True)
        return 1
    write_section("bench-soak", doc(results, args, artifact))
    errors = sum(r["errors"] for r in results)
    growth = max(r["growth"] for r in results)
    p99 = max(r["p99"] for r in results)
    print(f"RESULT errors={errors} rss_growth_mb={growth:.1f} p99_ms={p99:.1f}", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
