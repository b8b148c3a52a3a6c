"""The tenant's notification contacts, as the rollback handler's ``contacts_for`` wants them."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from control_plane.errors import NotFound
from control_plane.tenants import repository as tenants


def tenant_contacts(factory: sessionmaker[Session]) -> Callable[[str], Mapping[str, Any]]:
    """``contacts_for``: the tenant's stored contacts (``{}`` for an unknown tenant), own session."""

    def contacts_for(tenant_id: str) -> Mapping[str, Any]:
        with factory() as session:
            try:
                tenant = tenants.get(session, tenant_id)
            except NotFound:
                return {}
            return {k: v for k, v in dict(tenant.contacts or {}).items() if v is not None}

    return contacts_for
