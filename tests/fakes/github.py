"""A fake GitHub REST API, served over real HTTP, that checks requests the way GitHub does.

What it covers: GitHub App authentication (RS256 app JWTs verified with the
App's public key; installation tokens with an expiry), personal tokens,
check runs (create, update with appended annotations, list, annotations) with
GitHub's validation rules and limits, commit statuses, repositories and
their installation, a collaborator's permission (`GET /repos/{owner}/{repo}/
collaborators/{username}/permission`: `permission` is admin, write, read or
none, with maintain folded into write and triage into read, as GitHub's docs
say), commits' authors, issue comments and reactions to them (`POST .../issues/{number}/comments`,
`POST .../issues/comments/{comment_id}/reactions`: App installation tokens only here),
webhooks (the App's and repositories': deliveries
sent, kept, listed with cursor paging and redelivered, see `github_hooks`),
primary rate limits, secondary rate limits on content creation (`SECONDARY_LIMITS`, per
installation, settable per fake), and faults injected on demand
(5xx, 429 with Retry-After, exhausted or secondary rate limits, hangs,
dropped connections). Everything it was told is kept in memory for tests.

Use the `fake_github` fixture (and `github_app_key` for an App key pair), or
`FakeGitHub(...)` with `start()`/`stop()` directly; `clock` can be shared
with the code under test to move time without waiting.
"""

from __future__ import annotations

import asyncio
import json
import math
import re
import secrets
import time
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode, urlsplit

import jwt
import pytest
from aiohttp import web
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from tests.fakes.github_hooks import Deliveries, HookDelivery, Target, Url

DOCS = "https://docs.github.com/rest"
API_VERSIONS = {"2022-11-28", "2026-03-10"}
CHECK_STATUSES = {"queued", "in_progress", "completed"}
ACTIONS_ONLY_STATUSES = {"waiting", "requested", "pending"}
CONCLUSIONS = {
    "action_required",
    "cancelled",
    "failure",
    "neutral",
    "success",
    "skipped",
    "timed_out",
}
ANNOTATION_LEVELS = {"notice", "warning", "failure"}
STATUS_STATES = {"error", "failure", "pending", "success"}
OUTPUT_LIMIT = 65535
ANNOTATION_TEXT_LIMIT = 64 * 1024
MAX_STATUSES_PER_CONTEXT = 1000
SHA = re.compile(r"[0-9a-f]{40}(?:[0-9a-f]{24})?")
# Secondary rate limits: "no more than 80 content-generating requests per minute and no more
# than 500 content-generating requests per hour", per user or installation; past them GitHub
# answers 403 (or 429) saying "secondary rate limit", with Retry-After when it knows
# (https://docs.github.com/en/rest/using-the-rest-api/rate-limits-for-the-rest-api
# #about-secondary-rate-limits). (at most this many, in this many seconds)
SECONDARY_LIMITS: tuple[tuple[int, float], ...] = ((80, 60.0), (500, 3600.0))
CONTENT_METHODS = {"POST", "PATCH", "PUT", "DELETE"}
SECONDARY_MESSAGE = (
    "You have exceeded a secondary rate limit. Please wait a few minutes before you try again."
)
# https://docs.github.com/en/rest/reactions/reactions#about-reactions
REACTIONS = {"+1", "-1", "laugh", "confused", "heart", "hooray", "rocket", "eyes"}
COMMENT_LIMIT = 65536  # https://docs.github.com/en/rest/issues/comments: "body" at most 65536


# ---------------------------------------------------------------------------- time and keys


@dataclass
class FakeClock:
    """Seconds since the epoch that move only when told; share it with the code under test."""

    now: float = field(default_factory=time.time)

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@dataclass(frozen=True)
class AppKey:
    """An RSA key pair for a GitHub App: the PEM goes to the service, the public key to the fake."""

    private_pem: str
    public_key: rsa.RSAPublicKey


def generate_app_key() -> AppKey:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.TraditionalOpenSSL,  # what GitHub hands out
        serialization.NoEncryption(),
    ).decode()
    return AppKey(pem, key.public_key())


def _iso(moment: float) -> str:
    return datetime.fromtimestamp(moment, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


# ---------------------------------------------------------------------------- faults


@dataclass(frozen=True)
class Fault:
    """An answer to give instead of the real one; `hang` seconds first, or drop the connection."""

    status: int = 500
    body: dict[str, Any] | None = None
    headers: dict[str, str] = field(default_factory=dict)
    hang: float = 0.0
    disconnect: bool = False

    @classmethod
    def server_error(cls, status: int = 500) -> Fault:
        return cls(status, {"message": "Server Error"} if status == 500 else None)

    @classmethod
    def too_many_requests(cls, retry_after: int = 30) -> Fault:
        return cls(
            429,
            {"message": "You have exceeded a secondary rate limit.", "documentation_url": DOCS},
            {"Retry-After": str(retry_after)},
        )

    @classmethod
    def rate_limited(cls, reset_at: float, status: int = 403) -> Fault:
        """The primary limit used up: remaining 0 until `reset_at` (epoch seconds)."""
        return cls(
            status,
            {"message": "API rate limit exceeded for installation.", "documentation_url": DOCS},
            {
                "X-RateLimit-Limit": "5000",
                "X-RateLimit-Remaining": "0",
                "X-RateLimit-Used": "5000",
                "X-RateLimit-Reset": str(int(reset_at)),
            },
        )

    @classmethod
    def secondary_rate_limit(cls, retry_after: int | None = None) -> Fault:
        body = {
            "message": "You have exceeded a secondary rate limit. "
            "Please wait a few minutes before you try again.",
            "documentation_url": DOCS,
        }
        headers = {} if retry_after is None else {"Retry-After": str(retry_after)}
        return cls(403, body, headers)

    @classmethod
    def timeout(cls, seconds: float = 30.0) -> Fault:
        return cls(504, {"message": "We couldn't respond to your request in time."}, hang=seconds)

    @classmethod
    def dropped(cls) -> Fault:
        return cls(disconnect=True)


@dataclass
class _Injection:
    fault: Fault
    times: int
    path: re.Pattern[str] | None
    method: str | None

    def matches(self, method: str, path: str) -> bool:
        return (self.method is None or self.method == method) and (
            self.path is None or bool(self.path.search(path))
        )


def take_fault(injections: list[_Injection], method: str, path: str) -> Fault | None:
    """The fault for this request, if one is still pending (each answers `times` requests)."""
    for injection in injections:
        if injection.times > 0 and injection.matches(method, path):
            injection.times -= 1
            return injection.fault
    return None


async def fault_answer(request: web.Request, fault: Fault) -> web.StreamResponse:
    """Give `fault` as the answer: hang first, drop the connection, or answer with it."""
    if fault.disconnect:
        assert request.transport is not None
        request.transport.close()
        return web.Response(status=502)
    if fault.hang:
        await asyncio.sleep(fault.hang)
    if fault.body is None:
        return web.Response(status=fault.status, text="", headers=fault.headers)
    return web.json_response(fault.body, status=fault.status, headers=fault.headers)


# ---------------------------------------------------------------------------- state


@dataclass
class Repository:
    full_name: str
    id: int
    default_branch: str = "main"
    installation_id: int | None = None
    commits: set[str] | None = None  # None: every well-formed SHA exists
    # lower-case login -> role (admin, maintain, write, triage, read); others have none
    collaborators: dict[str, str] = field(default_factory=dict)
    authors: dict[str, str] = field(default_factory=dict)  # sha -> login GitHub links it to

    def has_commit(self, sha: str) -> bool:
        return bool(SHA.fullmatch(sha)) and (self.commits is None or sha in self.commits)


@dataclass
class Installation:
    id: int
    app_id: int
    account: str
    repositories: set[str] = field(default_factory=set)  # lower-case full names


@dataclass
class Token:
    value: str
    installation_id: int | None  # None: a personal access token
    expires_at: float | None
    login: str = "ogdc-bot"
    revoked: bool = False
    hooks: bool = False  # may administer repository webhooks (admin:repo_hook, or repo)


@dataclass
class CheckRun:
    id: int
    repository: str
    head_sha: str
    name: str
    app_id: int
    status: str
    conclusion: str | None
    external_id: str | None
    details_url: str | None
    started_at: str
    completed_at: str | None
    output: dict[str, Any]  # title, summary, text
    annotations: list[dict[str, Any]] = field(default_factory=list)
    history: list[dict[str, Any]] = field(default_factory=list)  # every accepted request body
    actions: list[dict[str, str]] = field(default_factory=list)  # the buttons shown

    def as_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "head_sha": self.head_sha,
            "name": self.name,
            "status": self.status,
            "conclusion": self.conclusion,
            "external_id": self.external_id,
            "details_url": self.details_url,
            "started_at": self.started_at,
            "completed_at": self.completed_at,
            "app": {"id": self.app_id},
            "actions": list(self.actions),
            "output": {
                "title": self.output.get("title"),
                "summary": self.output.get("summary"),
                "text": self.output.get("text"),
                "annotations_count": len(self.annotations),
            },
        }


@dataclass
class Status:
    id: int
    state: str
    context: str
    description: str | None
    target_url: str | None
    created_at: str
    creator: str

    def as_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "state": self.state,
            "context": self.context,
            "description": self.description,
            "target_url": self.target_url,
            "created_at": self.created_at,
            "creator": {"login": self.creator},
        }


@dataclass(frozen=True)
class Recorded:
    method: str
    path: str  # without the prefix, with the query string
    headers: dict[str, str]
    body: Any
    status: int


class _Answer(Exception):
    """Raised inside a handler to answer at once with GitHub's error shape."""

    def __init__(
        self, status: int, message: str, headers: dict[str, str] | None = None, **extra: Any
    ) -> None:
        super().__init__(message)
        self.status = status
        self.headers = headers
        self.body = {"message": message, "documentation_url": DOCS, **extra}


def _invalid(message: str) -> _Answer:
    """GitHub's schema-validation answer: 422 "Invalid request." with the reason."""
    return _Answer(422, f"Invalid request.\n\n{message}")


def _failed(resource: str, field_name: str, code: str, message: str | None = None) -> _Answer:
    """GitHub's model-validation answer: 422 "Validation Failed" with an errors list."""
    error = {"resource": resource, "field": field_name, "code": code}
    if message is not None:
        error["message"] = message
    return _Answer(422, "Validation Failed", errors=[error])


@dataclass
class _Caller:
    token: Token | None = None
    app_id: int | None = None

    @property
    def bucket(self) -> str:
        if self.app_id is not None:
            return f"app:{self.app_id}"
        assert self.token is not None
        return f"token:{self.token.value}"


# ---------------------------------------------------------------------------- the server


class FakeGitHub:
    """GitHub's REST API as far as ogdc-hooks uses it; see the module docstring."""

    def __init__(
        self,
        *,
        prefix: str = "",
        clock: Callable[[], float] = time.time,
        token_lifetime: float = 3600.0,
        rate_limit: int = 5000,
        secondary_limits: tuple[tuple[int, float], ...] = SECONDARY_LIMITS,
    ) -> None:
        self.prefix = prefix.rstrip("/")
        self.clock = clock
        self.token_lifetime = token_lifetime
        self.rate_limit = rate_limit
        self.apps: dict[int, rsa.RSAPublicKey] = {}
        self.installations: dict[int, Installation] = {}
        self.repositories: dict[str, Repository] = {}
        self.tokens: dict[str, Token] = {}
        self.check_runs: dict[int, CheckRun] = {}
        self.statuses: dict[tuple[str, str], list[Status]] = {}
        self.comments: dict[tuple[str, int], list[str]] = {}  # (repository, number) -> bodies
        self.reactions: dict[tuple[str, int], list[str]] = {}  # (repository, comment id) -> content
        self.requests: list[Recorded] = []
        self.exchanges: list[int] = []  # installation ids, one per token exchange
        self._used: dict[str, tuple[int, float]] = {}  # bucket -> (used, window reset)
        self.secondary_limits = secondary_limits
        self._writes: dict[str, deque[float]] = {}  # installation or token -> write times
        self.secondary_refusals = 0  # 403s answered for the secondary limits
        self._faults: list[_Injection] = []
        self._ids = iter(range(1_000_001, 10**9))
        self.webhooks = Deliveries(clock, lambda: next(self._ids))
        self.app_webhook: Target | None = None
        self._runner: web.AppRunner | None = None
        self.url = ""

    # ------------------------------------------------------------ set-up by tests

    def add_app(self, app_id: int, public_key: rsa.RSAPublicKey) -> None:
        self.apps[app_id] = public_key

    def add_repository(
        self,
        full_name: str,
        *,
        default_branch: str = "main",
        installation_id: int | None = None,
        commits: Iterable[str] | None = None,
    ) -> Repository:
        repository = Repository(
            full_name,
            next(self._ids),
            default_branch,
            installation_id,
            None if commits is None else set(commits),
        )
        self.repositories[full_name.lower()] = repository
        if installation_id is not None:
            self.installations[installation_id].repositories.add(full_name.lower())
        return repository

    def add_installation(
        self, installation_id: int, *, app_id: int, account: str, repositories: Iterable[str] = ()
    ) -> Installation:
        installation = Installation(installation_id, app_id, account)
        self.installations[installation_id] = installation
        for name in repositories:
            self.add_repository(name, installation_id=installation_id)
        return installation

    def grant(self, repository: str, login: str, role: str) -> None:
        """Give the GitHub user `login` a role on `repository` (admin, maintain, write, ...)."""
        self.repositories[repository.lower()].collaborators[login.lower()] = role

    def add_token(
        self, value: str | None = None, *, login: str = "ogdc-bot", hooks: bool = False
    ) -> str:
        """A personal access token that may use every repository (and, with `hooks`,
        administer their webhooks); returns its value."""
        value = value or "ghp_" + secrets.token_hex(18)
        self.tokens[value] = Token(value, None, None, login, hooks=hooks)
        return value

    def set_app_webhook(self, app_id: int, url: Url, secret: str) -> Target:
        """The App's webhook: where its deliveries go (`url` is asked when sending)."""
        self.app_webhook = Target(url, secret, next(self._ids), None, app_id)
        self.webhooks.targets[self.app_webhook.hook_id] = self.app_webhook
        return self.app_webhook

    def add_repository_hook(self, full_name: str, url: Url, secret: str) -> Target:
        repository = self.repositories[full_name.lower()]
        target = Target(url, secret, next(self._ids), repository.full_name, repository.id)
        self.webhooks.targets[target.hook_id] = target
        return target

    async def send_webhook(
        self,
        event: str,
        payload: dict[str, Any],
        *,
        hook: Target | None = None,
        reachable: bool = True,
        at: float | None = None,
    ) -> HookDelivery:
        """Deliver an event through `hook` (the App's webhook by default), as GitHub would;
        `reachable=False` records it as failed (the service's ingress answered 502)."""
        target = hook or self.app_webhook
        assert target is not None, "set_app_webhook or add_repository_hook first"
        return await self.webhooks.send(target, event, payload, reachable=reachable, at=at)

    def revoke(self, token: str) -> None:
        self.tokens[token].revoked = True

    def revoke_installation_tokens(self, installation_id: int) -> None:
        for token in self.tokens.values():
            if token.installation_id == installation_id:
                token.revoked = True

    def inject(
        self, fault: Fault, *, times: int = 1, path: str | None = None, method: str | None = None
    ) -> None:
        """Answer the next `times` requests matching `path` (a regex) and `method` with `fault`."""
        pattern = re.compile(path) if path is not None else None
        self._faults.append(_Injection(fault, times, pattern, method))

    # ------------------------------------------------------------ inspection by tests

    def faults_left(self) -> int:
        """How many injected faults have not been answered yet."""
        return sum(injection.times for injection in self._faults)

    def runs(self, repository: str, sha: str, name: str | None = None) -> list[CheckRun]:
        return [
            run
            for run in self.check_runs.values()
            if run.repository.lower() == repository.lower()
            and run.head_sha == sha
            and (name is None or run.name == name)
        ]

    def status_history(self, repository: str, sha: str, context: str) -> list[Status]:
        return [s for s in self.statuses.get((repository.lower(), sha), []) if s.context == context]

    def requests_to(self, method: str, path_regex: str) -> list[Recorded]:
        return [r for r in self.requests if r.method == method and re.search(path_regex, r.path)]

    # ------------------------------------------------------------ lifecycle

    async def start(self) -> str:
        app = web.Application(middlewares=[self._middleware])
        routes = [
            ("POST", "/app/installations/{installation_id}/access_tokens", self._access_token),
            ("GET", "/repos/{owner}/{repo}/installation", self._repository_installation),
            ("GET", "/repos/{owner}/{repo}", self._repository),
            (
                "GET",
                "/repos/{owner}/{repo}/collaborators/{username}/permission",
                self._permission,
            ),
            ("POST", "/repos/{owner}/{repo}/check-runs", self._create_check_run),
            ("GET", "/repos/{owner}/{repo}/check-runs/{id}", self._get_check_run),
            ("PATCH", "/repos/{owner}/{repo}/check-runs/{id}", self._update_check_run),
            ("GET", "/repos/{owner}/{repo}/check-runs/{id}/annotations", self._annotations),
            ("GET", "/repos/{owner}/{repo}/commits/{ref}/check-runs", self._list_check_runs),
            ("POST", "/repos/{owner}/{repo}/statuses/{sha}", self._create_status),
            ("GET", "/repos/{owner}/{repo}/commits/{ref}/statuses", self._list_statuses),
            ("GET", "/repos/{owner}/{repo}/commits/{ref}", self._commit),
            ("POST", "/repos/{owner}/{repo}/issues/{number}/comments", self._create_comment),
            (
                "POST",
                "/repos/{owner}/{repo}/issues/comments/{comment_id}/reactions",
                self._create_reaction,
            ),
            ("GET", "/app/hook/deliveries", self._app_deliveries),
            ("POST", "/app/hook/deliveries/{delivery_id}/attempts", self._app_redeliver),
            ("GET", "/repos/{owner}/{repo}/hooks", self._repository_hooks),
            ("GET", "/repos/{owner}/{repo}/hooks/{hook_id}/deliveries", self._hook_deliveries),
            (
                "POST",
                "/repos/{owner}/{repo}/hooks/{hook_id}/deliveries/{delivery_id}/attempts",
                self._hook_redeliver,
            ),
        ]
        for method, path, handler in routes:
            app.router.add_route(method, self.prefix + path, handler)
        self._runner = web.AppRunner(app, shutdown_timeout=0.5, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        host, port = self._runner.addresses[0][:2]
        self.url = f"http://{host}:{port}{self.prefix}"
        return self.url

    async def stop(self) -> None:
        await self.webhooks.drain()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    # ------------------------------------------------------------ cross-cutting checks

    @web.middleware
    async def _middleware(
        self, request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
    ) -> web.StreamResponse:
        path = request.path_qs[len(self.prefix) :]
        body: Any = None
        response: web.StreamResponse
        try:
            body = await self._body(request)
            fault = take_fault(self._faults, request.method, path)
            if fault is not None:
                response = await fault_answer(request, fault)
            else:
                self._check_headers(request)
                response = await handler(request)
        except _Answer as answer:
            response = self._json(answer.body, answer.status, answer.headers)
        except web.HTTPException as err:  # unknown route or method
            response = self._json({"message": "Not Found", "documentation_url": DOCS}, err.status)
        self.requests.append(
            Recorded(request.method, path, dict(request.headers), body, response.status)
        )
        return response

    async def _body(self, request: web.Request) -> Any:
        if request.method not in ("POST", "PATCH"):
            return None
        raw = await request.read()
        if not raw:
            return None
        try:
            return json.loads(raw)
        except ValueError:
            raise _Answer(400, "Problems parsing JSON") from None

    def _check_headers(self, request: web.Request) -> None:
        if not request.headers.get("User-Agent"):
            raise _Answer(
                403,
                "Request forbidden by administrative rules. "
                "Please make sure your request has a User-Agent header",
            )
        accept = request.headers.get("Accept", "")
        if not any(
            part.strip().startswith(("application/vnd.github", "application/json", "*/*"))
            for part in accept.split(",")
        ):
            raise _Answer(415, f"Unsupported 'Accept' header: {accept!r}")
        version = request.headers.get("X-GitHub-Api-Version")
        if version is not None and version not in API_VERSIONS:
            raise _Answer(400, f"API version {version!r} is not supported.")

    def _json(
        self, body: Any, status: int = 200, headers: dict[str, str] | None = None
    ) -> web.Response:
        return web.json_response(body, status=status, headers=headers)

    # ------------------------------------------------------------ authentication

    def _credential(self, request: web.Request) -> tuple[str, str]:
        header = request.headers.get("Authorization")
        if not header:
            raise _Answer(401, "Requires authentication")
        scheme, _, value = header.partition(" ")
        if scheme.lower() not in ("token", "bearer") or not value.strip():
            raise _Answer(401, "Bad credentials")
        return scheme.lower(), value.strip()

    def _as_app(self, request: web.Request) -> _Caller:
        """The App whose RS256 JWT (iss = app id, at most 10 minutes) signs this request."""
        scheme, value = self._credential(request)
        if scheme != "bearer":
            raise _Answer(401, "A JSON web token could not be decoded")
        try:
            header = jwt.get_unverified_header(value)
            claims = jwt.decode(value, options={"verify_signature": False})
            app_id = int(claims["iss"])
            public_key = self.apps[app_id]
            jwt.decode(
                value,
                public_key,
                algorithms=["RS256"],
                options={"verify_exp": False, "verify_iat": False, "verify_nbf": False},
            )
        except (jwt.PyJWTError, KeyError, ValueError, TypeError):
            raise _Answer(401, "A JSON web token could not be decoded") from None
        if header.get("alg") != "RS256":
            raise _Answer(401, "A JSON web token could not be decoded")
        now = self.clock()
        issued, expires = claims.get("iat"), claims.get("exp")
        if not isinstance(issued, int) or issued > now + 60:
            raise _Answer(
                401,
                "'Issued at' claim ('iat') must be an Integer representing the time that the "
                "assertion was issued",
            )
        if not isinstance(expires, int) or expires <= now:
            raise _Answer(
                401,
                "'Expiration time' claim ('exp') must be a numeric value representing the "
                "future time at which the assertion expires",
            )
        if expires > now + 600 or expires - issued > 600:
            raise _Answer(401, "'Expiration time' claim ('exp') is too far in the future")
        caller = _Caller(app_id=app_id)
        self._count(caller)
        return caller

    def _as_token(self, request: web.Request) -> _Caller:
        """An installation token or personal token that is known, unrevoked and unexpired."""
        _, value = self._credential(request)
        token = self.tokens.get(value)
        if token is None or token.revoked:
            raise _Answer(401, "Bad credentials")
        if token.expires_at is not None and token.expires_at <= self.clock():
            raise _Answer(401, "Bad credentials")
        caller = _Caller(token=token)
        self._count(caller)
        if request.method in CONTENT_METHODS:
            self._count_write(token)
        return caller

    def _count(self, caller: _Caller) -> None:
        """The primary rate limit: `rate_limit` requests per credential per hour."""
        now = self.clock()
        used, reset = self._used.get(caller.bucket, (0, now + 3600))
        if reset <= now:
            used, reset = 0, now + 3600
        if used >= self.rate_limit:
            raise _Answer(403, "API rate limit exceeded.", self._rate_headers(caller))
        self._used[caller.bucket] = (used + 1, reset)

    def _count_write(self, token: Token) -> None:
        """The secondary limits on content creation (`SECONDARY_LIMITS`), per installation
        (or personal token); a refused request is not counted."""
        bucket = f"installation:{token.installation_id}" if token.installation_id else token.value
        times = self._writes.setdefault(bucket, deque())
        now = self.clock()
        longest = max((seconds for _, seconds in self.secondary_limits), default=0.0)
        while times and times[0] <= now - longest:
            times.popleft()
        wait = 0.0
        for most, seconds in self.secondary_limits:
            recent = [moment for moment in times if moment > now - seconds]
            if len(recent) >= most:
                wait = max(wait, recent[len(recent) - most] + seconds - now)
        if wait > 0:
            self.secondary_refusals += 1
            raise _Answer(403, SECONDARY_MESSAGE, {"Retry-After": str(max(1, math.ceil(wait)))})
        times.append(now)

    def _rate_headers(self, caller: _Caller) -> dict[str, str]:
        used, reset = self._used.get(caller.bucket, (0, self.clock() + 3600))
        return {
            "X-RateLimit-Limit": str(self.rate_limit),
            "X-RateLimit-Remaining": str(max(0, self.rate_limit - used)),
            "X-RateLimit-Used": str(used),
            "X-RateLimit-Reset": str(int(reset)),
        }

    def _repo(self, request: web.Request, caller: _Caller) -> Repository:
        """The repository of the URL, if the caller can see it (404 like GitHub otherwise)."""
        name = f"{request.match_info['owner']}/{request.match_info['repo']}".lower()
        repository = self.repositories.get(name)
        token = caller.token
        visible = repository is not None and (
            token is None
            or token.installation_id is None
            or name in self.installations[token.installation_id].repositories
        )
        if not visible or repository is None:
            raise _Answer(404, "Not Found")
        return repository

    def _reply(self, caller: _Caller, body: Any, status: int = 200) -> web.Response:
        return self._json(body, status, self._rate_headers(caller))

    # ------------------------------------------------------------ apps and repositories

    async def _access_token(self, request: web.Request) -> web.Response:
        caller = self._as_app(request)
        installation = self.installations.get(int(request.match_info["installation_id"]))
        if installation is None or installation.app_id != caller.app_id:
            raise _Answer(404, "Not Found")
        value = "ghs_" + secrets.token_urlsafe(27).replace("-", "a").replace("_", "b")[:36]
        expires_at = self.clock() + self.token_lifetime
        self.tokens[value] = Token(value, installation.id, expires_at, f"app-{caller.app_id}[bot]")
        self.exchanges.append(installation.id)
        body = {
            "token": value,
            "expires_at": _iso(expires_at),
            "permissions": {"checks": "write", "contents": "read", "statuses": "write"},
            "repository_selection": "selected",
        }
        return self._reply(caller, body, 201)

    async def _repository_installation(self, request: web.Request) -> web.Response:
        caller = self._as_app(request)
        repository = self._repo(request, caller)
        installation = self.installations.get(repository.installation_id or -1)
        if installation is None or installation.app_id != caller.app_id:
            raise _Answer(404, "Not Found")
        body = {
            "id": installation.id,
            "app_id": installation.app_id,
            "account": {"login": installation.account},
        }
        return self._reply(caller, body)

    async def _repository(self, request: web.Request) -> web.Response:
        caller = self._as_token(request)
        repository = self._repo(request, caller)
        owner, name = repository.full_name.split("/")
        body = {
            "id": repository.id,
            "name": name,
            "full_name": repository.full_name,
            "owner": {"login": owner},
            "default_branch": repository.default_branch,
            "clone_url": f"https://github.invalid/{repository.full_name}.git",
        }
        return self._reply(caller, body)

    async def _permission(self, request: web.Request) -> web.Response:
        caller = self._as_token(request)
        repository = self._repo(request, caller)
        login = request.match_info["username"]
        role = repository.collaborators.get(login.lower(), "none")
        permission = {"maintain": "write", "triage": "read"}.get(role, role)
        body = {"permission": permission, "role_name": role, "user": {"login": login}}
        return self._reply(caller, body)

    async def _commit(self, request: web.Request) -> web.Response:
        """A commit, with the account GitHub links its author to (None when it links none)."""
        caller = self._as_token(request)
        repository = self._repo(request, caller)
        sha = request.match_info["ref"]
        if not repository.has_commit(sha):
            raise _Answer(422, f"No commit found for SHA: {sha}")
        login = repository.authors.get(sha)
        person = {"name": login or "Someone", "email": "someone@example.org", "date": _iso(0)}
        body = {
            "sha": sha,
            "commit": {"author": person, "committer": person, "message": "change"},
            "author": {"login": login, "type": "User"} if login else None,
        }
        return self._reply(caller, body)

    # ------------------------------------------------------------ webhooks (github_hooks)

    def _app_target(self, caller: _Caller) -> Target:
        if self.app_webhook is None or caller.app_id != self.app_webhook.target_id:
            raise _Answer(404, "Not Found")
        return self.app_webhook

    async def _app_deliveries(self, request: web.Request) -> web.Response:
        caller = self._as_app(request)
        return self._deliveries_page(request, caller, self._app_target(caller))

    async def _app_redeliver(self, request: web.Request) -> web.Response:
        caller = self._as_app(request)
        return self._redeliver(request, caller, self._app_target(caller))

    def _hook_target(self, request: web.Request) -> tuple[_Caller, Target]:
        caller, repository = self._hook_caller(request)
        target = self.webhooks.targets.get(_int(request.match_info["hook_id"]))
        if target is None or (target.repository or "").lower() != repository.full_name.lower():
            raise _Answer(404, "Not Found")
        return caller, target

    def _hook_caller(self, request: web.Request) -> tuple[_Caller, Repository]:
        caller = self._as_token(request)
        repository = self._repo(request, caller)
        assert caller.token is not None
        if not caller.token.hooks:
            if caller.token.installation_id is not None:
                raise _Answer(403, "Resource not accessible by integration")
            raise _Answer(404, "Not Found")
        return caller, repository

    async def _repository_hooks(self, request: web.Request) -> web.Response:
        caller, repository = self._hook_caller(request)
        hooks = [
            {
                "type": "Repository",
                "id": target.hook_id,
                "name": "web",
                "active": True,
                "events": ["push", "check_run"],
                "config": {"url": target.url(), "content_type": "json", "insecure_ssl": "0"},
            }
            for target in self.webhooks.targets.values()
            if (target.repository or "").lower() == repository.full_name.lower()
        ]
        return self._page(request, caller, hooks, None)

    async def _hook_deliveries(self, request: web.Request) -> web.Response:
        caller, target = self._hook_target(request)
        return self._deliveries_page(request, caller, target)

    async def _hook_redeliver(self, request: web.Request) -> web.Response:
        caller, target = self._hook_target(request)
        return self._redeliver(request, caller, target)

    def _deliveries_page(
        self, request: web.Request, caller: _Caller, target: Target
    ) -> web.Response:
        try:
            items, link = self.webhooks.page(request, target.hook_id)
        except ValueError as err:
            raise _invalid(str(err)) from None
        return self._json(items, 200, {**self._rate_headers(caller), **link})

    def _redeliver(self, request: web.Request, caller: _Caller, target: Target) -> web.Response:
        if not self.webhooks.redeliver(target.hook_id, _int(request.match_info["delivery_id"])):
            raise _Answer(404, "Not Found")
        return self._reply(caller, {}, 202)

    # ------------------------------------------------------------ issue comments, reactions

    async def _create_comment(self, request: web.Request) -> web.Response:
        """https://docs.github.com/en/rest/issues/comments#create-an-issue-comment"""
        caller, repository, _ = self._app_caller(request)
        number = _int(request.match_info["number"])
        body = _object(await self._body(request))
        text = body.get("body")
        if "body" not in body:
            raise _invalid(_not_supplied(["body"]))
        if not isinstance(text, str):
            raise _invalid(f"For 'properties/body', {json.dumps(text)} is not a string.")
        if len(text) > COMMENT_LIMIT:
            raise _failed(
                "IssueComment", "body", "custom", "body is too long (maximum is 65536 characters)"
            )
        self.comments.setdefault((repository.full_name, number), []).append(text)
        answer = {
            "id": next(self._ids),
            "body": text,
            "user": {"login": caller.token.login if caller.token else ""},
        }
        return self._reply(caller, answer, 201)

    async def _create_reaction(self, request: web.Request) -> web.Response:
        """docs.github.com/en/rest/reactions/reactions#create-reaction-for-an-issue-comment
        (201 for a new reaction, 200 when the caller had already given it)."""
        caller, repository, _ = self._app_caller(request)
        comment_id = _int(request.match_info["comment_id"])
        body = _object(await self._body(request))
        content = body.get("content")
        if content not in REACTIONS:
            raise _invalid(
                f"For 'properties/content', {json.dumps(content)} is not a member of "
                f"{sorted(REACTIONS)}."
            )
        given = self.reactions.setdefault((repository.full_name, comment_id), [])
        status = 200 if content in given else 201
        if status == 201:
            given.append(str(content))
        return self._reply(caller, {"id": next(self._ids), "content": content}, status)

    # ------------------------------------------------------------ check runs

    def _app_caller(self, request: web.Request) -> tuple[_Caller, Repository, int]:
        caller = self._as_token(request)
        repository = self._repo(request, caller)
        assert caller.token is not None
        if caller.token.installation_id is None:
            raise _Answer(403, "You must authenticate via a GitHub App.")
        return caller, repository, self.installations[caller.token.installation_id].app_id

    async def _create_check_run(self, request: web.Request) -> web.Response:
        caller, repository, app_id = self._app_caller(request)
        body = _object(await self._body(request))
        missing = [key for key in ("name", "head_sha") if key not in body]
        if missing:
            raise _invalid(_not_supplied(missing))
        if not isinstance(body["name"], str) or not body["name"].strip():
            raise _failed("CheckRun", "name", "missing_field")
        if not isinstance(body["head_sha"], str) or not repository.has_commit(body["head_sha"]):
            raise _Answer(422, f"No commit found for SHA: {body['head_sha']}")
        _validate_check_run(body, creating=True)
        now = _iso(self.clock())
        status, conclusion = _status_and_conclusion(body, "queued")
        run = CheckRun(
            id=next(self._ids),
            repository=repository.full_name,
            head_sha=body["head_sha"],
            name=body["name"],
            app_id=app_id,
            status=status,
            conclusion=conclusion,
            external_id=body.get("external_id"),
            details_url=body.get("details_url"),
            started_at=body.get("started_at") or now,
            completed_at=body.get("completed_at") or (now if status == "completed" else None),
            output={},
            actions=list(body.get("actions") or []),
        )
        _apply_output(run, body.get("output"))
        run.history.append(body)
        self.check_runs[run.id] = run
        return self._reply(caller, run.as_json(), 201)

    def _run(self, request: web.Request, repository: Repository) -> CheckRun:
        try:
            run = self.check_runs[int(request.match_info["id"])]
        except (KeyError, ValueError):
            raise _Answer(404, "Not Found") from None
        if run.repository.lower() != repository.full_name.lower():
            raise _Answer(404, "Not Found")
        return run

    async def _update_check_run(self, request: web.Request) -> web.Response:
        caller, repository, app_id = self._app_caller(request)
        run = self._run(request, repository)
        if run.app_id != app_id:
            raise _Answer(403, "Resource not accessible by integration")
        body = _object(await self._body(request))
        if "name" in body and (not isinstance(body["name"], str) or not body["name"].strip()):
            raise _failed("CheckRun", "name", "missing_field")
        _validate_check_run(body, creating=False)
        status, conclusion = _status_and_conclusion(body, run.status)
        if run.status == "completed" and status != "completed":
            # A completed check run cannot be reopened; a new one must be created
            # (https://github.com/orgs/community/discussions/24761).
            raise _failed("CheckRun", "status", "invalid", "a completed check run cannot change")
        if "actions" in body:
            run.actions = list(body["actions"])
        run.status = status
        if conclusion is not None:
            run.conclusion = conclusion
        if status == "completed":
            run.completed_at = body.get("completed_at") or run.completed_at or _iso(self.clock())
        for key in ("name", "external_id", "details_url", "started_at"):
            if key in body:
                setattr(run, key, body[key])
        _apply_output(run, body.get("output"))
        run.history.append(body)
        return self._reply(caller, run.as_json())

    async def _get_check_run(self, request: web.Request) -> web.Response:
        caller = self._as_token(request)
        run = self._run(request, self._repo(request, caller))
        return self._reply(caller, run.as_json())

    async def _annotations(self, request: web.Request) -> web.Response:
        caller = self._as_token(request)
        run = self._run(request, self._repo(request, caller))
        return self._page(request, caller, run.annotations, None)

    async def _list_check_runs(self, request: web.Request) -> web.Response:
        caller = self._as_token(request)
        repository = self._repo(request, caller)
        query = request.query
        runs = sorted(
            self.runs(repository.full_name, request.match_info["ref"]), key=lambda r: -r.id
        )
        if "check_name" in query:
            runs = [run for run in runs if run.name == query["check_name"]]
        if "status" in query:
            runs = [run for run in runs if run.status == query["status"]]
        if "app_id" in query:
            runs = [run for run in runs if str(run.app_id) == query["app_id"]]
        if query.get("filter", "latest") == "latest":
            seen: set[str] = set()
            runs = [run for run in runs if not (run.name in seen or seen.add(run.name))]  # type: ignore[func-returns-value]
        return self._page(request, caller, [run.as_json() for run in runs], "check_runs")

    def _page(
        self, request: web.Request, caller: _Caller, items: list[Any], key: str | None
    ) -> web.Response:
        """One page of `items` (per_page at most 100) with GitHub's `Link: rel="next"`."""
        try:
            per_page = min(100, max(1, int(request.query.get("per_page", "30"))))
            page = max(1, int(request.query.get("page", "1")))
        except ValueError:
            raise _Answer(422, "Invalid request.\n\nper_page and page must be integers") from None
        chunk = items[(page - 1) * per_page : page * per_page]
        headers = self._rate_headers(caller)
        if page * per_page < len(items):
            query = {**request.query, "page": str(page + 1), "per_page": str(per_page)}
            base = f"{request.scheme}://{request.host}{request.path}"
            headers["Link"] = f'<{base}?{urlencode(query)}>; rel="next"'
        body = {"total_count": len(items), key: chunk} if key else chunk
        return self._json(body, 200, headers)

    # ------------------------------------------------------------ statuses

    async def _create_status(self, request: web.Request) -> web.Response:
        caller = self._as_token(request)
        repository = self._repo(request, caller)
        sha = request.match_info["sha"]
        body = _object(await self._body(request))
        if "state" not in body:
            raise _invalid(_not_supplied(["state"]))
        if body["state"] not in STATUS_STATES:
            raise _invalid(
                f"For 'properties/state', {json.dumps(body['state'])} is not a member "
                f"of {json.dumps(sorted(STATUS_STATES))}."
            )
        for key in ("target_url", "description", "context"):
            if body.get(key) is not None and not isinstance(body[key], str):
                raise _invalid(f"For 'properties/{key}', {json.dumps(body[key])} is not a string.")
        description = body.get("description")
        if description is not None and len(description) > 140:
            raise _failed(
                "Status",
                "description",
                "custom",
                "description is too long (maximum is 140 characters)",
            )
        target_url = body.get("target_url")
        if target_url and urlsplit(target_url).scheme not in ("http", "https"):
            raise _failed("Status", "target_url", "invalid")
        if not repository.has_commit(sha):
            raise _Answer(422, f"No commit found for SHA: {sha}")
        context = body.get("context") or "default"
        if len(self.status_history(repository.full_name, sha, context)) >= MAX_STATUSES_PER_CONTEXT:
            raise _failed(
                "Status",
                "context",
                "custom",
                "This SHA and context has reached the maximum number of statuses.",
            )
        assert caller.token is not None
        status = Status(
            next(self._ids),
            body["state"],
            context,
            description,
            target_url,
            _iso(self.clock()),
            caller.token.login,
        )
        self.statuses.setdefault((repository.full_name.lower(), sha), []).append(status)
        return self._reply(caller, status.as_json(), 201)

    async def _list_statuses(self, request: web.Request) -> web.Response:
        caller = self._as_token(request)
        repository = self._repo(request, caller)
        found = self.statuses.get((repository.full_name.lower(), request.match_info["ref"]), [])
        return self._page(request, caller, [s.as_json() for s in reversed(found)], None)


# ---------------------------------------------------------------------------- check-run rules


def _int(value: str) -> int:
    """A numeric path parameter; GitHub answers 404 for anything else."""
    try:
        return int(value)
    except ValueError:
        raise _Answer(404, "Not Found") from None


def _object(body: Any) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise _invalid(f"{json.dumps(body)} is not an object.")
    return body


def _not_supplied(keys: list[str]) -> str:
    names = ", ".join(f'"{key}"' for key in keys)
    return f"{names} {'weren' if len(keys) > 1 else 'wasn'}'t supplied."


def _timestamp_ok(value: Any) -> bool:
    if not isinstance(value, str):
        return False
    try:
        datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return False
    return True


def _validate_check_run(body: dict[str, Any], *, creating: bool) -> None:
    """GitHub's rules for the body of a check-run create or update."""
    status = body.get("status")
    if status is not None and status not in CHECK_STATUSES:
        if status in ACTIONS_ONLY_STATUSES:
            raise _failed("CheckRun", "status", "invalid", "Only GitHub Actions can set status")
        raise _invalid(
            f"For 'properties/status', {json.dumps(status)} is not a member of "
            f"{json.dumps(sorted(CHECK_STATUSES))}."
        )
    conclusion = body.get("conclusion")
    if conclusion is not None and conclusion not in CONCLUSIONS:
        raise _invalid(
            f"For 'properties/conclusion', {json.dumps(conclusion)} is not a member of "
            f"{json.dumps(sorted(CONCLUSIONS))}."
        )
    completing = status == "completed" or "completed_at" in body
    if completing and conclusion is None:
        raise _invalid('No subschema in "anyOf" matched.\n"conclusion" wasn\'t supplied.')
    if conclusion is not None and status in ("queued", "in_progress"):
        raise _failed("CheckRun", "conclusion", "invalid", "conclusion requires status completed")
    for key in ("started_at", "completed_at"):
        if key in body and not _timestamp_ok(body[key]):
            raise _invalid(f"For 'properties/{key}', {json.dumps(body[key])} is not a timestamp.")
    details_url = body.get("details_url")
    if details_url is not None and (
        not isinstance(details_url, str) or urlsplit(details_url).scheme not in ("http", "https")
    ):
        raise _failed("CheckRun", "details_url", "invalid")
    external_id = body.get("external_id")
    if external_id is not None and not isinstance(external_id, str):
        raise _invalid(f"For 'properties/external_id', {json.dumps(external_id)} is not a string.")
    if "actions" in body:
        _validate_actions(body["actions"])
    if "output" in body:
        _validate_output(body["output"], creating=creating)


# https://docs.github.com/en/rest/checks/runs#create-a-check-run: `actions[]` holds at most
# 3 objects, each with a label of at most 20 characters, a description of at most 40 and
# an identifier of at most 20, all required.
_ACTION_LIMITS = {"label": 20, "description": 40, "identifier": 20}


def _validate_actions(actions: Any) -> None:
    if not isinstance(actions, list):
        raise _invalid("For 'properties/actions', it is not an array.")
    if len(actions) > 3:
        raise _failed("CheckRun", "actions", "custom", "Only 3 actions are allowed")
    for action in actions:
        if not isinstance(action, dict):
            raise _invalid(f"For 'items', {json.dumps(action)} is not an object.")
        missing = [key for key in _ACTION_LIMITS if not isinstance(action.get(key), str)]
        if missing:
            raise _invalid(_not_supplied(missing))
        for key, limit in _ACTION_LIMITS.items():
            if len(action[key]) > limit:
                raise _failed(
                    "CheckRun", key, "custom", f"{key} is too long (maximum is {limit} characters)"
                )


def _validate_output(output: Any, *, creating: bool) -> None:
    if not isinstance(output, dict):
        raise _invalid("For 'properties/output', it is not an object.")
    required = ["title", "summary"] if creating else ["summary"]
    missing = [key for key in required if key not in output]
    if missing:
        raise _invalid(_not_supplied(missing))
    for key in ("title", "summary", "text"):
        value = output.get(key)
        if value is None:
            continue
        if not isinstance(value, str):
            raise _invalid(f"For 'properties/{key}', {json.dumps(value)} is not a string.")
        if key == "title":
            continue
        if len(value) > OUTPUT_LIMIT:
            raise _invalid(
                f"Only {OUTPUT_LIMIT} characters are allowed; {len(value)} were supplied."
            )
        if len(value.encode("utf-8")) > OUTPUT_LIMIT:
            raise _failed(
                "CheckRun", key, "custom", f"{key} exceeds a maximum bytesize of {OUTPUT_LIMIT}"
            )
    annotations = output.get("annotations", [])
    if not isinstance(annotations, list):
        raise _invalid("For 'properties/annotations', it is not an array.")
    if len(annotations) > 50:
        raise _failed(
            "CheckRun",
            "annotations",
            "custom",
            f"There are {len(annotations)} annotations; only 50 are allowed per request.",
        )
    reasons = [reason for item in annotations for reason in _annotation_problems(item)]
    if reasons:
        raise _invalid("\n".join(reasons))


def _annotation_problems(item: Any) -> Iterator[str]:
    if not isinstance(item, dict):
        yield f"{json.dumps(item)} is not an object."
        return
    required = ["path", "start_line", "end_line", "annotation_level", "message"]
    missing = [key for key in required if key not in item]
    if missing:
        yield _not_supplied(missing)
        return
    if not isinstance(item["path"], str) or not item["path"] or item["path"].startswith("/"):
        yield f"For 'properties/path', {json.dumps(item['path'])} is not a relative path."
    lines = (item["start_line"], item["end_line"])
    if not all(
        isinstance(line, int) and not isinstance(line, bool) and line >= 1 for line in lines
    ):
        yield "For 'properties/start_line' and 'end_line', lines are positive integers."
    elif lines[1] < lines[0]:
        yield "end_line must not be before start_line."
    if item["annotation_level"] not in ANNOTATION_LEVELS:
        yield (
            f"For 'properties/annotation_level', {json.dumps(item['annotation_level'])} is not a "
            f"member of {json.dumps(sorted(ANNOTATION_LEVELS))}."
        )
    if ("start_column" in item or "end_column" in item) and item["start_line"] != item["end_line"]:
        yield "start_column and end_column may only be given when start_line equals end_line."
    if not isinstance(item["message"], str) or not item["message"]:
        yield "For 'properties/message', a message is required."
    elif len(item["message"].encode("utf-8")) > ANNOTATION_TEXT_LIMIT:
        yield "message exceeds a maximum bytesize of 65536"
    if len(str(item.get("title", ""))) > 255:
        yield "title is too long (maximum is 255 characters)"
    if len(str(item.get("raw_details", "")).encode("utf-8")) > ANNOTATION_TEXT_LIMIT:
        yield "raw_details exceeds a maximum bytesize of 65536"


def _status_and_conclusion(body: dict[str, Any], current: str) -> tuple[str, str | None]:
    """A conclusion completes the run whatever status says (GitHub sets status completed)."""
    conclusion = body.get("conclusion")
    status = "completed" if conclusion is not None else body.get("status", current)
    return status, conclusion


def _apply_output(run: CheckRun, output: dict[str, Any] | None) -> None:
    """Title, summary and text replace the run's; annotations are appended (GitHub does so)."""
    if output is None:
        return
    for key in ("title", "summary", "text"):
        if key in output:
            run.output[key] = output[key]
    run.annotations.extend(output.get("annotations", []))


# ---------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="session")
def github_app_key() -> AppKey:
    """An RSA key pair for a fake GitHub App (generated once per test session)."""
    return generate_app_key()


@pytest.fixture
async def fake_github() -> AsyncIterator[FakeGitHub]:
    """A running `FakeGitHub` with no apps, repositories or tokens yet."""
    fake = FakeGitHub()
    await fake.start()
    yield fake
    await fake.stop()
