"""The composition root: every concrete object of one process, built once from settings.

Nothing below ``control_plane.bootstrap`` imports this module. Domains receive what they need at
construction (runtimes, job handlers, subscribers) or, in a route, through a typed dependency
(``control_plane.deps.provided``) that ``State.provided`` fills with the objects under the
types the domains ask for.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from control_plane.auth.ports import TenantStatusLookup
from control_plane.auth.service import KeyVerifier
from control_plane.bootstrap.providers import Providers, build_providers
from control_plane.db import make_engine, make_session_factory
from control_plane.deps import Templates  # the key routes ask for with TemplatesDep
from control_plane.finops.runtime import FinOpsRuntime, build_finops
from control_plane.jobs.periodic import PeriodicSchedule
from control_plane.jobs.worker import Worker
from control_plane.monitoring.monitor import DriftMonitor
from control_plane.monitoring.purger import MonitoringPurger
from control_plane.outbox import OutboxRelay
from control_plane.registry.deployment import DeploymentServices
from control_plane.registry.ports import ActiveRollout
from control_plane.review.subscribers import register_review_subscribers
from control_plane.rollouts import service as rollout_service
from control_plane.rollouts.ports import RolloutPorts
from control_plane.rollouts.wiring import register_alarm_receiver
from control_plane.scoring.ports import FraudCheckDeps
from control_plane.scoring.runtime import ScoringPorts, ScoringRuntime, build_scoring
from control_plane.settings import AppSettings
from control_plane.slo.recorder import RequestRecorder
from control_plane.tenants import repository as tenant_repository
from control_plane.tenants.ports import TenantDataPurger
from control_plane.tenants.purgers import TenantStores, default_purgers
from control_plane.training.retraining_purger import RetrainingPurger
from control_plane.training.retraining_tasks import retraining_periodic_jobs
from control_plane.training.tracking import subscribe_stage_mirror
from control_plane.users.oidc_purger import OidcPurger
from control_plane.users.oidc_service import OidcSignIn
from control_plane.users.oidc_settings import OidcSettings
from control_plane.users.sessions import UserSessions
from control_plane.users.settings import IdentitySettings
from control_plane.web.ports import People, SingleSignOn
from guardrails.policy import PolicyEngine, load_tier_templates
from providers.oidc_http import HttpxOidcClient
from providers.ports import (
    EventBus,
    FeatureCache,
    FlaggedTransactionStore,
    MetricsSink,
    ModelHost,
    Notifier,
    ObjectStore,
    Provisioner,
    RollbackLog,
)


@dataclass
class State:
    settings: AppSettings
    engine: Engine
    factory: sessionmaker[Session]
    providers: Providers
    policy: PolicyEngine
    templates: Templates
    verifier: KeyVerifier
    outbox: OutboxRelay
    scoring: ScoringRuntime
    finops: FinOpsRuntime
    purgers: list[TenantDataPurger]
    monitor: DriftMonitor
    deployment: DeploymentServices
    rollouts: RolloutPorts
    user_sessions: UserSessions
    oidc: OidcSignIn
    worker: Worker = field(init=False)
    periodic: PeriodicSchedule = field(init=False)

    def template(self, tier: str) -> dict[str, Any]:
        return self.templates[tier]

    def provided(self) -> Mapping[type, object]:
        """What a route may ask for with ``control_plane.deps.provided(T)``: each object under the
        narrow type (a port, a runtime) the domain declares, never this State."""
        p = self.providers
        return {
            AppSettings: self.settings,
            sessionmaker: self.factory,
            KeyVerifier: self.verifier,
            PolicyEngine: self.policy,
            Templates: self.templates,
            ObjectStore: p.object_store,
            FeatureCache: p.feature_cache,
            ModelHost: p.model_host,
            FlaggedTransactionStore: p.flagged_store,
            EventBus: p.event_bus,
            MetricsSink: p.metrics,
            Provisioner: p.provisioner,
            RollbackLog: p.rollback_log,
            Notifier: p.notifier,
            OutboxRelay: self.outbox,
            ScoringRuntime: self.scoring,
            FraudCheckDeps: FraudCheckDeps(
                self.verifier, self.finops.limiter, self.scoring.checker, self.finops.usage
            ),
            RequestRecorder: self.scoring.recorder,
            DriftMonitor: self.monitor,
            FinOpsRuntime: self.finops,
            Worker: self.worker,
            DeploymentServices: self.deployment,
            RolloutPorts: self.rollouts,
            ActiveRollout: rollout_service.active_candidate,
            TenantStatusLookup: tenant_repository.status_of,
            IdentitySettings: self.user_sessions.settings,
            UserSessions: self.user_sessions,
            OidcSignIn: self.oidc,
            SingleSignOn: self.oidc,
            People: self.user_sessions,
        }


def build_policy_engine(settings: AppSettings, templates: Templates) -> PolicyEngine:
    if settings.policy_engine == "opa":
        from guardrails.policy import OpaPolicyEngine

        return OpaPolicyEngine(settings.opa_url, settings.policy_dir, templates)
    from guardrails.policy import RegoPolicyEngine

    return RegoPolicyEngine(settings.policy_dir, templates)


def build_state(settings: AppSettings) -> State:
    """Build every object of the process in dependency order; subscribe the domains to the bus."""
    from control_plane.bootstrap.jobs import job_handlers

    settings.home.mkdir(parents=True, exist_ok=True)
    engine = make_engine(settings.resolved_database_url)
    factory = make_session_factory(engine)
    templates = load_tier_templates(settings.tenant_templates_dir)
    p = build_providers(settings, factory)
    user_sessions = UserSessions(factory, IdentitySettings())
    verifier = KeyVerifier(factory, ttl_s=settings.key_cache_ttl_s, sessions=user_sessions)
    oidc_settings = OidcSettings()
    oidc_settings.refuse_unsafe(settings.env)
    oidc = OidcSignIn(
        factory,
        oidc_settings,
        HttpxOidcClient(oidc_settings.http_timeout_s),
        user_sessions,
        tenant_repository.id_and_status,
    )
    listen = getattr(verifier, "listen", None)
    if callable(listen):
        listen(p.event_bus)  # keys.revoked: every process forgets the key
    outbox = OutboxRelay(factory, p.event_bus)
    outbox.install()
    monitor = DriftMonitor(factory)  # counts every check's features in memory; flushed by a chore
    scoring = build_scoring(
        factory,
        ScoringPorts(p.feature_cache, p.model_host, p.flagged_store, p.event_bus, p.metrics),
        templates=templates,
        spool_root=settings.home / settings.spool_dir_name,
        slo_bucket_s=settings.slo_bucket_s,
        monitor=monitor,
    )
    finops = build_finops(
        factory,
        templates=templates,
        object_store=p.object_store,
        feature_cache=p.feature_cache,
        event_bus=p.event_bus,
        notifier=p.notifier,
        metrics=p.metrics,
        tier_of=lambda tenant_id: _tier(scoring, tenant_id),
    )
    stores = TenantStores(
        p.object_store, p.feature_cache, p.model_host, p.flagged_store, p.rollback_log, p.provisioner
    )
    purgers = default_purgers(factory, stores)
    purgers.append(register_review_subscribers(p.event_bus, factory))
    purgers.append(MonitoringPurger(factory, monitor))
    purgers.append(RetrainingPurger(factory))
    purgers.append(OidcPurger(factory))
    policy = build_policy_engine(settings, templates)
    deployer = DeploymentServices(
        policy, p.object_store, templates, budget_context=finops.rollout_context, clock=finops.now
    )
    rollouts = RolloutPorts(
        factory=factory,
        model_host=p.model_host,
        rollback_log=p.rollback_log,
        metrics=p.metrics,
        event_bus=p.event_bus,
        notifier=p.notifier,
        templates=templates,
        recorder=scoring.recorder,
        deployment=deployer,
    )
    register_alarm_receiver(rollouts)
    subscribe_stage_mirror(p.event_bus, factory, p.tracker)  # stage changes → MLflow aliases (issue 19)
    state = State(
        settings=settings,
        engine=engine,
        factory=factory,
        providers=p,
        policy=policy,
        templates=templates,
        verifier=verifier,
        outbox=outbox,
        scoring=scoring,
        finops=finops,
        purgers=purgers,
        monitor=monitor,
        deployment=deployer,
        rollouts=rollouts,
        user_sessions=user_sessions,
        oidc=oidc,
    )
    state.worker = Worker(factory, job_handlers(state), lease_s=settings.job_lease_s)
    periodic = [*finops.periodic_jobs(), *retraining_periodic_jobs(settings.monitoring_check_every_s)]
    state.periodic = PeriodicSchedule(factory, periodic)
    outbox.wake_worker = state.worker.wake.set
    # Between jobs: deliver events left by a crash, queue the periodic jobs that are due.
    state.worker.idle_tasks.extend([outbox.deliver_due, state.periodic.enqueue_due])
    return state


def _tier(scoring: ScoringRuntime, tenant_id: str) -> str | None:
    serving = scoring.serving.get(tenant_id)
    return None if serving is None else serving.tier
