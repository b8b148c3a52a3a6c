"""Key scopes and the principal a request acts as (kernel: every domain and the tenancy check use them)."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Scope(StrEnum):
    PLATFORM_ADMIN = "platform-admin"
    TENANT_ADMIN = "tenant-admin"
    APP = "app"
    ANALYST = "analyst"
    SRE = "sre"


TENANT_SCOPES = frozenset({Scope.TENANT_ADMIN, Scope.APP, Scope.ANALYST, Scope.SRE})


@dataclass(frozen=True)
class Principal:
    key_id: str
    scope: Scope
    tenant_id: str | None

    @property
    def actor(self) -> str:
        return f"key:{self.key_id}"

    @property
    def is_platform_admin(self) -> bool:
        return self.scope is Scope.PLATFORM_ADMIN
