"""Shared helpers of the HTTP benchmarks: servers as subprocesses, set-up through the API, a load
generator in its own process, percentiles, and the docs/benchmarks.md sections.

The load generator is closed-loop: ``concurrency`` keep-alive HTTP/1.1 connections, each sending
its next request as soon as the previous answer arrived. It runs on asyncio (uvloop) with raw
sockets in a separate process (``multiprocessing`` spawn), so the server's process and the
generator's do not share an interpreter. Every request carries a unique ``txn_id``.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import itertools
import json
import multiprocessing as mp
import os
import random
import shutil
import signal
import socket
import subprocess
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import numpy as np

REPO = Path(__file__).resolve().parent.parent
PY = str(REPO / ".venv" / "bin" / "python")
DOC = REPO / "docs" / "benchmarks.md"
CACHE_DIR = REPO / "var" / "bench-cache"

# The trained model: the simulator's data and fraud_model's default parameters (~200 trees, depth 4).
SIM_ARGS = (2000, 4000, 60)
N_CARDS = 5_000
N_TERMINALS = 1_000
TXN_PER_CARD_PER_DAY = 2.5  # the simulated clock advances so each card sees about this many a day


def log(msg: str) -> None:
    print(msg, flush=True)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def machine() -> dict[str, str]:
    load = os.getloadavg()
    return {
        "cores": str(os.cpu_count()),
        "load": f"{load[0]:.2f}, {load[1]:.2f}, {load[2]:.2f}",
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
    }


# --- the model ---------------------------------------------------------------------------------


def trained_artifact() -> bytes:
    """A model trained with fraud_model's defaults on simulated data; cached in var/bench-cache."""
    import xgboost

    from fraud_model.features import FEATURE_NAMES, FEATURE_SET_VERSION
    from fraud_model.training import DEFAULT_PARAMS

    # Keyed by everything the artifact depends on (the feature list changes without a version bump).
    tag = json.dumps(
        [SIM_ARGS, DEFAULT_PARAMS, FEATURE_SET_VERSION, FEATURE_NAMES, xgboost.__version__], sort_keys=True
    )
    path = CACHE_DIR / f"model-{hashlib.sha256(tag.encode()).hexdigest()[:16]}.frm"
    if path.is_file():
        log(f"model: cached artifact {path.relative_to(REPO)}")
        return path.read_bytes()
    from fraud_model.features import batch_features
    from fraud_model.simulator import simulate
    from fraud_model.training import train_model

    t = time.perf_counter()
    frame = simulate(*SIM_ARGS)
    # refit_full=False: one fit instead of two (same parameters and tree count), half the time.
    model = train_model(batch_features(frame), frame["is_fraud"], refit_full=False)
    data = model.to_bytes()
    CACHE_DIR.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    log(f"model: trained on {len(frame):,} simulated transactions in {time.perf_counter() - t:.0f} s")
    return data


def describe_model(artifact: bytes) -> str:
    """ "800 trees, depth 3, 22 features" (what the default parameters produced)."""
    from fraud_model.scoring import Scorer
    from fraud_model.training import DEFAULT_PARAMS

    scorer = Scorer.from_bytes(artifact)
    trees = scorer.booster.num_boosted_rounds()
    return f"{trees} trees, depth {DEFAULT_PARAMS.get('max_depth')}, {len(scorer.feature_names)} features"


# --- servers -----------------------------------------------------------------------------------


def bench_templates(home: Path) -> Path:
    """A copy of tenant_templates/ whose rate limits cannot bind: the benchmark measures serving
    capacity, not a tier's quota (standard: 200 req/s). The limiter still runs on every request."""
    out = home / "tenant_templates"
    out.mkdir(parents=True, exist_ok=True)
    for src in (REPO / "tenant_templates").glob("*.json"):
        template = json.loads(src.read_text())
        template["quotas"]["rps"] = 1_000_000
        template["quotas"]["burst"] = 2_000_000
        template["quotas"]["daily_requests"] = 1_000_000_000
        (out / src.name).write_text(json.dumps(template, indent=2))
    return out


class Server:
    """A subprocess serving HTTP on 127.0.0.1:port; output goes to a log file."""

    def __init__(self, name: str, cmd: list[str], port: int, log_path: Path, env: dict[str, str]):
        self.name, self.cmd, self.port, self.log_path = name, cmd, port, log_path
        self.env = {**os.environ, "PYTHONUNBUFFERED": "1", **env}
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, ready_path: str = "/healthz", timeout_s: float = 180.0) -> Server:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("ab") as out:
            self.proc = subprocess.Popen(
                self.cmd, cwd=REPO, env=self.env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
            )
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.name} exited with {self.proc.returncode}; see {self.log_path}")
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(self.url + ready_path, timeout=1.0).status_code < 500:
                    return self
            time.sleep(0.1)
        raise RuntimeError(f"{self.name} not ready after {timeout_s:.0f} s; see {self.log_path}")

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=5)

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""


def control_plane(
    home: Path, port: int, *, log_name: str, real_quotas: bool = False, **settings: str
) -> Server:
    """``fraudrail serve`` (python -m control_plane.cli serve) with FRAUDRAIL_* settings; the tiers'
    rate limits lifted unless ``real_quotas``."""
    templates = REPO / "tenant_templates" if real_quotas else bench_templates(home)
    env = {
        "FRAUDRAIL_HOME": str(home),
        "FRAUDRAIL_PORT": str(port),
        "FRAUDRAIL_TENANT_TEMPLATES_DIR": str(templates),
    }
    env.update({f"FRAUDRAIL_{k.upper()}": v for k, v in settings.items()})
    cmd = [PY, "-m", "control_plane.cli", "serve"]
    return Server("control plane", cmd, port, home / log_name, env)


def floor_server(port: int, log_path: Path) -> Server:
    cmd = [PY, str(REPO / "bench" / "floor_app.py"), "--port", str(port)]
    return Server("floor", cmd, port, log_path, {})


def admin_key(server: Server) -> str:
    for line in server.log_text().splitlines():
        if line.startswith("FRAUDRAIL_ADMIN_KEY="):
            return line.split("=", 1)[1].strip()
    raise RuntimeError(f"no FRAUDRAIL_ADMIN_KEY line in {server.log_path}")


@contextlib.contextmanager
def redis_url() -> Iterator[str]:
    """FRAUDRAIL_TEST_REDIS_URL when set (make bench-scoring), else a throwaway redis-server."""
    url = os.environ.get("FRAUDRAIL_TEST_REDIS_URL")
    if url:
        yield url
        return
    exe = shutil.which("redis-server")
    if exe is None:
        raise RuntimeError("no FRAUDRAIL_TEST_REDIS_URL and no redis-server (apt-get install redis-server)")
    port = free_port()
    proc = subprocess.Popen(
        [exe, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
                break
            time.sleep(0.05)
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        proc.terminate()
        proc.wait(timeout=10)


# --- set-up through the API and the database ---------------------------------------------------


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def onboard(base: str, admin: str, slug: str, tier: str = "standard") -> dict[str, str]:
    """POST /v1/tenants, wait until the worker made it ACTIVE, create an app key."""
    body = {
        "name": f"{slug} Ltd",
        "slug": slug,
        "tier": tier,
        "region": "eu-west-1",
        "budget": {"amount": "2500.00" if tier != "trial" else "400.00", "currency": "USD"},
        "contacts": {
            "email": "ops@example.com",
            "slack_webhook_url": "https://hooks.slack.com/services/T/B/X",
        },
    }
    with httpx.Client(base_url=base, timeout=30) as http:
        r = http.post("/v1/tenants", json=body, headers=auth(admin))
        r.raise_for_status()
        data = r.json()
        tid, tadmin = data["tenant"]["id"], data["admin_key"]["key"]
        deadline = time.monotonic() + 60
        while http.get(f"/v1/tenants/{tid}", headers=auth(tadmin)).json()["status"] != "ACTIVE":
            if time.monotonic() > deadline:
                raise RuntimeError(f"tenant {tid} not ACTIVE after 60 s")
            time.sleep(0.1)
        r = http.post(f"/v1/tenants/{tid}/keys", json={"scope": "app", "name": "bench"}, headers=auth(tadmin))
        r.raise_for_status()
        return {"id": tid, "admin": tadmin, "app": r.json()["key"]}


def session_factory(home: Path) -> Any:
    import control_plane.models  # noqa: F401  (every mapper)
    from control_plane.db import make_engine, make_session_factory

    return make_session_factory(make_engine(f"sqlite:///{home / 'fraudrail.db'}"))


def store_artifact(home: Path, key: str, artifact: bytes | Path) -> None:
    """Write an artifact into the local object store (a hard link when given a file)."""
    path = home / "objects" / key
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(artifact, Path):
        try:
            os.link(artifact, path)
        except OSError:
            shutil.copyfile(artifact, path)
    else:
        path.write_bytes(artifact)


def model_row(tenant_id: str, version_id: str, key: str, digest: str, stage: str) -> Any:
    """A model_versions row as training leaves it (gate passed), at ``stage``."""
    from control_plane.registry.orm import ModelVersion
    from fraud_model.features import FEATURE_SET_VERSION

    return ModelVersion(
        id=version_id,
        tenant_id=tenant_id,
        stage=stage,
        artifact_key=key,
        sha256=digest,
        feature_set_version=FEATURE_SET_VERSION,
        code_version="bench",
        params={},
        metrics={"auc_roc": 0.9},
        gate={"passed": True},
        analyst_labels=0,
    )


def register_model(factory: Any, home: Path, tenant_id: str, version_id: str, artifact: bytes) -> str:
    """Artifact into <home>/objects/tenants/<id>/models/<mv>.frm and an APPROVED row."""
    from control_plane.db import unit_of_work
    from fraud_model.training import sha256

    key = f"tenants/{tenant_id}/models/{version_id}.frm"
    store_artifact(home, key, artifact)
    with unit_of_work(factory) as s:
        s.add(model_row(tenant_id, version_id, key, sha256(artifact), "APPROVED"))
    return version_id


def promote(base: str, tenant_admin: str, version_id: str) -> None:
    r = httpx.post(f"{base}/v1/models/{version_id}/promote", headers=auth(tenant_admin), timeout=60)
    if r.status_code != 200:
        raise RuntimeError(f"promote {version_id}: {r.status_code} {r.text}")


# --- request bodies ----------------------------------------------------------------------------


class Bodies:
    """Fraud-check bodies: unique txn ids, 5,000 cards each with a usual amount and a few usual
    terminals among 1,000, and a simulated clock that gives each card ~2.5 transactions a day
    (the simulator's pace, so velocity features look like the training data)."""

    CHANNELS = ("ecom", "pos", "pos", "contactless")
    MCCS = ("5411", "5812", "5999", "4111", "5541", "5732")

    def __init__(self, prefix: str, sim_t0: float, seed: int) -> None:
        self.prefix = prefix
        self.rng = random.Random(seed)
        cards = random.Random(12345)  # the same cards in every run and process
        self.mean = [cards.uniform(5, 100) for _ in range(N_CARDS)]
        self.terms = [[cards.randrange(N_TERMINALS) for _ in range(4)] for _ in range(N_CARDS)]
        self.sim_t0 = sim_t0
        self.step_s = 86_400 / (N_CARDS * TXN_PER_CARD_PER_DAY)
        self.seq = itertools.count()

    def next(self) -> bytes:
        import orjson

        k = next(self.seq)
        rng = self.rng
        card = rng.randrange(N_CARDS)
        mean = self.mean[card]
        amount = max(0.01, rng.gauss(mean, mean / 2))
        ts = datetime.fromtimestamp(self.sim_t0 + k * self.step_s, UTC)
        return orjson.dumps(
            {
                "txn_id": f"{self.prefix}-{k}",
                "card_token": f"card_{card}",
                "terminal_id": f"term_{rng.choice(self.terms[card])}",
                "timestamp": ts.isoformat(),
                "amount": f"{amount:.2f}",
                "currency": "EUR",
                "channel": rng.choice(self.CHANNELS),
                "country": "FR",
                "device": f"dev_{card % 997}",
                "mcc": rng.choice(self.MCCS),
            }
        )

    def sim_seconds(self, requests: int) -> float:
        return requests * self.step_s


# --- the load generator ------------------------------------------------------------------------


@dataclass
class LoadSpec:
    port: int
    concurrency: int
    warmup_s: float
    duration_s: float
    keys: list[str]  # one Bearer token per tenant; the first ``hot`` are the hot tenants
    hot: int = 1
    cold_fraction: float = 0.0
    sim_t0: float = 0.0
    label: str = "load"
    path: str = "/v1/fraud-check"
    seed: int = 1


@dataclass
class LoadResult:
    """One row per request sent in the measured window (after the warm-up)."""

    t_send: np.ndarray
    t_recv: np.ndarray
    status: np.ndarray
    tenant: np.ndarray  # index into spec.keys
    version: list[str | None]
    cohort: list[str | None]
    decision: list[str | None]
    degraded: list[str]  # ",".join(degraded_inputs)
    duration_s: float
    sent_total: int  # warm-up included (advances the simulated clock)
    t_start: float
    errors: list[str] = field(default_factory=list)

    @property
    def latency_ms(self) -> np.ndarray:
        return np.asarray((self.t_recv - self.t_send) * 1000.0)

    @property
    def rps(self) -> float:
        return len(self.t_send) / self.duration_s


class _Conn(asyncio.Protocol):
    def __init__(self) -> None:
        self.buf = bytearray()
        self.waiter: asyncio.Future[tuple[int, bytes]] | None = None
        self.transport: asyncio.Transport | None = None
        self.lost = False  # the server closed it (e.g. uvicorn's keep-alive timeout on an idle one)

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        self.buf += data
        w = self.waiter
        if w is None or w.done():
            return
        end = self.buf.find(b"\r\n\r\n")
        if end < 0:
            return
        head = bytes(self.buf[:end]).lower()
        i = head.find(b"\r\ncontent-length:")
        if i < 0:
            w.set_exception(ConnectionError("response without content-length"))
            return
        j = head.find(b"\r\n", i + 2)
        length = int(head[i + 17 : j if j > 0 else len(head)])
        total = end + 4 + length
        if len(self.buf) < total:
            return
        body = bytes(self.buf[end + 4 : total])
        del self.buf[:total]
        w.set_result((int(head[9:12]), body))

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost = True
        w = self.waiter
        if w is not None and not w.done():
            w.set_exception(ConnectionError(f"connection lost: {exc}"))


async def _load(spec: LoadSpec, pipe: Any, stop: Any) -> dict[str, Any]:
    import orjson

    loop = asyncio.get_running_loop()
    bodies = Bodies(f"{spec.label}-{uuid.uuid4().hex[:8]}", spec.sim_t0, spec.seed)
    heads = [
        (
            f"POST {spec.path} HTTP/1.1\r\nHost: 127.0.0.1:{spec.port}\r\nAuthorization: Bearer {k}\r\n"
            "Content-Type: application/json\r\nContent-Length: "
        ).encode()
        for k in spec.keys
    ]
    hot, cold = list(range(spec.hot)), list(range(spec.hot, len(spec.keys)))
    pick = random.Random(spec.seed + 1)
    rows: dict[str, list[Any]] = {k: [] for k in ("ts", "tr", "st", "te", "mv", "co", "de", "dg")}
    errors: list[str] = []
    sent = 0

    async def connect() -> _Conn:
        _, proto = await loop.create_connection(_Conn, "127.0.0.1", spec.port)
        return proto

    conns = [await connect() for _ in range(spec.concurrency)]
    t_start = time.monotonic()
    t_measure = t_start + spec.warmup_s
    t_end = [t_measure + spec.duration_s]  # moved earlier when the parent sets ``stop``
    pipe.send(("started", t_start))

    async def watch() -> None:
        while time.monotonic() < t_end[0]:
            if stop.is_set():
                t_end[0] = time.monotonic()
                return
            await asyncio.sleep(0.05)

    async def worker(conn: _Conn) -> None:
        nonlocal sent
        while True:
            if time.monotonic() >= t_end[0]:
                return
            tenant = pick.choice(cold) if cold and pick.random() < spec.cold_fraction else pick.choice(hot)
            body = bodies.next()
            fut: asyncio.Future[tuple[int, bytes]] = loop.create_future()
            conn.waiter = fut
            assert conn.transport is not None
            t0 = time.monotonic()
            conn.transport.write(heads[tenant] + str(len(body)).encode() + b"\r\n\r\n" + body)
            sent += 1
            try:
                status, payload = await fut
            except ConnectionError as exc:
                status, payload = 0, b""
                errors.append(str(exc))
                conn = await connect()
            t1 = time.monotonic()
            if t0 < t_measure:
                continue
            rows["ts"].append(t0)
            rows["tr"].append(t1)
            rows["st"].append(status)
            rows["te"].append(tenant)
            answer = orjson.loads(payload) if status == 200 else {}
            rows["mv"].append(answer.get("model_version"))
            rows["co"].append(answer.get("cohort"))
            rows["de"].append(answer.get("decision"))
            rows["dg"].append(",".join(answer.get("degraded_inputs") or ()))

    await asyncio.gather(watch(), *(worker(c) for c in conns))
    for c in conns:
        if c.transport is not None:
            c.transport.close()
    out = {"rows": rows, "errors": errors[:20], "sent": sent, "t_start": t_start}
    out["duration_s"] = max(1e-9, min(t_end[0], time.monotonic()) - t_measure)
    return out


def _load_process(spec: LoadSpec, pipe: Any, stop: Any) -> None:
    try:
        import uvloop

        out = uvloop.run(_load(spec, pipe, stop))
    except ImportError:
        out = asyncio.run(_load(spec, pipe, stop))
    pipe.send(("done", out))


class Load:
    """A load run in a child process: ``start()``, optionally ``wait_started()``, then ``result()``."""

    def __init__(self, spec: LoadSpec) -> None:
        self.spec = spec
        ctx = mp.get_context("spawn")
        self._parent, child = ctx.Pipe()
        self._stop = ctx.Event()
        self._proc = ctx.Process(target=_load_process, args=(spec, child, self._stop), daemon=True)
        self.t_start: float | None = None

    def start(self) -> Load:
        self._proc.start()
        return self

    def wait_started(self) -> float:
        if self.t_start is None:
            kind, value = self._parent.recv()
            assert kind == "started", kind
            self.t_start = float(value)
        return self.t_start

    def stop(self) -> None:
        """End the run now (before ``duration_s``); the throughput uses the time actually run."""
        self._stop.set()

    def result(self) -> LoadResult:
        self.wait_started()
        kind, out = self._parent.recv()
        assert kind == "done", kind
        self._proc.join(timeout=30)
        r = out["rows"]
        return LoadResult(
            t_send=np.asarray(r["ts"], dtype=np.float64),
            t_recv=np.asarray(r["tr"], dtype=np.float64),
            status=np.asarray(r["st"], dtype=np.int64),
            tenant=np.asarray(r["te"], dtype=np.int64),
            version=r["mv"],
            cohort=r["co"],
            decision=r["de"],
            degraded=r["dg"],
            duration_s=float(out["duration_s"]),
            sent_total=int(out["sent"]),
            t_start=float(out["t_start"]),
            errors=list(out["errors"]),
        )


def run_load(spec: LoadSpec) -> LoadResult:
    return Load(spec).start().result()


# --- an open-loop probe ------------------------------------------------------------------------


@dataclass
class ProbeSpec:
    """One tenant's steady traffic: a request every 1/rate s whatever the answers, on as many
    keep-alive connections as that needs (no coordinated omission)."""

    port: int
    key: str
    rate: float
    label: str = "probe"
    sim_t0: float = 0.0
    seed: int = 7


async def _probe(spec: ProbeSpec, pipe: Any, stop: Any) -> dict[str, Any]:
    loop = asyncio.get_running_loop()
    bodies = Bodies(f"{spec.label}-{uuid.uuid4().hex[:8]}", spec.sim_t0, spec.seed)
    head = (
        f"POST /v1/fraud-check HTTP/1.1\r\nHost: 127.0.0.1:{spec.port}\r\n"
        f"Authorization: Bearer {spec.key}\r\nContent-Type: application/json\r\nContent-Length: "
    ).encode()

    async def connect() -> _Conn:
        _, proto = await loop.create_connection(_Conn, "127.0.0.1", spec.port)
        return proto

    idle = [await connect() for _ in range(4)]
    rows: list[tuple[float, float, int]] = []
    opened = len(idle)
    tasks: set[asyncio.Task[None]] = set()

    async def one(conn: _Conn, body: bytes) -> None:
        nonlocal opened
        if conn.lost:
            conn = await connect()
            opened += 1
        fut: asyncio.Future[tuple[int, bytes]] = loop.create_future()
        conn.waiter = fut
        assert conn.transport is not None
        t0 = time.monotonic()
        conn.transport.write(head + str(len(body)).encode() + b"\r\n\r\n" + body)
        try:
            status, _ = await fut
        except ConnectionError:
            status = 0
            conn = await connect()
        rows.append((t0, time.monotonic(), status))
        idle.append(conn)

    start = time.monotonic() + 0.1
    pipe.send(("started", start))
    k = 0
    while not stop.is_set():
        due = start + k / spec.rate
        wait = due - time.monotonic()
        if wait > 0:
            await asyncio.sleep(wait)
        if not idle:
            idle.append(await connect())
            opened += 1
        task = loop.create_task(one(idle.pop(), bodies.next()))
        tasks.add(task)
        task.add_done_callback(tasks.discard)
        k += 1
    if tasks:
        await asyncio.gather(*tasks)
    for conn in idle:
        if conn.transport is not None:
            conn.transport.close()
    return {"rows": rows, "connections": opened}


def _probe_process(spec: ProbeSpec, pipe: Any, stop: Any) -> None:
    try:
        import uvloop

        out = uvloop.run(_probe(spec, pipe, stop))
    except ImportError:
        out = asyncio.run(_probe(spec, pipe, stop))
    pipe.send(("done", out))


class Probe:
    """``start()``; ``stop()`` returns (t_send, t_recv, status) arrays on time.monotonic()."""

    def __init__(self, spec: ProbeSpec) -> None:
        ctx = mp.get_context("spawn")
        self._parent, child = ctx.Pipe()
        self._stop = ctx.Event()
        self._proc = ctx.Process(target=_probe_process, args=(spec, child, self._stop), daemon=True)

    def start(self) -> float:
        self._proc.start()
        kind, value = self._parent.recv()
        assert kind == "started", kind
        return float(value)

    def stop(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
        self._stop.set()
        kind, out = self._parent.recv()
        assert kind == "done", kind
        self._proc.join(timeout=30)
        rows = np.asarray(out["rows"], dtype=np.float64).reshape(-1, 3)
        return rows[:, 0], rows[:, 1], rows[:, 2].astype(np.int64), int(out["connections"])


# --- figures -----------------------------------------------------------------------------------


def pct(values: np.ndarray, q: float) -> float:
    return float(np.percentile(values, q)) if len(values) else float("nan")


def summary(lat_ms: np.ndarray, n: int, duration_s: float) -> dict[str, float]:
    return {
        "rps": n / duration_s,
        "p50": pct(lat_ms, 50),
        "p95": pct(lat_ms, 95),
        "p99": pct(lat_ms, 99),
        "n": n,
    }


def met(ok: bool) -> str:
    return "met" if ok else "NOT met"


def write_section(name: str, body: str) -> None:
    """Replace the text between ``<!-- name:start -->`` and ``<!-- name:end -->`` (append if absent)."""
    start, end = f"<!-- {name}:start -->", f"<!-- {name}:end -->"
    block = f"{start}\n{body.strip()}\n{end}"
    text = DOC.read_text() if DOC.exists() else "# Benchmarks\n"
    if start in text and end in text:
        before, rest = text.split(start, 1)
        _, after = rest.split(end, 1)
        text = before + block + after
    else:
        text = text.rstrip("\n") + "\n\n" + block + "\n"
    DOC.parent.mkdir(parents=True, exist_ok=True)
    DOC.write_text(text)
