"""Is the process up (`/healthz`), may it take traffic (`/readyz`), which version (`/version`)."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from aiohttp import web
from pydantic import BaseModel
from sqlalchemy.exc import SQLAlchemyError

from ogdc_hooks import __version__
from ogdc_hooks.api.context import DATABASE, SUPERVISOR
from ogdc_hooks.api.errors import api_error
from ogdc_hooks.api.openapi import operation
from ogdc_hooks.api.security import public
from ogdc_hooks.db.migrate import current_revision, head_revision
from ogdc_hooks.logs import log_event

log = logging.getLogger(__name__)

READINESS_TIMEOUT = 5.0
HEAD_REVISION = head_revision()  # read once, at import, not on the event loop


class Status(BaseModel):
    status: str


class Version(BaseModel):
    ogdc_hooks_version: str


routes = web.RouteTableDef()


@routes.get("/healthz")
@public
async def healthz(request: web.Request) -> web.Response:
    """The process answers; says nothing about the database (that is /readyz)."""
    return web.json_response(Status(status="ok").model_dump())


@routes.get("/readyz")
@public
async def readyz(request: web.Request) -> web.Response:
    """The database answers, its schema is at the newest migration, and background work runs.

    Background work runs when no supervised task is waiting for its restart, the
    worker has reached the job queue (a claim or a lease renewal) within its
    bound, the larger of 30 s and `OGDC_JOB_LEASE_SECONDS`, and a reconcile run
    has ended within its bound (`pipeline.reconcile.stall_bound`).
    """
    try:
        async with asyncio.timeout(READINESS_TIMEOUT):
            revision = await current_revision(request.app[DATABASE].engine)
    except (OSError, SQLAlchemyError, TimeoutError) as err:
        log_event(log, "not_ready", level=logging.WARNING, reason=type(err).__name__)
        raise api_error(503, "The database cannot be reached.") from None
    if revision != HEAD_REVISION:
        raise api_error(503, f"The database schema is at {revision}, not {HEAD_REVISION}.")
    problems = request.app[SUPERVISOR].health.problems()
    if problems:
        log_event(log, "not_ready", level=logging.WARNING, reason="; ".join(problems))
        raise api_error(503, f"Background work is not running: {'; '.join(problems)}.")
    return web.json_response(Status(status="ready").model_dump())


@routes.get("/version")
@public
async def version(request: web.Request) -> web.Response:
    return web.json_response(Version(ogdc_hooks_version=__version__).model_dump())


openapi_paths: dict[str, dict[str, Any]] = {
    "/healthz": {"get": operation("The process is up", responses={200: ("Up", Status)})},
    "/readyz": {
        "get": operation(
            "The database answers and is migrated, and background work runs",
            responses={200: ("Ready for traffic", Status)},
            errors={
                503: "Not ready: the database is unreachable or not migrated, or a background "
                "task is down"
            },
        )
    },
    "/version": {
        "get": operation("The version of ogdc-hooks", responses={200: ("The version", Version)})
    },
}
openapi_models: tuple[type[BaseModel], ...] = (Status, Version)
