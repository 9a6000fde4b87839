"""The pipeline's view of Argo (`ArgoEngine`) against the fake Argo Server."""

from __future__ import annotations

import asyncio

import aiohttp
import pytest

from ogdc_hooks.argo.client import ArgoClient, ArgoTransientError
from ogdc_hooks.argo.engine import MANAGED_BY, RUN_LABEL, ArgoEngine
from ogdc_hooks.runstate import RunState, WorkflowChange, WorkflowSnapshot
from tests.argo.conftest import workflow
from tests.fakes.argo import FakeArgo


def ours(run_id: str) -> dict[str, object]:
    return workflow(**MANAGED_BY, **{RUN_LABEL: run_id})


async def test_find_by_run_get_and_vanish(argo: ArgoClient, fake_argo: FakeArgo) -> None:
    engine = ArgoEngine(argo)
    assert await engine.find_by_run("a" * 32) is None
    name = await engine.submit(ours("a" * 32))
    await argo.submit(workflow(**{RUN_LABEL: "a" * 32}))  # not managed by us: ignored

    assert await engine.find_by_run("a" * 32) == name
    found = await engine.get(name)
    assert found is not None and found["metadata"]["name"] == name
    fake_argo.delete(name)
    assert await engine.get(name) is None
    assert await engine.output_url(name, "published_zip") is None


async def test_watch_reports_changes_and_deletions(argo: ArgoClient, fake_argo: FakeArgo) -> None:
    engine = ArgoEngine(argo)
    name = await engine.submit(ours("b" * 32))
    events = engine.watch()

    deleted, first = await asyncio.wait_for(anext(events), 10)
    assert (deleted, first["metadata"]["name"]) == (False, name)
    fake_argo.set_phase(name, "Running")
    deleted, running = await asyncio.wait_for(anext(events), 10)
    assert (deleted, running["status"]["phase"]) == (False, "Running")
    fake_argo.delete(name)
    deleted, gone = await asyncio.wait_for(anext(events), 10)
    assert (deleted, gone["metadata"]["name"]) == (True, name)
    await events.aclose()


async def test_an_expired_workflow_is_found_in_the_archive(
    argo: ArgoClient, fake_argo: FakeArgo
) -> None:
    engine = ArgoEngine(argo)
    name = await engine.submit(ours("c" * 32))
    await engine.submit(workflow(**{RUN_LABEL: "c" * 32}))  # not ours: never looked at
    assert await engine.find_archived("c" * 32) is None  # still running: not archived
    fake_argo.set_phase(name, "Failed", message="child 'step-0' failed")
    fake_argo.expire(name)
    assert await engine.get(name) is None
    archived = await engine.find_archived("c" * 32)
    assert archived is not None
    assert archived["metadata"]["name"] == name
    assert archived["status"]["phase"] == "Failed"
    assert await engine.find_archived("d" * 32) is None
    [request] = [r for r in fake_argo.requests if r.path == "/api/v1/archived-workflows"][-1:]
    assert request.query["namespace"] == fake_argo.namespace


async def test_stop_is_done_once_and_quietly_for_completed_or_missing_workflows(
    argo: ArgoClient, fake_argo: FakeArgo
) -> None:
    engine = ArgoEngine(argo)
    name = await engine.submit(ours("e" * 32))
    fake_argo.set_phase(name, "Running")
    await engine.stop(name, "ogdc-hooks: unfinished after 48 hours")
    assert fake_argo.workflow(name)["spec"]["shutdown"] == "Stop"
    await engine.stop(name, "again")  # completed now: Argo refuses, nothing left to do
    fake_argo.expire(name)
    await engine.stop(name, "and again")  # gone
    assert fake_argo.count("PUT", f"/api/v1/workflows/{fake_argo.namespace}/{name}/stop") == 3


async def test_every_call_records_its_outcome(
    session: aiohttp.ClientSession, fake_argo: FakeArgo
) -> None:
    outcomes: list[str] = []
    client = ArgoClient(
        session, fake_argo.url, fake_argo.namespace, fake_argo.token, record=outcomes.append
    )
    engine = ArgoEngine(client)
    name = await engine.submit(ours("f" * 32))
    assert await engine.get("no-such-workflow") is None
    fake_argo.fail_next(1, status=503)
    with pytest.raises(ArgoTransientError):
        await client.get(name)
    assert outcomes == ["ok", "permanent", "transient"]


async def test_changes_list_then_resume_the_watch_and_list_again_after_410(
    session: aiohttp.ClientSession,
) -> None:
    fake = FakeArgo(history=2).start()
    try:
        engine = ArgoEngine(ArgoClient(session, fake.url, fake.namespace, fake.token))
        first, second = ours("c" * 32), ours("d" * 32)
        name = await engine.submit(first)
        changes = engine.changes()
        snapshot = await asyncio.wait_for(anext(changes), 10)
        assert isinstance(snapshot, WorkflowSnapshot)
        assert [c.name for c in snapshot.changes] == [name]
        fake.set_phase(name, "Running")
        running = await asyncio.wait_for(anext(changes), 10)
        assert isinstance(running, WorkflowChange) and running.progress.state is RunState.RUNNING
        await changes.aclose()

        fake.set_phase(name, "Succeeded")  # one change while not watching: resumed, not listed
        changes = engine.changes()
        done = await asyncio.wait_for(anext(changes), 10)
        assert isinstance(done, WorkflowChange) and done.progress.state is RunState.SUCCEEDED
        await changes.aclose()

        other = await engine.submit(second)  # three changes: more than the fake remembers
        fake.set_phase(other, "Running")
        fake.set_phase(other, "Failed")
        changes = engine.changes()
        again = await asyncio.wait_for(anext(changes), 10)
        assert isinstance(again, WorkflowSnapshot)  # 410 Gone: listed again
        states = {c.name: c.progress.state for c in again.changes}
        assert states == {name: RunState.SUCCEEDED, other: RunState.FAILED}
        await changes.aclose()
        watches = [r.query for r in fake.requests if r.path.startswith("/api/v1/workflow-events")]
        versions = [q.get("listOptions.resourceVersion") for q in watches]
        assert len(versions) == 3 and all(versions)  # each from a version; the last one: 410
        lists = [
            r for r in fake.requests if r.method == "GET" and r.path.startswith("/api/v1/workflows")
        ]
        assert len(lists) == 2  # at first, and after the 410
        assert fake.count("GET", f"/api/v1/workflows/{fake.namespace}/") == 0
    finally:
        fake.stop()
