"""What the tenants domain needs from the rest of the process, as narrow protocols."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Protocol


class TenantDataPurger(Protocol):
    """A store holding tenant data: offboarding purges it, then re-lists it to prove it empty."""

    name: str

    def purge(self, tenant_id: str) -> int: ...
    def remaining(self, tenant_id: str) -> list[str]: ...


class KeyCache(Protocol):
    """The process's verified-key cache: offboarding forgets a tenant's keys at once."""

    def forget(self, key_ids: Iterable[str]) -> None: ...
