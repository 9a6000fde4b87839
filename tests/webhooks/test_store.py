"""Durable intake against a real PostgreSQL: one delivery, one job, redeliveries stored once."""

from __future__ import annotations

import asyncio

import asyncpg
from sqlalchemy import text

from ogdc_hooks.db.engine import Database
from ogdc_hooks.forges.github.webhooks import parse_delivery
from ogdc_hooks.jobs.queue import Job
from ogdc_hooks.jobs.wakeup import WakeUp
from ogdc_hooks.jobs.worker import Worker
from ogdc_hooks.webhooks.store import store_delivery
from tests.support.waiting import wait_for
from tests.webhooks.signing import signed_delivery
from tests.webhooks.test_events import PUSH, SECRET


async def _count(db: Database, table: str) -> int:
    async with db.engine.connect() as connection:
        return int((await connection.execute(text(f"SELECT count(*) FROM {table}"))).scalar_one())


async def test_delivery_and_job_are_stored_once(db: Database, pool: asyncpg.Pool) -> None:
    delivery = parse_delivery(*signed_delivery(PUSH, SECRET, delivery="same"), SECRET)
    assert await store_delivery(pool, delivery, "push") is True
    assert await store_delivery(pool, delivery, "push") is False
    assert await _count(db, "deliveries") == 1
    async with db.engine.connect() as connection:
        job = (await connection.execute(text("SELECT kind, payload, dedupe_key FROM jobs"))).one()
    payload = {"delivery": "same", "forge": "github.com"}
    assert tuple(job) == ("push", payload, "delivery:github.com:same")


async def test_concurrent_redeliveries_store_one(db: Database, pool: asyncpg.Pool) -> None:
    delivery = parse_delivery(*signed_delivery(PUSH, SECRET, delivery="race"), SECRET)
    results = await asyncio.gather(*(store_delivery(pool, delivery, "push") for _ in range(20)))
    assert results.count(True) == 1
    assert await _count(db, "jobs") == 1


async def test_nul_characters_do_not_lose_the_delivery(db: Database, pool: asyncpg.Pool) -> None:
    payload = PUSH | {"head_commit": {"message": "oops \u0000 nul"}}
    delivery = parse_delivery(*signed_delivery(payload, SECRET, delivery="nul"), SECRET)
    assert await store_delivery(pool, delivery, "push") is True
    async with db.engine.connect() as connection:
        stored = (await connection.execute(text("SELECT payload FROM deliveries"))).scalar_one()
    assert stored["head_commit"]["message"] == "oops \ufffd nul"


async def test_ignored_kinds_store_no_job(db: Database, pool: asyncpg.Pool) -> None:
    delivery = parse_delivery(*signed_delivery(PUSH, SECRET, delivery="x"), SECRET)
    assert await store_delivery(pool, delivery, None) is True
    assert await _count(db, "jobs") == 0


async def test_a_poke_wakes_sleeping_workers_once_for_a_burst(
    db: Database, pool: asyncpg.Pool
) -> None:
    handled: list[str] = []

    async def handler(job: Job) -> None:
        handled.append(job.payload["delivery"])

    worker = Worker(db.engine, {"push": handler}, slots=2, poll_interval=3600)
    wake_up = WakeUp(pool)
    tasks = [asyncio.create_task(worker.run()), asyncio.create_task(wake_up.run())]
    try:
        await wait_for(lambda: worker.idle, what="the workers to sleep")  # an hour unless woken
        for index in range(5):
            delivery = parse_delivery(*signed_delivery(PUSH, SECRET, delivery=f"b{index}"), SECRET)
            assert await store_delivery(pool, delivery, "push")
            wake_up.poke()
        await wait_for(lambda: len(handled) >= 5, within=10, what="five deliveries handled")
        assert sorted(handled) == [f"b{index}" for index in range(5)]
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
