"""The Argo Server as the pipeline's `WorkflowEngine`: our labels, our namespace.

The pipeline hears of a run's workflow only as `runstate.Progress` and
`runstate.WorkflowChange` (`progress`, `archived_progress`, `changes`); the raw
workflow objects (`get`, `find_archived`, `watch`) stay here.
"""

from __future__ import annotations

import dataclasses
import logging
import uuid
from collections.abc import AsyncIterator, Mapping
from typing import Any

from ogdc_hooks.argo import failures
from ogdc_hooks.argo.client import (
    ArgoClient,
    ArgoError,
    ArgoExpiredError,
    ArgoLintError,
    ArgoNotFoundError,
    ArgoTransientError,
    already_completed,
)
from ogdc_hooks.argo.phases import partitions_of, progress_of
from ogdc_hooks.failure import Failure, StepFailure
from ogdc_hooks.runstate import Partitions, Progress, WorkflowChange, WorkflowSnapshot

log = logging.getLogger(__name__)

MANAGED_BY = {"app.kubernetes.io/managed-by": "ogdc-hooks"}
RUN_LABEL = "ogdc/run-id"


class ArgoEngine:
    """Finds, submits and follows the workflows ogdc-hooks rendered, and nothing else."""

    def __init__(self, client: ArgoClient) -> None:
        self.client = client
        self._resume: str | None = None  # the resourceVersion the next watch starts from

    async def lint(self, workflow: dict[str, Any]) -> str | None:
        """Argo's lint verdict in its words, or None; an outage raises (transient)."""
        try:
            await self.client.lint(workflow)
        except ArgoLintError as err:
            return str(err)
        return None

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

    async def retry(self, name: str) -> None:
        await self.client.retry(name)

    async def output_url(self, name: str, artifact: str) -> str | None:
        try:
            return await self.client.output_url(name, artifact)
        except ArgoNotFoundError:
            return None

    async def failure(self, name: str, *, lines: int, strict: bool = True) -> Failure | None:
        """Why the workflow failed: its class from the first failed step's status, and each
        failed step's last `lines` of log; None when the workflow no longer exists.

        A log Argo cannot give is noted on its step; a transient error is raised instead
        while `strict` (the caller will try again), so it does not end up in the check.
        """
        workflow = await self.get(name)
        if workflow is None:
            return None
        classification = failures.classify_workflow(workflow)
        steps: list[StepFailure] = []
        for node in failures.failed_nodes(workflow):
            step = await self._step_failure(workflow, node, lines, strict)
            if not steps:
                classification = failures.with_fetch_message(classification, step.log_tail)
            steps.append(step)
        return Failure(
            classification.name, classification.explanation, classification.advice, tuple(steps)
        )

    async def _step_failure(
        self, workflow: Mapping[str, Any], node: Mapping[str, Any], lines: int, strict: bool
    ) -> StepFailure:
        step = StepFailure(
            step=failures.step_name(node),
            node=str(node.get("id") or ""),
            message=str(node.get("message") or ""),
        )
        pod = failures.pod_name(workflow, node)
        try:
            logs = await self.client.pod_logs(
                str(workflow["metadata"]["name"]), pod, tail_lines=lines
            )
        except ArgoNotFoundError:
            return dataclasses.replace(step, pod_gone=True)  # the workflow went with its pods
        except ArgoTransientError as err:
            if strict:
                raise
            return dataclasses.replace(step, log_error=str(err))
        except ArgoError as err:
            return dataclasses.replace(step, log_error=str(err))
        tail = logs.get(pod, [])
        return dataclasses.replace(step, log_tail=tuple(tail), pod_gone=not tail)

    async def watch(self) -> AsyncIterator[tuple[bool, dict[str, Any]]]:
        async for event in self.client.watch(MANAGED_BY):
            yield event.type == "DELETED", event.workflow

    async def progress(self, name: str) -> Progress | None:
        """Where the workflow stands; None when it no longer exists."""
        workflow = await self.get(name)
        return None if workflow is None else progress_of(workflow)

    async def partitions(self, name: str) -> list[Partitions] | None:
        """The workflow's fan-out steps and their partitions; None when it no longer exists."""
        workflow = await self.get(name)
        return None if workflow is None else partitions_of(workflow)

    async def archived_progress(self, run_id: str) -> Progress | None:
        """Where the run's archived workflow ended; None when the archive has none."""
        archived = await self.find_archived(run_id)
        return None if archived is None else progress_of(archived)

    async def changes(self) -> AsyncIterator[WorkflowChange | WorkflowSnapshot]:
        """Our workflows as one list (a snapshot), then each change from the list's
        resourceVersion, until the stream ends.

        The version of the last event is kept, so the next call resumes the watch
        there and costs only what changed meanwhile; when Argo has forgotten that
        version (410 Gone) it lists again. Only the fields `progress_of` reads are
        asked for.
        """
        while True:
            if self._resume is None:
                listed = await self.client.list_workflows(MANAGED_BY, _LISTED)
                self._resume = listed.resource_version or None
                yield WorkflowSnapshot(tuple(c for c in map(_change, listed.items) if c))
            try:
                async for event in self.client.watch(MANAGED_BY, self._resume, _FOLLOWED):
                    self._resume = _version(event.workflow) or self._resume
                    change = _change(event.workflow, event.type == "DELETED")
                    if change is not None:
                        yield change
                return
            except ArgoExpiredError as err:
                log.info("workflow watch expired (%s); listing again", err)
                self._resume = None


# What following reads of a workflow (`progress_of`, `run_of`), asked for by name so that
# a list of thousands of workflows does not carry their specs.
_FOLLOWED = (
    "metadata.name",
    "metadata.labels",
    "metadata.resourceVersion",
    "status.phase",
    "status.message",
    "status.progress",
    "status.nodes",
)
_LISTED = tuple(f"items.{field}" for field in _FOLLOWED)


def _version(workflow: Mapping[str, Any]) -> str | None:
    version = (workflow.get("metadata") or {}).get("resourceVersion")
    return str(version) if version else None


def _change(workflow: Mapping[str, Any], deleted: bool = False) -> WorkflowChange | None:
    found = run_of(workflow)
    return None if found is None else WorkflowChange(*found, progress_of(workflow), deleted)


def run_of(workflow: Mapping[str, Any]) -> tuple[uuid.UUID, str] | None:
    """The run id our label gives the workflow, and its name; None for one without."""
    metadata = workflow.get("metadata") or {}
    label = (metadata.get("labels") or {}).get(RUN_LABEL)
    try:
        return uuid.UUID(hex=str(label)), str(metadata["name"])
    except (KeyError, ValueError):
        return None
