"""The aiohttp application's HTTP side: its route modules and middlewares.

To add routes, write a module with `routes = web.RouteTableDef()`,
`openapi_paths` and `openapi_models` (see `openapi.ApiModule`) and list it in
`API_MODULES`. Its routes need a token unless a handler is marked `@public`.
What runs for the life of the process is wired in `ogdc_hooks/bootstrap.py`.
"""

from __future__ import annotations

import logging
from typing import Any

from aiohttp import web

from ogdc_hooks import __version__
from ogdc_hooks.api import accounts, health, metrics, openapi, runs, webhooks
from ogdc_hooks.api.context import (
    OPENAPI_DOCUMENT,
    SETTINGS,
    SUPERVISOR,
    TOKENS,
)
from ogdc_hooks.api.errors import error_middleware
from ogdc_hooks.api.metrics import METRICS, Metrics, metrics_middleware
from ogdc_hooks.api.openapi import ApiModule, build_document, full_path
from ogdc_hooks.api.security import security_middleware
from ogdc_hooks.api.tracing import tracing_middleware
from ogdc_hooks.auth.tokens import TokenVerifier
from ogdc_hooks.jobs.supervise import Supervisor
from ogdc_hooks.settings import Settings, SettingsError

log = logging.getLogger(__name__)

API_MODULES: tuple[ApiModule, ...] = (health, accounts, webhooks, runs, metrics, openapi)

# Outermost first: the request id and log line see the final answer, metrics count
# it, errors become JSON, and only then is the token checked.
MIDDLEWARES = (tracing_middleware, metrics_middleware, error_middleware, security_middleware)


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
    document: dict[str, Any] = build_document(
        API_MODULES, root_path=settings.api_root_path, version=__version__
    )
    app[OPENAPI_DOCUMENT] = document
    _add_routes(app, settings.api_root_path)
    return app
