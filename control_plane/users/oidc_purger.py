"""Offboarding forgets a tenant's single sign-on: its provider configuration (with the encrypted
client secret) and any sign-in still waiting for the provider."""

from __future__ import annotations

from sqlalchemy.orm import Session, sessionmaker

from control_plane.db import TenantTablesPurger
from control_plane.users.oidc_orm import OidcFlow, TenantOidcConfig


class OidcPurger(TenantTablesPurger):
    def __init__(self, factory: sessionmaker[Session]) -> None:
        super().__init__("single_sign_on", factory, (OidcFlow, TenantOidcConfig))
