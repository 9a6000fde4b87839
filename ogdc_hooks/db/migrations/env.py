"""Alembic environment: runs on the connection `migrate.py` hands over."""

from __future__ import annotations

from alembic import context

from ogdc_hooks.db.tables import Base

connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError("run migrations through `ogdc-hooks migrate`, not the alembic command")

context.configure(connection=connection, target_metadata=Base.metadata)
with context.begin_transaction():
    context.run_migrations()
