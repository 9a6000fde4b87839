"""An async client of the token API, shared by every command that talks to a running service.

The pure part reads the configuration from the environment and turns each way a
request can go wrong into one line a user can act on (`ApiError`); `ApiClient`
is the thin aiohttp shell around it. Passwords and tokens never reach a message:
the URL is shown without its user information and every message is scrubbed of
the secrets the client holds or has sent.
"""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import TracebackType
from typing import Any, TypeVar
from urllib.parse import urlsplit, urlunsplit

import aiohttp

from ogdc_hooks.cli import tokens as token_cache
from ogdc_hooks.cli.errors import CommandError
from ogdc_hooks.settings import Secret

T = TypeVar("T")

DEFAULT_API_URL = "http://127.0.0.1:8000"  # where `ogdc-hooks serve` listens by default
DEFAULT_TIMEOUT = 30.0
# A cached token is renewed this long before it expires, so a request never races its expiry.
TOKEN_RENEWAL_MARGIN = timedelta(minutes=1)


class ApiError(CommandError):
    """A request to the API failed; the message is one line and holds no secret."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class ApiConfig:
    """Where the API is and whom to log in as (`OGDC_API_*` variables)."""

    url: str = DEFAULT_API_URL
    username: str | None = None
    password: Secret | None = None
    timeout: float = DEFAULT_TIMEOUT
    token_cache: Path | None = None  # single sign-on tokens (`set-token`), when no password


def load_api_config(env: Mapping[str, str] | None = None) -> ApiConfig:
    """Read `OGDC_API_URL`, `OGDC_API_USERNAME`, `OGDC_API_PASSWORD` and `OGDC_API_TIMEOUT`.

    ogdc-runner's service design spells the password variable `OGDC_API_password`; it is
    accepted when the upper-case one is not set.
    """
    env = os.environ if env is None else env
    url = (env.get("OGDC_API_URL") or "").strip() or DEFAULT_API_URL
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ApiError(f"OGDC_API_URL must be an http(s) URL, got {shown_url(url)!r}")
    password = env.get("OGDC_API_PASSWORD") or env.get("OGDC_API_password")
    return ApiConfig(
        # The API authenticates with tokens only: user information in the URL is
        # dropped, so it is never sent, nor shown in a message.
        url=shown_url(url).rstrip("/"),
        username=(env.get("OGDC_API_USERNAME") or "").strip() or None,
        password=Secret(password) if password else None,
        timeout=_timeout(env.get("OGDC_API_TIMEOUT")),
        token_cache=token_cache.token_cache_path(env),
    )


def _timeout(raw: str | None) -> float:
    if raw is None or not raw.strip():
        return DEFAULT_TIMEOUT
    try:
        value = float(raw)
    except ValueError:
        value = 0.0
    if not 0 < value < float("inf"):
        raise ApiError(f"OGDC_API_TIMEOUT must be a positive number of seconds, got {raw!r}")
    return value


def shown_url(url: str) -> str:
    """`url` with any `user:password@` removed."""
    parts = urlsplit(url)
    if parts.username is None and parts.password is None:
        return url
    host = parts.hostname or ""
    netloc = f"{host}:{parts.port}" if parts.port else host
    return urlunsplit(parts._replace(netloc=netloc))


def scrub(message: str, secrets: list[str]) -> str:
    """One line with every secret replaced, whatever the server or a library put in it."""
    for secret in sorted(secrets, key=len, reverse=True):
        if secret:
            message = message.replace(secret, "**********")
    return " ".join(message.split())


def error_detail(body: bytes) -> str | None:
    """The server's `detail`, if the body is the API's JSON error shape."""
    try:
        document = json.loads(body)
    except ValueError:
        return None
    if not isinstance(document, dict) or "detail" not in document:
        return None
    detail = document["detail"]
    return detail if isinstance(detail, str) else json.dumps(detail, separators=(",", ":"))


@dataclass(frozen=True)
class Answer:
    """What the transport got back for one request."""

    status: int
    content_type: str
    body: bytes
    location: str | None = None
    retry_after: str | None = None


def decode_answer(config: ApiConfig, request: str, answer: Answer) -> Any:
    """The JSON document of a successful answer, or the `ApiError` it means.

    `request` is the method and path, as the user would recognise them
    (`"POST /create_user"`). Redirects are not followed (a POST would turn
    into a GET and lose its form): they mean OGDC_API_URL is not the API's
    own address.
    """
    status, kind = answer.status, answer.content_type or "unknown"
    if status >= 400:
        detail = error_detail(answer.body) or f"no details (answer of type {kind})"
        wait = f" (retry after {answer.retry_after} s)" if answer.retry_after else ""
        raise ApiError(f"the API answered {request} with HTTP {status}: {detail}{wait}", status)
    if 300 <= status < 400:
        target = shown_url(answer.location or "an unnamed place")
        raise ApiError(
            f"the API at {config.url} answered {request} with a redirect (HTTP {status}) "
            f"to {target}; set OGDC_API_URL to the API's own address",
            status,
        )
    if status == 204 or not answer.body:
        return None
    try:
        return json.loads(answer.body)
    except ValueError:
        raise ApiError(
            f"the API at {config.url} answered {request} with HTTP {status} but not JSON "
            f"(type {kind}); is OGDC_API_URL the ogdc-hooks API?",
            status,
        ) from None


def login_refused(config: ApiConfig, err: ApiError) -> ApiError:
    """What a failed `POST /token` means for the user running the command."""
    if err.status == 401:
        return ApiError(
            f"the API at {config.url} refused the credentials of user "
            f"{config.username!r}; check OGDC_API_USERNAME and OGDC_API_PASSWORD",
            401,
        )
    if err.status in (404, 405):
        return ApiError(
            f"{config.url} has no POST /token (HTTP {err.status}), so OGDC_API_URL is probably "
            "not the API's address: it must include the service's API_ROOT_PATH, "
            "e.g. http://127.0.0.1:8000 or https://example.org/ogdc/api",
            err.status,
        )
    return err


def parse_token(config: ApiConfig, document: Any) -> tuple[str, datetime]:
    """The access token and its expiry from the `POST /token` answer."""
    if isinstance(document, dict):
        token = document.get("access_token")
        expiry = document.get("utc_expiration")
        if isinstance(token, str) and token and isinstance(expiry, str):
            try:
                expires = datetime.fromisoformat(expiry)
            except ValueError:
                pass
            else:
                return token, expires if expires.tzinfo else expires.replace(tzinfo=UTC)
    raise ApiError(f"the API at {config.url} answered POST /token without a usable token")


def connect_failure_reason(err: aiohttp.ClientConnectorError) -> str:
    """Why a connection could not be made, plainly: asyncio words a refusal "Connect call
    failed (...)", where the errno says "Connection refused"."""
    cause, number = err.os_error, err.os_error.errno
    return os.strerror(number) if number and number > 0 else cause.strerror or str(cause)


def connection_failure(config: ApiConfig, request: str, err: Exception) -> ApiError:
    """The one-line message for a request that got no HTTP answer at all."""
    if isinstance(err, TimeoutError):
        return ApiError(
            f"the API at {config.url} did not answer {request} "
            f"within {config.timeout:g} s (OGDC_API_TIMEOUT)"
        )
    if isinstance(err, aiohttp.ClientConnectorError):
        return ApiError(
            f"cannot reach the API at {config.url}: {connect_failure_reason(err)}; "
            "is the service running and OGDC_API_URL right?"
        )
    return ApiError(
        f"the connection to the API at {config.url} failed during {request}: "
        f"{err.__class__.__name__}: {err}"
    )


class ApiClient:
    """A session with the API: logs in on first need and keeps the token until near expiry.

    Use as `async with ApiClient(load_api_config()) as api: await api.request(...)`.
    """

    def __init__(self, config: ApiConfig) -> None:
        self.config = config
        self._session: aiohttp.ClientSession | None = None
        self._token: tuple[str, datetime] | None = None
        self._sent_secrets: list[str] = [config.password.reveal()] if config.password else []

    async def __aenter__(self) -> ApiClient:
        self._session = aiohttp.ClientSession(
            timeout=aiohttp.ClientTimeout(total=self.config.timeout)
        )
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def request(
        self,
        method: str,
        path: str,
        *,
        form: Mapping[str, str] | None = None,
        json_body: Any = None,
        params: Mapping[str, str] | None = None,
        authenticated: bool = True,
    ) -> Any:
        """Send one request to `path` (under `OGDC_API_URL`) and return its JSON answer.

        Form and JSON-object values under a key containing `password` are treated as secrets.
        """
        if self._session is None:
            raise RuntimeError("ApiClient is used outside `async with`")
        for fields in (form, json_body):
            if isinstance(fields, Mapping):
                self._sent_secrets += [
                    v for k, v in fields.items() if "password" in k.lower() and isinstance(v, str)
                ]
        headers = {"Authorization": f"Bearer {await self.token()}"} if authenticated else {}
        shown = f"{method} {path}"
        try:
            async with self._session.request(
                method,
                self.config.url + "/" + path.lstrip("/"),
                headers=headers,
                data=dict(form) if form is not None else None,
                json=json_body,
                params=params,
                allow_redirects=False,
            ) as response:
                answer = Answer(
                    response.status,
                    response.content_type,
                    await response.read(),
                    response.headers.get("Location"),
                    response.headers.get("Retry-After"),
                )
            return decode_answer(self.config, shown, answer)
        except (aiohttp.ClientError, TimeoutError) as err:
            failure = connection_failure(self.config, shown, err)
        except ApiError as err:
            failure = err
        raise ApiError(scrub(str(failure), self._sent_secrets), failure.status)

    async def token(self) -> str:
        """A valid access token: by logging in with the configured credentials, else from
        the single sign-on token cache (refreshed through `POST /refresh` once expired)."""
        now = datetime.now(UTC)
        if self._token is not None and self._token[1] - TOKEN_RENEWAL_MARGIN > now:
            return self._token[0]
        if self.config.username and self.config.password:
            return await self._login(self.config.username, self.config.password)
        cached = token_cache.read_cache(self.config.token_cache) if self.config.token_cache else {}
        if not cached:
            raise ApiError(
                "the API needs a login: set OGDC_API_USERNAME and OGDC_API_PASSWORD, or sign "
                f"in at {self.config.url}/login and run ogdc-hooks set-token"
            )
        return await self._cached_token(cached)

    async def _login(self, username: str, password: Secret) -> str:
        form = {"username": username, "password": password.reveal()}
        try:
            document = await self.request("POST", "/token", form=form, authenticated=False)
        except ApiError as err:
            raise login_refused(self.config, err) from None
        self._token = parse_token(self.config, document)
        self._sent_secrets.append(self._token[0])
        return self._token[0]

    def _remember(self, access: str) -> str:
        expiry = token_cache.expires_at(access)
        expires = (
            datetime.fromtimestamp(expiry, UTC) if expiry else datetime.max.replace(tzinfo=UTC)
        )
        self._token = (access, expires)
        self._sent_secrets.append(access)
        return access

    async def _cached_token(self, cached: dict[str, str]) -> str:
        margin = TOKEN_RENEWAL_MARGIN.total_seconds()
        access, refresh = cached.get(token_cache.ACCESS), cached.get(token_cache.REFRESH)
        if access and token_cache.usable(access, margin):
            return self._remember(access)
        if not refresh or not token_cache.usable(refresh):
            raise ApiError(
                f"the cached single sign-on token has expired; sign in again at "
                f"{self.config.url}/login and run ogdc-hooks set-token"
            )
        self._sent_secrets.append(refresh)
        try:
            document = await self.request(
                "POST", "/refresh", json_body={"refresh_token": refresh}, authenticated=False
            )
        except ApiError as err:
            raise ApiError(
                f"refreshing the single sign-on token failed: {err}", err.status
            ) from None
        fresh = token_cache.parse_tokens(json.dumps(document))
        if token_cache.ACCESS not in fresh:
            raise ApiError(f"the API at {self.config.url} answered POST /refresh without a token")
        assert self.config.token_cache is not None  # the cache was read from it
        token_cache.write_cache(self.config.token_cache, {**cached, **fresh})
        return self._remember(fresh[token_cache.ACCESS])


def run_api(action: Callable[[ApiClient], Awaitable[T]], env: Mapping[str, str] | None = None) -> T:
    """Run `action` with a client configured from the environment, for synchronous commands."""

    async def session() -> T:
        async with ApiClient(load_api_config(env)) as api:
            return await action(api)

    return asyncio.run(session())
