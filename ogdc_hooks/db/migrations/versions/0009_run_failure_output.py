"""runs.failure and runs.output_url: why a run failed (classification, steps, log tails) and
where a succeeded run's temporary output can be downloaded, both shown in its check

Revision ID: 0009
Revises: 0007
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("runs", sa.Column("failure", JSONB(), nullable=True))
    op.add_column("runs", sa.Column("output_url", sa.Text(), nullable=True))


def downgrade() -> None:
    op.drop_column("runs", "output_url")
    op.drop_column("runs", "failure")
