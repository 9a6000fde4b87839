"""jobs.repository: the repository a job works for, so that one cannot take every worker

The queue claims a job only while fewer than OGDC_JOBS_PER_REPOSITORY jobs of the
same repository run (`jobs/queue.py`). The key is "<forge host>/<full name>"
(`jobs.kinds.repository_key`); jobs of no repository (housekeeping) have none.
Jobs still waiting or running get the key of their run or delivery.

Revision ID: 0013
Revises: 0007
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("jobs", sa.Column("repository", sa.String(560)))
    op.create_index(
        "jobs_running_repository_idx",
        "jobs",
        ["repository"],
        postgresql_where=sa.text("state = 'running'"),
    )
    op.execute(
        "UPDATE jobs SET repository = runs.forge || '/' || runs.repository FROM runs"
        " WHERE jobs.state IN ('queued', 'running') AND jobs.payload ? 'run'"
        " AND runs.id = CAST(jobs.payload->>'run' AS uuid)"
    )
    op.execute(
        "UPDATE jobs SET repository = d.forge || '/' || d.repository FROM deliveries AS d"
        " WHERE jobs.state IN ('queued', 'running') AND d.repository IS NOT NULL"
        " AND d.forge = jobs.payload->>'forge' AND d.id = jobs.payload->>'delivery'"
    )


def downgrade() -> None:
    op.drop_index("jobs_running_repository_idx", "jobs")
    op.drop_column("jobs", "repository")
