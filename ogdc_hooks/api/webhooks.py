"""`POST /webhooks/<forge>`: verify, store durably, answer; the work happens later in a job.

One handler for every forge's route (`webhook_route`), each with its forge's
`Intake` (`forges.configured.intakes`), which knows the forge's signature and
headers; everything else is the same for all. Open to requests without a token
(`@public`): the forge proves itself with the HMAC signature instead. Without
a configured secret nothing is accepted (503).
Until the signature is known a body is anyone's, so it is read in chunks into
an incremental HMAC, under a time limit and a budget of unverified bytes shared
by all requests (`OGDC_WEBHOOK_UNVERIFIED_BYTES`): many large unsigned bodies at
once get 503, not the service's memory. A delivery is answered 202 only once it
and its job are committed; a redelivery of a stored id gets 200 and is not
processed again (it is counted on the stored row). An ignored event is answered
200 whether or not recording it (without its body, for the dashboard) succeeded:
nothing needs it stored.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
from aiohttp import web
from pydantic import BaseModel
from sqlalchemy.exc import SQLAlchemyError

from ogdc_hooks.api.context import DRIVER_POOL, SETTINGS, SUPERVISOR
from ogdc_hooks.api.errors import api_error
from ogdc_hooks.api.metrics import METRICS
from ogdc_hooks.api.openapi import operation
from ogdc_hooks.api.security import public
from ogdc_hooks.api.tracing import LOG_FIELDS
from ogdc_hooks.forges.base import Intake, SignatureCheck
from ogdc_hooks.forges.configured import intakes
from ogdc_hooks.jobs.wakeup import WakeUp
from ogdc_hooks.logs import log_event
from ogdc_hooks.webhooks.events import MAX_BODY_BYTES, WebhookRejected
from ogdc_hooks.webhooks.store import DeliveryWriter

log = logging.getLogger(__name__)


class WebhookAnswer(BaseModel):
    detail: str
    delivery: str | None = None


class UnverifiedBytes:
    """Bytes of webhook bodies held before their signature is known, across all requests
    of this process (one event loop, so no lock)."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.held = 0

    def take(self, count: int) -> None:
        if self.held + count > self.limit:
            raise api_error(
                503,
                f"too many unsigned webhook bytes are arriving at once (more than {self.limit}, "
                "OGDC_WEBHOOK_UNVERIFIED_BYTES); retry later",
                {"Retry-After": "5"},
            )
        self.held += count

    def give(self, count: int) -> None:
        self.held -= count


WAKE_UP = web.AppKey("wake_up", WakeUp)
WRITER = web.AppKey("delivery_writer", DeliveryWriter)
UNVERIFIED = web.AppKey("unverified_bytes", UnverifiedBytes)
INTAKES = web.AppKey("intakes", dict[str, Intake])  # by forge kind, as in the route

# What a store that could not reach the database raises.
_UNSTORED = (
    OSError,
    asyncpg.PostgresError,
    asyncpg.InterfaceError,
    asyncpg.InternalClientError,  # a connection the server ended (MagicStack/asyncpg#1069)
    SQLAlchemyError,
    TimeoutError,
)

routes = web.RouteTableDef()


async def intake_context(app: web.Application) -> AsyncIterator[None]:
    """Store deliveries in group commits; wake the workers (of every replica) shortly after."""
    wake_up = WakeUp(app[DRIVER_POOL])
    app[WAKE_UP] = wake_up
    writer = DeliveryWriter(app[DRIVER_POOL])
    app[WRITER] = writer
    app[METRICS].deliveries_uncommitted.set_function(lambda: writer.waiting + writer.committing)
    app[UNVERIFIED] = UnverifiedBytes(app[SETTINGS].webhook_unverified_bytes)
    app[INTAKES] = intakes(app[SETTINGS])
    async with app[SUPERVISOR].running({"wake-up": wake_up.run, "delivery writer": writer.run}):
        yield


async def _signed_body(
    request: web.Request, check: SignatureCheck
) -> tuple[bytes, tuple[str, ...]]:
    """The raw body once its signature is verified, and the hosts whose secret signed it:
    413 past 25 MiB, 408 when it does not arrive in time, 503 when the budget of unverified
    bytes is spent; the budget is given back as soon as the check is done."""
    if request.content_length is not None and request.content_length > MAX_BODY_BYTES:
        raise api_error(413, f"payload larger than {MAX_BODY_BYTES} bytes")
    budget = request.app[UNVERIFIED]
    body = bytearray()
    seconds = request.app[SETTINGS].http_read_timeout_seconds
    # A body already received whole (the usual delivery) needs no timer.
    limit = None if request.content.is_eof() else seconds
    try:
        async with asyncio.timeout(limit):
            async for chunk in request.content.iter_chunked(1 << 16):
                budget.take(len(chunk))
                body += chunk
                check.update(chunk)
                if len(body) > MAX_BODY_BYTES:
                    raise api_error(413, f"payload larger than {MAX_BODY_BYTES} bytes")
        matched = check.verify()
    except TimeoutError:
        raise api_error(
            408,
            f"the body did not arrive within {seconds} s (OGDC_HTTP_READ_TIMEOUT_SECONDS); "
            "send it at once",
        ) from None
    finally:
        budget.give(len(body))
    return bytes(body), matched


def webhook_route(path: str, kind: str) -> None:
    """Serve `POST path` with the intake of forge `kind` (`forges.configured.intakes`)."""

    @routes.post(path)
    @public
    async def receive(request: web.Request) -> web.Response:
        """Count every delivery by forge, event and answer (`ogdc_webhook_deliveries_total`)."""
        seen = {"event": "unverified", "answer": "rejected"}
        try:
            return await _receive(request, request.app[INTAKES][kind], seen)
        finally:
            deliveries = request.app[METRICS].deliveries
            deliveries.labels(kind, seen["event"], seen["answer"]).inc()

    receive.__name__ = f"{kind}_webhook"


async def _receive(request: web.Request, intake: Intake, seen: dict[str, str]) -> web.Response:
    disabled = intake.disabled_reason()
    if disabled:
        seen["answer"] = "unavailable"
        raise api_error(503, disabled)
    try:
        body, matched = await _signed_body(request, intake.signature_check(request.headers))
        delivery = intake.parse_verified(request.headers, body, matched)
    except WebhookRejected as rejected:
        log_event(log, "webhook_rejected", status=rejected.status, reason=rejected.detail)
        raise api_error(rejected.status, rejected.detail) from None
    seen["event"] = delivery.event  # signed by the forge: one of its few event names
    if intake.is_ping(delivery):
        seen["answer"] = "pong"
        return web.json_response({"detail": "pong", "delivery": delivery.id})
    work = intake.plan_work(delivery)
    if work is None:
        seen["answer"] = "ignored"
        log_event(
            log,
            "webhook_ignored",
            forge=delivery.forge,
            forge_event=delivery.event,
            delivery=delivery.id,
        )
        try:
            await request.app[WRITER].store(delivery, None, answer="ignored")
        except _UNSTORED as err:
            log_event(
                log,
                "webhook_ignored_not_recorded",
                level=logging.WARNING,
                forge=delivery.forge,
                delivery=delivery.id,
                error=type(err).__name__,
            )
        return web.json_response(
            {"detail": f"{delivery.event} event ignored", "delivery": delivery.id}
        )
    try:
        stored = await request.app[WRITER].store(delivery, work)
    except _UNSTORED as err:
        seen["answer"] = "unavailable"
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
        seen["answer"] = "duplicate"
        return web.json_response({"detail": "already received", "delivery": delivery.id})
    seen["answer"] = "accepted"
    request.app[WAKE_UP].poke()
    request[LOG_FIELDS].update(
        delivery=delivery.id,
        forge=delivery.forge,
        forge_event=delivery.event,
        repository=delivery.repository,
        work=work,
    )
    return web.json_response({"detail": "accepted", "delivery": delivery.id}, status=202)


webhook_route("/webhooks/github", "github")
webhook_route("/webhooks/forgejo", "forgejo")

_HEADERS: list[dict[str, Any]] = [
    {"name": name, "in": "header", "required": False, "schema": {"type": "string"}}
    for name in ("X-GitHub-Event", "X-GitHub-Delivery", "X-Hub-Signature-256")
]


class GitHubPayload(BaseModel):
    """Any GitHub webhook payload (a JSON object), signed with the webhook secret."""

    model_config = {"extra": "allow"}


class ForgejoPayload(BaseModel):
    """Any Forgejo or Gitea webhook payload (a JSON object), signed with its instance's
    webhook secret."""

    model_config = {"extra": "allow"}


_FORGEJO_HEADERS: list[dict[str, Any]] = [
    {"name": name, "in": "header", "required": False, "schema": {"type": "string"}}
    for name in (
        "X-Forgejo-Event",
        "X-Forgejo-Delivery",
        "X-Forgejo-Signature",
        "X-Gitea-Event",
        "X-Gitea-Delivery",
        "X-Gitea-Signature",
    )
]


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
                408: "The body did not arrive within OGDC_HTTP_READ_TIMEOUT_SECONDS",
                413: "The body is larger than GitHub's 25 MiB",
                503: "No webhook secret is configured, the database is unavailable, or too "
                "many unsigned bytes are arriving at once",
            },
        )
    },
    "/webhooks/forgejo": {
        "post": operation(
            "Receive a Forgejo or Gitea webhook delivery (signed with its instance's secret: "
            "FORGEJO_WEBHOOK_SECRET or FORGEJO_INSTANCES_FILE)",
            body={"application/json": ForgejoPayload},
            parameters=_FORGEJO_HEADERS,
            responses={
                200: (
                    "An ignored event (create, delete, ...) or a delivery already received",
                    WebhookAnswer,
                ),
                202: ("Stored; it will be processed", WebhookAnswer),
            },
            errors={
                401: "Missing or wrong X-Forgejo-Signature, or a delivery from an instance "
                "that is not configured (its repository on another origin)",
                408: "The body did not arrive within OGDC_HTTP_READ_TIMEOUT_SECONDS",
                413: "The body is larger than 25 MiB",
                503: "No Forgejo instance is configured, the database is unavailable, or too "
                "many unsigned bytes are arriving at once",
            },
        )
    },
}
openapi_models: tuple[type[BaseModel], ...] = (WebhookAnswer, GitHubPayload, ForgejoPayload)
