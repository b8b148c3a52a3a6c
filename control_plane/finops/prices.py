"""The price table (per unit, per tier or hosting kind) and monthly cost estimates before a deploy."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal
from enum import StrEnum
from pathlib import Path
from typing import Any

from providers.ports import PlannedResource

CENT = Decimal("0.01")


class Meter(StrEnum):
    FRAUD_CHECKS = "fraud_checks"
    BATCH_ROWS = "batch_rows"
    TRAINING_SECONDS = "training_seconds"
    HOSTING_HOURS = "hosting_hours"
    STORAGE_GB_DAYS = "storage_gb_days"


def cents(value: Decimal) -> Decimal:
    return value.quantize(CENT, rounding=ROUND_HALF_UP)


@dataclass(frozen=True)
class MeterPrice:
    unit: str
    priced_by: str  # "tier" or "hosting"
    prices: Mapping[str, Decimal]


@dataclass(frozen=True)
class PriceTable:
    currency: str
    meters: Mapping[Meter, MeterPrice]
    instance_hour: Mapping[str, Decimal]
    serverless_gb_hour: Decimal
    pooled_slot_hour: Decimal
    storage_gb_month: Decimal

    @classmethod
    def load(cls, path: Path) -> PriceTable:
        return cls.from_dict(json.loads(path.read_text()))

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any]) -> PriceTable:
        """Parse the JSON table; every price is a decimal string (never a float)."""

        def money(value: Any, where: str) -> Decimal:
            if not isinstance(value, str):
                raise ValueError(f"price {where} must be a decimal string, got {value!r}")
            price = Decimal(value)
            if price < 0:
                raise ValueError(f"price {where} must be >= 0, got {value}")
            return price

        meters = {}
        for name, spec in raw["meters"].items():
            meter = Meter(name)
            meters[meter] = MeterPrice(
                unit=str(spec["unit"]),
                priced_by=str(spec["priced_by"]),
                prices={k: money(v, f"{name}.{k}") for k, v in spec["prices"].items()},
            )
        missing = set(Meter) - set(meters)
        if missing:
            raise ValueError(f"the price table has no price for {sorted(missing)}")
        est = raw["estimates"]
        return cls(
            currency=str(raw["currency"]),
            meters=meters,
            instance_hour={k: money(v, f"instance_hour.{k}") for k, v in est["instance_hour"].items()},
            serverless_gb_hour=money(est["serverless_gb_hour"], "serverless_gb_hour"),
            pooled_slot_hour=money(est["pooled_slot_hour"], "pooled_slot_hour"),
            storage_gb_month=money(est["storage_gb_month"], "storage_gb_month"),
        )

    def dimension(self, meter: Meter, template: Mapping[str, Any]) -> str:
        """The price key a tenant's usage of ``meter`` is charged at: its tier or its hosting kind."""
        if self.meters[meter].priced_by == "hosting":
            return str(template["hosting"])
        return str(template["tier"])

    def unit_price(self, meter: Meter, dimension: str) -> Decimal:
        prices = self.meters[meter].prices
        if dimension not in prices:
            raise KeyError(f"no {meter.value} price for {dimension!r} in the price table")
        return prices[dimension]

    def unit(self, meter: Meter) -> str:
        return self.meters[meter].unit


@dataclass(frozen=True)
class HostingPlan:
    """Capacity a deploy adds, priced for a month: endpoint instances, serverless memory, storage."""

    hosting: str  # serverless | pooled | dedicated
    instance_type: str | None = None
    instance_count: int = 0
    serverless_memory_mb: int = 0
    pooled_slots: int = 0
    storage_gb: Decimal = Decimal("0")


@dataclass(frozen=True)
class CostEstimate:
    monthly: Decimal  # to the cent
    currency: str
    lines: list[dict[str, str]] = field(default_factory=list)

    def describe(self) -> str:
        return "; ".join(f"{line['item']}: {line['monthly']}" for line in self.lines) or "nothing billable"


def plan_from_resources(template: Mapping[str, Any], resources: Sequence[PlannedResource]) -> HostingPlan:
    """A provisioning plan as capacity: the model slot by the tier's hosting kind (storage starts empty)."""
    hosting = str(template["hosting"])
    slots = [r for r in resources if r.kind in ("model_slot", "stack")]
    if not slots:
        return HostingPlan(hosting=hosting)
    return _capacity(template, hosting)


def rollout_plan(template: Mapping[str, Any]) -> HostingPlan:
    """The capacity a canary adds: one more instance on a dedicated endpoint (an upper bound: the
    variant lives until promotion or abort); a multi-model or serverless endpoint hosts it for free."""
    hosting = str(template["hosting"])
    if hosting == "dedicated":
        return _capacity(template, hosting)
    return HostingPlan(hosting=hosting)


def _capacity(template: Mapping[str, Any], hosting: str) -> HostingPlan:
    if hosting == "dedicated":
        types = list(template.get("instance_types") or [])
        if not types:
            raise ValueError("a dedicated tier needs instance_types")
        return HostingPlan(hosting=hosting, instance_type=str(types[0]), instance_count=1)
    if hosting == "serverless":
        memory = int((template.get("serverless") or {}).get("memory_mb", 0))
        return HostingPlan(hosting=hosting, serverless_memory_mb=memory)
    return HostingPlan(hosting=hosting, pooled_slots=1)


def estimate_monthly_cost(
    template: Mapping[str, Any],
    plan: HostingPlan | Sequence[PlannedResource],
    prices: PriceTable,
    *,
    hours_per_month: Decimal = Decimal("730"),
) -> CostEstimate:
    """Monthly cost of a provisioning plan or a rollout: endpoint hours by instance type (or
    serverless memory, or a pooled slot) plus storage, at the configured hourly prices."""
    capacity = plan if isinstance(plan, HostingPlan) else plan_from_resources(template, plan)
    lines: list[tuple[str, Decimal]] = []
    if capacity.instance_count:
        kind = capacity.instance_type or ""
        if kind not in prices.instance_hour:
            raise KeyError(f"no hourly price for instance type {kind!r}")
        hourly = prices.instance_hour[kind]
        lines.append(
            (
                f"{capacity.instance_count} x {capacity.instance_type} x {hours_per_month} h",
                capacity.instance_count * hourly * hours_per_month,
            )
        )
    if capacity.serverless_memory_mb:
        gb = Decimal(capacity.serverless_memory_mb) / Decimal(1024)
        lines.append(
            (
                f"serverless {capacity.serverless_memory_mb} MB x {hours_per_month} h",
                gb * prices.serverless_gb_hour * hours_per_month,
            )
        )
    if capacity.pooled_slots:
        lines.append(
            (
                f"{capacity.pooled_slots} pooled slot x {hours_per_month} h",
                capacity.pooled_slots * prices.pooled_slot_hour * hours_per_month,
            )
        )
    if capacity.storage_gb:
        lines.append((f"storage {capacity.storage_gb} GB", capacity.storage_gb * prices.storage_gb_month))
    total = cents(sum((amount for _, amount in lines), Decimal("0")))
    return CostEstimate(
        monthly=total,
        currency=prices.currency,
        lines=[{"item": item, "monthly": str(cents(amount))} for item, amount in lines],
    )
