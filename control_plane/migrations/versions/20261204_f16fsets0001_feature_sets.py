"""feature sets: a tenant's versioned feature-set documents (issue 16)

Revision ID: f16fsets0001
Revises: k7review0001
Create Date: 2026-12-04 18:10:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import providers.sql_types

revision: str = "f16fsets0001"
down_revision: str | None = "k7review0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "feature_sets",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("tenant_id", sa.String(length=40), nullable=False),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("document", sa.JSON(), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("locked", sa.Boolean(), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("created_by", sa.String(length=80), nullable=False),
        sa.Column("created_at", providers.sql_types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", providers.sql_types.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["tenant_id"], ["tenants.id"], name=op.f("fk_feature_sets_tenant_id_tenants"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_feature_sets")),
        sa.UniqueConstraint("tenant_id", "name", "version", name=op.f("uq_feature_sets_version")),
    )
    with op.batch_alter_table("feature_sets", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_feature_sets_tenant_id"), ["tenant_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("feature_sets", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_feature_sets_tenant_id"))
    op.drop_table("feature_sets")
