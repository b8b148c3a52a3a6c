"""One flagged spool per process, and the spools of dead processes taken over by the next to start.

Several server processes (``FRAUDRAIL_WORKERS``, or replicas on one host) share ``<home>/spool``.
Two drainers on one spool would deliver the same records concurrently and race on its offsets, so
each process writes and drains only ``<home>/spool/<process-id>/``, whose ``owner.lock`` it holds
with ``flock`` for as long as it lives. The kernel drops that lock when the process dies, however
it dies (``kill -9`` included), so a directory whose lock can be taken belongs to nobody: the next
process that starts moves its segments, offsets and dead letters into its own directory and drains
them. Records are delivered at least once either way (the flagged store and the review queue are
idempotent), so a takeover interrupted half-way only replays.

``flock`` is only trustworthy between processes of one host; replicas on different hosts need a
spool each (their own ``FRAUDRAIL_HOME``).
"""

from __future__ import annotations

import fcntl
import logging
import os
import shutil
import socket
import uuid
from pathlib import Path
from typing import IO

log = logging.getLogger(__name__)

LOCK = "owner.lock"
DEAD_LETTERS = "dead-letter.jsonl"
_PENDING_PREFIX = ".new-"


def _try_lock(path: Path) -> IO[bytes] | None:
    """An open handle holding an exclusive lock on ``path``; None when another process holds it."""
    try:
        fh = path.open("ab")
    except FileNotFoundError:
        return None
    try:
        fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        fh.close()
        return None
    return fh


class SpoolDirectory:
    """This process's directory under ``root``, locked for its lifetime."""

    def __init__(self, root: Path, *, adopt: bool = True) -> None:
        self.root = root
        root.mkdir(parents=True, exist_ok=True)
        self.owner = f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:8]}"
        # Locked under a hidden name first, then renamed into place: a process scanning for orphans
        # never sees this directory unlocked (the lock follows the inode through the rename).
        staging = root / f"{_PENDING_PREFIX}{self.owner}"
        staging.mkdir()
        lock = _try_lock(staging / LOCK)
        assert lock is not None, "a fresh directory cannot be locked by anyone else"
        self._lock: IO[bytes] | None = lock
        self.path = root / self.owner
        staging.rename(self.path)
        self.adopted = self.adopt_orphans() if adopt else 0

    def adopt_orphans(self) -> int:
        """Move the records of every directory no live process owns (and any left at the root by an
        older layout) into this one; returns the segments moved."""
        with (self.root / ".adopt.lock").open("ab") as serial:
            # One adopter at a time, so two starting processes never split one orphan's segments.
            fcntl.flock(serial.fileno(), fcntl.LOCK_EX)
            moved = self._take(self.root)
            for other in sorted(self.root.iterdir()):
                if other == self.path or not other.is_dir() or other.name.startswith("."):
                    continue
                held = _try_lock(other / LOCK)
                if held is None:
                    continue  # its owner is alive (or it vanished: another adopter was quicker)
                try:
                    count = self._take(other)
                    moved += count
                    shutil.rmtree(other, ignore_errors=True)
                    if count:
                        log.warning(
                            "spool: took over %d segment(s) of %s (its process is gone)", count, other.name
                        )
                finally:
                    held.close()
            for stale in self.root.glob(f"{_PENDING_PREFIX}*"):
                # A process that died between mkdir and rename: nothing was written there yet.
                held = _try_lock(stale / LOCK)
                if held is not None:
                    held.close()
                    shutil.rmtree(stale, ignore_errors=True)
        return moved

    def _take(self, source: Path) -> int:
        """Move ``source``'s segments (with their offsets) and dead letters into this directory."""
        count = 0
        for seg in sorted(source.glob("seg-*.jsonl")):
            offset = seg.with_suffix(".offset")
            # Offset first: if we die in between, the segment replays from 0 where it is (idempotent).
            if offset.exists():
                os.replace(offset, self.path / offset.name)
            os.replace(seg, self.path / seg.name)
            count += 1
        dead = source / DEAD_LETTERS
        if dead.exists():
            with (self.path / DEAD_LETTERS).open("ab") as out:
                out.write(dead.read_bytes())
                out.flush()
                os.fsync(out.fileno())
            dead.unlink()
        return count

    def close(self) -> None:
        """Release the directory; an empty one is removed (a process that drained everything)."""
        lock, self._lock = self._lock, None
        if lock is None:
            return
        if not _has_records(self.path):
            shutil.rmtree(self.path, ignore_errors=True)
        lock.close()


def _has_records(directory: Path) -> bool:
    """True when a segment holds undelivered records or a dead letter is waiting."""
    dead = directory / DEAD_LETTERS
    if dead.exists() and dead.stat().st_size:
        return True
    for seg in directory.glob("seg-*.jsonl"):
        try:
            offset = int(seg.with_suffix(".offset").read_text() or 0)
        except (FileNotFoundError, ValueError):
            offset = 0
        if seg.stat().st_size > offset:
            return True
    return False


def spool_dirs(root: Path) -> list[Path]:
    """Every spool directory under ``root`` (for ``fraudrail spool status``), the root included."""
    found = [root] if root.is_dir() else []
    if found:
        found += sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    return found
