"""The queue against a real PostgreSQL: dedupe, SKIP LOCKED claims, leases, retries."""

from __future__ import annotations

import asyncio
import uuid

from sqlalchemy import text

from ogdc_hooks.db.engine import Database
from ogdc_hooks.jobs import queue
from ogdc_hooks.jobs.errors import PermanentError, TransientError
from ogdc_hooks.jobs.kinds import enqueue_report
from ogdc_hooks.jobs.queue import Job
from ogdc_hooks.jobs.worker import Worker
from tests.support.waiting import wait_for


async def _enqueue(db: Database, key: str, **kwargs: object) -> int:
    async with db.engine.begin() as connection:
        return await queue.enqueue(connection, "test", {"key": key}, key=key, **kwargs)  # type: ignore[arg-type]


async def _lease_ran_out(db: Database, job_id: int) -> bool:
    """Whether the database's clock has passed the job's lease (as a claim sees it)."""
    async with db.engine.connect() as connection:
        statement = text("SELECT lease_until < now() FROM jobs WHERE id = :id")
        return bool((await connection.execute(statement, {"id": job_id})).scalar_one())


async def _states(db: Database) -> dict[str, tuple[str, int, bool]]:
    async with db.engine.connect() as connection:
        rows = await connection.execute(text("SELECT dedupe_key, state, attempts, again FROM jobs"))
        return {row[0]: (row[1], row[2], row[3]) for row in rows}


async def test_claim_finish_and_dedupe(db: Database) -> None:
    first = await _enqueue(db, "a")
    assert await _enqueue(db, "a") == first  # asked twice, one job
    job = await queue.claim(db.engine, "w1", 30)
    assert job is not None and job.payload == {"key": "a"} and job.attempts == 1
    assert await queue.claim(db.engine, "w2", 30) is None  # nothing else ready
    await queue.finish(db.engine, job, "w1")
    assert (await _states(db))["a"] == ("done", 1, False)


async def test_asked_again_while_running_runs_once_more(db: Database) -> None:
    await _enqueue(db, "r")
    job = await queue.claim(db.engine, "w1", 30)
    assert job is not None
    await _enqueue(db, "r")  # e.g. the run changed state while its report was being sent
    assert (await _states(db))["r"] == ("running", 1, True)
    await queue.finish(db.engine, job, "w1")
    assert (await _states(db))["r"] == ("queued", 0, False)
    again = await queue.claim(db.engine, "w1", 30)
    assert again is not None and again.id == job.id


async def test_concurrent_claims_never_share_a_job(db: Database) -> None:
    for index in range(60):
        await _enqueue(db, f"j{index}")
    claimed: list[int] = []

    async def claimer(name: str) -> None:
        while (job := await queue.claim(db.engine, name, 30)) is not None:
            claimed.append(job.id)

    await asyncio.gather(*(claimer(f"w{n}") for n in range(8)))
    assert len(claimed) == 60
    assert len(set(claimed)) == 60


async def test_expired_lease_is_taken_over_and_old_holder_cannot_finish(db: Database) -> None:
    await _enqueue(db, "l")
    stale = await queue.claim(db.engine, "dead", 0.05)
    assert stale is not None
    await wait_for(lambda: _lease_ran_out(db, stale.id), what="the lease to run out")
    fresh = await queue.claim(db.engine, "alive", 30)
    assert fresh is not None and fresh.id == stale.id and fresh.attempts == 2
    await queue.finish(db.engine, stale, "dead")  # the old holder wakes up late
    assert (await _states(db))["l"][0] == "running"
    assert await queue.renew(db.engine, "dead", 30, [stale.id]) == set()
    assert await queue.renew(db.engine, "alive", 30, [fresh.id]) == {fresh.id}
    await queue.finish(db.engine, fresh, "alive")
    assert (await _states(db))["l"][0] == "done"


async def _run_worker_until_state(worker: Worker, db: Database, key: str, state: str) -> None:
    """Run the worker until job `key` reaches `state` (bounded: 20 s)."""
    task = asyncio.create_task(worker.run())

    async def reached() -> bool:
        return (await _states(db))[key][0] == state

    try:
        await wait_for(reached, within=20, what=f"job {key} to be {state}")
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


async def test_worker_retries_transient_errors_then_succeeds(db: Database) -> None:
    calls: list[tuple[int, float | None]] = []

    async def flaky(job: Job) -> None:
        if job.attempts < 3:
            raise TransientError("GitHub answered 502", retry_after=0.01 * job.attempts)

    def backoff(attempt: int, retry_after: float | None) -> float:
        calls.append((attempt, retry_after))
        return 0.05

    await _enqueue(db, "flaky", max_attempts=5)
    worker = Worker(db.engine, {"test": flaky}, slots=1, poll_interval=0.1, backoff=backoff)
    await _run_worker_until_state(worker, db, "flaky", "done")
    assert calls == [(1, 0.01), (2, 0.02)]
    assert (await _states(db))["flaky"][1] == 3


async def test_worker_gives_up_after_max_attempts(db: Database) -> None:
    given_up: list[str] = []

    async def down(job: Job) -> None:
        raise TransientError("Argo Server unreachable")

    async def hook(job: Job, error: str) -> None:
        given_up.append(error)

    await _enqueue(db, "down", max_attempts=2)
    worker = Worker(
        db.engine,
        {"test": down},
        {"test": hook},
        slots=1,
        poll_interval=0.1,
        backoff=lambda attempt, retry_after: 0.01,
    )
    await _run_worker_until_state(worker, db, "down", "failed")
    assert given_up == ["Argo Server unreachable (gave up after 2 attempts)"]


async def test_worker_gives_up_on_permanent_error_and_calls_the_hook(db: Database) -> None:
    given_up: list[str] = []

    async def broken(job: Job) -> None:
        raise PermanentError("Argo refused the workflow: bad template")

    async def hook(job: Job, error: str) -> None:
        given_up.append(error)

    await _enqueue(db, "broken")
    worker = Worker(db.engine, {"test": broken}, {"test": hook}, slots=1)
    await _run_worker_until_state(worker, db, "broken", "failed")
    assert given_up == ["Argo refused the workflow: bad template"]
    state, attempts, _ = (await _states(db))["broken"]
    assert (state, attempts) == ("failed", 1)


async def test_worker_wakes_on_notify_without_polling(db: Database) -> None:
    done = asyncio.Event()

    async def handler(job: Job) -> None:
        done.set()

    worker = Worker(db.engine, {"test": handler}, slots=1, poll_interval=3600)
    task = asyncio.create_task(worker.run())
    try:
        await wait_for(lambda: worker.idle, what="the worker to sleep")  # an hour, unless woken
        await _enqueue(db, "wake")
        await asyncio.wait_for(done.wait(), 10)
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


async def test_a_report_refused_for_now_is_retried_past_any_other_jobs_limit(
    db: Database,
) -> None:
    """Reports are asked for with no practical limit: 20 refusals, then GitHub accepts."""
    run_id = uuid.uuid4()
    async with db.engine.begin() as connection:
        await enqueue_report(connection, run_id)
    refusals: list[int] = []
    outcomes: list[tuple[str, str]] = []
    given_up: list[str] = []

    async def report(job: Job) -> None:
        if len(refusals) < 20:
            refusals.append(job.attempts)
            raise TransientError("GitHub answered 503")

    async def give_up(job: Job, error: str) -> None:
        given_up.append(error)

    worker = Worker(
        db.engine,
        {"report": report},
        {"report": give_up},
        slots=1,
        poll_interval=0.1,
        backoff=lambda attempt, retry_after: 0.0,
        record=lambda kind, outcome: outcomes.append((kind, outcome)),
    )
    await _run_worker_until_state(worker, db, f"report:{run_id}", "done")
    assert refusals == list(range(1, 21))
    assert given_up == []
    assert outcomes == [("report", "retried")] * 20 + [("report", "done")]
