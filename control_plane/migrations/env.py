"""Alembic environment: URL from the config (set by control_plane.migrate) or from settings."""

from __future__ import annotations

from alembic import context
from sqlalchemy import pool

from control_plane.db import make_engine
from control_plane.models import ALL_METADATA
from control_plane.settings import AppSettings

config = context.config
url = config.get_main_option("sqlalchemy.url") or AppSettings().resolved_database_url
target_metadata = list(ALL_METADATA)


def run_migrations_offline() -> None:
    context.configure(
        url=url, target_metadata=target_metadata, literal_binds=True, render_as_batch=url.startswith("sqlite")
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    engine = make_engine(url, poolclass=pool.NullPool) if url.startswith("sqlite") else make_engine(url)
    with engine.connect() as connection:
        context.configure(
            connection=connection,
            target_metadata=target_metadata,
            render_as_batch=url.startswith("sqlite"),
            compare_type=True,
        )
        with context.begin_transaction():
            context.run_migrations()
    engine.dispose()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
