"""Which tenant a request acts for: ``tenant_of`` (routes without ``{tenant_id}`` in the path) and
``authorize`` (routes with one). Kernel: every domain's routes use them."""

from __future__ import annotations

from collections.abc import Iterable

from control_plane.errors import Forbidden, NotFound
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


def authorize(principal: Principal, tenant_id: str, scopes: Iterable[Scope]) -> None:
    """Platform admins pass; another tenant's key gets 404 (no existence leak); a wrong scope 403."""
    if principal.is_platform_admin:
        return
    if principal.tenant_id != tenant_id:
        raise NotFound(f"tenant {tenant_id} not found", field="tenant_id")
    allowed = set(scopes)
    if principal.scope not in allowed:
        names = ", ".join(sorted(s.value for s in allowed))
        raise Forbidden(f"this route needs a key with scope {names}; yours is {principal.scope.value}")
