"""The pipeline's background work: its worker (a handler per job kind) and its workflow
follower, as tasks for a `Supervisor`.

`ogdc_hooks/bootstrap.py` builds the `Pipeline` and starts these with the
application, after the database; the supervisor restarts a task that fails, and
a stopping worker hands its running jobs back for another replica to take at once.
"""

from __future__ import annotations

import functools
import logging
import tempfile
from pathlib import Path

from ogdc_hooks.checkout import remove_stale_checkouts
from ogdc_hooks.jobs.kinds import JobKind, run_id_of
from ogdc_hooks.jobs.queue import Job
from ogdc_hooks.jobs.supervise import Health, Work
from ogdc_hooks.jobs.worker import Worker
from ogdc_hooks.logs import log_event
from ogdc_hooks.pipeline import store
from ogdc_hooks.pipeline.actions import handle_requested_action, handle_stop, stop_refused
from ogdc_hooks.pipeline.commands import handle_command
from ogdc_hooks.pipeline.context import Pipeline
from ogdc_hooks.pipeline.deliveries import pushed
from ogdc_hooks.pipeline.details import give_up_details, handle_details
from ogdc_hooks.pipeline.follow import follower_tasks
from ogdc_hooks.pipeline.housekeeping import handle_housekeeping
from ogdc_hooks.pipeline.prepare import handle_prepare
from ogdc_hooks.pipeline.proposals import handle_proposal
from ogdc_hooks.pipeline.push import handle_push, push_run
from ogdc_hooks.pipeline.report import handle_report, record_report_failure
from ogdc_hooks.pipeline.rerun import handle_rerequest
from ogdc_hooks.pipeline.submit import handle_submit
from ogdc_hooks.pipeline.summary import handle_summary
from ogdc_hooks.runstate import RunState
from ogdc_hooks.settings import StartupError

log = logging.getLogger(__name__)


async def _run_error(pipeline: Pipeline, job: Job, error: str) -> None:
    """A run's job failed for good: the run ends in error with the reason, and is reported."""
    async with pipeline.database.engine.begin() as connection:
        await store.change_state(
            connection,
            run_id_of(job),
            RunState.ERROR,
            error,
            only_from=[RunState.QUEUED, RunState.SUBMITTED, RunState.RUNNING],
        )


async def _push_error(pipeline: Pipeline, job: Job, error: str) -> None:
    """A push could not be handled (e.g. the commit could not be cloned): say so on the commit."""
    _, push = await pushed(pipeline, job)
    async with pipeline.database.engine.begin() as connection:
        await store.create_run(
            connection,
            push_run(push, "", RunState.ERROR, None, f"The push could not be processed: {error}"),
        )


def build_worker(pipeline: Pipeline, health: Health) -> Worker:
    bound = functools.partial
    return Worker(
        pipeline.database.engine,
        handlers={
            JobKind.PUSH: bound(handle_push, pipeline),
            JobKind.RERUN: bound(handle_rerequest, pipeline),
            JobKind.HOUSEKEEPING: bound(handle_housekeeping, pipeline),
            JobKind.PREPARE: bound(handle_prepare, pipeline),
            JobKind.SUBMIT: bound(handle_submit, pipeline),
            JobKind.REPORT: bound(handle_report, pipeline),
            JobKind.SUMMARY: bound(handle_summary, pipeline),
            JobKind.ACTION: bound(handle_requested_action, pipeline),
            JobKind.STOP: bound(handle_stop, pipeline),
            JobKind.DETAILS: bound(handle_details, pipeline),
            JobKind.PROPOSAL: bound(handle_proposal, pipeline),
            JobKind.COMMAND: bound(handle_command, pipeline),
        },
        give_up={
            JobKind.PUSH: bound(_push_error, pipeline),
            JobKind.PREPARE: bound(_run_error, pipeline),
            JobKind.SUBMIT: bound(_run_error, pipeline),
            JobKind.REPORT: bound(record_report_failure, pipeline),
            JobKind.STOP: bound(stop_refused, pipeline),
            JobKind.DETAILS: bound(give_up_details, pipeline),
        },
        slots=pipeline.settings.worker_slots,
        per_repository=pipeline.settings.jobs_per_repository,
        lease=float(pipeline.settings.job_lease_seconds),
        record=lambda kind, outcome: pipeline.metrics.job_outcomes.labels(kind, outcome).inc(),
        health=health,
    )


def checkout_root() -> Path:
    """The directory checkouts are made in, without what killed processes left there; without
    a writable temporary directory (a read-only root with nothing mounted at /tmp) the start
    stops here, with one line."""
    try:
        root = Path(tempfile.gettempdir()) / "ogdc-hooks-checkouts"
        root.mkdir(mode=0o700, exist_ok=True)
    except OSError as err:
        raise StartupError(
            f"no writable temporary directory for checkouts ({err.strerror or err}): "
            "set TMPDIR, or mount one at /tmp"
        ) from None
    removed = remove_stale_checkouts(root)
    if removed:
        log_event(log, "stale_checkouts_removed", count=len(removed), directory=str(root))
    return root


def pipeline_tasks(pipeline: Pipeline, health: Health) -> dict[str, Work]:
    """The worker's and the follower's tasks, by name, for a `Supervisor`."""
    return {
        **build_worker(pipeline, health).tasks(),
        **follower_tasks(pipeline, poll_interval=pipeline.settings.argo_poll_seconds),
    }
