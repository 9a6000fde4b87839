"""A fake Forgejo (or Gitea), served over real HTTP, that checks requests the way Forgejo does.

One origin serves both the REST API (`/api/v1/...`) and the repositories over smart
HTTP (`/{owner}/{repo}.git`, by the real `git http-backend`), as a Forgejo instance
does: a payload's `clone_url` names the same host as the API. Everything it was told
is kept in memory for tests; faults are injected on demand (`inject`, with the
`Fault` of the fake GitHub).

Where each rule comes from (Forgejo's source, forgejo.org/..., and its API
description, https://codeberg.org/api/swagger, which Gitea shares):

- Webhook headers (`send_webhook`): services/webhook/shared/payloader.go
  `AddDefaultHeaders`: `X-Forgejo-Delivery`/`-Event`/`-Event-Type`/`-Signature`, the
  same under `X-Gitea-` and `X-Gogs-`, `X-Hub-Signature` (`sha1=`), `X-Hub-Signature-256`
  (`sha256=`), `X-GitHub-Delivery`/`-Event`/`-Event-Type`. The signature is the hex
  HMAC-SHA256 of the body with the hook's secret, and empty when the hook has none.
  The body is `json.MarshalIndent(payload, "", "  ")` (two-space indent), sent as
  `application/json` (services/webhook/default.go).
- Push payloads (`push_payload`): modules/structs/hook.go `PushPayload`: ref, before,
  after, compare_url (and `compare`, a copy Forgejo adds for Forgejo-type hooks,
  default.go `addCompatCompareUrl`), commits, total_commits, head_commit, repository,
  pusher, sender; no created/deleted/forced. `commits` holds at most
  `[ui] FEED_MAX_COMMIT_NUM` (5) commits, `total_commits` all of them. Users carry
  `login` and a compatibility copy `username` (modules/structs/user.go `MarshalJSON`).
  Create/delete payloads: hook.go `CreatePayload` (sha, ref, ref_type) and
  `DeletePayload` (ref, ref_type, pusher_type).
- API authentication: `Authorization: token <t>` or `Bearer <t>` (services/auth/oauth2.go);
  without a token a private repository is 404, a token-only route 401 "token is
  required"; a token lacking the route's scope is 403 (routers/api/v1/api.go
  `tokenRequiresScopes`: reading a repository needs read:repository, a status
  write:repository).
- `GET /repos/{owner}/{repo}`: the repository (modules/structs/repo.go `Repository`:
  full_name, default_branch, clone_url, html_url, private); 404 "The target couldn't
  be found." otherwise.
- `GET /repos/{owner}/{repo}/collaborators/{collaborator}/permission`
  (routers/api/v1/repo/collaborators.go `GetRepoPermissions`): 403 unless the token's
  user is a site admin, a repository admin or asks about themself; 404 for an unknown
  user; else `permission` one of owner, admin, write, read, none.
- `POST /repos/{owner}/{repo}/statuses/{sha}` (routers/api/v1/repo/status.go
  `NewCommitStatus`, services/repository/commitstatus, models/git/commit_status.go):
  a token with write:repository of a user who may write to the repository
  (`reqRepoWriter`); the body binds `CreateStatusOption` {state, target_url,
  description, context}, each trimmed of white space; `state` one of the
  `CommitStatusState` enum pending, success, error, failure, warning (422 otherwise:
  the column is VARCHAR(7) and the swagger enum lists these five); a commit that is
  not in the repository is 500 (`GetCommit` fails and the handler answers 500); the
  description is a TEXT column, whose tightest form (MySQL) holds 65535 bytes, so a
  longer one is 500 too. 201 with the status, its state under `status`.
- Git over HTTP: a personal access token as the Basic password with any user name,
  or as the user name with an empty or `x-oauth-basic` password (services/auth/basic.go);
  a private repository without it is 401; pushing is refused (read-only fake).
- Rate limits: Forgejo has no API rate limiter of its own; instances such as
  Codeberg put a proxy in front that answers 429 with `Retry-After`
  (`rate_limited` builds that fault).
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import re
import secrets
import subprocess
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from ogdc_hooks.cli.gitserve import cgi_environment, http_backend
from tests.fakes.github import Fault, Recorded, _Injection, fault_answer, take_fault
from tests.support.gitserver import GitServer, _basic, _git

SWAGGER = "/api/swagger"
STATES = ("pending", "success", "error", "failure", "warning")
DESCRIPTION_BYTES = 65535  # TEXT on MySQL, the tightest of Forgejo's databases
FEED_MAX_COMMIT_NUM = 5  # [ui] FEED_MAX_COMMIT_NUM: commits listed in a push payload
ZERO = "0" * 40
ACCESS = ("none", "read", "write", "admin", "owner")


def rate_limited(retry_after: int = 30) -> Fault:
    """What a proxy in front of Forgejo answers when a client is too fast."""
    return Fault(429, None, {"Retry-After": str(retry_after)})


def server_error(status: int = 500) -> Fault:
    return Fault(status, {"message": "Internal Server Error", "url": SWAGGER})


# ---------------------------------------------------------------------------- state


@dataclass
class User:
    id: int
    login: str
    email: str
    admin: bool = False

    def as_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "login": self.login,
            "login_name": "",
            "full_name": "",
            "email": self.email,
            "username": self.login,  # user.go MarshalJSON: the compatibility copy
            "is_admin": self.admin,
        }


@dataclass
class Token:
    value: str
    login: str
    scopes: frozenset[str]


@dataclass
class Repository:
    id: int
    full_name: str
    default_branch: str
    private: bool
    # lower-case login -> access mode (read, write, admin, owner)
    access: dict[str, str] = field(default_factory=dict)

    @property
    def owner(self) -> str:
        return self.full_name.split("/")[0]


@dataclass
class Status:
    id: int
    state: str
    context: str
    description: str
    target_url: str
    creator: str
    created_at: str

    def as_json(self, base: str, repository: str, sha: str) -> dict[str, Any]:
        return {
            "id": self.id,
            "status": self.state,  # structs.CommitStatus: State is `json:"status"`
            "target_url": self.target_url,
            "description": self.description,
            "url": f"{base}/api/v1/repos/{repository}/statuses/{sha}",
            "context": self.context,
            "creator": {"login": self.creator},
            "created_at": self.created_at,
            "updated_at": self.created_at,
        }


@dataclass(frozen=True)
class WebhookAnswer:
    status: int
    body: Any
    headers: dict[str, str]  # what was sent


class _Answer(Exception):
    """Raised inside a handler to answer at once with Forgejo's error shape (APIError)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.body = {"message": message, "url": SWAGGER}


# ---------------------------------------------------------------------------- the server


class FakeForgejo:
    """A Forgejo instance as far as ogdc-hooks uses it; see the module docstring."""

    def __init__(self, root: Path) -> None:
        self.git = GitServer(root)  # builds history in bare repositories; not started
        self.root = root
        self.users: dict[str, User] = {}
        self.tokens: dict[str, Token] = {}
        self.repositories: dict[str, Repository] = {}
        self.statuses: dict[tuple[str, str], list[Status]] = {}
        self.requests: list[Recorded] = []
        self.git_requests: list[tuple[str, str, bool]] = []  # method, path, authorized
        self._git_delays: list[float] = []
        self._faults: list[_Injection] = []
        self._ids = iter(range(1, 10**9))
        self._runner: web.AppRunner | None = None
        self.url = ""

    # ------------------------------------------------------------ set-up by tests

    def add_user(self, login: str, *, admin: bool = False) -> User:
        user = User(next(self._ids), login, f"{login.lower()}@example.org", admin)
        self.users[login.lower()] = user
        return user

    def add_token(
        self, login: str, scopes: tuple[str, ...] = ("write:repository",), value: str = ""
    ) -> str:
        """A personal access token of `login` (added as a user when new); returns it."""
        if login.lower() not in self.users:
            self.add_user(login)
        value = value or secrets.token_hex(20)  # Forgejo tokens are 40 hex digits
        self.tokens[value] = Token(value, login.lower(), frozenset(scopes))
        return value

    def add_repository(
        self, full_name: str, *, default_branch: str = "main", private: bool = True
    ) -> Repository:
        """A repository (its owner a user with `owner` access), with an empty bare git repo."""
        owner = full_name.split("/", maxsplit=1)[0]
        if owner.lower() not in self.users:
            self.add_user(owner)
        repository = Repository(next(self._ids), full_name, default_branch, private)
        repository.access[owner.lower()] = "owner"
        self.repositories[full_name.lower()] = repository
        (self.root / owner).mkdir(parents=True, exist_ok=True)
        self.git.create_repo(full_name, default_branch=default_branch)
        return repository

    def grant(self, full_name: str, login: str, mode: str) -> None:
        """Give `login` (a user, added when new) read, write or admin access."""
        if login.lower() not in self.users:
            self.add_user(login)
        self.repositories[full_name.lower()].access[login.lower()] = mode

    def delay_git(self, count: int, seconds: float) -> None:
        """The next `count` git requests are answered only after `seconds` (a stalled clone)."""
        self._git_delays.extend([seconds] * count)

    def inject(
        self, fault: Fault, *, times: int = 1, path: str | None = None, method: str | None = None
    ) -> None:
        """Answer the next `times` API requests matching `path` (a regex on the path after
        /api/v1) and `method` with `fault`."""
        pattern = re.compile(path) if path is not None else None
        self._faults.append(_Injection(fault, times, pattern, method))

    # ------------------------------------------------------------ what tests read

    def clone_url(self, full_name: str) -> str:
        return f"{self.url}/{full_name}.git"

    def status_history(self, full_name: str, sha: str, context: str | None = None) -> list[Status]:
        found = self.statuses.get((full_name.lower(), sha), [])
        return [s for s in found if context is None or s.context == context]

    def latest(self, full_name: str, sha: str, context: str) -> Status | None:
        history = self.status_history(full_name, sha, context)
        return history[-1] if history else None

    def requests_to(self, method: str, path_regex: str) -> list[Recorded]:
        return [r for r in self.requests if r.method == method and re.search(path_regex, r.path)]

    # ------------------------------------------------------------ payloads, as Forgejo builds them

    def repository_json(self, full_name: str) -> dict[str, Any]:
        repository = self.repositories[full_name.lower()]
        owner = self.users[repository.owner.lower()]
        html_url = f"{self.url}/{repository.full_name}"
        return {
            "id": repository.id,
            "owner": owner.as_json(),
            "name": repository.full_name.split("/")[1],
            "full_name": repository.full_name,
            "private": repository.private,
            "html_url": html_url,
            "ssh_url": f"git@{self.url.split('://')[1]}:{repository.full_name}.git",
            "clone_url": f"{html_url}.git",
            "url": f"{self.url}/api/v1/repos/{repository.full_name}",
            "default_branch": repository.default_branch,
        }

    def push_payload(
        self, full_name: str, *, before: str, after: str, pusher: str, branch: str = "main"
    ) -> dict[str, Any]:
        """A `push` payload for the commits between `before` and `after` on `branch`."""
        commits = self._commits(full_name, before, after)
        user = self.users.get(pusher.lower()) or self.add_user(pusher)
        html_url = f"{self.url}/{full_name}"
        compare = f"{html_url}/compare/{before}...{after}" if before != ZERO else ""
        return {
            "ref": f"refs/heads/{branch}",
            "before": before,
            "after": after,
            "compare_url": compare,
            "compare": compare,
            "commits": commits[:FEED_MAX_COMMIT_NUM],
            "total_commits": len(commits),
            "head_commit": commits[0] if commits else None,
            "repository": self.repository_json(full_name),
            "pusher": user.as_json(),
            "sender": user.as_json(),
        }

    def ref_payload(
        self, full_name: str, ref: str, *, sha: str = "", sender: str
    ) -> dict[str, Any]:
        """A `create` payload (with `sha`) or a `delete` payload (without)."""
        user = self.users.get(sender.lower()) or self.add_user(sender)
        payload: dict[str, Any] = {"ref": ref, "ref_type": "branch"}
        if sha:
            payload["sha"] = sha
        else:
            payload["pusher_type"] = "user"
        return {**payload, "repository": self.repository_json(full_name), "sender": user.as_json()}

    def _commits(self, full_name: str, before: str, after: str) -> list[dict[str, Any]]:
        """The pushed commits, newest first (as `git log before..after`)."""
        span = after if before == ZERO else f"{before}..{after}"
        lines = _git(
            ["log", "--format=%H%x00%s%x00%an%x00%ae", span], cwd=self.root / f"{full_name}.git"
        )
        commits = []
        for line in lines.splitlines():
            sha, message, name, email = line.split("\x00")
            person = {"name": name, "email": email, "username": ""}
            commits.append(
                {
                    "id": sha,
                    "message": message + "\n",
                    "url": f"{self.url}/{full_name}/commit/{sha}",
                    "author": person,
                    "committer": person,
                    "added": [],
                    "removed": [],
                    "modified": [],
                }
            )
        return commits

    async def send_webhook(
        self,
        url: str,
        secret: str,
        event: str,
        payload: dict[str, Any] | bytes,
        *,
        delivery: str | None = None,
        gitea: bool = False,
    ) -> WebhookAnswer:
        """Deliver `payload` to `url` signed with `secret`, with every header Forgejo sends
        (`gitea`: as Gitea does, without the X-Forgejo ones)."""
        body = payload if isinstance(payload, bytes) else json.dumps(payload, indent=2).encode()
        headers = webhook_headers(event, body, secret, delivery or str(uuid.uuid4()), gitea=gitea)
        async with (
            aiohttp.ClientSession() as session,
            session.post(url, data=body, headers=headers) as answer,
        ):
            text = await answer.text()
            try:
                parsed: Any = json.loads(text)
            except ValueError:
                parsed = text
            return WebhookAnswer(answer.status, parsed, headers)

    # ------------------------------------------------------------ lifecycle

    async def start(self) -> str:
        app = web.Application(middlewares=[self._middleware])
        api = "/api/v1/repos/{owner}/{repo}"
        app.router.add_get(api, self._repository)
        app.router.add_get(api + "/collaborators/{collaborator}/permission", self._permission)
        app.router.add_post(api + "/statuses/{sha}", self._create_status)
        app.router.add_get(api + "/statuses/{sha}", self._list_statuses)
        app.router.add_get(api + "/git/commits/{sha}", self._commit)
        app.router.add_route("*", r"/{owner}/{repo:[^/]+\.git}/{rest:.*}", self._git)
        # Git compresses large request bodies; git http-backend decompresses them.
        self._runner = web.AppRunner(
            app, shutdown_timeout=0.5, access_log=None, auto_decompress=False
        )
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        host, port = self._runner.addresses[0][:2]
        self.url = f"http://{host}:{port}"
        return self.url

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    # ------------------------------------------------------------ cross-cutting

    @web.middleware
    async def _middleware(
        self, request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
    ) -> web.StreamResponse:
        if not request.path.startswith("/api/"):
            return await handler(request)
        path = request.path_qs.removeprefix("/api/v1")
        body: Any = None
        response: web.StreamResponse
        try:
            body = await self._body(request)
            fault = take_fault(self._faults, request.method, path)
            if fault is not None:
                response = await fault_answer(request, fault)
            else:
                response = await handler(request)
        except _Answer as answer:
            response = web.json_response(answer.body, status=answer.status)
        except web.HTTPException as err:  # unknown route or method
            response = web.json_response(
                {"message": "Not Found", "url": SWAGGER}, status=err.status
            )
        self.requests.append(
            Recorded(request.method, path, dict(request.headers), body, response.status)
        )
        return response

    async def _body(self, request: web.Request) -> Any:
        if request.method not in ("POST", "PATCH", "PUT"):
            return None
        raw = await request.read()
        try:
            return json.loads(raw) if raw else None
        except ValueError:
            raise _Answer(422, "invalid JSON body") from None

    def _caller(self, request: web.Request) -> Token | None:
        """The token of `Authorization: token|Bearer <t>`; 401 for an unknown one."""
        header = request.headers.get("Authorization")
        if not header:
            return None
        scheme, _, value = header.partition(" ")
        token = self.tokens.get(value.strip()) if scheme.lower() in ("token", "bearer") else None
        if token is None:
            raise _Answer(401, "invalid username, password or token")
        return token

    def _visible(self, request: web.Request, token: Token | None) -> Repository:
        key = f"{request.match_info['owner']}/{request.match_info['repo']}".lower()
        repository = self.repositories.get(key)
        if repository is None or (repository.private and self._mode(repository, token) == "none"):
            raise _Answer(404, "The target couldn't be found.")
        return repository

    def _mode(self, repository: Repository, token: Token | None) -> str:
        if token is None:
            return "none"
        if self.users[token.login].admin:
            return "owner"
        return repository.access.get(token.login, "read" if not repository.private else "none")

    @staticmethod
    def _scoped(token: Token | None, *allowed: str) -> None:
        if token is not None and not token.scopes & {*allowed, "all"}:
            raise _Answer(
                403, f"token does not have at least one of required scope(s): [{allowed[-1]}]"
            )

    # ------------------------------------------------------------ API

    async def _repository(self, request: web.Request) -> web.Response:
        token = self._caller(request)
        self._scoped(token, "read:repository", "write:repository")
        repository = self._visible(request, token)
        mode = self._mode(repository, token)
        body = {
            **self.repository_json(repository.full_name),
            "permissions": {
                "admin": ACCESS.index(mode) >= 3,
                "push": ACCESS.index(mode) >= 2,
                "pull": ACCESS.index(mode) >= 1 or not repository.private,
            },
        }
        return web.json_response(body)

    async def _permission(self, request: web.Request) -> web.Response:
        token = self._caller(request)
        if token is None:
            raise _Answer(401, "token is required")
        self._scoped(token, "read:repository", "write:repository")
        repository = self._visible(request, token)
        asked = request.match_info["collaborator"].lower()
        if ACCESS.index(self._mode(repository, token)) < 3 and asked != token.login:
            raise _Answer(
                403,
                "Only admins can query all permissions, repo admins can query all repo "
                "permissions, collaborators can query only their own",
            )
        user = self.users.get(asked)
        if user is None:
            raise _Answer(404, f"user does not exist [uid: 0, name: {asked}]")
        mode = "owner" if user.admin else repository.access.get(asked, "none")
        if mode == "none" and not repository.private:
            mode = "read"
        return web.json_response({"permission": mode, "role_name": mode, "user": user.as_json()})

    async def _create_status(self, request: web.Request) -> web.Response:
        token = self._caller(request)
        if token is None:
            raise _Answer(401, "token is required")
        self._scoped(token, "write:repository")
        repository = self._visible(request, token)
        if ACCESS.index(self._mode(repository, token)) < 2:
            raise _Answer(403, "user should have a permission to write to a repo")
        body = await self._body(request)
        if not isinstance(body, dict):
            raise _Answer(422, "[]: the body must be a CreateStatusOption object")
        for key in ("state", "target_url", "description", "context"):
            if body.get(key) is not None and not isinstance(body[key], str):
                raise _Answer(422, f"[{key}]: must be a string")
        state = body.get("state")
        if state not in STATES:
            raise _Answer(422, f"[state]: {state!r} is not one of {', '.join(STATES)}")
        sha = request.match_info["sha"]
        if not self._has_commit(repository, sha):
            raise _Answer(500, f"CreateCommitStatus: GetCommit[{sha}]: object does not exist")
        description = str(body.get("description") or "").strip()
        if len(description.encode()) > DESCRIPTION_BYTES:
            raise _Answer(500, "CreateCommitStatus: Data too long for column 'description'")
        status = Status(
            next(self._ids),
            state,
            str(body.get("context") or "").strip(),
            description,
            str(body.get("target_url") or "").strip(),
            self.users[token.login].login,
            datetime.fromtimestamp(time.time(), UTC).isoformat(),
        )
        self.statuses.setdefault((repository.full_name.lower(), sha), []).append(status)
        return web.json_response(status.as_json(self.url, repository.full_name, sha), status=201)

    async def _list_statuses(self, request: web.Request) -> web.Response:
        token = self._caller(request)
        self._scoped(token, "read:repository", "write:repository")
        repository = self._visible(request, token)
        sha = request.match_info["sha"]
        found = reversed(self.status_history(repository.full_name, sha))
        return web.json_response([s.as_json(self.url, repository.full_name, sha) for s in found])

    async def _commit(self, request: web.Request) -> web.Response:
        """`GET /repos/{owner}/{repo}/git/commits/{sha}`: `author` is the user whose email
        is the commit author's, or null."""
        token = self._caller(request)
        self._scoped(token, "read:repository", "write:repository")
        repository = self._visible(request, token)
        sha = request.match_info["sha"]
        if not self._has_commit(repository, sha):
            raise _Answer(404, f"object does not exist [id: {sha}, rel_path: ]")
        email = _git(
            ["log", "-1", "--format=%ae", sha], cwd=self.root / f"{repository.full_name}.git"
        )
        author = next((u for u in self.users.values() if u.email == email.strip()), None)
        return web.json_response(
            {"sha": sha, "author": author.as_json() if author else None, "commit": {}}
        )

    def _has_commit(self, repository: Repository, sha: str) -> bool:
        if not re.fullmatch(r"[0-9a-f]{4,64}", sha):
            return False
        found = subprocess.run(
            ["git", "cat-file", "-e", f"{sha}^{{commit}}"],
            cwd=self.root / f"{repository.full_name}.git",
            capture_output=True,
            check=False,
        )
        return found.returncode == 0

    # ------------------------------------------------------------ git over HTTP

    async def _git(self, request: web.Request) -> web.StreamResponse:
        key = f"{request.match_info['owner']}/{request.match_info['repo']}"
        repository = self.repositories.get(key.removesuffix(".git").lower())
        token = self._git_token(request)
        authorized = token is not None and (
            repository is None or self._mode(repository, token) != "none"
        )
        self.git_requests.append((request.method, request.path, authorized))
        if self._git_delays:
            await asyncio.sleep(self._git_delays.pop(0))
        if repository is None:
            return web.Response(status=404, text="Not found.\n")
        if "git-receive-pack" in request.path_qs:
            return web.Response(status=403, text="this fake Forgejo is read-only\n")
        if repository.private and not authorized:
            return web.Response(
                status=401,
                text="Unauthorized\n",
                headers={"WWW-Authenticate": 'Basic realm="Gitea"'},
            )
        return await http_backend(request, cgi_environment(request, self.root))

    def _git_token(self, request: web.Request) -> Token | None:
        """Basic credentials: the token as the password (any user name), or as the user
        name with an empty or `x-oauth-basic` password (services/auth/basic.go)."""
        credentials = _basic(request)
        if credentials is None:
            return None
        user, password = credentials
        secret = user if password in ("", "x-oauth-basic") else password
        return self.tokens.get(secret)


def webhook_headers(
    event: str, body: bytes, secret: str, delivery: str, *, gitea: bool = False
) -> dict[str, str]:
    """The headers `AddDefaultHeaders` sets on a delivery of `body`."""
    sha256 = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest() if secret else ""
    sha1 = hmac.new(secret.encode(), body, hashlib.sha1).hexdigest() if secret else ""
    headers = {"Content-Type": "application/json", "User-Agent": "Go-http-client/1.1"}
    for vendor in ("Gitea", "Gogs") if gitea else ("Forgejo", "Gitea", "Gogs"):
        headers[f"X-{vendor}-Delivery"] = delivery
        headers[f"X-{vendor}-Event"] = event
        headers[f"X-{vendor}-Event-Type"] = event
        headers[f"X-{vendor}-Signature"] = sha256
    headers["X-Hub-Signature"] = f"sha1={sha1}"
    headers["X-Hub-Signature-256"] = f"sha256={sha256}"
    headers["X-GitHub-Delivery"] = delivery
    headers["X-GitHub-Event"] = event
    headers["X-GitHub-Event-Type"] = event
    return headers


@pytest.fixture
async def fake_forgejo(tmp_path: Path) -> AsyncIterator[FakeForgejo]:
    """A running `FakeForgejo` with no users, tokens or repositories yet."""
    fake = FakeForgejo(tmp_path / "forgejo")
    await fake.start()
    yield fake
    await fake.stop()
