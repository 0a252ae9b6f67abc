"""transition order: each transition's number among its account's transitions

The moves one event makes at one moment (a new target entering ``target`` and moving on to
``engaged``) share their time, and their ids (UUIDv5) sort at random, so ordering by
(time, id) read some of them backwards: a stay of days measured as 0 and handed to the
stage before. The funnel now numbers every account's transitions; the history is ordered
by (time, number, id). Rows written before stay unnumbered (null, read first within their
moment: they were made before any numbered one).

Revision ID: 0013
Revises: 0012
Create Date: 2026-11-23
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("account_transitions", schema=None) as batch_op:
        batch_op.add_column(sa.Column("account_seq", sa.Integer(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("account_transitions", schema=None) as batch_op:
        batch_op.drop_column("account_seq")
