"""Calls to GitHub on behalf of one repository, with that repository's credentials.

In App mode a 401 (an installation token revoked before it expired) drops
the cached token and tries once more with a fresh one. Every content-creating
request (not a GET) first takes its place in the credential's write budget
(`forges/write_budget.py`), which defers the job instead of calling when GitHub's
secondary limits would refuse it.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, TypeVar

from ogdc_hooks.forges.github.app_auth import Credentials, Grant
from ogdc_hooks.forges.github.errors import PermanentForgeError
from ogdc_hooks.forges.github.transport import Method, Transport
from ogdc_hooks.forges.write_budget import WriteBudget

T = TypeVar("T")

_REPOSITORY = re.compile(r"[A-Za-z0-9_.-]{1,100}/[A-Za-z0-9_.-]{1,100}")


def repository_vars(repository: str) -> dict[str, str]:
    """`{"owner", "repo"}` of an "owner/name"; PermanentForgeError for anything else."""
    if not _REPOSITORY.fullmatch(repository) or ".." in repository:
        raise PermanentForgeError(f"not a GitHub repository name: {repository!r}")
    owner, name = repository.split("/")
    return {"owner": owner, "repo": name}


class GitHubClient:
    """Authenticated GitHub REST calls for a repository, through one shared `Transport`."""

    def __init__(
        self, transport: Transport, credentials: Credentials, budget: WriteBudget | None = None
    ) -> None:
        self.transport = transport
        self.credentials = credentials
        self.budget = budget

    @property
    def app_mode(self) -> bool:
        return self.credentials.app_mode

    async def call(
        self,
        method: Method,
        url: str,
        url_vars: Mapping[str, str] | None = None,
        *,
        repository: str,
        installation_id: int | None = None,
        data: Any = b"",
    ) -> Any:
        """One request; `url` may use `{owner}` and `{repo}` of `repository`."""
        variables = {**repository_vars(repository), **(url_vars or {})}

        async def send(grant: Grant) -> Any:
            if method != "GET" and self.budget is not None:
                await self.budget.take(grant.key, f"GitHub {method} {url}")
            return await self.transport.call(
                method, url, variables, key=grant.key, data=data, oauth_token=grant.token.reveal()
            )

        return await self._as(repository, installation_id, send)

    async def collect(
        self,
        url: str,
        url_vars: Mapping[str, str] | None = None,
        *,
        repository: str,
        installation_id: int | None = None,
        iterable_key: str | None = None,
    ) -> list[Any]:
        """Every item of a paginated list."""
        variables = {**repository_vars(repository), **(url_vars or {})}
        return await self._as(
            repository,
            installation_id,
            lambda grant: self.transport.collect(
                url,
                variables,
                key=grant.key,
                oauth_token=grant.token.reveal(),
                iterable_key=iterable_key,
            ),
        )

    async def _as(
        self,
        repository: str,
        installation_id: int | None,
        send: Callable[[Grant], Awaitable[T]],
    ) -> T:
        grant = await self.credentials.grant(repository, installation_id)
        try:
            return await send(grant)
        except PermanentForgeError as err:
            if err.status != 401 or not self.app_mode:
                raise
        self.credentials.forget(grant)
        return await send(await self.credentials.grant(repository, grant.installation_id))
