"""users.token_version, login_failures (the shared login throttle), runs.reports

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column(
        "users", sa.Column("token_version", sa.Integer(), server_default="0", nullable=False)
    )
    op.add_column("runs", sa.Column("reports", sa.Boolean(), server_default="true", nullable=False))
    op.create_table(
        "login_failures",
        sa.Column("id", sa.BigInteger(), nullable=False),
        sa.Column("username", sa.String(length=150), nullable=False),
        sa.Column("address", sa.String(length=100), nullable=False),
        sa.Column(
            "at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False
        ),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("login_failures_address_idx", "login_failures", ["address", "at"])
    op.create_index("login_failures_username_idx", "login_failures", ["username", "at"])
    op.create_index(op.f("ix_login_failures_at"), "login_failures", ["at"])


def downgrade() -> None:
    op.drop_table("login_failures")
    op.drop_column("runs", "reports")
    op.drop_column("users", "token_version")
