"""Hostile input against the real service: hostile git servers run by the test, git bombs,
unsigned floods, slow clients. Each attack gets the refusal a user reads, the service's
peak memory (VmHWM of its process) stays under `MEMORY_BOUND` where the attack used to
take gigabytes, and `/healthz` answers every probe (100 ms client timeout) meanwhile.

Limits are set small through the settings so that each attack is over in seconds.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import sys
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from ogdc_hooks.pipeline.api_runs import UNREADABLE
from tests.fakes.argo import FakeArgo
from tests.fakes.github import FakeGitHub
from tests.pipeline.conftest import (
    META,
    SCRIPT,
    Stack,
    allowing,
    push_payload,
    running_stack,
    wait_for,
)
from tests.support.gitserver import GitServer
from tests.support.hostile_git import hostile_git
from tests.support.service import Service
from tests.support.slow_clients import closed_by_peer, slow_clients

MEMORY_BOUND = 400 * 1024 * 1024  # the attacks below took 1-6 GiB before they were bounded
SMALL_LIMITS = {
    "OGDC_CLONE_MAX_FILES": "1000",
    "OGDC_GIT_MAX_REFS": "1000",
    "OGDC_GIT_TIMEOUT_SECONDS": "60",
    "OGDC_GIT_LOOKUP_TIMEOUT_SECONDS": "60",
    "OGDC_WEBHOOK_UNVERIFIED_BYTES": str(25 * 1024 * 1024),
    "OGDC_HTTP_READ_TIMEOUT_SECONDS": "2",
    "OGDC_MAX_RECIPES_PER_PUSH": "2",
}


@contextlib.asynccontextmanager
async def healthz_answers(service: Service) -> AsyncIterator[None]:
    """Probe `/healthz` every 50 ms with a 100 ms client timeout for as long as the block
    runs (`tests.support.prober`, in a process of its own); afterwards every probe must
    have answered 200 (a liveness bound, not a timing)."""
    prober = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "tests.support.prober",
        service.url + "/healthz",
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
    )
    try:
        yield
    finally:
        out, _ = await prober.communicate(b"")
    report = json.loads(out)
    failures = report["failures"]
    assert report["probes"] > 0
    assert failures == [], f"{len(failures)} of {report['probes']} probes failed: {failures[:5]}"


def peak_memory(service: Service) -> int:
    return service.memory()["VmHWM"]


@pytest.fixture
def stack_env(stack_env: dict[str, str]) -> dict[str, str]:
    """The shared stack's settings, with the small limits (the `stack` fixture uses them)."""
    return {**stack_env, **SMALL_LIMITS}


def hostile_push(stack: Stack, clone_url: str, after: str) -> dict[str, Any]:
    payload = push_payload(stack.git, before="0" * 40, after=after)
    payload["repository"]["clone_url"] = clone_url
    return payload


async def ogdc_summary(stack: Stack, sha: str) -> str:
    done = await stack.check_completed(sha, "ogdc")
    assert done.conclusion == "failure"
    return str(done.output["summary"])


async def test_a_git_bomb_gets_one_failing_check_and_no_crash_loop(stack: Stack) -> None:
    stack.git.create_repo("bomb")
    bomb = stack.git.bomb("bomb")  # 10^10 paths in a few hundred bytes
    payload = hostile_push(stack, stack.git.clone_url("bomb"), bomb)
    async with healthz_answers(stack.service):
        status, _ = await stack.deliver(payload)
        assert status == 202
        summary = await ogdc_summary(stack, bomb)
    assert "more than 1000 files" in summary and "OGDC_CLONE_MAX_FILES" in summary
    assert stack.service.process is not None and stack.service.process.poll() is None
    assert peak_memory(stack.service) < MEMORY_BOUND
    assert [r["state"] for r in await stack.runs(commit=bomb)] == ["error"]


async def test_endless_progress_noise_then_a_bad_pack_is_refused_once(stack: Stack) -> None:
    sha = stack.git.commit("recipes", {"recipes/sea-ice/meta.yml": META})
    with hostile_git("noise", upstream=stack.git.url) as hostile:
        hostile.noise_bytes = 64 * 1024 * 1024
        async with healthz_answers(stack.service):
            status, _ = await stack.deliver(hostile_push(stack, hostile.clone_url("recipes"), sha))
            assert status == 202
            summary = await ogdc_summary(stack, sha)
        fetches = [r for r in hostile.requests if r.method == "POST"]
    assert "bad pack header" in summary
    assert "remote: counting" not in summary  # the error, not the noise
    # Permanent: the job was not retried (one fetch of the pair, one of the commit alone).
    assert len(fetches) <= 2 * 2
    assert peak_memory(stack.service) < MEMORY_BOUND


@contextlib.asynccontextmanager
async def stack_allowing_hostile(
    mode: str, env: dict[str, str], github: FakeGitHub, argo: FakeArgo, git: GitServer
) -> AsyncIterator[tuple[Stack, Any]]:
    """A stack whose `/submit` may fetch from a hostile server (an operator allowed its host),
    so that the attack reaches git and not only the host check."""
    with hostile_git(mode) as hostile:
        async with running_stack(allowing(env, git.url, hostile.url), github, argo, git) as stack:
            yield stack, hostile


async def test_endless_refs_during_submit_are_counted_and_refused(
    stack_env: dict[str, str], github: FakeGitHub, fake_argo: FakeArgo, git_server: GitServer
) -> None:
    async with stack_allowing_hostile("refs", stack_env, github, fake_argo, git_server) as (
        stack,
        hostile,
    ):
        async with healthz_answers(stack.service):
            status, body = await stack.api(
                "POST",
                "/submit",
                json={"recipe_path": hostile.clone_url("recipes"), "ref": "main", "path": "r/x"},
            )
        assert status == 422, body
        assert body["detail"] == UNREADABLE  # the user learns nothing of what answered
        log = stack.service.log_text()  # the operator learns which limit stopped it
        assert "more than 1000 refs" in log and "OGDC_GIT_MAX_REFS" in log
        assert peak_memory(stack.service) < MEMORY_BOUND


async def test_unsigned_bodies_are_refused_within_the_unverified_budget(stack: Stack) -> None:
    body = b"{" + b" " * (25 * 1024 * 1024 - 10) + b"}"
    headers = {
        "X-GitHub-Event": "push",
        "X-GitHub-Delivery": "flood",
        "X-Hub-Signature-256": "sha256=" + "0" * 64,
        "Content-Type": "application/json",
    }

    async def send() -> tuple[int, str]:
        try:
            async with stack.session.post(
                stack.service.url + "/webhooks/github", data=body, headers=headers
            ) as answer:
                return answer.status, (await answer.json())["detail"]
        except aiohttp.ClientError as err:  # refused while the client was still sending
            return 0, type(err).__name__

    async with healthz_answers(stack.service):
        answers = await asyncio.gather(*(send() for _ in range(16)))
    statuses = {status for status, _ in answers}
    assert statuses <= {0, 401, 408, 503}, answers
    budget = [detail for status, detail in answers if status == 503]
    assert budget and "OGDC_WEBHOOK_UNVERIFIED_BYTES" in budget[0]
    assert peak_memory(stack.service) < MEMORY_BOUND


async def push_recipes(stack: Stack, files: dict[str, str]) -> str:
    tip = stack.git.commit("recipes", {"README.md": "x\n"})
    after = stack.git.commit("recipes", files)
    status, _ = await stack.deliver(push_payload(stack.git, before=tip, after=after))
    assert status == 202
    return after


async def test_a_meta_of_100k_unknown_keys_keeps_few_problems(stack: Stack) -> None:
    unknown = "".join(f"k{n}: 1\n" for n in range(100_000))  # just under 1 MiB
    async with healthz_answers(stack.service):
        after = await push_recipes(
            stack, {"recipes/sea-ice/meta.yml": META + unknown, "recipes/sea-ice/recipe.sh": SCRIPT}
        )
        done = await stack.check_completed(after, "ogdc/recipes/sea-ice", within=120)
    assert done.conclusion == "failure"
    [run] = await stack.runs(commit=after)
    status, detail = await stack.api("GET", f"/runs/{run['id']}")
    assert status == 200
    assert len(detail["problems"]) == 101  # OGDC_MAX_PROBLEMS' default 100, and one more
    assert "more problem(s) not shown" in detail["problems"][-1]["message"]
    async with stack.session.get(
        stack.service.url + "/runs", headers={"Authorization": f"Bearer {stack.admin_token}"}
    ) as answer:
        assert len(await answer.read()) < 100_000
    assert peak_memory(stack.service) < MEMORY_BOUND


async def test_a_recipe_of_200k_commands_is_refused_before_rendering(stack: Stack) -> None:
    script = "x\n" * 200_000
    async with healthz_answers(stack.service):
        after = await push_recipes(
            stack, {"recipes/sea-ice/meta.yml": META, "recipes/sea-ice/recipe.sh": script}
        )
        done = await stack.check_completed(after, "ogdc/recipes/sea-ice", within=120)
    assert done.conclusion == "failure"
    assert "200000 commands, more than the limit of 500" in done.output["summary"]
    assert stack.argo.created == []
    assert peak_memory(stack.service) < MEMORY_BOUND


async def test_a_push_of_too_many_recipes_gets_one_failing_check(stack: Stack) -> None:
    files = {
        f"recipes/r{n}/{name}": text
        for n in range(3)
        for name, text in (("meta.yml", META), ("recipe.sh", SCRIPT))
    }
    after = await push_recipes(stack, files)
    summary = await ogdc_summary(stack, after)
    assert "changes 3 recipes, more than the limit of 2" in summary
    assert "OGDC_MAX_RECIPES_PER_PUSH" in summary
    assert [check.name for check in stack.checks(after)] == ["ogdc"]


async def test_a_redirect_is_refused_and_the_token_stays_with_its_origin(stack: Stack) -> None:
    stack.git.token = "never-used"  # the real server behind the redirect records credentials
    with hostile_git("redirect", target=stack.git.url) as hostile:
        status, _ = await stack.deliver(hostile_push(stack, hostile.clone_url("recipes"), "a" * 40))
        assert status == 202
        summary = await ogdc_summary(stack, "a" * 40)
        assert hostile.requests and all(r.authorized for r in hostile.requests)
    assert "redirect, which is not followed" in summary
    assert stack.git.requests == []


async def test_servers_that_never_answer_delay_only_their_own_submissions(
    stack_env: dict[str, str], github: FakeGitHub, fake_argo: FakeArgo, git_server: GitServer
) -> None:
    async with stack_allowing_hostile("silent", stack_env, github, fake_argo, git_server) as (
        stack,
        hostile,
    ):
        tip = stack.git.commit("recipes", {"README.md": "x\n"})
        after = stack.git.commit(
            "recipes", {"recipes/sea-ice/meta.yml": META, "recipes/sea-ice/recipe.sh": SCRIPT}
        )
        form = {"recipe_path": hostile.clone_url("recipes"), "ref": "main", "path": "r/x"}
        stuck = [asyncio.create_task(stack.api("POST", "/submit", json=form)) for _ in range(12)]
        await wait_for(lambda: len(hostile.requests) == 12, what="12 lookups waiting")
        async with healthz_answers(stack.service):
            status, _ = await stack.deliver(push_payload(stack.git, before=tip, after=after))
            assert status == 202
            await wait_for(lambda: stack.argo.created, what="the push's workflow submitted")
        assert not any(task.done() for task in stuck)  # the push did not wait for them
        for task in stuck:
            task.cancel()
        await asyncio.gather(*stuck, return_exceptions=True)


async def test_slow_clients_are_cut_off_at_the_read_timeout(stack: Stack) -> None:
    connections = slow_clients(stack.service.base_url, 50)
    try:
        async with healthz_answers(stack.service):
            await wait_for(
                lambda: all(closed_by_peer(c) for c in connections), what="slow connections closed"
            )
    finally:
        for connection in connections:
            connection.close()


async def test_stale_checkouts_go_at_start_and_sigterm_stops_a_long_clone(
    stack_env: dict[str, str], github: FakeGitHub, fake_argo: FakeArgo, git_server: GitServer
) -> None:
    tmp = Path(tempfile.mkdtemp(prefix="ogdc-hostile-"))
    stale = tmp / "ogdc-hooks-checkouts" / "checkout-999999999-left"
    (stale / ".git").mkdir(parents=True)
    env = {**stack_env, "TMPDIR": str(tmp), "OGDC_GIT_TIMEOUT_SECONDS": "600"}
    service = Service(env)
    async with running_stack(env, github, fake_argo, git_server, service) as stack:
        assert not stale.exists()
        with hostile_git("silent") as hostile:
            await stack.deliver(hostile_push(stack, hostile.clone_url("recipes"), "b" * 40))
            await wait_for(lambda: hostile.requests, what="the clone under way")
            assert await asyncio.to_thread(service.stop, 30) == 0
        assert list((tmp / "ogdc-hooks-checkouts").iterdir()) == []
