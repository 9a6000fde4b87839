"""Durable intake against a real PostgreSQL: one delivery, one job, redeliveries stored once
and counted, ignored events recorded without their body."""

from __future__ import annotations

import asyncio

import asyncpg
from sqlalchemy import text

from ogdc_hooks.db.engine import Database
from ogdc_hooks.forges.github.webhooks import parse_delivery
from ogdc_hooks.jobs.queue import Job
from ogdc_hooks.jobs.wakeup import WakeUp
from ogdc_hooks.jobs.worker import Worker
from ogdc_hooks.webhooks.store import Row, store_delivery, store_rows
from tests.support.waiting import wait_for
from tests.webhooks.signing import signed_delivery
from tests.webhooks.test_events import PUSH, SECRET
from tests.webhooks.test_group_commit import push_delivery


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


async def _answers(pool: asyncpg.Pool) -> dict[str, tuple[str, int, bool, object]]:
    """Each stored delivery's answer, repeats, whether it has a repeated_at, and payload."""
    rows = await pool.fetch("SELECT id, answer, repeats, repeated_at, payload FROM deliveries")
    return {
        row["id"]: (row["answer"], row["repeats"], row["repeated_at"] is not None, row["payload"])
        for row in rows
    }


async def test_a_new_delivery_is_accepted_and_never_repeated(
    db: Database, pool: asyncpg.Pool
) -> None:
    assert await store_rows(
        pool, [Row(push_delivery("a"), "push"), Row(push_delivery("b"), "push")]
    ) == {
        ("github.com", "a"),
        ("github.com", "b"),
    }
    answers = await _answers(pool)
    assert {key: value[:3] for key, value in answers.items()} == {
        "a": ("accepted", 0, False),
        "b": ("accepted", 0, False),
    }
    assert await _count(db, "jobs") == 2


async def test_an_ignored_event_is_recorded_without_its_body_or_a_job(
    db: Database, pool: asyncpg.Pool
) -> None:
    tag = push_delivery("tag", PUSH | {"ref": "refs/tags/v1"})
    assert await store_delivery(pool, tag, None, answer="ignored") is True
    assert await _answers(pool) == {"tag": ("ignored", 0, False, "{}")}
    async with db.engine.connect() as connection:
        event, repository = (
            await connection.execute(text("SELECT event, repository FROM deliveries"))
        ).one()
    assert (event, repository) == ("push", PUSH["repository"]["full_name"])
    assert await _count(db, "jobs") == 0


async def test_an_ignored_id_that_now_has_work_is_accepted_with_its_job(
    db: Database, pool: asyncpg.Pool
) -> None:
    assert await store_delivery(pool, push_delivery("late"), None, answer="ignored") is True
    assert await store_delivery(pool, push_delivery("late"), None, answer="ignored") is False
    assert await _count(db, "jobs") == 0
    assert await store_delivery(pool, push_delivery("late"), "push") is True  # now handled
    answer, repeats, repeated, payload = (await _answers(pool))["late"]
    assert (answer, repeats, repeated) == ("accepted", 2, True) and payload != "{}"
    assert await _count(db, "jobs") == 1
    assert await store_delivery(pool, push_delivery("late"), "push") is False  # and only once
    assert await _count(db, "jobs") == 1


async def test_redeliveries_are_counted_on_the_stored_row(db: Database, pool: asyncpg.Pool) -> None:
    assert await store_delivery(pool, push_delivery("again"), "push") is True
    assert await store_delivery(pool, push_delivery("again"), "push") is False
    assert await store_delivery(pool, push_delivery("again"), "push") is False
    assert (await _answers(pool))["again"][:3] == ("accepted", 2, True)
    assert await _count(db, "jobs") == 1


async def test_a_key_repeated_in_one_statement_counts_each_repeat_new_ones_none(
    db: Database, pool: asyncpg.Pool
) -> None:
    """A delivery new in the batch is not counted as its own redelivery; its twins in the
    batch are, and one stored before is counted once."""
    assert await store_delivery(pool, push_delivery("old"), "push") is True
    rows = [Row(push_delivery(i), "push") for i in ("new", "old", "twice", "new", "twice", "twice")]
    assert await store_rows(pool, rows) == {("github.com", "new"), ("github.com", "twice")}
    answers = await _answers(pool)
    assert {key: value[:3] for key, value in answers.items()} == {
        "old": ("accepted", 1, True),
        "new": ("accepted", 1, True),
        "twice": ("accepted", 2, True),
    }
    assert await _count(db, "jobs") == 3


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
