"""account expiry: when an account's next window runs out, and its partition

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-22
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import services.kit.tables

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Existing rows get both columns on their next write; until then a tick skips them
    # and their windows expire lazily, at their next event, with the same outputs.
    with op.batch_alter_table("accounts", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("due_at", services.kit.tables.UtcDateTime(timezone=True), nullable=True)
        )
        batch_op.add_column(sa.Column("partition", sa.Integer(), nullable=True))
        batch_op.create_index(
            batch_op.f("ix_accounts_partition_due_at_domain"),
            ["partition", "due_at", "domain"],
            unique=False,
        )


def downgrade() -> None:
    with op.batch_alter_table("accounts", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_accounts_partition_due_at_domain"))
        batch_op.drop_column("partition")
        batch_op.drop_column("due_at")
