"""bench-features' HTTP part: POST /v1/fraud-check with the handbook set and with a tenant set, each
against the HTTP floor measured right before it in the same run (issue 16).

One ``fraudrail serve`` (in-process cache, SQLite, 1 worker; the tiers' rate limits lifted, the
limiter still runs) and the floor app (``bench/floor_app.py``, 1 worker). Two tenants onboarded
through the API: one serves a model trained on the handbook set; the other declares the tenant set
through ``PUT /v1/feature-sets/{name}`` (its active set, so checks' attributes are validated
against it) and serves a model trained on that set, the set's lineage (document and learned
encodings) in the version's params as a training run leaves it, so the hot path scores it with the
set's online engine. Both replay the simulated test week in time order (``_event_bodies``): the
tenant's bodies carry the set's attributes, the handbook tenant's do not; the floor parses each
shape before the row it is compared with.
"""

from __future__ import annotations

import subprocess
import tempfile
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import orjson
from _common import free_port, log, summary
from _cpu import tree_cpu_s
from _event_bodies import write_events
from _load import Load, LoadResult, LoadSpec
from _servers import (
    admin_key,
    auth,
    control_plane,
    floor_server,
    model_row,
    onboard,
    promote,
    session_factory,
    store_artifact,
)

from fraud_model.feature_sets.training import with_feature_set
from fraud_model.simulator_tenant import TENANT_ATTRIBUTES
from fraud_model.training import TrainedModel

HTTP_START, HTTP_END = "<!-- bench-features-http:start -->", "<!-- bench-features-http:end -->"
SETS = ("default", "tenant")


@dataclass(frozen=True)
class HttpConfig:
    seconds: float = 20.0
    warmup_s: float = 3.0
    concurrency: int = 16


def uptime() -> str:
    return subprocess.run(["uptime"], capture_output=True, text=True, check=False).stdout.strip()


def register(factory: Any, home: Path, tenant_id: str, version_id: str, model: TrainedModel) -> None:
    """The artifact in the local object store and an APPROVED row carrying the model's params
    (for a tenant-set model, ``params.feature_set``: what the serving registry compiles)."""
    from control_plane.db import unit_of_work
    from fraud_model.training import sha256

    artifact = model.to_bytes()
    key = f"tenants/{tenant_id}/models/{version_id}.frm"
    store_artifact(home, key, artifact)
    row = model_row(tenant_id, version_id, key, sha256(artifact), "APPROVED")
    row.params = dict(model.params)
    row.feature_set_version = model.feature_set_version
    with unit_of_work(factory) as s:
        s.add(row)


def declare_set(base: str, tenant_admin: str, document: dict[str, Any]) -> dict[str, Any]:
    name = str(document["name"])
    r = httpx.put(f"{base}/v1/feature-sets/{name}", json=document, headers=auth(tenant_admin), timeout=60)
    if r.status_code not in (200, 201):
        raise RuntimeError(f"PUT /v1/feature-sets/{name}: {r.status_code} {r.text}")
    out: dict[str, Any] = r.json()
    return out


def probe(base: str, app_key: str, events: Path, version_id: str) -> dict[str, Any]:
    """One check with the recording's first body: 200 and scored by ``version_id``, or fail loudly."""
    ts, body = orjson.loads(events.read_bytes().split(b"\n", 1)[0])
    stamp = time.strftime("%Y-%m-%dT%H:%M:%S+00:00", time.gmtime(ts))
    payload = {"txn_id": f"probe-{time.time_ns()}", "timestamp": stamp, **body}
    r = httpx.post(f"{base}/v1/fraud-check", json=payload, headers=auth(app_key), timeout=60)
    if r.status_code != 200 or r.json().get("model_version") != version_id:
        raise RuntimeError(f"probe of {version_id}: {r.status_code} {r.text}")
    answer: dict[str, Any] = r.json()
    return answer


def measure(
    port: int, key: str, events: Path, cfg: HttpConfig, label: str, pid: int | None
) -> dict[str, Any]:
    """One closed-loop run; its figures (checks/s, latency percentiles, non-200, server CPU per check)."""
    spec = LoadSpec(
        port=port,
        concurrency=cfg.concurrency,
        warmup_s=cfg.warmup_s,
        duration_s=cfg.seconds,
        keys=[key],
        label="".join(c if c.isalnum() else "-" for c in label),  # a txn_id prefix
        events=str(events),
    )
    cpu0 = tree_cpu_s(pid) if pid else 0.0
    r: LoadResult = Load(spec).start().result()
    ok = r.status == 200
    # Throughput counts answered checks only (a refused body is not a check).
    out: dict[str, Any] = dict(summary(r.latency_ms[ok], int(ok.sum()), r.duration_s))
    out["failed"] = int((~ok).sum())
    out["codes"] = sorted({int(c) for c in r.status if c != 200})
    out["sent"] = r.sent_total
    out["cpu_us"] = (tree_cpu_s(pid) - cpu0) / max(1, r.sent_total) * 1e6 if pid else float("nan")
    out["versions"] = Counter(v for v in r.version if v is not None)
    out["flagged"] = sum(d not in (None, "LEGIT") for d in r.decision) / max(1, int(ok.sum()))
    out["degraded"] = sum(bool(g) for g, k in zip(r.degraded, ok, strict=True) if k) / max(1, int(ok.sum()))
    log(
        f"  {label:<22} {out['rps']:8.0f} checks/s  p50 {out['p50']:7.2f}  p99 {out['p99']:8.2f} ms"
        f"  n={out['n']:,}  non-200={out['failed']} {out['codes'] or ''}"
        + (f"  server CPU {out['cpu_us']:.0f} µs/check" if pid else "")
    )
    for e in r.errors[:3]:
        log(f"    client error: {e}")
    return out


def run_http(
    models: dict[str, TrainedModel], document: dict[str, Any], events_frame: Any, cfg: HttpConfig
) -> dict[str, Any]:
    """Floor and fraud-check rows for both sets; ``models["tenant"]`` carries ``params.feature_set``."""
    tmp = Path(tempfile.mkdtemp(prefix="fraudrail-bench-features-"))
    files = {"default": tmp / "default.jsonl", "tenant": tmp / "tenant.jsonl"}
    n_events = write_events(events_frame, files["default"])
    write_events(events_frame, files["tenant"], TENANT_ATTRIBUTES)
    port, floor_port = free_port(), free_port()
    home = tmp / "home"
    res: dict[str, Any] = {"events": n_events, "uptime_before": uptime(), "config": cfg}
    floor = floor_server(floor_port, tmp / "floor.log")
    server = control_plane(home, port, log_name="server.log")
    try:
        floor.start()
        server.start()
        factory = session_factory(home)
        admin = admin_key(server)
        tenants = {}
        for name in SETS:
            t = onboard(server.url, admin, f"feat-{name}")
            version = f"mv_feat{name}"
            model = models[name]
            if name == "tenant":
                fs = declare_set(server.url, t["admin"], document)
                # The lineage a training run on this version of the set would record.
                lineage = {**model.params["feature_set"], "id": fs["id"], "label": fs["label"]}
                model = with_feature_set(model, lineage)
            register(factory, home, t["id"], version, model)
            promote(server.url, t["admin"], version)
            answer = probe(server.url, t["app"], files[name], version)
            reasons = ", ".join(r["feature"] for r in answer["reasons"][:3])
            n = len(model.feature_names)
            log(f"tenant {name}: {version} ({n} features) serving; probe reasons {reasons}")
            tenants[name] = (t, version)
        log(
            f"\nHTTP rows: {cfg.warmup_s:.0f} s warm-up + {cfg.seconds:.0f} s, concurrency {cfg.concurrency}:"
        )
        for name in SETS:
            t, version = tenants[name]
            res[f"floor-{name}"] = measure(
                floor_port, t["app"], files[name], cfg, f"floor ({name} bodies)", None
            )
            row = measure(
                port,
                t["app"],
                files[name],
                cfg,
                f"fraud-check {name}",
                server.proc.pid if server.proc else None,
            )
            wrong = sum(n for v, n in row["versions"].items() if v != version)
            if wrong:
                log(f"    {wrong} checks answered by another version than {version}")
            row["ratio"] = row["rps"] / max(1e-9, res[f"floor-{name}"]["rps"])
            res[name] = row
    finally:
        server.stop()
        floor.stop()
    res["uptime_after"] = uptime()
    return res


def http_lines(res: dict[str, Any], names: dict[str, str], run: str = "", result: str = "") -> list[str]:
    """The HTTP block of the docs section (between its markers); ``run`` and ``result`` for a run of
    this part alone (the full run's command and RESULT line are the section's)."""
    cfg: HttpConfig = res["config"]

    def cells(name: str) -> str:
        f, c = res[f"floor-{name}"], res[name]
        fails = f"{c['failed']}" + (f" ({','.join(map(str, c['codes']))})" if c["codes"] else "")
        return (
            f"| {names[name]} | {f['rps']:.0f} | {f['p99']:.1f} | {c['rps']:.0f} | {c['p50']:.1f} | "
            f"{c['p99']:.1f} | **{c['ratio']:.2f}** | {c['cpu_us']:.0f} | {fails} | {c['flagged']:.1%} | "
            f"{c['degraded']:.1%} |"
        )

    return [
        HTTP_START,
        "### Fraud-check throughput with each set against the floor (same run)",
        "",
        *([f"Run alone: {run}; it ended with `{result}`.", ""] if run else []),
        f"`uptime` before: `{res['uptime_before']}`; after: `{res['uptime_after']}`.",
        "",
        "`fraudrail serve` (in-process cache, SQLite, 1 worker, rate limits lifted) and the floor app "
        "(FastAPI parsing the same `FraudCheckRequest`, 1 worker), measured right before each row; one "
        "tenant serves a model trained on the handbook set, another declares the tenant set "
        "(`PUT /v1/feature-sets/{name}`, active) and serves a model trained on it (the set's lineage in "
        "the version's params). Both replay the simulated test week in time order "
        f"({res['events']:,} transactions, unique `txn_id`s; the tenant's bodies carry its 5 attributes), "
        f"closed loop, concurrency {cfg.concurrency}, {cfg.warmup_s:.0f} s warm-up then {cfg.seconds:.0f} s "
        "measured. Latencies client-side in ms; server CPU = the server's process CPU time over the "
        "run / checks sent. Every entity's state starts empty at the test week: a run covers hours of "
        "simulated time, so 30-day windows hold fewer events than in steady state.",
        "",
        "| feature set | floor checks/s | floor p99 | fraud-check checks/s | p50 | p99 | ratio to floor | "
        "server CPU µs / check | non-200 | flagged | degraded |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
        *(cells(name) for name in SETS),
        HTTP_END,
    ]


def replace_http_block(section_text: str, block: str) -> str:
    """``section_text`` with its HTTP block replaced (or added at its end)."""
    if HTTP_START in section_text and HTTP_END in section_text:
        before, rest = section_text.split(HTTP_START, 1)
        return before + block + rest.split(HTTP_END, 1)[1]
    return section_text.rstrip("\n") + "\n\n" + block + "\n"


def ratio_text(res: dict[str, Any] | None, name: str) -> str:
    if res is None or name not in res or not np.isfinite(res[name]["ratio"]):
        return "na"
    return f"{res[name]['ratio']:.3f}"
