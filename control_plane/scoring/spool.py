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

A flagged answer is given only once its whole record is written (``append`` loops over short
writes). When it cannot be (a full or failing disk), the partial line is cut off again and
``append`` raises ``SpoolUnavailable``: the check answers 503 with Retry-After, its idempotency
claim is released, and the client's retry with the same txn_id is scored again — nothing is
answered that is not spooled. A torn tail left by a process that died mid-write is cut at the
next start-up, so it can neither block delivery nor merge with the next record.
"""

from __future__ import annotations

import errno
import json
import logging
import os
import shutil
import threading
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import redis
from sqlalchemy import exc as sa_exc

from control_plane.errors import ServiceUnavailable

log = logging.getLogger(__name__)

Sink = Callable[[Mapping[str, Any]], None]
SEGMENT_BYTES = 8 * 1024 * 1024
DEAD_LETTERS = "dead-letter.jsonl"
POISON_ATTEMPTS = 3
RETRY_AFTER_S = 5
MIN_FREE_BYTES = 8 * 1024 * 1024  # below this the spool reports itself not ready


class SpoolUnavailable(ServiceUnavailable):
    """The flagged record could not be written: 503 with Retry-After, nothing was answered."""

    def __init__(self, detail: str) -> None:
        super().__init__(detail, field="spool", extra={"retry_after_s": RETRY_AFTER_S})


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
        self._name = ""
        # Opened at the first append: a reader (`fraudrail spool status`) leaves no empty segment.
        self._fh: Any = None
        self.appended = 0
        self.failed = 0  # appends refused since start
        self.last_error: str | None = None  # None once an append succeeds again
        self._free: tuple[float, int] = (0.0, 0)  # (monotonic time, bytes) of the last statvfs
        self.repaired = repair_torn_tails(self.dir)

    def append(self, record: Mapping[str, Any]) -> None:
        """Write one record whole, or raise ``SpoolUnavailable`` leaving no partial line behind."""
        line = json.dumps(record, separators=(",", ":"), default=str).encode() + b"\n"
        with self._lock:
            fh, start = self._fh, 0
            try:
                if fh is None:
                    fh = self._open()
                start = fh.tell()
                view, written = memoryview(line), 0
                while written < len(line):
                    n = fh.write(view[written:])  # a raw file: may write less than asked
                    if not n:
                        raise OSError(errno.EIO, "the spool file took no bytes")
                    written += n
            except OSError as exc:
                if fh is not None:
                    self._cut(fh, start)
                self.failed += 1
                self.last_error = f"{type(exc).__name__}: {exc}"
                log.error("flagged record not spooled (%s); answering 503", self.last_error)
                raise SpoolUnavailable(
                    f"the flagged-transaction spool cannot take the record ({exc.strerror or exc}); "
                    f"retry in {RETRY_AFTER_S} s with the same txn_id"
                ) from exc
            self.appended += 1
            self.last_error = None
            if fh.tell() >= self._segment_bytes:
                self._rotate()

    def _cut(self, fh: Any, start: int) -> None:
        """Remove a partial line (cutting frees space, so it works on a full disk), then close the
        segment unless it is empty: once drained it can be deleted, which frees the space the
        spool itself took, and the next record starts a new segment. A tail that cannot even be cut
        is cut at the next start-up."""
        try:
            os.ftruncate(fh.fileno(), start)
            fh.seek(start)
        except OSError:
            log.exception("could not cut a partial record off %s", self._name)
        else:
            if start == 0:
                return
        fh.close()
        self._fh, self._name = None, ""

    def _open(self) -> Any:
        name = f"seg-{time.time_ns():020d}-{os.getpid()}.jsonl"
        # The offset file exists from the start, so the drainer only ever overwrites it in place:
        # that needs no new block, and a full disk cannot stop delivery (which is what frees it).
        _write_offset(self.dir / name, 0)
        self._fh = (self.dir / name).open("ab", buffering=0)
        self._name = name
        return self._fh

    def _rotate(self) -> None:
        self._fh.close()
        self._open()

    def fsync(self) -> None:
        with self._lock:
            if self._fh is not None:
                os.fsync(self._fh.fileno())

    def free_bytes(self, max_age_s: float = 1.0) -> int:
        """Free space on the spool's file system (statvfs at most once per ``max_age_s``)."""
        now = time.monotonic()
        at, free = self._free
        if now - at >= max_age_s:
            free = shutil.disk_usage(self.dir).free
            self._free = (now, free)
        return free

    def health(self, min_free_bytes: int = MIN_FREE_BYTES) -> dict[str, Any]:
        """Ready when the last append succeeded and the disk has room: a health signal."""
        free = self.free_bytes()
        return {
            "ok": self.last_error is None and free >= min_free_bytes,
            "free_bytes": free,
            "min_free_bytes": min_free_bytes,
            "appended": self.appended,
            "refused": self.failed,
            "last_error": self.last_error,
        }

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
            if self._fh is not None:
                self._fh.close()
                self._fh = None


def _writer_alive(seg: Path) -> bool:
    """Whether the process named in a segment's file name (seg-<ns>-<pid>.jsonl) still runs."""
    try:
        pid = int(seg.stem.rsplit("-", 1)[1])
    except (IndexError, ValueError):
        return False
    if pid == os.getpid():
        return True  # another spool of this process may be mid-write
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def repair_torn_tails(directory: Path) -> int:
    """Cut the partial last line of segments whose writer is gone; returns how many were cut."""
    repaired = 0
    for seg in sorted(directory.glob("seg-*.jsonl")):
        if _writer_alive(seg):
            continue
        with seg.open("rb+") as fh:
            size = fh.seek(0, os.SEEK_END)
            if size == 0:
                continue
            fh.seek(size - 1)
            if fh.read(1) == b"\n":
                continue
            keep = size
            while keep > 0:  # back to the last newline, in blocks
                lo = max(0, keep - 65536)
                fh.seek(lo)
                block = fh.read(keep - lo)
                at = block.rfind(b"\n")
                if at >= 0:
                    keep = lo + at + 1
                    break
                keep = lo
            fh.truncate(keep)
        if _read_offset(seg) > keep:
            _write_offset(seg, keep)
        log.warning(
            "cut a torn record off %s (%d bytes) left by a process that died mid-write", seg.name, size - keep
        )
        repaired += 1
    return repaired


def _offset_path(seg: Path) -> Path:
    return seg.with_suffix(".offset")


def _read_offset(seg: Path) -> int:
    try:
        return int(_offset_path(seg).read_text() or 0)
    except (FileNotFoundError, ValueError):
        return 0


def _write_offset(seg: Path, offset: int) -> None:
    """Overwrite the fixed-width offset in place (no new block: works on a full disk); a lost or
    garbled offset only replays records into an idempotent store."""
    data = f"{offset:020d}".encode()
    try:
        with _offset_path(seg).open("r+b", buffering=0) as fh:
            fh.write(data)
        return
    except FileNotFoundError:
        pass
    tmp = _offset_path(seg).with_suffix(".offset.tmp")
    tmp.write_bytes(data)
    os.replace(tmp, _offset_path(seg))


class SpoolDrainer:
    """Delivery of the spool, one ``tick`` at a time (the process's housekeeping loop calls it)."""

    def __init__(self, spool: FlaggedSpool, sink: Sink, *, idle_s: float = 0.05, max_backoff_s: float = 5.0):
        self.spool = spool
        self.sink = sink
        self.idle_s = idle_s
        self.max_backoff_s = max_backoff_s
        self._stopped = False

    def tick(self) -> None:
        """Deliver what is waiting; raises while the store is down (the caller backs off)."""
        if not self._stopped:
            self.spool.drain(self.sink)

    def stop(self) -> None:
        """No more ticks; one last drain (a record left over is replayed at the next start)."""
        self._stopped = True
        try:
            self.spool.drain(self.sink)
        except Exception:
            log.warning("spool not fully drained at shutdown; it will be replayed at the next start")
