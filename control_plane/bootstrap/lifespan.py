"""What a serving process runs besides requests: its own buffers' chores, and (embedded) the worker.

Periodic work that any process may do is a periodic job on the queue (``jobs.periodic``), run by
the worker. What stays here is per-process by nature — the flagged spool this process wrote, the
fraud checks it counted, the request samples it recorded, the rate limits it holds — and runs as
chores on the event loop's task (each in a worker thread), not as threads of their own.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass, field

import anyio

from control_plane.bootstrap.bus import close_bus, start_bus
from control_plane.bootstrap.state import State

log = logging.getLogger(__name__)


@dataclass
class Chore:
    name: str
    every_s: float
    run: Callable[[], object]
    max_backoff_s: float = 5.0
    _delay_s: float = field(init=False, default=0.0)
    _due: float = field(init=False, default=0.0)

    def succeeded(self, now: float) -> None:
        self._delay_s = self.every_s
        self._due = now + self.every_s

    def failed(self, now: float) -> None:
        # Back off while a backend is down, so an outage does not become a busy loop.
        self._delay_s = min(max(self._delay_s * 2, self.every_s, 0.1), self.max_backoff_s)
        self._due = now + self._delay_s


class Housekeeping:
    """Runs due chores one after another on one executor thread; sleeps until the next is due.

    One thread, always the same: chores touch the database and the flagged store, and spreading
    them over the shared thread pool gave every pool thread its own allocator arena and sessions."""

    def __init__(self, chores: list[Chore]) -> None:
        self.chores = chores
        self._task: asyncio.Task[None] | None = None
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="fraudrail-chores")

    async def run(self) -> None:
        while True:
            now = time.monotonic()
            for chore in self.chores:
                if chore._due <= now:
                    try:
                        await asyncio.get_running_loop().run_in_executor(self._executor, chore.run)
                        chore.succeeded(time.monotonic())
                    except Exception:
                        log.debug("chore %s failed; backing off", chore.name, exc_info=True)
                        chore.failed(time.monotonic())
            next_due = min(c._due for c in self.chores)
            await asyncio.sleep(max(next_due - time.monotonic(), 0.01))

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self.run(), name="fraudrail-housekeeping")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        self._executor.shutdown(wait=True)


def process_chores(state: State) -> list[Chore]:
    s = state.scoring
    return [
        Chore("spool", s.drainer.idle_s, s.drainer.tick, max_backoff_s=s.drainer.max_backoff_s),
        Chore("request-samples", 1.0, lambda: s.recorder.flush(all_buckets=False)),
        Chore("finops", state.finops.settings.flush_interval_s, state.finops.housekeeping_tick),
        Chore("drift-monitor", 10.0, state.monitor.flush),
    ]


@asynccontextmanager
async def serve_state(state: State, *, owns_state: bool) -> AsyncIterator[None]:
    """Start what the process runs besides requests; stop it and flush its buffers at the end."""
    state.scoring.serving.load_all()
    try:  # events a crashed process committed but did not deliver go out before traffic arrives
        state.outbox.deliver_due(settle_s=0)
    except Exception:
        log.exception("outbox: start-up delivery failed; the worker retries")
    start_bus(state.providers.event_bus)  # a shared bus delivers to this process from here on
    housekeeping = Housekeeping(process_chores(state))
    housekeeping.start()
    stop = threading.Event()
    thread = None
    if state.settings.run_worker_in_process:
        thread = threading.Thread(
            target=state.worker.run_forever, args=(stop,), name="fraudrail-worker", daemon=True
        )
        thread.start()
    try:
        yield
    finally:
        stop.set()
        state.worker.wake.set()
        if thread is not None:
            await anyio.to_thread.run_sync(lambda: thread.join(timeout=10))
        await housekeeping.stop()
        state.scoring.drainer.stop()
        state.scoring.recorder.flush()
        with suppress(Exception):  # a database that is gone at shutdown loses these counts, not the stop
            state.monitor.flush()
        state.finops.shutdown()
        close_bus(state.providers.event_bus)
        with suppress(Exception):  # the hot path's connections, opened on this loop
            await state.providers.feature_cache.aclose()
        if owns_state:
            state.engine.dispose()
