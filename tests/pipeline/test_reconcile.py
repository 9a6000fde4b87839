"""Missed deliveries, end to end: GitHub's record of what it sent is compared with what the
service stored, and what never arrived is redelivered (App and repository webhooks) or found
as a moved branch head (token mode without webhook access)."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import pytest
from prometheus_client.parser import text_string_to_metric_families

from ogdc_hooks.pipeline.reconcile import RECONCILE_LOCK_KEY
from tests.fakes.argo import FakeArgo
from tests.fakes.github import FakeGitHub, Fault
from tests.fakes.github_hooks import Target
from tests.pipeline.conftest import (
    APP_ID,
    KNOWN_LOGIN,
    META,
    REPO,
    SCRIPT,
    SECRET,
    Stack,
    push_payload,
    running_stack,
    wait_for,
)
from tests.support.gitserver import GitServer
from tests.support.postgres import PostgresServer
from tests.support.service import Service

HOUR = 3600.0


def _recipe(git: GitServer, name: str = "sea-ice", note: str = "") -> str:
    return git.commit(
        "recipes", {f"recipes/{name}/meta.yml": META, f"recipes/{name}/recipe.sh": note + SCRIPT}
    )


def _history(git: GitServer) -> tuple[str, str]:
    git.create_repo("recipes")
    before = git.commit("recipes", {"README.md": "recipes\n"})
    return before, _recipe(git)


async def _metric(stack: Stack, name: str, **labels: str) -> float:
    async with stack.session.get(stack.service.url + "/metrics") as answer:
        text = await answer.text()
    return sum(
        sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items())
    )


async def _runs_at_least(stack: Stack, count: int, outcome: str = "ok") -> None:
    async def done() -> object:
        return await _metric(stack, "ogdc_reconcile_runs_total", outcome=outcome) >= count

    await wait_for(done, within=60, what=f"{count} reconcile run(s) ending {outcome}")


def _events(service: Service, event: str) -> list[dict[str, object]]:
    return [line for line in service.log_lines() if line.get("message") == event]


@contextlib.asynccontextmanager
async def _app_stack(
    env: dict[str, str], github: FakeGitHub, argo: FakeArgo, git: GitServer, **settings: str
) -> AsyncIterator[tuple[Stack, Any]]:
    """The App-mode service, and the App's webhook delivering to it."""
    service = Service({**env, **settings})
    hook = github.set_app_webhook(APP_ID, lambda: service.url + "/webhooks/github", SECRET)
    async with running_stack(service.env, github, argo, git, service) as stack:
        yield stack, hook


async def test_a_push_the_service_never_got_is_redelivered_at_start_and_checked(
    stack_env: dict[str, str], github: FakeGitHub, fake_argo: FakeArgo, git_server: GitServer
) -> None:
    before, after = _history(git_server)
    service = Service(stack_env)
    hook = github.set_app_webhook(APP_ID, lambda: service.url + "/webhooks/github", SECRET)
    payload = push_payload(git_server, before=before, after=after)
    lost = await github.send_webhook("push", payload, reachable=False)  # the service is down
    assert not lost.succeeded

    async with running_stack(stack_env, github, fake_argo, git_server, service) as stack:
        [name] = await wait_for(lambda: fake_argo.created, within=60, what="a workflow")
        fake_argo.set_phase(name, "Succeeded")
        done = await stack.check_completed(after, "ogdc/recipes/sea-ice")
        assert done.conclusion == "success"

        first, again = github.webhooks.of_hook(hook.hook_id, lost.guid)
        assert (first.redelivery, again.redelivery, again.succeeded) == (False, True, True)
        assert await _metric(stack, "ogdc_reconcile_deliveries_recovered_total") == 1
        [logged] = _events(stack.service, "delivery_redelivered")
        assert logged["guid"] == lost.guid


async def test_stored_deliveries_are_not_redelivered_and_none_is_asked_for_twice(
    stack_env: dict[str, str], github: FakeGitHub, fake_argo: FakeArgo, git_server: GitServer
) -> None:
    before, after = _history(git_server)
    service = Service({**stack_env, "OGDC_RECONCILE_SECONDS": "1"})
    route = ["/not-a-route"]  # redeliveries fail (404) until the test says otherwise
    hook = github.set_app_webhook(APP_ID, lambda: service.url + route[0], SECRET)
    async with running_stack(service.env, github, fake_argo, git_server, service) as stack:
        # GitHub saw this one fail (the answer was lost), but the service stored it.
        payload = push_payload(git_server, before=before, after=after)
        stored = await github.send_webhook("push", payload, reachable=False)
        assert (await stack.deliver(payload, delivery=stored.guid))[0] == 202
        # This one never arrived, and its one redelivery fails too.
        other = _recipe(git_server, "other")
        missed = await github.send_webhook(
            "push", push_payload(git_server, before=after, after=other), reachable=False
        )

        await _runs_at_least(stack, 3)
        assert len(github.webhooks.of_hook(hook.hook_id, stored.guid)) == 1
        attempts = github.webhooks.of_hook(hook.hook_id, missed.guid)
        assert [a.redelivery for a in attempts] == [False, True]
        assert not attempts[1].succeeded
        assert len(github.requests_to("POST", r"^/app/hook/deliveries/\d+/attempts$")) == 1


async def test_listing_pages_by_cursor_and_stops_at_the_lookback(
    stack_env: dict[str, str], github: FakeGitHub, fake_argo: FakeArgo, git_server: GitServer
) -> None:
    before, after = _history(git_server)
    service = Service({**stack_env, "OGDC_RECONCILE_LOOKBACK_HOURS": "24"})
    hook = github.set_app_webhook(APP_ID, lambda: service.url + "/webhooks/github", SECRET)
    now = github.clock()
    too_old = await github.send_webhook(
        "push",
        push_payload(git_server, before=before, after=after),
        reachable=False,
        at=now - 30 * HOUR,
    )
    lost = await github.send_webhook(
        "push", push_payload(git_server, before=before, after=after), reachable=False, at=now - HOUR
    )
    for _ in range(150):  # newer, and not events the service handles
        await github.send_webhook("issues", {"action": "opened"}, reachable=False)

    async with running_stack(service.env, github, fake_argo, git_server, service) as stack:
        await _runs_at_least(stack, 1)
        pages = github.requests_to("GET", r"^/app/hook/deliveries")
        assert len(pages) == 2
        assert "cursor=" in pages[1].path and "per_page=100" in pages[0].path
        redelivered = github.requests_to("POST", r"^/app/hook/deliveries/\d+/attempts$")
        assert [r.path for r in redelivered] == [f"/app/hook/deliveries/{lost.id}/attempts"]
        assert len(github.webhooks.of_hook(hook.hook_id, too_old.guid)) == 1


async def test_github_failing_ends_a_run_and_the_next_one_recovers(
    stack_env: dict[str, str], github: FakeGitHub, fake_argo: FakeArgo, git_server: GitServer
) -> None:
    before, after = _history(git_server)
    github.inject(Fault.server_error(502), path=r"^/app/hook/deliveries", method="GET")
    github.inject(Fault.too_many_requests(retry_after=1), path=r"/attempts$", method="POST")
    async with _app_stack(stack_env, github, fake_argo, git_server, OGDC_RECONCILE_SECONDS="1") as (
        stack,
        hook,
    ):
        lost = await github.send_webhook(
            "push", push_payload(git_server, before=before, after=after), reachable=False
        )
        await wait_for(lambda: stack.checks(after), within=60, what="the push's check")
        assert await _metric(stack, "ogdc_reconcile_runs_total", outcome="error") >= 2
        attempts = github.webhooks.of_hook(hook.hook_id, lost.guid)
        assert [a.redelivery for a in attempts] == [False, True]


@pytest.fixture
async def other_replica(postgres: PostgresServer, database: str) -> AsyncIterator[Any]:
    """A session on the test's database, as another replica's would be."""
    connection = await asyncpg.connect(postgres.dsn(database))
    yield connection
    await connection.close()


async def test_while_another_replica_reconciles_this_one_skips(
    stack_env: dict[str, str],
    github: FakeGitHub,
    fake_argo: FakeArgo,
    git_server: GitServer,
    other_replica: Any,
) -> None:
    before, after = _history(git_server)
    await other_replica.execute("SELECT pg_advisory_lock($1)", RECONCILE_LOCK_KEY)
    async with _app_stack(stack_env, github, fake_argo, git_server, OGDC_RECONCILE_SECONDS="1") as (
        stack,
        hook,
    ):
        lost = await github.send_webhook(
            "push", push_payload(git_server, before=before, after=after), reachable=False
        )
        await _runs_at_least(stack, 2, outcome="skipped")
        assert github.requests_to("GET", r"^/app/hook/deliveries") == []
        await other_replica.execute("SELECT pg_advisory_unlock($1)", RECONCILE_LOCK_KEY)

        def redelivered() -> object:
            return len(github.webhooks.of_hook(hook.hook_id, lost.guid)) == 2

        await wait_for(redelivered, within=60, what="the redelivery once the lock is free")


async def test_zero_seconds_turns_reconciling_off(
    stack_env: dict[str, str], github: FakeGitHub, fake_argo: FakeArgo, git_server: GitServer
) -> None:
    before, after = _history(git_server)
    async with _app_stack(stack_env, github, fake_argo, git_server, OGDC_RECONCILE_SECONDS="0") as (
        stack,
        _,
    ):
        await github.send_webhook(
            "push", push_payload(git_server, before=before, after=after), reachable=False
        )
        assert _events(stack.service, "reconcile_off")
        # A push delivered now is handled; the lost one never is.
        later = _recipe(git_server, "later")
        await stack.deliver(push_payload(git_server, before=after, after=later))
        await wait_for(lambda: stack.checks(later), within=60, what="the delivered push's check")
        assert github.requests_to("GET", r"^/app/hook/deliveries") == []
        assert await _metric(stack, "ogdc_reconcile_runs_total") == 0


@contextlib.asynccontextmanager
async def _token_stack(
    app_env: dict[str, str], argo: FakeArgo, git: GitServer, *, hooks: bool
) -> AsyncIterator[tuple[Stack, FakeGitHub, Target | None]]:
    """The service in token mode (reconciling every second) and its own fake GitHub, whose
    token may read the repository's webhooks (and then has ours) or not."""
    github = FakeGitHub()
    await github.start()
    token = github.add_token(hooks=hooks)
    github.add_repository(REPO)
    env = {k: v for k, v in app_env.items() if not k.startswith("GITHUB_APP_")}
    env.update(GITHUB_API_URL=github.url, GITHUB_TOKEN=token, OGDC_RECONCILE_SECONDS="1")
    service = Service(env)
    hook = (
        github.add_repository_hook(REPO, lambda: service.url + "/webhooks/github", SECRET)
        if hooks
        else None
    )
    try:
        async with running_stack(env, github, argo, git, service) as stack:
            yield stack, github, hook
    finally:
        await github.stop()


def _token_payload(git: GitServer, before: str, after: str) -> dict[str, Any]:
    payload = push_payload(git, before=before, after=after)
    del payload["installation"]
    return payload


async def test_token_mode_redelivers_through_a_readable_repository_webhook(
    stack_env: dict[str, str], fake_argo: FakeArgo, git_server: GitServer
) -> None:
    before, after = _history(git_server)
    async with _token_stack(stack_env, fake_argo, git_server, hooks=True) as (stack, github, hook):
        assert hook is not None
        payload = _token_payload(git_server, before, after)
        seen = await github.send_webhook("push", payload, hook=hook)
        assert seen.succeeded
        await wait_for(lambda: github.statuses, within=60, what="the first push's status")
        other = _recipe(git_server, "other")
        lost = await github.send_webhook(
            "push", _token_payload(git_server, after, other), hook=hook, reachable=False
        )

        def other_reported() -> object:
            return github.status_history(REPO, other, "ogdc/recipes/other")

        await wait_for(other_reported, within=60, what="the lost push's status")
        attempts = github.webhooks.of_hook(hook.hook_id, lost.guid)
        assert [a.redelivery for a in attempts] == [False, True]
        assert github.requests_to("POST", rf"^/repos/{REPO}/hooks/{hook.hook_id}/deliveries/")
        assert await _metric(stack, "ogdc_reconcile_heads_swept_total") == 0


@contextlib.asynccontextmanager
async def _swept_stack(
    app_env: dict[str, str], argo: FakeArgo, git: GitServer
) -> AsyncIterator[tuple[Stack, FakeGitHub]]:
    """Token mode without webhook access, after one push the service got and handled."""
    before, after = _history(git)
    async with _token_stack(app_env, argo, git, hooks=False) as (stack, github, _):
        await stack.deliver(_token_payload(git, before, after))
        await wait_for(lambda: argo.created, within=60, what="the first push's workflow")
        yield stack, github


async def test_token_mode_without_webhook_access_sweeps_the_missed_head(
    stack_env: dict[str, str], fake_argo: FakeArgo, git_server: GitServer
) -> None:
    async with _swept_stack(stack_env, fake_argo, git_server) as (stack, github):
        # Pushed while no webhook reached the service: only the branch head tells.
        missed = _recipe(git_server, "glaciers")
        github.repositories[REPO].authors[missed] = KNOWN_LOGIN.lower()

        def swept() -> object:
            return github.status_history(REPO, missed, "ogdc/recipes/glaciers")

        await wait_for(swept, within=60, what="the swept head's status")
        names = await wait_for(lambda: fake_argo.created[1:], what="the swept workflow")
        assert len(names) == 1
        [run] = await stack.runs(commit=missed)  # diffed: sea-ice did not change
        assert (run["recipe"], run["requested_by"]) == ("recipes/glaciers", "author")
        assert await _metric(stack, "ogdc_reconcile_heads_swept_total") == 1
        connection = await stack.database()
        try:
            answers = await connection.fetch("SELECT id, answer FROM deliveries")
        finally:
            await connection.close()
        # no forge sent the swept push: the admin page must not say it was answered
        by_answer = {row["answer"]: row["id"] for row in answers}
        assert sorted(by_answer) == ["accepted", "swept"] and len(answers) == 2
        assert by_answer["swept"].startswith("sweep-")
        assert github.requests_to("GET", rf"^/repos/{REPO}/hooks")  # asked, refused: 404
        await _runs_at_least(stack, 4)
        assert len(fake_argo.created) == 2  # later runs find nothing new


async def test_a_swept_head_by_an_unknown_author_is_refused_with_the_reason(
    stack_env: dict[str, str], fake_argo: FakeArgo, git_server: GitServer
) -> None:
    async with _swept_stack(stack_env, fake_argo, git_server) as (stack, github):
        missed = _recipe(git_server, "glaciers")  # GitHub links its author to no account

        def refused() -> list[Any]:
            return github.status_history(REPO, missed, "ogdc")

        [status] = await wait_for(refused, within=60, what="the refusal")
        assert status.state == "failure"
        [run] = await stack.runs(commit=missed)
        assert "sweep" in str(run["message"]) and "no GitHub account" in str(run["message"])
        assert len(fake_argo.created) == 1
