"""The auth domain's names for the kernel's principals (``control_plane.principals``)."""

from control_plane.principals import TENANT_SCOPES, Principal, Scope

__all__ = ["TENANT_SCOPES", "Principal", "Scope"]
