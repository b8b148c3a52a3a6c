"""Engine and session factory; commits happen at the request or job boundary only."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any, cast

from sqlalchemy import CursorResult, Engine, create_engine, delete, event, select
from sqlalchemy.orm import Session, sessionmaker


def make_engine(url: str, **kwargs: Any) -> Engine:
    """An engine with the settings each backend needs (SQLite: WAL, FKs, busy timeout)."""
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30}, **kwargs)

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.close()

        return engine
    return create_engine(url, pool_pre_ping=True, pool_size=10, max_overflow=10, **kwargs)


def make_session_factory(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(bind=engine, expire_on_commit=False, autoflush=True)


@contextmanager
def unit_of_work(factory: sessionmaker[Session]) -> Iterator[Session]:
    """One transaction: commit on success, roll back on any exception."""
    session = factory()
    try:
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()


class TenantTablesPurger:
    """A ``tenants.ports.TenantDataPurger`` over tables keyed by ``tenant_id``: offboarding deletes
    the tenant's rows of each in one transaction, and names the tables that still hold some."""

    def __init__(self, name: str, factory: sessionmaker[Session], tables: Sequence[Any]) -> None:
        self.name, self._factory, self._tables = name, factory, tuple(tables)

    def purge(self, tenant_id: str) -> int:
        purged = 0
        with unit_of_work(self._factory) as session:
            for table in self._tables:
                done = session.execute(delete(table).where(table.tenant_id == tenant_id))
                purged += cast(CursorResult[Any], done).rowcount
        return purged

    def remaining(self, tenant_id: str) -> list[str]:
        with self._factory() as session:
            return [
                t.__tablename__
                for t in self._tables
                if session.scalar(select(t.tenant_id).where(t.tenant_id == tenant_id).limit(1)) is not None
            ]
