"""one outbox for every after-commit effect (replaces review_label_outbox)

Revision ID: f8outbox0001
Revises: d6finops0001
Create Date: 2026-12-04 14:16:14.359358

Labels still waiting in ``review_label_outbox`` move into ``outbox_events`` as ``label.recorded``
events, in their order, so none is lost by the upgrade.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import providers.sql_types

revision: str = "f8outbox0001"
down_revision: str | None = "d6finops0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "outbox_events",
        sa.Column(
            "seq", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False
        ),
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("topic", sa.String(length=80), nullable=False),
        sa.Column("tenant_id", sa.String(length=40), nullable=True),
        sa.Column("payload", sa.JSON(), nullable=False),
        sa.Column("created_at", providers.sql_types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", providers.sql_types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("seq", name=op.f("pk_outbox_events")),
        sa.UniqueConstraint("id", name=op.f("uq_outbox_events_id")),
    )
    with op.batch_alter_table("outbox_events", schema=None) as batch_op:
        batch_op.create_index("ix_outbox_events_due", ["next_attempt_at"], unique=False)
        batch_op.create_index(batch_op.f("ix_outbox_events_tenant_id"), ["tenant_id"], unique=False)

    op.execute(
        "INSERT INTO outbox_events (id, topic, tenant_id, payload, created_at, attempts, next_attempt_at) "
        "SELECT id, 'label.recorded', tenant_id, message, created_at, 0, created_at "
        "FROM review_label_outbox WHERE published_at IS NULL ORDER BY seq"
    )
    with op.batch_alter_table("review_label_outbox", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_review_label_outbox_published_at"))
        batch_op.drop_index(batch_op.f("ix_review_label_outbox_tenant_id"))
    op.drop_table("review_label_outbox")


def downgrade() -> None:
    op.create_table(
        "review_label_outbox",
        sa.Column(
            "seq", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False
        ),
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("tenant_id", sa.String(length=40), nullable=False),
        sa.Column("review_id", sa.String(length=40), nullable=False),
        sa.Column("message", sa.JSON(), nullable=False),
        sa.Column("created_at", providers.sql_types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("published_at", providers.sql_types.UTCDateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("seq", name=op.f("pk_review_label_outbox")),
        sa.UniqueConstraint("id", name=op.f("uq_review_label_outbox_id")),
    )
    with op.batch_alter_table("review_label_outbox", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_review_label_outbox_tenant_id"), ["tenant_id"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_review_label_outbox_published_at"), ["published_at"], unique=False
        )
    with op.batch_alter_table("outbox_events", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_outbox_events_tenant_id"))
        batch_op.drop_index("ix_outbox_events_due")
    op.drop_table("outbox_events")
