"""The feature cache port (re-exported by ``providers.ports``): sync calls, and async ones for the
hot path, which runs on the event loop and must never block it on a network round trip."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple, Protocol, runtime_checkable


@runtime_checkable
class FeatureCache(Protocol):
    """Per-tenant namespaced byte values with fast, bounded-latency access.

    The ``a``-prefixed methods do what their sync namesakes do, awaitable: a network adapter waits
    on the event loop (one connection pool per loop, opened on first use; ``aclose`` closes it),
    an in-process one answers without suspending.
    """

    def ensure_namespace(self, tenant_id: str) -> bool:
        """Create the tenant's namespace; True when it did not exist."""
        ...

    def get_many(self, tenant_id: str, keys: Sequence[str]) -> list[bytes | None]: ...
    def set_many(self, tenant_id: str, items: Mapping[str, bytes], ttl_s: int | None = None) -> None: ...
    def keys(self, tenant_id: str) -> list[str]: ...
    def purge_tenant(self, tenant_id: str) -> int: ...
    def ping(self) -> bool: ...

    def claim_and_read(
        self, tenant_id: str, claim_key: str, marker: bytes, ttl_s: int, read_keys: Sequence[str]
    ) -> tuple[bytes | None, list[bytes | None]]:
        """In one round trip: set ``claim_key`` to ``marker`` unless it exists, and read ``read_keys``.

        Returns the value ``claim_key`` already had (None when this call claimed it) and the values.
        """
        ...

    def delete_many(self, tenant_id: str, keys: Sequence[str]) -> None: ...

    async def aclaim_and_read(
        self, tenant_id: str, claim_key: str, marker: bytes, ttl_s: int, read_keys: Sequence[str]
    ) -> tuple[bytes | None, list[bytes | None]]: ...

    async def aset_many(
        self, tenant_id: str, items: Mapping[str, bytes], ttl_s: int | None = None
    ) -> None: ...

    async def adelete_many(self, tenant_id: str, keys: Sequence[str]) -> None: ...

    async def aclose(self) -> None:
        """Close what the async calls opened on the running event loop (at the process's shutdown)."""
        ...


@dataclass(frozen=True)
class Admission:
    """A decision taken on the cache's server in front of a claim, atomically and in the same round
    trip (the rate limiter's token take).

    ``script`` is the body of a Lua function of ``(KEYS, ARGV)`` (``keys`` and ``args`` here); it
    returns a table whose first element is 1 to admit. Its keys must hash to the tenant's slot.
    """

    script: str
    keys: tuple[str, ...]
    args: tuple[str, ...]


class Admitted(NamedTuple):
    """What ``aadmit_claim_and_read`` returns."""

    reply: list[Any]  # the admission script's table
    existing: bytes | None  # as ``aclaim_and_read``; None (and no claim) when refused
    values: list[bytes | None]


@runtime_checkable
class ScriptedAdmission(Protocol):
    """A cache that runs an ``Admission`` on its server before a claim (Redis)."""

    async def aadmit_claim_and_read(
        self,
        admission: Admission,
        tenant_id: str,
        claim_key: str,
        marker: bytes,
        ttl_s: int,
        read_keys: Sequence[str],
    ) -> Admitted:
        """Run the admission; when it admits, claim and read as ``aclaim_and_read`` does, all in
        one atomic round trip. A refusal claims and reads nothing."""
        ...
