"""runs.progress: Argo's done/total steps of a run, for `runs watch`

Revision ID: 0005
Revises: 0004
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("runs", sa.Column("progress", sa.String(length=32), nullable=True))


def downgrade() -> None:
    op.drop_column("runs", "progress")
