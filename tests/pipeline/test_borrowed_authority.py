"""Authority borrowed or spoofed (issue 18, items 9-13), as an attacker with an API account
would try it against the real service, real PostgreSQL, a real git server and the fakes."""

from __future__ import annotations

import socket
import uuid
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import pytest

from ogdc_hooks.pipeline.api_runs import UNREADABLE
from ogdc_hooks.pipeline.authority import NOT_ALLOWED_HOST
from tests.fakes.argo import FakeArgo
from tests.fakes.github import FakeGitHub
from tests.pipeline.conftest import (
    META,
    REPO,
    SCRIPT,
    Stack,
    allowing,
    push_payload,
    running_stack,
    wait_for,
)
from tests.support.gitserver import GitServer

MEMBER, STRANGER = "member", "stranger"
MEMBER_LOGIN, STRANGER_LOGIN = "member-gh", "stranger-gh"


def _closed_port() -> int:
    """A loopback port nobody listens on (bound, then released)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture
async def listed(
    stack_env: dict[str, str], github: FakeGitHub, fake_argo: FakeArgo, git_server: GitServer
) -> AsyncIterator[Stack]:
    """A service allowed to fetch from the git server, the fake GitHub (the forge's host),
    the fake Argo Server (HTTP, not git) and a closed port; two API users besides the admin."""
    closed = f"http://127.0.0.1:{_closed_port()}"
    env = allowing(stack_env, git_server.url, github.url, fake_argo.url, closed)
    async with running_stack(env, github, fake_argo, git_server) as stack:
        stack.closed_url = closed  # type: ignore[attr-defined]
        await stack.add_user(MEMBER, MEMBER_LOGIN)
        await stack.add_user(STRANGER, STRANGER_LOGIN)
        github.grant(REPO, MEMBER_LOGIN, "maintain")
        yield stack


async def _login(stack: Stack, name: str) -> str:
    form = {"username": name, "password": "a-long-password"}
    async with stack.session.post(stack.service.url + "/token", data=form) as answer:
        return str((await answer.json())["access_token"])


async def _submit_as(stack: Stack, token: str, body: dict[str, Any]) -> tuple[int, Any]:
    headers = {"Authorization": f"Bearer {token}"}
    async with stack.session.post(
        stack.service.url + "/submit", json=body, headers=headers
    ) as answer:
        return answer.status, await answer.json()


def _no_traceback(stack: Stack) -> None:
    log = stack.service.log_text()
    assert "Traceback" not in log and "unhandled error" not in log


async def test_submit_fetches_only_from_allowed_hosts_and_never_says_what_answered(
    stack: Stack,
) -> None:
    # The default-ish stack allows only the git server: every other loopback port is refused
    # with the same words, whether a service, an open HTTP port or nothing listens there.
    targets = [
        stack.argo.url + "/x.git",  # another HTTP service
        stack.github.url + "/qgnet/recipes.git",  # the forge's own (loopback) host, not listed
        f"http://127.0.0.1:{_closed_port()}/x.git",  # a closed port
        f"http://127.0.0.1:{stack.service.port}/x.git",  # the service itself
        "http://169.254.169.254/latest/meta-data",  # the cloud metadata address
        "http://[::1]:22/x.git",
    ]
    for url in targets:
        status, answer = await stack.api(
            "POST", "/submit", json={"recipe_path": url, "ref": "main", "path": "recipes/x"}
        )
        assert (status, answer["detail"]) == (422, NOT_ALLOWED_HOST), url
    _no_traceback(stack)


async def test_listed_hosts_that_are_not_git_look_alike(listed: Stack) -> None:
    cases = [
        listed.argo.url + "/x.git",  # an HTTP service that is not git
        listed.closed_url + "/x.git",  # type: ignore[attr-defined]
        listed.git.clone_url("no-such-repository"),  # a git server without that repository
    ]
    answers = set()
    for url in cases:
        status, answer = await listed.api(
            "POST", "/submit", json={"recipe_path": url, "ref": "main", "path": "recipes/x"}
        )
        answers.add((status, answer["detail"]))
    assert answers == {(422, UNREADABLE)}
    _no_traceback(listed)


def _git_requests(github: FakeGitHub) -> list[Any]:
    return [r for r in github.requests if "/info/refs" in r.path]


async def test_forge_credentials_go_only_to_users_who_may_act_there(listed: Stack) -> None:
    github = listed.github
    location = {"recipe_path": f"github://{REPO.replace('/', ':')}@main/recipes/sea-ice"}
    # A stranger (no access on GitHub) asks for the installed repository: fetched without
    # any credential, so a private repository stays unreadable to them.
    status, answer = await _submit_as(listed, await _login(listed, STRANGER), location)
    assert (status, answer["detail"]) == (422, UNREADABLE)
    [anonymous] = _git_requests(github)
    assert "Authorization" not in anonymous.headers
    # A member with maintain access, and the admin: the installation token is used.
    for name in (MEMBER, "admin"):
        token = await _login(listed, name if name != "admin" else MEMBER)
        if name == "admin":
            await listed.api("GET", "/user")  # logs the admin in
            token = listed.admin_token
        github.requests.clear()
        status, answer = await _submit_as(listed, token, location)
        assert (status, answer["detail"]) == (422, UNREADABLE)
        [authorised] = _git_requests(github)
        assert "Authorization" in authorised.headers, name
    # A repository the App is not installed on: no credential even for the admin.
    github.add_repository("other/private")
    github.requests.clear()
    status, _ = await listed.api(
        "POST", "/submit", json={"recipe_path": "github://other:private@main/recipes/x"}
    )
    assert status == 422
    [foreign] = _git_requests(github)
    assert "Authorization" not in foreign.headers
    _no_traceback(listed)


async def test_a_submission_outside_recipes_or_without_authority_reports_nothing(
    stack: Stack,
) -> None:
    stack.git.commit(
        "recipes",
        {
            "decoy/sea-ice/meta.yml": META,
            "decoy/sea-ice/recipe.sh": SCRIPT,
            "recipes/sea-ice/meta.yml": META,
            "recipes/sea-ice/recipe.sh": SCRIPT,
        },
    )
    url = stack.git.clone_url("recipes")
    for path in ("decoy/sea-ice", "recipes/sea-ice"):
        status, answer = await stack.api(
            "POST", "/submit", json={"recipe_path": url, "ref": "main", "path": path}
        )
        assert status == 202, answer
    runs = {run["recipe"]: run for run in await stack.runs()}
    # A plain URL is no forge repository: recorded under the URL, shown on no commit.
    assert {run["repository"] for run in runs.values()} == {url}
    assert not any(run["reports"] for run in runs.values())
    assert stack.github.check_runs == {}


async def test_a_rerun_request_counts_only_for_its_own_repository_and_only_once(
    stack: Stack,
) -> None:
    before = stack.git.commit("recipes", {"README.md": "recipes\n"})
    after = stack.git.commit(
        "recipes", {"recipes/sea-ice/meta.yml": META, "recipes/sea-ice/recipe.sh": SCRIPT}
    )
    await stack.deliver(push_payload(stack.git, before=before, after=after))
    [first] = await wait_for(lambda: stack.argo.created, what="a workflow")
    stack.argo.set_phase(first, "Failed", message="flaky node")
    check = await stack.check_completed(after, "ogdc/recipes/sea-ice")

    def rerequest(repository: str) -> dict[str, Any]:
        return {
            "action": "rerequested",
            "check_run": {"id": check.id, "external_id": check.external_id, "head_sha": after},
            "repository": {"full_name": repository},
            "sender": {"login": "recipe-author"},
            "installation": {"id": 808},
        }

    # From another repository (where the attacker has an installation): ignored.
    status, _ = await stack.deliver(rerequest("attacker/elsewhere"), event="check_run")
    assert status == 202
    await wait_for(
        lambda: "requested from another repository" in stack.service.log_text(),
        what="the foreign re-run to be ignored",
    )
    assert len(stack.argo.created) == 1
    # From its own repository: one new attempt; the same body replayed under new delivery
    # ids starts nothing more.
    assert (await stack.deliver(rerequest(REPO), event="check_run"))[0] == 202
    await wait_for(lambda: stack.argo.created[1:], what="the re-run's workflow")
    for _ in range(2):
        replay = str(uuid.uuid4())
        assert (await stack.deliver(rerequest(REPO), event="check_run", delivery=replay))[0] == 202
    await wait_for(
        lambda: stack.service.log_text().count("was started before") >= 2,
        what="both replays to be recognised",
    )
    assert sorted(r["attempt"] for r in await stack.runs(commit=after)) == [1, 2]
    assert len(stack.argo.created) == 2
    _no_traceback(stack)


async def _stored_clone_urls(db_env: dict[str, str]) -> list[str]:
    connection = await asyncpg.connect(
        host=db_env["OGDC_DB_HOST"],
        port=int(db_env["OGDC_DB_PORT"]),
        user=db_env["OGDC_DB_USERNAME"],
        password=db_env["OGDC_DB_PASSWORD"],
        database=db_env["OGDC_DB_NAME"],
    )
    try:
        return [row["clone_url"] for row in await connection.fetch("SELECT clone_url FROM runs")]
    finally:
        await connection.close()


async def test_a_password_in_a_push_clone_url_is_never_stored(
    stack: Stack, db_env: dict[str, str]
) -> None:
    before = stack.git.commit("recipes", {"README.md": "recipes\n"})
    after = stack.git.commit(
        "recipes", {"recipes/sea-ice/meta.yml": META, "recipes/sea-ice/recipe.sh": SCRIPT}
    )
    payload = push_payload(stack.git, before=before, after=after)
    clean = payload["repository"]["clone_url"]
    payload["repository"]["clone_url"] = clean.replace("http://", "http://bob:hunter2-secret@")
    await stack.deliver(payload)
    await wait_for(lambda: stack.runs(commit=after), what="the push's run")
    assert await _stored_clone_urls(db_env) == [clean]
