"""In-process feature cache: one bounded map behind one lock (one process only).

Bounded for the whole process by ``max_entries`` and by ``max_bytes`` (keys and values plus an
estimate of each entry's own overhead: a flagged answer kept for the idempotency window, with its
reasons, is several times the size of a card's state, so a count alone lets memory drift with the
traffic mix); least recently used entries go first (idle cards and terminals, old idempotency
answers), and each entry's TTL is enforced (expired entries are swept, not just hidden). An evicted
card loses its velocity history and an evicted answer is no longer recognised as a retry, so the
bound is sized for a single-machine deployment; production runs Redis
(``FRAUDRAIL_CACHE_BACKEND=redis``) with its own ``maxmemory``.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping, Sequence

from providers.lru import BoundedMap

MAX_ENTRIES = 25_000
MAX_BYTES = 16 * 1024 * 1024
# What CPython spends on an entry beside its key and value bytes: ~250 bytes for the map's own
# structures (key tuple, ordered-dict slot and link, the (value, expiry, size) tuple; measured with
# tracemalloc on CPython 3.11 over 20,000 entries) plus the key's str and the value's bytes headers.
ENTRY_OVERHEAD_BYTES = 330


def entry_weight(key: tuple[str, str], value: bytes) -> int:
    return len(key[0]) + len(key[1]) + len(value) + ENTRY_OVERHEAD_BYTES


class MemoryFeatureCache:
    def __init__(
        self,
        max_entries: int = MAX_ENTRIES,
        *,
        max_bytes: int = MAX_BYTES,
        clock: Callable[[], float] = time.monotonic,
        sweep_every_s: float = 30.0,
    ) -> None:
        self._lock = threading.Lock()
        self._namespaces: set[str] = set()
        self._data: BoundedMap[tuple[str, str], bytes] = BoundedMap(
            max_entries, clock=clock, sweep_every_s=sweep_every_s, max_weight=max_bytes, weigh=entry_weight
        )

    @property
    def lock(self) -> threading.Lock:
        """The cache's lock, which the rate limiter's in-process buckets share."""
        return self._lock

    def __len__(self) -> int:
        with self._lock:
            return len(self._data)

    @property
    def bytes_held(self) -> int:
        """The estimated memory of the entries held (what ``max_bytes`` bounds)."""
        with self._lock:
            return self._data.weight

    def sweep(self) -> int:
        """Drop every expired entry now (``set_many`` also does it every ``sweep_every_s``)."""
        with self._lock:
            return self._data.sweep()

    def ensure_namespace(self, tenant_id: str) -> bool:
        with self._lock:
            if tenant_id in self._namespaces:
                return False
            self._namespaces.add(tenant_id)
            return True

    def get_many(self, tenant_id: str, keys: Sequence[str]) -> list[bytes | None]:
        with self._lock:
            return [self._data.get((tenant_id, key)) for key in keys]

    def set_many(self, tenant_id: str, items: Mapping[str, bytes], ttl_s: int | None = None) -> None:
        with self._lock:
            self._namespaces.add(tenant_id)
            for key, value in items.items():
                self._data.set((tenant_id, key), value, ttl_s)

    def keys(self, tenant_id: str) -> list[str]:
        with self._lock:
            return sorted(
                k for t, k in self._data.key_list() if t == tenant_id and self._data.get((t, k)) is not None
            )

    def purge_tenant(self, tenant_id: str) -> int:
        with self._lock:
            self._namespaces.discard(tenant_id)
            mine = [key for key in self._data.key_list() if key[0] == tenant_id]
            for key in mine:
                self._data.pop(key)
            return len(mine)

    def ping(self) -> bool:
        return True

    def claim_and_read(
        self, tenant_id: str, claim_key: str, marker: bytes, ttl_s: int, read_keys: Sequence[str]
    ) -> tuple[bytes | None, list[bytes | None]]:
        with self._lock:
            self._namespaces.add(tenant_id)
            existing = self._data.get((tenant_id, claim_key))
            if existing is None:
                self._data.set((tenant_id, claim_key), marker, ttl_s)
            return existing, [self._data.get((tenant_id, key)) for key in read_keys]

    def delete_many(self, tenant_id: str, keys: Sequence[str]) -> None:
        with self._lock:
            for key in keys:
                self._data.pop((tenant_id, key))

    # The async port: in-process calls never wait on anything, so they answer without suspending.

    async def aclaim_and_read(
        self, tenant_id: str, claim_key: str, marker: bytes, ttl_s: int, read_keys: Sequence[str]
    ) -> tuple[bytes | None, list[bytes | None]]:
        return self.claim_and_read(tenant_id, claim_key, marker, ttl_s, read_keys)

    async def aset_many(self, tenant_id: str, items: Mapping[str, bytes], ttl_s: int | None = None) -> None:
        self.set_many(tenant_id, items, ttl_s)

    async def adelete_many(self, tenant_id: str, keys: Sequence[str]) -> None:
        self.delete_many(tenant_id, keys)

    async def aclose(self) -> None:
        return None
