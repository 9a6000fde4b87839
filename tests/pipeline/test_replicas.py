"""Two replicas on one database under 200 concurrent deliveries: one workflow per recipe and
commit, and GitHub's token mode (commit statuses) with an authenticated clone."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import uuid
from collections import Counter
from urllib.parse import urlsplit

import pytest

from tests.fakes.argo import FakeArgo
from tests.fakes.github import FakeGitHub
from tests.pipeline.conftest import (
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
from tests.support.service import DEFAULT_SECRETS, Service
from tests.webhooks.signing import signed_delivery

PUSHES = 40
DELIVERIES_PER_PUSH = 5  # 200 deliveries: each push twice under one id, three times under others


@pytest.fixture
def stack_env(stack_env: dict[str, str]) -> dict[str, str]:
    """Every push changes the same recipe and must become its own workflow, so a newer push
    must not cancel the older runs (OGDC_CANCEL_SUPERSEDED)."""
    return {**stack_env, "OGDC_CANCEL_SUPERSEDED": "false"}


async def test_two_replicas_200_concurrent_deliveries_one_workflow_each(
    stack: Stack, stack_env: dict[str, str]
) -> None:
    second = Service(stack_env)
    await asyncio.to_thread(second.start)
    try:
        tip = stack.git.commit("recipes", {"README.md": "x\n"})
        payloads = []
        for index in range(PUSHES):
            after = stack.git.commit(
                "recipes",
                {
                    "recipes/sea-ice/meta.yml": META,
                    "recipes/sea-ice/recipe.sh": f"echo {index}\n{SCRIPT}",
                },
            )
            payloads.append(push_payload(stack.git, before=tip, after=after))
            tip = after
        shared = [str(uuid.uuid4()) for _ in payloads]
        requests = []
        for payload, same_id in zip(payloads, shared, strict=True):
            for copy in range(DELIVERIES_PER_PUSH):
                delivery = same_id if copy < 2 else str(uuid.uuid4())
                requests.append((payload, delivery, copy % 2))
        replicas = [stack.service.url, second.url]

        async def send(payload: dict[str, object], delivery: str, replica: int) -> int:
            headers, body = signed_delivery(payload, SECRET, delivery=delivery)
            url = replicas[replica] + "/webhooks/github"
            async with stack.session.post(url, data=body, headers=headers) as answer:
                return answer.status

        statuses = await asyncio.gather(*(send(*request) for request in requests))
        counts = Counter(statuses)
        assert set(counts) <= {200, 202}, counts
        assert counts[202] == PUSHES * (DELIVERIES_PER_PUSH - 1)  # each shared id stored once

        await wait_for(
            lambda: len(stack.argo.created) >= PUSHES, within=240, what=f"{PUSHES} workflows"
        )
        await wait_for(stack.settled, within=120, what="every job to be done")  # no more submits
        commits = Counter(
            stack.argo.workflow(name)["metadata"]["annotations"]["ogdc/commit"]
            for name in stack.argo.created
        )
        assert len(stack.argo.created) == PUSHES
        assert set(commits.values()) == {1}
        assert set(commits) == {p["after"] for p in payloads}
    finally:
        await asyncio.to_thread(second.stop)


async def test_token_mode_reports_statuses_and_clones_with_the_token(
    db_env: dict[str, str], fake_argo: FakeArgo, git_server: GitServer
) -> None:
    github = FakeGitHub()
    await github.start()
    token = github.add_token()
    github.add_repository(REPO)
    git_server.token = token  # the repository is private: cloning needs the token
    env = {
        **db_env,
        "OGDC_JWT_SECRET_KEY": "k" * 40,
        "OGDC_ADMIN_PASSWORD": "admin-password-for-tests",
        "GITHUB_WEBHOOK_SECRET": SECRET,
        "GITHUB_API_URL": github.url,
        "GITHUB_TOKEN": token,
        "ARGO_WORKFLOWS_SERVICE_URL": fake_argo.url,
        "ARGO_TOKEN": fake_argo.token,
        "OGDC_ARGO_POLL_SECONDS": "1",
    }
    try:
        async with running_stack(env, github, fake_argo, git_server) as stack:
            before = git_server.commit("recipes", {"README.md": "x\n"})
            after = git_server.commit(
                "recipes", {"recipes/sea-ice/meta.yml": META, "recipes/sea-ice/recipe.sh": SCRIPT}
            )
            payload = push_payload(git_server, before=before, after=after)
            del payload["installation"]
            await stack.deliver(payload)
            [name] = await wait_for(lambda: fake_argo.created, what="a workflow")
            fake_argo.set_phase(name, "Succeeded")

            def final() -> object:
                history = github.status_history(REPO, after, "ogdc/recipes/sea-ice")
                return history if history and history[-1].state == "success" else None

            history = await wait_for(final, within=40, what="a success status")
            assert history[0].state == "pending"
            assert all(len(s.description or "") <= 140 for s in history)
            assert history[-1].target_url.endswith(name)
            assert token not in stack.service.log_text()
            assert any(r.authorized for r in git_server.requests)
    finally:
        await github.stop()


async def test_token_mode_an_unknown_pushers_status_says_who_and_the_command_that_lets_in(
    db_env: dict[str, str], fake_argo: FakeArgo, git_server: GitServer
) -> None:
    github = FakeGitHub()
    await github.start()
    token = github.add_token()
    github.add_repository(REPO)
    env = {
        **db_env,
        **DEFAULT_SECRETS,
        "GITHUB_WEBHOOK_SECRET": SECRET,
        "GITHUB_API_URL": github.url,
        "GITHUB_TOKEN": token,
        "ARGO_WORKFLOWS_SERVICE_URL": fake_argo.url,
        "ARGO_TOKEN": fake_argo.token,
    }
    host = urlsplit(github.url).netloc  # the fake GitHub's host:port names it among forges
    try:
        async with running_stack(env, github, fake_argo, git_server) as stack:
            before = git_server.commit("recipes", {"README.md": "x\n"})
            after = git_server.commit(
                "recipes", {"recipes/sea-ice/meta.yml": META, "recipes/sea-ice/recipe.sh": SCRIPT}
            )
            payload = push_payload(git_server, before=before, after=after, sender="Stranger")
            del payload["installation"]
            await stack.deliver(payload)
            [status] = await wait_for(
                lambda: github.status_history(REPO, after, "ogdc"), within=40, what="the refusal"
            )
            assert status.state == "failure"
            description = status.description or ""
            assert len(description) <= 140
            command = f"ogdc-hooks users update NAME --forge-login {host}:Stranger"
            assert description == (
                f"@Stranger on GitHub is not an ogdc-hooks user. An admin runs: {command}"
            )
            assert fake_argo.created == []

            # The admin does exactly what the status says, for a user named "nora".
            admin = {
                "OGDC_API_URL": stack.service.url,
                "OGDC_API_USERNAME": "admin",
                "OGDC_API_PASSWORD": DEFAULT_SECRETS["OGDC_ADMIN_PASSWORD"],
            }
            assert _cli("create-user", "nora", "nora-password", env=admin).returncode == 0
            words = command.split()[1:]
            done = _cli(*[("nora" if word == "NAME" else word) for word in words], env=admin)
            assert done.returncode == 0, done.stderr
            await stack.deliver(payload)  # a new delivery of the same push
            await wait_for(lambda: fake_argo.created, what="the push run at last")
    finally:
        await github.stop()


def _cli(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("OGDC_")}
    return subprocess.run(
        [sys.executable, "-m", "ogdc_hooks", *args],
        env={**clean, **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
