"""The worker's tasks lose their database connection (`pg_terminate_backend`, as a restart or a
failover does) at the worst moment, and the work still completes: once, never twice at once.

A statement is caught in the act by holding a lock it needs from a connection of the test,
then ending the session that waits for it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator

import asyncpg
import pytest
from sqlalchemy import text

from ogdc_hooks.db.engine import Database
from ogdc_hooks.jobs import queue
from ogdc_hooks.jobs.queue import Job
from ogdc_hooks.jobs.worker import POISONED, Worker
from tests.support.postgres import PostgresServer
from tests.support.waiting import wait_for


@contextlib.asynccontextmanager
async def _working(worker: Worker) -> AsyncIterator[None]:
    task = asyncio.create_task(worker.run())
    try:
        yield
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


async def _hold(postgres: PostgresServer, database: str, statement: str) -> asyncpg.Connection:
    """A connection of the test's own, holding the locks `statement` takes until it is closed."""
    connection = await asyncpg.connect(postgres.dsn(database))
    await connection.execute("BEGIN")
    await connection.execute(statement)
    return connection


async def _enqueue(db: Database, key: str) -> int:
    async with db.engine.begin() as connection:
        return await queue.enqueue(connection, "test", {"key": key}, key=key)


async def _job(db: Database, key: str) -> dict[str, object]:
    async with db.engine.connect() as connection:
        row = await connection.execute(
            text(
                "SELECT state, attempts, crashes, locked_by, lease_until, last_error FROM jobs "
                "WHERE dedupe_key = :key"
            ),
            {"key": key},
        )
        return dict(row.one()._mapping)


async def _in_state(db: Database, key: str, state: str) -> bool:
    return (await _job(db, key))["state"] == state


async def _nothing(job: Job) -> None:
    """A handler with nothing to do."""


def _failures(caplog: pytest.LogCaptureFixture, task: str) -> list[logging.LogRecord]:
    """The supervisor's log records of `task` failing (each with its traceback)."""
    return [
        record
        for record in caplog.records
        if record.getMessage() == "background_task_failed"
        and record.fields["task"] == task  # type: ignore[attr-defined]
        and record.exc_info is not None
    ]


async def test_a_backend_ended_during_finish_leaves_the_job_to_its_lease_and_the_slot_lives(
    db: Database, postgres: PostgresServer, database: str, caplog: pytest.LogCaptureFixture
) -> None:
    runs: list[int] = []
    holders: list[asyncpg.Connection] = []

    async def handler(job: Job) -> None:
        runs.append(job.attempts)
        if not holders:  # the first run: its finish will have to wait for the job's row
            holders.append(await _hold(postgres, database, "SELECT 1 FROM jobs FOR UPDATE"))

    await _enqueue(db, "f")
    worker = Worker(db.engine, {"test": handler}, slots=1, lease=2, poll_interval=0.2)
    async with _working(worker):
        try:
            ended = await wait_for(
                lambda: postgres.terminate(
                    database, like="UPDATE jobs SET state = CASE%", blocked=True
                ),
                what="the finish to wait for the row, then end its session",
            )
        finally:
            for holder in holders:
                await holder.close()
        await wait_for(lambda: _in_state(db, "f", "done"), what="the job taken over and done")
        await _enqueue(db, "later")  # the one slot still works
        await wait_for(lambda: _in_state(db, "later", "done"), what="the next job done")
    assert ended == 1
    assert runs == [1, 2, 1]  # the handler again only on the takeover: one at a time
    job = await _job(db, "f")
    assert (job["attempts"], job["crashes"]) == (2, 0)  # its own live worker took it back
    assert len(_failures(caplog, "worker slot 1")) == 1


async def test_a_backend_ended_during_a_claim_is_restarted_and_claims_again(
    db: Database, postgres: PostgresServer, database: str, caplog: pytest.LogCaptureFixture
) -> None:
    await _enqueue(db, "c")
    worker = Worker(db.engine, {"test": _nothing}, slots=1, poll_interval=0.2)
    holder = await _hold(postgres, database, "LOCK TABLE jobs IN ACCESS EXCLUSIVE MODE")
    async with _working(worker):
        try:
            await wait_for(
                lambda: postgres.terminate(database, like="%SKIP LOCKED%", blocked=True),
                what="the claim to wait for the table, then end its session",
            )
            await wait_for(lambda: _failures(caplog, "worker slot 1"), what="the slot's failure")
        finally:
            await holder.close()
        await wait_for(lambda: _in_state(db, "c", "done"), what="the job claimed again and done")


async def test_a_backend_ended_during_lease_renewal_keeps_the_lease(
    db: Database, postgres: PostgresServer, database: str, caplog: pytest.LogCaptureFixture
) -> None:
    started, proceed = asyncio.Event(), asyncio.Event()

    async def handler(job: Job) -> None:
        started.set()
        await proceed.wait()

    await _enqueue(db, "r")
    worker = Worker(db.engine, {"test": handler}, slots=1, lease=4, poll_interval=0.2)
    async with _working(worker):
        await asyncio.wait_for(started.wait(), 20)
        holder = await _hold(postgres, database, "SELECT 1 FROM jobs FOR UPDATE")
        try:
            await wait_for(
                lambda: postgres.terminate(
                    database, like="UPDATE jobs SET lease_until%", blocked=True
                ),
                what="the renewal to wait for the row, then end its session",
            )
        finally:
            await holder.close()
        before = (await _job(db, "r"))["lease_until"]
        await wait_for(lambda: _failures(caplog, "lease renewal"), what="the renewal's failure")

        async def renewed() -> bool:
            return bool((await _job(db, "r"))["lease_until"] > before)  # type: ignore[operator]

        await wait_for(renewed, what="the restarted renewal to extend the lease")
        proceed.set()
        await wait_for(lambda: _in_state(db, "r", "done"), what="the job done")
    job = await _job(db, "r")
    assert (job["attempts"], job["crashes"]) == (1, 0)  # never stopped, never taken over


async def test_a_backend_ended_under_the_listener_is_restarted_and_wakes_the_worker(
    db: Database, postgres: PostgresServer, database: str, caplog: pytest.LogCaptureFixture
) -> None:
    worker = Worker(db.engine, {"test": _nothing}, slots=1, poll_interval=3600)
    async with _working(worker):
        await wait_for(lambda: worker.idle, what="the worker to sleep")
        assert await postgres.terminate(database, like="LISTEN %") == 1
        await wait_for(lambda: _failures(caplog, "job listener"), what="the listener's failure")
        await wait_for(lambda: worker.idle, what="the worker to listen and sleep again")
        await _enqueue(db, "w")  # only a notification can wake it now, for an hour
        await wait_for(lambda: _in_state(db, "w", "done"), within=10, what="the job done")


async def test_a_job_taken_over_is_stopped_where_it_runs(db: Database) -> None:
    started, stopped = asyncio.Event(), asyncio.Event()

    async def handler(job: Job) -> None:
        started.set()
        try:
            await asyncio.Event().wait()
        finally:
            stopped.set()

    await _enqueue(db, "t")
    worker = Worker(db.engine, {"test": handler}, slots=1, lease=3, poll_interval=0.2)
    async with _working(worker):
        await asyncio.wait_for(started.wait(), 20)
        async with db.engine.begin() as connection:  # as if its lease had run out meanwhile
            await connection.execute(text("UPDATE jobs SET locked_by = 'another worker'"))
        await asyncio.wait_for(stopped.wait(), 10)
    job = await _job(db, "t")
    assert (job["state"], job["locked_by"]) == ("running", "another worker")  # left to it


async def test_a_stopping_worker_hands_its_jobs_back_at_once(db: Database) -> None:
    started = asyncio.Event()

    async def handler(job: Job) -> None:
        started.set()
        await asyncio.Event().wait()

    await _enqueue(db, "h")
    worker = Worker(db.engine, {"test": handler}, slots=1, lease=600)
    async with _working(worker):
        await asyncio.wait_for(started.wait(), 20)
    job = await _job(db, "h")
    assert (job["state"], job["attempts"], job["locked_by"]) == ("queued", 0, None)
    again = await queue.claim(db.engine, "next", 30)  # no lease to wait for
    assert again is not None and again.crashes == 0


async def test_a_job_whose_workers_died_twice_is_given_up_as_poisoned(db: Database) -> None:
    ran: list[int] = []
    given_up: list[str] = []

    async def handler(job: Job) -> None:
        ran.append(job.id)

    async def hook(job: Job, error: str) -> None:
        given_up.append(error)

    job_id = await _enqueue(db, "p")
    for dead in ("worker-1", "worker-2"):  # each claims it, then dies: its lease runs out
        claimed = await queue.claim(db.engine, dead, 0.05)
        assert claimed is not None and claimed.id == job_id

        async def ran_out() -> bool:
            async with db.engine.connect() as connection:
                statement = text("SELECT lease_until < now() FROM jobs")
                return bool((await connection.execute(statement)).scalar_one())

        await wait_for(ran_out, what=f"the lease of {dead} to run out")
    worker = Worker(db.engine, {"test": handler}, {"test": hook}, slots=1, poll_interval=0.2)
    async with _working(worker):
        await wait_for(lambda: _in_state(db, "p", "failed"), what="the job to be given up")
    job = await _job(db, "p")
    assert (job["crashes"], job["last_error"]) == (2, POISONED)
    assert given_up == [POISONED]
    assert "crashed the worker running it twice" in POISONED
    assert ran == []  # not run a third time
