"""`/readyz` says 503, in words, while background work is down or stuck, and 200 again after.

The application runs in this process (with its real database, worker and supervisor), so the
test can add a task of its own to the supervisor's health registry that it makes fail.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

from ogdc_hooks.api.context import SUPERVISOR
from ogdc_hooks.bootstrap import create_app
from ogdc_hooks.jobs.supervise import Supervisor
from ogdc_hooks.settings import load_settings
from tests.support.service import DEFAULT_SECRETS
from tests.support.waiting import wait_for

ClientFactory = Callable[[web.Application], Any]


@pytest.fixture
async def client(aiohttp_client: ClientFactory, db_env: dict[str, str]) -> TestClient:
    settings = load_settings({**db_env, **DEFAULT_SECRETS, "OGDC_WORKER_SLOTS": "1"})
    test_client: TestClient = await aiohttp_client(create_app(settings))
    return test_client


async def _readiness(client: TestClient) -> tuple[int, str]:
    async with client.get("/readyz") as answer:
        return answer.status, (await answer.json()).get("detail", "")


async def test_readyz_is_503_while_a_background_task_waits_for_its_restart(
    client: TestClient,
) -> None:
    assert await _readiness(client) == (200, "")
    failing = asyncio.Event()

    async def broken() -> None:
        await failing.wait()
        raise ConnectionError("the database connection was lost")

    # A task of the application's registry, restarted only after 15 s or more.
    supervisor = Supervisor(client.app[SUPERVISOR].health, restart_base=30)
    async with supervisor.running({"the test's task": broken}):
        assert await _readiness(client) == (200, "")
        failing.set()

        async def down() -> tuple[int, str] | None:
            answer = await _readiness(client)
            return answer if answer[0] == 503 else None

        _, detail = await wait_for(down, what="readiness to fail")
    assert detail == (
        "Background work is not running: "
        "the test's task stopped (ConnectionError) and is being restarted."
    )
    assert await _readiness(client) == (200, "")


async def test_readyz_is_503_while_a_heartbeat_is_overdue(client: TestClient) -> None:
    health = client.app[SUPERVISOR].health
    health.expect("the test's heartbeat", within=0.0)  # overdue as soon as any time passes
    status, detail = await _readiness(client)
    assert status == 503
    assert detail.startswith("Background work is not running: the test's heartbeat has not")
    health.beat("the test's heartbeat")
    health.expect("the test's heartbeat", within=3600)
    assert await _readiness(client) == (200, "")
