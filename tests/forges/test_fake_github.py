"""The fake GitHub refuses what GitHub refuses, so that passing against it means something."""

from __future__ import annotations

from typing import Any

import aiohttp
import jwt
import pytest

from ogdc_hooks.forges.github.app_auth import app_jwt, load_app_key
from ogdc_hooks.settings import Secret
from tests.fakes.github import AppKey, FakeClock, FakeGitHub, generate_app_key
from tests.forges.conftest import APP_ID, INSTALLATION_ID, REPOSITORY, SHA

HEADERS = {"User-Agent": "test", "Accept": "application/vnd.github+json"}


async def call(
    session: aiohttp.ClientSession,
    github: FakeGitHub,
    method: str,
    path: str,
    *,
    auth: str | None = None,
    body: Any = None,
    headers: dict[str, str] | None = None,
) -> tuple[int, Any]:
    sent = dict(HEADERS if headers is None else headers)
    if auth is not None:
        sent["Authorization"] = auth
    async with session.request(method, github.url + path, json=body, headers=sent) as response:
        return response.status, await response.json()


def signed(key: AppKey, claims: dict[str, Any]) -> str:
    private = load_app_key(Secret(key.private_pem))
    return jwt.encode(claims, private, "RS256")


async def installation_token(
    session: aiohttp.ClientSession, github: FakeGitHub, key: AppKey, clock: FakeClock
) -> str:
    token = app_jwt(str(APP_ID), load_app_key(Secret(key.private_pem)), clock())
    status, body = await call(
        session,
        github,
        "POST",
        f"/app/installations/{INSTALLATION_ID}/access_tokens",
        auth=f"Bearer {token}",
    )
    assert status == 201, body
    return str(body["token"])


@pytest.fixture
async def token(
    session: aiohttp.ClientSession, github: FakeGitHub, github_app_key: AppKey, clock: FakeClock
) -> str:
    return await installation_token(session, github, github_app_key, clock)


async def test_the_token_exchange_verifies_the_app_jwt(
    session: aiohttp.ClientSession, github: FakeGitHub, github_app_key: AppKey, clock: FakeClock
) -> None:
    now = int(clock())
    path = f"/app/installations/{INSTALLATION_ID}/access_tokens"
    cases = {
        "signed by another key": signed(
            generate_app_key(), {"iat": now - 60, "exp": now + 500, "iss": str(APP_ID)}
        ),
        "too long": signed(github_app_key, {"iat": now - 60, "exp": now + 660, "iss": str(APP_ID)}),
        "expired": signed(github_app_key, {"iat": now - 700, "exp": now - 5, "iss": str(APP_ID)}),
        "unknown app": signed(github_app_key, {"iat": now - 60, "exp": now + 500, "iss": "1"}),
        "issued in the future": signed(
            github_app_key, {"iat": now + 300, "exp": now + 500, "iss": str(APP_ID)}
        ),
    }
    messages = {}
    for case, token in cases.items():
        status, body = await call(session, github, "POST", path, auth=f"Bearer {token}")
        assert status == 401, case
        messages[case] = body["message"]
    assert messages["too long"] == "'Expiration time' claim ('exp') is too far in the future"
    assert messages["signed by another key"] == "A JSON web token could not be decoded"
    good = signed(github_app_key, {"iat": now - 60, "exp": now + 500, "iss": str(APP_ID)})
    assert (await call(session, github, "POST", path, auth=f"token {good}"))[0] == 401
    status, body = await call(session, github, "POST", path, auth=f"Bearer {good}")
    assert status == 201
    assert body["token"].startswith("ghs_") and body["expires_at"].endswith("Z")
    assert (
        await call(
            session, github, "POST", "/app/installations/999/access_tokens", auth=f"Bearer {good}"
        )
    )[0] == 404


async def test_every_request_needs_a_user_agent_an_accept_header_and_credentials(
    session: aiohttp.ClientSession, github: FakeGitHub, token: str
) -> None:
    path = f"/repos/{REPOSITORY}"
    assert (await call(session, github, "GET", path))[0] == 401
    assert (await call(session, github, "GET", path, auth="token ghs_unknown"))[0] == 401
    no_agent = {"Accept": "application/vnd.github+json", "User-Agent": ""}
    assert (await call(session, github, "GET", path, auth=f"token {token}", headers=no_agent))[
        0
    ] == 403
    no_accept = {"User-Agent": "test", "Accept": "text/html"}
    assert (await call(session, github, "GET", path, auth=f"token {token}", headers=no_accept))[
        0
    ] == 415
    status, body = await call(session, github, "GET", path, auth=f"Bearer {token}")
    assert status == 200 and body["default_branch"] == "main"


async def test_revoked_and_expired_tokens_are_refused(
    session: aiohttp.ClientSession, github: FakeGitHub, token: str, clock: FakeClock
) -> None:
    path = f"/repos/{REPOSITORY}"
    pat = github.add_token()
    github.revoke(pat)
    assert (await call(session, github, "GET", path, auth=f"token {pat}"))[0] == 401
    clock.advance(3601)
    status, body = await call(session, github, "GET", path, auth=f"token {token}")
    assert (status, body["message"]) == (401, "Bad credentials")


async def test_check_runs_need_a_github_app(
    session: aiohttp.ClientSession, github: FakeGitHub
) -> None:
    pat = github.add_token()
    body = {"name": "ogdc/x", "head_sha": SHA}
    status, answer = await call(
        session, github, "POST", f"/repos/{REPOSITORY}/check-runs", auth=f"token {pat}", body=body
    )
    assert (status, answer["message"]) == (403, "You must authenticate via a GitHub App.")


def annotation(**changes: Any) -> dict[str, Any]:
    item: dict[str, Any] = {
        "path": "recipes/x/meta.yml",
        "start_line": 3,
        "end_line": 3,
        "annotation_level": "failure",
        "message": "bad",
    }
    item.update(changes)
    return {k: v for k, v in item.items() if v is not None}


def output(**changes: Any) -> dict[str, Any]:
    return {"title": "t", "summary": "s", **changes}


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        ({"name": "ogdc/x", "head_sha": SHA, "status": "done"}, "is not a member"),
        ({"name": "ogdc/x", "head_sha": SHA, "status": "pending"}, "Validation Failed"),
        ({"name": "ogdc/x", "head_sha": SHA, "status": "completed"}, '"conclusion" wasn\'t'),
        ({"name": "ogdc/x", "head_sha": SHA, "conclusion": "passed"}, "is not a member"),
        (
            {"name": "ogdc/x", "head_sha": SHA, "status": "queued", "conclusion": "success"},
            "Validation Failed",
        ),
        ({"name": "", "head_sha": SHA}, "Validation Failed"),
        ({"head_sha": SHA}, '"name" wasn\'t supplied'),
        ({"name": "ogdc/x", "head_sha": "c" * 40}, "No commit found for SHA"),
        ({"name": "ogdc/x", "head_sha": "nope"}, "No commit found for SHA"),
        ({"name": "ogdc/x", "head_sha": SHA, "details_url": "ftp://x"}, "Validation Failed"),
        ({"name": "ogdc/x", "head_sha": SHA, "started_at": "yesterday"}, "not a timestamp"),
        ({"name": "ogdc/x", "head_sha": SHA, "output": {"title": "t"}}, '"summary" wasn\'t'),
        (
            {"name": "ogdc/x", "head_sha": SHA, "output": output(summary="x" * 65536)},
            "Only 65535 characters are allowed; 65536 were supplied.",
        ),
        (
            {"name": "ogdc/x", "head_sha": SHA, "output": output(text="€" * 30000)},
            "Validation Failed",
        ),
        (
            {"name": "ogdc/x", "head_sha": SHA, "output": output(annotations=[annotation()] * 51)},
            "Validation Failed",
        ),
        (
            {
                "name": "ogdc/x",
                "head_sha": SHA,
                "output": output(annotations=[annotation(path=None, annotation_level=None)]),
            },
            '"path", "annotation_level" weren\'t supplied.',
        ),
        (
            {
                "name": "ogdc/x",
                "head_sha": SHA,
                "output": output(annotations=[annotation(annotation_level="error")]),
            },
            "is not a member",
        ),
        (
            {
                "name": "ogdc/x",
                "head_sha": SHA,
                "output": output(annotations=[annotation(end_line=4, start_column=2)]),
            },
            "start_column",
        ),
    ],
)
async def test_check_runs_are_validated_like_github(
    session: aiohttp.ClientSession,
    github: FakeGitHub,
    token: str,
    body: dict[str, Any],
    fragment: str,
) -> None:
    github.repositories[REPOSITORY].commits = {SHA}
    status, answer = await call(
        session, github, "POST", f"/repos/{REPOSITORY}/check-runs", auth=f"token {token}", body=body
    )
    assert status == 422, answer
    assert fragment in answer["message"] + repr(answer.get("errors"))
    assert github.check_runs == {}


async def test_updates_replace_the_output_and_append_annotations(
    session: aiohttp.ClientSession, github: FakeGitHub, token: str
) -> None:
    auth = f"token {token}"
    create = {"name": "ogdc/x", "head_sha": SHA, "output": output(annotations=[annotation()] * 50)}
    status, created = await call(
        session, github, "POST", f"/repos/{REPOSITORY}/check-runs", auth=auth, body=create
    )
    assert status == 201 and created["status"] == "queued"
    path = f"/repos/{REPOSITORY}/check-runs/{created['id']}"
    update = {"conclusion": "failure", "output": {"summary": "s2", "annotations": [annotation()]}}
    status, updated = await call(session, github, "PATCH", path, auth=auth, body=update)
    assert status == 200
    assert (updated["status"], updated["conclusion"]) == ("completed", "failure")
    assert updated["completed_at"] is not None
    run = github.check_runs[created["id"]]
    assert run.output == {"title": "t", "summary": "s2"}
    assert len(run.annotations) == 51 and len(run.history) == 2
    status, listed = await call(
        session, github, "GET", f"{path}/annotations?per_page=100", auth=auth
    )
    assert status == 200 and len(listed) == 51


async def test_statuses_are_validated_like_github(
    session: aiohttp.ClientSession, github: FakeGitHub
) -> None:
    auth = f"token {github.add_token()}"
    path = f"/repos/{REPOSITORY}/statuses/{SHA}"
    status, answer = await call(
        session, github, "POST", path, auth=auth, body={"state": "ok", "context": "c"}
    )
    assert status == 422 and "is not a member" in answer["message"]
    status, answer = await call(
        session,
        github,
        "POST",
        path,
        auth=auth,
        body={"state": "success", "description": "d" * 141},
    )
    assert status == 422
    assert answer["errors"][0]["message"] == "description is too long (maximum is 140 characters)"
    status, _ = await call(
        session,
        github,
        "POST",
        path,
        auth=auth,
        body={"state": "success", "description": "d" * 140},
    )
    assert status == 201
    assert github.status_history(REPOSITORY, SHA, "default")[0].state == "success"


async def test_the_primary_rate_limit_runs_out(
    session: aiohttp.ClientSession, github: FakeGitHub, token: str
) -> None:
    github.rate_limit = 2
    path = f"/repos/{REPOSITORY}"
    async with session.get(
        github.url + path, headers={**HEADERS, "Authorization": f"token {token}"}
    ) as r:
        assert r.status == 200 and r.headers["X-RateLimit-Remaining"] == "1"
    assert (await call(session, github, "GET", path, auth=f"token {token}"))[0] == 200
    async with session.get(
        github.url + path, headers={**HEADERS, "Authorization": f"token {token}"}
    ) as r:
        assert r.status == 403 and (await r.json())["message"] == "API rate limit exceeded."
        assert r.headers["X-RateLimit-Remaining"] == "0"
        assert int(r.headers["X-RateLimit-Reset"]) > int(github.clock())
