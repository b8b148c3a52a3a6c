"""A durable local spool for flagged transactions.

The hot path appends one JSON line per flagged transaction (written and flushed before the
answer, so a process crash loses nothing; the OS page cache holds it). A drainer replays the
spool in order into the flagged-transaction store; it advances a persisted offset only after
the store accepted a record, so a store outage just leaves records waiting, and a crash replays
them into a store whose writes are idempotent (none arrive twice).
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

log = logging.getLogger(__name__)

Sink = Callable[[Mapping[str, Any]], None]
SEGMENT_BYTES = 8 * 1024 * 1024


class FlaggedSpool:
    def __init__(self, directory: Path, *, segment_bytes: int = SEGMENT_BYTES) -> None:
        self.dir = directory
        self.dir.mkdir(parents=True, exist_ok=True)
        self._segment_bytes = segment_bytes
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
                            _write_offset(seg, offset)
                            log.warning(
                                "flagged store unavailable; %d record(s) wait in the spool: %s",
                                self.pending(),
                                exc,
                            )
                            raise
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
