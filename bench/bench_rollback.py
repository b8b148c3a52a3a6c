"""Canary rollback under load: time from the alert until every answer comes from the stable version,
and failed requests during the shift. Writes docs/benchmarks.md (bench-rollback section).

    make bench-rollback        # = .venv/bin/python bench/bench_rollback.py

The alert is ``POST /v1/rollouts/{id}/rollback``: it publishes the same ``rollout.alarm`` event as an
automatic rollback, and the in-process bus runs ``lambdas/rollback/handler.py`` on it. A second part
drives the automatic path: ``POST /v1/chaos/model-faults`` makes the canary fail, the rollout's
analysis raises the alarm itself. A benchmark, not a test: goals are printed, never asserted.
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from datetime import datetime
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
    trained_artifact,
    write_section,
)
from _load import (
    Load,
    LoadResult,
    LoadSpec,
)
from _servers import (
    Sink,
    admin_key,
    auth,
    control_plane,
    onboard,
    promote,
    register_model,
    session_factory,
)

CONCURRENCY = 16
TRIALS = 3
WARMUP_S, BEFORE_S, AFTER_S = 2.0, 3.0, 5.0
AUTO_BAKE_S, AUTO_MAX_S = 10, 60.0
GOAL_S = 1.0


class Sim:
    def __init__(self) -> None:
        self.t = time.time() - 40 * 86_400

    def advance(self, r: LoadResult) -> None:
        self.t += r.sent_total * 86_400 / (N_CARDS * TXN_PER_CARD_PER_DAY) + 3600


def probe(http: httpx.Client, app: str, i: int) -> dict[str, Any]:
    body = {
        "txn_id": f"probe-{time.time_ns()}-{i}",
        "card_token": f"card_probe_{i}",
        "terminal_id": "term_1",
        "timestamp": datetime.now().astimezone().isoformat(),
        "amount": "12.50",
        "currency": "EUR",
    }
    r = http.post("/v1/fraud-check", json=body, headers=auth(app))
    r.raise_for_status()
    answer: dict[str, Any] = r.json()
    return answer


def start_rollout(http: httpx.Client, t: dict[str, str], candidate: str, bake_s: int) -> str:
    r = http.post(
        "/v1/rollouts",
        json={"candidate_version": candidate, "steps": [5000, 10000], "bake_s": bake_s, "min_requests": 100},
        headers=auth(t["admin"]),
    )
    if r.status_code != 201:
        raise RuntimeError(f"start rollout: {r.status_code} {r.text}")
    rollout_id: str = r.json()["id"]
    deadline = time.monotonic() + 30
    i = 0
    while time.monotonic() < deadline:  # the worker's first reconcile moves 50% to the canary
        i += 1
        answer = probe(http, t["app"], i)
        if answer["cohort"] == "canary" or "canary_model" in answer["degraded_inputs"]:
            return rollout_id
        time.sleep(0.02)
    raise RuntimeError("the canary never received traffic")


def rollout_state(http: httpx.Client, t: dict[str, str], rollout_id: str) -> str:
    state: str = http.get(f"/v1/rollouts/{rollout_id}", headers=auth(t["admin"])).json()["state"]
    return state


def emergency_trial(
    http: httpx.Client, port: int, t: dict[str, str], stable: str, candidate: str, sim: Sim, n: int
) -> dict[str, Any]:
    rollout_id = start_rollout(http, t, candidate, bake_s=3600)
    spec = LoadSpec(
        port=port,
        concurrency=CONCURRENCY,
        warmup_s=WARMUP_S,
        duration_s=BEFORE_S + AFTER_S,
        keys=[t["app"]],
        sim_t0=sim.t,
        label=f"rb{n}",
        seed=n,
    )
    load = Load(spec).start()
    t0 = load.wait_started()
    time.sleep(max(0.0, t0 + WARMUP_S + BEFORE_S - time.monotonic()))
    t_alert = time.monotonic()
    resp = http.post(
        f"/v1/rollouts/{rollout_id}/rollback",
        json={"reason": "benchmark: fraud spike reported by ops"},
        headers=auth(t["admin"]),
    )
    t_answered = time.monotonic()
    r = load.result()
    sim.advance(r)
    out = shift(r, t_alert, stable, candidate)
    out.update(
        rollout=rollout_id,
        alert_status=resp.status_code,
        alert_ms=(t_answered - t_alert) * 1000,
        state=rollout_state(http, t, rollout_id),
    )
    log(
        f"  trial {n}: rollback {out['rollback_s'] * 1000:7.1f} ms after the alert  "
        f"(alert request {out['alert_ms']:.0f} ms, HTTP {resp.status_code}, rollout {out['state']}); "
        f"canary share before {out['canary_before']:.0%}; {out['n']:,} requests, {out['rps']:.0f} req/s, "
        f"non-200 {out['failed']}"
    )
    return out


def shift(r: LoadResult, t_alert: float, stable: str, candidate: str) -> dict[str, Any]:
    version = np.asarray([v or "" for v in r.version])
    canary = version == candidate
    before = r.t_send < t_alert
    last_canary = float(r.t_recv[canary].max()) if canary.any() else t_alert
    later = r.t_send > last_canary
    out: dict[str, Any] = {
        "rollback_s": max(0.0, last_canary - t_alert),
        "canary_before": float(canary[before].mean()) if before.any() else float("nan"),
        "canary_after_alert": int((canary & ~before).sum()),
        "later_not_stable": int((later & (version != stable)).sum()),
        "failed": int((r.status != 200).sum()),
        "failed_in_shift": int(((r.status != 200) & (r.t_recv >= t_alert) & (r.t_send <= last_canary)).sum()),
        "n": len(r.t_send),
        "rps": r.rps,
        "p99": float(np.percentile(r.latency_ms, 99)),
    }
    return out


def automatic_trial(
    http: httpx.Client, admin: str, home: Path, port: int, t: dict[str, str], **kw: Any
) -> dict[str, Any]:
    """The canary fails on every call from its first request; the rollout's analysis must notice."""
    stable, candidate, sim = kw["stable"], kw["candidate"], kw["sim"]
    r = http.post(
        "/v1/chaos/model-faults",
        json={"tenant_id": t["id"], "version_id": candidate, "error": True},
        headers=auth(admin),
    )
    if r.status_code != 204:
        raise RuntimeError(f"chaos endpoint: {r.status_code} {r.text}")
    wall_offset = time.time() - time.monotonic()
    rollout_id = start_rollout(http, t, candidate, bake_s=AUTO_BAKE_S)
    t_onset = time.monotonic()  # the probe just saw the first canary failure
    spec = LoadSpec(
        port=port,
        concurrency=CONCURRENCY,
        warmup_s=0.0,
        duration_s=AUTO_MAX_S,
        keys=[t["app"]],
        sim_t0=sim.t,
        label="auto",
        seed=99,
    )
    load = Load(spec).start()
    load.wait_started()
    deadline = time.monotonic() + AUTO_MAX_S
    while time.monotonic() < deadline and rollout_state(http, t, rollout_id) != "ROLLED_BACK":
        time.sleep(0.5)
    time.sleep(3.0)  # keep the load on to see every answer come from the stable version
    load.stop()
    res = load.result()
    sim.advance(res)
    http.delete("/v1/chaos/model-faults", headers=auth(admin))
    version = np.asarray([v or "" for v in res.version])
    degraded = np.asarray(["canary_model" in d for d in res.degraded])
    touched = (version == candidate) | degraded  # answered by the canary, or by stable after it failed
    last = float(res.t_recv[touched].max()) if touched.any() else float("nan")
    handled = None
    log_path = home / "rollback-log.jsonl"
    if log_path.exists():
        for line in log_path.read_text().splitlines():
            rec = json.loads(line)
            if json.dumps(rec).find(rollout_id) >= 0 and rec.get("at"):
                handled = datetime.fromisoformat(rec["at"]).timestamp() - wall_offset
    out: dict[str, Any] = {
        "state": rollout_state(http, t, rollout_id),
        "detect_s": (handled - t_onset) if handled is not None else float("nan"),
        # Signed: the log record's time is taken after the weights moved, so this can be negative.
        "shift_s": (last - handled) if handled is not None else float("nan"),
        "failed": int((res.status != 200).sum()),
        "degraded": int(degraded.sum()),
        "n": len(res.t_send),
        "later_not_stable": int(((res.t_send > last) & (version != stable)).sum()),
    }
    log(
        f"  the alarm was handled {out['detect_s']:.1f} s after the first canary failure "
        f"(rollout {out['state']}); last canary-touched answer {out['shift_s'] * 1000:+.0f} ms from "
        f"the rollback-log record; {out['degraded']:,} answers served by stable after a canary failure; "
        f"non-200 {out['failed']} of {out['n']:,}"
    )
    return out


def main() -> None:
    t_begin = time.monotonic()
    env = machine()
    log(f"bench-rollback: {env['cores']} cores, load average {env['load']}, {env['date']}")
    artifact = trained_artifact()
    model = describe_model(artifact)
    log(f"model: {model}")
    tmp = Path(tempfile.mkdtemp(prefix="fraudrail-bench-rollback-"))
    home, port = tmp / "home", free_port()
    server = control_plane(home, port, log_name="server.log")
    sink = Sink()
    trials: list[dict[str, Any]] = []
    auto: dict[str, Any] | None = None
    try:
        server.start()
        log(f"control plane on :{port}; logs in {tmp}")
        admin = admin_key(server)
        t = onboard(server.url, admin, "bench-rollback")
        factory = session_factory(home)
        stable = register_model(factory, home, t["id"], "mv_rbstable", artifact)
        promote(server.url, t["admin"], stable)
        from control_plane.db import unit_of_work
        from control_plane.tenants.orm import Tenant

        with unit_of_work(factory) as s:
            tenant = s.get(Tenant, t["id"])
            assert tenant is not None
            tenant.contacts = {"email": "ops@example.com", "slack_webhook_url": sink.url}
        sim = Sim()
        log(f"\nEmergency rollback (POST /v1/rollouts/{{id}}/rollback) at concurrency {CONCURRENCY}:")
        with httpx.Client(base_url=server.url, timeout=30) as http:
            for n in range(1, TRIALS + 1):
                candidate = register_model(factory, home, t["id"], f"mv_rbcand{n}", artifact)
                trials.append(emergency_trial(http, port, t, stable, candidate, sim, n))
            log(f"\nAutomatic path (canary failing through /v1/chaos/model-faults, bake_s={AUTO_BAKE_S}):")
            candidate = register_model(factory, home, t["id"], "mv_rbauto", artifact)
            try:
                auto = automatic_trial(
                    http, admin, home, port, t, stable=stable, candidate=candidate, sim=sim
                )
            except (RuntimeError, httpx.HTTPError) as exc:
                log(f"  skipped: {exc}")
    finally:
        server.stop()
        sink.close()
    report(trials, auto, env, model, sink.posts, time.monotonic() - t_begin)


def report(
    trials: list[dict[str, Any]],
    auto: dict[str, Any] | None,
    env: dict[str, str],
    model: str,
    posts: int,
    elapsed: float,
) -> None:
    worst = max(tr["rollback_s"] for tr in trials)
    failed = sum(tr["failed"] for tr in trials)
    stray = sum(tr["later_not_stable"] for tr in trials)
    after = os.getloadavg()
    load_after = f"{after[0]:.2f}, {after[1]:.2f}, {after[2]:.2f}"
    goal = (
        f"rollback {worst * 1000:.0f} ms (goal < {GOAL_S:.0f} s): {met(worst < GOAL_S)}; "
        f"failed requests {failed} (goal 0): {met(failed == 0)}"
    )
    log(f"\nGoals: {goal}")
    log(f"(load average before {env['load']}, after {load_after}; webhook posts {posts}; {elapsed:.0f} s)")
    cols: tuple[str, ...] = (
        "trial",
        "rollback (ms)",
        "alert request (ms)",
        "canary share before",
        "requests",
        "req/s",
    )
    cols += ("p99 (ms)", "non-200", "rollout")
    head = "| " + " | ".join(cols) + " |\n|" + " --- |" * len(cols)
    rows = "\n".join(
        f"| {i} | {tr['rollback_s'] * 1000:.1f} | {tr['alert_ms']:.0f} | {tr['canary_before']:.0%} "
        f"| {tr['n']:,} | {tr['rps']:.0f} | {tr['p99']:.1f} | {tr['failed']} | {tr['state']} |"
        for i, tr in enumerate(trials, 1)
    )
    if auto is not None:
        auto_text = (
            f"Automatic path (one run): `POST /v1/chaos/model-faults` makes the canary version raise on "
            f"every call (the embedded model host's `inject_fault`, development only), with "
            f"`bake_s={AUTO_BAKE_S}`. Canary requests were answered by the stable version "
            f'(`degraded_inputs: ["canary_model"]`, {auto["degraded"]:,} of them) and no request failed '
            f"({auto['failed']} non-200 of {auto['n']:,}). The rollout's own analysis raised the alarm and "
            f"the handler moved the weights {auto['detect_s']:.1f} s after the first canary failure "
            f"(detection waits for the SLO recorder's 10 s buckets and the analysis ticks); the last "
            f"canary-touched answer came {auto['shift_s'] * 1000:+.0f} ms from the handler's rollback-log "
            f"record (written right after the weight change); rollout "
            f"{auto['state']}."
        )
    else:
        auto_text = "Automatic path: not measured in this run (see the script's output)."
    body = f"""
## Canary rollback under load (`bench/bench_rollback.py`)

Measured {env["date"]} on {env["cores"]} cores (load average {env["load"]} before, {load_after} after),
with `make bench-rollback` (`.venv/bin/python bench/bench_rollback.py`, {elapsed:.0f} s).

Method: the real control plane (`python -m control_plane.cli serve`, in-process cache and bus,
SQLite), a standard tenant onboarded through the API with a PRODUCTION model ({model}, trained
with `fraud_model`'s defaults) and an APPROVED candidate (the same artifact), its Slack contact
pointed at a local receiver. Each trial starts a canary rollout (`POST /v1/rollouts`, steps
[5000, 10000], `bake_s` 3600 so it never advances by itself), waits until the canary answers, runs
{CONCURRENCY} closed-loop connections with unique `txn_id`s ({WARMUP_S:.0f} s warm-up,
{BEFORE_S + AFTER_S:.0f} s measured) and, {BEFORE_S:.0f} s in, sends the alert:
`POST /v1/rollouts/{{id}}/rollback`, which publishes the `rollout.alarm` event the automatic path
publishes; `lambdas/rollback/handler.py` runs on it as a bus subscriber. Rollback time = from
sending the alert until the last answer whose `model_version` is the canary (every later answer is
the stable version: {stray} exceptions); failed = non-200 answers over the whole measured window.
The alert request itself returns after the handler has also written the rollback log, the audit
ledger and notified Slack.

{head}
{rows}

{auto_text}

Goal: {goal}.
"""
    write_section("bench-rollback", body)
    log(f"wrote {(REPO / 'docs' / 'benchmarks.md').relative_to(REPO)} (bench-rollback section)")
    log(f"RESULT rollback_s={worst:.3f} failed={failed}")


if __name__ == "__main__":
    main()
