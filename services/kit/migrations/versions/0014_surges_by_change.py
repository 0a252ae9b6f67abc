"""surges by change: an index on when each surge last changed, for GET /v1/surges

The API lists surges newest change first (the later of ``started_at`` and ``ended_at``).
Without an index on that expression every surge was read and sorted for each page; with
it a page reads its rows in order and stops.

Revision ID: 0014
Revises: 0013
Create Date: 2026-11-23
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None

CHANGED_AT = "(CASE WHEN ended_at > started_at THEN ended_at ELSE started_at END)"


def upgrade() -> None:
    op.create_index("ix_surges_changed_at", "surges", [sa.text(CHANGED_AT), "event_id"])


def downgrade() -> None:
    op.drop_index("ix_surges_changed_at", table_name="surges")
