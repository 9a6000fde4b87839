"""Following submitted workflows to their end: a watch for speed, polling for certainty.

Every replica watches the engine's event stream for our workflows and, every
`poll_interval`, re-reads each unfinished run (which is also the resync after
a restart). State changes only move forward (`only_from`), so replicas and
replayed events never undo or repeat one.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Mapping
from typing import Any

from ogdc_hooks.argo.engine import RUN_LABEL
from ogdc_hooks.argo.phases import VANISHED, Progress, progress_of
from ogdc_hooks.forges.report import RunState
from ogdc_hooks.jobs.backoff import retry_delay
from ogdc_hooks.jobs.supervise import Work
from ogdc_hooks.pipeline import runs
from ogdc_hooks.pipeline.context import Pipeline

log = logging.getLogger(__name__)

ACTIVE = (RunState.SUBMITTED, RunState.RUNNING)
_MAY_FOLLOW: Mapping[RunState, tuple[RunState, ...]] = {
    RunState.SUBMITTED: (RunState.QUEUED,),
    RunState.RUNNING: (RunState.QUEUED, RunState.SUBMITTED),
    RunState.SUCCEEDED: (RunState.QUEUED, *ACTIVE),
    RunState.FAILED: (RunState.QUEUED, *ACTIVE),
    RunState.ERROR: ACTIVE,
}


def _message(progress: Progress, name: str) -> str:
    if progress.state is RunState.FAILED:
        return f"Workflow `{name}` failed: {progress.summary}"
    words = {RunState.RUNNING: "is running", RunState.SUCCEEDED: "succeeded"}
    return f"Workflow `{name}` {words.get(progress.state, 'was created')}."


async def apply(pipeline: Pipeline, run_id: uuid.UUID, name: str, progress: Progress) -> bool:
    """Record what the engine says of a run's workflow; False when it changed nothing."""
    allowed = _MAY_FOLLOW.get(progress.state)
    if allowed is None:
        return False
    message = progress.message if progress is VANISHED else _message(progress, name)
    async with pipeline.database.engine.begin() as connection:
        return await runs.change_state(
            connection, run_id, progress.state, message, only_from=allowed, workflow_name=name
        )


def _run_of(workflow: Mapping[str, Any]) -> tuple[uuid.UUID, str] | None:
    metadata = workflow.get("metadata") or {}
    label = (metadata.get("labels") or {}).get(RUN_LABEL)
    try:
        return uuid.UUID(hex=str(label)), str(metadata["name"])
    except (KeyError, ValueError):
        return None


async def on_workflow(pipeline: Pipeline, deleted: bool, workflow: Mapping[str, Any]) -> None:
    found = _run_of(workflow)
    if found is not None:
        await apply(pipeline, *found, VANISHED if deleted else progress_of(workflow))


async def resync(pipeline: Pipeline) -> None:
    """Re-read every unfinished run's workflow; a vanished one is an error."""
    assert pipeline.workflows is not None
    for run in await runs.runs_in_states(pipeline.database.engine, ACTIVE):
        if run.workflow_name is None:
            continue
        workflow = await pipeline.workflows.get(run.workflow_name)
        if workflow is None:
            await apply(pipeline, run.id, run.workflow_name, VANISHED)
        else:
            await apply(pipeline, run.id, run.workflow_name, progress_of(workflow))


async def _watch(pipeline: Pipeline) -> None:
    assert pipeline.workflows is not None
    failures = 0
    while True:
        try:
            async for deleted, workflow in pipeline.workflows.watch():
                failures = 0
                await on_workflow(pipeline, deleted, workflow)
        except asyncio.CancelledError:
            raise
        except Exception as err:
            failures += 1
            log.warning("workflow watch interrupted (%s); reconnecting", err)
        await asyncio.sleep(retry_delay(failures + 1, base=1.0, cap=60.0))


async def _poll(pipeline: Pipeline, interval: float) -> None:
    while True:
        try:
            await resync(pipeline)
        except asyncio.CancelledError:
            raise
        except Exception as err:
            log.warning("workflow resync failed (%s); will try again", err)
        await asyncio.sleep(interval)


def follower_tasks(pipeline: Pipeline, poll_interval: float = 30.0) -> dict[str, Work]:
    """The watch and the poll, by name, for a `Supervisor`; none without a workflow engine."""
    if pipeline.workflows is None:
        return {}
    return {
        "workflow watch": lambda: _watch(pipeline),
        "workflow resync": lambda: _poll(pipeline, poll_interval),
    }
