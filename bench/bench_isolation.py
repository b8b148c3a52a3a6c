"""Noisy neighbour: does one tenant flooding /v1/fraud-check move another tenant's p99?

    make bench-isolation        # = .venv/bin/python bench/bench_isolation.py

``fraudrail serve`` on embedded defaults with the real tier quotas. Tenant A (trial: 20 requests/s,
burst 40) floods as fast as the server answers on ``--flooders`` keep-alive connections (a closed
loop in its own process); tenant B (standard) sends ``--b-rate`` requests/s, open loop, from another
process. Alone and flooded phases alternate (``--rounds`` of each, ``--phase-s`` seconds, B's probe
running throughout), so slow drifts of a shared machine fall on both sides; the baseline is B alone
in the same run. The whole thing runs twice: with the refusal windows (the default: A's surplus is
answered 429 before routing) and with ``FRAUDRAIL_FINOPS_REFUSAL_WINDOW_S=0`` (every request of A
goes through the route and the bucket). The FinOps issue's bound is B's p99 within +20 %.
Writes docs/benchmarks.md (bench-isolation section). A benchmark: the goal is printed, not asserted.
"""

from __future__ import annotations

import argparse
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import numpy as np
from _common import (
    describe_model,
    free_port,
    log,
    machine,
    met,
    pct,
    trained_artifact,
    write_section,
)
from _load import (
    Load,
    LoadResult,
    LoadSpec,
)
from _probe import (
    Probe,
    ProbeSpec,
)
from _servers import (
    admin_key,
    auth,
    control_plane,
    onboard,
    promote,
    register_model,
    session_factory,
)

BOUND = 1.20
SETTLE_S = 1.0  # dropped at each phase's start: the flood's connections opening, the queue draining
TICKS = 100.0  # os.sysconf("SC_CLK_TCK") on Linux


def cpu_seconds(pid: int) -> float:
    """utime + stime of a process, from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS


def in_windows(t: np.ndarray, windows: list[tuple[float, float]]) -> np.ndarray:
    mask = np.zeros(len(t), dtype=bool)
    for lo, hi in windows:
        mask |= (t >= lo) & (t < hi)
    return mask


def run(name: str, settings: dict[str, str], artifact: bytes, args: argparse.Namespace) -> dict[str, Any]:
    home = Path(tempfile.mkdtemp(prefix="fraudrail-bench-isolation-"))
    port = free_port()
    server = control_plane(home, port, log_name="server.log", real_quotas=True, **settings).start()
    base = server.url
    try:
        admin = admin_key(server)
        tag = uuid.uuid4().hex[:6]
        a = onboard(base, admin, f"noisy-a-{tag}", tier="trial")
        b = onboard(base, admin, f"calm-b-{tag}", tier="standard")
        factory = session_factory(home)
        for t, label in ((a, "a"), (b, "b")):
            version = register_model(factory, home, t["id"], f"mv_iso{label}{tag}", artifact)
            promote(base, t["admin"], version)
            with httpx.Client(base_url=base, headers=auth(t["app"]), timeout=60) as http:
                # The first check loads the model; not part of any phase.
                body = {
                    "txn_id": f"warm-{label}-{tag}",
                    "card_token": "card_warm",
                    "terminal_id": "term_1",
                    "timestamp": "2026-11-20T10:00:00+00:00",
                    "amount": "10.00",
                    "currency": "EUR",
                }
                http.post("/v1/fraud-check", json=body).raise_for_status()

        assert server.proc is not None
        pid = server.proc.pid
        probe = Probe(ProbeSpec(port=port, key=b["app"], rate=args.b_rate, label=f"b{tag}"))
        probe.start()
        windows: dict[str, list[tuple[float, float]]] = {"alone": [], "steady": [], "flood": []}
        cpu = {phase: [0.0, 0.0] for phase in windows}  # server CPU seconds, wall seconds
        floods: list[LoadResult] = []
        a_steady: list[np.ndarray] = []

        def measure(phase: str, lo: float, wait: Any) -> None:
            """Record [lo, end of ``wait()``) as one window of ``phase``."""
            time.sleep(max(0.0, lo - time.monotonic()))
            c0 = cpu_seconds(pid)
            hi = wait()
            cpu[phase][0] += cpu_seconds(pid) - c0
            cpu[phase][1] += hi - lo
            windows[phase].append((lo, hi))

        def alone_phase() -> None:
            lo = time.monotonic() + SETTLE_S
            measure("alone", lo, lambda: (time.sleep(args.phase_s), time.monotonic())[1])

        for _ in range(args.rounds):
            alone_phase()
            # A at its quota: open loop, just under the trial tier's 20 requests/s.
            steady = Probe(ProbeSpec(port=port, key=a["app"], rate=args.a_rate, label=f"s{tag}"))
            lo = steady.start() + SETTLE_S
            measure("steady", lo, lambda: (time.sleep(args.phase_s), time.monotonic())[1])
            a_steady.append(steady.stop()[2])
            spec = LoadSpec(
                port=port,
                concurrency=args.flooders,
                warmup_s=SETTLE_S,
                duration_s=args.phase_s,
                keys=[a["app"]],
                label=f"a{tag}",
            )
            load = Load(spec).start()
            lo = load.wait_started() + SETTLE_S
            result: list[LoadResult] = []

            def flood_end(load: Load = load, result: list[LoadResult] = result, lo: float = lo) -> float:
                result.append(load.result())
                return lo + result[0].duration_s

            measure("flood", lo, flood_end)
            floods.append(result[0])
        alone_phase()
        t_send, t_recv, status, connections = probe.stop()
    finally:
        server.stop()

    latency = (t_recv - t_send) * 1000.0
    out: dict[str, Any] = {"name": name, "b_connections": connections}
    for phase, spans in windows.items():
        mask = in_windows(t_send, spans)
        lat, st = latency[mask], status[mask]
        out[phase] = {
            "n": int(mask.sum()),
            "p50": pct(lat, 50),
            "p95": pct(lat, 95),
            "p99": pct(lat, 99),
            "not_200": int((st != 200).sum()),
            "codes": {int(k): int(v) for k, v in zip(*np.unique(st, return_counts=True), strict=True)},
            "cpu": cpu[phase][0] / cpu[phase][1],
        }
    a_status = np.concatenate([r.status for r in floods])
    a_seconds = sum(r.duration_s for r in floods)
    out["a"] = {
        "rps": len(a_status) / a_seconds,
        "ok": int((a_status == 200).sum()),
        "refused": int((a_status == 429).sum()),
        "other": int(((a_status != 200) & (a_status != 429)).sum()),
        "seconds": a_seconds,
    }
    steady_status = np.concatenate(a_steady)
    out["a_steady"] = {"n": len(steady_status), "not_200": int((steady_status != 200).sum())}
    out["ratio"] = out["flood"]["p99"] / out["alone"]["p99"]
    out["ratio_steady"] = out["flood"]["p99"] / out["steady"]["p99"]
    out["ratio_p50"] = out["flood"]["p50"] / out["alone"]["p50"]
    return out


def describe(r: dict[str, Any]) -> str:
    al, st, fl, a = r["alone"], r["steady"], r["flood"], r["a"]
    return (
        f"{r['name']}: B p50 / p99 alone {al['p50']:.2f} / {al['p99']:.2f} ms (n={al['n']}), "
        f"A steady {st['p50']:.2f} / {st['p99']:.2f} ms (n={st['n']}), "
        f"A flooding {fl['p50']:.2f} / {fl['p99']:.2f} ms (n={fl['n']}); "
        f"p99 ratio {r['ratio']:.2f} vs alone, {r['ratio_steady']:.2f} vs steady; "
        f"A flooding {a['rps']:,.0f} req/s ({a['ok']} answered, {a['refused']} refused); "
        f"server CPU {al['cpu']:.0%} / {st['cpu']:.0%} / {fl['cpu']:.0%}; "
        f"B answers {al['codes']} / {st['codes']} / {fl['codes']}; "
        f"A steady non-200: {r['a_steady']['not_200']}"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--phase-s", type=float, default=10.0)
    parser.add_argument("--flooders", type=int, default=8, help="tenant A's connections (closed loop)")
    parser.add_argument("--b-rate", type=float, default=100.0, help="tenant B's requests/s (open loop)")
    parser.add_argument(
        "--a-rate", type=float, default=18.0, help="tenant A's requests/s in the steady phases (quota: 20)"
    )
    parser.add_argument("--no-doc", action="store_true", help="do not write docs/benchmarks.md")
    parser.add_argument("--default-only", action="store_true", help="skip the two comparison servers")
    args = parser.parse_args()

    artifact = trained_artifact()
    configs = [
        ("windows + hold (default)", {}),
        ("windows, no hold (REFUSAL_HOLD_S=0)", {"finops_refusal_hold_s": "0"}),
        ("neither (REFUSAL_WINDOW_S=0)", {"finops_refusal_window_s": "0"}),
    ]
    if args.default_only:
        configs = configs[:1]
    results = []
    for name, settings in configs:
        log(f"-- {name}")
        results.append(run(name, settings, artifact, args))
        log(describe(results[-1]))

    default = results[0]
    ok = default["ratio"] <= BOUND and default["alone"]["not_200"] + default["flood"]["not_200"] == 0
    log(
        f"B's p99 flooded / alone = {default['ratio']:.2f} with refusal windows "
        f"(goal ≤ {BOUND:.2f}: {met(ok)}); {default['ratio_steady']:.2f} against B with A at its quota"
    )
    if not args.no_doc and not args.default_only:
        write_section("bench-isolation", doc(results, args, artifact))
    return 0


def doc(results: list[dict[str, Any]], args: argparse.Namespace, artifact: bytes) -> str:
    env = machine()
    rows = []
    for r in results:
        al, st, fl, a = r["alone"], r["steady"], r["flood"], r["a"]
        rows.append(
            f"| {r['name']} | {al['p50']:.2f} / {al['p99']:.2f} | {st['p50']:.2f} / {st['p99']:.2f} | "
            f"{fl['p50']:.2f} / {fl['p99']:.2f} | **{r['ratio']:.2f}** | {r['ratio_steady']:.2f} | "
            f"{a['rps']:,.0f} | {a['refused'] / max(1, a['ok'] + a['refused']):.1%} | "
            f"{al['cpu']:.0%} / {st['cpu']:.0%} / {fl['cpu']:.0%} | "
            f"{al['not_200'] + st['not_200'] + fl['not_200']} |"
        )
    default = results[0]
    return f"""## Noisy neighbour (`bench/bench_isolation.py`)

`make bench-isolation` — {env["date"]}, {env["cores"]} cores, load average {env["load"]}. Embedded
defaults, the real tier quotas. Tenant A (trial: 20 requests/s, burst 40) floods as fast as the
server answers on {args.flooders} keep-alive connections; tenant B (standard) sends
{args.b_rate:g} requests/s open loop from another process. {args.rounds} alone and {args.rounds}
flooded phases of {args.phase_s:g} s alternate while B's probe runs throughout ({args.rounds + 1}
alone phases in all), and in each round A also sends {args.a_rate:g} requests/s, within its quota
(the "A at quota" phases). The baseline is B alone in the same run. Model: {describe_model(artifact)}.
Latencies in ms, as B's client sees them.

| server | B alone p50 / p99 | B, A at quota | B, A flooding | p99 ratio vs alone | vs A at quota \
| A flooding req/s | A refused | server CPU (alone / quota / flood) | B non-200 |
| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |
{chr(10).join(rows)}

Goal (FinOps issue): B's p99 within +20 % while A floods: {met(default["ratio"] <= BOUND)} with the
default server ({default["ratio"]:.2f}). Once the bucket refuses A, the limiter remembers until A's
next token can exist (at most 1 s) and `ShedRefusedTenants` answers A's 429 before routing, from the
raw headers and the key cache, without reading the body or asking the bucket; a request that
ignored an earlier 429 gets its own after 0.25 s ± 50 %, so A's closed loop slows to a few requests
a second per connection. The second row answers from memory but never holds (A's refusals, ~130 µs
each, then take the whole core); the third sends every request of A through the route and the
bucket. The ratio moves by about ±0.15 from run to run on this shared machine (the default server's
earlier runs: 1.22, 1.02, 0.95, 1.00); `docs/finops.md` describes the mechanism.
"""


if __name__ == "__main__":
    raise SystemExit(main())
