"""A map bounded in size and in time, for every in-process structure that grows with traffic.

Least recently used entries are evicted past ``max_entries`` (and, with a ``weigh`` function, past
``max_weight``: a count alone does not bound memory when values differ in size); an entry past its
expiry is never returned, and ``sweep`` (run by ``set`` at most every ``sweep_every_s``, or by hand
with an injected clock in tests) removes every expired entry, so memory tracks live entries only.
Not thread-safe: callers hold their own lock (the memory cache's lock is shared with the rate
limiter's buckets).
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Generic, TypeVar

K = TypeVar("K")
V = TypeVar("V")


class BoundedMap(Generic[K, V]):
    def __init__(
        self,
        max_entries: int,
        *,
        default_ttl_s: float | None = None,
        clock: Callable[[], float] = time.monotonic,
        sweep_every_s: float = 30.0,
        max_weight: int | None = None,
        weigh: Callable[[K, V], int] | None = None,
    ) -> None:
        if max_entries < 1:
            raise ValueError("max_entries must be at least 1")
        if (max_weight is None) != (weigh is None):
            raise ValueError("max_weight and weigh go together")
        self.max_entries = max_entries
        self.max_weight = max_weight
        self._weigh = weigh
        self.weight = 0  # sum of weigh(key, value) over the entries held
        self.default_ttl_s = default_ttl_s
        self.clock = clock
        self.sweep_every_s = sweep_every_s
        self._items: OrderedDict[K, tuple[V, float | None, int]] = OrderedDict()
        self._next_sweep = clock() + sweep_every_s
        self.evicted = 0  # dropped for room (counted, so a too-small bound shows)
        self.expired = 0  # dropped by a sweep

    def __len__(self) -> int:
        return len(self._items)

    def __contains__(self, key: object) -> bool:
        return self.get(key) is not None  # type: ignore[arg-type]

    def get(self, key: K, now: float | None = None) -> V | None:
        """The live value (marked recently used), or None."""
        item = self._items.get(key)
        if item is None:
            return None
        expires = item[1]
        if expires is not None and expires <= (self.clock() if now is None else now):
            del self._items[key]
            self.weight -= item[2]
            self.expired += 1
            return None
        self._items.move_to_end(key)
        return item[0]

    def set(self, key: K, value: V, ttl_s: float | None = None, now: float | None = None) -> None:
        now = self.clock() if now is None else now
        ttl = self.default_ttl_s if ttl_s is None else ttl_s
        size = 0 if self._weigh is None else self._weigh(key, value)
        old = self._items.get(key)
        if old is not None:
            self.weight -= old[2]
        self._items[key] = (value, None if ttl is None else now + ttl, size)
        self.weight += size
        self._items.move_to_end(key)
        limit = self.max_weight
        # The newest entry is kept even alone over the weight limit (it is what the caller needs now).
        while len(self._items) > self.max_entries or (
            limit is not None and self.weight > limit and len(self._items) > 1
        ):
            self.weight -= self._items.popitem(last=False)[1][2]
            self.evicted += 1
        if now >= self._next_sweep:
            self.sweep(now)

    def pop(self, key: K) -> V | None:
        item = self._items.pop(key, None)
        if item is None:
            return None
        self.weight -= item[2]
        return item[0]

    def sweep(self, now: float | None = None) -> int:
        """Remove every expired entry; returns how many."""
        now = self.clock() if now is None else now
        dead = [k for k, (_, expires, _) in self._items.items() if expires is not None and expires <= now]
        for key in dead:
            self.weight -= self._items.pop(key)[2]
        self.expired += len(dead)
        self._next_sweep = now + self.sweep_every_s
        return len(dead)

    def key_list(self) -> list[K]:
        """Every key held (expired or not), least recently used first."""
        return list(self._items)

    def clear(self) -> None:
        self._items.clear()
        self.weight = 0
