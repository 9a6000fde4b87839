"""The supervisor restarts what fails and says so; the health registry says what is wrong."""

from __future__ import annotations

import asyncio
import logging

import pytest

from ogdc_hooks.jobs.supervise import Health, Supervisor
from tests.fakes.github import FakeClock
from tests.support.waiting import wait_for


async def test_a_failing_task_is_logged_marked_down_and_restarted(
    caplog: pytest.LogCaptureFixture,
) -> None:
    starts: list[int] = []
    release = asyncio.Event()

    async def flaky() -> None:
        starts.append(len(starts) + 1)
        if len(starts) <= 2:
            await release.wait()
            raise ConnectionError("the database connection was lost")
        await asyncio.Event().wait()

    supervisor = Supervisor(restart_base=0.2)
    caplog.set_level(logging.INFO, logger="ogdc_hooks.jobs.supervise")
    async with supervisor.running({"worker slot 1": flaky}):
        await wait_for(lambda: starts == [1], what="the first start")
        assert supervisor.health.problems() == []
        release.set()
        await wait_for(supervisor.health.problems, what="the task to be down")
        assert supervisor.health.problems() == [
            "worker slot 1 stopped (ConnectionError) and is being restarted"
        ]
        await wait_for(lambda: len(starts) == 3, what="two restarts")
        await wait_for(lambda: not supervisor.health.problems(), what="the task to be up")
    failures = [r for r in caplog.records if r.getMessage() == "background_task_failed"]
    assert len(failures) == 2
    assert all(r.exc_info and r.exc_info[0] is ConnectionError for r in failures)
    assert failures[0].fields["task"] == "worker slot 1"  # type: ignore[attr-defined]
    assert supervisor.health.problems() == []  # stopped tasks are forgotten


async def test_a_task_that_returns_is_restarted_too() -> None:
    runs: list[None] = []

    async def returns() -> None:
        runs.append(None)

    async with Supervisor(restart_base=0.05).running({"wake-up": returns}):
        await wait_for(lambda: len(runs) >= 2, what="a restart after returning")


async def test_a_cancellation_nobody_asked_for_is_a_failure_too() -> None:
    runs: list[None] = []

    async def cancelled_from_within() -> None:
        runs.append(None)
        raise asyncio.CancelledError  # e.g. a library's timeout gone wrong

    async with Supervisor(restart_base=0.05).running({"workflow watch": cancelled_from_within}):
        await wait_for(lambda: len(runs) >= 2, what="a restart after the cancellation")


async def test_leaving_the_block_stops_every_task() -> None:
    running: set[str] = set()

    async def forever(name: str) -> None:
        running.add(name)
        try:
            await asyncio.Event().wait()
        finally:
            running.discard(name)

    async with Supervisor().running({n: lambda n=n: forever(n) for n in ("a", "b")}):
        await wait_for(lambda: running == {"a", "b"}, what="both tasks to run")
    assert running == set()


def test_an_overdue_heartbeat_is_a_problem_until_it_beats() -> None:
    clock = FakeClock(now=1000.0)
    health = Health(clock=clock)
    health.expect("the job queue poll", within=30)
    clock.advance(30)
    assert health.problems() == []
    clock.advance(15)
    assert health.problems() == [
        "the job queue poll has not happened for 45 s (at most 30 s expected)"
    ]
    health.beat("the job queue poll")
    assert health.problems() == []
    health.forget("the job queue poll")
    clock.advance(100)
    assert health.problems() == []
