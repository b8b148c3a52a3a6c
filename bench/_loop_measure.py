"""bench-loop's two side measurements: the hot path's throughput with production monitoring on vs
off (two real server processes, rounds alternated), and the time of a 30-day backtest of a
1,000-card tenant."""

from __future__ import annotations

import statistics
import time
from decimal import Decimal
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from _common import PY, REPO, free_port, log
from _cpu import tree_cpu_s
from _load import Load, LoadSpec
from _loop_harness import LoopApp
from _servers import Server, admin_key, bench_templates, onboard, promote, register_model, session_factory

from control_plane.db import unit_of_work


def monitoring_throughput(
    tmp: Path, artifact: bytes, profile: dict[str, Any], *, rounds: int, seconds: float, concurrency: int
) -> dict[str, Any]:
    """Checks/s of a server with monitoring on and of one with it off, ``rounds`` each, alternated
    (the two processes are up together; only one is loaded at a time), and each server's CPU time
    per check sent (warm-up included): on a shared machine the checks/s of one round move with the
    other processes' load, while the CPU a check costs the server moves much less, and at
    saturation on a core of its own throughput is its inverse."""
    from control_plane.registry.orm import ModelVersion

    servers: dict[str, Server] = {}
    keys: dict[str, str] = {}
    try:
        for mode in ("on", "off"):
            home = tmp / f"serve-{mode}"
            home.mkdir(parents=True)
            port = free_port()
            env = {"FRAUDRAIL_HOME": str(home), "FRAUDRAIL_TENANT_TEMPLATES_DIR": str(bench_templates(home))}
            cmd = [PY, str(REPO / "bench" / "loop_server.py"), "--port", str(port), "--monitoring", mode]
            server = servers[mode] = Server(f"monitoring {mode}", cmd, port, home / "server.log", env).start()
            tenant = onboard(server.url, admin_key(server), f"loop-{mode}")
            factory = session_factory(home)
            version = register_model(factory, home, tenant["id"], f"mv_loop_{mode}", artifact)
            with unit_of_work(factory) as s:
                row = s.get(ModelVersion, version)
                assert row is not None
                row.reference_profile = profile  # monitored: the checks are counted into its bins
            promote(server.url, tenant["admin"], version)
            keys[mode] = tenant["app"]
        rps: dict[str, list[float]] = {"on": [], "off": []}
        cpu_us: dict[str, list[float]] = {"on": [], "off": []}
        errors = 0
        for r in range(rounds):
            for mode in ("on", "off") if r % 2 == 0 else ("off", "on"):
                spec = LoadSpec(
                    port=servers[mode].port, concurrency=concurrency, warmup_s=2.0, duration_s=seconds,
                    keys=[keys[mode]], sim_t0=1.79e9 + r * 86_400, label=f"loop-{mode}-{r}", seed=r,
                )  # fmt: skip
                pid = servers[mode].pid
                cpu_before = tree_cpu_s(pid)
                result = Load(spec).start().result()
                cpu_us[mode].append((tree_cpu_s(pid) - cpu_before) / max(result.sent_total, 1) * 1e6)
                errors += int(np.count_nonzero(result.status != 200))
                rps[mode].append(result.rps)
                log(
                    f"throughput round {r + 1}/{rounds}, monitoring {mode}: {result.rps:.0f} checks/s, "
                    f"{cpu_us[mode][-1]:.0f} us of server CPU a check"
                )
        on, off = statistics.median(rps["on"]), statistics.median(rps["off"])
        cpu_on, cpu_off = statistics.median(cpu_us["on"]), statistics.median(cpu_us["off"])
        return {
            "on": rps["on"],
            "off": rps["off"],
            "ratio": on / off if off else float("nan"),
            "cpu_us_on": cpu_us["on"],
            "cpu_us_off": cpu_us["off"],
            # Throughput a core would give with monitoring on, relative to off: CPU off / CPU on.
            "cpu_ratio": cpu_off / cpu_on if cpu_on else float("nan"),
            "errors": errors,
        }
    finally:
        for server in servers.values():
            server.stop()


def backtest_time(
    loop: LoopApp, artifact: bytes, sink_url: str, *, cards: int, days: int, seed: int
) -> dict[str, Any]:
    """A tenant with ``days`` of ``cards`` cards' scored traffic stored (scores from the champion,
    computed in batch) and its chargebacks labelled through the API; then POST /v1/backtests
    replays a lower REVIEW threshold over those days against the live policy, timed."""
    from control_plane.monitoring.orm import ScoredTransaction
    from fraud_model.features import batch_features
    from fraud_model.scoring import Scorer
    from fraud_model.simulator import simulate
    from fraud_model.training import TrainedModel

    tenant = loop.onboard("backtest-1k", sink_url)
    frame = simulate(cards, cards * 2, days, start_date="2026-03-01", seed=seed + 7)
    features = batch_features(frame)
    model = TrainedModel.from_bytes(artifact)
    scores = Scorer(model).score_batch(features[list(model.feature_names)].to_numpy(dtype=np.float32))
    decision = np.where(scores >= 0.8, "SUSPICIOUS", np.where(scores >= 0.5, "REVIEW", "LEGIT"))
    with unit_of_work(loop.state.factory) as session:
        session.add_all(
            ScoredTransaction(
                tenant_id=tenant["id"],
                txn_id=t,
                ts=ts.to_pydatetime(),
                amount=Decimal(f"{a:.2f}"),
                card_token=c,
                terminal_id=term,
                score=float(sc),
                decision=str(d),
                model_version="mv_backtest",
                cohort="stable",
            )
            for t, ts, a, c, term, sc, d in zip(
                frame["txn_id"],
                frame["ts"],
                frame["amount"],
                frame["card_token"],
                frame["terminal_id"],
                scores,
                decision,
                strict=True,
            )
        )
    frauds = frame[frame["is_fraud"] == 1]
    labels = pd.DataFrame({"txn_id": frauds["txn_id"], "known_at": frauds["ts"] + pd.Timedelta(days=3)})
    loop.label(tenant["admin"], labels)
    t = time.perf_counter()
    out = loop.call("POST", "/v1/backtests", tenant["admin"], json={"review_threshold": "0.3", "days": days})
    elapsed = time.perf_counter() - t
    return {
        "seconds": elapsed,
        "transactions": int(out["transactions"]),
        "stored": len(frame),
        "labelled": int(out["labelled"]),
        "flips": sum(int(f["count"]) for f in out["flips"]),
        "live_review": int(out["live"]["review"]),
        "proposed_review": int(out["proposed"]["review"]),
    }
