"""Group commit at intake against a real PostgreSQL: deliveries waiting together share one
commit with their jobs, redeliveries are told apart, and a commit that fails fails every
delivery in it (503 at the route, never 202).

The writer is held on a row lock (the test's own uncommitted delivery with the id the
first delivery uses), so that the next deliveries provably wait together; a commit is
made to fail by a deferred constraint trigger, which PostgreSQL runs at commit.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import asyncpg
import pytest

from ogdc_hooks.db.engine import Database
from ogdc_hooks.forges.github.webhooks import parse_delivery
from ogdc_hooks.webhooks.events import Delivery
from ogdc_hooks.webhooks.store import DeliveryWriter
from tests.support.postgres import PostgresServer
from tests.support.scrape import value
from tests.support.service import DEFAULT_SECRETS, Service
from tests.support.waiting import wait_for
from tests.webhooks.signing import signed_delivery
from tests.webhooks.test_events import PUSH, SECRET

REFUSE_AT_COMMIT = """
CREATE FUNCTION refuse_poison() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF NEW.id = 'poison' THEN RAISE EXCEPTION 'the test refuses this commit'; END IF;
  RETURN NULL;
END $$;
CREATE CONSTRAINT TRIGGER refuse_poison AFTER INSERT ON deliveries
  DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION refuse_poison();
"""


def push_delivery(delivery_id: str, payload: dict[str, Any] = PUSH) -> Delivery:
    """A signed GitHub push (or `payload`) with this delivery id, parsed."""
    return parse_delivery(*signed_delivery(payload, SECRET, delivery=delivery_id), SECRET)


async def _connect(postgres: PostgresServer, database: str) -> asyncpg.Connection:
    return await asyncpg.connect(
        host=postgres.host, port=postgres.port, user=postgres.user, database=database
    )


@pytest.fixture
async def blocker(postgres: PostgresServer, database: str) -> AsyncIterator[asyncpg.Connection]:
    """A connection of the test's own, to `HOLD` the delivery id `blocker` (uncommitted): a
    commit that stores that id waits until the transaction rolls back."""
    connection = await _connect(postgres, database)
    try:
        yield connection
    finally:
        await connection.close()


HOLD = (
    "BEGIN; INSERT INTO deliveries (forge, id, event, payload) "
    "VALUES ('github.com', 'blocker', 'push', '{}')"
)


async def test_deliveries_waiting_together_share_one_commit_with_their_jobs(
    db: Database, pool: asyncpg.Pool, blocker: asyncpg.Connection
) -> None:
    await blocker.execute(HOLD)
    writer = DeliveryWriter(pool)
    running = asyncio.create_task(writer.run())
    try:
        held = asyncio.create_task(writer.store(push_delivery("blocker"), "push"))
        ids = [f"together-{n}" for n in range(8)]
        await wait_for(lambda: writer.committing == 1, what="the writer in its first commit")
        stores = [asyncio.create_task(writer.store(push_delivery(i), "push")) for i in ids]
        again = asyncio.create_task(writer.store(push_delivery(ids[0]), "push"))  # a redelivery
        await wait_for(lambda: writer.waiting == len(ids) + 1, what="the burst waiting")
        await blocker.execute("ROLLBACK")  # the first commit goes through, then the burst's
        assert await held is True
        assert await asyncio.gather(*stores) == [True] * len(ids)
        assert await again is False
        rows = await pool.fetch(
            "SELECT d.xmin::text AS delivery_tx, j.xmin::text AS job_tx FROM deliveries d "
            "JOIN jobs j ON j.dedupe_key = 'delivery:' || d.forge || ':' || d.id "
            "WHERE d.id = ANY($1)",
            ids,
        )
        assert len(rows) == len(ids)  # one job each, the redelivery none
        repeats = await pool.fetch("SELECT id, repeats FROM deliveries WHERE id = ANY($1)", ids)
        assert {row["id"]: row["repeats"] for row in repeats} == {
            i: int(i == ids[0]) for i in ids
        }  # the redelivery waiting with its first is counted on it
        assert len({(row["delivery_tx"], row["job_tx"]) for row in rows}) == 1
        assert rows[0]["delivery_tx"] == rows[0]["job_tx"]  # deliveries and jobs: one commit
        assert writer.waiting == writer.committing == 0
    finally:
        running.cancel()
        await asyncio.gather(running, return_exceptions=True)


async def test_a_failing_commit_fails_every_delivery_in_it(
    db: Database, pool: asyncpg.Pool, blocker: asyncpg.Connection
) -> None:
    await pool.execute(REFUSE_AT_COMMIT)
    await blocker.execute(HOLD)
    writer = DeliveryWriter(pool)
    running = asyncio.create_task(writer.run())
    try:
        held = asyncio.create_task(writer.store(push_delivery("blocker"), "push"))
        await wait_for(lambda: writer.committing == 1, what="the writer in its first commit")
        ids = ["fine-1", "poison", "fine-2"]
        stores = [asyncio.create_task(writer.store(push_delivery(i), "push")) for i in ids]
        await wait_for(lambda: writer.waiting == len(ids), what="the batch waiting")
        await blocker.execute("ROLLBACK")
        assert await held is True
        outcomes = await asyncio.gather(*stores, return_exceptions=True)
        assert all(isinstance(o, asyncpg.RaiseError) for o in outcomes), outcomes
        stored = await pool.fetchval("SELECT count(*) FROM deliveries WHERE id = ANY($1)", ids)
        queued = await pool.fetchval("SELECT count(*) FROM jobs")
        assert (stored, queued) == (0, 1)  # only the blocker's job
        # Nothing of the failed batch was kept: the good ones are new when sent again.
        assert await writer.store(push_delivery("fine-1"), "push") is True
    finally:
        running.cancel()
        await asyncio.gather(running, return_exceptions=True)


async def test_a_row_the_server_refuses_fails_only_its_own_delivery(
    db: Database, pool: asyncpg.Pool
) -> None:
    """Python reads NaN, jsonb does not: the batch is stored row by row instead."""
    writer = DeliveryWriter(pool)
    running = asyncio.create_task(writer.run())
    try:
        nan = parse_delivery(*signed_delivery(b'{"ref": NaN}', SECRET, delivery="nan"), SECRET)
        outcomes = await asyncio.gather(
            writer.store(nan, None),
            writer.store(push_delivery("good"), "push"),
            writer.store(push_delivery("good"), "push"),
            return_exceptions=True,
        )
        assert isinstance(outcomes[0], asyncpg.DataError), outcomes
        assert sorted(outcomes[1:], key=str) == [False, True]
        assert await pool.fetchval("SELECT count(*) FROM deliveries") == 1
    finally:
        running.cancel()
        await asyncio.gather(running, return_exceptions=True)


async def _post(session: aiohttp.ClientSession, url: str, delivery_id: str) -> int:
    headers, body = signed_delivery(PUSH, SECRET, delivery=delivery_id)
    async with session.post(url + "/webhooks/github", data=body, headers=headers) as answer:
        return answer.status


async def test_a_batch_whose_commit_fails_is_503_for_every_delivery_none_202(
    db_env: dict[str, str], postgres: PostgresServer, database: str
) -> None:
    service = Service(
        {**db_env, **DEFAULT_SECRETS, "GITHUB_WEBHOOK_SECRET": SECRET, "OGDC_WORKER_SLOTS": "0"}
    )
    await asyncio.to_thread(service.start)
    setup = await _connect(postgres, database)
    held = await _connect(postgres, database)
    try:
        await setup.execute(REFUSE_AT_COMMIT)
        await held.execute(HOLD)
        async with aiohttp.ClientSession() as session:
            first = asyncio.create_task(_post(session, service.url, "blocker"))
            await wait_for(
                lambda: _uncommitted(session, service.url, 1), what="the first delivery held"
            )
            ids = ["ok-1", "poison", "ok-2", "ok-3"]
            batch = [asyncio.create_task(_post(session, service.url, i)) for i in ids]
            await wait_for(lambda: _uncommitted(session, service.url, 5), what="the batch waiting")
            await held.execute("ROLLBACK")
            assert await first == 202
            assert await asyncio.gather(*batch) == [503] * len(ids)
            stored = await setup.fetchval("SELECT count(*) FROM deliveries WHERE id = ANY($1)", ids)
            assert stored == 0
            await setup.execute("DROP TRIGGER refuse_poison ON deliveries")
            assert [await _post(session, service.url, i) for i in ids] == [202] * len(ids)
    finally:
        await held.close()
        await setup.close()
        await asyncio.to_thread(service.stop)


async def _uncommitted(session: aiohttp.ClientSession, url: str, count: int) -> bool:
    """Whether the service holds at least `count` deliveries waiting for their commit."""
    async with session.get(url + "/metrics") as answer:
        return value(await answer.text(), "ogdc_webhook_deliveries_uncommitted") >= count
