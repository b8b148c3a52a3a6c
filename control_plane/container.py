"""The process's wiring: settings, database, adapters and engines, built once."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from control_plane.auth.service import KeyVerifier
from control_plane.bootstrap.providers import Providers, build_providers
from control_plane.db import make_engine, make_session_factory
from control_plane.outbox import OutboxRelay
from control_plane.settings import AppSettings
from guardrails.policy import PolicyEngine, load_tier_templates

if TYPE_CHECKING:
    from control_plane.finops.runtime import FinOpsRuntime
    from control_plane.scoring.runtime import ScoringRuntime


class TenantDataPurger(Protocol):
    """A store holding tenant data: offboarding purges it, then re-lists it to prove it empty."""

    name: str

    def purge(self, tenant_id: str) -> int: ...
    def remaining(self, tenant_id: str) -> list[str]: ...


@dataclass
class Container:
    settings: AppSettings
    engine: Engine
    factory: sessionmaker[Session]
    providers: Providers
    policy: PolicyEngine
    templates: dict[str, dict[str, Any]]
    verifier: KeyVerifier
    purgers: list[TenantDataPurger] = field(default_factory=list)
    on_enqueue: Callable[[], None] = lambda: None
    extras: dict[str, Any] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)
    outbox: OutboxRelay = field(init=False)
    scoring: ScoringRuntime = field(init=False)
    finops: FinOpsRuntime = field(init=False)

    def template(self, tier: str) -> dict[str, Any]:
        return self.templates[tier]


def build_policy_engine(settings: AppSettings, templates: dict[str, dict[str, Any]]) -> PolicyEngine:
    if settings.policy_engine == "opa":
        from guardrails.policy import OpaPolicyEngine

        return OpaPolicyEngine(settings.opa_url, settings.policy_dir, templates)
    from guardrails.policy import RegoPolicyEngine

    return RegoPolicyEngine(settings.policy_dir, templates)


def build_container(settings: AppSettings) -> Container:
    settings.home.mkdir(parents=True, exist_ok=True)
    engine = make_engine(settings.resolved_database_url)
    factory = make_session_factory(engine)
    templates = load_tier_templates(settings.tenant_templates_dir)
    providers = build_providers(settings, factory)
    container = Container(
        settings=settings,
        engine=engine,
        factory=factory,
        providers=providers,
        policy=build_policy_engine(settings, templates),
        templates=templates,
        verifier=KeyVerifier(factory, ttl_s=settings.key_cache_ttl_s),
    )
    from control_plane.tenants.purgers import default_purgers

    container.outbox = OutboxRelay(factory, providers.event_bus)
    container.outbox.install()
    container.purgers.extend(default_purgers(container))
    from control_plane.scoring.runtime import build_scoring

    container.scoring = build_scoring(container)
    from control_plane.rollouts.wiring import register_rollback_handler

    register_rollback_handler(container)
    from control_plane.finops.runtime import build_finops

    container.finops = build_finops(container)
    from control_plane.review.subscribers import register_review_subscribers

    register_review_subscribers(container)
    return container
