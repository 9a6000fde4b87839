"""pull_requests; runs.base_sha, runs.base_workflow, .pull_request, .recipe_facts

Revision ID: 0008
Revises: 0007
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "pull_requests",
        sa.Column("forge", sa.String(length=253), nullable=False),
        sa.Column("repository", sa.String(length=300), nullable=False),
        sa.Column("number", sa.Integer(), nullable=False),
        sa.Column("head_sha", sa.String(length=64), nullable=False),
        sa.Column("base_ref", sa.String(length=300), nullable=False),
        sa.Column("clone_url", sa.Text(), nullable=False),
        sa.Column("fetch_ref", sa.String(length=300), nullable=False),
        sa.Column("author", sa.String(length=40), nullable=True),
        sa.Column("installation_id", sa.BigInteger(), nullable=True),
        sa.Column("open", sa.Boolean(), nullable=False),
        sa.Column("head_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column(
            "updated_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.PrimaryKeyConstraint("forge", "repository", "number"),
    )
    op.add_column("runs", sa.Column("base_sha", sa.String(length=64), nullable=True))
    op.add_column("runs", sa.Column("base_workflow", JSONB(), nullable=True))
    op.add_column("runs", sa.Column("pull_request", sa.Integer(), nullable=True))
    op.add_column("runs", sa.Column("recipe_facts", JSONB(), nullable=True))


def downgrade() -> None:
    op.drop_column("runs", "recipe_facts")
    op.drop_column("runs", "pull_request")
    op.drop_column("runs", "base_workflow")
    op.drop_column("runs", "base_sha")
    op.drop_table("pull_requests")
