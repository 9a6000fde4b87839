"""One GitHub REST request through gidgethub, with a timeout and its failure classified.

The thin I/O shell around `errors.classify`: every request of the App
credentials and of the client goes through one `Transport`, which also
remembers, per credential, until when GitHub asked us to stay away, and
refuses to call before then (GitHub may ban integrations that keep calling
while rate limited).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncGenerator, Awaitable, Callable, Mapping
from typing import Any, Literal, TypeVar

import aiohttp
import gidgethub
from gidgethub.aiohttp import GitHubAPI
from gidgethub.sansio import RateLimit

from ogdc_hooks import __version__
from ogdc_hooks.forges.github.errors import TransientForgeError, classify
from ogdc_hooks.forges.github.redact import redact

log = logging.getLogger(__name__)

USER_AGENT = f"ogdc-hooks/{__version__}"
HEADERS = {"x-github-api-version": "2022-11-28"}

Method = Literal["GET", "POST", "PATCH"]
T = TypeVar("T")
# (outcome: ok | transient | permanent, credential kind, rate limit remaining if GitHub said)
Record = Callable[[str, str, int | None], None]


class Transport:
    """Sends requests to the GitHub API at `base_url` over a shared aiohttp session."""

    def __init__(
        self,
        session: aiohttp.ClientSession,
        *,
        base_url: str,
        timeout: float = 30.0,
        clock: Callable[[], float] = time.time,
        record: Record = lambda outcome, credential, remaining: None,
    ) -> None:
        self._gh = GitHubAPI(session, USER_AGENT, base_url=base_url)
        self._timeout = timeout
        self.clock = clock
        self._record = record
        self._blocked_until: dict[str, float] = {}

    async def call(
        self,
        method: Method,
        url: str,
        url_vars: Mapping[str, str] | None = None,
        *,
        key: str,
        data: Any = b"",
        oauth_token: str | None = None,
        jwt: str | None = None,
    ) -> Any:
        """Send one request as `oauth_token` or `jwt`; `key` names the credential's rate limit.

        Raises `TransientForgeError` or `PermanentForgeError`; their messages are
        redacted and never carry the credential.
        """
        auth: dict[str, Any] = {"oauth_token": oauth_token, "jwt": jwt, "extra_headers": HEADERS}

        async def send() -> Any:
            if method == "GET":
                return await self._gh.getitem(url, url_vars, **auth)
            if method == "POST":
                return await self._gh.post(url, url_vars, data=data, **auth)
            return await self._gh.patch(url, url_vars, data=data, **auth)

        return await self._guarded(f"{method} {url}", key, (oauth_token, jwt), send)

    async def collect(
        self,
        url: str,
        url_vars: Mapping[str, str] | None = None,
        *,
        key: str,
        oauth_token: str,
        iterable_key: str | None = None,
    ) -> list[Any]:
        """Every item of a paginated list (following `Link: rel="next"`)."""

        async def send() -> list[Any]:
            pages = self._gh.getiter(
                url,
                url_vars,
                oauth_token=oauth_token,
                extra_headers=HEADERS,
                iterable_key=iterable_key,
            )
            return [item async for item in pages]

        return await self._guarded(f"GET {url}", key, (oauth_token,), send)

    async def items(
        self,
        url: str,
        url_vars: Mapping[str, str] | None = None,
        *,
        key: str,
        oauth_token: str | None = None,
        jwt: str | None = None,
    ) -> AsyncGenerator[Any, None]:
        """The items of a paginated list one by one (following `Link: rel="next"`, whatever
        its cursor); each page is one guarded request, and leaving the loop asks for no more."""
        auth: dict[str, Any] = {"oauth_token": oauth_token, "jwt": jwt, "extra_headers": HEADERS}
        pages = self._gh.getiter(url, url_vars, iterable_key=None, **auth)
        try:
            while True:
                try:
                    item = await self._guarded(
                        f"GET {url}", key, (oauth_token, jwt), pages.__anext__
                    )
                except StopAsyncIteration:
                    return
                yield item
        finally:
            await pages.aclose()

    async def _guarded(
        self,
        what: str,
        key: str,
        credentials: tuple[str | None, ...],
        send: Callable[[], Awaitable[T]],
    ) -> T:
        """Run `send` under the timeout, turning every failure into a forge error."""
        self._check_not_blocked(key)
        secrets = [value for value in credentials if value]
        credential = key.partition(":")[0]  # app, installation or token: few values
        try:
            async with asyncio.timeout(self._timeout):
                answer = await send()
        except gidgethub.HTTPException as err:
            error = classify(
                int(err.status_code), err.headers, redact(str(err), secrets), now=self.clock()
            )
            if isinstance(error, TransientForgeError) and error.retry_after:
                self._blocked_until[key] = self.clock() + error.retry_after
            outcome = "transient" if isinstance(error, TransientForgeError) else "permanent"
            self._record(outcome, credential, _remaining(RateLimit.from_http(err.headers)))
            log.info("github %s: %s", what, error)
            raise error from None
        except (TimeoutError, aiohttp.ClientError, ValueError) as err:
            self._record("transient", credential, None)
            raise self._unanswered(what, err, secrets) from None
        self._record("ok", credential, _remaining(self._gh.rate_limit))
        log.debug("github %s: ok", what)
        return answer

    def _unanswered(self, what: str, err: Exception, secrets: list[str]) -> TransientForgeError:
        """The error for no usable answer: a timeout, a network failure, or JSON that is not."""
        if isinstance(err, TimeoutError):
            log.info("github %s: no answer within %ss", what, self._timeout)
            return TransientForgeError(f"GitHub did not answer within {self._timeout:g}s")
        if isinstance(err, aiohttp.ClientError):
            reason = redact(f"{type(err).__name__}: {err}", secrets)
            log.info("github %s: %s", what, reason)
            return TransientForgeError(f"GitHub unreachable: {reason}")
        log.info("github %s: answer is not valid JSON", what)  # claims to be JSON and is not
        return TransientForgeError("GitHub sent an answer that is not valid JSON")

    def _check_not_blocked(self, key: str) -> None:
        until = self._blocked_until.get(key)
        if until is None:
            return
        wait = until - self.clock()
        if wait <= 0:
            del self._blocked_until[key]
            return
        raise TransientForgeError(
            f"GitHub asked us to wait; not calling for another {wait:.0f}s", retry_after=wait
        )


def _remaining(limit: RateLimit | None) -> int | None:
    return limit.remaining if limit is not None else None
