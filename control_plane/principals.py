"""Key scopes and the principal a request acts as (kernel: every domain and the tenancy check use them).

A principal is an API key (a machine) or a user (a person) signed in with a session; both carry
one scope, so every route's tenant and scope checks treat them alike. A user's role *is* its
scope: tenant-admin, analyst, sre, or platform-admin.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from enum import StrEnum


class Scope(StrEnum):
    PLATFORM_ADMIN = "platform-admin"
    TENANT_ADMIN = "tenant-admin"
    APP = "app"
    ANALYST = "analyst"
    SRE = "sre"


TENANT_SCOPES = frozenset({Scope.TENANT_ADMIN, Scope.APP, Scope.ANALYST, Scope.SRE})
USER_ID_PREFIX = "usr_"
SESSION_TOKEN_PREFIX = "frs_"  # noqa: S105 - a public prefix: a user's bearer session token


def secret_digest(secret: str) -> str:
    """How a bearer secret (API key, session token or id, invitation) is stored and looked up: its
    SHA-256 in hex. A copy of the table replays nothing; the secret itself is never stored."""
    return hashlib.sha256(secret.encode()).hexdigest()


def same_digest(stored: str, presented: str) -> bool:
    """Whether two digests are equal, compared in constant time (no timing hint of the prefix)."""
    return hmac.compare_digest(stored, presented)


class Actor(str):
    """An actor id (``key:key_…`` or ``user:usr_…``) that also carries who it is, readable.

    It is a ``str`` so the many services that pass ``actor=principal.actor`` through to the audit
    ledger (and store it in ``created_by`` / ``approved_by`` columns) keep working unchanged; the
    ledger reads ``display_name`` to record the person's name and e-mail, or the key's name.
    """

    display_name: str | None

    def __new__(cls, value: str, display_name: str | None = None) -> Actor:
        made = super().__new__(cls, value)
        made.display_name = display_name
        return made


def display_name_of(actor: str) -> str | None:
    """The readable name an actor id carries (None for a bare string such as ``system``)."""
    return getattr(actor, "display_name", None)


@dataclass(frozen=True)
class Principal:
    key_id: str  # the API key's id, or the user's id (usr_…) for a person
    scope: Scope
    tenant_id: str | None
    name: str = ""  # the person's name, or the key's name
    email: str | None = None  # a person's e-mail; None for a key

    @property
    def is_person(self) -> bool:
        return self.key_id.startswith(USER_ID_PREFIX)

    @property
    def display_name(self) -> str:
        """Who this is, for people to read: ``Ana Diaz <ana@acme.example>`` or ``key "ci" (key_…)``."""
        if self.is_person:
            return f"{self.name} <{self.email}>" if self.email else self.name
        return f'key "{self.name}" ({self.key_id})' if self.name else self.key_id

    @property
    def actor(self) -> Actor:
        kind = "user" if self.is_person else "key"
        return Actor(f"{kind}:{self.key_id}", self.display_name)

    @property
    def is_platform_admin(self) -> bool:
        return self.scope is Scope.PLATFORM_ADMIN
