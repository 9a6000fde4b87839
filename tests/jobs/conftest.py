"""A migrated database and its engine, for tests of the queue and the pipeline."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from ogdc_hooks.db.engine import Database, open_database
from ogdc_hooks.db.migrate import migrate
from ogdc_hooks.settings import load_settings


@pytest.fixture
async def db(db_env: dict[str, str]) -> AsyncIterator[Database]:
    settings = load_settings(
        {**db_env, "OGDC_JWT_SECRET_KEY": "k" * 32, "OGDC_ADMIN_PASSWORD": "a" * 12}
    )
    database = await open_database(settings, pool_size=12)
    await migrate(database.engine)
    yield database
    await database.close()
