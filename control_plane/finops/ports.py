"""Optional capabilities of the feature cache that the rate limiter uses, as narrow protocols."""

from __future__ import annotations

import threading
from typing import Any, Protocol, runtime_checkable


@runtime_checkable
class RedisBacked(Protocol):
    """A cache on Redis: the token buckets live beside it, in the same server."""

    @property
    def client(self) -> Any: ...


@runtime_checkable
class LockSharing(Protocol):
    """An in-process cache whose lock in-process buckets share."""

    @property
    def lock(self) -> threading.Lock: ...
