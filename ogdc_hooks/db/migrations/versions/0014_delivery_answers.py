"""deliveries.answer, repeats, repeated_at: what the service answered the forge

Ignored events are now recorded too (answer "ignored", without their body), and a
redelivery of a stored id ("already received", or ignored again) counts in
`repeats` instead of leaving no trace. Every row stored before was accepted, except
the branch-head sweep's synthetic pushes (ids "sweep-..."), which no forge sent.

Revision ID: 0014
Revises: 0013
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column(
        "deliveries",
        sa.Column("answer", sa.String(20), nullable=False, server_default="accepted"),
    )
    op.add_column(
        "deliveries", sa.Column("repeats", sa.Integer(), nullable=False, server_default="0")
    )
    op.add_column("deliveries", sa.Column("repeated_at", sa.DateTime(timezone=True)))
    op.execute("UPDATE deliveries SET answer = 'swept' WHERE id LIKE 'sweep-%'")


def downgrade() -> None:
    op.drop_column("deliveries", "repeated_at")
    op.drop_column("deliveries", "repeats")
    op.drop_column("deliveries", "answer")
