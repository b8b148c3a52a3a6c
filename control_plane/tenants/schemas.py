"""Tenant API shapes."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, EmailStr, Field, HttpUrl


class Money(BaseModel):
    model_config = ConfigDict(extra="forbid")
    amount: Decimal = Field(max_digits=16, decimal_places=2, examples=["2500.00"])
    currency: str = Field(min_length=3, max_length=3, pattern=r"^[A-Z]{3}$", examples=["USD"])


class Contacts(BaseModel):
    model_config = ConfigDict(extra="forbid")
    slack_webhook_url: HttpUrl | None = None
    teams_webhook_url: HttpUrl | None = None
    email: EmailStr | None = None


class Encryption(BaseModel):
    model_config = ConfigDict(extra="forbid")
    at_rest: bool = True
    kms_key_alias: str | None = Field(default=None, max_length=256)


class TenantCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=1, max_length=200)
    slug: str = Field(min_length=1, max_length=64)
    tier: str = Field(min_length=1, max_length=32)
    region: str = Field(min_length=1, max_length=32)
    budget: Money
    contacts: Contacts = Field(default_factory=Contacts)
    encryption: Encryption = Field(default_factory=Encryption)


class SuspendRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    reason: Literal["admin", "budget"] = "admin"
    note: str | None = Field(default=None, max_length=1000)


class TenantOut(BaseModel):
    id: str
    slug: str
    name: str
    tier: str
    region: str
    budget: Money
    contacts: dict[str, Any]
    status: str
    status_reason: str | None
    suspension_reason: str | None
    provisioning: dict[str, Any]
    created_at: datetime
    updated_at: datetime


class IssuedKeyOut(BaseModel):
    id: str
    scope: str
    name: str
    key: str = Field(description="The secret token. Shown once; store it now.")


class TenantCreated(BaseModel):
    tenant: TenantOut
    provisioning_job_id: str
    admin_key: IssuedKeyOut


class StoreCheck(BaseModel):
    store: str
    remaining: list[str]
    empty: bool
    purged: int


class DeletionReport(BaseModel):
    tenant_id: str
    status: str
    deleted_at: datetime | None
    revoked_keys: list[str]
    stores: list[StoreCheck]
    all_empty: bool
