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
import subprocess
from collections.abc import AsyncIterator, Callable
from contextlib import AsyncExitStack

import aiohttp
import asyncpg
from aiohttp import web
from sqlalchemy.exc import SQLAlchemyError

from ogdc_hooks.api import webhooks
from ogdc_hooks.api.app import web_app
from ogdc_hooks.api.context import (
    DATABASE,
    DRIVER_POOL,
    LOGIN_THROTTLE,
    SETTINGS,
    SUPERVISOR,
    USERS,
    StartupError,
)
from ogdc_hooks.api.health import HEAD_REVISION
from ogdc_hooks.api.metrics import METRICS
from ogdc_hooks.api.webhooks import WAKE_UP
from ogdc_hooks.argo.client import ArgoClient
from ogdc_hooks.argo.engine import ArgoEngine
from ogdc_hooks.auth.throttle import LoginThrottle
from ogdc_hooks.auth.users import UserStore
from ogdc_hooks.checkout import CHILDREN
from ogdc_hooks.db.engine import open_database, open_driver_pool
from ogdc_hooks.db.migrate import migrate
from ogdc_hooks.forges.configured import configured_forges
from ogdc_hooks.logs import log_event
from ogdc_hooks.pipeline.context import PIPELINE, Limits, Pipeline
from ogdc_hooks.pipeline.service import checkout_root, pipeline_tasks
from ogdc_hooks.recipes.render import RenderSettings
from ogdc_hooks.recipes.validate import LoadPolicy
from ogdc_hooks.settings import Settings

log = logging.getLogger(__name__)

BackgroundContext = Callable[[web.Application], AsyncIterator[None]]


def _where(settings: Settings) -> str:
    if settings.embedded_db:
        return f"the embedded PostgreSQL in {settings.data_dir}"
    return f"PostgreSQL at {settings.db_host}:{settings.db_port}/{settings.db_name}"


def _why(err: BaseException, settings: Settings) -> str:
    """What went wrong with the database and what to do, in words where we know the case."""
    cause: BaseException | None = err
    while cause is not None:
        if isinstance(cause, asyncpg.InvalidCatalogNameError):
            return (
                f"the database {settings.db_name!r} does not exist there: create it "
                f"(createdb -h {settings.db_host} -p {settings.db_port} "
                f"-U {settings.db_username} {settings.db_name}) or set OGDC_DB_NAME"
            )
        if isinstance(cause, asyncpg.InvalidAuthorizationSpecificationError):
            return "the server refused the user or password: check OGDC_DB_USERNAME/PASSWORD"
        if isinstance(cause, ConnectionRefusedError):
            return "nothing answers there: is PostgreSQL running, and OGDC_DB_HOST/PORT right?"
        cause = getattr(cause, "orig", None) or cause.__cause__
    return f"{type(err).__name__}: {' '.join(str(err).split())}"


async def database_context(app: web.Application) -> AsyncIterator[None]:
    """Open the database, migrate it (under the lock) and make sure the admin user is current."""
    settings = app[SETTINGS]
    assert settings.admin_password is not None  # checked by create_app
    async with AsyncExitStack() as opened:
        try:
            database = await open_database(settings)
            opened.push_async_callback(database.close)
            found = await migrate(database.engine)
            if found != HEAD_REVISION:
                log_event(log, "migrated", from_revision=found, to_revision=HEAD_REVISION)
            lookups = await open_driver_pool(database.engine)
            opened.push_async_callback(lookups.close)
            users = UserStore(database.sessions, lookups)
            changed = await users.ensure_admin(settings.admin_password.reveal())
            if changed is not None:
                log_event(log, f"admin_{changed}", user="admin")
        except (OSError, subprocess.SubprocessError, asyncpg.PostgresError, SQLAlchemyError) as err:
            raise StartupError(f"cannot use {_where(settings)}: {_why(err, settings)}") from None
        app[DATABASE] = database
        app[DRIVER_POOL] = lookups
        app[USERS] = users
        app[LOGIN_THROTTLE] = LoginThrottle(database.engine)
        log_event(log, "database_ready", database=_where(settings))
        yield


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
            forges=configured_forges(settings, session, github_record=metrics.github_answer),
            render_settings=RenderSettings.from_settings(settings),
            load_policy=LoadPolicy.from_settings(settings),
            workdir=workdir,
            metrics=metrics,
            limits=Limits.from_settings(settings),
        )
        app[PIPELINE] = pipeline
        supervisor = app[SUPERVISOR]
        works = pipeline_tasks(pipeline, app[DRIVER_POOL], app[WAKE_UP], supervisor.health)
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
    webhooks.intake_context,
    pipeline_context,
)


def create_app(settings: Settings) -> web.Application:
    """The application for `settings`; the database opens when it starts."""
    app = web_app(settings)
    app.cleanup_ctx.extend(BACKGROUND_CONTEXTS)
    return app
