"""Identity settings (env prefix FRAUDRAIL_IDENTITY_): sessions, lockout, invitations, passwords."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class IdentitySettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="FRAUDRAIL_IDENTITY_", extra="ignore")

    session_max_age_s: int = Field(
        default=12 * 3600,
        ge=60,
        le=7 * 24 * 3600,
        description="A user's API session ends this long after sign-in",
    )
    session_idle_s: int = Field(
        default=60 * 60, ge=60, le=24 * 3600, description="A user's API session ends after this long unused"
    )
    lockout_after: int = Field(
        default=5, ge=1, le=100, description="Consecutive failed password sign-ins that lock the account"
    )
    lockout_s: int = Field(
        default=15 * 60, ge=1, le=24 * 3600, description="How long a locked account stays locked"
    )
    invitation_ttl_s: int = Field(
        default=7 * 24 * 3600, ge=60, le=30 * 24 * 3600, description="How long an invitation can be accepted"
    )
    password_min_length: int = Field(default=12, ge=8, le=128, description="Shortest password accepted")
