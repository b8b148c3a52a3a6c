"""A tenant's OpenID Connect configuration, and sign-in flows waiting for the provider's answer."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from control_plane.orm_base import Base, UTCDateTime, utcnow


class TenantOidcConfig(Base):
    """How the people of one tenant sign in with its identity provider.

    ``client_secret_sealed`` is the client secret encrypted (Fernet) under the platform's
    ``FRAUDRAIL_OIDC_SECRET_KEY``: it must be sent to the token endpoint, so it cannot be hashed,
    and the API never returns it. ``jit_role`` None means invite-only: a person without a user is
    refused; otherwise such a person gets a new active user with that role.
    """

    __tablename__ = "tenant_oidc_configs"

    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"), primary_key=True)
    issuer: Mapped[str] = mapped_column(String(500))
    client_id: Mapped[str] = mapped_column(String(255))
    client_secret_sealed: Mapped[str] = mapped_column(Text)
    allowed_email_domain: Mapped[str | None] = mapped_column(String(255), default=None)
    jit_role: Mapped[str | None] = mapped_column(String(20), default=None)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


class OidcFlow(Base):
    """One started sign-in: the browser went to the provider and comes back with ``state``.

    Stored in the database (not process memory) so the callback may reach any server process.
    Only a SHA-256 of ``state`` is stored; the row is deleted when the callback uses it (a replayed
    state finds nothing) and is useless after ``expires_at``.
    """

    __tablename__ = "oidc_flows"

    state_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"), index=True)
    nonce: Mapped[str] = mapped_column(String(100))
    code_verifier: Mapped[str] = mapped_column(String(128))
    redirect_uri: Mapped[str] = mapped_column(String(1000))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
