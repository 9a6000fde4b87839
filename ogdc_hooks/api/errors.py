"""Every error is JSON `{"detail": "..."}`; nothing unexpected reaches the client as a traceback.

Handlers raise `api_error(status, detail)`. The middleware turns those, aiohttp's
own HTTP errors (404, 405, 413, ...) and any unexpected exception into JSON:
losing the database is a 503 to retry, anything else a 500 that is logged with
its traceback and shows the client only the request id.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping

import asyncpg
import sqlalchemy.exc
from aiohttp import web
from aiohttp.typedefs import Handler
from multidict import CIMultiDict

from ogdc_hooks.logs import REQUEST_ID, log_event

log = logging.getLogger(__name__)

# The database is down, restarting, gone or out of connections: an outage, not a bug.
_DATABASE_UNAVAILABLE = (
    ConnectionError,
    asyncpg.PostgresConnectionError,
    asyncpg.InterfaceError,
    # asyncpg on a connection the server ended mid-statement (MagicStack/asyncpg#1069)
    asyncpg.InternalClientError,
    asyncpg.CannotConnectNowError,
    asyncpg.TooManyConnectionsError,
    asyncpg.InvalidCatalogNameError,
    asyncpg.InvalidAuthorizationSpecificationError,
    sqlalchemy.exc.OperationalError,
    sqlalchemy.exc.InterfaceError,
    sqlalchemy.exc.TimeoutError,
)


class _PayloadTooLarge(web.HTTPClientError):
    """413 without aiohttp's size arguments: the handler words the detail itself."""

    status_code = 413


_REASONS: dict[int, type[web.HTTPException]] = {
    400: web.HTTPBadRequest,
    401: web.HTTPUnauthorized,
    403: web.HTTPForbidden,
    404: web.HTTPNotFound,
    408: web.HTTPRequestTimeout,
    409: web.HTTPConflict,
    413: _PayloadTooLarge,
    415: web.HTTPUnsupportedMediaType,
    422: web.HTTPUnprocessableEntity,
    429: web.HTTPTooManyRequests,
    502: web.HTTPBadGateway,
    503: web.HTTPServiceUnavailable,
}


def error_response(
    status: int, detail: str, headers: Mapping[str, str] | None = None
) -> web.Response:
    return web.json_response({"detail": detail}, status=status, headers=headers)


def api_error(
    status: int, detail: str, headers: Mapping[str, str] | None = None
) -> web.HTTPException:
    """An exception to raise from a handler; the middleware renders it as JSON."""
    error = _REASONS[status](reason=None, headers=headers)
    error.detail = detail  # type: ignore[attr-defined]
    return error


def database_unavailable(error: BaseException) -> bool:
    """Whether `error`, or what caused it (SQLAlchemy wraps asyncpg's), is a database outage."""
    seen: BaseException | None = error
    while seen is not None:
        if isinstance(seen, _DATABASE_UNAVAILABLE):
            return True
        seen = seen.__cause__
    return False


def _detail(error: web.HTTPException) -> str:
    detail = getattr(error, "detail", None)
    if isinstance(detail, str):
        return detail
    return error.reason


@web.middleware
async def error_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except web.HTTPException as error:
        if error.status < 400:
            raise  # redirects and the like pass through as they are
        headers = CIMultiDict(error.headers)
        for name in ("Content-Type", "Content-Length"):
            headers.popall(name, None)
        return error_response(error.status, _detail(error), headers)
    except Exception as error:
        if database_unavailable(error):
            log_event(log, "database_unavailable", level=logging.WARNING, error=repr(error))
            return error_response(
                503, "The database is unavailable; try again shortly.", {"Retry-After": "5"}
            )
        log.exception("unhandled error in %s %s", request.method, request.path)
        return error_response(
            500, f"internal server error (request id {REQUEST_ID.get() or 'unknown'})"
        )
