"""single sign-on: each tenant's OpenID Connect provider, and sign-in flows awaiting the callback

Revision ID: k8oidc0001
Revises: m3smjobs0001
Create Date: 2026-12-04 21:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import providers.sql_types

revision: str = "k8oidc0001"
down_revision: str | None = "m3smjobs0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "tenant_oidc_configs",
        sa.Column("tenant_id", sa.String(length=40), nullable=False),
        sa.Column("issuer", sa.String(length=500), nullable=False),
        sa.Column("client_id", sa.String(length=255), nullable=False),
        sa.Column("client_secret_sealed", sa.Text(), nullable=False),
        sa.Column("allowed_email_domain", sa.String(length=255), nullable=True),
        sa.Column("jit_role", sa.String(length=20), nullable=True),
        sa.Column("created_at", providers.sql_types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", providers.sql_types.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["tenants.id"],
            name=op.f("fk_tenant_oidc_configs_tenant_id_tenants"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("tenant_id", name=op.f("pk_tenant_oidc_configs")),
    )
    op.create_table(
        "oidc_flows",
        sa.Column("state_hash", sa.String(length=64), nullable=False),
        sa.Column("tenant_id", sa.String(length=40), nullable=False),
        sa.Column("nonce", sa.String(length=100), nullable=False),
        sa.Column("code_verifier", sa.String(length=128), nullable=False),
        sa.Column("redirect_uri", sa.String(length=1000), nullable=False),
        sa.Column("created_at", providers.sql_types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("expires_at", providers.sql_types.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["tenant_id"], ["tenants.id"], name=op.f("fk_oidc_flows_tenant_id_tenants"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("state_hash", name=op.f("pk_oidc_flows")),
    )
    with op.batch_alter_table("oidc_flows", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_oidc_flows_expires_at"), ["expires_at"], unique=False)
        batch_op.create_index(batch_op.f("ix_oidc_flows_tenant_id"), ["tenant_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("oidc_flows", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_oidc_flows_tenant_id"))
        batch_op.drop_index(batch_op.f("ix_oidc_flows_expires_at"))
    op.drop_table("oidc_flows")
    op.drop_table("tenant_oidc_configs")
