"""The pipeline's view of Argo (`ArgoEngine`) against the fake Argo Server."""

from __future__ import annotations

import asyncio

import aiohttp
import pytest

from ogdc_hooks.argo.client import ArgoClient, ArgoTransientError
from ogdc_hooks.argo.engine import MANAGED_BY, RUN_LABEL, ArgoEngine
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
