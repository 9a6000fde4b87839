"""Every run reaches an end: vanished workflows, Argo's archive, deadlines, refused reports.

The real service, real PostgreSQL and git, the fake GitHub and Argo Server.
"""

from __future__ import annotations

import asyncio
from typing import Any

from tests.fakes.argo import FakeArgo
from tests.fakes.github import FakeGitHub, Fault
from tests.pipeline.conftest import (
    META,
    SCRIPT,
    Stack,
    push_payload,
    running_stack,
    wait_for,
)
from tests.support.gitserver import GitServer
from tests.support.scrape import value
from tests.support.service import Service

CHECK = "ogdc/recipes/sea-ice"


async def _pushed(stack: Stack) -> tuple[str, str]:
    """Push one recipe; return the commit and the name of its workflow in Argo."""
    before = stack.git.head("recipes") or stack.git.commit("recipes", {"README.md": "x\n"})
    after = stack.git.commit(
        "recipes", {"recipes/sea-ice/meta.yml": META, "recipes/sea-ice/recipe.sh": SCRIPT}
    )
    status, _ = await stack.deliver(push_payload(stack.git, before=before, after=after))
    assert status == 202
    [name] = await wait_for(lambda: stack.argo.created, what="a workflow in Argo")
    return after, name


async def _run(stack: Stack, commit: str, state: str) -> dict[str, Any]:
    async def reached() -> dict[str, Any] | None:
        found = await stack.runs(commit=commit)
        return found[0] if found and found[0]["state"] == state else None

    return await wait_for(reached, within=60, what=f"the run to be {state}")


async def test_a_workflow_deleted_after_success_while_unwatched_ends_green_from_the_archive(
    stack: Stack,
) -> None:
    after, name = await _pushed(stack)
    await _run(stack, after, "submitted")
    stack.service.kill()  # neither watch nor poll sees the end
    stack.argo.set_phase(name, "Running")
    stack.argo.set_phase(name, "Succeeded")
    stack.argo.expire(name)  # the TTL deletes it; the archive keeps it
    restarted = Service(stack.service.env)
    await asyncio.to_thread(restarted.start)
    stack.service = restarted
    try:
        done = await stack.check_completed(after, CHECK, within=60)
        assert done.conclusion == "success"
        assert "archive" in done.output["summary"]
        run = await _run(stack, after, "succeeded")
        assert "read from Argo's workflow archive" in str(run["message"])
        assert stack.argo.count("GET", "/api/v1/archived-workflows") >= 1
    finally:
        await asyncio.to_thread(restarted.stop)


async def test_a_workflow_deleted_with_no_archived_copy_ends_as_an_error_saying_so(
    stack: Stack,
) -> None:
    after, name = await _pushed(stack)
    stack.argo.set_phase(name, "Running")
    await _run(stack, after, "running")
    stack.argo.delete(name)  # deleted by a person while running: never archived
    done = await stack.check_completed(after, CHECK)
    assert done.conclusion == "failure"
    summary = done.output["summary"]
    assert f"Workflow `{name}` no longer exists in Argo" in summary
    assert "archive has no record of it" in summary
    assert "run the recipe again" in summary
    assert stack.argo.archived() == []


async def test_a_run_past_its_deadline_is_stopped_and_its_check_says_timed_out(
    stack_env: dict[str, str], github: FakeGitHub, fake_argo: FakeArgo, git_server: GitServer
) -> None:
    env = {**stack_env, "OGDC_RUN_DEADLINE_HOURS": "0.001"}  # 3.6 seconds
    async with running_stack(env, github, fake_argo, git_server) as stack:
        after, name = await _pushed(stack)
        stack.argo.set_phase(name, "Running")
        done = await stack.check_completed(after, CHECK)
        assert done.conclusion == "timed_out"
        assert done.output["title"] == "Timed out: the workflow was stopped"
        assert "did not finish within 3.6 seconds of its submission" in done.output["summary"]
        [stop] = [r for r in stack.argo.requests if r.path.endswith(f"/{name}/stop")]
        assert stop.method == "PUT" and stop.token_ok
        assert stop.body["name"] == name
        workflow = stack.argo.workflow(name)
        assert workflow["spec"]["shutdown"] == "Stop"
        assert workflow["status"]["message"] == "Stopped with strategy 'Stop'"
        run = await _run(stack, after, "timed_out")  # Argo's "Failed" afterwards changes nothing
        status, detail = await stack.api("GET", f"/runs/{run['id']}")
        assert status == 200
        assert [e["state"] for e in detail["events"]][-1] == "timed_out"


async def test_a_run_past_its_deadline_ends_even_when_argo_refuses_to_stop_it(
    stack_env: dict[str, str], github: FakeGitHub, fake_argo: FakeArgo, git_server: GitServer
) -> None:
    fake_argo.forbidden = ("patch",)  # a Role from before stopping was needed
    env = {**stack_env, "OGDC_RUN_DEADLINE_HOURS": "0.001"}
    async with running_stack(env, github, fake_argo, git_server) as stack:
        after, name = await _pushed(stack)
        stack.argo.set_phase(name, "Running")
        done = await stack.check_completed(after, CHECK)
        assert done.conclusion == "timed_out"
        summary = done.output["summary"]
        assert "Argo refused to stop it" in summary and "cannot patch resource" in summary
        assert "stop it in the Argo UI" in summary
        assert stack.argo.workflow(name)["status"]["phase"] == "Running"


async def test_a_report_github_refuses_for_now_is_retried_until_accepted(stack: Stack) -> None:
    stack.github.inject(Fault.server_error(503), times=4, path="check-runs")
    after, name = await _pushed(stack)
    stack.argo.set_phase(name, "Succeeded")
    done = await stack.check_completed(after, CHECK, within=120)
    assert done.conclusion == "success"
    assert len(stack.checks(after)) == 1
    [run] = await stack.runs(commit=after)
    assert run["report_error"] is None


async def test_steady_following_reads_no_workflow_on_its_own(stack: Stack) -> None:
    """The list and the watch tell every change: resyncs pass without a GET per workflow."""
    after, name = await _pushed(stack)
    stack.argo.set_phase(name, "Running")
    await _run(stack, after, "running")
    start = await _resyncs(stack)
    await wait_for(
        lambda: _resyncs(stack, more_than=start + 2), within=30, what="three resyncs to pass"
    )
    stack.argo.set_phase(name, "Succeeded")
    assert (await stack.check_completed(after, CHECK)).conclusion == "success"
    reads = stack.argo.count("GET", f"/api/v1/workflows/{stack.argo.namespace}/{name}")
    assert reads <= 1  # following read none; the details job may read the ended one once
    lists = [r for r in stack.argo.requests if r.path.startswith("/api/v1/workflows/")]
    assert sum("fields" in r.query for r in lists) == 1  # the follower listed once


async def _resyncs(stack: Stack, more_than: float | None = None) -> float | None:
    async with stack.session.get(stack.service.url + "/metrics") as answer:
        found = value(await answer.text(), "ogdc_run_follow_resyncs_total")
    return found if more_than is None or found > more_than else None
