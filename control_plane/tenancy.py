"""Resolving the tenant a tenant-scoped route acts for (routes without ``{tenant_id}`` in the path)."""

from __future__ import annotations

from collections.abc import Iterable

from control_plane.errors import Forbidden
from control_plane.principals import Principal, Scope


def tenant_of(principal: Principal, scopes: Iterable[Scope]) -> str:
    """The caller's tenant, when its key has one of ``scopes``; 403 otherwise."""
    allowed = set(scopes)
    if principal.tenant_id is None:
        raise Forbidden("this route acts for one tenant: use a key of that tenant")
    if principal.scope not in allowed:
        names = ", ".join(sorted(s.value for s in allowed))
        raise Forbidden(f"this route needs a key with scope {names}; yours is {principal.scope.value}")
    return principal.tenant_id
