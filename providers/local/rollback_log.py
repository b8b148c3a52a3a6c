"""Rollback log on local disk: append-only JSON lines, one ``fsync`` per append.

Each rollback id is stored once per tenant (``append`` returns False for a repeat), so a
redelivered alarm records one rollback. Writers serialise on an ``flock`` of a sibling lock
file (a thread lock inside the process), which also holds across processes sharing the home
directory; the lock file, not the log, is locked because ``purge_tenant`` replaces the log.
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from providers.ports import RollbackRecord

log = logging.getLogger(__name__)


def _to_line(record: RollbackRecord) -> str:
    body = {
        "tenant_id": record.tenant_id,
        "rollback_id": record.rollback_id,
        "at": record.at,
        "reason": record.reason,
        "evidence": dict(record.evidence),
        "weights_after": {k: int(v) for k, v in record.weights_after.items()},
    }
    return json.dumps(body, separators=(",", ":"), sort_keys=True, default=str) + "\n"


def _from_obj(obj: dict[str, Any]) -> RollbackRecord:
    return RollbackRecord(
        tenant_id=str(obj["tenant_id"]),
        rollback_id=str(obj["rollback_id"]),
        at=str(obj["at"]),
        reason=str(obj.get("reason", "")),
        evidence=dict(obj.get("evidence") or {}),
        weights_after={str(k): int(v) for k, v in (obj.get("weights_after") or {}).items()},
    )


class FileRollbackLog:
    """``RollbackLog`` over one JSON-lines file (``<home>/rollback-log.jsonl``)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock_path = path.with_name(path.name + ".lock")
        self._thread_lock = threading.Lock()
        path.parent.mkdir(parents=True, exist_ok=True)

    @contextmanager
    def _locked(self) -> Iterator[None]:
        with self._thread_lock, open(self._lock_path, "a") as lock_file:
            fcntl.flock(lock_file.fileno(), fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(lock_file.fileno(), fcntl.LOCK_UN)

    def _read(self) -> tuple[list[dict[str, Any]], bool]:
        """Every parsable line, and whether the file ends mid-line (a torn last write)."""
        try:
            raw = self.path.read_bytes()
        except FileNotFoundError:
            return [], False
        rows: list[dict[str, Any]] = []
        for number, line in enumerate(raw.splitlines(), start=1):
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
                _from_obj(obj)  # validates the shape
            except (ValueError, KeyError, TypeError, AttributeError):
                log.warning("rollback log %s: skipping unreadable line %d", self.path, number)
                continue
            rows.append(obj)
        return rows, bool(raw) and not raw.endswith(b"\n")

    def append(self, record: RollbackRecord) -> bool:
        """Store once; False when this (tenant, rollback id) was already recorded."""
        line = _to_line(record)
        with self._locked():
            rows, torn = self._read()
            if any(
                r["tenant_id"] == record.tenant_id and r["rollback_id"] == record.rollback_id for r in rows
            ):
                return False
            with open(self.path, "a", encoding="utf-8") as fh:
                # A crash mid-write leaves a partial line; start on a fresh one so ours parses.
                fh.write(("\n" if torn else "") + line)
                fh.flush()
                os.fsync(fh.fileno())
            return True

    def list(self, tenant_id: str, limit: int = 50) -> list[RollbackRecord]:
        """The tenant's rollbacks, newest first (by ``at``, then rollback id)."""
        if limit <= 0:
            return []
        with self._thread_lock:
            rows, _ = self._read()
        records = [_from_obj(r) for r in rows if r["tenant_id"] == tenant_id]
        records.sort(key=lambda r: (r.at, r.rollback_id), reverse=True)
        return records[:limit]

    def purge_tenant(self, tenant_id: str) -> int:
        """Remove the tenant's records by atomically replacing the file; the number removed."""
        with self._locked():
            rows, _ = self._read()
            keep = [r for r in rows if r["tenant_id"] != tenant_id]
            removed = len(rows) - len(keep)
            if removed == 0:
                return 0
            tmp = self.path.with_name(self.path.name + ".tmp")
            with open(tmp, "w", encoding="utf-8") as fh:
                fh.writelines(_to_line(_from_obj(r)) for r in keep)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, self.path)
            dir_fd = os.open(self.path.parent, os.O_RDONLY)
            try:
                os.fsync(dir_fd)
            finally:
                os.close(dir_fd)
            return removed


class MemoryRollbackLog:
    """``RollbackLog`` in memory: for tests, and the default of builders that wire no durable log."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._records: dict[tuple[str, str], RollbackRecord] = {}

    def append(self, record: RollbackRecord) -> bool:
        key = (record.tenant_id, record.rollback_id)
        with self._lock:
            if key in self._records:
                return False
            self._records[key] = record
            return True

    def list(self, tenant_id: str, limit: int = 50) -> list[RollbackRecord]:
        if limit <= 0:
            return []
        with self._lock:
            records = [r for (t, _), r in self._records.items() if t == tenant_id]
        records.sort(key=lambda r: (r.at, r.rollback_id), reverse=True)
        return records[:limit]

    def purge_tenant(self, tenant_id: str) -> int:
        with self._lock:
            keys = [k for k in self._records if k[0] == tenant_id]
            for key in keys:
                del self._records[key]
            return len(keys)
