"""Migrations match the models, and go down and up again cleanly."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import inspect

from control_plane.db import make_engine
from control_plane.migrate import check, downgrade, upgrade
from control_plane.models import Base


def test_models_and_migrations_agree(database_url: str) -> None:
    check(database_url)


def test_downgrade_then_upgrade_round_trip(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'roundtrip.db'}"
    upgrade(url)
    engine = make_engine(url)
    assert set(Base.metadata.tables) <= set(inspect(engine).get_table_names())
    downgrade(url, "base")
    assert set(inspect(engine).get_table_names()) <= {"alembic_version"}
    upgrade(url)
    assert set(Base.metadata.tables) <= set(inspect(engine).get_table_names())
    engine.dispose()
