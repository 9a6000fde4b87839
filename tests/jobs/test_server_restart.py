"""A lease lost to a restart of PostgreSQL is not a crash of the job's worker.

Found by the chaos test: a push taken over once from a SIGKILLed replica, then held by a
worker while PostgreSQL restarted (every holder's bookkeeping fails with the server, so its
lease runs out), was counted as crashing two workers and given up as poisoned.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from sqlalchemy import text

from ogdc_hooks.db.engine import Database, open_database
from ogdc_hooks.db.migrate import migrate
from ogdc_hooks.jobs import queue
from ogdc_hooks.settings import load_settings
from tests.support.postgres import PrivateCluster
from tests.support.service import DEFAULT_SECRETS
from tests.support.waiting import wait_for


@pytest.fixture
async def private_db(private_cluster: PrivateCluster) -> AsyncIterator[Database]:
    server = private_cluster.server
    name = await asyncio.to_thread(server.create_database)
    database = await open_database(load_settings({**server.env(name), **DEFAULT_SECRETS}))
    await migrate(database.engine)
    yield database
    await database.close()


async def _enqueue(db: Database, key: str) -> None:
    async with db.engine.begin() as connection:
        await queue.enqueue(connection, "test", {}, key=key)


async def _lease_ran_out(db: Database, key: str) -> bool:
    async with db.engine.connect() as connection:
        statement = text("SELECT lease_until < now() FROM jobs WHERE dedupe_key = :key")
        return bool((await connection.execute(statement, {"key": key})).scalar_one())


@pytest.mark.slow
async def test_a_lease_lost_to_a_server_restart_is_no_crash_and_a_dead_worker_is_one(
    private_cluster: PrivateCluster, private_db: Database
) -> None:
    await _enqueue(private_db, "restart")
    held = await queue.claim(private_db.engine, "holder", lease=1)
    assert held is not None
    await asyncio.to_thread(private_cluster.stop)
    await asyncio.to_thread(private_cluster.start)
    await wait_for(lambda: _lease_ran_out(private_db, "restart"), what="the lease to run out")
    taken = await queue.claim(private_db.engine, "other", lease=30)
    assert taken is not None and taken.id == held.id
    assert taken.crashes == 0  # the server restarted under it: not the job's doing

    await _enqueue(private_db, "crash")
    dead = await queue.claim(private_db.engine, "dead", lease=0.05)
    assert dead is not None and dead.dedupe_key == "crash"
    await wait_for(lambda: _lease_ran_out(private_db, "crash"), what="the dead worker's lease")
    alive = await queue.claim(private_db.engine, "alive", lease=30)
    assert alive is not None and alive.id == dead.id
    assert alive.crashes == 1  # its holder went silent while the server was up
