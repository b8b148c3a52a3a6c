"""An open-loop probe: one tenant's steady traffic at a fixed rate, in its own process."""

from __future__ import annotations

import asyncio
import multiprocessing as mp
import time
import uuid
from dataclasses import dataclass
from typing import Any

import numpy as np
from _load import Bodies, Conn

STALE_S = 3.0


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

    async def connect() -> Conn:
        _, proto = await loop.create_connection(Conn, "127.0.0.1", spec.port)
        return proto

    # Idle connections with the time they became idle: one idle longer than STALE_S is closed,
    # not reused, because uvicorn closes keep-alive connections idle for 5 s and a request written
    # as its FIN arrives is lost to a reset that says nothing about the server.
    idle = [(await connect(), time.monotonic()) for _ in range(4)]
    rows: list[tuple[float, float, int]] = []
    opened = len(idle)
    tasks: set[asyncio.Task[None]] = set()

    async def one(conn: Conn, body: bytes) -> None:
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
        idle.append((conn, time.monotonic()))

    start = time.monotonic() + 0.1
    pipe.send(("started", start))
    k = 0
    while not stop.is_set():
        due = start + k / spec.rate
        wait = due - time.monotonic()
        if wait > 0:
            await asyncio.sleep(wait)
        now = time.monotonic()
        while idle and now - idle[0][1] > STALE_S:  # the oldest idle first (reuse is last-in)
            stale, _ = idle.pop(0)
            if stale.transport is not None:
                stale.transport.close()
        if not idle:
            idle.append((await connect(), now))
            opened += 1
        task = loop.create_task(one(idle.pop()[0], bodies.next()))
        tasks.add(task)
        task.add_done_callback(tasks.discard)
        k += 1
    if tasks:
        await asyncio.gather(*tasks)
    for conn, _ in idle:
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
