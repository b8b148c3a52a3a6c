"""OpenID Connect sign-in settings (env prefix FRAUDRAIL_OIDC_)."""

from __future__ import annotations

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

API_CALLBACK_PATH = "/v1/auth/oidc/callback"  # where the provider sends people back to the API
DEV_SECRET_KEY = "dev-only-oidc-secret-key"  # noqa: S105 - the embedded default, refused in production


class OidcSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="FRAUDRAIL_OIDC_", extra="ignore")

    secret_key: SecretStr = Field(
        default=SecretStr(DEV_SECRET_KEY),
        description="Encrypts tenants' OIDC client secrets at rest (set it in production; changing it "
        "means setting every tenant's client secret again)",
    )
    flow_ttl_s: int = Field(
        default=600, ge=30, le=3600, description="How long a started sign-in waits for the provider's answer"
    )
    max_open_flows_per_tenant: int = Field(
        default=1000, ge=10, le=100_000, description="Started, unfinished sign-ins a tenant may have at once"
    )
    metadata_ttl_s: int = Field(
        default=3600,
        ge=1,
        le=24 * 3600,
        description="How long a provider's discovery document and JWKS are cached",
    )
    metadata_cache_entries: int = Field(
        default=256,
        ge=1,
        le=10_000,
        description="Providers whose discovery document and JWKS are cached at once",
    )
    http_timeout_s: float = Field(default=5.0, gt=0, le=60, description="Timeout of each call to a provider")
    clock_skew_s: int = Field(
        default=60, ge=0, le=600, description="Tolerated clock difference with the provider (exp, iat)"
    )
    public_url: str | None = Field(
        default=None,
        description="The API's public base URL for the callback (default: the URL the start request came to)",
    )

    def refuse_unsafe(self, env: str) -> None:
        """Production must not encrypt tenants' client secrets under the published default key."""
        if env == "production" and self.secret_key.get_secret_value() == DEV_SECRET_KEY:
            raise ValueError("FRAUDRAIL_OIDC_SECRET_KEY must be set in production")
