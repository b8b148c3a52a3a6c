"""In-process feature cache: per-tenant dicts behind one lock (one process only)."""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping, Sequence


class MemoryFeatureCache:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._data: dict[str, dict[str, tuple[bytes, float | None]]] = {}

    def ensure_namespace(self, tenant_id: str) -> bool:
        with self._lock:
            if tenant_id in self._data:
                return False
            self._data[tenant_id] = {}
            return True

    def get_many(self, tenant_id: str, keys: Sequence[str]) -> list[bytes | None]:
        now = time.monotonic()
        with self._lock:
            space = self._data.get(tenant_id, {})
            out: list[bytes | None] = []
            for key in keys:
                item = space.get(key)
                out.append(None if item is None or (item[1] is not None and item[1] < now) else item[0])
            return out

    def set_many(self, tenant_id: str, items: Mapping[str, bytes], ttl_s: int | None = None) -> None:
        expires = None if ttl_s is None else time.monotonic() + ttl_s
        with self._lock:
            space = self._data.setdefault(tenant_id, {})
            for key, value in items.items():
                space[key] = (value, expires)

    def keys(self, tenant_id: str) -> list[str]:
        with self._lock:
            return sorted(self._data.get(tenant_id, {}))

    def purge_tenant(self, tenant_id: str) -> int:
        with self._lock:
            return len(self._data.pop(tenant_id, {}))

    def ping(self) -> bool:
        return True

    def claim_and_read(
        self, tenant_id: str, claim_key: str, marker: bytes, ttl_s: int, read_keys: Sequence[str]
    ) -> tuple[bytes | None, list[bytes | None]]:
        now = time.monotonic()
        with self._lock:
            space = self._data.setdefault(tenant_id, {})
            held = space.get(claim_key)
            existing = None if held is None or (held[1] is not None and held[1] < now) else held[0]
            if existing is None:
                space[claim_key] = (marker, now + ttl_s)
            values: list[bytes | None] = []
            for key in read_keys:
                item = space.get(key)
                values.append(None if item is None or (item[1] is not None and item[1] < now) else item[0])
            return existing, values

    def delete_many(self, tenant_id: str, keys: Sequence[str]) -> None:
        with self._lock:
            space = self._data.get(tenant_id, {})
            for key in keys:
                space.pop(key, None)
