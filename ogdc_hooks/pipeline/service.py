"""The pipeline's background work: its worker (a handler per job kind), its workflow
follower and its reconciler, as tasks for a `Supervisor`.

`ogdc_hooks/bootstrap.py` builds the `Pipeline` and starts these with the
application, after the database; the supervisor restarts a task that fails, and
a stopping worker hands its running jobs back for another replica to take at once.
"""

from __future__ import annotations

import functools
import logging
import tempfile
from datetime import timedelta
from pathlib import Path

import asyncpg

from ogdc_hooks.checkout import remove_stale_checkouts
from ogdc_hooks.forges.github.forge import GitHubForge
from ogdc_hooks.jobs.kinds import JobKind, run_id_of
from ogdc_hooks.jobs.queue import Job
from ogdc_hooks.jobs.supervise import Health, Work
from ogdc_hooks.jobs.wakeup import WakeUp
from ogdc_hooks.jobs.worker import Worker
from ogdc_hooks.logs import log_event
from ogdc_hooks.pipeline import runs
from ogdc_hooks.pipeline.context import Pipeline
from ogdc_hooks.pipeline.follow import follower_tasks
from ogdc_hooks.pipeline.housekeeping import handle_housekeeping
from ogdc_hooks.pipeline.notify import handle_report, record_report_failure
from ogdc_hooks.pipeline.push import handle_prepare, handle_push, push_run, pushed
from ogdc_hooks.pipeline.reconcile import Reconciler, reconcile_forever
from ogdc_hooks.pipeline.rerun import handle_rerequest
from ogdc_hooks.pipeline.submit import handle_submit
from ogdc_hooks.runstate import RunState
from ogdc_hooks.settings import StartupError

log = logging.getLogger(__name__)


async def _run_error(pipeline: Pipeline, job: Job, error: str) -> None:
    """A run's job failed for good: the run ends in error with the reason, and is reported."""
    async with pipeline.database.engine.begin() as connection:
        await runs.change_state(
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
        await runs.create_run(
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
        },
        give_up={
            JobKind.PUSH: bound(_push_error, pipeline),
            JobKind.PREPARE: bound(_run_error, pipeline),
            JobKind.SUBMIT: bound(_run_error, pipeline),
            JobKind.REPORT: bound(record_report_failure, pipeline),
        },
        slots=pipeline.settings.worker_slots,
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


def reconcile_tasks(pipeline: Pipeline, pool: asyncpg.Pool, wake_up: WakeUp) -> dict[str, Work]:
    """Looking for missed deliveries, for a `Supervisor`; none when turned off or without
    GitHub credentials."""
    settings = pipeline.settings
    github = next(
        (f for f in pipeline.forges if isinstance(f, GitHubForge) and f.reporter is not None),
        None,
    )
    if not settings.reconcile_seconds or github is None:
        why = "no GitHub App or token" if settings.reconcile_seconds else "OGDC_RECONCILE_SECONDS=0"
        log_event(log, "reconcile_off", reason=why)
        return {}
    reconciler = Reconciler(
        pipeline, pool, github, wake_up, lookback=timedelta(hours=settings.reconcile_lookback_hours)
    )
    interval = settings.reconcile_seconds
    return {"reconcile": lambda: reconcile_forever(reconciler, interval=interval)}


def pipeline_tasks(
    pipeline: Pipeline, pool: asyncpg.Pool, wake_up: WakeUp, health: Health
) -> dict[str, Work]:
    """Every background task of the pipeline, by name, for a `Supervisor` (none without
    worker slots: the replica then only takes requests)."""
    if not pipeline.settings.worker_slots:
        return {}
    return {
        **build_worker(pipeline, health).tasks(),
        **follower_tasks(pipeline, poll_interval=pipeline.settings.argo_poll_seconds),
        **reconcile_tasks(pipeline, pool, wake_up),
    }
