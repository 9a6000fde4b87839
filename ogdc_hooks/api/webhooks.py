"""`POST /webhooks/github`: verify, store durably, answer; the work happens later in a job.

Open to requests without a token (`@public`): GitHub proves itself with the
HMAC signature instead. Without a configured secret nothing is accepted (503).
A delivery is answered 202 only once it and its job are committed; a
redelivery of a stored id gets 200 and is not processed again.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
from aiohttp import web
from pydantic import BaseModel
from sqlalchemy.exc import SQLAlchemyError

from ogdc_hooks.api.context import DRIVER_POOL, SETTINGS, SUPERVISOR
from ogdc_hooks.api.errors import api_error
from ogdc_hooks.api.openapi import operation
from ogdc_hooks.api.security import public
from ogdc_hooks.api.tracing import LOG_FIELDS
from ogdc_hooks.jobs.wakeup import WakeUp
from ogdc_hooks.logs import log_event
from ogdc_hooks.webhooks.events import (
    MAX_BODY_BYTES,
    WebhookRejected,
    parse_delivery,
    plan_work,
)
from ogdc_hooks.webhooks.store import store_delivery

log = logging.getLogger(__name__)


class WebhookAnswer(BaseModel):
    detail: str
    delivery: str | None = None


WAKE_UP = web.AppKey("wake_up", WakeUp)

routes = web.RouteTableDef()


async def intake_context(app: web.Application) -> AsyncIterator[None]:
    """Wake the workers (of every replica) shortly after deliveries are stored."""
    wake_up = WakeUp(app[DRIVER_POOL])
    app[WAKE_UP] = wake_up
    async with app[SUPERVISOR].running({"wake-up": wake_up.run}):
        yield


async def _body(request: web.Request) -> bytes:
    """The raw body, refused with 413 past GitHub's 25 MiB without reading it all."""
    if request.content_length is not None and request.content_length > MAX_BODY_BYTES:
        raise api_error(413, f"payload larger than {MAX_BODY_BYTES} bytes")
    body = bytearray()
    async for chunk in request.content.iter_chunked(1 << 16):
        body += chunk
        if len(body) > MAX_BODY_BYTES:
            raise api_error(413, f"payload larger than {MAX_BODY_BYTES} bytes")
    return bytes(body)


@routes.post("/webhooks/github")
@public
async def github_webhook(request: web.Request) -> web.Response:
    secret = request.app[SETTINGS].github_webhook_secret
    if not secret:
        raise api_error(503, "webhooks are disabled: GITHUB_WEBHOOK_SECRET is not configured")
    body = await _body(request)
    try:
        delivery = parse_delivery(request.headers, body, secret.reveal())
    except WebhookRejected as rejected:
        log_event(log, "webhook_rejected", status=rejected.status, reason=rejected.detail)
        raise api_error(rejected.status, rejected.detail) from None
    if delivery.event == "ping":
        return web.json_response({"detail": "pong", "delivery": delivery.id})
    work = plan_work(delivery)
    if work is None:
        log_event(log, "webhook_ignored", github_event=delivery.event, delivery=delivery.id)
        return web.json_response(
            {"detail": f"{delivery.event} event ignored", "delivery": delivery.id}
        )
    try:
        stored = await store_delivery(request.app[DRIVER_POOL], delivery, work)
    except (
        OSError,
        asyncpg.PostgresError,
        asyncpg.InterfaceError,
        asyncpg.InternalClientError,  # a connection the server ended (MagicStack/asyncpg#1069)
        SQLAlchemyError,
        TimeoutError,
    ) as err:
        log_event(
            log,
            "webhook_not_stored",
            level=logging.ERROR,
            delivery=delivery.id,
            error=type(err).__name__,
        )
        raise api_error(
            503, "the delivery could not be stored; retry later", {"Retry-After": "10"}
        ) from None
    if not stored:
        return web.json_response({"detail": "already received", "delivery": delivery.id})
    request.app[WAKE_UP].poke()
    request[LOG_FIELDS].update(
        delivery=delivery.id, github_event=delivery.event, repository=delivery.repository, work=work
    )
    return web.json_response({"detail": "accepted", "delivery": delivery.id}, status=202)


_HEADERS: list[dict[str, Any]] = [
    {"name": name, "in": "header", "required": False, "schema": {"type": "string"}}
    for name in ("X-GitHub-Event", "X-GitHub-Delivery", "X-Hub-Signature-256")
]


class GitHubPayload(BaseModel):
    """Any GitHub webhook payload (a JSON object), signed with the webhook secret."""

    model_config = {"extra": "allow"}


openapi_paths: dict[str, dict[str, Any]] = {
    "/webhooks/github": {
        "post": operation(
            "Receive a GitHub webhook delivery (signed with GITHUB_WEBHOOK_SECRET)",
            body={"application/json": GitHubPayload},
            parameters=_HEADERS,
            responses={
                200: ("A ping, an ignored event, or a delivery already received", WebhookAnswer),
                202: ("Stored; it will be processed", WebhookAnswer),
            },
            errors={
                401: "Missing or wrong X-Hub-Signature-256",
                503: "No webhook secret is configured, or the database is unavailable",
            },
        )
    }
}
openapi_models: tuple[type[BaseModel], ...] = (WebhookAnswer, GitHubPayload)
