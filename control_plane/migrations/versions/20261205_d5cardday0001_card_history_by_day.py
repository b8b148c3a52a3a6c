"""scored transactions: the card history's index keyed by day first (tenant, day, card)

The (tenant, card, ts) index took every insert to a random page of an index as large as the table,
so the monitoring flush's cost grew with the table; keyed by day first, a day's inserts share a
corner of the index. Existing rows get their day from ``ts`` (UTC).

On a large table this is a maintenance-window migration: the UPDATE rewrites every row, and on
PostgreSQL the new index blocks writes to the table while it builds.

Revision ID: d5cardday0001
Revises: k8oidc0001
Create Date: 2026-12-05 04:40:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "d5cardday0001"
down_revision: str | None = "k8oidc0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("scored_transactions", sa.Column("day", sa.Integer(), nullable=True))
    if op.get_bind().dialect.name == "sqlite":
        # SQLite keeps ts as 'YYYY-MM-DD HH:MM:SS.ffffff' (UTC); julianday counts from 4714 BC.
        op.execute(
            "UPDATE scored_transactions SET day = "
            "CAST(julianday(substr(ts, 1, 10)) - julianday('1970-01-01') AS INTEGER)"
        )
    else:
        op.execute(
            "UPDATE scored_transactions SET day = CAST(floor(extract(epoch FROM ts) / 86400) AS INTEGER)"
        )
    op.drop_index("ix_scored_transactions_card", table_name="scored_transactions")
    op.create_index(
        "ix_scored_transactions_day_card",
        "scored_transactions",
        ["tenant_id", "day", "card_token"],
        unique=False,
    )


def downgrade() -> None:
    op.drop_index("ix_scored_transactions_day_card", table_name="scored_transactions")
    op.create_index(
        "ix_scored_transactions_card", "scored_transactions", ["tenant_id", "card_token", "ts"], unique=False
    )
    with op.batch_alter_table("scored_transactions") as batch:
        batch.drop_column("day")
