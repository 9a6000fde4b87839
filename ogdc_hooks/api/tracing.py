"""One log line per request, each request with an id the client can quote back.

The id is the caller's `X-Request-Id` when it is sane (a proxy's or a load
balancer's), else a new one; it is returned in the response and set on every
log line the request causes.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from aiohttp import web
from aiohttp.typedefs import Handler

from ogdc_hooks.logs import REQUEST_ID, log_event, sane_request_id

log = logging.getLogger("ogdc_hooks.api.requests")

REQUEST_ID_HEADER = "X-Request-Id"
# What a handler adds to its request's log line (e.g. the webhook delivery id), so one
# request stays one line.
LOG_FIELDS = web.RequestKey("log_fields", dict[str, Any])


@web.middleware
async def tracing_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    request_id = sane_request_id(request.headers.get(REQUEST_ID_HEADER))
    reset = REQUEST_ID.set(request_id)
    started = time.perf_counter()
    fields: dict[str, Any] = {}
    request[LOG_FIELDS] = fields
    status = 500
    try:
        response = await handler(request)
        status = response.status
        response.headers[REQUEST_ID_HEADER] = request_id
        return response
    finally:
        log_event(
            log,
            "request",
            method=request.method,
            path=request.path,
            status=status,
            duration_ms=round((time.perf_counter() - started) * 1000, 1),
            remote=request.remote,
            **fields,
        )
        REQUEST_ID.reset(reset)
