"""What the auth domain needs from other domains, as narrow protocols."""

from __future__ import annotations

from typing import Protocol

from sqlalchemy.orm import Session

from control_plane.principals import Principal


class TenantStatusLookup(Protocol):
    def __call__(self, session: Session, tenant_id: str) -> str | None:
        """The tenant's lifecycle status, or None when there is no such tenant."""
        ...


class SessionTokens(Protocol):
    """Users' bearer sessions (the users domain): a session token resolves to its person."""

    def verify(self, token: str) -> Principal:
        """The principal of a live session token; raises Unauthenticated otherwise."""
        ...
