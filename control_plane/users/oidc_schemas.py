"""Shapes of the single sign-on (OpenID Connect) configuration routes."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field, field_validator

from control_plane.users.oidc_settings import API_CALLBACK_PATH
from control_plane.users.oidc_tokens import is_allowed_url
from control_plane.users.schemas import TenantRole


class OidcConfigIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    issuer: str = Field(
        min_length=8,
        max_length=500,
        description="The provider's issuer URL (https; http only to a loopback host); its "
        "/.well-known/openid-configuration is read at sign-in",
    )
    client_id: str = Field(min_length=1, max_length=255, pattern=r"^[\x21-\x7e]+$")
    client_secret: str | None = Field(
        default=None,
        min_length=1,
        max_length=2000,
        description="Write-only: stored encrypted, never returned. Required the first time; leave it out "
        "to keep the stored one",
    )
    allowed_email_domain: str | None = Field(
        default=None,
        max_length=255,
        pattern=r"^[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)+$",
        description="Only people with an address at this domain may sign in (none: any verified address)",
    )
    jit_role: TenantRole | None = Field(
        default=None,
        description="The role of a person who signs in without being a user yet (just-in-time "
        "provisioning); null: invite-only, such a person is refused",
    )

    @field_validator("issuer")
    @classmethod
    def _https_issuer(cls, value: str) -> str:
        if not is_allowed_url(value) or "?" in value or "#" in value:
            raise ValueError("issuer must be an https URL (http only to 127.0.0.1 or localhost), no query")
        return value


class OidcConfigOut(BaseModel):
    tenant_id: str
    issuer: str
    client_id: str
    client_secret_set: bool = Field(description="A client secret is stored (it is never returned)")
    allowed_email_domain: str | None
    jit_role: str | None
    callback_path: str = Field(
        default=API_CALLBACK_PATH,
        description="Register <API base URL> + this path (and + /console/sso/callback for the console) "
        "as the client's redirect URIs",
    )
    start_path: str = Field(description="Send people here to sign in (the console links to it)")
    updated_at: datetime
