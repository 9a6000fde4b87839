from collections.abc import AsyncIterator

import asyncpg
import pytest

from ogdc_hooks.db.engine import Database, open_driver_pool
from tests.jobs.conftest import db

__all__ = ["db"]


@pytest.fixture
async def pool(db: Database) -> AsyncIterator[asyncpg.Pool]:
    """The plain asyncpg pool intake stores through, on the migrated test database."""
    driver_pool = await open_driver_pool(db.engine)
    yield driver_pool
    await driver_pool.close()
