"""The application, wired: the HTTP side (`api/app.py`), the database, the webhook intake
and the pipeline (`pipeline/`), each started in order with the application and stopped in
reverse. The one module that knows them all; nothing imports it but the CLI's `serve`.

To run something for the life of the process (a queue worker), add an async
generator taking the app to `BACKGROUND_CONTEXTS`, after `database_context`,
whose app keys (`DATABASE`, `USERS`) it may then use; it starts its tasks with
`app[SUPERVISOR].running(...)`, so that they are restarted when they fail and
`/readyz` says when one is down.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable
from datetime import timedelta

import aiohttp
import asyncpg
from aiohttp import web

from ogdc_hooks.api import sso, webhooks
from ogdc_hooks.api.app import database_context, web_app
from ogdc_hooks.api.context import (
    DATABASE,
    DRIVER_POOL,
    SETTINGS,
    SUPERVISOR,
    USERS,
)
from ogdc_hooks.api.metrics import METRICS
from ogdc_hooks.api.webhooks import WAKE_UP
from ogdc_hooks.argo.client import ArgoClient
from ogdc_hooks.argo.engine import ArgoEngine
from ogdc_hooks.checkout import CHILDREN
from ogdc_hooks.forges.configured import configured_forges
from ogdc_hooks.forges.github.forge import GitHubForge
from ogdc_hooks.jobs.supervise import Health, Work
from ogdc_hooks.jobs.wakeup import WakeUp
from ogdc_hooks.logs import log_event
from ogdc_hooks.pipeline.context import PIPELINE, Limits, Pipeline
from ogdc_hooks.pipeline.reconcile import Reconciler, reconcile_forever
from ogdc_hooks.pipeline.service import checkout_root, pipeline_tasks
from ogdc_hooks.recipes.render import RenderSettings
from ogdc_hooks.recipes.validate import LoadPolicy
from ogdc_hooks.settings import Settings

log = logging.getLogger(__name__)

BackgroundContext = Callable[[web.Application], AsyncIterator[None]]


def reconcile_tasks(
    pipeline: Pipeline, pool: asyncpg.Pool, wake_up: WakeUp, health: Health
) -> dict[str, Work]:
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
    return {"reconcile": lambda: reconcile_forever(reconciler, health, interval=interval)}


async def pipeline_context(app: web.Application) -> AsyncIterator[None]:
    """Build the pipeline, run its worker, follower and reconciler for the life of the app."""
    settings, metrics = app[SETTINGS], app[METRICS]
    timeout = aiohttp.ClientTimeout(total=None, connect=15, sock_read=120)
    async with aiohttp.ClientSession(timeout=timeout) as session:
        workdir = await asyncio.to_thread(checkout_root)
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
            forges=configured_forges(
                settings,
                session,
                github_record=metrics.github_answer,
                engine=app[DATABASE].engine,
            ),
            render_settings=RenderSettings.from_settings(settings),
            load_policy=LoadPolicy.from_settings(settings),
            workdir=workdir,
            metrics=metrics,
            limits=Limits.from_settings(settings),
        )
        app[PIPELINE] = pipeline
        supervisor = app[SUPERVISOR]
        works = (
            {
                **pipeline_tasks(pipeline, supervisor.health),
                **reconcile_tasks(pipeline, app[DRIVER_POOL], app[WAKE_UP], supervisor.health),
            }
            if settings.worker_slots  # else the replica only takes requests
            else {}
        )
        stop_clones = contextlib.ExitStack()
        try:
            async with supervisor.running(works):
                yield
                # a clone in progress ends now, not when git is done, then the tasks stop
                stop_clones.enter_context(CHILDREN.stopped())
        finally:
            stop_clones.close()
            pipeline.recipe_workers.shutdown()


BACKGROUND_CONTEXTS: tuple[BackgroundContext, ...] = (
    database_context,
    sso.oidc_context,
    webhooks.intake_context,
    pipeline_context,
)


def create_app(settings: Settings) -> web.Application:
    """The application for `settings`; the database opens when it starts."""
    app = web_app(settings)
    app.cleanup_ctx.extend(BACKGROUND_CONTEXTS)
    return app
