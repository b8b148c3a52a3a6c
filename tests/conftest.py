"""Shared test fixtures: a migrated database (PostgreSQL under `make test`, or SQLite), clean per test."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, create_engine, make_url, text

from control_plane.db import make_engine
from control_plane.migrate import upgrade
from control_plane.models import all_tables_dependents_first

IN_CI = os.environ.get("CI", "").lower() == "true"


def make_url_redis(url: str, db: int) -> str:
    base, _, _ = url.rpartition("/")
    return f"{base}/{db}"


def _database_url(tmp_root: Path) -> str:
    choice = os.environ.get("FRAUDRAIL_TEST_DB", "")
    pg = os.environ.get("FRAUDRAIL_TEST_DATABASE_URL")
    if choice == "postgres" or (choice == "" and pg):
        if not pg:
            raise RuntimeError(
                "FRAUDRAIL_TEST_DB=postgres needs FRAUDRAIL_TEST_DATABASE_URL (run `make test`)"
            )
        return pg
    if IN_CI and choice != "sqlite":
        raise RuntimeError("CI=true: tests must run against PostgreSQL started by `make test`")
    return f"sqlite:///{tmp_root / 'test.db'}"


@pytest.fixture(scope="session")
def database_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A migrated database of this session's own (several pytest runs may share one server)."""
    url = _database_url(tmp_path_factory.mktemp("db"))
    if not url.startswith("postgresql"):
        upgrade(url)
        yield url
        return
    name = f"fraudrail_t{os.getpid()}_{uuid.uuid4().hex[:8]}"
    admin = create_engine(url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    own = make_url(url).set(database=name).render_as_string(hide_password=False)
    upgrade(own)
    yield own
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


@pytest.fixture(scope="session")
def db_engine(database_url: str) -> Iterator[Engine]:
    engine = make_engine(database_url)
    yield engine
    engine.dispose()


@pytest.fixture(autouse=False)
def clean_db(db_engine: Engine) -> Iterator[None]:
    """Empty every table after the test (the app and its worker commit for real)."""
    yield
    tables = all_tables_dependents_first()
    with db_engine.begin() as conn:
        if db_engine.dialect.name == "postgresql":
            conn.execute(text(f"TRUNCATE {', '.join(tables)} RESTART IDENTITY CASCADE"))
        else:
            for name in tables:
                conn.execute(text(f"DELETE FROM {name}"))


@pytest.fixture(scope="session")
def redis_url() -> str:
    url = os.environ.get("FRAUDRAIL_TEST_REDIS_URL")
    if url:
        # Its own logical database per session, so parallel runs never flush each other's keys.
        return str(make_url_redis(url, 1 + os.getpid() % 15))
    pytest.fail(
        "no Redis: run `make test` (it installs and starts one on loopback) or set FRAUDRAIL_TEST_REDIS_URL"
    )
