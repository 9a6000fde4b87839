"""The pipeline's view of Argo (`ArgoEngine`) against the fake Argo Server."""

from __future__ import annotations

import asyncio

from ogdc_hooks.argo.client import ArgoClient
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
