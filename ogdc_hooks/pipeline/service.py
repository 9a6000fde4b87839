"""The pipeline inside the service process: its worker and its workflow follower.

Composed here, started with the application (`app.cleanup_ctx`) after the
database, run by the application's supervisor (a task that fails is logged and
restarted) and stopped with it; a stopping worker hands its running jobs back
for another replica to take at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import tempfile
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import aiohttp
from aiohttp import web

from ogdc_hooks.api.context import DATABASE, DRIVER_POOL, SETTINGS, SUPERVISOR, USERS, StartupError
from ogdc_hooks.api.metrics import METRICS
from ogdc_hooks.api.webhooks import WAKE_UP
from ogdc_hooks.argo.client import ArgoClient
from ogdc_hooks.argo.engine import ArgoEngine
from ogdc_hooks.checkout import CHILDREN, remove_stale_checkouts
from ogdc_hooks.forges.configured import configured_forges
from ogdc_hooks.forges.github.forge import GitHubForge
from ogdc_hooks.jobs.queue import Job
from ogdc_hooks.jobs.supervise import Health, Work
from ogdc_hooks.jobs.worker import Worker
from ogdc_hooks.logs import log_event
from ogdc_hooks.pipeline import runs
from ogdc_hooks.pipeline.context import PIPELINE, Limits, Pipeline
from ogdc_hooks.pipeline.follow import follower_tasks
from ogdc_hooks.pipeline.housekeeping import handle_housekeeping
from ogdc_hooks.pipeline.notify import handle_report, record_report_failure
from ogdc_hooks.pipeline.push import handle_prepare, handle_push, push_run, pushed, run_id_of
from ogdc_hooks.pipeline.reconcile import Reconciler, reconcile_forever
from ogdc_hooks.pipeline.rerun import handle_rerequest
from ogdc_hooks.pipeline.submit import handle_submit
from ogdc_hooks.recipes.render import RenderSettings
from ogdc_hooks.recipes.validate import LoadPolicy
from ogdc_hooks.runstate import RunState

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
            "push": bound(handle_push, pipeline),
            "rerequest": bound(handle_rerequest, pipeline),
            "installation": bound(handle_housekeeping, pipeline),  # a forge's own deliveries
            "prepare": bound(handle_prepare, pipeline),
            "submit": bound(handle_submit, pipeline),
            "report": bound(handle_report, pipeline),
        },
        give_up={
            "push": bound(_push_error, pipeline),
            "prepare": bound(_run_error, pipeline),
            "submit": bound(_run_error, pipeline),
            "report": bound(record_report_failure, pipeline),
        },
        slots=pipeline.settings.worker_slots,
        lease=float(pipeline.settings.job_lease_seconds),
        record=lambda kind, outcome: pipeline.metrics.job_outcomes.labels(kind, outcome).inc(),
        health=health,
    )


def _checkout_root() -> Path:
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


def reconcile_tasks(app: web.Application, pipeline: Pipeline) -> dict[str, Work]:
    """Looking for missed deliveries, for a `Supervisor`; none when turned off or without
    GitHub credentials."""
    settings = pipeline.settings
    github = next(
        (f for f in pipeline.forges if isinstance(f, GitHubForge) and f.reporter is not None),
        None,
    )
    if not settings.reconcile_seconds or github is None or github.reporter is None:
        why = "no GitHub App or token" if settings.reconcile_seconds else "OGDC_RECONCILE_SECONDS=0"
        log_event(log, "reconcile_off", reason=why)
        return {}
    reconciler = Reconciler(
        pipeline,
        app[DRIVER_POOL],
        github,
        app[WAKE_UP],
        lookback=timedelta(hours=settings.reconcile_lookback_hours),
    )
    interval, health = settings.reconcile_seconds, app[SUPERVISOR].health
    return {"reconcile": lambda: reconcile_forever(reconciler, health, interval=interval)}


async def pipeline_context(app: web.Application) -> AsyncIterator[None]:
    """Build the pipeline, run its worker and follower for the life of the app."""
    settings, metrics = app[SETTINGS], app[METRICS]
    timeout = aiohttp.ClientTimeout(total=None, connect=15, sock_read=120)
    async with aiohttp.ClientSession(timeout=timeout) as session:
        workdir = await asyncio.to_thread(_checkout_root)
        pipeline = Pipeline(
            settings=settings,
            database=app[DATABASE],
            session=session,
            users=app[USERS],
            workflows=None
            if settings.dry_run
            else ArgoEngine(
                ArgoClient.from_settings(
                    settings, session, lambda outcome: metrics.argo_calls.labels(outcome).inc()
                )
            ),
            forges=configured_forges(settings, session, github_record=metrics.github_answer),
            render_settings=RenderSettings.from_settings(settings),
            load_policy=LoadPolicy.from_settings(settings),
            workdir=workdir,
            metrics=metrics,
            limits=Limits.from_settings(settings),
        )
        app[PIPELINE] = pipeline
        supervisor = app[SUPERVISOR]
        works: dict[str, Work] = {}
        if settings.worker_slots:
            works = {
                **build_worker(pipeline, supervisor.health).tasks(),
                **follower_tasks(pipeline, poll_interval=settings.argo_poll_seconds),
                **reconcile_tasks(app, pipeline),
            }
        stop_clones = contextlib.ExitStack()
        try:
            async with supervisor.running(works):
                yield
                # a clone in progress ends now, not when git is done, then the tasks stop
                stop_clones.enter_context(CHILDREN.stopped())
        finally:
            stop_clones.close()
            pipeline.recipe_workers.shutdown()
