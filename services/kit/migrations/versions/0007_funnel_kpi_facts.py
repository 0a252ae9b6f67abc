"""funnel KPI facts (activity per day, spend, NPS, revenue, subscriptions)

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-22
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import services.kit.tables

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

# Fixed here, not imported: a migration must not change when the tables module does.
ACTIVITY_COUNTERS = (
    "ad_impressions", "ad_clicks", "visits", "high_value_visits", "view_through_visits",
    "view_through_conversions", "chats", "emails", "emails_sent", "meetings", "forms",
    "touches", "engagements", "surges", "web_research_spikes", "competitor_surges",
)  # fmt: skip


def _utc() -> services.kit.tables.UtcDateTime:
    return services.kit.tables.UtcDateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "activity_daily",
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("domain", sa.String(length=253), nullable=False),
        sa.Column("tier", sa.Integer(), nullable=False),
        sa.Column("is_target", sa.Boolean(), nullable=False),
        *(
            sa.Column(name, sa.BigInteger(), server_default="0", nullable=False)
            for name in ACTIVITY_COUNTERS
        ),
        sa.PrimaryKeyConstraint(
            "day", "domain", "tier", "is_target", name=op.f("pk_activity_daily")
        ),
    )
    with op.batch_alter_table("activity_daily", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_activity_daily_domain_day"), ["domain", "day"], unique=False
        )

    op.create_table(
        "campaign_spend",
        sa.Column("event_id", sa.String(length=128), nullable=False),
        sa.Column("channel", sa.String(length=256), nullable=False),
        sa.Column("campaign_id", sa.String(length=256), nullable=True),
        sa.Column("domain", sa.String(length=253), nullable=True),
        sa.Column("tier", sa.Integer(), nullable=True),
        sa.Column("is_target", sa.Boolean(), nullable=False),
        sa.Column("period_start", sa.Date(), nullable=False),
        sa.Column("period_end", sa.Date(), nullable=False),
        sa.Column("occurred_at", _utc(), nullable=False),
        sa.Column("amount", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("event_id", name=op.f("pk_campaign_spend")),
    )
    with op.batch_alter_table("campaign_spend", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_campaign_spend_period_end_period_start"),
            ["period_end", "period_start"],
            unique=False,
        )

    op.create_table(
        "nps_answers",
        sa.Column("event_id", sa.String(length=128), nullable=False),
        sa.Column("domain", sa.String(length=253), nullable=False),
        sa.Column("tier", sa.Integer(), nullable=True),
        sa.Column("is_target", sa.Boolean(), nullable=False),
        sa.Column("occurred_at", _utc(), nullable=False),
        sa.Column("score", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("event_id", name=op.f("pk_nps_answers")),
    )
    with op.batch_alter_table("nps_answers", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_nps_answers_occurred_at"), ["occurred_at"], unique=False
        )

    op.create_table(
        "revenue_events",
        sa.Column("event_id", sa.String(length=128), nullable=False),
        sa.Column("domain", sa.String(length=253), nullable=False),
        sa.Column("tier", sa.Integer(), nullable=True),
        sa.Column("is_target", sa.Boolean(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("occurred_at", _utc(), nullable=False),
        sa.Column("amount", sa.Float(), nullable=False),
        sa.Column("term_end", sa.Date(), nullable=True),
        sa.PrimaryKeyConstraint("event_id", name=op.f("pk_revenue_events")),
    )
    with op.batch_alter_table("revenue_events", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_revenue_events_occurred_at"), ["occurred_at"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_revenue_events_domain_occurred_at"),
            ["domain", "occurred_at"],
            unique=False,
        )


def downgrade() -> None:
    with op.batch_alter_table("revenue_events", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_revenue_events_domain_occurred_at"))
        batch_op.drop_index(batch_op.f("ix_revenue_events_occurred_at"))
    op.drop_table("revenue_events")
    with op.batch_alter_table("nps_answers", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_nps_answers_occurred_at"))
    op.drop_table("nps_answers")
    with op.batch_alter_table("campaign_spend", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_campaign_spend_period_end_period_start"))
    op.drop_table("campaign_spend")
    with op.batch_alter_table("activity_daily", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_activity_daily_domain_day"))
    op.drop_table("activity_daily")
