"""Migrations: from empty to head, idempotent, race-free, and in step with `db/tables.py`."""

from __future__ import annotations

import asyncio

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect
from sqlalchemy.engine import Connection

from ogdc_hooks.db.engine import Database, open_database
from ogdc_hooks.db.migrate import current_revision, head_revision, migrate
from ogdc_hooks.db.tables import Base
from ogdc_hooks.settings import load_settings


async def _open(db_env: dict[str, str]) -> Database:
    return await open_database(load_settings({**db_env, **_SECRETS}), pool_size=2)


_SECRETS = {"OGDC_JWT_SECRET_KEY": "k" * 40, "OGDC_ADMIN_PASSWORD": "unused-here"}


def _differences(connection: Connection) -> list[object]:
    return list(compare_metadata(MigrationContext.configure(connection), Base.metadata))


def _tables(connection: Connection) -> set[str]:
    return set(inspect(connection).get_table_names())


async def test_from_empty_to_head_then_nothing_to_do(db_env: dict[str, str]) -> None:
    database = await _open(db_env)
    try:
        assert await current_revision(database.engine) is None
        assert await migrate(database.engine) is None  # found an empty database
        assert await current_revision(database.engine) == head_revision()
        assert await migrate(database.engine) == head_revision()  # re-applied: a no-op
        assert await current_revision(database.engine) == head_revision()
        async with database.engine.connect() as connection:
            tables = await connection.run_sync(_tables)
        assert set(Base.metadata.tables) | {"alembic_version"} == tables
    finally:
        await database.close()


async def test_the_migrated_schema_matches_the_tables_module(db_env: dict[str, str]) -> None:
    database = await _open(db_env)
    try:
        await migrate(database.engine)
        async with database.engine.connect() as connection:
            differences = await connection.run_sync(_differences)
        assert differences == []
    finally:
        await database.close()


async def test_two_processes_migrating_at_once_migrate_once(db_env: dict[str, str]) -> None:
    first, second = await _open(db_env), await _open(db_env)
    try:
        found = await asyncio.gather(migrate(first.engine), migrate(second.engine))
        assert sorted(found, key=str) == sorted([None, head_revision()], key=str)
        assert await current_revision(first.engine) == head_revision()
    finally:
        await first.close()
        await second.close()
