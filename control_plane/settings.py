"""Settings: one pydantic-settings class per concern, env prefix FRAUDRAIL_."""

from __future__ import annotations

from functools import cached_property
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from providers.metrics_catalog import TenantLabels

REPO_ROOT = Path(__file__).resolve().parent.parent


class AppSettings(BaseSettings):
    """Process-wide settings for the control plane."""

    model_config = SettingsConfigDict(env_prefix="FRAUDRAIL_", extra="ignore")

    env: Literal["development", "test", "production"] = "development"
    home: Path = Field(default=REPO_ROOT / "var", description="Folder for embedded state.")
    database_url: str | None = None
    host: str = "127.0.0.1"
    port: int = 8000
    workers: int = 1
    run_worker_in_process: bool = True
    provider: Literal["local", "aws"] = "local"
    aws_emulation: Literal["off", "moto"] = Field(
        default="off",
        description=(
            "FRAUDRAIL_AWS_EMULATION=moto: run the AWS provider against moto's server, declaring "
            "what moto lacks (moto-compatible tenant templates, an UpdateEndpoint stand-in, SageMaker "
            "job containers as local processes). Refused in production and unless "
            "FRAUDRAIL_AWS_ENDPOINT_URL is a loopback, private or single-label host."
        ),
    )
    aws_cfn_role_arn: str | None = Field(
        default=None,
        description=(
            "FRAUDRAIL_AWS_CFN_ROLE_ARN: the CloudFormation service role passed as RoleARN on every "
            "tenant stack call (platform stack output TenantStackRoleArn); CloudFormation creates "
            "the stack's resources with it, not with the control plane's credentials. Unset: the "
            "caller's credentials (emulators). Required in production on AWS."
        ),
    )
    cache_backend: Literal["memory", "redis"] = "memory"
    redis_url: str = "redis://127.0.0.1:6379/0"
    cache_timeout_ms: float = 5.0
    bus_backend: Literal["memory", "redis", "sns"] = "memory"
    bus_redis_url: str | None = Field(default=None, description="Redis of the bus (default: redis_url).")
    bus_stream_prefix: str = Field(
        default="fraudrail:bus:", description="Key prefix of the bus's streams (deployments sharing a Redis)."
    )
    bus_claim_idle_s: float = Field(
        default=30.0, gt=0, description="A work event pending this long (its consumer died) is taken over."
    )
    policy_engine: Literal["regopy", "opa"] = "regopy"
    opa_url: str = "http://127.0.0.1:8181"
    policy_dir: Path = REPO_ROOT / "policies" / "rego"
    tenant_templates_dir: Path = REPO_ROOT / "tenant_templates"
    max_body_bytes: int = 1_048_576
    max_in_flight_requests: int = Field(
        default=256,
        ge=1,
        description="Requests one process holds at once; past it, 503 with Retry-After (bounded memory).",
    )
    max_upload_bytes: int = 200 * 1_048_576
    job_lease_s: float = 60.0
    job_max_attempts: int = 5
    key_cache_ttl_s: float = 30.0
    model_cache_size: int = 64
    slo_bucket_s: int = 10
    monitoring_check_every_s: float = Field(
        default=3600.0, gt=0, description="Seconds between monitoring checks (drift, performance, retrain)."
    )
    spool_dir_name: str = "spool"
    card_hash_key: str = "dev-only-card-hash-key"
    metrics_token: SecretStr | None = Field(
        default=None,
        description="Bearer token a scraper must send to GET /metrics; required in production.",
    )
    metrics_listener_port: int | None = Field(
        default=None,
        description="Port of a process's own /metrics listener (fraudrail worker); the API serves "
        "/metrics on its port.",
    )
    metrics_tenant_labels: str | None = Field(
        default=None,
        description="Tenant ids /metrics may show: all | none | comma-separated ids (the others "
        'become tenant="*"). Unset: all, except none in production.',
    )

    @cached_property
    def resolved_database_url(self) -> str:
        return self.database_url or f"sqlite:///{self.home / 'fraudrail.db'}"

    @property
    def metrics_tenant_policy(self) -> TenantLabels:
        if self.metrics_tenant_labels is not None:
            return TenantLabels.parse(self.metrics_tenant_labels)
        # Production scrapes leave the process: name no tenant there unless the operator says so.
        return TenantLabels.parse("none" if self.env == "production" else "all")

    @model_validator(mode="after")
    def _refuse_unsafe(self) -> AppSettings:
        problem = scale_out_problem(self)
        if problem:
            raise ValueError(problem)
        if self.env == "production":
            if self.card_hash_key == "dev-only-card-hash-key":
                raise ValueError("FRAUDRAIL_CARD_HASH_KEY must be set in production")
            if self.database_url is None or self.database_url.startswith("sqlite"):
                raise ValueError("production needs FRAUDRAIL_DATABASE_URL pointing at PostgreSQL")
            if self.metrics_token is None or not self.metrics_token.get_secret_value():
                raise ValueError(
                    "FRAUDRAIL_METRICS_TOKEN must be set in production: /metrics shows tenants' traffic"
                )
            if self.provider == "aws" and not self.aws_cfn_role_arn:
                raise ValueError(
                    "FRAUDRAIL_AWS_CFN_ROLE_ARN must be set in production on AWS (platform stack "
                    "output TenantStackRoleArn): without it CloudFormation creates tenant resources "
                    "with the control plane's own role, which may not, and provisioning fails"
                )
        if self.metrics_tenant_labels is not None:
            TenantLabels.parse(self.metrics_tenant_labels)  # a typo fails at start, not at scrape
        return self


def scale_out_problem(s: AppSettings) -> str | None:
    """Why these settings cannot run as several processes (None when they can). State that lives in
    one process (the in-memory cache, bus and model host; a SQLite file) would silently diverge."""
    if s.workers > 1:
        missing = []
        if s.cache_backend != "redis":
            missing.append(
                "FRAUDRAIL_CACHE_BACKEND=redis (an in-memory cache gives each worker its own features)"
            )
        if s.bus_backend == "memory":
            missing.append("FRAUDRAIL_BUS_BACKEND=redis or sns (the in-memory bus reaches one worker only)")
        if s.resolved_database_url.startswith("sqlite"):
            missing.append("FRAUDRAIL_DATABASE_URL on PostgreSQL (SQLite takes one writer at a time)")
        if missing:
            return f"FRAUDRAIL_WORKERS={s.workers} needs " + "; ".join(missing)
    # A separate `fraudrail worker` process (the tests drive the worker inside their own process).
    if not s.run_worker_in_process and s.env != "test":
        missing = []
        if s.bus_backend == "memory":
            missing.append(
                "a shared bus (FRAUDRAIL_BUS_BACKEND=redis or sns): its events would never reach the server"
            )
        if s.cache_backend != "redis":
            missing.append("FRAUDRAIL_CACHE_BACKEND=redis: its label updates would land in its own memory")
        if s.provider == "local":
            missing.append(
                "FRAUDRAIL_PROVIDER=aws: the local model host keeps traffic weights in process memory, so "
                "the rollouts it drives would never reach the server"
            )
        if missing:
            return "a job worker outside the server process needs " + "; ".join(missing)
    return None
