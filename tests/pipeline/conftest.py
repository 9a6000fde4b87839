"""The whole pipeline end to end: the real service process, real PostgreSQL, real git over
HTTP, and the fake GitHub and Argo servers, all talking HTTP to each other."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import aiohttp
import asyncpg
import pytest

from tests.fakes.argo import FakeArgo, fake_argo
from tests.fakes.github import AppKey, FakeGitHub, github_app_key
from tests.support.gitserver import GitServer, git_server
from tests.support.service import DEFAULT_SECRETS, Service
from tests.support.waiting import wait_for
from tests.webhooks.signing import signed_delivery

__all__ = ["fake_argo", "git_server", "github_app_key", "wait_for"]

SECRET = "webhook-secret-for-tests"
APP_ID = 5151
INSTALLATION_ID = 808
REPO = "qgnet/recipes"
KNOWN_LOGIN = "Recipe-Author"  # stored differently cased than GitHub sends it below

META = """\
name: "Sea Ice Test"
workflow:
  type: shell
input:
  params:
    - type: url
      value: "https://data.example.org/ice/N_202309_concentration.tif"
output:
  type: temporary
"""
SCRIPT = "gdalinfo /input_dir/*.tif > /output_dir/info.txt\n"


def push_payload(
    git: GitServer,
    *,
    before: str,
    after: str,
    branch: str = "main",
    sender: str = "recipe-author",
    forced: bool = False,
) -> dict[str, Any]:
    """A push event as GitHub sends it (the fields ogdc-hooks reads, and some it does not)."""
    return {
        "ref": f"refs/heads/{branch}",
        "before": before,
        "after": after,
        "created": before == "0" * 40,
        "deleted": False,
        "forced": forced,
        "compare": f"https://github.com/{REPO}/compare/{before[:12]}...{after[:12]}",
        "commits": [{"id": after, "message": "change recipes", "added": [], "modified": []}],
        "head_commit": {"id": after, "message": "change recipes"},
        "repository": {
            "id": 1,
            "name": REPO.split("/")[1],
            "full_name": REPO,
            "private": False,
            "owner": {"login": REPO.split("/", maxsplit=1)[0]},
            "clone_url": git.clone_url("recipes"),
            "default_branch": "main",
        },
        "pusher": {"name": sender, "email": f"{sender}@example.org"},
        "sender": {"login": sender, "id": 99, "type": "User"},
        "installation": {"id": INSTALLATION_ID},
    }


@dataclass
class Stack:
    """The service and every server it talks to, with the helpers the tests share."""

    service: Service
    github: FakeGitHub
    argo: FakeArgo
    git: GitServer
    session: aiohttp.ClientSession
    admin_token: str = ""

    async def deliver(
        self, payload: dict[str, Any], event: str = "push", delivery: str | None = None
    ) -> tuple[int, dict[str, Any]]:
        headers, body = signed_delivery(payload, SECRET, event=event, delivery=delivery)
        async with self.session.post(
            self.service.url + "/webhooks/github", data=body, headers=headers
        ) as answer:
            return answer.status, await answer.json()

    async def api(self, method: str, path: str, **kwargs: Any) -> tuple[int, Any]:
        if not self.admin_token:
            form = {"username": "admin", "password": DEFAULT_SECRETS["OGDC_ADMIN_PASSWORD"]}
            async with self.session.post(self.service.url + "/token", data=form) as answer:
                self.admin_token = (await answer.json())["access_token"]
        headers = {"Authorization": f"Bearer {self.admin_token}"}
        async with self.session.request(
            method, self.service.url + path, headers=headers, **kwargs
        ) as answer:
            return answer.status, await answer.json()

    async def add_user(self, name: str, github_login: str) -> None:
        status, body = await self.api(
            "POST",
            "/create_user",
            data={"username": name, "password": "a-long-password", "github_login": github_login},
        )
        assert status == 201, body

    async def add_forge_user(self, name: str, host: str, login: str) -> None:
        """A user whose only forge login is `login` on the forge at `host`."""
        user = {"username": name, "password": "a-long-password", "forge_logins": {host: login}}
        status, body = await self.api("POST", "/create_user", json=user)
        assert status == 201, body

    def checks(self, sha: str, name: str | None = None) -> list[Any]:
        return self.github.runs(REPO, sha, name)

    async def check_completed(self, sha: str, name: str, within: float = 40.0) -> Any:
        def done() -> Any:
            runs = [r for r in self.checks(sha, name) if r.status == "completed"]
            return runs[-1] if runs else None

        return await wait_for(done, within=within, what=f"check {name} on {sha[:8]} completed")

    async def database(self) -> asyncpg.Connection:
        """A connection to the service's own database (close it after use)."""
        env = self.service.env
        return await asyncpg.connect(
            host=env["OGDC_DB_HOST"],
            port=int(env["OGDC_DB_PORT"]),
            user=env["OGDC_DB_USERNAME"],
            database=env["OGDC_DB_NAME"],
        )

    async def settled(self) -> bool:
        """No job is queued or running: nothing more happens until something new arrives."""
        connection = await self.database()
        try:
            return not await connection.fetchval(
                "SELECT count(*) FROM jobs WHERE state IN ('queued', 'running')"
            )
        finally:
            await connection.close()

    def failed_tasks(self) -> set[object]:
        """The background tasks the service logged as failed, each with its traceback."""
        return {
            line.get("task")
            for line in self.service.log_lines()
            if line.get("message") == "background_task_failed" and "exception" in line
        }

    async def runs(self, **filters: str) -> list[dict[str, Any]]:
        status, page = await self.api("GET", "/runs", params={**filters, "limit": "100"})
        assert status == 200, page
        return list(page["runs"])


def github_app_env(
    github: FakeGitHub, argo: FakeArgo, key: AppKey, secret: str = SECRET
) -> dict[str, str]:
    """A service that is the GitHub App `APP_ID` of the fake GitHub and submits to the fake
    Argo (no database): the tests' and the benches' one definition of it."""
    return {
        **DEFAULT_SECRETS,
        "GITHUB_WEBHOOK_SECRET": secret,
        "GITHUB_API_URL": github.url,
        "GITHUB_APP_ID": str(APP_ID),
        "GITHUB_APP_PRIVATE_KEY": key.private_pem,
        "ARGO_WORKFLOWS_SERVICE_URL": argo.url,
        "ARGO_TOKEN": argo.token,
        "ARGO_NAMESPACE": argo.namespace,
        "ARGO_UI_URL": "https://argo.example.org",
    }


def service_env(
    db_env: dict[str, str], github: FakeGitHub, argo: FakeArgo, key: AppKey
) -> dict[str, str]:
    return {
        **db_env,
        **github_app_env(github, argo, key),
        "OGDC_ARGO_POLL_SECONDS": "1",
        "OGDC_JOB_LEASE_SECONDS": "3",  # a killed worker's jobs are taken over quickly
        "OGDC_LOG_FORMAT": "json",
    }


def fake_github(key: AppKey) -> FakeGitHub:
    """The fake GitHub (not started) with the App installed on `REPO`."""
    fake = FakeGitHub()
    fake.add_app(APP_ID, key.public_key)
    fake.add_installation(INSTALLATION_ID, app_id=APP_ID, account="qgnet", repositories=[REPO])
    return fake


@pytest.fixture
async def github(github_app_key: AppKey) -> AsyncIterator[FakeGitHub]:
    fake = fake_github(github_app_key)
    await fake.start()
    yield fake
    await fake.stop()


@pytest.fixture
def stack_env(
    db_env: dict[str, str], github: FakeGitHub, fake_argo: FakeArgo, github_app_key: AppKey
) -> dict[str, str]:
    return service_env(db_env, github, fake_argo, github_app_key)


@contextlib.asynccontextmanager
async def running_stack(
    env: dict[str, str],
    github: FakeGitHub,
    argo: FakeArgo,
    git: GitServer,
    service: Service | None = None,
) -> AsyncIterator[Stack]:
    """The service started with `env` (or `service`, not started yet), a known recipe author,
    and an empty `recipes` repo."""
    service = service or Service(env)
    await asyncio.to_thread(service.start)
    try:
        async with aiohttp.ClientSession() as session:
            stack = Stack(service, github, argo, git, session)
            await stack.add_user("author", KNOWN_LOGIN)
            git.create_repo("recipes")
            yield stack
    except BaseException:  # pytest shows what a failing test printed: the service's side
        print(f"--- service log ({service.url}) ---\n{service.log_text()}")
        raise
    finally:
        await asyncio.to_thread(service.stop)


def allowing(env: dict[str, str], *servers: str) -> dict[str, str]:
    """`env` with `/submit` allowed to fetch from the (loopback) servers at these URLs."""
    hosts = ",".join(urlsplit(url).netloc for url in servers)
    return {**env, "OGDC_SUBMIT_ALLOWED_HOSTS": hosts}


@pytest.fixture
async def stack(
    stack_env: dict[str, str], github: FakeGitHub, fake_argo: FakeArgo, git_server: GitServer
) -> AsyncIterator[Stack]:
    env = allowing(stack_env, git_server.url)
    async with running_stack(env, github, fake_argo, git_server) as running:
        yield running
