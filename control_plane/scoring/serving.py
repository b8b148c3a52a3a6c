"""What the hot path needs per tenant, held in memory and refreshed on change (never per request)."""

from __future__ import annotations

import logging
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from control_plane.datasets.feature_set_orm import FeatureSetVersion
from control_plane.registry.orm import ModelVersion
from control_plane.registry.stages import Stage
from control_plane.rollouts.orm import Rollout
from control_plane.scoring.decision import Policy
from control_plane.scoring.orm import ScoringConfig
from control_plane.scoring.tenant_features import ServingPlan, attributes_of, plan_from_lineage
from control_plane.tenants.orm import Tenant
from fraud_model.feature_sets import Attribute
from providers.ports import HostedModel, ModelHost

log = logging.getLogger(__name__)
ACTIVE_ROLLOUT = ("PROGRESSING", "PAUSED")


@dataclass(frozen=True)
class TenantServing:
    tenant_id: str
    status: str
    tier: str
    policy: Policy
    production: HostedModel | None
    versions: Mapping[str, HostedModel] = field(default_factory=dict)
    salt: bytes = b""
    shadow_version: str | None = None
    # Versions trained on a tenant feature set → its compiled plan (others use built-in features).
    plans: Mapping[str, ServingPlan] = field(default_factory=dict)
    # The attributes a check may carry: the PRODUCTION version's set, else the active set (None: none).
    attributes: Mapping[str, Attribute] | None = None


def default_policy(template: Mapping[str, Any]) -> Policy:
    t = template["thresholds"]
    return Policy(review=float(Decimal(str(t["review"]))), suspicious=float(Decimal(str(t["suspicious"]))))


def policy_from(config: ScoringConfig | None, template: Mapping[str, Any]) -> Policy:
    if config is None:
        return default_policy(template)
    return Policy(
        review=float(config.review_threshold),
        suspicious=float(config.suspicious_threshold),
        allow_cards=frozenset(config.allow_cards),
        block_cards=frozenset(config.block_cards),
        allow_terminals=frozenset(config.allow_terminals),
        block_terminals=frozenset(config.block_terminals),
        fallback=config.fallback,
    )


def hosted(mv: ModelVersion) -> HostedModel:
    return HostedModel(
        tenant_id=mv.tenant_id, version_id=mv.id, artifact_key=mv.artifact_key, sha256=mv.sha256
    )


class ServingRegistry:
    """tenant id → TenantServing, rebuilt from the database on events; read lock-free by the hot path."""

    def __init__(
        self, factory: sessionmaker[Session], host: ModelHost, templates: Mapping[str, Mapping[str, Any]]
    ):
        self._factory = factory
        self._host = host
        self._templates = templates
        self._lock = threading.Lock()
        self._tenants: dict[str, TenantServing] = {}
        self._plans: dict[str, ServingPlan | None] = {}  # version id → plan (lineage never changes)

    def get(self, tenant_id: str) -> TenantServing | None:
        return self._tenants.get(tenant_id)

    def load_all(self) -> int:
        with self._factory() as session:
            ids = list(session.scalars(select(Tenant.id).where(Tenant.status != "DELETED")))
        for tenant_id in ids:
            self.reload(tenant_id)
        return len(ids)

    def reload(self, tenant_id: str) -> TenantServing | None:
        """Rebuild one tenant's entry and make sure its PRODUCTION (and rollout) versions are hosted."""
        with self._factory() as session:
            tenant = session.get(Tenant, tenant_id)
            if tenant is None or tenant.status == "DELETED":
                with self._lock:
                    self._tenants.pop(tenant_id, None)
                return None
            config = session.get(ScoringConfig, tenant_id)
            live = list(
                session.scalars(
                    select(ModelVersion).where(
                        ModelVersion.tenant_id == tenant_id,
                        ModelVersion.stage.in_((Stage.PRODUCTION.value, Stage.APPROVED.value)),
                    )
                )
            )
            template = self._templates[tenant.tier]
            production = next((hosted(m) for m in live if m.stage == Stage.PRODUCTION.value), None)
            rollout = session.scalar(
                select(Rollout).where(Rollout.tenant_id == tenant_id, Rollout.state.in_(ACTIVE_ROLLOUT))
            )
            plans = {m.id: p for m in live if (p := self._plan(m)) is not None}
            active_set = session.scalar(
                select(FeatureSetVersion.document).where(
                    FeatureSetVersion.tenant_id == tenant_id, FeatureSetVersion.active.is_(True)
                )
            )
            serving_plan = plans.get(production.version_id) if production else None
            attributes = (
                dict(serving_plan.engine.fs.attributes)
                if serving_plan is not None
                else attributes_of(active_set)
            )
            entry = TenantServing(
                tenant_id=tenant_id,
                status=tenant.status,
                tier=tenant.tier,
                policy=policy_from(config, template),
                production=production,
                versions={m.id: hosted(m) for m in live},
                salt=(rollout.salt if rollout else tenant_id).encode(),
                shadow_version=rollout.candidate_version if rollout and rollout.phase == "shadow" else None,
                plans=plans,
                attributes=attributes,
            )
        # Deploying makes versions invocable; the weights are the rollouts reconcile's alone
        # (``traffic.set_weights``): this cache only reads them.
        for model in entry.versions.values():
            self._host.deploy(model)
        with self._lock:
            self._tenants[tenant_id] = entry
        return entry

    def _plan(self, mv: ModelVersion) -> ServingPlan | None:
        if mv.id not in self._plans:
            if len(self._plans) > 10_000:  # bounded: versions come and go over a process's life
                self._plans.clear()
            self._plans[mv.id] = plan_from_lineage(mv.params)
        return self._plans[mv.id]

    def on_event(self, _topic: str, message: Mapping[str, Any]) -> None:
        tenant_id = message.get("tenant_id")
        if isinstance(tenant_id, str):
            self.reload(tenant_id)
