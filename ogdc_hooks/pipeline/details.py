"""What a finished run's check says beyond its state (the `details` job): why it failed, with
its failed steps' log tails, or where its temporary output can be downloaded.

The report job asks for this job once a run has finished and lacks them
(`wants_details`), and holds the run's final report back meanwhile, so that a check
still ends exactly once; this job reads them from the workflow engine off the report's
path, with retries on engine outages, stores them on the run and asks for the report.
When the engine cannot tell, that is stored instead (a failure "could not be read", an
empty output link), so the report is never held for ever. Log lines are masked before
they are stored.
"""

from __future__ import annotations

import logging

from ogdc_hooks.failure import Failure, masked, unreadable
from ogdc_hooks.jobs.kinds import enqueue_details, enqueue_report, run_id_of
from ogdc_hooks.jobs.queue import Job
from ogdc_hooks.logs import log_event
from ogdc_hooks.pipeline import store
from ogdc_hooks.pipeline.context import Pipeline
from ogdc_hooks.pipeline.outputs import publishes_zip
from ogdc_hooks.pipeline.store import RunRecord
from ogdc_hooks.recipes.render.publish import PUBLISHED_ZIP
from ogdc_hooks.runstate import RunState
from ogdc_hooks.settings import secret_values

log = logging.getLogger(__name__)

FAILED_STATES = frozenset({RunState.FAILED, RunState.TIMED_OUT, RunState.ERROR})
NO_OUTPUT_URL = ""  # stored when Argo has no zip for a succeeded run: asked once, not again


def wants_details(pipeline: Pipeline, run: RunRecord) -> bool:
    """Whether the engine has something to add to the run's check that it has not given yet."""
    if pipeline.workflows is None or not run.workflow_name:
        return False
    if run.state in FAILED_STATES:
        return run.failure is None
    return (
        run.state is RunState.SUCCEEDED
        and run.output_url is None
        and publishes_zip(run.workflow or {})
    )


async def ask_for_details(pipeline: Pipeline, run: RunRecord) -> bool:
    """Ask for the run's details if it wants them; True when its report must wait for them."""
    if not wants_details(pipeline, run):
        return False
    async with pipeline.database.engine.begin() as connection:
        await enqueue_details(connection, run.id)
    return True


async def handle_details(pipeline: Pipeline, job: Job) -> None:
    run = await store.get_run(pipeline.database.engine, run_id_of(job))
    if run is None or not wants_details(pipeline, run):
        return  # already read, or the run moved on (e.g. retried)
    assert pipeline.workflows is not None and run.workflow_name is not None
    if run.state is RunState.SUCCEEDED:
        url = await pipeline.workflows.output_url(run.workflow_name, PUBLISHED_ZIP)
        await _store(pipeline, run, output_url=url or NO_OUTPUT_URL)
        return
    failure = await pipeline.workflows.failure(
        run.workflow_name,
        lines=pipeline.settings.failure_log_lines,
        strict=job.attempts < job.max_attempts,
    )
    await _store_failure(pipeline, run, failure or unreadable("the workflow no longer exists"))


async def give_up_details(pipeline: Pipeline, job: Job, error: str) -> None:
    """Argo would not tell: the check says so and ends, rather than waiting for ever."""
    run = await store.get_run(pipeline.database.engine, run_id_of(job))
    if run is None or not wants_details(pipeline, run):
        return
    if run.state is RunState.SUCCEEDED:
        await _store(pipeline, run, output_url=NO_OUTPUT_URL)
    else:
        await _store_failure(pipeline, run, unreadable(error))


async def _store_failure(pipeline: Pipeline, run: RunRecord, failure: Failure) -> None:
    shown = masked(failure, secret_values(pipeline.settings))
    log_event(log, "run_failure_read", run=str(run.id), classification=shown.classification)
    await _store(pipeline, run, failure=shown.to_json())


async def _store(pipeline: Pipeline, run: RunRecord, **fields: object) -> None:
    async with pipeline.database.engine.begin() as connection:
        await store.update_fields(connection, run.id, **fields)
        await enqueue_report(connection, run.id)
