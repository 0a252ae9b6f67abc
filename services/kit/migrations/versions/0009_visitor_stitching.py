"""visitor stitching (anonymous visitors and their pending events)

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-22
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

import services.kit.tables

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "visitors",
        sa.Column("anonymous_id", sa.String(length=256), nullable=False),
        sa.Column("account", sa.String(length=253), nullable=True),
        sa.Column("first_seen_at", services.kit.tables.UtcDateTime(timezone=True), nullable=False),
        sa.Column("identified_at", services.kit.tables.UtcDateTime(timezone=True), nullable=True),
        sa.Column("provenance", sa.String(length=16), nullable=True),
        sa.Column("last_seen_at", services.kit.tables.UtcDateTime(timezone=True), nullable=False),
        sa.Column("confidence", sa.Float(), nullable=True),
        sa.Column("last_identified_account", sa.String(length=253), nullable=True),
        sa.PrimaryKeyConstraint("anonymous_id", name=op.f("pk_visitors")),
    )
    with op.batch_alter_table("visitors", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_visitors_account"), ["account"], unique=False)

    op.create_table(
        "visitor_pending_events",
        sa.Column("anonymous_id", sa.String(length=256), nullable=False),
        sa.Column("event_id", sa.String(length=128), nullable=False),
        sa.Column("occurred_at", services.kit.tables.UtcDateTime(timezone=True), nullable=False),
        sa.Column(
            "payload",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.PrimaryKeyConstraint("anonymous_id", "event_id", name=op.f("pk_visitor_pending_events")),
    )


def downgrade() -> None:
    op.drop_table("visitor_pending_events")
    with op.batch_alter_table("visitors", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_visitors_account"))

    op.drop_table("visitors")
