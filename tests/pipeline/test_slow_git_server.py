"""One slow git server delays only its own repository: with `OGDC_JOBS_PER_REPOSITORY=2`
and three worker slots, three pushes to a repository whose git server stalls hold two
slots, and another repository's push is validated, submitted and reported meanwhile."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from tests.fakes.argo import FakeArgo
from tests.fakes.github import FakeGitHub
from tests.pipeline.conftest import (
    INSTALLATION_ID,
    META,
    SCRIPT,
    Stack,
    allowing,
    push_payload,
    running_stack,
    wait_for,
)
from tests.support.gitserver import GitServer

SLOW_REPO = "qgnet/slow-recipes"


def _slow_push(git: GitServer, before: str, after: str) -> dict[str, Any]:
    payload = push_payload(git, before=before, after=after)
    payload["repository"] |= {"name": "slow-recipes", "full_name": SLOW_REPO}
    return payload


async def _running_jobs(stack: Stack) -> dict[str, int]:
    connection = await stack.database()
    try:
        rows = await connection.fetch(
            "SELECT repository, count(*) AS n FROM jobs WHERE state = 'running' GROUP BY 1"
        )
    finally:
        await connection.close()
    return {row["repository"]: row["n"] for row in rows}


async def test_a_slow_git_server_delays_only_its_own_repository(
    stack_env: dict[str, str], github: FakeGitHub, fake_argo: FakeArgo, git_server: GitServer
) -> None:
    github.add_repository(SLOW_REPO, installation_id=INSTALLATION_ID)
    env = {**stack_env, "OGDC_WORKER_SLOTS": "3", "OGDC_JOBS_PER_REPOSITORY": "2"}
    with tempfile.TemporaryDirectory() as root:
        slow = GitServer(Path(root)).start()
        try:
            async with running_stack(
                allowing(env, git_server.url), github, fake_argo, git_server
            ) as stack:
                slow.create_repo("recipes")
                base = slow.commit("recipes", {"README.md": "slow\n"})
                slow.delay_next(1000, 60.0)  # every request stalls (the checkout timeout: 120 s)
                for n in range(3):
                    after = slow.commit("recipes", {f"recipes/r{n}/meta.yml": META})
                    assert (await stack.deliver(_slow_push(slow, base, after)))[0] == 202
                await wait_for(lambda: len(slow.requests) >= 2, what="two clones stalled")
                before = git_server.commit("recipes", {"README.md": "recipes\n"})
                after = git_server.commit(
                    "recipes",
                    {"recipes/sea-ice/meta.yml": META, "recipes/sea-ice/recipe.sh": SCRIPT},
                )
                await stack.deliver(push_payload(git_server, before=before, after=after))
                [name] = await wait_for(lambda: fake_argo.created, what="the other push submitted")
                fake_argo.set_phase(name, "Succeeded")
                done = await stack.check_completed(after, "ogdc/recipes/sea-ice")
                assert done.conclusion == "success"
                slow_key = f"{urlsplit(github.url).netloc}/{SLOW_REPO}"  # the forge's host
                assert (await _running_jobs(stack)).get(slow_key) == 2  # still stalled
                assert len(slow.requests) == 2  # the third push waits for its repository
        finally:
            slow.stop()
