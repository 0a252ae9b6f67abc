"""ingest identity (company IP ranges, per-source IP privacy)

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-22
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import services.kit.tables

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "company_ip_ranges",
        sa.Column("cidr", sa.String(length=64), nullable=False),
        sa.Column("domain", sa.String(length=253), nullable=False),
        sa.Column("confidence", sa.Float(), nullable=True),
        sa.Column("label", sa.String(length=256), nullable=True),
        sa.Column("updated_at", services.kit.tables.UtcDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("cidr", name=op.f("pk_company_ip_ranges")),
    )
    with op.batch_alter_table("company_ip_ranges", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_company_ip_ranges_domain"), ["domain"], unique=False)
    with op.batch_alter_table("write_keys", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("ip_policy", sa.String(length=16), server_default="truncate", nullable=False)
        )


def downgrade() -> None:
    with op.batch_alter_table("write_keys", schema=None) as batch_op:
        batch_op.drop_column("ip_policy")
    with op.batch_alter_table("company_ip_ranges", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_company_ip_ranges_domain"))
    op.drop_table("company_ip_ranges")
