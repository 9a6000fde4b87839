"""forge: the forge instance (its host) of every run, delivery and branch head

Deliveries are deduplicated per (forge, id), runs are one per (forge, repository,
commit, recipe, attempt), and branch heads are kept per (forge, repository).
Existing rows came from the one configured GitHub: they get its host, the web
host of GITHUB_API_URL (api.github.com -> github.com; github.com when unset),
and queued delivery jobs name it too.

Revision ID: 0007
Revises: 0005
"""

from __future__ import annotations

import os
from urllib.parse import urlsplit

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0005"
branch_labels = None
depends_on = None

_TABLES = ("runs", "deliveries", "branch_heads")


def github_host(api_url: str | None) -> str:
    """The configured GitHub's host, as the service computes it (`forges/github`)."""
    netloc = (urlsplit(api_url).netloc if api_url else "") or "api.github.com"
    return "github.com" if netloc.lower() == "api.github.com" else netloc.lower()


def upgrade() -> None:
    host = github_host(os.environ.get("GITHUB_API_URL"))
    for table in _TABLES:
        op.add_column(
            table, sa.Column("forge", sa.String(253), nullable=False, server_default=host)
        )
        op.alter_column(table, "forge", server_default=None)
    op.drop_constraint("deliveries_pkey", "deliveries", type_="primary")
    op.create_primary_key("deliveries_pkey", "deliveries", ["forge", "id"])
    op.drop_constraint("branch_heads_pkey", "branch_heads", type_="primary")
    op.create_primary_key("branch_heads_pkey", "branch_heads", ["forge", "repository"])
    op.drop_constraint("runs_identity_key", "runs", type_="unique")
    op.create_unique_constraint(
        "runs_identity_key", "runs", ["forge", "repository", "commit_sha", "recipe", "attempt"]
    )
    op.execute(
        sa.text(
            "UPDATE jobs SET payload = payload || jsonb_build_object('forge', CAST(:host AS text)),"
            " dedupe_key = 'delivery:' || CAST(:host AS text) || ':' || (payload->>'delivery')"
            " WHERE payload ? 'delivery' AND NOT payload ? 'forge'"
        ).bindparams(host=host)
    )


def downgrade() -> None:
    op.execute(
        sa.text(
            "UPDATE jobs SET payload = payload - 'forge',"
            " dedupe_key = 'delivery:' || (payload->>'delivery')"
            " WHERE payload ? 'delivery' AND payload ? 'forge'"
        )
    )
    op.drop_constraint("runs_identity_key", "runs", type_="unique")
    op.create_unique_constraint(
        "runs_identity_key", "runs", ["repository", "commit_sha", "recipe", "attempt"]
    )
    op.drop_constraint("branch_heads_pkey", "branch_heads", type_="primary")
    op.create_primary_key("branch_heads_pkey", "branch_heads", ["repository"])
    op.drop_constraint("deliveries_pkey", "deliveries", type_="primary")
    op.create_primary_key("deliveries_pkey", "deliveries", ["id"])
    for table in _TABLES:
        op.drop_column(table, "forge")
