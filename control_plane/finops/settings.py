"""FinOps settings (env prefix ``FRAUDRAIL_FINOPS_``)."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

PRICES_FILE = Path(__file__).resolve().parent / "prices.json"


class FinOpsSettings(BaseSettings):
    """Metering cadence, budget enforcement and anomaly thresholds."""

    model_config = SettingsConfigDict(env_prefix="FRAUDRAIL_FINOPS_", extra="ignore")

    prices_path: Path = Field(default=PRICES_FILE, description="The price table (JSON, decimal strings).")
    flush_interval_s: float = Field(
        default=5.0, gt=0, description="How often counted fraud checks are written."
    )
    evaluate_min_interval_s: float = Field(
        default=30.0, ge=0, description="At most one budget evaluation queued per tenant per interval."
    )
    meter_jobs_interval_s: float = Field(default=60.0, gt=0, description="Scan for finished jobs to meter.")
    meter_jobs_lookback_s: float = Field(default=2 * 86_400.0, gt=0)
    limits_refresh_s: float = Field(default=30.0, gt=0, description="Reload tiers and throttles from the DB.")
    freeze_grace_s: float = Field(
        default=86_400.0, ge=0, description="Time a frozen tenant keeps its tier rate before the floor rate."
    )
    refusal_window_s: float = Field(
        default=1.0,
        ge=0,
        description=(
            "Longest a rate-limit refusal is answered from memory (before routing) without asking the "
            "bucket again; 0 asks the bucket on every request."
        ),
    )
    refusal_hold_s: float = Field(
        default=0.25,
        ge=0,
        description=(
            "A request that arrives inside its tenant's refusal window (the client ignored a 429) gets "
            "its 429 after this long; 0 answers at once."
        ),
    )
    refusal_hold_max_requests: int = Field(
        default=1024, ge=0, description="Requests held at once in a process; beyond that, answered at once."
    )
    floor_rps: float = Field(default=1.0, gt=0, description="Rate of a throttled tenant (requests/s).")
    floor_burst: float = Field(default=1.0, ge=1)
    anomaly_threshold: Decimal = Field(default=Decimal("3.5"), gt=0, description="Robust z-score cut-off.")
    anomaly_ratio: Decimal = Field(
        default=Decimal("2"), gt=0, description="today / median when spend is flat."
    )
    anomaly_history_days: int = Field(default=14, ge=1)
    anomaly_min_history: int = Field(default=7, ge=1)
    notify_resend_s: float = Field(
        default=300.0, gt=0, description="A claimed but undelivered notification is sent again after this."
    )
    hours_per_month: Decimal = Field(default=Decimal("730"), description="Hours in an estimate's month.")
