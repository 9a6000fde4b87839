"""A run's state is reported once, even when it changes while its report job runs.

Found by the chaos test: a workflow that ends while the run's report job is running asks for
the job once more (`again`); when the job then reads the run, it already sees the end and
reports it, and the extra run reported the same end a second time.
"""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any, cast

from ogdc_hooks.db.engine import Database
from ogdc_hooks.forges.base import CommitReport, Forge, Forges, RepoRef
from ogdc_hooks.jobs import queue
from ogdc_hooks.pipeline import store
from ogdc_hooks.pipeline.context import Pipeline
from ogdc_hooks.pipeline.report import handle_report
from ogdc_hooks.runstate import RunState
from tests.support.report_settings import SETTINGS

WORKER = "the test's worker"


class _Forge:
    """Records what would be shown on the commit."""

    host = "github.com"

    def __init__(self) -> None:
        self.reports: list[RunState] = []

    async def report(self, report: CommitReport, previous_id: int | None, repo: RepoRef) -> int:
        self.reports.append(report.state)
        return 7


def _pipeline(db: Database, forge: _Forge) -> Pipeline:
    return cast(
        Pipeline,
        SimpleNamespace(
            database=db, forges=Forges([cast(Forge, forge)]), settings=SETTINGS, workflows=None
        ),
    )


async def _new_run(db: Database) -> store.RunRecord:
    new = store.NewRun(
        forge="github.com",
        repository="qgnet/recipes",
        clone_url="https://github.invalid/qgnet/recipes.git",
        commit_sha="a" * 40,
        recipe="recipes/sea-ice",
        trigger="push",
    )
    async with db.engine.begin() as connection:
        run = await store.create_run(connection, new)
    assert run is not None
    return run


async def _change(db: Database, run: store.RunRecord, state: RunState) -> None:
    async with db.engine.begin() as connection:
        assert await store.change_state(connection, run.id, state)


async def _claim(db: Database) -> queue.Job | None:
    return await queue.claim(db.engine, WORKER, lease=60)


async def test_a_change_the_running_report_already_read_is_not_reported_again(
    db: Database,
) -> None:
    forge = _Forge()
    pipeline = _pipeline(db, forge)
    run = await _new_run(db)
    job = await _claim(db)
    assert job is not None and job.kind == "report"
    await _change(db, run, RunState.SUCCEEDED)  # while the job runs: asks for it once more
    await handle_report(pipeline, job)  # reads the run now: reports the end
    await queue.finish(db.engine, job, WORKER)
    assert await _claim(db) is None  # what it was asked again for has been reported
    assert forge.reports == [RunState.SUCCEEDED]


async def test_a_change_after_the_report_read_the_run_is_reported_next(db: Database) -> None:
    forge = _Forge()
    pipeline = _pipeline(db, forge)
    run = await _new_run(db)
    job = await _claim(db)
    assert job is not None
    await handle_report(pipeline, job)  # reports queued
    await _change(db, run, RunState.SUCCEEDED)  # after the read: must be reported too
    await queue.finish(db.engine, job, WORKER)
    again: Any = await _claim(db)
    assert again is not None and again.id == job.id
    await handle_report(pipeline, again)
    await queue.finish(db.engine, again, WORKER)
    assert await _claim(db) is None
    assert forge.reports == [RunState.QUEUED, RunState.SUCCEEDED]
