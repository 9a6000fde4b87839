"""GitHub's secondary limits on content creation: writes are paced per installation, a report
that cannot write yet is deferred (not refused, not slept, no attempt counted), and the
updates of one check that wait for the budget collapse into one write of the latest state."""

from __future__ import annotations

from collections.abc import AsyncIterator
from types import SimpleNamespace
from typing import cast

import aiohttp
import pytest
from sqlalchemy import text

from ogdc_hooks.db.engine import Database
from ogdc_hooks.forges.base import CommitReport, Forge, Forges, RepoRef
from ogdc_hooks.forges.github.errors import TransientForgeError
from ogdc_hooks.forges.github.reporter import make_reporter
from ogdc_hooks.forges.write_budget import WriteBudget
from ogdc_hooks.jobs import queue
from ogdc_hooks.jobs.errors import Deferred
from ogdc_hooks.jobs.kinds import enqueue_summary
from ogdc_hooks.pipeline import store
from ogdc_hooks.pipeline.context import Pipeline
from ogdc_hooks.pipeline.report import handle_report
from ogdc_hooks.runstate import RunState
from ogdc_hooks.settings import Secret, Settings
from tests.fakes.github import FakeGitHub
from tests.support.report_settings import SETTINGS

REPOSITORY = "qgnet/recipes"
SHA = "b" * 40
WORKER = "the test's worker"
WINDOW = ((2, 60.0),)  # the fake's and the service's: 2 writes a minute


@pytest.fixture
async def github() -> AsyncIterator[FakeGitHub]:
    fake = FakeGitHub(secondary_limits=WINDOW)
    fake.add_repository(REPOSITORY)
    await fake.start()
    yield fake
    await fake.stop()


def _status(n: int) -> CommitReport:
    return CommitReport(REPOSITORY, SHA, f"ogdc/r{n}", RunState.QUEUED, "Queued", "queued")


async def test_writes_past_the_budget_are_deferred_not_refused(
    db: Database, github: FakeGitHub
) -> None:
    settings = Settings(github_api_url=github.url, github_token=Secret(github.add_token()))
    async with aiohttp.ClientSession() as session:
        paced = make_reporter(settings, session, budget=WriteBudget(db.engine, WINDOW))
        unpaced = make_reporter(settings, session)
        assert paced is not None and unpaced is not None
        await paced.report(_status(1), None)
        await paced.report(_status(2), None)
        with pytest.raises(Deferred) as deferred:
            await paced.report(_status(3), None)
        assert 55 < deferred.value.retry_after <= 60
        assert "write budget" in str(deferred.value)
        assert github.secondary_refusals == 0
        assert len(github.requests_to("POST", "/statuses/")) == 2
        # What pacing spares: GitHub itself would have refused the third write.
        with pytest.raises(TransientForgeError, match="secondary rate limit") as refused:
            await unpaced.report(_status(3), None)
        assert refused.value.retry_after is not None and refused.value.retry_after > 50
        assert github.secondary_refusals == 1
    # Another installation's budget is its own.
    await WriteBudget(db.engine, WINDOW).take("installation:2")


class _PacedForge:
    """Shows each report on the commit once the installation's write budget allows."""

    host = "github.com"

    def __init__(self, budget: WriteBudget) -> None:
        self.budget = budget
        self.reports: list[RunState] = []

    async def report(self, report: CommitReport, previous_id: int | None, repo: RepoRef) -> int:
        await self.budget.take("installation:9", "a check update")
        self.reports.append(report.state)
        return 7


async def _change(db: Database, run: store.RunRecord, state: RunState) -> None:
    async with db.engine.begin() as connection:
        assert await store.change_state(connection, run.id, state)


async def test_updates_waiting_for_the_budget_collapse_into_the_latest(db: Database) -> None:
    forge = _PacedForge(WriteBudget(db.engine, ((1, 3600.0),)))
    pipeline = cast(
        Pipeline,
        SimpleNamespace(
            database=db, forges=Forges([cast(Forge, forge)]), settings=SETTINGS, workflows=None
        ),
    )
    new = store.NewRun("github.com", REPOSITORY, "https://github.invalid/q/r.git", SHA, "r", "api")
    async with db.engine.begin() as connection:
        run = await store.create_run(connection, new)
    assert run is not None
    job = await queue.claim(db.engine, WORKER, lease=60)
    assert job is not None
    await handle_report(pipeline, job)  # the budget's one write: "queued"
    await queue.finish(db.engine, job, WORKER)

    await _change(db, run, RunState.SUBMITTED)
    job = await queue.claim(db.engine, WORKER, lease=60)
    assert job is not None
    with pytest.raises(Deferred) as deferred:
        await handle_report(pipeline, job)
    await queue.retry_later(  # what the worker does with a deferral
        db.engine, job, WORKER, deferred.value.retry_after, str(deferred.value), count_attempt=False
    )
    for state in (RunState.RUNNING, RunState.SUCCEEDED):
        await _change(db, run, state)
    async with db.engine.connect() as connection:
        jobs = (await connection.execute(text("SELECT state, attempts FROM jobs"))).all()
        assert [tuple(row) for row in jobs] == [("queued", 0)]  # one pending write, no attempt
        await connection.execute(text("DELETE FROM forge_writes"))  # the hour has passed
        await connection.commit()
    job = await queue.claim(db.engine, WORKER, lease=60)
    assert job is not None
    await handle_report(pipeline, job)
    await queue.finish(db.engine, job, WORKER)
    assert forge.reports == [RunState.QUEUED, RunState.SUCCEEDED]
    assert await queue.claim(db.engine, WORKER, lease=60) is None


async def test_a_deferred_summary_asked_for_again_stays_one_job_and_deferred(
    db: Database,
) -> None:
    async def ask() -> None:
        async with db.engine.begin() as connection:
            await enqueue_summary(connection, "github.com", REPOSITORY, SHA, 9)

    await ask()
    job = await queue.claim(db.engine, WORKER, lease=60)
    assert job is not None and job.kind == "summary"
    await queue.retry_later(db.engine, job, WORKER, 60.0, "waits", count_attempt=False)
    for _ in range(3):  # each of a big push's reports asks for it
        await ask()
    assert await queue.claim(db.engine, WORKER, lease=60) is None  # still waiting its turn
    async with db.engine.connect() as connection:
        count = (await connection.execute(text("SELECT count(*) FROM jobs"))).scalar_one()
    assert count == 1
