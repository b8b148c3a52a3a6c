"""escalation is a status awaiting a tenant-admin, not a final verdict; a card's scored
transactions are found by card (the console's card history)

Revision ID: k7review0001
Revises: r7retrain0001
Create Date: 2026-12-04 17:50:00

Items decided ``escalate`` before this revision become ``escalated``: who escalated them, when and
why move to the new ``escalated_*`` columns, and they wait for a tenant-admin's resolution.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import providers.sql_types

revision: str = "k7review0001"
down_revision: str | None = "r7retrain0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("review_items", schema=None) as batch_op:
        batch_op.add_column(sa.Column("escalated_by", sa.String(length=40), nullable=True))
        batch_op.add_column(
            sa.Column("escalated_at", providers.sql_types.UTCDateTime(timezone=True), nullable=True)
        )
        batch_op.add_column(sa.Column("escalation_note", sa.Text(), nullable=True))
    op.execute(
        "UPDATE review_items SET status = 'escalated', escalated_by = decided_by, "
        "escalated_at = decided_at, escalation_note = note, decided_by = NULL, decided_at = NULL, "
        "note = NULL WHERE status = 'decided' AND verdict = 'escalate'"
    )
    op.create_index(
        "ix_scored_transactions_card", "scored_transactions", ["tenant_id", "card_token", "ts"], unique=False
    )


def downgrade() -> None:
    op.drop_index("ix_scored_transactions_card", table_name="scored_transactions")
    op.execute(
        "UPDATE review_items SET status = 'decided', verdict = 'escalate', decided_by = escalated_by, "
        "decided_at = escalated_at, note = escalation_note WHERE status = 'escalated'"
    )
    with op.batch_alter_table("review_items", schema=None) as batch_op:
        batch_op.drop_column("escalation_note")
        batch_op.drop_column("escalated_at")
        batch_op.drop_column("escalated_by")
