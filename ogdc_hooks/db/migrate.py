"""Applying the Alembic migrations, under a PostgreSQL advisory lock.

Two replicas starting together both call `migrate`; the lock makes the second
wait for the first and then find nothing left to do.
"""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import text
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine

# Any constant shared by every replica; "ogdc" in ASCII.
MIGRATION_LOCK_KEY = 0x6F676463

_MIGRATIONS = Path(__file__).parent / "migrations"


def alembic_config(connection: Connection | None = None) -> Config:
    config = Config()
    config.set_main_option("script_location", str(_MIGRATIONS))
    config.attributes["connection"] = connection
    return config


def head_revision() -> str | None:
    return ScriptDirectory.from_config(alembic_config()).get_current_head()


def _upgrade(connection: Connection) -> str | None:
    connection.execute(text("SELECT pg_advisory_lock(:key)"), {"key": MIGRATION_LOCK_KEY})
    try:
        found = _current(connection)
        command.upgrade(alembic_config(connection), "head")
        connection.commit()
        return found
    finally:
        connection.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": MIGRATION_LOCK_KEY})
        connection.commit()


async def migrate(engine: AsyncEngine) -> str | None:
    """Bring the schema to the newest revision; safe to run from many processes at once.

    Returns the revision found under the lock, before upgrading: the head when
    another process (or an earlier start) had already migrated.
    """
    async with engine.connect() as connection:
        return await connection.run_sync(_upgrade)


def _current(connection: Connection) -> str | None:
    return MigrationContext.configure(connection).get_current_revision()


async def current_revision(engine: AsyncEngine) -> str | None:
    async with engine.connect() as connection:
        return await connection.run_sync(_current)
