"""Local provisioner: creates what the tier declares through the other local ports.

Every real creation is appended to a ledger file (the local analogue of a cloud's resource
inventory), so a crash between "created" and "recorded in the database" is visible and a
repeated step can prove it created nothing twice.
"""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path

from providers.ports import (
    FeatureCache,
    ModelHost,
    ObjectStore,
    PlannedResource,
    TenantSpec,
)


class LocalProvisioner:
    def __init__(self, store: ObjectStore, cache: FeatureCache, host: ModelHost, ledger: Path) -> None:
        self._store = store
        self._cache = cache
        self._host = host
        self._ledger = ledger
        self._lock = threading.Lock()
        ledger.parent.mkdir(parents=True, exist_ok=True)

    @staticmethod
    def _marker(spec: TenantSpec) -> str:
        return f"tenants/{spec.tenant_id}/.tenant"

    def plan(self, spec: TenantSpec) -> list[PlannedResource]:
        resources = spec.template.get("resources", {})
        plan = [PlannedResource("object_store", f"tenants/{spec.tenant_id}/")]
        if resources.get("cache_namespace", True):
            plan.append(PlannedResource("cache_namespace", spec.tenant_id))
        plan.append(PlannedResource("model_slot", str(resources.get("model_host_slot", "pooled"))))
        return plan

    def apply(self, spec: TenantSpec, resource: PlannedResource) -> bool:
        created: bool
        if resource.kind == "object_store":
            created = not self._store.exists(self._marker(spec))
            if created:
                self._store.put(self._marker(spec), spec.tier.encode())
        elif resource.kind == "cache_namespace":
            created = self._cache.ensure_namespace(spec.tenant_id)
        elif resource.kind == "model_slot":
            created = self._host.ensure_slot(spec.tenant_id, resource.name)
        else:
            raise ValueError(f"unknown resource kind {resource.kind!r}")
        if created:
            self._record(spec.tenant_id, "created", resource)
        return created

    def destroy(self, spec: TenantSpec) -> list[str]:
        removed = []
        if self._store.delete_prefix(f"tenants/{spec.tenant_id}/"):
            removed.append("object_store")
        self._cache.purge_tenant(spec.tenant_id)
        removed.append("cache_namespace")
        if self._host.delete_tenant(spec.tenant_id):
            removed.append("model_slot")
        for kind in removed:
            self._record(spec.tenant_id, "deleted", PlannedResource(kind, spec.tenant_id))
        return removed

    def list_resources(self, tenant_id: str) -> list[str]:
        found = []
        if self._store.list(f"tenants/{tenant_id}/"):
            found.append(f"object_store:tenants/{tenant_id}/")
        found.extend(f"model_slot:{slot.kind}" for slot in self._host.slots(tenant_id))
        return found

    def ledger_entries(self, tenant_id: str) -> list[dict[str, str]]:
        """The creations and deletions recorded for a tenant, oldest first."""
        if not self._ledger.exists():
            return []
        entries = [json.loads(line) for line in self._ledger.read_text().splitlines() if line.strip()]
        return [e for e in entries if e["tenant_id"] == tenant_id]

    def _record(self, tenant_id: str, action: str, resource: PlannedResource) -> None:
        line = json.dumps(
            {"tenant_id": tenant_id, "action": action, "kind": resource.kind, "name": resource.name}
        )
        with self._lock, self._ledger.open("a") as fh:
            fh.write(line + "\n")
            fh.flush()
            os.fsync(fh.fileno())
