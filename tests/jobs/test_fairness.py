"""A per-repository limit on running jobs (`OGDC_JOBS_PER_REPOSITORY`): a busy repository
holds at most that many workers, so another repository's job is claimed while the busy
one's still wait, and two workers claiming at once cannot both take the last place."""

from __future__ import annotations

import asyncio
import json

from sqlalchemy import text

from ogdc_hooks.db.engine import Database
from ogdc_hooks.jobs import queue
from ogdc_hooks.jobs.queue import Job
from ogdc_hooks.jobs.worker import Worker
from tests.support.waiting import wait_for

BUSY, OTHER = "github.com/qgnet/busy", "github.com/qgnet/other"


async def _enqueue(db: Database, repository: str | None, count: int, name: str) -> None:
    async with db.engine.begin() as connection:
        for n in range(count):
            await queue.enqueue(
                connection,
                "work",
                {"name": f"{name}-{n}"},
                key=f"{name}-{n}",
                repository=repository,
            )


async def _running(db: Database) -> dict[str, int]:
    async with db.engine.connect() as connection:
        rows = await connection.execute(
            text("SELECT repository, count(*) FROM jobs WHERE state = 'running' GROUP BY 1")
        )
        return {str(repository): int(count) for repository, count in rows}


async def test_a_busy_repository_does_not_starve_another(db: Database) -> None:
    await _enqueue(db, BUSY, 12, "busy")  # first in line: plain FIFO would give it every slot
    await _enqueue(db, OTHER, 1, "other")
    release = asyncio.Event()
    started: list[str] = []

    async def handler(job: Job) -> None:
        started.append(job.payload["name"])
        if job.payload["name"].startswith("busy"):
            await release.wait()

    worker = Worker(db.engine, {"work": handler}, slots=4, per_repository=2, poll_interval=0.2)
    task = asyncio.create_task(worker.run())
    try:
        await wait_for(lambda: "other-0" in started, what="the other repository's job")
        await wait_for(lambda: len(started) == 3, what="two busy jobs and the other one")
        assert await _running(db) == {BUSY: 2}  # the other's is done; the 4th slot waits
        release.set()
        await wait_for(lambda: len(started) == 13, within=20, what="every busy job, two at a time")
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


async def test_concurrent_claims_never_pass_the_limit(db: Database) -> None:
    await _enqueue(db, BUSY, 6, "busy")
    await _enqueue(db, None, 2, "housekeeping")  # no repository: never limited
    claimed = await asyncio.gather(
        *(queue.claim(db.engine, f"worker-{n}", 30, per_repository=1) for n in range(8))
    )
    names = sorted(json.dumps(job.payload) for job in claimed if job is not None)
    assert len([name for name in names if "busy" in name]) == 1
    assert len([name for name in names if "housekeeping" in name]) == 2
    assert await _running(db) == {BUSY: 1, "None": 2}
