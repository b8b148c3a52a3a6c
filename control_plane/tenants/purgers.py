"""Each port that holds tenant data, seen as a purger for offboarding."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from control_plane.auth.orm import ApiKey
from control_plane.tenants.ports import TenantDataPurger
from providers.ports import (
    FeatureCache,
    FlaggedTransactionStore,
    ModelHost,
    ObjectStore,
    Provisioner,
    RollbackLog,
)


@dataclass
class FunctionPurger:
    name: str
    purge_fn: Callable[[str], int]
    remaining_fn: Callable[[str], list[str]]

    def purge(self, tenant_id: str) -> int:
        return self.purge_fn(tenant_id)

    def remaining(self, tenant_id: str) -> list[str]:
        return self.remaining_fn(tenant_id)


@dataclass(frozen=True)
class TenantStores:
    """Every port that keeps data per tenant."""

    object_store: ObjectStore
    feature_cache: FeatureCache
    model_host: ModelHost
    flagged_store: FlaggedTransactionStore
    rollback_log: RollbackLog
    provisioner: Provisioner


def default_purgers(factory: sessionmaker[Session], p: TenantStores) -> list[TenantDataPurger]:
    def active_keys(tenant_id: str) -> list[str]:
        with factory() as session:
            stmt = select(ApiKey.id).where(ApiKey.tenant_id == tenant_id, ApiKey.revoked_at.is_(None))
            return list(session.scalars(stmt))

    def flagged_remaining(tenant_id: str) -> list[str]:
        return [r.flagged_id for r in p.flagged_store.list(tenant_id, limit=20)]

    return [
        FunctionPurger(
            "object_store",
            lambda t: p.object_store.delete_prefix(f"tenants/{t}/"),
            lambda t: p.object_store.list(f"tenants/{t}/"),
        ),
        FunctionPurger("feature_cache", p.feature_cache.purge_tenant, p.feature_cache.keys),
        FunctionPurger(
            "model_host",
            p.model_host.delete_tenant,
            lambda t: [f"slot:{s.kind}" for s in p.model_host.slots(t)],
        ),
        FunctionPurger("flagged_transactions", p.flagged_store.purge_tenant, flagged_remaining),
        FunctionPurger(
            "rollback_log",
            p.rollback_log.purge_tenant,
            lambda t: [r.rollback_id for r in p.rollback_log.list(t)],
        ),
        FunctionPurger("provisioned_resources", lambda t: 0, p.provisioner.list_resources),
        FunctionPurger("api_keys", lambda t: 0, active_keys),
    ]
