"""FinOps API shapes (money as decimal strings, to the cent)."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal

from pydantic import BaseModel, ConfigDict, Field


class MeterQuantity(BaseModel):
    unit: str
    quantity: Decimal


class DayUsage(BaseModel):
    day: date
    meters: dict[str, Decimal]


class UsageLine(BaseModel):
    meter: str
    dimension: str = Field(description="The tier or hosting kind the usage is priced at")
    unit: str
    quantity: Decimal


class UsageOut(BaseModel):
    tenant_id: str
    month: str
    as_of: datetime
    month_to_date: dict[str, MeterQuantity]
    days: list[DayUsage]
    lines: list[UsageLine]
    unflushed_fraud_checks: int = Field(description="Counted in this process, not written yet")


class DayCost(BaseModel):
    day: date
    cost: Decimal
    by_meter: dict[str, Decimal]


class CostLine(UsageLine):
    cost: Decimal


class ForecastOut(BaseModel):
    month_end: Decimal
    method: str
    elapsed_days: Decimal
    days_in_month: int
    as_of: datetime


class LimitsOut(BaseModel):
    rps: float
    burst: float
    daily_requests: int | None
    throttled: bool


class BudgetOut(BaseModel):
    tenant_id: str
    month: str
    amount: Decimal
    currency: str
    status: str = Field(description="ok | warning | frozen (the deployment policy's tenant.budget_status)")
    throttled: bool
    actual: Decimal
    forecast: Decimal
    headroom: Decimal
    actual_fraction: Decimal
    forecast_fraction: Decimal
    frozen_at: datetime | None
    throttled_at: datetime | None
    thresholds_notified: list[str]
    evaluated_at: datetime | None
    limits: LimitsOut | None


class CostsOut(BaseModel):
    tenant_id: str
    month: str
    currency: str
    as_of: datetime
    month_to_date: Decimal
    by_meter: dict[str, Decimal]
    days: list[DayCost]
    lines: list[CostLine]
    forecast: ForecastOut
    budget: BudgetOut | None = Field(description="This month's budget (only for the current month)")


class BudgetIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    amount: Decimal = Field(gt=0, max_digits=16, decimal_places=2, examples=["5000.00"])
    currency: str = Field(min_length=3, max_length=3, pattern=r"^[A-Z]{3}$", examples=["USD"])
    reason: str | None = Field(default=None, max_length=1000)
