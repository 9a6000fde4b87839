"""Reconciling has a heartbeat: a run that never ends is seen by the health registry and
`/readyz`, like the worker's polling, and readiness comes back once a run ends."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any, cast

from aiohttp import web
from aiohttp.test_utils import TestClient

from ogdc_hooks.api.context import SUPERVISOR
from ogdc_hooks.bootstrap import create_app
from ogdc_hooks.jobs.supervise import Health, Supervisor
from ogdc_hooks.pipeline.reconcile import (
    RECONCILED,
    RUN_ALLOWANCE,
    Reconciler,
    reconcile_forever,
    stall_bound,
)
from ogdc_hooks.settings import load_settings
from tests.fakes.github import AppKey, FakeClock, FakeGitHub, Fault
from tests.pipeline.conftest import APP_ID
from tests.support.service import DEFAULT_SECRETS
from tests.support.waiting import wait_for

ClientFactory = Callable[[web.Application], Any]
HUNG_SECONDS = 15.0  # how long the fake GitHub holds the first listing of deliveries


class _Runs:
    """A reconciler whose runs end only when the test lets them."""

    def __init__(self) -> None:
        self.started = 0
        self.release = asyncio.Event()

    async def run_logged(self) -> str:
        self.started += 1
        await self.release.wait()
        self.release.clear()
        return "ok"


def _stalled(health: Health) -> bool:
    return any(
        problem.startswith(f"{RECONCILED} has not happened") for problem in health.problems()
    )


async def test_a_run_that_never_ends_is_a_problem_until_a_run_ends() -> None:
    clock = FakeClock(now=1000.0)
    health = Health(clock=clock)
    runs = _Runs()
    bound = stall_bound(300, first_delay=0)
    assert bound == 300 + RUN_ALLOWANCE
    task = asyncio.create_task(
        reconcile_forever(cast(Reconciler, runs), health, interval=300, first_delay=0)
    )
    try:
        await wait_for(lambda: runs.started == 1, what="the first run")
        clock.advance(bound)
        assert not _stalled(health)  # at the bound, not past it
        clock.advance(1)
        assert health.problems() == [
            f"{RECONCILED} has not happened for {bound + 1:.0f} s (at most {bound:.0f} s expected)"
        ]
        runs.release.set()  # the run ends (whatever its outcome): the heartbeat
        await wait_for(lambda: not _stalled(health), what="the run's heartbeat")
        assert health.problems() == []
    finally:
        task.cancel()


def test_the_bound_covers_the_first_delay_when_it_is_longer_than_the_interval() -> None:
    assert stall_bound(1, first_delay=5) == 5 + RUN_ALLOWANCE


async def test_readyz_is_503_while_a_reconcile_run_hangs_on_github(
    aiohttp_client: ClientFactory, db_env: dict[str, str], github_app_key: AppKey
) -> None:
    """The App's listing of deliveries hangs; the service's health clock is moved past the
    bound (instead of waiting ten minutes), so the run in flight is overdue until it ends."""
    github = FakeGitHub()
    github.add_app(APP_ID, github_app_key.public_key)
    github.inject(Fault.timeout(HUNG_SECONDS), path=r"^/app/hook/deliveries", method="GET")
    await github.start()
    moved = [0.0]
    try:
        settings = load_settings(
            {
                **db_env,
                **DEFAULT_SECRETS,
                "OGDC_WORKER_SLOTS": "1",
                "GITHUB_API_URL": github.url,
                "GITHUB_APP_ID": str(APP_ID),
                "GITHUB_APP_PRIVATE_KEY": github_app_key.private_pem,
                "OGDC_RECONCILE_SECONDS": "3600",
            }
        )
        app = create_app(settings)
        app[SUPERVISOR] = Supervisor(Health(clock=lambda: time.monotonic() + moved[0]))
        client: TestClient = await aiohttp_client(app)

        async def readiness() -> tuple[int, str]:
            async with client.get("/readyz") as answer:
                return answer.status, (await answer.json()).get("detail", "")

        moved[0] = stall_bound(3600) + 60  # every heartbeat overdue; the worker's beats again

        async def only_reconcile_overdue() -> bool:
            """503 for the stuck run alone, once the worker has polled under the moved clock."""
            status, detail = await readiness()
            ours = f"Background work is not running: {RECONCILED} has not happened"
            return status == 503 and detail.startswith(ours) and ";" not in detail

        await wait_for(only_reconcile_overdue, what="/readyz to name the stuck run alone")

        async def ready() -> bool:
            return (await readiness())[0] == 200

        # GitHub answers at last (504), the run ends as an error and beats: ready again
        await wait_for(ready, within=HUNG_SECONDS + 45, what="/readyz after the run ended")
        assert github.requests_to("GET", r"^/app/hook/deliveries")[0].status == 504
    finally:
        await github.stop()
