"""Console settings (env prefix FRAUDRAIL_CONSOLE_); the default secret is refused in production."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

DEV_SECRET = "dev-only-console-secret"  # noqa: S105 - the development default, refused in production


class ConsoleSettings(BaseSettings):
    """The analyst console: the key that signs the sign-in cookie, and how long a session lasts."""

    model_config = SettingsConfigDict(env_prefix="FRAUDRAIL_CONSOLE_", extra="ignore", populate_by_name=True)

    env: Literal["development", "test", "production"] = Field(
        default="development", validation_alias="FRAUDRAIL_ENV", description="Shared with AppSettings.env"
    )
    secret: SecretStr = Field(default=SecretStr(DEV_SECRET), description="Signs the sign-in form's cookie")
    session_max_age_s: int = Field(
        default=8 * 3600, ge=60, le=7 * 24 * 3600, description="A session ends this long after sign-in"
    )
    session_idle_s: int = Field(
        default=30 * 60, ge=60, le=24 * 3600, description="A session ends after this long without a request"
    )
    cookie_secure: bool | None = Field(default=None, description="Secure cookies; default: in production")

    @model_validator(mode="after")
    def _refuse_unsafe(self) -> ConsoleSettings:
        if self.env == "production":
            secret = self.secret.get_secret_value()
            if secret == DEV_SECRET:
                raise ValueError("FRAUDRAIL_CONSOLE_SECRET must be set in production")
            if len(secret) < 32:
                raise ValueError("FRAUDRAIL_CONSOLE_SECRET must be at least 32 characters")
        return self

    @property
    def secure_cookies(self) -> bool:
        return self.cookie_secure if self.cookie_secure is not None else self.env == "production"
