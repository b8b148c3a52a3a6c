"""The closed-loop load generator of the HTTP benchmarks, and the request bodies it sends.

The load generator is closed-loop: ``concurrency`` keep-alive HTTP/1.1 connections, each sending
its next request as soon as the previous answer arrived. It runs on asyncio (uvloop) with raw
sockets in a separate process (``multiprocessing`` spawn), so the server's process and the
generator's do not share an interpreter. Every request carries a unique ``txn_id``.
"""

from __future__ import annotations

import asyncio
import itertools
import multiprocessing as mp
import random
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import numpy as np
from _common import N_CARDS, N_TERMINALS, TXN_PER_CARD_PER_DAY

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
    events: str = ""  # a file of recorded bodies (bench/_event_bodies.py); empty: Bodies generates them


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
    cpu_s: float = 0.0  # the load generator's own CPU time (it shares the machine with the server)

    @property
    def latency_ms(self) -> np.ndarray:
        return np.asarray((self.t_recv - self.t_send) * 1000.0)

    @property
    def rps(self) -> float:
        return len(self.t_send) / self.duration_s


class Conn(asyncio.Protocol):
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
    prefix = f"{spec.label}-{uuid.uuid4().hex[:8]}"
    if spec.events:
        from _event_bodies import EventBodies

        bodies: Bodies | EventBodies = EventBodies(spec.events, prefix)
    else:
        bodies = Bodies(prefix, spec.sim_t0, spec.seed)
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

    async def connect() -> Conn:
        _, proto = await loop.create_connection(Conn, "127.0.0.1", spec.port)
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

    async def worker(conn: Conn) -> None:
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
    out["cpu_s"] = time.process_time()
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
            cpu_s=float(out.get("cpu_s", 0.0)),
        )


def run_load(spec: LoadSpec) -> LoadResult:
    return Load(spec).start().result()
