"""Outages, rate limits, crashes and replicas: nothing lost, nothing done twice."""

from __future__ import annotations

import asyncio

from tests.fakes.github import Fault
from tests.pipeline.conftest import META, SCRIPT, Stack, push_payload, wait_for
from tests.support.postgres import PostgresServer
from tests.support.service import Service


def _push(stack: Stack, name: str = "Sea Ice Test") -> tuple[str, str]:
    before = stack.git.head("recipes") or stack.git.commit("recipes", {"README.md": "x\n"})
    after = stack.git.commit(
        "recipes",
        {
            "recipes/sea-ice/meta.yml": META.replace("Sea Ice Test", name),
            "recipes/sea-ice/recipe.sh": SCRIPT,
        },
    )
    return before, after


async def test_github_outage_and_rate_limit_are_waited_out(stack: Stack) -> None:
    stack.github.inject(Fault.server_error(502), times=2, path="check-runs")
    stack.github.inject(Fault.too_many_requests(retry_after=1), times=1, path="check-runs")
    before, after = _push(stack)
    await stack.deliver(push_payload(stack.git, before=before, after=after))
    [name] = await wait_for(lambda: stack.argo.created, what="a workflow")
    stack.argo.set_phase(name, "Succeeded")
    done = await stack.check_completed(after, "ogdc/recipes/sea-ice", within=90)
    assert done.conclusion == "success"
    assert len(stack.checks(after)) == 1


async def test_argo_outage_is_retried_and_submits_once(stack: Stack) -> None:
    stack.argo.fail_next(3, status=503)
    before, after = _push(stack)
    await stack.deliver(push_payload(stack.git, before=before, after=after))
    await wait_for(lambda: stack.argo.created, within=60, what="a workflow after the outage")
    await wait_for(stack.settled, what="every job to be done")  # a second submit would be one
    assert len(stack.argo.created) == 1


async def test_kill_9_mid_run_then_restart_finishes_the_run(stack: Stack) -> None:
    before, after = _push(stack)
    await stack.deliver(push_payload(stack.git, before=before, after=after))
    [name] = await wait_for(lambda: stack.argo.created, what="a workflow")
    stack.service.kill()  # SIGKILL: no shutdown, leases held, a watch cut
    stack.argo.set_phase(name, "Running")
    stack.argo.set_phase(name, "Succeeded")
    # A delivery while the service is down is GitHub's to redeliver; one right after the
    # restart must be processed.
    restarted = Service(stack.service.env)
    await asyncio.to_thread(restarted.start)
    stack.service = restarted
    try:
        done = await stack.check_completed(after, "ogdc/recipes/sea-ice", within=60)
        assert done.conclusion == "success"
        assert stack.argo.created == [name]
    finally:
        await asyncio.to_thread(restarted.stop)


async def test_every_session_of_the_service_ended_while_following_the_run_finishes_it(
    stack: Stack, postgres: PostgresServer, database: str
) -> None:
    before, after = _push(stack)
    await stack.deliver(push_payload(stack.git, before=before, after=after))
    [name] = await wait_for(lambda: stack.argo.created, what="a workflow")
    await wait_for(stack.settled, what="the submit and its reports to be done")
    # The follower, the listener, the worker's and the intake's pools: all cut at once.
    assert await postgres.terminate(database) >= 2
    stack.argo.set_phase(name, "Succeeded")
    done = await stack.check_completed(after, "ogdc/recipes/sea-ice", within=60)
    assert done.conclusion == "success"
    assert stack.service.process is not None and stack.service.process.poll() is None
    await wait_for(lambda: asyncio.to_thread(stack.service.is_ready), what="ready again")
    assert "job listener" in stack.failed_tasks()  # its connection cut: logged, and back


async def test_kill_9_while_cloning_loses_nothing(stack: Stack) -> None:
    before, after = _push(stack)
    stack.git.delay_next(1, 30)  # the first fetch hangs: the push job is mid-clone
    await stack.deliver(push_payload(stack.git, before=before, after=after))
    await wait_for(lambda: stack.git.requests, what="the clone to start")
    stack.service.kill()
    restarted = Service(stack.service.env)
    await asyncio.to_thread(restarted.start)
    stack.service = restarted
    try:
        await wait_for(lambda: stack.argo.created, within=60, what="the workflow after restart")
        assert len(stack.argo.created) == 1
    finally:
        await asyncio.to_thread(restarted.stop)


async def test_reporting_refused_for_good_is_recorded_and_the_run_goes_on(stack: Stack) -> None:
    refused = Fault(422, {"message": "Validation Failed", "errors": [{"code": "custom"}]})
    stack.github.inject(refused, times=1000, path="check-runs")
    before, after = _push(stack)
    await stack.deliver(push_payload(stack.git, before=before, after=after))
    [name] = await wait_for(lambda: stack.argo.created, what="a workflow despite GitHub")
    stack.argo.set_phase(name, "Succeeded")

    async def finished() -> dict[str, object] | None:
        runs = await stack.runs(commit=after)
        return runs[0] if runs and runs[0]["state"] == "succeeded" else None

    run = await wait_for(finished, within=60, what="the run to succeed")
    assert "422" in str(run["report_error"])
    assert stack.checks(after) == []


async def test_a_workflow_created_but_not_recorded_is_found_not_created_again(
    stack: Stack,
) -> None:
    stack.argo.lose_next_create_answers(1)  # Argo creates it; we never hear the name
    before, after = _push(stack)
    await stack.deliver(push_payload(stack.git, before=before, after=after))

    async def submitted() -> dict[str, object] | None:
        runs = await stack.runs(commit=after)
        return runs[0] if runs and runs[0]["workflow_name"] else None

    run = await wait_for(submitted, within=60, what="the run to record its workflow")
    assert stack.argo.created == [run["workflow_name"]]
    create = f"/api/v1/workflows/{stack.argo.namespace}"
    creates = [r for r in stack.argo.requests if r.method == "POST" and r.path == create]
    assert len(creates) == 1


async def test_a_push_whose_worker_dies_twice_is_stopped_as_poisoned(stack: Stack) -> None:
    before, after = _push(stack)
    stack.git.delay_next(1, 120)  # the clone hangs: the push job stays claimed
    await stack.deliver(push_payload(stack.git, before=before, after=after))
    services = []
    try:
        for clones in (1, 2):  # the first service, then the one that takes the job over
            await wait_for(lambda n=clones: len(stack.git.requests) >= n, what="a clone to start")
            stack.service.kill()  # as if the job had crashed the process
            stack.git.delay_next(1, 120)
            stack.service = Service(stack.service.env)
            services.append(stack.service)
            await asyncio.to_thread(stack.service.start)
        done = await stack.check_completed(after, "ogdc", within=60)
        assert done.conclusion == "failure"
        assert "crashed the worker running it twice" in done.output["summary"]
        [run] = await stack.runs(commit=after)
        assert "crashed the worker running it twice" in str(run["message"])
        assert len(stack.git.requests) == 2  # not cloned a third time
        assert stack.argo.created == []
    finally:
        for service in services:
            await asyncio.to_thread(service.stop)
