"""Migrations match the models, and go down and up again cleanly."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import inspect, text

from control_plane.db import make_engine
from control_plane.migrate import check, downgrade, upgrade
from control_plane.models import Base
from control_plane.monitoring.orm import epoch_day


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


OLD_ROW = text(
    "INSERT INTO scored_transactions (tenant_id, txn_id, ts, amount, card_token, terminal_id, score,"
    " decision, model_version, cohort) VALUES ('ten_m', :txn, :ts, 1, 'c', 't', 0.1, 'LEGIT', NULL, 'stable')"
)


def test_the_card_day_migration_gives_existing_rows_their_day(database_url: str, clean_db: None) -> None:
    """d5cardday0001 backfills ``scored_transactions.day`` from ``ts`` (UTC), on either database."""
    times = {
        "late": datetime(2026, 3, 1, 23, 59, 59, 500_000, tzinfo=UTC),
        "old": datetime(1969, 12, 31, 12, tzinfo=UTC),
    }
    engine = make_engine(database_url)
    downgrade(database_url, "k8oidc0001")
    try:
        with engine.begin() as conn:
            for txn, ts in times.items():
                stored = ts if engine.dialect.name == "postgresql" else ts.strftime("%Y-%m-%d %H:%M:%S.%f")
                conn.execute(
                    OLD_ROW,
                    {"txn": txn, "ts": stored},
                )
    finally:
        upgrade(database_url)
    with engine.connect() as conn:
        days = dict(
            conn.execute(text("SELECT txn_id, day FROM scored_transactions WHERE tenant_id = 'ten_m'")).all()
        )
    engine.dispose()
    assert days == {txn: epoch_day(ts) for txn, ts in times.items()} == {"late": 20513, "old": -1}
