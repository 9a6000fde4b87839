"""The fake Forgejo keeps Forgejo's rules: a test of the service against it is only as good
as these."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import subprocess
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from tests.fakes.forgejo import DESCRIPTION_BYTES, FakeForgejo, fake_forgejo, rate_limited

__all__ = ["fake_forgejo"]

REPO = "polar/recipes"


@pytest.fixture
async def forgejo(fake_forgejo: FakeForgejo) -> FakeForgejo:
    fake_forgejo.add_repository(REPO)
    return fake_forgejo


async def _call(
    fake: FakeForgejo, method: str, path: str, token: str | None = None, body: Any = None
) -> tuple[int, Any]:
    headers = {"Authorization": f"token {token}"} if token else {}
    async with (
        aiohttp.ClientSession() as session,
        session.request(method, f"{fake.url}/api/v1{path}", json=body, headers=headers) as answer,
    ):
        return answer.status, await answer.json(content_type=None) if await answer.read() else None


def _commit(fake: FakeForgejo) -> str:
    return fake.git.commit(REPO, {"recipes/a/meta.yml": "name: a\n"})


async def test_a_status_is_recorded_trimmed_with_its_state_under_status(
    forgejo: FakeForgejo,
) -> None:
    token = forgejo.add_token("polar")
    sha = _commit(forgejo)
    body = {"state": "pending", "context": " ogdc/a ", "description": " Queued ", "target_url": ""}
    status, answer = await _call(forgejo, "POST", f"/repos/{REPO}/statuses/{sha}", token, body)
    assert status == 201
    assert answer["status"] == "pending"
    [recorded] = forgejo.status_history(REPO, sha)
    assert (recorded.context, recorded.description) == ("ogdc/a", "Queued")


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ({"state": "neutral", "context": "c"}, 422),  # not one of the five states
        ({"context": "c"}, 422),  # no state at all
        ({"state": "success", "description": 5}, 422),
        ({"state": "success", "description": "x" * (DESCRIPTION_BYTES + 1)}, 500),
    ],
)
async def test_a_status_body_is_checked(
    forgejo: FakeForgejo, body: dict[str, Any], expected: int
) -> None:
    token = forgejo.add_token("polar")
    sha = _commit(forgejo)
    status, _ = await _call(forgejo, "POST", f"/repos/{REPO}/statuses/{sha}", token, body)
    assert status == expected
    assert forgejo.status_history(REPO, sha) == []


async def test_a_status_on_a_commit_the_repository_lacks_is_a_server_error(
    forgejo: FakeForgejo,
) -> None:
    token = forgejo.add_token("polar")
    status, answer = await _call(
        forgejo, "POST", f"/repos/{REPO}/statuses/{'b' * 40}", token, {"state": "success"}
    )
    assert status == 500
    assert "GetCommit" in answer["message"]


async def test_statuses_need_a_known_token_with_write_scope_and_write_access(
    forgejo: FakeForgejo,
) -> None:
    sha = _commit(forgejo)
    path, body = f"/repos/{REPO}/statuses/{sha}", {"state": "success"}
    assert (await _call(forgejo, "POST", path, None, body))[0] == 401
    assert (await _call(forgejo, "POST", path, "not-a-token", body))[0] == 401
    reader = forgejo.add_token("polar", scopes=("read:repository",))
    assert (await _call(forgejo, "POST", path, reader, body))[0] == 403
    forgejo.grant(REPO, "visitor", "read")
    visitor = forgejo.add_token("visitor")
    assert (await _call(forgejo, "POST", path, visitor, body))[0] == 403
    stranger = forgejo.add_token("stranger")
    assert (await _call(forgejo, "POST", path, stranger, body))[0] == 404  # private: unseen


async def test_the_repository_names_its_default_branch_and_urls_on_the_same_origin(
    forgejo: FakeForgejo,
) -> None:
    token = forgejo.add_token("polar", scopes=("read:repository",))
    status, answer = await _call(forgejo, "GET", f"/repos/{REPO}", token)
    assert status == 200
    assert answer["default_branch"] == "main"
    assert answer["clone_url"] == f"{forgejo.url}/{REPO}.git"
    assert answer["html_url"] == f"{forgejo.url}/{REPO}"
    assert (await _call(forgejo, "GET", "/repos/polar/missing", token))[0] == 404


async def test_permission_is_for_admins_or_about_oneself(forgejo: FakeForgejo) -> None:
    forgejo.grant(REPO, "writer", "write")
    writer = forgejo.add_token("writer")
    owner = forgejo.add_token("polar")
    path = f"/repos/{REPO}/collaborators/{{}}/permission"
    assert (await _call(forgejo, "GET", path.format("writer"), owner))[1]["permission"] == "write"
    assert (await _call(forgejo, "GET", path.format("Writer"), writer))[1]["permission"] == "write"
    assert (await _call(forgejo, "GET", path.format("polar"), writer))[0] == 403
    assert (await _call(forgejo, "GET", path.format("nobody"), owner))[0] == 404
    forgejo.add_user("onlooker")
    assert (await _call(forgejo, "GET", path.format("onlooker"), owner))[1]["permission"] == "none"


async def test_injected_faults_answer_first(forgejo: FakeForgejo) -> None:
    token = forgejo.add_token("polar")
    forgejo.inject(rate_limited(7), path=r"^/repos/")
    async with (
        aiohttp.ClientSession() as session,
        session.get(
            f"{forgejo.url}/api/v1/repos/{REPO}", headers={"Authorization": f"token {token}"}
        ) as answer,
    ):
        assert (answer.status, answer.headers["Retry-After"]) == (429, "7")
    assert (await _call(forgejo, "GET", f"/repos/{REPO}", token))[0] == 200


def _clone(url: str, target: Path, header: str | None = None) -> subprocess.CompletedProcess[str]:
    config = ["-c", f"http.extraHeader=Authorization: {header}"] if header else []
    return subprocess.run(
        ["git", *config, "clone", "--quiet", url, str(target)],
        capture_output=True,
        text=True,
        check=False,
        env={"GIT_TERMINAL_PROMPT": "0", "PATH": "/usr/bin:/bin", "HOME": str(target.parent)},
    )


async def test_git_serves_a_private_repository_to_a_token_in_basic_auth(
    forgejo: FakeForgejo, tmp_path: Path
) -> None:
    sha = _commit(forgejo)
    token = forgejo.add_token("polar")
    url = forgejo.clone_url(REPO)
    refused = await asyncio.to_thread(_clone, url, tmp_path / "anonymous")
    assert refused.returncode != 0
    basic = "Basic " + base64.b64encode(f"oauth2:{token}".encode()).decode()
    cloned = await asyncio.to_thread(_clone, url, tmp_path / "with-token", basic)
    assert cloned.returncode == 0, cloned.stderr
    head = (tmp_path / "with-token" / ".git" / "HEAD").read_text()
    assert "main" in head
    assert (
        sha
        in subprocess.run(
            ["git", "rev-parse", "HEAD"],
            cwd=tmp_path / "with-token",
            check=True,
            capture_output=True,
            text=True,
        ).stdout
    )


async def test_webhooks_carry_every_header_signed_as_forgejo_signs(forgejo: FakeForgejo) -> None:
    received: list[tuple[dict[str, str], bytes]] = []

    async def hook(request: web.Request) -> web.Response:
        received.append((dict(request.headers), await request.read()))
        return web.json_response({"ok": True})

    app = web.Application()
    app.router.add_post("/hook", hook)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    host, port = runner.addresses[0][:2]
    try:
        before = _commit(forgejo)
        after = forgejo.git.commit(REPO, {"recipes/a/meta.yml": "name: b\n"})
        payload = forgejo.push_payload(REPO, before=before, after=after, pusher="polar")
        answer = await forgejo.send_webhook(f"http://{host}:{port}/hook", "s3cret", "push", payload)
    finally:
        await runner.cleanup()
    assert answer.status == 200
    [(headers, body)] = received
    digest = hmac.new(b"s3cret", body, hashlib.sha256).hexdigest()
    assert headers["X-Forgejo-Signature"] == headers["X-Gitea-Signature"] == digest
    assert headers["X-Hub-Signature-256"] == f"sha256={digest}"
    assert headers["X-Forgejo-Event"] == headers["X-GitHub-Event"] == "push"
    assert headers["X-Forgejo-Delivery"] == headers["X-Gitea-Delivery"]
    assert b'\n  "ref": "refs/heads/main"' in body  # MarshalIndent's two spaces
    assert "created" not in payload and "forced" not in payload
    assert payload["pusher"]["login"] == payload["pusher"]["username"] == "polar"
    assert payload["total_commits"] == 1 and payload["commits"][0]["id"] == after


async def test_push_payloads_list_at_most_five_commits(forgejo: FakeForgejo) -> None:
    base = _commit(forgejo)
    for n in range(7):
        after = forgejo.git.commit(REPO, {"recipes/a/meta.yml": f"name: {n}\n"})
    payload = forgejo.push_payload(REPO, before=base, after=after, pusher="polar")
    assert payload["total_commits"] == 7
    assert len(payload["commits"]) == 5
