"""`POST /webhooks/github` on the real service: every answer GitHub can get, and nothing
acknowledged that was not stored."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import aiohttp
import pytest

from tests.support.postgres import PostgresServer
from tests.support.service import DEFAULT_SECRETS, Service
from tests.webhooks.signing import signed_delivery
from tests.webhooks.test_events import PUSH, SECRET


@pytest.fixture
async def service(db_env: dict[str, str]) -> AsyncIterator[Service]:
    running = Service(
        {**db_env, **DEFAULT_SECRETS, "GITHUB_WEBHOOK_SECRET": SECRET, "OGDC_WORKER_SLOTS": "0"}
    )
    await asyncio.to_thread(running.start)
    yield running
    await asyncio.to_thread(running.stop)


async def _post(url: str, headers: dict[str, str], body: bytes) -> tuple[int, dict[str, str]]:
    async with (
        aiohttp.ClientSession() as session,
        session.post(url + "/webhooks/github", data=body, headers=headers) as answer,
    ):
        return answer.status, await answer.json()


async def test_every_answer(service: Service) -> None:
    url = service.url
    headers, body = signed_delivery(PUSH, SECRET, delivery="first")
    assert await _post(url, headers, body) == (202, {"detail": "accepted", "delivery": "first"})
    assert (await _post(url, headers, body))[1]["detail"] == "already received"

    ping_headers, ping = signed_delivery({"zen": "Design for failure."}, SECRET, event="ping")
    assert (await _post(url, ping_headers, ping))[1]["detail"] == "pong"

    tag_headers, tag = signed_delivery(PUSH | {"ref": "refs/tags/v1"}, SECRET)
    status, answer = await _post(url, tag_headers, tag)
    assert (status, answer["detail"]) == (200, "push event ignored")

    wrong = dict(headers, **{"X-Hub-Signature-256": "sha256=" + "0" * 64})
    assert (await _post(url, wrong, body))[0] == 401
    unsigned = {k: v for k, v in headers.items() if k != "X-Hub-Signature-256"}
    assert (await _post(url, unsigned, body))[0] == 401

    bad_headers, bad = signed_delivery(b"{not json", SECRET)
    status, answer = await _post(url, bad_headers, bad)
    assert status == 400
    assert "malformed JSON" in answer["detail"]

    huge = b'{"pad": "' + b"x" * (25 * 1024 * 1024) + b'"}'
    huge_headers, _ = signed_delivery(huge, SECRET)
    assert (await _post(url, huge_headers, huge))[0] == 413


async def test_no_secret_means_503_for_everything(db_env: dict[str, str]) -> None:
    service = Service({**db_env, **DEFAULT_SECRETS, "OGDC_WORKER_SLOTS": "0"})
    await asyncio.to_thread(service.start)
    try:
        headers, body = signed_delivery(PUSH, SECRET)
        status, answer = await _post(service.url, headers, body)
        assert status == 503
        assert "GITHUB_WEBHOOK_SECRET" in answer["detail"]
    finally:
        await asyncio.to_thread(service.stop)


async def test_database_down_is_503_never_202(
    service: Service, postgres: PostgresServer, database: str
) -> None:
    await asyncio.to_thread(postgres.drop_database, database)
    headers, body = signed_delivery(PUSH, SECRET, delivery="lost?")
    status, answer = await _post(service.url, headers, body)
    assert status == 503, answer
    # An ignored event needs no database: still 200, its record missed and said so.
    tag_headers, tag = signed_delivery(PUSH | {"ref": "refs/tags/v1"}, SECRET, delivery="tag")
    status, answer = await _post(service.url, tag_headers, tag)
    assert (status, answer["detail"]) == (200, "push event ignored")
    assert "webhook_ignored_not_recorded" in service.log_text()


async def test_signed_hostile_payloads_are_400_without_a_traceback(service: Service) -> None:
    nul_name = {**PUSH, "repository": {**PUSH["repository"], "full_name": "qgnet/re\x00cipes"}}
    cases = [
        (b"[" * 100_000, "nested too deeply"),
        (b'{"after": ' + b"9" * 5000 + b"}", "a number is too long"),
        (nul_name, "repository.full_name must not contain a NUL"),
    ]
    for payload, words in cases:
        headers, body = signed_delivery(payload, SECRET)
        status, answer = await _post(service.url, headers, body)
        assert (status, words in answer["detail"]) == (400, True), answer
    log = service.log_text()
    assert "Traceback" not in log and "unhandled error" not in log
