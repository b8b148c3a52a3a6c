"""What the auth domain needs from the tenants domain, as a narrow protocol."""

from __future__ import annotations

from typing import Protocol

from sqlalchemy.orm import Session


class TenantStatusLookup(Protocol):
    def __call__(self, session: Session, tenant_id: str) -> str | None:
        """The tenant's lifecycle status, or None when there is no such tenant."""
        ...
