"""forge_logins: a user's login on each forge instance, instead of users.github_login

Every users.github_login moves, exactly as stored, to forge_logins under the host of the
GitHub configured when the migration runs (GITHUB_API_URL: https://api.github.com is
github.com, https://ghe.example.com/api/v3 is ghe.example.com; unset: github.com).
Downgrading brings back the GitHub host's logins; logins on other forges have no column
to go back to and are dropped with the table.

Revision ID: 0006
Revises: 0005
"""

from __future__ import annotations

import os

import sqlalchemy as sa
from alembic import op

from ogdc_hooks.settings import Settings, github_host

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def _host() -> str:
    return github_host(os.environ.get("GITHUB_API_URL") or Settings.github_api_url)


def upgrade() -> None:
    op.create_table(
        "forge_logins",
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("host", sa.String(length=255), nullable=False),
        sa.Column("login", sa.String(length=40), nullable=False),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("user_id", "host"),
    )
    op.create_index(
        "forge_logins_host_login_lower_key",
        "forge_logins",
        ["host", sa.literal_column("lower(login)")],
        unique=True,
    )
    op.execute(
        sa.text(
            "INSERT INTO forge_logins (user_id, host, login) "
            "SELECT id, :host, github_login FROM users WHERE github_login IS NOT NULL"
        ).bindparams(host=_host())
    )
    op.drop_index("users_github_login_lower_key", table_name="users")
    op.drop_column("users", "github_login")


def downgrade() -> None:
    op.add_column("users", sa.Column("github_login", sa.String(length=39), nullable=True))
    op.execute(
        sa.text(
            "UPDATE users SET github_login = forge_logins.login FROM forge_logins "
            "WHERE forge_logins.user_id = users.id AND forge_logins.host = :host"
        ).bindparams(host=_host())
    )
    op.create_index(
        "users_github_login_lower_key",
        "users",
        [sa.literal_column("lower(github_login)")],
        unique=True,
    )
    op.drop_table("forge_logins")
