"""User shapes."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

TenantRole = Literal["tenant-admin", "analyst", "sre"]
EMAIL_PATTERN = r"^[^@\s]{1,64}@[^@\s]+\.[^@\s]+$"


class UserInvite(BaseModel):
    model_config = ConfigDict(extra="forbid")
    email: str = Field(
        max_length=320, pattern=EMAIL_PATTERN, description="Where the invitation goes; the sign-in name"
    )
    name: str = Field(
        min_length=1, max_length=200, description="The person's name, as the console and ledger show it"
    )
    role: TenantRole


class UserRoleChange(BaseModel):
    model_config = ConfigDict(extra="forbid")
    role: TenantRole


class UserOut(BaseModel):
    id: str
    tenant_id: str | None
    email: str
    name: str
    role: str
    status: str = Field(description="invited (has not set a password yet) or active")
    locked_until: datetime | None
    created_at: datetime


class UserInvited(UserOut):
    invitation_token: str = Field(
        description="Shown once: the invited person accepts with it (POST /v1/auth/invitations/accept) "
        "and sets a password. Send it to them; it expires (FRAUDRAIL_IDENTITY_INVITATION_TTL_S)."
    )
    invitation_expires_at: datetime


class InvitationAccept(BaseModel):
    model_config = ConfigDict(extra="forbid")
    token: str = Field(min_length=1, max_length=200)
    password: str = Field(min_length=1, max_length=256)
    name: str | None = Field(default=None, max_length=200, description="Correct the name the admin typed")


class SignIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    email: str = Field(min_length=1, max_length=320)
    password: str = Field(min_length=1, max_length=256)


class WhoAmI(BaseModel):
    id: str = Field(description="The API key's id, or the user's id")
    kind: Literal["key", "user"]
    name: str
    email: str | None
    role: str = Field(description="The scope every route checks (a user's role)")
    tenant_id: str | None
    display_name: str


class SessionIssued(BaseModel):
    token: str = Field(description="Shown once: send it as `Authorization: Bearer frs_…`")
    expires_at: datetime
    user: WhoAmI
