"""forge_writes: the ledger of content-creating requests sent to a forge, for pacing

GitHub's secondary rate limits allow about 80 content-creating requests a minute
and 500 an hour; every replica records its writes here, per credential, so the
budget holds across replicas and restarts (`forges/write_budget.py`).

Revision ID: 0012
Revises: 0007
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "forge_writes",
        sa.Column("id", sa.BigInteger(), primary_key=True),
        sa.Column("bucket", sa.String(300), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
    )
    op.create_index("forge_writes_bucket_at_idx", "forge_writes", ["bucket", "at"])


def downgrade() -> None:
    op.drop_index("forge_writes_bucket_at_idx", table_name="forge_writes")
    op.drop_table("forge_writes")
