"""First-start set-up: the platform-admin key, created once and printed once."""

from __future__ import annotations

from sqlalchemy.orm import Session, sessionmaker

from control_plane.auth import service as keys
from control_plane.auth.scopes import Scope
from control_plane.db import unit_of_work


def ensure_admin_key(factory: sessionmaker[Session]) -> str | None:
    """Create a platform-admin key when none is active; return its token (else None)."""
    with unit_of_work(factory) as session:
        if keys.count_platform_admin_keys(session) > 0:
            return None
        issued = keys.issue_key(
            session, tenant_id=None, scope=Scope.PLATFORM_ADMIN, name="bootstrap", actor="system:bootstrap"
        )
        return issued.secret
