"""The aiohttp application's HTTP side: its route modules, middlewares and database.

To add routes, write a module with `routes = web.RouteTableDef()`,
`openapi_paths` and `openapi_models` (see `openapi.ApiModule`) and list it in
`API_MODULES`. Its routes need a token unless a handler is marked `@public`.
What runs for the life of the process is wired in `ogdc_hooks/bootstrap.py`.
"""

from __future__ import annotations

import logging
import subprocess
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from typing import Any

import asyncpg
from aiohttp import web
from sqlalchemy.exc import SQLAlchemyError

from ogdc_hooks import __version__
from ogdc_hooks.api import accounts, health, metrics, openapi, runs, sso, webhooks
from ogdc_hooks.api.context import (
    DATABASE,
    DRIVER_POOL,
    LOGIN_THROTTLE,
    OIDC,
    OPENAPI_DOCUMENT,
    SETTINGS,
    SUPERVISOR,
    TOKENS,
    USERS,
    StartupError,
)
from ogdc_hooks.api.errors import error_middleware
from ogdc_hooks.api.health import HEAD_REVISION
from ogdc_hooks.api.metrics import METRICS, Metrics, metrics_middleware
from ogdc_hooks.api.openapi import ApiModule, build_document, full_path
from ogdc_hooks.api.security import security_middleware
from ogdc_hooks.api.tracing import tracing_middleware
from ogdc_hooks.auth.throttle import LoginThrottle
from ogdc_hooks.auth.tokens import TokenVerifier
from ogdc_hooks.auth.users import UserStore
from ogdc_hooks.db.engine import open_database, open_driver_pool
from ogdc_hooks.db.migrate import migrate
from ogdc_hooks.jobs.supervise import Supervisor
from ogdc_hooks.logs import log_event
from ogdc_hooks.settings import Settings, SettingsError
from ogdc_hooks.ui import app as ui

log = logging.getLogger(__name__)

API_MODULES: tuple[ApiModule, ...] = (health, accounts, sso, webhooks, runs, metrics, openapi)

# Outermost first: the request id and log line see the final answer, metrics count
# it, errors become JSON, and only then is the token checked.
MIDDLEWARES = (tracing_middleware, metrics_middleware, error_middleware, security_middleware)


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
            users = UserStore(database.sessions, lookups, settings.github_host)
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


def _add_routes(app: web.Application, root_path: str) -> None:
    for module in API_MODULES:
        for route in module.routes:
            assert isinstance(route, web.RouteDef)  # build_document refuses anything else
            path = full_path(root_path, route.path)
            web.RouteDef(route.method, path, route.handler, route.kwargs).register(app.router)


def web_app(settings: Settings) -> web.Application:
    """The routes, middlewares and shared objects for `settings`, without the background
    contexts (`bootstrap.create_app` adds them)."""
    if not settings.admin_password:
        raise SettingsError("OGDC_ADMIN_PASSWORD: required")
    if not settings.jwt_secret_key:
        raise SettingsError("OGDC_JWT_SECRET_KEY: required")
    app = web.Application(middlewares=MIDDLEWARES)
    app[SETTINGS] = settings
    app[TOKENS] = TokenVerifier(settings.jwt_secret_key.reveal())
    app[METRICS] = Metrics()
    app[SUPERVISOR] = Supervisor()
    provider = sso.provider_for(settings, app)
    if provider is not None:
        app[OIDC] = provider
    document: dict[str, Any] = build_document(
        API_MODULES, root_path=settings.api_root_path, version=__version__
    )
    app[OPENAPI_DOCUMENT] = document
    _add_routes(app, settings.api_root_path)
    ui.install(app, settings)
    return app
