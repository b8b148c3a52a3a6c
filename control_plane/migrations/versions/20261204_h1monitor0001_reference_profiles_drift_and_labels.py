"""reference profiles on model versions; drift buckets, scored transactions, delayed labels

Revision ID: h1monitor0001
Revises: g9console0001
Create Date: 2026-12-04 15:30:00

Versions trained before this revision have no reference profile (NULL): monitoring says so
instead of guessing one.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import providers.sql_types

revision: str = "h1monitor0001"
down_revision: str | None = "g9console0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("model_versions") as batch:
        batch.add_column(sa.Column("reference_profile", sa.JSON(), nullable=True))
    op.create_table(
        "drift_buckets",
        sa.Column("tenant_id", sa.String(length=40), nullable=False),
        sa.Column("model_version", sa.String(length=40), nullable=False),
        sa.Column("cohort", sa.String(length=20), nullable=False),
        sa.Column("hour_start", providers.sql_types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("writer", sa.String(length=40), nullable=False),
        sa.Column("volume", sa.Integer(), nullable=False),
        sa.Column("feature_counts", sa.JSON(), nullable=False),
        sa.Column("score_counts", sa.JSON(), nullable=False),
        sa.Column("decisions", sa.JSON(), nullable=False),
        sa.Column("quality", sa.JSON(), nullable=False),
        sa.Column("updated_at", providers.sql_types.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint(
            "tenant_id", "model_version", "cohort", "hour_start", "writer", name=op.f("pk_drift_buckets")
        ),
    )
    op.create_table(
        "scored_transactions",
        sa.Column("tenant_id", sa.String(length=40), nullable=False),
        sa.Column("txn_id", sa.String(length=80), nullable=False),
        sa.Column("ts", providers.sql_types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("amount", sa.Numeric(precision=18, scale=2), nullable=False),
        sa.Column("card_token", sa.String(length=128), nullable=False),
        sa.Column("terminal_id", sa.String(length=80), nullable=False),
        sa.Column("score", sa.Float(), nullable=False),
        sa.Column("decision", sa.String(length=20), nullable=False),
        sa.Column("model_version", sa.String(length=40), nullable=True),
        sa.Column("cohort", sa.String(length=20), nullable=False),
        sa.PrimaryKeyConstraint("tenant_id", "txn_id", name=op.f("pk_scored_transactions")),
    )
    op.create_index("ix_scored_transactions_tenant_ts", "scored_transactions", ["tenant_id", "ts"])
    op.create_table(
        "transaction_labels",
        sa.Column("tenant_id", sa.String(length=40), nullable=False),
        sa.Column("txn_id", sa.String(length=80), nullable=False),
        sa.Column("source", sa.String(length=40), nullable=False),
        sa.Column("label", sa.String(length=20), nullable=False),
        sa.Column("known_at", providers.sql_types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("recorded_by", sa.String(length=80), nullable=False),
        sa.Column("recorded_at", providers.sql_types.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("tenant_id", "txn_id", "source", name=op.f("pk_transaction_labels")),
    )
    op.create_index("ix_transaction_labels_tenant_known", "transaction_labels", ["tenant_id", "known_at"])


def downgrade() -> None:
    op.drop_index("ix_transaction_labels_tenant_known", table_name="transaction_labels")
    op.drop_table("transaction_labels")
    op.drop_index("ix_scored_transactions_tenant_ts", table_name="scored_transactions")
    op.drop_table("scored_transactions")
    op.drop_table("drift_buckets")
    with op.batch_alter_table("model_versions") as batch:
        batch.drop_column("reference_profile")
