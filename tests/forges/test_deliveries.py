"""GitHub's record of webhook deliveries, read and redelivered through the real client against
the fake GitHub over HTTP: paging by cursor, the lookback, the GUID of a redelivery, who may
read which webhook, and which attempts are worth redelivering."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import aiohttp
import pytest
from aiohttp import web

from ogdc_hooks.forges.github.deliveries import (
    Attempt,
    Hook,
    HookDeliveries,
    missed,
    parse_attempt,
)
from ogdc_hooks.forges.github.errors import PermanentForgeError
from ogdc_hooks.forges.github.reporter import GitHubReporter, make_reporter
from ogdc_hooks.forges.github.webhooks import HANDLED_EVENTS, parse_delivery
from ogdc_hooks.settings import Secret, Settings
from ogdc_hooks.webhooks.events import Delivery
from tests.fakes.github import FakeClock, FakeGitHub
from tests.forges.conftest import APP_ID, REPOSITORY
from tests.pipeline.conftest import wait_for

SECRET = "hook-secret"


class Receiver:
    """An intake that checks each delivery the way the service does, and keeps it."""

    def __init__(self) -> None:
        self.received: list[Delivery] = []
        self.url = ""
        self._runner: web.AppRunner | None = None

    async def _handle(self, request: web.Request) -> web.Response:
        self.received.append(parse_delivery(request.headers, await request.read(), SECRET))
        return web.json_response({"detail": "accepted"}, status=202)

    async def start(self) -> None:
        app = web.Application()
        app.router.add_post("/webhooks/github", self._handle)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        host, port = self._runner.addresses[0][:2]
        self.url = f"http://{host}:{port}/webhooks/github"

    async def stop(self) -> None:
        assert self._runner is not None
        await self._runner.cleanup()


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    intake = Receiver()
    await intake.start()
    yield intake
    await intake.stop()


def _moment(clock: FakeClock, seconds_ago: float = 0.0) -> datetime:
    return datetime.fromtimestamp(clock() - seconds_ago, UTC)


async def test_app_deliveries_are_paged_by_cursor_newest_first_until_the_lookback(
    github: FakeGitHub, app_reporter: GitHubReporter, clock: FakeClock, receiver: Receiver
) -> None:
    github.set_app_webhook(APP_ID, lambda: receiver.url, SECRET)
    sent = []
    for number in range(130):
        sent.append(await github.send_webhook("push", {"n": number}, reachable=False))
        clock.advance(1)
    deliveries = HookDeliveries(app_reporter.client)

    everything = await deliveries.attempts(Hook(), _moment(clock, 1000))
    assert [a.id for a in everything] == [d.id for d in reversed(sent)]
    pages = github.requests_to("GET", r"^/app/hook/deliveries")
    assert len(pages) == 2 and "cursor=v1_" in pages[1].path

    # GitHub lists whole seconds: the 50 newest were delivered at or after the 80th's second.
    since = datetime.fromtimestamp(int(sent[80].delivered_at), UTC)
    recent = await deliveries.attempts(Hook(), since)
    assert len(recent) == 50
    assert len(github.requests_to("GET", r"^/app/hook/deliveries")) == 3  # one page was enough


async def test_a_redelivery_is_the_same_guid_and_payload_signed_again(
    github: FakeGitHub, app_reporter: GitHubReporter, clock: FakeClock, receiver: Receiver
) -> None:
    github.set_app_webhook(APP_ID, lambda: receiver.url, SECRET)
    lost = await github.send_webhook("push", {"ref": "refs/heads/main"}, reachable=False)
    deliveries = HookDeliveries(app_reporter.client)
    [attempt] = await deliveries.attempts(Hook(), _moment(clock, 60))
    assert (attempt.guid, attempt.succeeded, attempt.redelivery) == (lost.guid, False, False)

    await deliveries.redeliver(Hook(), attempt)
    await wait_for(lambda: receiver.received, within=10, what="the redelivery")
    [arrived] = receiver.received
    assert (arrived.id, arrived.event) == (lost.guid, "push")
    assert arrived.payload == {"ref": "refs/heads/main"}
    listed = await deliveries.attempts(Hook(), _moment(clock, 60))
    assert [(a.guid, a.redelivery, a.status_code) for a in listed] == [
        (lost.guid, True, 202),
        (lost.guid, False, 502),
    ]


async def test_the_app_webhook_needs_the_apps_jwt_not_a_token(
    github: FakeGitHub, session: aiohttp.ClientSession, personal_token: str
) -> None:
    headers = {"Authorization": f"token {personal_token}", "Accept": "application/json"}
    async with session.get(github.url + "/app/hook/deliveries", headers=headers) as answer:
        assert answer.status == 401
    token_mode = make_reporter(
        Settings(github_api_url=github.url, github_token=Secret(personal_token)), session
    )
    assert token_mode is not None
    with pytest.raises(PermanentForgeError, match="App credentials"):
        await HookDeliveries(token_mode.client).attempts(Hook(), datetime.now(UTC))


async def test_repository_webhooks_need_a_token_that_may_read_them(
    github: FakeGitHub, session: aiohttp.ClientSession, receiver: Receiver
) -> None:
    ours = github.add_repository_hook(REPOSITORY, lambda: receiver.url, SECRET)
    github.add_repository_hook(REPOSITORY, lambda: "https://ci.example/hook", "other")
    plain = github.add_token()
    admin = github.add_token(hooks=True)

    def deliveries(token: str) -> HookDeliveries:
        settings = Settings(github_api_url=github.url, github_token=Secret(token))
        reporter = make_reporter(settings, session)
        assert reporter is not None
        return HookDeliveries(reporter.client)

    with pytest.raises(PermanentForgeError) as refused:
        await deliveries(plain).repository_hooks(REPOSITORY)
    assert refused.value.status == 404
    [hook] = await deliveries(admin).repository_hooks(REPOSITORY)
    assert hook == Hook(REPOSITORY, ours.hook_id)

    lost = await github.send_webhook("push", {"after": "b" * 40}, hook=ours, reachable=False)
    [attempt] = await deliveries(admin).attempts(hook, datetime.now(UTC) - timedelta(hours=1))
    await deliveries(admin).redeliver(hook, attempt)
    await wait_for(lambda: receiver.received, within=10, what="the redelivery")
    assert receiver.received[0].id == lost.guid


def _attempt(id: int, guid: str, status: int = 502, event: str = "push", **more: object) -> Attempt:
    fields: dict[str, object] = {
        "id": id,
        "guid": guid,
        "delivered_at": datetime(2026, 12, 1, 12, 0, id % 60, tzinfo=UTC),
        "redelivery": False,
        "status_code": status,
        "event": event,
        "action": None,
    }
    fields.update(more)
    return Attempt(**fields)  # type: ignore[arg-type]


def test_only_handled_guids_that_never_succeeded_are_missed() -> None:
    attempts = [
        _attempt(9, "retried", redelivery=True),
        _attempt(3, "retried"),
        _attempt(4, "recovered"),
        _attempt(8, "recovered", status=202, redelivery=True),
        _attempt(6, "issue", event="issues", action="opened"),
        _attempt(7, "rerun", event="check_run", action="rerequested"),
        _attempt(2, "created", event="check_run", action="created"),
        _attempt(1, "unanswered", status=0),
    ]
    chosen = missed(attempts, HANDLED_EVENTS)
    assert [(a.guid, a.id) for a in chosen] == [("unanswered", 1), ("rerun", 7), ("retried", 9)]


def test_an_unreadable_listed_delivery_is_skipped() -> None:
    assert parse_attempt({"id": "x", "guid": "g"}) is None
    assert parse_attempt(["not", "an", "object"]) is None
    parsed = parse_attempt(
        {
            "id": 1,
            "guid": "g",
            "delivered_at": "2026-12-01T12:00:00Z",
            "status_code": 503,
            "event": "push",
            "action": None,
        }
    )
    assert parsed is not None and not parsed.succeeded
