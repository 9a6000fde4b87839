"""Argo client tests run against the fake Argo Server over real HTTP."""

from __future__ import annotations

import copy
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest

from ogdc_hooks.argo.client import ArgoClient
from tests.fakes.argo import FakeArgo, fake_argo  # noqa: F401  (fixture)

MINIMAL_WORKFLOW: dict[str, Any] = {
    "apiVersion": "argoproj.io/v1alpha1",
    "kind": "Workflow",
    "metadata": {"generateName": "seal-tags-shell-", "labels": {"ogdc/run-id": "17"}},
    "spec": {
        "entrypoint": "main",
        "serviceAccountName": "argo-workflow",
        "templates": [
            {
                "name": "main",
                "container": {"image": "alpine:3.20", "command": ["sh", "-c"], "args": ["true"]},
            }
        ],
    },
}


def workflow(**labels: str) -> dict[str, Any]:
    """A minimal valid workflow, with extra labels."""
    made = copy.deepcopy(MINIMAL_WORKFLOW)
    made["metadata"]["labels"].update(labels)
    return made


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as opened:
        yield opened


@pytest.fixture
def argo(session: aiohttp.ClientSession, fake_argo: FakeArgo) -> ArgoClient:  # noqa: F811
    return ArgoClient(
        session,
        fake_argo.url,
        fake_argo.namespace,
        fake_argo.token,
        request_timeout_s=5.0,
        stream_idle_timeout_s=5.0,
    )
