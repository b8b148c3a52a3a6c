"""A durable local spool for flagged transactions.

The hot path appends one JSON line per flagged transaction (written and flushed before the
answer, so a process crash loses nothing; the OS page cache holds it). A drainer replays the
spool in order into the flagged-transaction store; it advances a persisted offset only after
the store accepted a record, so a store outage just leaves records waiting, and a crash replays
them into a store whose writes are idempotent (none arrive twice).

Delivery includes the ``flagged.stored`` subscribers (the review queue): a record counts as
delivered only once they ran. A failure that looks like an outage (a provider, connection or
database-availability error) is retried for as long as it lasts; any other failure of the same
record ``poison_attempts`` times in a row is a poison record: it moves to ``dead-letter.jsonl``
with its error, so it cannot hold up every record behind it, and ``requeue_dead()``
(``fraudrail spool replay-dead``) puts it back once the cause is fixed.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import redis
from sqlalchemy import exc as sa_exc

log = logging.getLogger(__name__)

Sink = Callable[[Mapping[str, Any]], None]
SEGMENT_BYTES = 8 * 1024 * 1024
DEAD_LETTERS = "dead-letter.jsonl"
POISON_ATTEMPTS = 3


def is_outage(exc: BaseException) -> bool:
    """True for failures that say a backend is unavailable (retry as long as it takes)."""
    from providers.ports import DeliveryFailed, ProviderError

    if isinstance(exc, DeliveryFailed):
        return all(is_outage(e) for e in exc.errors)
    if isinstance(exc, ProviderError | OSError | TimeoutError | redis.exceptions.ConnectionError):
        return True
    return isinstance(exc, sa_exc.OperationalError | sa_exc.InterfaceError | sa_exc.TimeoutError)


class FlaggedSpool:
    def __init__(
        self, directory: Path, *, segment_bytes: int = SEGMENT_BYTES, poison_attempts: int = POISON_ATTEMPTS
    ) -> None:
        self.dir = directory
        self.dir.mkdir(parents=True, exist_ok=True)
        self._segment_bytes = segment_bytes
        self._poison_attempts = poison_attempts
        self._failures: tuple[str, int, int] | None = None  # (segment, offset, consecutive failures)
        self._lock = threading.Lock()
        self._drain_lock = threading.Lock()
        self._name = f"seg-{time.time_ns():020d}-{os.getpid()}.jsonl"
        self._fh = (self.dir / self._name).open("ab", buffering=0)
        self.appended = 0

    def append(self, record: Mapping[str, Any]) -> None:
        line = json.dumps(record, separators=(",", ":"), default=str).encode() + b"\n"
        with self._lock:
            self._fh.write(line)
            self.appended += 1
            if self._fh.tell() >= self._segment_bytes:
                self._rotate()

    def _rotate(self) -> None:
        self._fh.close()
        self._name = f"seg-{time.time_ns():020d}-{os.getpid()}.jsonl"
        self._fh = (self.dir / self._name).open("ab", buffering=0)

    def fsync(self) -> None:
        with self._lock:
            os.fsync(self._fh.fileno())

    def segments(self) -> list[Path]:
        return sorted(self.dir.glob("seg-*.jsonl"))

    def pending(self) -> int:
        """Records not yet accepted by the store."""
        count = 0
        for seg in self.segments():
            offset = _read_offset(seg)
            with seg.open("rb") as fh:
                fh.seek(offset)
                count += sum(1 for line in fh if line.endswith(b"\n"))
        return count

    def drain(self, sink: Sink, *, max_records: int = 10_000) -> int:
        """Deliver waiting records in order; stop at the first failure (it is retried next time)."""
        delivered = 0
        with self._drain_lock:
            for seg in self.segments():
                offset = _read_offset(seg)
                with seg.open("rb") as fh:
                    fh.seek(offset)
                    for line in fh:
                        if not line.endswith(b"\n"):
                            break  # a write in progress
                        try:
                            sink(json.loads(line))
                        except Exception as exc:
                            if not self._poisoned(seg, offset, line, exc):
                                _write_offset(seg, offset)
                                log.warning(
                                    "flagged record not delivered; %d record(s) wait in the spool: %s",
                                    self.pending(),
                                    exc,
                                )
                                raise
                            offset += len(line)
                            _write_offset(seg, offset)  # past the dead letter for good
                            continue
                        self._failures = None
                        offset += len(line)
                        delivered += 1
                        if delivered % 64 == 0:
                            _write_offset(seg, offset)
                        if delivered >= max_records:
                            _write_offset(seg, offset)
                            return delivered
                _write_offset(seg, offset)
                with self._lock:
                    active = seg.name == self._name
                if not active and offset >= seg.stat().st_size:
                    seg.unlink(missing_ok=True)
                    _offset_path(seg).unlink(missing_ok=True)
        return delivered

    def _poisoned(self, seg: Path, offset: int, line: bytes, exc: Exception) -> bool:
        """Count a failure of the record at (seg, offset); True once it moved to the dead letters."""
        if is_outage(exc):
            self._failures = None
            return False
        seen = self._failures
        count = seen[2] + 1 if seen is not None and seen[:2] == (seg.name, offset) else 1
        self._failures = (seg.name, offset, count)
        if count < self._poison_attempts:
            return False
        entry = {"record": json.loads(line), "error": repr(exc), "failures": count, "at": time.time()}
        with (self.dir / DEAD_LETTERS).open("ab") as fh:
            fh.write(json.dumps(entry, separators=(",", ":"), default=str).encode() + b"\n")
            fh.flush()
            os.fsync(fh.fileno())
        log.error("flagged record moved to %s after %d failures: %r", DEAD_LETTERS, count, exc)
        self._failures = None
        return True

    def dead_letters(self) -> list[dict[str, Any]]:
        path = self.dir / DEAD_LETTERS
        if not path.exists():
            return []
        return [json.loads(line) for line in path.read_bytes().splitlines() if line.strip()]

    def requeue_dead(self) -> int:
        """Append the dead letters' records to the spool again (in their order). The file is renamed
        first, so a record dead-lettered meanwhile (by a server draining the same directory) starts
        a new file instead of being lost."""
        path = self.dir / DEAD_LETTERS
        taken = path.with_name(f"{DEAD_LETTERS}.{time.time_ns()}-{os.getpid()}.requeue")
        try:
            os.replace(path, taken)
        except FileNotFoundError:
            return 0
        lines = [line for line in taken.read_bytes().splitlines() if line.strip()]
        for line in lines:
            self.append(json.loads(line)["record"])
        self.fsync()
        taken.unlink()
        return len(lines)

    def close(self) -> None:
        with self._lock:
            self._fh.close()


def _offset_path(seg: Path) -> Path:
    return seg.with_suffix(".offset")


def _read_offset(seg: Path) -> int:
    try:
        return int(_offset_path(seg).read_text() or 0)
    except (FileNotFoundError, ValueError):
        return 0


def _write_offset(seg: Path, offset: int) -> None:
    tmp = _offset_path(seg).with_suffix(".offset.tmp")
    tmp.write_text(str(offset))
    os.replace(tmp, _offset_path(seg))


class SpoolDrainer:
    """Background delivery with exponential backoff while the store is down."""

    def __init__(self, spool: FlaggedSpool, sink: Sink, *, idle_s: float = 0.05, max_backoff_s: float = 5.0):
        self.spool = spool
        self.sink = sink
        self.idle_s = idle_s
        self.max_backoff_s = max_backoff_s
        self.wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="fraudrail-spool", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        backoff = self.idle_s
        while not self._stop.is_set():
            try:
                self.spool.drain(self.sink)
                backoff = self.idle_s
            except Exception:
                backoff = min(max(backoff * 2, 0.1), self.max_backoff_s)
            self.wake.wait(backoff)
            self.wake.clear()

    def stop(self) -> None:
        self._stop.set()
        self.wake.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
        try:
            self.spool.drain(self.sink)
        except Exception:
            log.warning("spool not fully drained at shutdown; it will be replayed at the next start")
