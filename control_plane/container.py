"""Deprecated name of the composition root (``control_plane.bootstrap.state``); nothing in the
domains may import either. Kept only for scripts written against the old name."""

from control_plane.bootstrap.state import State as Container
from control_plane.bootstrap.state import build_state as build_container
from control_plane.tenants.ports import TenantDataPurger

__all__ = ["Container", "TenantDataPurger", "build_container"]
