"""`GET /metrics` and the middleware that counts requests by route template and status.

`GET /metrics` is public, like /healthz: scrapers carry no token, and it shows
only route templates, methods, status codes, kinds, states, outcomes, timings
and process figures: never a user name, a path parameter, a header or a
secret. Each application has its own registry (`METRICS`, see
`ogdc_hooks/metrics.py`); the database's gauges are read as it is scraped.
"""

from __future__ import annotations

import time
from typing import Any

from aiohttp import web
from aiohttp.typedefs import Handler
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from pydantic import BaseModel

from ogdc_hooks.api.context import DATABASE
from ogdc_hooks.api.openapi import operation
from ogdc_hooks.api.security import public
from ogdc_hooks.metrics import Metrics

__all__ = ["METRICS", "Metrics", "metrics_middleware", "openapi_models", "openapi_paths", "routes"]

_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})

METRICS = web.AppKey("metrics", Metrics)


def _route(request: web.Request) -> str:
    if request.match_info.http_exception is not None:
        return "unmatched"
    resource = request.match_info.route.resource
    return resource.canonical if resource is not None else "unmatched"


@web.middleware
async def metrics_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    started = time.perf_counter()
    status = 500
    try:
        response = await handler(request)
        status = response.status
        return response
    finally:
        metrics = request.app[METRICS]
        route = _route(request)
        method = request.method if request.method in _METHODS else "OTHER"
        metrics.requests.labels(route, method, str(status)).inc()
        metrics.latency.labels(route, method).observe(time.perf_counter() - started)


routes = web.RouteTableDef()


@routes.get("/metrics")
@public
async def metrics(request: web.Request) -> web.Response:
    registry = request.app[METRICS]
    database = request.app.get(DATABASE)
    if database is not None:
        await registry.database.refresh(database.engine)
    body = generate_latest(registry.registry)
    response = web.Response(body=body)
    response.headers["Content-Type"] = CONTENT_TYPE_LATEST
    return response


openapi_paths: dict[str, dict[str, Any]] = {
    "/metrics": {
        "get": operation(
            "Prometheus metrics of this process",
            responses={200: ("Metrics in the Prometheus text format", "text/plain")},
        )
    }
}
openapi_models: tuple[type[BaseModel], ...] = ()
