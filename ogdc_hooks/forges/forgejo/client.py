"""The REST API (`/api/v1`) of one Forgejo instance, with its token, a timeout and every
failure classified (`errors.classify`).

The token goes as `Authorization: token <t>` to the instance's own base URL only:
redirects are not followed (another origin would get it), and error messages are
redacted. After a 429 the client remembers until when it was asked to stay away and
does not call before then.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import time
from collections.abc import Callable
from typing import Any, Literal
from urllib.parse import quote

import aiohttp

from ogdc_hooks import __version__
from ogdc_hooks.forges.forgejo.errors import ForgejoRefused, ForgejoUnavailable, classify
from ogdc_hooks.forges.forgejo.redact import redact
from ogdc_hooks.settings import ForgejoInstance

log = logging.getLogger(__name__)

Method = Literal["GET", "POST"]
USER_AGENT = f"ogdc-hooks/{__version__}"
MAX_ANSWER_BYTES = 4 * 1024 * 1024  # no answer ogdc-hooks reads is anywhere near this
_NAME = re.compile(r"[A-Za-z0-9_.-]{1,100}")


def repository_path(name: str) -> str:
    """`/repos/{owner}/{repo}` of an "owner/name"; ForgejoRefused for anything else."""
    owner, _, repo = name.partition("/")
    if not (_NAME.fullmatch(owner) and _NAME.fullmatch(repo)) or ".." in name:
        raise ForgejoRefused(f"not a Forgejo repository name: {name!r}")
    return f"/repos/{quote(owner)}/{quote(repo)}"


class ForgejoClient:
    """Calls to one instance's API over a shared aiohttp session."""

    def __init__(
        self,
        session: aiohttp.ClientSession,
        instance: ForgejoInstance,
        *,
        label: str,
        timeout: float = 30.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._session = session
        self._instance = instance
        self.label = label
        self._timeout = timeout
        self._clock = clock
        self._blocked_until = 0.0

    @property
    def has_token(self) -> bool:
        return self._instance.token is not None

    async def call(self, method: Method, path: str, data: Any = None) -> Any:
        """One request to `/api/v1{path}`; the JSON answer (None for an empty one).

        Raises `ForgejoUnavailable` (retry) or `ForgejoRefused`; neither carries the token.
        """
        self._check_not_blocked()
        token = self._instance.token.reveal() if self._instance.token else None
        headers = {"Accept": "application/json", "User-Agent": USER_AGENT}
        if token:
            headers["Authorization"] = f"token {token}"
        url = f"{self._instance.url}/api/v1{path}"
        what = f"{method} {path}"
        try:
            async with (
                asyncio.timeout(self._timeout),
                self._session.request(
                    method, url, json=data, headers=headers, allow_redirects=False
                ) as answer,
            ):
                raw = await answer.content.read(MAX_ANSWER_BYTES + 1)
                status, answer_headers = answer.status, dict(answer.headers)
        except TimeoutError:
            log.info(
                "forgejo %s %s: no answer within %ss", self._instance.host, what, self._timeout
            )
            raise ForgejoUnavailable(
                f"{self.label} did not answer within {self._timeout:g}s"
            ) from None
        except aiohttp.ClientError as err:
            reason = redact(f"{type(err).__name__}: {err}", [token or ""])
            log.info("forgejo %s %s: %s", self._instance.host, what, reason)
            raise ForgejoUnavailable(f"{self.label} unreachable: {reason}") from None
        if status >= 300:
            raise self._failure(what, status, answer_headers, raw, token)
        if len(raw) > MAX_ANSWER_BYTES:
            raise ForgejoRefused(
                f"{self.label} sent an answer larger than {MAX_ANSWER_BYTES} bytes"
            )
        try:
            return json.loads(raw) if raw.strip() else None
        except ValueError:
            raise ForgejoUnavailable(f"{self.label} sent an answer that is not JSON") from None

    def _failure(
        self, what: str, status: int, headers: dict[str, str], raw: bytes, token: str | None
    ) -> ForgejoUnavailable | ForgejoRefused:
        if 300 <= status < 400:
            return ForgejoRefused(
                f"{self.label} redirected {what}; not followed (the token stays with "
                f"{self._instance.url}): check the instance's URL",
                status,
            )
        message = redact(_message(raw), [token or ""])
        error = classify(self.label, status, headers, message, now=self._clock())
        if isinstance(error, ForgejoUnavailable) and error.retry_after:
            self._blocked_until = self._clock() + error.retry_after
        log.info("forgejo %s %s: %s", self._instance.host, what, error)
        return error

    def _check_not_blocked(self) -> None:
        wait = self._blocked_until - self._clock()
        if wait > 0:
            raise ForgejoUnavailable(
                f"{self.label} asked us to wait; not calling for another {wait:.0f}s",
                retry_after=wait,
            )


def _message(raw: bytes) -> str:
    """Forgejo's `message` (its APIError shape), else the start of the text it sent."""
    text = raw[:2000].decode("utf-8", "replace")
    try:
        document = json.loads(text)
    except ValueError:
        return text.strip()[:300]
    message = document.get("message") if isinstance(document, dict) else None
    return str(message)[:300] if message else ""
