"""Offboarding: a tenant's monitoring data (drift counts, scored transactions, labels), stored and
still in this process's memory."""

from __future__ import annotations

from sqlalchemy.orm import Session, sessionmaker

from control_plane.db import TenantTablesPurger
from control_plane.monitoring.monitor import DriftMonitor
from control_plane.monitoring.orm import DriftBucket, ScoredTransaction, TransactionLabel


class MonitoringPurger(TenantTablesPurger):
    def __init__(self, factory: sessionmaker[Session], monitor: DriftMonitor) -> None:
        super().__init__("monitoring", factory, (DriftBucket, ScoredTransaction, TransactionLabel))
        self._monitor = monitor

    def purge(self, tenant_id: str) -> int:
        self._monitor.forget(tenant_id)  # first, so no flush writes the tenant's rows back
        return super().purge(tenant_id)
