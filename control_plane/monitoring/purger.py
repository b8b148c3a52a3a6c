"""Offboarding: a tenant's monitoring data (drift counts, scored transactions, labels), stored and
still in this process's memory."""

from __future__ import annotations

from typing import Any, cast

from sqlalchemy import CursorResult, delete, select
from sqlalchemy.orm import Session, sessionmaker

from control_plane.db import unit_of_work
from control_plane.monitoring.monitor import DriftMonitor
from control_plane.monitoring.orm import DriftBucket, ScoredTransaction, TransactionLabel

TABLES = (DriftBucket, ScoredTransaction, TransactionLabel)


class MonitoringPurger:
    name = "monitoring"

    def __init__(self, factory: sessionmaker[Session], monitor: DriftMonitor) -> None:
        self._factory = factory
        self._monitor = monitor

    def purge(self, tenant_id: str) -> int:
        self._monitor.forget(tenant_id)
        purged = 0
        with unit_of_work(self._factory) as session:
            for table in TABLES:
                stmt = delete(table).where(table.tenant_id == tenant_id)
                result = cast(CursorResult[Any], session.execute(stmt))
                purged += result.rowcount
        return purged

    def remaining(self, tenant_id: str) -> list[str]:
        with self._factory() as session:
            found = []
            for t in TABLES:
                if session.scalar(select(t.tenant_id).where(t.tenant_id == tenant_id).limit(1)) is not None:
                    found.append(t.__tablename__)
            return found
