"""The dashboard wired into the application: templates, the session cookie, the routes
under `API_ROOT_PATH` + `/ui/`."""

from __future__ import annotations

import warnings

import aiohttp_jinja2
import aiohttp_session
import jinja2
from aiohttp import web

from ogdc_hooks.settings import Settings
from ogdc_hooks.ui import views
from ogdc_hooks.ui.session import UI_PREFIX, SessionCookies, page, session_key


def _prefix(root_path: str) -> str:
    return root_path.rstrip("/") + "/ui"


def install(app: web.Application, settings: Settings) -> None:
    """Add the dashboard to `app` (before it starts)."""
    assert settings.jwt_secret_key is not None  # web_app checks it first
    prefix = _prefix(settings.api_root_path)
    app[UI_PREFIX] = prefix
    environment = aiohttp_jinja2.setup(
        app,
        loader=jinja2.PackageLoader("ogdc_hooks.ui", "templates"),
        autoescape=True,  # every template, whatever its name
        undefined=jinja2.StrictUndefined,
    )
    environment.globals["ui"] = prefix
    # The session middleware loads a cookie only for handlers that ask (the dashboard's).
    # aiohttp-session 2.12 keys requests with strings, which aiohttp warns of at every
    # first use; the keys are the library's, not ours to change.
    warnings.filterwarnings(
        "ignore", message="It is recommended to use web.RequestKey", module="aiohttp_session"
    )
    aiohttp_session.setup(
        app, SessionCookies(session_key(settings.jwt_secret_key.reveal()), path=prefix)
    )
    app.router.add_get(prefix, _to_runs)
    for route in views.routes:
        assert isinstance(route, web.RouteDef)
        app.router.add_route(route.method, prefix + route.path, route.handler)


@page(anonymous=True)
async def _to_runs(request: web.Request) -> web.StreamResponse:
    raise web.HTTPPermanentRedirect(request.app[UI_PREFIX] + "/")
