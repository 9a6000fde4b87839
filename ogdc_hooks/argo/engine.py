"""The Argo Server as the pipeline's `WorkflowEngine`: our labels, our namespace."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from ogdc_hooks.argo.client import ArgoClient, ArgoError, ArgoNotFoundError, already_completed

MANAGED_BY = {"app.kubernetes.io/managed-by": "ogdc-hooks"}
RUN_LABEL = "ogdc/run-id"


class ArgoEngine:
    """Finds, submits and follows the workflows ogdc-hooks rendered, and nothing else."""

    def __init__(self, client: ArgoClient) -> None:
        self.client = client

    async def submit(self, workflow: dict[str, Any]) -> str:
        return await self.client.submit(workflow)

    async def find_by_run(self, run_id: str) -> str | None:
        found = await self.client.list_by_labels({**MANAGED_BY, RUN_LABEL: run_id})
        names = sorted(str(w.get("metadata", {}).get("name")) for w in found)
        return names[0] if names else None

    async def get(self, name: str) -> dict[str, Any] | None:
        try:
            return await self.client.get(name)
        except ArgoNotFoundError:
            return None

    async def find_archived(self, run_id: str) -> dict[str, Any] | None:
        """The newest archived workflow of the run (Argo's archive keeps what the TTL deleted)."""
        try:
            found = await self.client.list_archived({**MANAGED_BY, RUN_LABEL: run_id})
        except ArgoNotFoundError:  # an Argo Server without the archive API
            return None
        return found[0] if found else None

    async def stop(self, name: str, message: str) -> None:
        """Stop the workflow; one that has completed or vanished needs no stopping."""
        try:
            await self.client.stop(name, message)
        except ArgoNotFoundError:
            return
        except ArgoError as err:
            if not already_completed(err):
                raise

    async def output_url(self, name: str, artifact: str) -> str | None:
        try:
            return await self.client.output_url(name, artifact)
        except ArgoNotFoundError:
            return None

    async def watch(self) -> AsyncIterator[tuple[bool, dict[str, Any]]]:
        async for event in self.client.watch(MANAGED_BY):
            yield event.type == "DELETED", event.workflow
