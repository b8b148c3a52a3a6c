"""Offboarding: a tenant's retraining records and retraining settings.

The datasets a retraining kept and the challengers it trained are purged with every dataset and
model version (the object store and the registry rows go with the tenant)."""

from __future__ import annotations

from typing import Any, cast

from sqlalchemy import CursorResult, delete, select
from sqlalchemy.orm import Session, sessionmaker

from control_plane.db import unit_of_work
from control_plane.training.orm import Retraining, RetrainingSettings

TABLES = (Retraining, RetrainingSettings)


class RetrainingPurger:
    name = "retraining"

    def __init__(self, factory: sessionmaker[Session]) -> None:
        self._factory = factory

    def purge(self, tenant_id: str) -> int:
        purged = 0
        with unit_of_work(self._factory) as session:
            for table in TABLES:
                result = cast(
                    CursorResult[Any], session.execute(delete(table).where(table.tenant_id == tenant_id))
                )
                purged += result.rowcount
        return purged

    def remaining(self, tenant_id: str) -> list[str]:
        with self._factory() as session:
            return [
                t.__tablename__
                for t in TABLES
                if session.scalar(select(t.tenant_id).where(t.tenant_id == tenant_id).limit(1)) is not None
            ]
