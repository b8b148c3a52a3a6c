"""Flagged-transaction store in the control plane's database (its own sessions, not the request's)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, MetaData, String, delete, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column, sessionmaker

from providers.ports import FlaggedRecord
from providers.sql_types import NAMING_CONVENTION, UTCDateTime, utcnow


class AdapterBase(DeclarativeBase):
    """Tables owned by adapters (not by a domain); Alembic migrates them with the domains' tables."""

    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class FlaggedTransactionRow(AdapterBase):
    __tablename__ = "flagged_transactions"

    tenant_id: Mapped[str] = mapped_column(String(40), primary_key=True)
    flagged_id: Mapped[str] = mapped_column(String(80), primary_key=True)
    payload: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)


class SqlFlaggedTransactionStore:
    def __init__(self, factory: sessionmaker[Session]) -> None:
        self._factory = factory

    def put(self, record: FlaggedRecord) -> bool:
        with self._factory() as session:
            session.add(
                FlaggedTransactionRow(
                    tenant_id=record.tenant_id, flagged_id=record.flagged_id, payload=dict(record.payload)
                )
            )
            try:
                session.commit()
            except IntegrityError:
                session.rollback()
                return False
            return True

    def get(self, tenant_id: str, flagged_id: str) -> FlaggedRecord | None:
        with self._factory() as session:
            row = session.get(FlaggedTransactionRow, (tenant_id, flagged_id))
            return None if row is None else FlaggedRecord(row.tenant_id, row.flagged_id, row.payload)

    def list(self, tenant_id: str, limit: int = 100) -> list[FlaggedRecord]:
        with self._factory() as session:
            rows = session.scalars(
                select(FlaggedTransactionRow)
                .where(FlaggedTransactionRow.tenant_id == tenant_id)
                .order_by(FlaggedTransactionRow.created_at, FlaggedTransactionRow.flagged_id)
                .limit(limit)
            )
            return [FlaggedRecord(r.tenant_id, r.flagged_id, r.payload) for r in rows]

    def count(self, tenant_id: str) -> int:
        with self._factory() as session:
            stmt = select(func.count()).where(FlaggedTransactionRow.tenant_id == tenant_id)
            return int(session.scalar(stmt) or 0)

    def purge_tenant(self, tenant_id: str) -> int:
        with self._factory() as session:
            result = session.execute(
                delete(FlaggedTransactionRow).where(FlaggedTransactionRow.tenant_id == tenant_id)
            )
            session.commit()
            return int(getattr(result, "rowcount", 0) or 0)
