"""FinOps use cases: record usage, aggregate it by day and month, price it, read a budget's state."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Any, NamedTuple

from sqlalchemy.orm import Session

from control_plane.errors import InvalidInput
from control_plane.finops import repository as repo
from control_plane.finops.orm import BudgetMonth
from control_plane.finops.prices import Meter, PriceTable, cents
from control_plane.tenants.orm import Tenant
from guardrails.budget import BudgetLevel, budget_status, forecast_month_end, month_bounds

ZERO = Decimal("0")
FORECAST_METHOD = "linear: cost_to_date / elapsed_days * days_in_month"
DAY = timedelta(days=1)


@dataclass(frozen=True)
class UsageRecord:
    """One quantity of one meter; ``id`` is deterministic at its source so a replay dedups."""

    id: str
    tenant_id: str
    meter: Meter
    quantity: Decimal
    occurred_at: datetime
    source: str


def record_usage(
    session: Session, prices: PriceTable, template: Mapping[str, Any], rec: UsageRecord, *, now: datetime
) -> bool:
    """Price and store one usage record and add it to the day's rollup; False for a duplicate id."""
    if rec.quantity < 0:
        raise ValueError(f"usage quantity must be >= 0, got {rec.quantity}")
    occurred = rec.occurred_at.astimezone(UTC)
    dimension = prices.dimension(rec.meter, template)
    price = prices.unit_price(rec.meter, dimension)
    cost = rec.quantity * price
    inserted = repo.insert_event(
        session,
        {
            "id": rec.id,
            "tenant_id": rec.tenant_id,
            "meter": rec.meter.value,
            "dimension": dimension,
            "quantity": rec.quantity,
            "unit_price": price,
            "cost": cost,
            "day": occurred.date(),
            "occurred_at": occurred,
            "source": rec.source,
            "recorded_at": now,
        },
    )
    if inserted:
        repo.add_to_daily(
            session,
            tenant_id=rec.tenant_id,
            day=occurred.date(),
            meter=rec.meter.value,
            dimension=dimension,
            quantity=rec.quantity,
            cost=cost,
            now=now,
        )
    return inserted


def month_key(moment: datetime) -> str:
    return f"{moment.astimezone(UTC):%Y-%m}"


def parse_month(month: str | None, now: datetime) -> tuple[datetime, datetime]:
    """``YYYY-MM`` (default: the month of ``now``) as [first instant, first instant of the next)."""
    if month is None:
        return month_bounds(now)
    try:
        first = datetime.strptime(month, "%Y-%m").replace(tzinfo=UTC)
    except ValueError as exc:
        raise InvalidInput(f"month must look like 2026-11, got {month!r}", field="month") from exc
    return month_bounds(first)


@dataclass
class MonthUsage:
    """One tenant's usage and cost over a month (to ``as_of`` for the current month)."""

    tenant_id: str
    month: str
    start: datetime
    end: datetime
    as_of: datetime
    days: list[dict[str, Any]] = field(default_factory=list)
    lines: list[dict[str, Any]] = field(default_factory=list)
    by_meter_quantity: dict[str, Decimal] = field(default_factory=dict)
    by_meter_cost: dict[str, Decimal] = field(default_factory=dict)
    cost_to_date: Decimal = ZERO


def month_usage(
    session: Session, prices: PriceTable, tenant_id: str, *, month: str | None, now: datetime
) -> MonthUsage:
    """Daily and month-to-date aggregates from the rollup; money in full precision here."""
    start, end = parse_month(month, now)
    as_of = min(max(now, start), end)
    last_day = (end - DAY).date()
    rows = repo.daily_rows(session, tenant_id, start.date(), last_day)
    usage = MonthUsage(tenant_id=tenant_id, month=f"{start:%Y-%m}", start=start, end=end, as_of=as_of)
    by_day: dict[date, dict[str, Any]] = {}
    lines: dict[tuple[str, str], dict[str, Any]] = {}
    quantity: dict[str, Decimal] = defaultdict(lambda: ZERO)
    cost: dict[str, Decimal] = defaultdict(lambda: ZERO)
    for row in rows:
        q, c = Decimal(row.quantity), Decimal(row.cost)
        day = by_day.setdefault(row.day, {"day": row.day, "cost": ZERO, "meters": {}})
        meter = day["meters"].setdefault(row.meter, {"quantity": ZERO, "cost": ZERO})
        meter["quantity"] += q
        meter["cost"] += c
        day["cost"] += c
        line = lines.setdefault(
            (row.meter, row.dimension),
            {"meter": row.meter, "dimension": row.dimension, "quantity": ZERO, "cost": ZERO},
        )
        line["quantity"] += q
        line["cost"] += c
        quantity[row.meter] += q
        cost[row.meter] += c
    usage.days = [by_day[d] for d in sorted(by_day)]
    usage.lines = [lines[k] for k in sorted(lines)]
    for line in usage.lines:
        line["unit"] = prices.unit(Meter(line["meter"]))
    usage.by_meter_quantity = dict(quantity)
    usage.by_meter_cost = dict(cost)
    usage.cost_to_date = sum(cost.values(), ZERO)
    return usage


@dataclass(frozen=True)
class Forecast:
    month_end: Decimal
    method: str
    elapsed_days: Decimal
    days_in_month: int
    as_of: datetime


def forecast(cost_to_date: Decimal, start: datetime, end: datetime, now: datetime) -> Forecast:
    """Linear on the month so far (``guardrails.budget.forecast_month_end``)."""
    elapsed = min(max(now, start), end) - start
    return Forecast(
        month_end=forecast_month_end(cost_to_date, now, start, end),
        method=FORECAST_METHOD,
        elapsed_days=(Decimal(elapsed // timedelta(microseconds=1)) / Decimal(86_400_000_000)).quantize(
            Decimal("0.0001"), rounding=ROUND_HALF_UP
        ),
        days_in_month=(end - start).days,
        as_of=now,
    )


class BudgetState(NamedTuple):
    """What the deployment policy reads: ``tenant.budget_status`` and ``cost.budget_headroom``."""

    status: str  # ok | warning | frozen
    actual: Decimal
    budget: Decimal
    headroom: Decimal


@dataclass(frozen=True)
class BudgetView:
    tenant_id: str
    month: str
    currency: str
    budget: Decimal
    actual: Decimal
    forecast: Decimal
    status: str  # ok | warning | frozen
    throttled: bool
    actual_fraction: Decimal
    forecast_fraction: Decimal
    frozen_at: datetime | None
    throttled_at: datetime | None
    notified: list[str]
    evaluated_at: datetime | None

    @property
    def headroom(self) -> Decimal:
        return self.budget - self.actual

    def state(self) -> BudgetState:
        return BudgetState(self.status, self.actual, self.budget, self.headroom)


def month_to_date_cost(session: Session, tenant_id: str, now: datetime) -> Decimal:
    start, end = month_bounds(now)
    return repo.cost_between(session, tenant_id, start.date(), (end - DAY).date())


def budget_view(session: Session, tenant: Tenant, *, now: datetime) -> BudgetView:
    """Live figures (month-to-date cost) with the persisted enforcement state of this month.

    Frozen means the evaluation froze it (audited); spend over the budget that no evaluation has
    seen yet reads as ``warning`` until the queued evaluation runs.
    """
    start, end = month_bounds(now)
    month = month_key(now)
    actual = cents(month_to_date_cost(session, tenant.id, now))
    projected = forecast_month_end(actual, now, start, end)
    budget = Decimal(tenant.budget_amount)
    live = budget_status(actual, projected, budget)
    row: BudgetMonth | None = repo.get_month(session, tenant.id, month)
    frozen = row is not None and row.frozen_at is not None
    if frozen:
        status = BudgetLevel.FROZEN.value
    elif live.level == BudgetLevel.FROZEN:
        status = BudgetLevel.WARNING.value
    else:
        status = live.level.value
    return BudgetView(
        tenant_id=tenant.id,
        month=month,
        currency=tenant.budget_currency,
        budget=budget,
        actual=actual,
        forecast=projected,
        status=status,
        throttled=bool(frozen and row is not None and row.throttled_at is not None),
        actual_fraction=live.actual_fraction.quantize(Decimal("0.0001"), rounding=ROUND_HALF_UP),
        forecast_fraction=live.forecast_fraction.quantize(Decimal("0.0001"), rounding=ROUND_HALF_UP),
        frozen_at=row.frozen_at if row else None,
        throttled_at=row.throttled_at if row else None,
        notified=sorted((row.notified or {}).keys()) if row else [],
        evaluated_at=row.evaluated_at if row else None,
    )


def budget_state(session: Session, tenant: Tenant, *, now: datetime) -> BudgetState:
    """``(status, actual, budget, headroom)`` for the deployment policy."""
    return budget_view(session, tenant, now=now).state()
