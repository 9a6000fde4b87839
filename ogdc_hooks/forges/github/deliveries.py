"""GitHub's record of the webhook deliveries it sent, and asking it to send one again.

GitHub does not retry a failed delivery; it keeps each attempt for 3 days (7
on GitHub Enterprise Server) and redelivers one on request, with the same GUID
(`X-GitHub-Delivery`) and a new attempt id. The App's webhook is read and
redelivered with the App's JWT (`GET /app/hook/deliveries`, `POST
/app/hook/deliveries/{id}/attempts`); a repository webhook with a token that
may read the repository's webhooks (`/repos/{owner}/{repo}/hooks/...`).
Listings are newest first, paged by an opaque `cursor` named in the `Link`
header, at most 100 a page; reading stops at the first attempt older than asked.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncGenerator, Collection, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

from ogdc_hooks.forges.github.app_auth import AppCredentials
from ogdc_hooks.forges.github.client import GitHubClient, repository_vars
from ogdc_hooks.forges.github.errors import PermanentForgeError

PER_PAGE = "100"
WEBHOOK_ROUTE = "/webhooks/github"  # our intake route, whatever prefix an ingress adds


@dataclass(frozen=True)
class Attempt:
    """One attempt of a delivery (GitHub's "delivery" object, summary form)."""

    id: int
    guid: str
    delivered_at: datetime
    redelivery: bool
    status_code: int
    event: str
    action: str | None

    @property
    def succeeded(self) -> bool:
        return 200 <= self.status_code < 300


@dataclass(frozen=True)
class Hook:
    """Where redeliveries go: the App's webhook (`repository` None) or a repository's."""

    repository: str | None = None
    hook_id: int | None = None

    @property
    def name(self) -> str:
        return "app" if self.repository is None else f"{self.repository}#{self.hook_id}"


def parse_attempt(item: Any) -> Attempt | None:
    """A listed delivery, or None when GitHub sent something without these fields."""
    if not isinstance(item, Mapping):
        return None
    try:
        delivered = datetime.fromisoformat(str(item["delivered_at"]).replace("Z", "+00:00"))
        return Attempt(
            id=int(item["id"]),
            guid=str(item["guid"]),
            delivered_at=delivered,
            redelivery=bool(item.get("redelivery")),
            status_code=int(item.get("status_code") or 0),
            event=str(item["event"]),
            action=item.get("action") if isinstance(item.get("action"), str) else None,
        )
    except (KeyError, TypeError, ValueError):
        return None


def missed(attempts: Iterable[Attempt], wanted: Collection[str]) -> list[Attempt]:
    """The newest attempt of every GUID whose event is `wanted` (`event` or `event.action`)
    and none of whose attempts succeeded; oldest first, so that pushes arrive in order."""
    by_guid: dict[str, list[Attempt]] = {}
    for attempt in attempts:
        by_guid.setdefault(attempt.guid, []).append(attempt)
    chosen = [
        max(group, key=lambda attempt: attempt.id)
        for group in by_guid.values()
        if not any(attempt.succeeded for attempt in group) and _wanted(group[0], wanted)
    ]
    return sorted(chosen, key=lambda attempt: attempt.delivered_at)


def _wanted(attempt: Attempt, wanted: Collection[str]) -> bool:
    return attempt.event in wanted or f"{attempt.event}.{attempt.action}" in wanted


def is_our_hook(hook: Any) -> bool:
    """A repository webhook that delivers to an ogdc-hooks intake route."""
    if not isinstance(hook, Mapping) or not hook.get("active", True):
        return False
    url = (hook.get("config") or {}).get("url")
    return isinstance(url, str) and urlsplit(url).path.rstrip("/").endswith(WEBHOOK_ROUTE)


class HookDeliveries:
    """The deliveries of the App's webhook or of repository webhooks, through one client."""

    def __init__(self, client: GitHubClient) -> None:
        self.client = client

    async def attempts(self, hook: Hook, since: datetime) -> list[Attempt]:
        """Every attempt delivered at or after `since`, newest first."""
        found = []
        async with contextlib.aclosing(await self._listing(hook)) as items:
            async for item in items:
                attempt = parse_attempt(item)
                if attempt is None:
                    continue
                if attempt.delivered_at < since:
                    break
                found.append(attempt)
        return found

    async def redeliver(self, hook: Hook, attempt: Attempt) -> None:
        """Ask GitHub to send this delivery again (it answers 202 and sends it later)."""
        ids = {"delivery_id": str(attempt.id)}
        if hook.repository is None:
            credentials = self._app()
            await self.client.transport.call(
                "POST",
                "/app/hook/deliveries/{delivery_id}/attempts",
                ids,
                key="app",
                jwt=await credentials.app_jwt(),
            )
            return
        await self.client.call(
            "POST",
            "/repos/{owner}/{repo}/hooks/{hook_id}/deliveries/{delivery_id}/attempts",
            {**ids, "hook_id": str(hook.hook_id)},
            repository=hook.repository,
        )

    async def repository_hooks(self, repository: str) -> list[Hook]:
        """Our webhooks on `repository`; PermanentForgeError (403, 404) when the token
        may not read the repository's webhooks."""
        hooks = await self.client.collect(
            "/repos/{owner}/{repo}/hooks{?per_page}", {"per_page": PER_PAGE}, repository=repository
        )
        return [Hook(repository, int(hook["id"])) for hook in hooks if is_our_hook(hook)]

    def _app(self) -> AppCredentials:
        credentials = self.client.credentials
        if not isinstance(credentials, AppCredentials):
            raise PermanentForgeError("the App's webhook needs GitHub App credentials")
        return credentials

    async def _listing(self, hook: Hook) -> AsyncGenerator[Any, None]:
        transport = self.client.transport
        if hook.repository is None:
            return transport.items(
                "/app/hook/deliveries{?per_page}",
                {"per_page": PER_PAGE},
                key="app",
                jwt=await self._app().app_jwt(),
            )
        grant = await self.client.credentials.grant(hook.repository)
        return transport.items(
            "/repos/{owner}/{repo}/hooks/{hook_id}/deliveries{?per_page}",
            {
                **repository_vars(hook.repository),
                "hook_id": str(hook.hook_id),
                "per_page": PER_PAGE,
            },
            key=grant.key,
            oauth_token=grant.token.reveal(),
        )
