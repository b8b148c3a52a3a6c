"""Where the server's CPU goes per fraud check: a sampled flame graph of the event-loop thread
and the server's CPU time per check, at concurrency 16 on the in-process cache (1 worker).

    .venv/bin/python bench/profile_scoring.py LABEL     # writes docs/flamegraph-scoring-LABEL.svg

Not a test. The server runs under ``bench/_sampler.py`` (a sampling profiler thread; py-spy is
not installed here), so its throughput is a little below the benchmark's.
"""

from __future__ import annotations

import os
import signal
import sys
import tempfile
import time
from pathlib import Path

from _common import PY, REPO, free_port, log, trained_artifact
from _cpu import tree_cpu_s
from _load import Load
from _sampler import flame_svg
from _servers import admin_key, control_plane, onboard, promote, register_model, session_factory

DURATION_S = float(os.environ.get("BENCH_DURATION_S", "20"))


def main() -> None:
    label = sys.argv[1] if len(sys.argv) > 1 else "now"
    artifact = trained_artifact()
    tmp = Path(tempfile.mkdtemp(prefix="fraudrail-profile-"))
    home, port = tmp / "home", free_port()
    collapsed = tmp / "stacks.collapsed"
    server = control_plane(home, port, log_name="server.log")
    server.cmd = [PY, str(REPO / "bench" / "_sampler.py"), str(collapsed), "--", "serve"]
    server.start()
    try:
        admin = admin_key(server)
        tenant = onboard(server.url, admin, "profile-main")
        version = register_model(session_factory(home), home, tenant["id"], "mv_profile", artifact)
        promote(server.url, tenant["admin"], version)
        from _load import LoadSpec

        spec = LoadSpec(
            port=port,
            concurrency=16,
            warmup_s=3,
            duration_s=DURATION_S,
            keys=[tenant["app"]],
            sim_t0=time.time() - 40 * 86_400,
            label="profile",
        )
        assert server.proc is not None
        server.proc.send_signal(signal.SIGUSR1)  # start sampling: the load's window only
        cpu0 = tree_cpu_s(server.proc.pid)
        result = Load(spec).start().result()
        cpu = tree_cpu_s(server.proc.pid) - cpu0
    finally:
        server.stop()
    us = cpu / max(1, result.sent_total) * 1e6
    ok = int((result.status == 200).sum())
    log(f"{label}: {result.rps:.0f} req/s, {ok} answered 200, server CPU {us:.0f} us per check")
    svg = flame_svg(
        collapsed.read_text(),
        f"fraud-check server CPU, event-loop thread ({label}): {result.rps:.0f} req/s, {us:.0f} us CPU/check",
    )
    out = REPO / "docs" / f"flamegraph-scoring-{label}.svg"
    out.write_text(svg)
    (REPO / "docs" / f"flamegraph-scoring-{label}.collapsed").write_text(collapsed.read_text())
    log(f"wrote {out.relative_to(REPO)}")


if __name__ == "__main__":
    main()
