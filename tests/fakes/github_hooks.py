"""The webhook side of the fake GitHub: deliveries it sends, keeps, lists and redelivers.

Rules, and where they come from (docs.github.com):

- A delivery is a POST of the JSON payload with `X-GitHub-Event`,
  `X-GitHub-Delivery` (the GUID), `X-GitHub-Hook-ID`,
  `X-GitHub-Hook-Installation-Target-Type`/`-ID`, `X-Hub-Signature-256`
  (HMAC-SHA256 of the body with the webhook secret), `X-Hub-Signature`
  (SHA-1) and a `GitHub-Hookshot/...` user agent ("Webhook events and
  payloads", "Delivery headers"). GitHub does not retry a failed delivery
  ("Handling failed webhook deliveries").
- Each attempt is kept (3 days on github.com, 7 on GHES) and listed newest
  first by "List deliveries for an app webhook" (`GET /app/hook/deliveries`)
  or "List deliveries for a repository webhook"
  (`GET /repos/{owner}/{repo}/hooks/{hook_id}/deliveries`): `per_page` at
  most 100 (default 30), paged by an opaque `cursor` that the `Link` header's
  `rel="next"` names; the optional `redelivery` filter. An item has `id`
  (the attempt), `guid`, `delivered_at`, `redelivery`, `duration`, `status`
  ("OK" for a 2xx answer), `status_code`, `event`, `action`,
  `installation_id`, `repository_id`.
- "Redeliver a delivery for an app webhook"
  (`POST /app/hook/deliveries/{delivery_id}/attempts`) and its repository
  twin answer 202 and send the same payload again as a new attempt with a new
  `id`, the same GUID and `redelivery: true` ("The GUID is constant across
  redeliveries", in "Automatically redelivering failed deliveries for a
  GitHub App webhook"). An unknown id is 404.
- Authentication (checked by `FakeGitHub` before these are called): the
  `/app/hook/*` endpoints need the App's JWT; the repository endpoints a token
  that may administer the repository's webhooks (classic `admin:repo_hook` or
  `repo`, fine-grained "Webhooks"); others get 404 (a personal token) or 403
  "Resource not accessible by integration" (an installation token without
  that permission).
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode

import aiohttp
from aiohttp import web

MAX_PER_PAGE = 100
DEFAULT_PER_PAGE = 30

Url = Callable[[], str]  # evaluated when sending: the service's port is known only once it runs


@dataclass(frozen=True)
class Target:
    """A webhook: where it delivers and the secret it signs with."""

    url: Url
    secret: str
    hook_id: int
    repository: str | None = None  # None: the App's webhook
    target_id: int = 0  # the App's or the repository's id


@dataclass(frozen=True)
class HookDelivery:
    """One attempt, as GitHub keeps it."""

    id: int
    guid: str
    hook_id: int
    event: str
    action: str | None
    body: bytes
    delivered_at: float
    redelivery: bool
    status_code: int
    status: str
    installation_id: int | None
    repository_id: int | None

    def as_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "guid": self.guid,
            "delivered_at": datetime.fromtimestamp(self.delivered_at, UTC).strftime(
                "%Y-%m-%dT%H:%M:%SZ"
            ),
            "redelivery": self.redelivery,
            "duration": 0.05,
            "status": self.status,
            "status_code": self.status_code,
            "event": self.event,
            "action": self.action,
            "installation_id": self.installation_id,
            "repository_id": self.repository_id,
            "throttled_at": None,
        }

    @property
    def succeeded(self) -> bool:
        return 200 <= self.status_code < 300


def _status(code: int) -> str:
    if 200 <= code < 300:
        return "OK"
    return f"Invalid HTTP Response: {code}" if code else "failed to connect to host"


def signed_headers(delivery: HookDelivery, target: Target) -> dict[str, str]:
    sha256 = hmac.new(target.secret.encode(), delivery.body, hashlib.sha256).hexdigest()
    sha1 = hmac.new(target.secret.encode(), delivery.body, hashlib.sha1).hexdigest()
    return {
        "Content-Type": "application/json",
        "User-Agent": "GitHub-Hookshot/fake",
        "X-GitHub-Event": delivery.event,
        "X-GitHub-Delivery": delivery.guid,
        "X-GitHub-Hook-ID": str(target.hook_id),
        "X-GitHub-Hook-Installation-Target-Type": (
            "integration" if target.repository is None else "repository"
        ),
        "X-GitHub-Hook-Installation-Target-ID": str(target.target_id),
        "X-Hub-Signature-256": f"sha256={sha256}",
        "X-Hub-Signature": f"sha1={sha1}",
    }


@dataclass
class Deliveries:
    """Every attempt of every webhook, and the sending of new ones."""

    clock: Callable[[], float]
    next_id: Callable[[], int]
    attempts: list[HookDelivery] = field(default_factory=list)
    targets: dict[int, Target] = field(default_factory=dict)  # hook id -> webhook
    _sending: set[asyncio.Task[None]] = field(default_factory=set)

    async def send(
        self,
        target: Target,
        event: str,
        payload: dict[str, Any],
        *,
        reachable: bool = True,
        at: float | None = None,
    ) -> HookDelivery:
        """Deliver once; unreachable, the attempt is recorded as the ingress's 502."""
        installation = payload.get("installation") or {}
        repository = payload.get("repository") or {}
        delivery = HookDelivery(
            id=self.next_id(),
            guid=str(uuid.uuid4()),
            hook_id=target.hook_id,
            event=event,
            action=payload.get("action"),
            body=json.dumps(payload).encode(),
            delivered_at=self.clock() if at is None else at,
            redelivery=False,
            status_code=502,
            status=_status(502),
            installation_id=installation.get("id"),
            repository_id=repository.get("id"),
        )
        if reachable:
            delivery = await self._post(delivery, target)
        self.attempts.append(delivery)
        return delivery

    def redeliver(self, hook_id: int, delivery_id: int) -> bool:
        """Schedule a new attempt of a kept delivery of this hook; False when there is none."""
        original = next(
            (d for d in self.attempts if d.id == delivery_id and d.hook_id == hook_id), None
        )
        if original is None:
            return False
        again = replace(original, id=self.next_id(), redelivery=True, delivered_at=self.clock())
        task = asyncio.create_task(self._record(again, self.targets[hook_id]))
        self._sending.add(task)
        task.add_done_callback(self._sending.discard)
        return True

    async def _record(self, delivery: HookDelivery, target: Target) -> None:
        self.attempts.append(await self._post(delivery, target))

    async def _post(self, delivery: HookDelivery, target: Target) -> HookDelivery:
        try:
            async with (
                aiohttp.ClientSession() as session,
                session.post(
                    target.url(), data=delivery.body, headers=signed_headers(delivery, target)
                ) as answer,
            ):
                code = answer.status
        except aiohttp.ClientError:
            code = 0
        return replace(delivery, status_code=code, status=_status(code))

    def of_hook(self, hook_id: int, guid: str | None = None) -> list[HookDelivery]:
        return [
            d for d in self.attempts if d.hook_id == hook_id and (guid is None or d.guid == guid)
        ]

    def page(self, request: web.Request, hook_id: int) -> tuple[list[Any], dict[str, str]]:
        """One page of the hook's attempts, newest first, and its `Link` header."""
        query = request.query
        try:
            per_page = min(MAX_PER_PAGE, max(1, int(query.get("per_page", DEFAULT_PER_PAGE))))
        except ValueError:
            raise ValueError("per_page must be an integer") from None
        listed = sorted(self.of_hook(hook_id), key=lambda d: (d.delivered_at, d.id), reverse=True)
        if "redelivery" in query:
            wanted = query["redelivery"] == "true"
            listed = [d for d in listed if d.redelivery is wanted]
        start = 0
        if "cursor" in query:
            ids = [f"v1_{d.id}" for d in listed]
            if query["cursor"] not in ids:
                raise ValueError("cursor is not valid")
            start = ids.index(query["cursor"])
        chunk = listed[start : start + per_page]
        headers = {}
        if start + per_page < len(listed):
            following = {
                **query,
                "per_page": str(per_page),
                "cursor": f"v1_{listed[start + per_page].id}",
            }
            base = f"{request.scheme}://{request.host}{request.path}"
            headers["Link"] = f'<{base}?{urlencode(following)}>; rel="next"'
        return [d.as_json() for d in chunk], headers

    async def drain(self) -> None:
        """Wait for redeliveries in flight (at stop)."""
        if self._sending:
            await asyncio.gather(*self._sending, return_exceptions=True)
