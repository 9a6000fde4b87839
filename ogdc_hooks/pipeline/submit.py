"""Submitting a prepared run to the workflow engine, at most once per run.

The run id is a label on the workflow. Before creating, the job looks for a
workflow with that label: if the process died between creating and recording,
the retried job finds and records it instead of creating a second one. A workflow
about to be created is first linted by the Argo Server: one it refuses makes the
run invalid with Argo's message, and nothing is created.
"""

from __future__ import annotations

import dataclasses

from ogdc_hooks.jobs.errors import PermanentError
from ogdc_hooks.jobs.kinds import enqueue_stop, run_id_of
from ogdc_hooks.jobs.queue import Job
from ogdc_hooks.pipeline import store
from ogdc_hooks.pipeline.context import Pipeline
from ogdc_hooks.pipeline.lint import lint_problem
from ogdc_hooks.pipeline.prepare import problems_message
from ogdc_hooks.pipeline.store import RunRecord
from ogdc_hooks.recipes.problems import Problem
from ogdc_hooks.runstate import RunState


async def handle_submit(pipeline: Pipeline, job: Job) -> None:
    run = await store.get_run(pipeline.database.engine, run_id_of(job))
    if run is None or run.state is not RunState.QUEUED or run.workflow is None:
        return  # already submitted, or no longer meant to be
    if pipeline.workflows is None:
        raise PermanentError("no Argo Server is configured (ARGO_WORKFLOWS_SERVICE_URL)")
    name = await pipeline.workflows.find_by_run(run.id.hex)
    created = name is None
    if name is None:
        problem = await lint_problem(pipeline.workflows, run.recipe, run.workflow)
        if problem is not None:
            await _refused(pipeline, run, problem)
            return
        name = await pipeline.workflows.submit(run.workflow)
    async with pipeline.database.engine.begin() as connection:
        recorded = await store.change_state(
            connection,
            run.id,
            RunState.SUBMITTED,
            f"Workflow `{name}` created in namespace `{pipeline.settings.argo_namespace}`.",
            only_from=[RunState.QUEUED],
            workflow_name=name,
        )
        if not recorded:  # moved on meanwhile; if it was cancelled, its workflow is stopped
            await enqueue_stop(connection, run.id)
        # Counted by the job that created the workflow, even when the follower saw it run
        # (or end) first and moved the run past `submitted` before this job could say so.
        waited = await store.seconds_since_push(connection, run.id) if created else None
    if waited is not None:
        pipeline.metrics.submit_seconds.observe(waited)


async def _refused(pipeline: Pipeline, run: RunRecord, problem: Problem) -> None:
    """Argo's lint refused the workflow: the run is invalid, with the problems it had."""
    problems = (*(Problem(**p) for p in run.problems or ()), problem)
    async with pipeline.database.engine.begin() as connection:
        await store.change_state(
            connection,
            run.id,
            RunState.INVALID,
            problems_message(problems),
            only_from=[RunState.QUEUED],
            problems=[dataclasses.asdict(p) for p in problems],
        )
