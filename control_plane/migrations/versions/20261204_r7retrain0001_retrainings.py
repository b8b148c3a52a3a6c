"""retrainings (trigger, comparison, decision) and per-tenant retraining settings

Revision ID: r7retrain0001
Revises: h1monitor0001
Create Date: 2026-12-04 18:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import providers.sql_types

revision: str = "r7retrain0001"
down_revision: str | None = "h1monitor0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "retrainings",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("tenant_id", sa.String(length=40), nullable=False),
        sa.Column("trigger", sa.String(length=20), nullable=False),
        sa.Column("trigger_evidence", sa.JSON(), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("champion_version", sa.String(length=40), nullable=True),
        sa.Column("challenger_version", sa.String(length=40), nullable=True),
        sa.Column("cutoff", providers.sql_types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("job_id", sa.String(length=40), nullable=True),
        sa.Column("comparison", sa.JSON(), nullable=True),
        sa.Column("decision", sa.JSON(), nullable=True),
        sa.Column("rollout_id", sa.String(length=40), nullable=True),
        sa.Column("error", sa.String(length=500), nullable=True),
        sa.Column("requested_by", sa.String(length=80), nullable=False),
        sa.Column("created_at", providers.sql_types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("finished_at", providers.sql_types.UTCDateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_retrainings")),
    )
    op.create_index("ix_retrainings_tenant_created", "retrainings", ["tenant_id", "created_at"])
    op.create_table(
        "retraining_settings",
        sa.Column("tenant_id", sa.String(length=40), nullable=False),
        sa.Column("auto_rollout", sa.Boolean(), nullable=False),
        sa.Column("updated_by", sa.String(length=80), nullable=False),
        sa.Column("updated_at", providers.sql_types.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("tenant_id", name=op.f("pk_retraining_settings")),
    )


def downgrade() -> None:
    op.drop_table("retraining_settings")
    op.drop_index("ix_retrainings_tenant_created", table_name="retrainings")
    op.drop_table("retrainings")
